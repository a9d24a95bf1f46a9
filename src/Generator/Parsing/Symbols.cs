using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Generator.Parsing;

/// <summary>Helpers that turn symbols into model values. The only place, with the parsers, that touches Roslyn symbols.</summary>
internal static class Symbols
{
    private static readonly SymbolDisplayFormat Annotated = SymbolDisplayFormat.FullyQualifiedFormat
        .AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    private static readonly SymbolDisplayFormat Identity = SymbolDisplayFormat.FullyQualifiedFormat;

    private static readonly SymbolDisplayFormat Short = SymbolDisplayFormat.MinimallyQualifiedFormat;

    public static string FullName(ITypeSymbol type) => type.ToDisplayString(Annotated);

    public static string IdentityName(ITypeSymbol type) => type.WithNullableAnnotation(NullableAnnotation.NotAnnotated).ToDisplayString(Identity);

    public static string DisplayName(ITypeSymbol type) => type.ToDisplayString(Short);

    public static TypeRef ToTypeRef(ITypeSymbol type)
    {
        var convertible = new List<string>();
        for (var baseType = type.BaseType; baseType is not null; baseType = baseType.BaseType)
        {
            convertible.Add(IdentityName(baseType));
        }

        convertible.AddRange(type.AllInterfaces.Select(IdentityName));
        return new TypeRef(FullName(type), IdentityName(type), DisplayName(type), type.IsValueType, convertible.ToEquatableArray())
        {
            IsNullableValueType = type.OriginalDefinition.SpecialType == SpecialType.System_Nullable_T,
        };
    }

    /// <summary>
    /// The expression of the checkpoint codec for values of <paramref name="type"/> (a window's key or accumulator), or
    /// null when state of that type cannot be checkpointed: strings, types without references (written as their
    /// bytes), value tuples of two or three of those, and partial <c>[Record]</c> types (their generated binary codec).
    /// </summary>
    public static string? StateCodec(ITypeSymbol type)
    {
        const string codecs = "global::Compiled.Runtime.CompilerServices.StateCodecs";
        if (type.SpecialType == SpecialType.System_String)
        {
            return codecs + ".Utf8";
        }

        if (type.IsUnmanagedType)
        {
            return $"{codecs}.Unmanaged<{FullName(type)}>()";
        }

        if (type is INamedTypeSymbol { IsTupleType: true } tuple && tuple.TupleElements.Length is 2 or 3)
        {
            var elements = new List<string>();
            foreach (var element in tuple.TupleElements)
            {
                if (StateCodec(element.Type) is not { } codec)
                {
                    return null;
                }

                elements.Add(codec);
            }

            return $"{codecs}.Tuple({string.Join(", ", elements)})";
        }

        if (type is INamedTypeSymbol named && !type.IsAnonymousType && IsPartial(named)
            && named.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == KnownNames.RecordAttribute))
        {
            return $"{codecs}.Record<{FullName(type)}, {IdentityName(type)}.BinaryCodec>()";
        }

        return null;
    }

    /// <summary>Whether <paramref name="member"/> is marked with the attribute — on itself, or on the positional record parameter it comes from.</summary>
    public static bool IsMarked(INamedTypeSymbol type, ISymbol member, string metadataName)
        => HasAttribute(member, metadataName)
            || type.InstanceConstructors.SelectMany(c => c.Parameters).Any(p => p.Name == member.Name && HasAttribute(p, metadataName));

    public static bool HasAttribute(ISymbol symbol, string metadataName)
        => symbol.GetAttributes().Any(a => a.AttributeClass is { } c && IsNamed(c, metadataName));

    public static bool IsNamed(INamedTypeSymbol type, string metadataName)
    {
        var original = type.OriginalDefinition;
        return original.MetadataName == LastSegment(metadataName)
            && original.ContainingNamespace?.ToDisplayString() == Namespace(metadataName);
    }

    /// <summary>The type arguments of every implementation of the generic interface <paramref name="metadataName"/> by <paramref name="type"/>.</summary>
    public static List<ITypeSymbol> InterfaceArguments(ITypeSymbol type, string metadataName)
    {
        var result = new List<ITypeSymbol>();
        IEnumerable<INamedTypeSymbol> candidates = type.AllInterfaces;
        if (type is INamedTypeSymbol { TypeKind: TypeKind.Interface } self)
        {
            candidates = candidates.Prepend(self);
        }

        foreach (var candidate in candidates)
        {
            if (IsNamed(candidate, metadataName) && candidate.TypeArguments.Length == 1)
            {
                result.Add(candidate.TypeArguments[0]);
            }
        }

        return result;
    }

    public static bool IsPartial(INamedTypeSymbol type) => type.DeclaringSyntaxReferences.Length > 0
        && type.DeclaringSyntaxReferences.All(r => r.GetSyntax() is TypeDeclarationSyntax t && t.Modifiers.Any(SyntaxKind.PartialKeyword));

    public static string Keyword(INamedTypeSymbol type) => type switch
    {
        { IsRecord: true, TypeKind: TypeKind.Struct } => "record struct",
        { IsRecord: true } => "record",
        { TypeKind: TypeKind.Struct } => "struct",
        { TypeKind: TypeKind.Interface } => "interface",
        _ => "class",
    };

    public static EquatableArray<ContainingTypeModel> ContainingTypes(INamedTypeSymbol type)
    {
        var chain = new List<ContainingTypeModel>();
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            chain.Insert(0, new ContainingTypeModel(Keyword(outer), outer.Name + TypeParameterList(outer)));
        }

        return chain.ToEquatableArray();
    }

    public static string TypeParameterList(INamedTypeSymbol type)
        => type.TypeParameters.Length == 0 ? "" : "<" + string.Join(", ", type.TypeParameters.Select(p => p.Name)) + ">";

    public static string NamespaceOf(INamedTypeSymbol type)
        => type.ContainingNamespace is { IsGlobalNamespace: false } ns ? ns.ToDisplayString() : "";

    /// <summary>The containing types that are not partial (a nested generated partial needs all of them partial).</summary>
    public static IEnumerable<INamedTypeSymbol> NonPartialContainers(INamedTypeSymbol type)
    {
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (!IsPartial(outer))
            {
                yield return outer;
            }
        }
    }

    public static LocationInfo? IdentifierLocation(ISymbol symbol)
    {
        var syntax = symbol.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax();
        return syntax switch
        {
            BaseTypeDeclarationSyntax t => LocationInfo.From(t.Identifier),
            MethodDeclarationSyntax m => LocationInfo.From(m.Identifier),
            PropertyDeclarationSyntax p => LocationInfo.From(p.Identifier),
            VariableDeclaratorSyntax v => LocationInfo.From(v.Identifier),
            _ => LocationInfo.From(symbol.Locations.FirstOrDefault()),
        };
    }

    private static string LastSegment(string metadataName) => metadataName.Substring(metadataName.LastIndexOf('.') + 1);

    private static string Namespace(string metadataName) => metadataName.Substring(0, metadataName.LastIndexOf('.'));
}
