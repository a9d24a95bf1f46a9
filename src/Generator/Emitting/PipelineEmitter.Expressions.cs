using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>The expressions and names the parts share: calls to stages, member access, type names, schema references.</summary>
internal static partial class PipelineEmitter
{
    /// <summary>The window, lookup or join a key selector feeds (its one reader).</summary>
    private static StageModel WindowOf(PipelinePlan plan, PlannedStage keyBy) => plan.Chain[keyBy.Readers[0]].Stage;

    /// <summary>What a keyed stage is called in comments.</summary>
    private static string KindName(StageShape shape) => shape switch
    {
        StageShape.Lookup => "lookup",
        StageShape.Join => "join",
        _ => "window",
    };

    /// <summary><c>Keyed&lt;TKey, TIn&gt;</c> for a key selector: the key and input types of the window or lookup after it.</summary>
    private static string KeyedType(PipelinePlan plan, PlannedStage keyBy)
    {
        var window = WindowOf(plan, keyBy);
        return $"{Names.Keyed}<{window.Key!.FullName}, {window.InputType!.FullName}>";
    }

    /// <summary>What the loop before an asynchronous transform writes: its records with their event time (the key is unused: the edge is forward).</summary>
    private static string AsyncEntryType(StageModel stage) => $"{Names.Keyed}<int, {stage.InputType!.FullName}>";

    private static bool UsesPipelineLocal(StageModel stage)
        => stage.NeedsPipelineInstance && (stage.MemberKind == MemberKind.Method || stage.Storage is OperatorStorage.HoistedStruct or OperatorStorage.ReadOnlyStruct);

    /// <summary>The call expression of a stage's operator on <paramref name="argument"/>; an instance method is called on <paramref name="instance"/>.</summary>
    private static string Call(PipelineModel model, StageModel stage, string name, string argument, string? extra = null, string instance = "pipeline")
    {
        var arguments = extra is null ? argument : argument + ", " + extra;
        if (stage.MemberKind == MemberKind.Method)
        {
            var target = stage.OperatorMethodIsStatic ? model.FullName : instance;
            return $"{target}.{stage.OperatorMethod}({arguments})";
        }

        var receiver = stage.Storage switch
        {
            OperatorStorage.None => stage.ComponentType!.Identity,
            OperatorStorage.StaticStruct => model.FullName + "." + stage.MemberName,
            _ => name + "Op",
        };
        return $"{receiver}.{stage.OperatorMethod}({arguments})";
    }

    /// <summary>How to read a property/field stage: statically on the type, or on a pipeline object.</summary>
    private static string Access(PipelineModel model, StageModel stage, string instance)
        => (stage.IsStatic ? model.FullName : instance) + "." + stage.MemberName;

    /// <summary>The instance of the generated schema <paramref name="identifier"/> the plan chose, or <c>null</c>.</summary>
    private static string SchemaRef(string? identifier) => identifier is null ? "null" : SchemaEmitter.ClassName(identifier) + ".Instance";

    private static string Xml(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
