using System.Globalization;
using System.Reflection;
using System.Text;
using Compiled.Connectors;
using Compiled.Generator.Tests.Infrastructure;
using CsCheck;

namespace Compiled.Generator.Tests;

/// <summary>
/// For random chains of map / filter / flatMap (declared in every supported form: static and instance pipeline
/// methods, operator classes with instance or static methods, mutable struct operators kept in registers, stateful
/// operators), random inputs, parallelism 1–4
/// and batch sizes, the fused run must produce exactly what a naive reference interpreter produces for each
/// partition's slice of the input, in the same order. Together the partitions then hold the same multiset as the
/// reference over the whole input.
/// </summary>
public sealed class FusionPropertyTests
{
    private enum Kind
    {
        Map,
        Filter,
        FlatMap,
        Tap,
    }

    /// <summary>How an operator is declared.</summary>
    private enum Form
    {
        StaticMethod,
        InstanceMethod,
        OperatorClass,
        StaticOperatorMethod,
        StructOperator,
    }

    private sealed record Op(Kind Kind, int Variant, Form Form);

    // Maps: variant 5 is stateful (numbers the records it sees), so it exists only in instance forms.
    private static readonly string[] Maps = ["x * 3 + 1", "x ^ 0x5A", "x - 7", "x / 2", "(x * x) % 1009", "x + 1000 * (COUNTER++)"];
    private static readonly Func<long, long>[] MapFunctions = [x => (x * 3) + 1, x => x ^ 0x5A, x => x - 7, x => x / 2, x => x * x % 1009];
    private static readonly string[] Filters = ["x % 3 != 0", "x > 10", "(x & 1) == 0", "x % 5 != 1"];
    private static readonly Func<long, bool>[] FilterFunctions = [x => x % 3 != 0, x => x > 10, x => (x & 1) == 0, x => x % 5 != 1];
    private static readonly string[] FlatMaps =
    [
        "output.Emit(x); output.Emit(x + 1);",
        "for (var k = 0; k < (int)(((x % 3) + 3) % 3); k++) { output.Emit(x * 10 + k); }",
        "if (x % 7 != 0) { output.Emit(x); }",
    ];

    private static readonly Gen<Op> GenOp =
        Gen.Int[0, 9].SelectMany(kind => kind switch
        {
            < 4 => Gen.Select(Gen.Int[0, Maps.Length - 1], Gen.Enum<Form>(), (v, f) => new Op(Kind.Map, v, v == 5 && f is Form.StaticMethod or Form.StaticOperatorMethod ? Form.InstanceMethod : f)),
            < 7 => Gen.Select(Gen.Int[0, Filters.Length - 1], Gen.Enum<Form>(), (v, f) => new Op(Kind.Filter, v, f)),
            < 9 => Gen.Select(Gen.Int[0, FlatMaps.Length - 1], Gen.Enum<Form>(), (v, f) => new Op(Kind.FlatMap, v, f)),
            _ => Gen.Const(new Op(Kind.Tap, 0, Form.StaticMethod)),
        });

    private static readonly Gen<Op[]> GenChain = GenOp.Array[1, 6];

    private sealed record Case(Op[] Chain, long[] Input, int Parallelism, int BatchSize)
    {
        public override string ToString()
            => $"chain [{string.Join(", ", Chain.Select(o => $"{o.Kind}{o.Variant}/{o.Form}"))}], {Input.Length} records, parallelism {Parallelism}, batch {BatchSize}";
    }

    private static readonly Gen<Case> GenCase = Gen.Select(
        GenChain,
        Gen.Long[-1000, 1000].Array[0, 2000],
        Gen.Int[1, 4],
        Gen.OneOf(Gen.Int[1, 8], Gen.Int[9, 300], Gen.Const(1024)),
        (chain, input, parallelism, batch) => new Case(chain, input, parallelism, batch));

    /// <summary>Several cases per compilation: compiling is the slow part, running is fast.</summary>
    private static readonly Gen<Case[]> GenCases = GenCase.Array[4, 8];

    [Fact]
    public void Fused_runs_equal_the_reference_interpreter_per_partition_and_in_order()
    {
        GenCases.Sample(
            cases =>
            {
                var assembly = GeneratorHarness.Run(Source(cases)).Load();
                for (var k = 0; k < cases.Length; k++)
                {
                    Check(assembly, k, cases[k]);
                }
            },
            iter: 25,
            threads: 1,
            print: cases => string.Join("\n", cases.Select((c, k) => $"Chain{k}: {c}")));
    }

    private static void Check(Assembly assembly, int index, Case @case)
    {
        var pipeline = LoadedPipelines.Create(assembly, $"Fuzz.Chain{index}");
        LoadedPipelines.Set(pipeline, "Input", new CollectionSource<long>(@case.Input));
        var result = LoadedPipelines.RunAsync(pipeline, @case.Parallelism, @case.BatchSize).GetAwaiter().GetResult();
        Assert.Equal(@case.Input.Length, result.RecordsRead);

        var outputs = LoadedPipelines.Partitions<long>(pipeline, "Output");
        var taps = @case.Chain.Any(o => o.Kind == Kind.Tap) ? LoadedPipelines.Partitions<long>(pipeline, "Tap") : null;
        for (var p = 0; p < @case.Parallelism; p++)
        {
            var (start, length) = Splits.Range(@case.Input.Length, @case.Parallelism, p);
            var (expected, expectedTap) = Reference(@case.Chain, @case.Input.AsSpan((int)start, (int)length).ToArray());
            Assert.True(expected.SequenceEqual(outputs[p]), $"Chain{index} partition {p}: expected [{string.Join(", ", expected)}] but got [{string.Join(", ", outputs[p])}] ({@case})");
            if (taps is not null)
            {
                Assert.Equal(expectedTap, taps[p]);
            }
        }
    }

    /// <summary>The naive interpreter: each stage over a whole list, in order, with fresh state per partition.</summary>
    private static (List<long> Output, List<long> Tap) Reference(Op[] chain, long[] input)
    {
        var records = input.ToList();
        var tap = new List<long>();
        var tapped = false;
        foreach (var op in chain)
        {
            switch (op.Kind)
            {
                case Kind.Map when op.Variant == 5:
                    long count = 0;
                    records = records.Select(x => x + (1000 * count++)).ToList();
                    break;
                case Kind.Map:
                    records = records.Select(MapFunctions[op.Variant]).ToList();
                    break;
                case Kind.Filter:
                    records = records.Where(FilterFunctions[op.Variant]).ToList();
                    break;
                case Kind.FlatMap:
                    records = records.SelectMany(x => FlatMapReference(op.Variant, x)).ToList();
                    break;
                case Kind.Tap when !tapped:
                    tap = [.. records];
                    tapped = true;
                    break;
            }
        }

        return (records, tap);
    }

    private static IEnumerable<long> FlatMapReference(int variant, long x)
    {
        switch (variant)
        {
            case 0:
                yield return x;
                yield return x + 1;
                break;
            case 1:
                for (var k = 0; k < (int)(((x % 3) + 3) % 3); k++)
                {
                    yield return (x * 10) + k;
                }

                break;
            default:
                if (x % 7 != 0)
                {
                    yield return x;
                }

                break;
        }
    }

    private static string Source(Case[] cases)
    {
        // Every class declares the counter a stateful map needs; most chains do not use it.
        var code = new StringBuilder("#pragma warning disable CS0169\nusing Compiled;\nusing Compiled.Connectors;\n\nnamespace Fuzz;\n\n");
        for (var k = 0; k < cases.Length; k++)
        {
            AppendChain(code, k, cases[k].Chain);
        }

        return code.ToString();
    }

    private static void AppendChain(StringBuilder code, int index, Op[] chain)
    {
        var classes = new StringBuilder();
        // A stateful map in the pipeline itself gets a counter of its own (two such stages must not share one).
        code.Append(CultureInfo.InvariantCulture, $"[Pipeline]\npublic sealed partial class Chain{index}\n{{\n    private long _count0, _count1, _count2, _count3, _count4, _count5;\n\n");
        code.Append("    [Source] public CollectionSource<long> Input { get; set; } = new();\n");
        var tapped = false;
        for (var s = 0; s < chain.Length; s++)
        {
            var op = chain[s];
            if (op.Kind == Kind.Tap)
            {
                if (!tapped)
                {
                    code.Append("    [Sink] public CollectionSink<long> Tap { get; } = new();\n");
                    tapped = true;
                }

                continue;
            }

            var (signature, body) = op.Kind switch
            {
                Kind.Map => ("long {0}(long x)", $"=> {Maps[op.Variant].Replace("COUNTER", op.Form == Form.InstanceMethod ? $"_count{s}" : "_count", StringComparison.Ordinal)};"),
                Kind.Filter => ("bool {0}(long x)", $"=> {Filters[op.Variant]};"),
                _ => ("void {0}(long x, Emitter<long> output)", $"{{ {FlatMaps[op.Variant]} }}"),
            };

            var name = string.Create(CultureInfo.InvariantCulture, $"S{s}");
            switch (op.Form)
            {
                case Form.StructOperator:
                    var structType = string.Create(CultureInfo.InvariantCulture, $"Chain{index}Op{s}");
                    code.Append(CultureInfo.InvariantCulture, $"    [Transform] public {structType} {name} {{ get; set; }}\n");
                    classes.Append(CultureInfo.InvariantCulture, $"public struct {structType}\n{{\n    private long _count;\n\n    public ")
                        .Append(string.Format(CultureInfo.InvariantCulture, signature, "Apply")).Append(' ').Append(body).Append("\n}\n\n");
                    break;
                case Form.StaticMethod:
                    code.Append("    [Transform] static ").Append(string.Format(CultureInfo.InvariantCulture, signature, name)).Append(' ').Append(body).Append('\n');
                    break;
                case Form.InstanceMethod:
                    code.Append("    [Transform] ").Append(string.Format(CultureInfo.InvariantCulture, signature, name)).Append(' ').Append(body).Append('\n');
                    break;
                default:
                    var type = string.Create(CultureInfo.InvariantCulture, $"Chain{index}Op{s}");
                    var modifier = op.Form == Form.StaticOperatorMethod ? "static " : "";
                    code.Append(CultureInfo.InvariantCulture, $"    [Transform] {type} {name} {{ get; }} = new();\n");
                    classes.Append(CultureInfo.InvariantCulture, $"[Transform]\npublic sealed partial class {type}\n{{\n    private long _count;\n\n    public {modifier}")
                        .Append(string.Format(CultureInfo.InvariantCulture, signature, "Apply")).Append(' ').Append(body).Append("\n}\n\n");
                    break;
            }
        }

        code.Append("    [Sink] public CollectionSink<long> Output { get; } = new();\n}\n\n").Append(classes);
    }
}
