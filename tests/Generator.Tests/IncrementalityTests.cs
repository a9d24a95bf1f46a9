using Compiled.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Compiled.Generator.Tests;

/// <summary>The generator's cached steps stay cached across unrelated edits, and react to relevant ones.</summary>
public sealed class IncrementalityTests
{
    private static readonly string[] TrackedSteps = [TrackingNames.PipelineModel, TrackingNames.PipelinePlan, TrackingNames.OperatorModel];

    [Fact]
    public void An_unrelated_edit_leaves_every_output_cached()
    {
        var compilation = GeneratorHarness.Compile(Scenarios.ReusableOperator);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Demo; public static class Unrelated { public static int Answer => 42; }", GeneratorHarness.ParseOptions, path: "Unrelated.cs"));
        driver = driver.RunGenerators(edited);
        var result = driver.GetRunResult().Results.Single();

        Assert.NotEmpty(result.TrackedOutputSteps);
        foreach (var (name, steps) in result.TrackedOutputSteps)
        {
            foreach (var output in steps.SelectMany(s => s.Outputs))
            {
                Assert.True(output.Reason == IncrementalStepRunReason.Cached, $"Output step '{name}' was {output.Reason}, expected Cached");
            }
        }

        foreach (var name in TrackedSteps)
        {
            foreach (var output in result.TrackedSteps[name].SelectMany(s => s.Outputs))
            {
                Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"Step '{name}' was {output.Reason}, expected Cached or Unchanged");
            }
        }
    }

    [Fact]
    public void Changing_an_operator_signature_regenerates_the_pipeline()
    {
        var compilation = GeneratorHarness.Compile(Scenarios.ReusableOperator);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var tree = compilation.SyntaxTrees.Single();
        var changed = tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(
            tree.ToString().Replace("public Person Map(Person person) => person with { Age = person.Age + 1 };", "public Person Map(in Person person) => person with { Age = person.Age + 1 };", StringComparison.Ordinal)));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(tree, changed));
        var result = driver.GetRunResult().Results.Single();

        var models = result.TrackedSteps[TrackingNames.PipelineModel].SelectMany(s => s.Outputs).ToList();
        Assert.Contains(models, o => o.Reason == IncrementalStepRunReason.Modified);
    }
}
