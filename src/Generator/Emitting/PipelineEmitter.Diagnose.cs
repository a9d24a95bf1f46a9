using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Emitting;

/// <summary>A segment's <c>Diagnose</c>: the replay that finds which stateless stage a failed record failed in.</summary>
internal static partial class PipelineEmitter
{
    /// <summary>
    /// Replays one failed record through the stateless prefix, each stage under watch, and returns the index of the
    /// stage that throws (or -1). Cold code: it runs only after a failure.
    /// </summary>
    private static void EmitDiagnose(SourceWriter writer, PipelinePlan plan, List<PlannedStage> prefix, Dictionary<int, string> names, string inputType)
    {
        var model = plan.Model;
        writer.Open($"protected override int Diagnose({inputType} r0)");
        if (prefix.Any(s => UsesPipelineLocal(s.Stage)))
        {
            writer.Line("var pipeline = _pipeline;");
        }

        foreach (var stage in prefix.Where(s => s.Stage.Storage == OperatorStorage.ReadOnlyStruct))
        {
            writer.Line($"var {names[stage.Index]}Op = {Access(model, stage.Stage, "pipeline")};");
        }

        foreach (var stage in prefix.Where(s => s.Stage.Storage == OperatorStorage.Reference))
        {
            writer.Line($"var {names[stage.Index]}Op = _{names[stage.Index]}Op;");
        }

        writer.Line("var stage = 0;");
        writer.Open("try");
        writer.Open("do");
        var openLoops = 0;
        var current = "r0";
        foreach (var stage in prefix)
        {
            var s = stage.Stage;
            var name = names[stage.Index];
            var next = "r" + SourceWriter.Number(stage.Index);
            var index = SourceWriter.Number(stage.Index);
            switch (s.Shape)
            {
                case StageShape.Map:
                    writer.Line($"stage = {index};");
                    writer.Line($"var {next} = {Call(model, s, name, current)};");
                    current = next;
                    break;
                case StageShape.Filter:
                    writer.Line($"stage = {index};");
                    writer.Line($"if (!{Call(model, s, name, current)}) continue;");
                    break;
                case StageShape.Source:
                    var isLeft = s.OutputType!.Identity == plan.JoinSources!.LeftType.Identity;
                    writer.Line($"if ({(isLeft ? "!" : "")}{current}.IsLeft) continue;");
                    writer.Line($"var {next} = {current}.{(isLeft ? "Left" : "Right")};");
                    current = next;
                    break;
                case StageShape.KeyBy:
                    writer.Line($"stage = {index};");
                    writer.Line(stage.KeyMayBeNull
                        ? $"if ({Call(model, s, name, current)} is null) throw new global::System.ArgumentNullException({SourceWriter.Literal(s.MemberName)});"
                        : $"_ = {Call(model, s, name, current)};");
                    break;
                case StageShape.FlatMap:
                    writer.Line($"stage = {index};");
                    writer.Line($"var {name}Replay = new {Names.RecordBuffer}<{s.OutputType!.FullName}>();");
                    writer.Line($"{Call(model, s, name, current, $"new {Names.Emitter}<{s.OutputType!.FullName}>({name}Replay)")};");
                    writer.Open($"foreach (var {next} in {name}Replay.Span)");
                    openLoops++;
                    current = next;
                    break;
            }
        }

        for (var i = 0; i < openLoops; i++)
        {
            writer.Close();
        }

        writer.Close(" while (false);");
        writer.Line("return -1;");
        writer.Close();
        writer.Open($"catch ({Names.Exception})");
        writer.Line("return stage;");
        writer.Close();
        writer.Close();
    }
}
