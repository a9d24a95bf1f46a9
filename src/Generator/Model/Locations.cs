using System.Linq;

namespace Compiled.Generator.Model;

/// <summary>
/// The generator's view of a model: the same values without any <see cref="LocationInfo"/>. Only the analyzer reports
/// diagnostics, so only it needs to know where a declaration is; in the generator's cached steps a position would make
/// every edit above a declaration (a blank line, a comment) a new model, and re-run planning and emitting for output
/// that cannot have changed. Diagnostics stay, without their location: the emitter needs to know that there are errors,
/// and which, to write the stand-ins that throw.
/// </summary>
internal static class Locations
{
    public static PipelineModel WithoutLocations(this PipelineModel model) => model with
    {
        Location = null,
        Stages = model.Stages.Select(s => s with { Location = null }).ToEquatableArray(),
        Diagnostics = model.Diagnostics.WithoutLocations(),
        LateData = model.LateData.Select(l => l with { Location = null }).ToEquatableArray(),
    };

    public static OperatorClassModel WithoutLocations(this OperatorClassModel model) => model with
    {
        Location = null,
        Diagnostics = model.Diagnostics.WithoutLocations(),
    };

    public static CodecModel WithoutLocations(this CodecModel model) => model with
    {
        Location = null,
        Diagnostics = model.Diagnostics.WithoutLocations(),
    };

    private static EquatableArray<DiagnosticInfo> WithoutLocations(this EquatableArray<DiagnosticInfo> diagnostics)
        => diagnostics.Select(d => d with { Location = null }).ToEquatableArray();
}
