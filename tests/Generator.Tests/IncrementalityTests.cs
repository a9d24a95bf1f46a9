using Compiled.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Compiled.Generator.Tests;

/// <summary>The generator's cached steps stay cached across unrelated edits, and react to relevant ones.</summary>
public sealed class IncrementalityTests
{
    private static readonly string[] TrackedSteps = [TrackingNames.PipelineModel, TrackingNames.PipelinePlan, TrackingNames.OperatorModel, TrackingNames.CodecModel];

    [Theory]
    [InlineData(Scenarios.ReusableOperator)]
    [InlineData(Scenarios.Codecs)]
    public void An_unrelated_edit_leaves_every_output_cached(string source)
    {
        var compilation = GeneratorHarness.Compile(source);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        var edited = compilation.AddSyntaxTrees(CSharpSyntaxTree.ParseText("namespace Demo; public static class Unrelated { public static int Answer => 42; }", GeneratorHarness.ParseOptions, path: "Unrelated.cs"));
        driver = driver.RunGenerators(edited);
        AssertEverythingCached(driver.GetRunResult().Results.Single());
    }

    /// <summary>
    /// Typing above a declaration (a blank line, a comment) moves it but changes nothing the generator writes: the
    /// models it caches hold no locations (the analyzer reports diagnostics), so the transform yields an equal model and
    /// planning and emitting do not run again — also for a pipeline with errors, whose stand-ins name them.
    /// </summary>
    [Theory]
    [InlineData(Scenarios.ReusableOperator, "[Pipeline]", TrackingNames.PipelineModel)]
    [InlineData(Scenarios.ReusableOperator, "[Transform]", TrackingNames.OperatorModel)]
    [InlineData(Scenarios.Codecs, "[Record(", TrackingNames.CodecModel)]
    [InlineData(PipelineWithAnError, "[Pipeline]", TrackingNames.PipelineModel)]
    public void An_edit_that_only_moves_a_declaration_leaves_every_output_cached(string source, string above, string step)
    {
        var compilation = GeneratorHarness.Compile(source);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        var before = Values(driver.GetRunResult().Results.Single(), step);

        var tree = compilation.SyntaxTrees.Single();
        var text = tree.ToString();
        var at = text.IndexOf(above, StringComparison.Ordinal);
        Assert.True(at > 0, "the scenario should contain " + above);
        var moved = tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(text.Insert(at, "\n// a comment typed above the declaration\n\n")));
        driver = driver.RunGenerators(compilation.ReplaceSyntaxTree(tree, moved));
        var result = driver.GetRunResult().Results.Single();

        AssertEverythingCached(result);
        Assert.NotEmpty(before);
        Assert.Equal(before, Values(result, step)); // the model the planner and emitter receive is equal, positions and all
    }

    private const string PipelineWithAnError = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        [Pipeline]
        public sealed partial class Broken
        {
            [Source] CollectionSource<int> In { get; } = new(1, 2);
            [Transform] static string Describe(long value) => value.ToString();
            [Sink] CollectionSink<string> Out { get; } = new();
        }
        """;

    private static List<object> Values(GeneratorRunResult result, string step)
        => result.TrackedSteps[step].SelectMany(s => s.Outputs).Select(o => o.Value).ToList();

    private static void AssertEverythingCached(GeneratorRunResult result)
    {
        Assert.NotEmpty(result.TrackedOutputSteps);
        foreach (var (name, steps) in result.TrackedOutputSteps)
        {
            foreach (var output in steps.SelectMany(s => s.Outputs))
            {
                Assert.True(output.Reason == IncrementalStepRunReason.Cached, $"Output step '{name}' was {output.Reason}, expected Cached");
            }
        }

        foreach (var name in TrackedSteps.Where(result.TrackedSteps.ContainsKey)) // a scenario may have no operator classes or records
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
