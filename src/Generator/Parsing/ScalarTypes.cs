using System.Collections.Generic;
using System.Runtime.CompilerServices;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Parsing;

/// <summary>
/// The one classifier of scalar types, shared by the codec and schema parsers: special types by
/// <see cref="SpecialType"/>, the others by symbol against a set resolved once per compilation (not by display name,
/// which a type of the same name in another namespace or assembly would also match).
/// </summary>
internal sealed class ScalarTypes
{
    private static readonly ConditionalWeakTable<Compilation, ScalarTypes> Cache = new();

    private readonly Dictionary<INamedTypeSymbol, ScalarKind> _known = new(SymbolEqualityComparer.Default);
    private readonly HashSet<INamedTypeSymbol> _byteMemories = new(SymbolEqualityComparer.Default);

    private ScalarTypes(Compilation compilation)
    {
        Add(compilation, "System.DateTimeOffset", ScalarKind.DateTimeOffset);
        Add(compilation, "System.TimeSpan", ScalarKind.TimeSpan);
        Add(compilation, "System.DateOnly", ScalarKind.DateOnly);
        Add(compilation, "System.TimeOnly", ScalarKind.TimeOnly);
        Add(compilation, "System.Guid", ScalarKind.Guid);
        Add(compilation, "Compiled.Utf8Text", ScalarKind.Utf8Text);
        _byteMemories.UnionWith(compilation.GetTypesByMetadataName("System.ReadOnlyMemory`1"));
        _byteMemories.UnionWith(compilation.GetTypesByMetadataName("System.Memory`1"));
    }

    /// <summary>The classifier of <paramref name="compilation"/>'s types, made once per compilation.</summary>
    public static ScalarTypes For(Compilation compilation) => Cache.GetValue(compilation, static c => new ScalarTypes(c));

    /// <summary>The scalar kind of <paramref name="type"/>, or null when it is not a scalar (a record, a collection…).</summary>
    public ScalarKind? Classify(ITypeSymbol type)
    {
        switch (type.SpecialType)
        {
            case SpecialType.System_Boolean: return ScalarKind.Boolean;
            case SpecialType.System_Byte: return ScalarKind.Byte;
            case SpecialType.System_SByte: return ScalarKind.SByte;
            case SpecialType.System_Int16: return ScalarKind.Int16;
            case SpecialType.System_UInt16: return ScalarKind.UInt16;
            case SpecialType.System_Int32: return ScalarKind.Int32;
            case SpecialType.System_UInt32: return ScalarKind.UInt32;
            case SpecialType.System_Int64: return ScalarKind.Int64;
            case SpecialType.System_UInt64: return ScalarKind.UInt64;
            case SpecialType.System_Single: return ScalarKind.Single;
            case SpecialType.System_Double: return ScalarKind.Double;
            case SpecialType.System_Decimal: return ScalarKind.Decimal;
            case SpecialType.System_Char: return ScalarKind.Char;
            case SpecialType.System_String: return ScalarKind.String;
            case SpecialType.System_DateTime: return ScalarKind.DateTime;
        }

        switch (type)
        {
            case { TypeKind: TypeKind.Enum }:
                return ScalarKind.Enum;
            case IArrayTypeSymbol { ElementType.SpecialType: SpecialType.System_Byte }:
                return ScalarKind.Bytes;
            case INamedTypeSymbol { IsGenericType: true, TypeArguments.Length: 1 } generic
                when generic.TypeArguments[0].SpecialType == SpecialType.System_Byte && _byteMemories.Contains(generic.OriginalDefinition):
                return ScalarKind.Bytes;
            case INamedTypeSymbol named when _known.TryGetValue(named.OriginalDefinition, out var kind):
                return kind;
            default:
                return null;
        }
    }

    private void Add(Compilation compilation, string metadataName, ScalarKind kind)
    {
        foreach (var type in compilation.GetTypesByMetadataName(metadataName))
        {
            _known[type] = kind;
        }
    }
}
