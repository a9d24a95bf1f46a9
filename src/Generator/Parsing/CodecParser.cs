using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Parsing;

/// <summary>Reads a <c>[Record]</c> type into a <see cref="CodecModel"/>: its fields, how to construct it, nested types and enums.</summary>
internal static class CodecParser
{
    private const int MaxNesting = 16;

    public static CodecModel Parse(INamedTypeSymbol type, Compilation compilation)
    {
        var diagnostics = new List<DiagnosticInfo>();
        var location = Symbols.IdentifierLocation(type);
        var display = Symbols.DisplayName(type);
        var isPartial = Symbols.IsPartial(type);
        if (!isPartial)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingPartial, location, display));
        }

        foreach (var container in Symbols.NonPartialContainers(type))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingPartial, Symbols.IdentifierLocation(container), Symbols.DisplayName(container)));
        }

        if (type.IsGenericType)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.GenericRecord, location, display));
        }

        var naming = NamingOf(type);
        var context = new Context(diagnostics, location, ScalarTypes.For(compilation));
        var root = ReadObject(type, naming, context, depth: 0);

        return new CodecModel(
            Symbols.NamespaceOf(type),
            type.Name,
            Symbols.Keyword(type),
            Symbols.ContainingTypes(type),
            isPartial,
            root,
            context.Nested.Values.ToEquatableArray(),
            context.Enums.Values.ToEquatableArray(),
            location,
            diagnostics.ToEquatableArray(),
            LenientJsonNumbers(type));
    }

    private static bool LenientJsonNumbers(INamedTypeSymbol type)
        => type.GetAttributes()
            .FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == "Compiled.RecordAttribute")?
            .NamedArguments.FirstOrDefault(a => a.Key == "LenientJsonNumbers").Value.Value is true;

    private sealed class Context(List<DiagnosticInfo> diagnostics, LocationInfo? location, ScalarTypes scalars)
    {
        public ScalarTypes Scalars { get; } = scalars;

        public List<DiagnosticInfo> Diagnostics { get; } = diagnostics;

        public LocationInfo? Location { get; } = location;

        public Dictionary<string, CodecObjectModel> Nested { get; } = new();

        public Dictionary<string, CodecEnumModel> Enums { get; } = new();

        public HashSet<string> InProgress { get; } = new();
    }

    private static CodecObjectModel ReadObject(INamedTypeSymbol type, FieldNaming naming, Context context, int depth)
    {
        var identifier = SchemaParser.Identifier(type);
        context.InProgress.Add(identifier);
        var members = CodecMembers(type);
        var constructor = ChooseConstructor(type, members);
        var fields = new List<CodecFieldModel>();
        foreach (var member in members)
        {
            var memberType = member is IPropertySymbol p ? p.Type : ((IFieldSymbol)member).Type;
            var position = constructor is null ? -1 : IndexOfParameter(constructor, member.Name);
            if (position < 0 && !Settable(member))
            {
                context.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.FieldCannotBeDecoded, Symbols.IdentifierLocation(member) ?? context.Location, member.Name, Symbols.DisplayName(type)));
                continue;
            }

            var wire = WireName(member, constructor, naming);
            if (fields.Any(f => f.WireName == wire))
            {
                context.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DuplicateFieldName, Symbols.IdentifierLocation(member) ?? context.Location, Symbols.DisplayName(type), wire));
                continue;
            }

            var field = ReadField(member, memberType, wire, position, naming, context, depth);
            if (field is not null)
            {
                fields.Add(position >= 0 ? field with { Default = DefaultLiteral(constructor!.Parameters[position]) } : field);
            }
        }

        context.InProgress.Remove(identifier);
        return new CodecObjectModel(
            Symbols.FullName(type.WithNullableAnnotation(NullableAnnotation.NotAnnotated)),
            Symbols.DisplayName(type),
            identifier,
            type.IsValueType,
            constructor is null ? Construction.Initializer : Construction.Constructor,
            fields.ToEquatableArray());
    }

    private static CodecFieldModel? ReadField(ISymbol member, ITypeSymbol type, string wire, int position, FieldNaming naming, Context context, int depth)
    {
        var nullableValue = false;
        var underlying = type;
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
        {
            nullableValue = true;
            underlying = nullable.TypeArguments[0];
        }

        var nullableReference = !type.IsValueType && type.NullableAnnotation != NullableAnnotation.NotAnnotated;
        var fullName = Symbols.FullName(underlying.WithNullableAnnotation(NullableAnnotation.NotAnnotated));
        var kind = context.Scalars.Classify(underlying);
        if (kind is { } scalar && !ScalarKinds.InCodecs(scalar))
        {
            context.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedFieldType, Symbols.IdentifierLocation(member) ?? context.Location, member.Name, Symbols.DisplayName(type)));
            return null;
        }

        if (kind is not null)
        {
            string? enumId = null;
            if (kind == ScalarKind.Enum)
            {
                enumId = RegisterEnum((INamedTypeSymbol)underlying, context);
            }

            return new CodecFieldModel(member.Name, wire, kind, fullName, nullableValue, nullableReference, position, enumId, !underlying.IsValueType);
        }

        if (underlying is INamedTypeSymbol { TypeKind: TypeKind.Class or TypeKind.Struct, IsGenericType: false } nested
            && nested.SpecialType == SpecialType.None
            && !nested.AllInterfaces.Any(i => i.OriginalDefinition.SpecialType == SpecialType.System_Collections_Generic_IEnumerable_T))
        {
            var nestedId = SchemaParser.Identifier(nested);
            if (context.InProgress.Contains(nestedId) || depth >= MaxNesting)
            {
                context.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.RecursiveRecord, Symbols.IdentifierLocation(member) ?? context.Location, member.Name, Symbols.DisplayName(nested.WithNullableAnnotation(NullableAnnotation.NotAnnotated))));
                return null;
            }

            if (!context.Nested.ContainsKey(nestedId))
            {
                context.Nested[nestedId] = ReadObject(nested, NamingOf(nested, naming), context, depth + 1);
            }

            return new CodecFieldModel(member.Name, wire, null, fullName, nullableValue, nullableReference, position, nestedId, !underlying.IsValueType);
        }

        context.Diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedFieldType, Symbols.IdentifierLocation(member) ?? context.Location, member.Name, Symbols.DisplayName(type)));
        return null;
    }

    private static string RegisterEnum(INamedTypeSymbol type, Context context)
    {
        var id = SchemaParser.Identifier(type);
        if (!context.Enums.ContainsKey(id))
        {
            var members = type.GetMembers().OfType<IFieldSymbol>()
                .Where(f => f.IsConst && f.HasConstantValue)
                .Select(f => new CodecEnumMember(f.Name, System.Convert.ToString(f.ConstantValue, CultureInfo.InvariantCulture)!))
                .ToEquatableArray();
            var isFlags = type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "System.FlagsAttribute");
            context.Enums[id] = new CodecEnumModel(Symbols.FullName(type), id, type.EnumUnderlyingType!.ToDisplayString(), isFlags, members);
        }

        return id;
    }

    /// <summary>Public instance fields and auto-properties, in declaration order (base types first); computed properties are left out.</summary>
    private static List<ISymbol> CodecMembers(INamedTypeSymbol type)
    {
        var chain = new List<INamedTypeSymbol>();
        for (var current = type; current is not null && current.SpecialType is not (SpecialType.System_Object or SpecialType.System_ValueType); current = current.BaseType)
        {
            chain.Insert(0, current);
        }

        var members = new List<ISymbol>();
        foreach (var declaring in chain)
        {
            var backing = new HashSet<ISymbol>(declaring.GetMembers().OfType<IFieldSymbol>().Where(f => f.AssociatedSymbol is not null).Select(f => f.AssociatedSymbol!), SymbolEqualityComparer.Default);
            foreach (var member in declaring.GetMembers())
            {
                switch (member)
                {
                    case IPropertySymbol { IsStatic: false, IsIndexer: false, DeclaredAccessibility: Accessibility.Public, GetMethod.DeclaredAccessibility: Accessibility.Public } property
                        when property.Name != "EqualityContract" && (backing.Contains(property) || property.DeclaringSyntaxReferences.Length == 0):
                    case IFieldSymbol { IsStatic: false, IsConst: false, DeclaredAccessibility: Accessibility.Public, IsImplicitlyDeclared: false }:
                        if (!members.Any(m => m.Name == member.Name))
                        {
                            members.Add(member);
                        }

                        break;
                }
            }
        }

        return members;
    }

    /// <summary>The constructor a decoder calls: the public one with the most parameters that all match members.</summary>
    internal static IMethodSymbol? ChooseConstructor(INamedTypeSymbol type, List<ISymbol> members)
    {
        return type.InstanceConstructors
            .Where(c => c.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal && c.Parameters.Length > 0)
            .Where(c => c.Parameters.All(p => members.Any(m => string.Equals(m.Name, p.Name, System.StringComparison.OrdinalIgnoreCase))))
            .Where(c => !(c.Parameters.Length == 1 && SymbolEqualityComparer.Default.Equals(c.Parameters[0].Type, type)))
            .OrderByDescending(c => c.Parameters.Length)
            .FirstOrDefault();
    }

    /// <summary>The C# expression of <paramref name="parameter"/>'s default value, valid in generated code; null when it has none.</summary>
    private static string? DefaultLiteral(IParameterSymbol parameter)
    {
        if (!parameter.HasExplicitDefaultValue)
        {
            return null;
        }

        var type = parameter.Type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable ? nullable.TypeArguments[0] : parameter.Type;
        return parameter.ExplicitDefaultValue switch
        {
            null => parameter.Type.IsValueType && type.Equals(parameter.Type, SymbolEqualityComparer.Default) ? "default" : "null",
            string text => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(text, quote: true),
            char character => Microsoft.CodeAnalysis.CSharp.SymbolDisplay.FormatLiteral(character, quote: true),
            bool flag => flag ? "true" : "false",
            double number => double.IsNaN(number) ? "global::System.Double.NaN"
                : double.IsInfinity(number) ? (number > 0 ? "global::System.Double.PositiveInfinity" : "global::System.Double.NegativeInfinity")
                : number.ToString("R", CultureInfo.InvariantCulture) + "d",
            float number => float.IsNaN(number) ? "global::System.Single.NaN"
                : float.IsInfinity(number) ? (number > 0 ? "global::System.Single.PositiveInfinity" : "global::System.Single.NegativeInfinity")
                : number.ToString("R", CultureInfo.InvariantCulture) + "f",
            decimal number => number.ToString(CultureInfo.InvariantCulture) + "m",
            // integers, and enums (whose default is their underlying number)
            var number => $"({Symbols.FullName(type.WithNullableAnnotation(NullableAnnotation.NotAnnotated))})({System.Convert.ToString(number, CultureInfo.InvariantCulture)})",
        };
    }

    internal static int IndexOfParameter(IMethodSymbol constructor, string memberName)
    {
        for (var i = 0; i < constructor.Parameters.Length; i++)
        {
            if (string.Equals(constructor.Parameters[i].Name, memberName, System.StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }

    internal static bool Settable(ISymbol member) => member switch
    {
        IFieldSymbol field => !field.IsReadOnly,
        IPropertySymbol property => property.SetMethod is { DeclaredAccessibility: Accessibility.Public or Accessibility.Internal },
        _ => false,
    };

    private static string WireName(ISymbol member, IMethodSymbol? constructor, FieldNaming naming)
    {
        var explicitName = FieldAttributeName(member)
            ?? (constructor is null ? null : constructor.Parameters.Where(p => string.Equals(p.Name, member.Name, System.StringComparison.OrdinalIgnoreCase)).Select(FieldAttributeName).FirstOrDefault(n => n is not null));
        return explicitName ?? Apply(naming, member.Name);
    }

    private static string? FieldAttributeName(ISymbol symbol)
        => symbol.GetAttributes()
            .FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == "Compiled.FieldAttribute")?
            .ConstructorArguments.FirstOrDefault().Value as string;

    /// <summary>How wire names are derived from member names: the values of <c>Compiled.FieldNaming</c>, which the attribute carries.</summary>
    private enum FieldNaming
    {
        Exact = 0,
        CamelCase = 1,
        SnakeCase = 2,
    }

    /// <summary>The naming of a [Record] type's attribute; a nested type without one names its fields as the type around it.</summary>
    private static FieldNaming NamingOf(INamedTypeSymbol type, FieldNaming inherited = FieldNaming.Exact)
    {
        var attribute = type.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == "Compiled.RecordAttribute");
        return attribute?.NamedArguments.FirstOrDefault(a => a.Key == "Naming").Value.Value is int value && System.Enum.IsDefined(typeof(FieldNaming), value)
            ? (FieldNaming)value
            : inherited;
    }

    private static string Apply(FieldNaming naming, string name) => naming switch
    {
        FieldNaming.CamelCase => char.ToLowerInvariant(name[0]) + name.Substring(1),
        FieldNaming.SnakeCase => Snake(name),
        _ => name,
    };

    private static string Snake(string name)
    {
        var result = new StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                var boundary = i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1])));
                if (boundary)
                {
                    result.Append('_');
                }

                result.Append(char.ToLowerInvariant(c));
            }
            else
            {
                result.Append(c);
            }
        }

        return result.ToString();
    }
}
