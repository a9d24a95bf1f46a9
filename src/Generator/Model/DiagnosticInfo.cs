namespace Compiled.Generator.Model;

/// <summary>A diagnostic to report, as values: descriptor id, where, and the message arguments.</summary>
internal sealed record DiagnosticInfo(string Id, LocationInfo? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(string id, LocationInfo? location, params string[] arguments)
        => new(id, location, arguments.ToEquatableArray());
}
