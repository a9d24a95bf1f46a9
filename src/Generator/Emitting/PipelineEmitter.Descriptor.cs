using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>The plan descriptor (<c>CompiledPlan</c>): the stages and the loops they were fused into, for tools and the runtime.</summary>
internal static partial class PipelineEmitter
{
    private static void EmitDescriptor(SourceWriter writer, PipelinePlan plan)
    {
        var model = plan.Model;
        writer.Line($"/// <summary>The compiled plan of pipeline '{Xml(model.PipelineName)}': its stages, and the loops they were fused into.</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Line($"public static {Names.Descriptor} CompiledPlan {{ get; }} = new {Names.Descriptor}(");
        writer.Indent();
        writer.Line(SourceWriter.Literal(model.PipelineName) + ",");
        writer.Line(SourceWriter.Literal(model.FullName.Replace("global::", "")) + ",");
        writer.Open($"new {Names.StageDescriptor}[]");
        foreach (var stage in plan.Chain)
        {
            var s = stage.Stage;
            var input = stage.Index == 0 ? "null" : SourceWriter.Literal((s.InputType ?? plan.Chain[stage.Input].FlowType).DisplayName); // a join's source reads the stream of both types
            var second = stage.SecondInput >= 0 ? ", secondInput: " + SourceWriter.Number(stage.SecondInput) : "";
            writer.Line($"new {Names.StageDescriptor}({SourceWriter.Number(stage.Index)}, {SourceWriter.Literal(s.MemberName)}, {Names.StageKind}.{Kind(s.Shape)}, {input}, {SourceWriter.Literal(stage.FlowType.DisplayName)}, {SourceWriter.Literal(Implementation(s))}, {SourceWriter.Number(stage.Segment)}, {SourceWriter.Number(stage.Input)}{second}),");
        }

        writer.Close(",");
        writer.Open($"new {Names.SegmentDescriptor}[]");
        foreach (var segment in plan.Segments)
        {
            writer.Line($"new {Names.SegmentDescriptor}({SourceWriter.Number(segment.Index)}, {SourceWriter.Number(segment.FirstStage)}, {SourceWriter.Number(segment.LastStage)}, {SourceWriter.Literal(segment.Reason)}),");
        }

        writer.Close(",");
        writer.Line($"global::Compiled.ErrorPolicy.{model.ErrorPolicy});");
        writer.Unindent();
    }

    private static string Kind(StageShape shape) => shape switch
    {
        StageShape.Source => "Source",
        StageShape.Map => "Map",
        StageShape.Filter => "Filter",
        StageShape.FlatMap => "FlatMap",
        StageShape.KeyBy => "KeyBy",
        StageShape.Window => "Window",
        StageShape.Lookup => "Lookup",
        StageShape.Async => "Async",
        StageShape.Join => "Join",
        _ => "Sink",
    };

    private static string Implementation(StageModel stage)
    {
        if (stage.MemberKind == MemberKind.Method)
        {
            return stage.OperatorMethod!;
        }

        return stage.OperatorMethod is null
            ? stage.ComponentType!.DisplayName
            : stage.ComponentType!.DisplayName + "." + stage.OperatorMethod;
    }
}
