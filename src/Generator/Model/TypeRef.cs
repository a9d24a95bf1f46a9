namespace Compiled.Generator.Model;

/// <summary>
/// A type as the emitter needs it: the fully qualified name to write (<c>global::Ns.Person</c>, with nullable
/// annotations), its identity (the same without annotations), a short name for messages, and the identities of the
/// types it converts to implicitly by reference (its base types and interfaces) — what the planner needs to
/// type-check the chain without Roslyn.
/// </summary>
internal sealed record TypeRef(string FullName, string Identity, string DisplayName, bool IsValueType, EquatableArray<string> ConvertibleTo)
{
    /// <summary>A <c>Nullable&lt;T&gt;</c>.</summary>
    public bool IsNullableValueType { get; init; }

    /// <summary>Whether a value of the type can be null: a reference type (annotated or not: nothing stops a null at run time) or a nullable value type.</summary>
    public bool CanBeNull => !IsValueType || IsNullableValueType;

    public bool IsAssignableTo(TypeRef target)
        => Identity == target.Identity || ConvertibleTo.Items.Contains(target.Identity);
}
