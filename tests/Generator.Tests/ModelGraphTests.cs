using System.Collections;
using System.Reflection;
using Compiled.Generator.Model;
using Compiled.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Tests;

/// <summary>
/// Cached models must hold only values: a symbol, syntax node, compilation or location would pin a whole
/// compilation in the cache and break incrementality. This walks every cached model graph and fails on one. The
/// generator's models hold no <see cref="LocationInfo"/> either: a position would make every edit above a declaration a
/// new model (the analyzer, which reports diagnostics, is the one that needs them).
/// </summary>
public sealed class ModelGraphTests
{
    private static readonly Type[] Banned = [typeof(ISymbol), typeof(SyntaxNode), typeof(Compilation), typeof(Location), typeof(SemanticModel), typeof(SyntaxTree), typeof(LocationInfo)];

    [Theory]
    [InlineData(Scenarios.MapOnly)]
    [InlineData(Scenarios.FlatMap)]
    [InlineData(Scenarios.ReusableOperator)]
    [InlineData(Scenarios.InstanceState)]
    [InlineData(Scenarios.Codecs)]
    [InlineData(Scenarios.StreamJoin)]
    [InlineData(WithErrors)]
    public void Cached_models_reach_no_roslyn_objects(string source)
    {
        var run = GeneratorHarness.Run(source);
        var steps = run.Result.Results.Single().TrackedSteps;
        var visited = 0;
        foreach (var name in new[] { TrackingNames.PipelineModel, TrackingNames.PipelinePlan, TrackingNames.OperatorModel, TrackingNames.CodecModel })
        {
            if (!steps.TryGetValue(name, out var runs))
            {
                continue; // no operator classes or records in this scenario
            }

            foreach (var (value, _) in runs.SelectMany(s => s.Outputs))
            {
                visited += Walk(value, name, new HashSet<object>(ReferenceEqualityComparer.Instance));
            }
        }

        Assert.True(visited > 10, "the walk should have visited the model graph");
    }

    /// <summary>A pipeline and a record with errors: their diagnostics are cached too, without locations.</summary>
    private const string WithErrors = """
        using Compiled;
        using Compiled.Connectors;

        [Record]
        public partial record struct Hit(string Path, System.Collections.Generic.List<int> Codes);

        [Pipeline]
        public sealed partial class Broken
        {
            [Source] CollectionSource<int> In { get; } = new(1, 2);
            [Transform] static string Describe(long value) => value.ToString();
            [Sink] CollectionSink<string> Out { get; } = new();
        }
        """;

    [Fact]
    public void The_walk_finds_a_banned_object_when_there_is_one()
    {
        var compilation = GeneratorHarness.Compile(Scenarios.MapOnly);
        var error = Assert.ThrowsAny<Exception>(() => Walk(new { Holder = compilation }, "probe", new HashSet<object>(ReferenceEqualityComparer.Instance)));
        Assert.Contains("Compilation", error.Message, StringComparison.Ordinal);
        var located = Assert.ThrowsAny<Exception>(() => Walk(new { Stage = new LocationInfo("P.cs", default, default) }, "probe", new HashSet<object>(ReferenceEqualityComparer.Instance)));
        Assert.Contains("LocationInfo", located.Message, StringComparison.Ordinal);
    }

    private static int Walk(object? value, string path, HashSet<object> seen)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum)
        {
            return 1;
        }

        foreach (var banned in Banned)
        {
            Assert.False(banned.IsInstanceOfType(value), $"{path} holds a {banned.Name} ({value.GetType().Name})");
        }

        if (!value.GetType().IsValueType && !seen.Add(value))
        {
            return 0;
        }

        var count = 1;
        if (value is IEnumerable items)
        {
            var i = 0;
            foreach (var item in items)
            {
                count += Walk(item, $"{path}[{i++}]", seen);
            }

            return count;
        }

        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length == 0 && property.Name != "EqualityContract")
            {
                count += Walk(property.GetValue(value), $"{path}.{property.Name}", seen);
            }
        }

        return count;
    }
}
