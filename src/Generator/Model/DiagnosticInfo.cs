using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Model;

/// <summary>
/// A diagnostic to report, as values: its descriptor, where, and the message arguments. The descriptor is one of the
/// static <c>DiagnosticDescriptors</c>: immutable, compilation-independent and equal by value, so a cached model may
/// hold it (as System.Text.Json's generator does) — it pins nothing, unlike a symbol or a <see cref="Location"/>.
/// </summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, LocationInfo? Location, EquatableArray<string> Arguments)
{
    /// <summary>The descriptor's ID (<c>CMPL0104</c>), for messages and tests.</summary>
    public string Id => Descriptor.Id;

    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, LocationInfo? location, params string[] arguments)
        => new(descriptor, location, arguments.ToEquatableArray());
}
