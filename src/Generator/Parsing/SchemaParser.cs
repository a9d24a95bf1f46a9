using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Parsing;

/// <summary>Derives the compile-time schema of a record type: its public instance fields and properties, in order.</summary>
internal static class SchemaParser
{
    /// <summary>The schema of <paramref name="type"/>, or null for scalars (numbers, strings…) that have no fields.</summary>
    public static RecordSchemaModel? Parse(ITypeSymbol type, ScalarTypes scalars)
    {
        if (type is not INamedTypeSymbol named || scalars.Classify(type) is not null || named.TypeKind is not (TypeKind.Class or TypeKind.Struct))
        {
            return null;
        }

        var fields = new List<FieldModel>();
        var members = new List<ISymbol>();
        foreach (var member in OrderedMembers(named))
        {
            ITypeSymbol? memberType = member switch
            {
                IPropertySymbol { IsStatic: false, IsIndexer: false, GetMethod.DeclaredAccessibility: Accessibility.Public, DeclaredAccessibility: Accessibility.Public } p
                    when p.Name != "EqualityContract" => p.Type,
                IFieldSymbol { IsStatic: false, IsConst: false, DeclaredAccessibility: Accessibility.Public, IsImplicitlyDeclared: false } f => f.Type,
                _ => null,
            };

            if (memberType is null || fields.Any(f => f.Name == member.Name))
            {
                continue;
            }

            fields.Add(ToField(member.Name, memberType, scalars) with
            {
                IsKey = Symbols.IsMarked(named, member, KnownNames.KeyAttribute),
                MemberTypeFullName = Symbols.FullName(memberType.WithNullableAnnotation(NullableAnnotation.NotAnnotated)),
            });
            members.Add(member);
        }

        if (fields.Count == 0)
        {
            return null;
        }

        // How a row-oriented lookup builds the type: the constructor codecs would call, the other fields by initializer.
        var constructor = CodecParser.ChooseConstructor(named, members);
        var buildable = constructor is not null
            || (!named.IsAbstract && (named.IsValueType || named.InstanceConstructors.Any(c => c.Parameters.Length == 0 && c.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal)));
        for (var i = 0; i < fields.Count; i++)
        {
            var position = constructor is null ? -1 : CodecParser.IndexOfParameter(constructor, fields[i].Name);
            buildable &= position >= 0 || CodecParser.Settable(members[i]);
            fields[i] = fields[i] with { ConstructorPosition = position };
        }

        return new RecordSchemaModel(
            Symbols.FullName(type.WithNullableAnnotation(NullableAnnotation.NotAnnotated)),
            Symbols.DisplayName(type),
            Identifier(type),
            fields.ToEquatableArray())
        {
            Construction = !buildable ? null : constructor is null ? Model.Construction.Initializer : Model.Construction.Constructor,
            TypeIdentity = Symbols.IdentityName(type),
        };
    }

    /// <summary>A C# identifier unique to the type, for naming its generated schema class.</summary>
    public static string Identifier(ITypeSymbol type)
    {
        var chars = Symbols.IdentityName(type).Replace("global::", "").ToCharArray();
        for (var i = 0; i < chars.Length; i++)
        {
            if (!char.IsLetterOrDigit(chars[i]))
            {
                chars[i] = '_';
            }
        }

        return new string(chars);
    }

    private static IEnumerable<ISymbol> OrderedMembers(INamedTypeSymbol type)
    {
        // Base type members first, so a derived record lists inherited fields before its own.
        var chain = new List<INamedTypeSymbol>();
        for (var current = type; current is not null && current.SpecialType is not (SpecialType.System_Object or SpecialType.System_ValueType); current = current.BaseType)
        {
            chain.Insert(0, current);
        }

        return chain.SelectMany(t => t.GetMembers());
    }

    private static FieldModel ToField(string name, ITypeSymbol type, ScalarTypes scalars)
    {
        var isNullable = false;
        var underlying = type;
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
        {
            isNullable = true;
            underlying = nullable.TypeArguments[0];
        }
        else if (type.IsReferenceType && type.NullableAnnotation == NullableAnnotation.Annotated)
        {
            isNullable = true;
        }

        var kind = scalars.Classify(underlying) is { } scalar ? ScalarKinds.InSchemas(scalar) : null;
        return new FieldModel(name, kind, Symbols.IdentityName(underlying), isNullable);
    }
}
