using System.Linq;
using Compiled.Generator.Diagnostics;

namespace Compiled.Generator.Model;

/// <summary>A <c>[Record]</c> type whose codecs the generator writes.</summary>
internal sealed record CodecModel(
    string Namespace,
    string TypeName,
    string Keyword,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    bool IsPartial,
    CodecObjectModel Root,
    EquatableArray<CodecObjectModel> Nested,
    EquatableArray<CodecEnumModel> Enums,
    LocationInfo? Location,
    EquatableArray<DiagnosticInfo> Diagnostics,
    bool LenientJsonNumbers = false)
{
    /// <summary>Whether codecs can be added to the type: it and every type around it are partial (else CMPL0001), and it is not generic (CMPL0205).</summary>
    public bool CanHostCodecs => IsPartial && !Diagnostics.Any(d => d.Descriptor == DiagnosticDescriptors.MissingPartial || d.Descriptor == DiagnosticDescriptors.GenericRecord);
}

/// <summary>How a decoder builds a value: which constructor arguments, which members by initializer.</summary>
internal enum Construction
{
    /// <summary>A constructor takes some fields; the others are set by an object initializer.</summary>
    Constructor,

    /// <summary>A parameterless constructor and an object initializer.</summary>
    Initializer,
}

/// <summary>An object type (the record, or a nested one) with the fields codecs read and write.</summary>
/// <param name="Identifier">A C# identifier unique to the type, for naming its generated read/write methods.</param>
internal sealed record CodecObjectModel(string FullName, string DisplayName, string Identifier, bool IsValueType, Construction Construction, EquatableArray<CodecFieldModel> Fields);

/// <summary>One field of an object type.</summary>
/// <param name="Kind">The scalar kind (one the codecs carry, <see cref="ScalarKinds.InCodecs"/>), or null for a nested object.</param>
/// <param name="ValueTypeFullName">The field's type without nullability (for a nullable value type, the underlying type).</param>
/// <param name="IsNullableValue">A <c>Nullable&lt;T&gt;</c> field.</param>
/// <param name="IsNullableReference">A reference field that may hold null (an annotated reference, or a nested class not annotated as non-null).</param>
/// <param name="ConstructorPosition">The constructor parameter this field is passed as, or -1 when it is set by initializer.</param>
/// <param name="Nested">For a nested object or an enum: the identifier of the nested object or enum model.</param>
/// <param name="IsReferenceType">Whether the field's type is a reference type (a string, a nested class).</param>
/// <param name="Default">The C# expression of the constructor parameter's default value (<c>ChangeKind Kind = ChangeKind.Insert</c>), or null when it has none: what a JSON field that is missing decodes to.</param>
internal sealed record CodecFieldModel(
    string MemberName,
    string WireName,
    ScalarKind? Kind,
    string ValueTypeFullName,
    bool IsNullableValue,
    bool IsNullableReference,
    int ConstructorPosition,
    string? Nested,
    bool IsReferenceType,
    string? Default = null)
{
    public bool IsOptional => IsNullableValue || IsNullableReference;

    /// <summary>Whether a JSON object without this field is malformed: the field is neither nullable nor has a default.</summary>
    public bool IsRequired => !IsOptional && Default is null;

    /// <summary>A nested object (a record type), written as an object inside the record.</summary>
    public bool IsNested => Kind is null;
}

/// <summary>An enum used by a field: written by name.</summary>
internal sealed record CodecEnumModel(string FullName, string Identifier, string UnderlyingType, bool IsFlags, EquatableArray<CodecEnumMember> Members);

/// <summary>One named enum value.</summary>
internal sealed record CodecEnumMember(string Name, string Value);
