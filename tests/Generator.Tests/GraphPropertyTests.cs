using System.Globalization;
using System.Reflection;
using System.Text;
using Compiled.Connectors;
using Compiled.Generator.Tests.Infrastructure;
using CsCheck;

namespace Compiled.Generator.Tests;

/// <summary>
/// Random graphs — 1 to 3 branches reading one stream, each with stateless stages and then 1 to 3 keyed stages in
/// sequence (tumbling or sliding windows, counts or sums; a window's results keyed again) — compiled by the generator
/// and run at parallelism 1 to 4 through the real runtime (exchanges, workers, watermarks), must emit exactly the
/// windows a naive reference computes with LINQ over the whole input, branch by branch.
/// </summary>
/// <remarks>
/// Each source partition reads a contiguous, time-ordered slice of the input, so no record is ever late and the
/// result does not depend on thread timing: every (key, window) comes out exactly once with its full aggregate.
/// </remarks>
public sealed class GraphPropertyTests
{
    private enum PreKind
    {
        Filter,
        Map,
    }

    private sealed record Pre(PreKind Kind, int Variant);

    private sealed record Keyed(int KeyModulus, long Size, long Slide, bool Sum);

    private sealed record Branch(Pre[] Stages, bool Tap, Keyed[] Keyed);

    private sealed record Case(Branch[] Branches, long[] Input, int Parallelism, int BatchSize)
    {
        public override string ToString()
            => $"{Branches.Length} branches [{string.Join(" | ", Branches.Select(b => $"{string.Join(",", b.Stages.Select(s => $"{s.Kind}{s.Variant}"))}{(b.Tap ? ",tap" : "")} -> {string.Join(" -> ", b.Keyed.Select(k => $"key%{k.KeyModulus} {(k.Size == k.Slide ? "tumbling" : "sliding")} {k.Size}/{k.Slide} {(k.Sum ? "sum" : "count")}"))}"))}], {Input.Length} records, parallelism {Parallelism}, batch {BatchSize}";
    }

    private static readonly string[] Filters = ["e.Value % 3 != 0", "e.Key != 2", "(e.Value & 1) == 0"];
    private static readonly Func<Ev, bool>[] FilterFunctions = [e => e.Value % 3 != 0, e => e.Key != 2, e => (e.Value & 1) == 0];
    private static readonly string[] Maps = ["e with { Value = e.Value * 2 + 1 }", "e with { Key = e.Key / 2 }", "e with { Value = e.Value % 7 }"];
    private static readonly Func<Ev, Ev>[] MapFunctions = [e => e with { Value = (e.Value * 2) + 1 }, e => e with { Key = e.Key / 2 }, e => e with { Value = e.Value % 7 }];

    private static readonly Gen<Pre> GenPre = Gen.Select(Gen.Enum<PreKind>(), Gen.Int[0, 2], (kind, variant) => new Pre(kind, variant));

    private static readonly Gen<Keyed> GenKeyed = Gen.Select(
        Gen.Int[1, 5],
        Gen.OneOf(Gen.Const(10L), Gen.Const(25L), Gen.Const(100L)),
        Gen.Bool,
        Gen.Bool,
        (modulus, size, sliding, sum) => new Keyed(modulus, sliding ? size * 2 : size, size, sum));

    private static readonly Gen<Branch> GenBranch = Gen.Select(GenPre.Array[0, 3], Gen.Bool, GenKeyed.Array[1, 3], (pre, tap, keyed) => new Branch(pre, tap, keyed));

    /// <summary>Inputs in time order: each is (time &lt;&lt; 20) | (value &lt;&lt; 4) | key, with times rising by 0 to 7.</summary>
    private static readonly Gen<long[]> GenInput = Gen.Select(Gen.Int[0, 7].Array[0, 1500], Gen.Int[0, 1000].Array[1500], Gen.Int[0, 15].Array[1500], (steps, values, keys) =>
    {
        var time = 0L;
        var input = new long[steps.Length];
        for (var i = 0; i < steps.Length; i++)
        {
            time += steps[i];
            input[i] = (time << 20) | ((long)values[i] << 4) | (long)keys[i];
        }

        return input;
    });

    private static readonly Gen<Case> GenCase = Gen.Select(
        GenBranch.Array[1, 3],
        GenInput,
        Gen.Int[1, 4],
        Gen.OneOf(Gen.Int[1, 16], Gen.Int[17, 300], Gen.Const(1024)),
        (branches, input, parallelism, batch) => new Case(branches, input, parallelism, batch));

    [Fact]
    public void Graphs_of_branches_and_keyed_stages_equal_the_reference_at_any_parallelism()
    {
        GenCase.Array[3, 5].Sample(
            cases =>
            {
                var assembly = GeneratorHarness.Run(Source(cases)).Load();
                for (var k = 0; k < cases.Length; k++)
                {
                    Check(assembly, k, cases[k]);
                }
            },
            iter: 12,
            threads: 1,
            print: cases => string.Join("\n", cases.Select((c, k) => $"Graph{k}: {c}")));
    }

    /// <summary>The record the generated pipelines parse their input into (the same shape as theirs).</summary>
    private readonly record struct Ev(long Key, long Time, long Value);

    private static Ev Parse(long x) => new(x & 15, x >> 20, (x >> 4) & 0xFFFF);

    private static void Check(Assembly assembly, int index, Case @case)
    {
        var pipeline = LoadedPipelines.Create(assembly, $"Fuzz.Graph{index}");
        LoadedPipelines.Set(pipeline, "Input", new CollectionSource<long>(@case.Input));
        var result = LoadedPipelines.RunAsync(pipeline, @case.Parallelism, @case.BatchSize).GetAwaiter().GetResult();
        Assert.Equal(@case.Input.Length, result.RecordsRead);
        Assert.Equal(0, result.LateRecords);
        for (var b = 0; b < @case.Branches.Length; b++)
        {
            var (expected, tapped) = Reference(@case.Branches[b], @case.Input);
            var actual = LoadedPipelines.ItemsAsText(pipeline, $"Out{b}").Select(t => t ?? "").Order(StringComparer.Ordinal).ToList();
            Assert.True(expected.SequenceEqual(actual, StringComparer.Ordinal), $"Graph{index} branch {b}: expected {expected.Count} results, got {actual.Count}; first difference: {FirstDifference(expected, actual)} ({@case})");
            if (@case.Branches[b].Tap)
            {
                Assert.Equal(tapped, LoadedPipelines.Get<CollectionSink<long>>(pipeline, $"Tap{b}").Items.Order());
            }
        }
    }

    private static string FirstDifference(List<string> expected, List<string> actual)
    {
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            if (expected[i] != actual[i])
            {
                return $"expected {expected[i]} but got {actual[i]}";
            }
        }

        return expected.Count > actual.Count ? $"missing {expected[actual.Count]}" : actual.Count > expected.Count ? $"extra {actual[expected.Count]}" : "none";
    }

    /// <summary>The naive reference: every stage over the whole input, windows by grouping.</summary>
    private static (List<string> Results, List<long> Tapped) Reference(Branch branch, long[] input)
    {
        var records = input.Select(Parse).ToList();
        foreach (var stage in branch.Stages)
        {
            records = stage.Kind == PreKind.Filter
                ? records.Where(FilterFunctions[stage.Variant]).ToList()
                : records.Select(MapFunctions[stage.Variant]).ToList();
        }

        var tapped = records.Select(e => e.Value).Order().ToList();
        List<WindowResult<long, long>> results = [];
        for (var k = 0; k < branch.Keyed.Length; k++)
        {
            var keyed = branch.Keyed[k];
            if (k > 0)
            {
                records = results.Select(r => new Ev(r.Key, r.End - 1, r.Value)).ToList();
            }

            results = records
                .SelectMany(e => WindowsOf(e.Time, keyed.Size, keyed.Slide).Select(start => (Key: e.Key % keyed.KeyModulus, Start: start, e.Value)))
                .GroupBy(x => (x.Key, x.Start))
                .Select(g => new WindowResult<long, long>(g.Key.Key, g.Key.Start, g.Key.Start + keyed.Size, keyed.Sum ? g.Sum(x => x.Value) : g.LongCount()))
                .ToList();
        }

        return (results.Select(r => r.ToString()).Order(StringComparer.Ordinal).ToList(), tapped);
    }

    private static IEnumerable<long> WindowsOf(long time, long size, long slide)
    {
        for (var start = time - (((time % slide) + slide) % slide); start > time - size; start -= slide)
        {
            yield return start;
        }
    }

    private static string Source(Case[] cases)
    {
        var code = new StringBuilder("""
            using Compiled;
            using Compiled.Connectors;

            namespace Fuzz;

            public readonly record struct Ev(long Key, [property: EventTime] long Time, long Value);

            public readonly struct EvValue : IValueSelector<Ev, long>
            {
                public static long ValueOf(in Ev e) => e.Value;
            }


            """);
        for (var k = 0; k < cases.Length; k++)
        {
            AppendGraph(code, k, cases[k]);
        }

        return code.ToString();
    }

    private static void AppendGraph(StringBuilder code, int index, Case @case)
    {
        var i = CultureInfo.InvariantCulture;
        code.Append(i, $"[Pipeline]\npublic sealed partial class Graph{index}\n{{\n");
        code.Append("    [Source] public CollectionSource<long> Input { get; set; } = new();\n\n");
        code.Append("    [Transform] static Ev Parse(long x) => new(x & 15, x >> 20, (x >> 4) & 0xFFFF);\n\n");
        for (var b = 0; b < @case.Branches.Length; b++)
        {
            var branch = @case.Branches[b];
            var first = true;
            string Attribute(string kind)
            {
                var attribute = first ? $"[{kind}(Input = nameof(Parse))]" : $"[{kind}]";
                first = false;
                return attribute;
            }

            for (var s = 0; s < branch.Stages.Length; s++)
            {
                var stage = branch.Stages[s];
                var line = stage.Kind == PreKind.Filter
                    ? $"    {Attribute("Transform")} static bool F{b}_{s}(Ev e) => {Filters[stage.Variant]};\n"
                    : $"    {Attribute("Transform")} static Ev M{b}_{s}(Ev e) => {Maps[stage.Variant]};\n";
                code.Append(line);
            }

            if (branch.Tap)
            {
                code.Append(i, $"    {Attribute("Transform")} static long Value{b}(Ev e) => e.Value;\n");
                code.Append(i, $"    [Sink] public CollectionSink<long> Tap{b} {{ get; }} = new();\n");
                code.Append(i, $"    [Transform(Input = nameof({(branch.Stages.Length == 0 ? "Parse" : (branch.Stages[^1].Kind == PreKind.Filter ? "F" : "M") + $"{b}_{branch.Stages.Length - 1}")}))] static Ev Again{b}(Ev e) => e;\n");
            }

            for (var k = 0; k < branch.Keyed.Length; k++)
            {
                var keyed = branch.Keyed[k];
                if (k > 0)
                {
                    code.Append(i, $"    [Transform] static Ev Rekey{b}_{k}(WindowResult<long, long> r) => new(r.Key, r.End - 1, r.Value);\n");
                }

                var window = keyed.Size == keyed.Slide
                    ? $"Window.Tumbling(System.TimeSpan.FromMilliseconds({keyed.Size}))"
                    : $"Window.Sliding(System.TimeSpan.FromMilliseconds({keyed.Size}), System.TimeSpan.FromMilliseconds({keyed.Slide}))";
                var aggregator = keyed.Sum ? "Sum<Ev, EvValue, long>" : "Count<Ev>";
                code.Append(i, $"    {Attribute("KeyBy")} static long Key{b}_{k}(Ev e) => e.Key % {keyed.KeyModulus};\n");
                code.Append(i, $"    [Window] public WindowSpec<Ev, {aggregator}> W{b}_{k} {{ get; }} = new({window});\n");
            }

            code.Append(i, $"    [Sink] public CollectionSink<WindowResult<long, long>> Out{b} {{ get; }} = new();\n\n");
        }

        code.Append("}\n\n");
    }
}
