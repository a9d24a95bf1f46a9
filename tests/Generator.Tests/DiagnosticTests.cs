using Compiled.Generator.Diagnostics;
using Compiled.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Tests;

/// <summary>One test per diagnostic ID: the ID, the span it is reported at, and the full message.</summary>
public sealed class DiagnosticTests
{
    private const string Usings = "using System.Threading.Tasks; using Compiled; using Compiled.Connectors; using Compiled.Sqlite;\n";

    [Fact]
    public void CMPL0001_pipeline_not_partial()
        => AssertSingle("CMPL0001", """
            [Pipeline]
            public sealed class [|P|]
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "The type 'P' must be declared 'partial' so that Compiled can add the generated code; add the 'partial' modifier");

    [Fact]
    public void CMPL0001_operator_class_not_partial()
        => AssertSingle("CMPL0001", """
            [Transform]
            public sealed class [|Inc|]
            {
                public int Map(int x) => x + 1;
            }
            """, "The type 'Inc' must be declared 'partial' so that Compiled can add the generated code; add the 'partial' modifier");

    [Fact]
    public void CMPL0002_generic_pipeline()
        => AssertSingle("CMPL0002", """
            [Pipeline]
            public sealed partial class [|P|]<T>
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Pipeline 'P<T>' cannot be generic; declare it as a non-generic, non-static, non-abstract class");

    [Fact]
    public void CMPL0003_instance_operators_without_parameterless_constructor()
        => AssertSingle("CMPL0003", """
            [Pipeline]
            public sealed partial class [|P|]
            {
                private readonly int _step;
                public P(int step) => _step = step;
                [Source] CollectionSource<int> S { get; } = new();
                [Transform] int Add(int x) => x + _step;
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Pipeline 'P' has per-partition operators ('Add'), so every partition gets its own pipeline object; add a parameterless constructor (public or internal)");

    [Fact]
    public void CMPL0004_runtime_not_referenced()
    {
        var (source, span) = Markup.Parse("""
            using System;
            using System.Threading;
            using System.Threading.Tasks;
            using Compiled;

            public sealed class MySource : ISource<int>
            {
                public ValueTask OpenAsync(SourceContext<int> context, CancellationToken cancellationToken) => default;
                public ISourceReader<int> CreateReader(int partition) => throw new NotSupportedException();
                public ValueTask CloseAsync(CancellationToken cancellationToken) => default;
            }

            public sealed class MySink : ISink<int>
            {
                public ValueTask OpenAsync(SinkContext<int> context, CancellationToken cancellationToken) => default;
                public ISinkWriter<int> CreateWriter(int partition) => throw new NotSupportedException();
                public ValueTask CloseAsync(CancellationToken cancellationToken) => default;
            }

            [Pipeline]
            public sealed partial class [|P|]
            {
                [Source] MySource S { get; } = new();
                [Sink] MySink O { get; } = new();
            }
            """);
        var references = GeneratorHarness.BclReferences.Add(MetadataReference.CreateFromFile(typeof(PipelineAttribute).Assembly.Location));
        var run = GeneratorHarness.Run(GeneratorHarness.Compile(references, source));
        AssertDiagnostic(run, "CMPL0004", span, "Pipeline 'P' needs the Compiled.Runtime package to run; add a reference to Compiled.Runtime");
    }

    [Fact]
    public void CMPL0005_operator_class_without_operator_method()
        => AssertSingle("CMPL0005", """
            public sealed class Nothing
            {
                public void Reset() { }
            }

            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Transform] Nothing [|N|] { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "'Nothing' has no operator method; add a public method 'U Map(T)', 'bool Filter(T)' or 'void FlatMap(T, Emitter<U>)'");

    [Fact]
    public void CMPL0006_operator_class_with_two_operator_methods()
        => AssertSingle("CMPL0006", """
            public sealed class Two
            {
                public int Map(int x) => x + 1;
                public int Other(int x) => x - 1;
            }

            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Transform] Two [|T|] { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "'Two' has more than one operator method (Map(int), Other(int)); mark the one to use with [Operator]");

    [Theory]
    [InlineData("static T [|M|]<T>(T x) => x;", "it is generic; an operator is a non-generic method (make the class generic instead)")]
    [InlineData("static ref int [|M|](ref int x) => ref x;", "it returns by reference; return the value instead")]
    [InlineData("static int [|M|](ref int x) => x;", "its input is passed by 'ref'; take the record by value or by 'in'")]
    [InlineData("static void [|M|](int x) { }", "it returns void; a transform returns its output (map), a bool (filter), or emits through an Emitter<U> (flatMap), and a method that only consumes records is a [Sink]")]
    [InlineData("static int [|M|](int x, int y) => x;", "a two-parameter operator must be 'void M(T input, Emitter<U> output)'")]
    public void CMPL0007_unsupported_operator_signature(string member, string problem)
        => AssertSingle("CMPL0007", $$"""
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Transform] {{member}}
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, $"'M' cannot be used as an operator: {problem}");

    [Fact]
    public void CMPL0007_sink_method_with_a_result()
        => AssertSingle("CMPL0007", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] static int [|Write|](int x) => x;
            }
            """, "'Write' cannot be used as a sink: a sink method must be 'void M(T record)'");

    [Fact]
    public void CMPL0008_member_with_two_stage_attributes()
        => AssertSingle("CMPL0008", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Transform, Sink] static int [|M|](int x) => x;
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "'M' is marked with more than one of [Source], [Transform] and [Sink]; a member is one stage");

    [Fact]
    public void CMPL0009_mutable_struct_operator_in_a_read_only_member()
        => AssertSingle("CMPL0009", """
            public struct Counter
            {
                private long _next;
                public long Number(long value) => value + _next++;
            }

            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [Transform] Counter [|C|] { get; } = new();
                [Sink] CollectionSink<long> O { get; } = new();
            }
            """, "Operator 'C' cannot keep its state: 'Counter' is a mutable struct, and 'C' cannot be assigned, so the operator's state would be lost after every call; make 'C' a mutable field or give it a setter, or make the struct readonly");

    [Fact]
    public void CMPL0101_no_source()
        => AssertSingle("CMPL0101", """
            [Pipeline]
            public sealed partial class [|P|]
            {
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Pipeline 'P' has no source; mark a property or field whose type implements ISource<T> with [Source]");

    [Fact]
    public void CMPL0102_sources_of_different_types()
        => AssertSingle("CMPL0102", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> First { get; } = new();
                [Source] CollectionSource<long> [|Second|] { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Pipeline 'P' reads 'First' (int) and 'Second' (long): sources of one record type are read as one stream, and a pipeline reads at most two record types, the two inputs of a [Join]; join them, map one to the other's type in a pipeline of its own, or read them in two pipelines");

    [Fact]
    public void CMPL0103_no_sink()
        => AssertSingle("CMPL0103", """
            [Pipeline]
            public sealed partial class [|P|]
            {
                [Source] CollectionSource<int> S { get; } = new();
            }
            """, "Pipeline 'P' has no sink; mark a property or field whose type implements ISink<T>, or a method 'void M(T)', with [Sink]");

    [Fact]
    public void CMPL0104_type_mismatch_is_reported_on_the_later_stage()
        => AssertSingle("CMPL0104", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> Numbers { get; } = new();
                [Transform] static string Describe(int x) => x.ToString();
                [Transform] static long [|Twice|](long x) => x * 2;
                [Sink] CollectionSink<long> O { get; } = new();
            }
            """, "Stage 'Twice' takes 'long' but the stage it reads from, 'Describe', produces 'string'; make 'Twice' take 'string', or add a transform from 'string' to 'long' between them");

    [Fact]
    public void CMPL0105_stage_before_the_source()
        => AssertSingle("CMPL0105", """
            [Pipeline]
            public sealed partial class P
            {
                [Transform] static int [|Early|](int x) => x;
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Stage 'Early' is declared before the source 'S' and reads the stage above it, so no record can ever reach it; move it below the source, or name the stage it reads with Input = nameof(...)");

    [Fact]
    public void CMPL0106_stage_after_the_last_sink()
        => AssertSingle("CMPL0106", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [Transform] static int [|Late|](int x) => x;
            }
            """, "Stage 'Late' comes after the last sink of its branch, so its output goes nowhere; move it above a sink or add a [Sink] that reads it");

    [Fact]
    public void CMPL0107_source_member_that_is_not_a_source()
        => AssertSingle("CMPL0107", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] int[] [|S|] { get; } = [1, 2];
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "'S' is marked [Source] but its type 'int[]' does not implement ISource<T>");

    [Fact]
    public void CMPL0108_sink_member_that_is_not_a_sink()
        => AssertSingle("CMPL0108", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] System.Collections.Generic.List<int> [|O|] { get; } = new();
            }
            """, "'O' is marked [Sink] but its type 'List<int>' neither implements ISink<T> nor has a sink method 'void M(T)'");

    [Fact]
    public void CMPL0109_connector_for_two_record_types()
        => AssertSingle("CMPL0109", """
            public sealed class Both : ISink<int>, ISink<string>
            {
                ValueTask ISink<int>.OpenAsync(SinkContext<int> c, System.Threading.CancellationToken t) => default;
                ISinkWriter<int> ISink<int>.CreateWriter(int p) => null!;
                ValueTask ISink<int>.CloseAsync(System.Threading.CancellationToken t) => default;
                ValueTask ISink<string>.OpenAsync(SinkContext<string> c, System.Threading.CancellationToken t) => default;
                ISinkWriter<string> ISink<string>.CreateWriter(int p) => null!;
                ValueTask ISink<string>.CloseAsync(System.Threading.CancellationToken t) => default;
            }

            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] Both [|O|] { get; } = new();
            }
            """, "'O' implements ISink<T> for more than one record type (int, string); use a connector with one record type");

    [Fact]
    public void CMPL0110_stages_in_two_partial_declarations()
        => AssertSingle("CMPL0110", """
            [Pipeline]
            public sealed partial class [|P|]
            {
                [Source] CollectionSource<int> S { get; } = new();
            }

            public sealed partial class P
            {
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "The stages of pipeline 'P' are spread over more than one partial declaration, so their order is ambiguous; declare every [Source], [Transform] and [Sink] member in one declaration");

    [Fact]
    public void CMPL0111_dead_letter_member_that_is_not_a_dead_letter_sink()
        => AssertSingle("CMPL0111", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [DeadLetters] CollectionSink<int> [|Bad|] { get; } = new();
            }
            """, "'Bad' is marked [DeadLetters] but its type 'CollectionSink<int>' does not implement ISink<DeadLetter>; use DeadLetterFile or another ISink<DeadLetter>");

    [Fact]
    public void CMPL0112_two_dead_letter_sinks()
        => AssertSingle("CMPL0112", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [DeadLetters] Compiled.Runtime.DeadLetterFile First { get; } = new("a.jsonl");
                [DeadLetters] Compiled.Runtime.DeadLetterFile [|Second|] { get; } = new("b.jsonl");
            }
            """, "Pipeline 'P' already sends dead letters to 'First'; remove [DeadLetters] from 'Second'");

    [Fact]
    public void CMPL0120_window_without_key_selector()
        => AssertSingle("CMPL0120", """
            public readonly record struct E(int K, [EventTime] long T);
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<E> S { get; } = new();
                [Window] WindowSpec<E, Count<E>> [|W|] { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1)));
                [Sink] CollectionSink<WindowResult<int, long>> O { get; } = new();
            }
            """, "Window 'W' must be declared right after the [KeyBy] stage it reads from: windows are per key; add a method '[KeyBy] TKey M(T record)' just above it (a pipeline may have several key selectors and windows, each window right after its own)");

    [Fact]
    public void CMPL0121_key_selector_without_window()
        => AssertSingle("CMPL0121", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [KeyBy] static int [|Key|](int x) => x % 10;
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, "Key selector 'Key' must be followed directly by its [Window] or [Lookup] stage, or be read by a [Join]: a keyed stream ends in a window, a lookup join or a join of two streams; declare the window or lookup right after the key selector (a JoinSpec member needs the [Join] attribute)");

    [Fact]
    public void CMPL0007_a_key_selector_with_two_parameters_is_told_the_shape_of_a_key_selector()
    {
        // It used to be told the shape of a flatMap ("a two-parameter operator must be 'void M(T input, Emitter<U>
        // output)'"), which a key selector can never have (an outside test).
        var run = GeneratorHarness.Run(Usings + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [KeyBy] static int Key(int x, int y) => x % 10;
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """);
        var error = Assert.Single(run.AnalyzerDiagnostics, d => d.Id == "CMPL0007");
        Assert.Contains("a key selector is a method 'TKey M(T record)' that takes one record and returns its key", error.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }

    [Fact]
    public void CMPL0130_unknown_input()
        => AssertSingle("CMPL0130", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [Sink(Input = "Nowhere")] CollectionSink<int> [|Other|] { get; } = new();
            }
            """, "Stage 'Other' reads from 'Nowhere', which is not a stage of pipeline 'P'; name a [Source], [Transform], [Window] or [Sink] member with Input = nameof(...)");

    [Fact]
    public void CMPL0131_cycle()
        => AssertSingle("CMPL0131", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [Transform(Input = nameof(B))] static int [|A|](int x) => x + 1;
                [Transform(Input = nameof(A))] static int B(int x) => x * 2;
            }
            """, "Stage 'A' reads from 'B', which leads back to it; records flow from the source to the sinks, so name a stage closer to the source as its input", spanOverride: null, expectAlso: "B");

    [Fact]
    public void CMPL0132_branch_without_sink()
        => AssertSingle("CMPL0132", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] CollectionSink<int> O { get; } = new();
                [Transform(Input = nameof(S))] static long [|Wide|](int x) => x;
            }
            """, "The branch that ends at 'Wide' has no sink, so its records go nowhere; add a [Sink] that reads from 'Wide', or remove the branch");

    [Fact]
    public void CMPL0133_reads_a_key_selector()
        => AssertSingle("CMPL0133", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [Transform] static bool Even(long x) => x % 2 == 0;
                [KeyBy] static long Key(long x) => x % 10;
                [Window] WindowSpec<long, Count<long>> W { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Sink] CollectionSink<WindowResult<long, long>> O { get; } = new();
                [Sink(Input = nameof(Key))] CollectionSink<long> [|Raw|] { get; } = new();
            }
            """, "Stage 'Raw' reads from key selector 'Key', whose records go only to the window declared right after it; read from the stage 'Key' reads instead (Input = nameof(Even))");

    [Fact]
    public void A_second_key_selector_and_window_after_a_window_compile()
    {
        // Count per key, then key the counts again: what CMPL0122 used to refuse ("one window per pipeline").
        var run = GeneratorHarness.Run(Usings + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [KeyBy] static long Key(long x) => x % 10;
                [Window] WindowSpec<long, Count<long>> W { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Transform] static long Value(WindowResult<long, long> r) => r.Value;
                [KeyBy] static long Again(long x) => x;
                [Window] WindowSpec<long, Count<long>> W2 { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Sink] CollectionSink<WindowResult<long, long>> O { get; } = new();
            }
            """);
        Assert.Empty(run.AnalyzerDiagnostics);
        Assert.Empty(run.DiagnosticsInGeneratedCode);
        Assert.DoesNotContain(run.CompilerDiagnostics, d => d.Severity == DiagnosticSeverity.Error);
    }

    [Fact]
    public void A_late_data_sink_must_name_its_window_when_there_are_several()
        => AssertSingle("CMPL0124", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [KeyBy] static long Key(long x) => x % 10;
                [Window] WindowSpec<long, Count<long>> W { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Sink] CollectionSink<WindowResult<long, long>> O { get; } = new();
                [KeyBy(Input = nameof(S))] static long Key2(long x) => x % 3;
                [Window] WindowSpec<long, Count<long>> W2 { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Sink] CollectionSink<WindowResult<long, long>> O2 { get; } = new();
                [LateData] CollectionSink<long> [|Late|] { get; } = new();
            }
            """, "Late-data output 'Late' needs to say which window it takes late records from, as the pipeline has several ('W', 'W2'): add Window = nameof(...) to [LateData]");

    [Fact]
    public void CMPL0123_window_of_another_type()
        => AssertSingle("CMPL0123", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [KeyBy] static long Key(long x) => x % 10;
                [Window] WindowSpec<long, Count<int>> [|W|] { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1)));
                [Sink] CollectionSink<WindowResult<long, long>> O { get; } = new();
            }
            """, "Window 'W' has type 'WindowSpec<long, Count<int>>'; a [Window] is a property or field of type WindowSpec<TIn, TAggregator> whose TAggregator implements IAggregator<TIn, TAcc, TOut> for the same TIn");

    private const string LookupTypes = """
        public sealed record Customer([property: Key] int Id, string Name);
        public sealed record Unkeyed(int Id, string Name);
        public sealed record TwoKeys([property: Key] int Id, [property: Key] string Name);
        public sealed record LongKey([property: Key] long Id, string Name);
        public sealed class Unbuildable { [Key] public int Id { get; } public string Name { get; } = ""; }
        """;

    [Fact]
    public void CMPL0140_lookup_without_key_selector()
        => AssertSingle("CMPL0140", LookupTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Lookup] SqliteLookup<int, Customer> [|Customers|] { get; } = new("a.db", "customers");
                [Sink] CollectionSink<Joined<int, Customer>> O { get; } = new();
            }
            """, "Lookup 'Customers' must be declared right after the [KeyBy] stage whose key it looks up; add a method '[KeyBy] TKey M(T record)' just above it");

    [Fact]
    public void CMPL0141_lookup_of_a_type_that_is_not_a_lookup()
        => AssertSingle("CMPL0141", LookupTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [KeyBy] static int Key(int x) => x;
                [Lookup] CollectionSink<int> [|Customers|] { get; } = new();
                [Sink] CollectionSink<Joined<int, Customer>> O { get; } = new();
            }
            """, "Lookup 'Customers' has type 'CollectionSink<int>'; a [Lookup] is a property or field whose type implements ILookup<TKey, TRow> once (SqliteLookup<TKey, TRow>, PostgresLookup<TKey, TRow>)");

    [Fact]
    public void CMPL0142_lookup_key_of_another_type()
        => AssertSingle("CMPL0142", LookupTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [KeyBy] static string Key(int x) => x.ToString();
                [Lookup] SqliteLookup<int, Customer> [|Customers|] { get; } = new("a.db", "customers");
                [Sink] CollectionSink<Joined<int, Customer>> O { get; } = new();
            }
            """, "Lookup 'Customers' looks up keys of type 'int', but the key selector before it returns 'string'; make them the same type");

    [Theory]
    [InlineData("Unkeyed", "none of its members is marked [Key]; mark the one whose column the lookup matches")]
    [InlineData("TwoKeys", "several members are marked [Key] (Id, Name); a lookup matches one column")]
    [InlineData("LongKey", "its [Key] member 'Id' is long where the lookup's keys are int")]
    [InlineData("Unbuildable", "it cannot be built from its fields; give it a public constructor whose parameters are its fields, or a parameterless constructor and settable members")]
    public void CMPL0143_lookup_row_that_cannot_be_read(string row, string problem)
        => AssertSingle("CMPL0143", LookupTypes + $$"""
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [KeyBy] static int Key(int x) => x;
                [Lookup] SqliteLookup<int, {{row}}> [|Customers|] { get; } = new("a.db", "customers");
                [Sink] CollectionSink<Joined<int, {{row}}>> O { get; } = new();
            }
            """, $"Lookup 'Customers' reads rows of type '{row}', but {problem}");

    [Theory]
    [InlineData("static Task<int> [|M|](int x) => Task.FromResult(x);", "returns 'Task<int>'; an asynchronous transform returns ValueTask<U> (one result per record) or ValueTask<IEnumerable<U>> (any number) (to call a method that returns Task<int>, write 'async ValueTask<int> M(...) => await Other(...)')")]
    [InlineData("static async void [|M|](int x) { await Task.Yield(); }", "returns 'void'; an asynchronous transform returns ValueTask<U> (one result per record) or ValueTask<IEnumerable<U>> (any number)")]
    [InlineData("static ValueTask [|M|](int x) => default;", "returns 'ValueTask'; an asynchronous transform returns ValueTask<U> (one result per record) or ValueTask<IEnumerable<U>> (any number)")]
    [InlineData("static ValueTask<int> [|M|](int x, int y) => new(x);", "must take the record, and may take a CancellationToken after it: 'async ValueTask<U> M(T record, CancellationToken cancellationToken)'")]
    [InlineData("static System.Collections.Generic.IAsyncEnumerable<int> [|M|](int x) => null!;", "returns 'IAsyncEnumerable<int>'; an asynchronous transform returns ValueTask<U> (one result per record) or ValueTask<IEnumerable<U>> (any number)")]
    public void CMPL0144_unsupported_asynchronous_transform(string member, string problem)
        => AssertSingle("CMPL0144", $$"""
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Transform] {{member}}
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, $"Asynchronous transform 'M' {problem}");

    [Theory]
    [InlineData("[Transform, AsyncOptions(MaxInFlight = 4)] static int [|M|](int x) => x;", "[AsyncOptions] applies to asynchronous transforms (methods returning ValueTask<U>); remove it, or make the method asynchronous")]
    [InlineData("[Transform, AsyncOptions(MaxInFlight = 0)] static ValueTask<int> [|M|](int x) => new(x);", "MaxInFlight must be at least 1")]
    [InlineData("[Transform, AsyncOptions(TimeoutMilliseconds = -5)] static ValueTask<int> [|M|](int x) => new(x);", "TimeoutMilliseconds cannot be negative (0 means no timeout)")]
    [InlineData("[Transform, AsyncOptions(MaxAttempts = 0)] static ValueTask<int> [|M|](int x) => new(x);", "MaxAttempts must be between 1 and 100")]
    public void CMPL0145_invalid_async_options(string member, string problem)
        => AssertSingle("CMPL0145", $$"""
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                {{member}}
                [Sink] CollectionSink<int> O { get; } = new();
            }
            """, $"'M': {problem}");

    private const string JoinTypes = """
        public readonly record struct Order(int Id, [property: EventTime] long Time);
        public readonly record struct Payment(int OrderId, [property: EventTime] long Time);
        public readonly record struct Refund(string OrderId, long Time);

        """;

    [Theory]
    [InlineData("WindowSpec<Order, Count<Order>> [|J|] { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1)));", "Sink] CollectionSink<Joined<Order, Payment>>", "has type 'WindowSpec<Order, Count<Order>>'; a [Join] is a property or field of type JoinSpec<TLeft, TRight>, created with Join.Interval, Join.Windowed or Join.Table")]
    [InlineData("JoinSpec<Order, Order> [|J|] { get; } = Join.Interval<Order, Order>(System.TimeSpan.Zero, System.TimeSpan.Zero);", "Sink] CollectionSink<Joined<Order, Order>>", "joins 'Order' with itself; a join reads two record types (records of one type from several sources are one stream, a union)")]
    [InlineData("JoinSpec<Order, Payment> [|J|] { get; } = Join.Interval<Order, Payment>(System.TimeSpan.FromSeconds(5), -System.TimeSpan.FromSeconds(5)) with { OutOfOrderness = System.TimeSpan.FromSeconds(1) };", "Sink] CollectionSink<Joined<Order, Payment>>", "has its lower bound (System.TimeSpan.FromSeconds(5)) after its upper bound (-System.TimeSpan.FromSeconds(5)): no record could meet another")]
    [InlineData("JoinSpec<Order, Payment> [|J|] = Join.Interval<Order, Payment>(upperBound: System.TimeSpan.Zero, lowerBound: System.TimeSpan.FromMilliseconds(1));", "Sink] CollectionSink<Joined<Order, Payment>>", "has its lower bound (System.TimeSpan.FromMilliseconds(1)) after its upper bound (System.TimeSpan.Zero): no record could meet another")]
    public void CMPL0146_invalid_join_declaration(string join, string sink, string problem)
        => AssertSingle("CMPL0146", JoinTypes + $$"""
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Source] CollectionSource<Payment> Payments { get; } = new();
                [KeyBy] static int PaidOrder(Payment p) => p.OrderId;
                [Join] {{join}}
                [{{sink}} O { get; } = new();
            }
            """, "Join 'J' " + problem);

    [Theory]
    [InlineData("Join.Interval<Order, Payment>(System.TimeSpan.FromSeconds(-60), -System.TimeSpan.FromMinutes(1))")]
    [InlineData("Join.Interval<Order, Payment>(System.TimeSpan.FromHours(-1), System.TimeSpan.FromTicks(0))")]
    [InlineData("Join.Interval<Order, Payment>(Bound, System.TimeSpan.Zero)")]
    public void Interval_bounds_in_order_or_not_known_at_compile_time_are_not_diagnosed(string spec)
    {
        var run = GeneratorHarness.Run(Usings + JoinTypes + $$"""
            [Pipeline]
            public sealed partial class P
            {
                static readonly System.TimeSpan Bound = System.TimeSpan.FromSeconds(5); // not a constant: checked when the object is created
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Source] CollectionSource<Payment> Payments { get; } = new();
                [KeyBy] static int PaidOrder(Payment p) => p.OrderId;
                [Join] JoinSpec<Order, Payment> J { get; } = {{spec}};
                [Sink] CollectionSink<Joined<Order, Payment>> O { get; } = new();
            }
            """);
        run.AssertClean();
    }

    [Fact]
    public void CMPL0146_join_without_a_key_selector_for_one_side()
        => AssertSingle("CMPL0146", JoinTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Source] CollectionSource<Payment> Payments { get; } = new();
                [Join] JoinSpec<Order, Payment> [|J|] { get; } = Join.Interval<Order, Payment>(System.TimeSpan.Zero, System.TimeSpan.FromMinutes(1));
                [Sink] CollectionSink<Joined<Order, Payment>> O { get; } = new();
            }
            """, "Join 'J' needs a key selector above it that takes 'Payment' records (its right input): add a method '[KeyBy] TKey M(Payment record)'");

    [Fact]
    public void CMPL0146_join_of_a_type_no_source_produces()
        => AssertSingle("CMPL0146", JoinTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Transform] static Payment AsPayment(Order o) => new(o.Id, o.Time);
                [KeyBy] static int PaidOrder(Payment p) => p.OrderId;
                [Join] JoinSpec<Order, Payment> [|J|] { get; } = Join.Interval<Order, Payment>(System.TimeSpan.Zero, System.TimeSpan.FromMinutes(1));
                [Sink] CollectionSink<Joined<Order, Payment>> O { get; } = new();
            }
            """, "Join 'J' joins 'Order' and 'Payment' records, but no [Source] of the pipeline produces 'Payment'");

    [Fact]
    public void CMPL0146_join_whose_key_selector_runs_after_an_asynchronous_transform()
        => AssertSingle("CMPL0146", JoinTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [Transform] static async System.Threading.Tasks.ValueTask<Order> Checked(Order o) { await System.Threading.Tasks.Task.Yield(); return o; }
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Source] CollectionSource<Payment> Payments { get; } = new();
                [KeyBy] static int PaidOrder(Payment p) => p.OrderId;
                [Join] JoinSpec<Order, Payment> [|J|] { get; } = Join.Interval<Order, Payment>(System.TimeSpan.Zero, System.TimeSpan.FromMinutes(1));
                [Sink] CollectionSink<Joined<Order, Payment>> O { get; } = new();
            }
            """, "Join 'J' must read key selectors in the loop of the sources: no window, lookup or asynchronous transform may stand between a source and the join");

    [Fact]
    public void CMPL0147_join_inputs_keyed_by_different_types()
        => AssertSingle("CMPL0147", JoinTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static int OrderId(Order o) => o.Id;
                [Source] CollectionSource<Payment> Payments { get; } = new();
                [KeyBy] static long PaidOrder(Payment p) => p.OrderId;
                [Join] JoinSpec<Order, Payment> [|J|] { get; } = Join.Interval<Order, Payment>(System.TimeSpan.Zero, System.TimeSpan.FromMinutes(1));
                [Sink] CollectionSink<Joined<Order, Payment>> O { get; } = new();
            }
            """, "Join 'J' reads key selector 'OrderId' (returns 'int') and key selector 'PaidOrder' (returns 'long'); both inputs must be keyed by the same type");

    [Fact]
    public void CMPL0148_join_input_without_event_time()
        => AssertSingle("CMPL0148", JoinTypes + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Order> Orders { get; } = new();
                [KeyBy] static string OrderId(Order o) => o.Id.ToString();
                [Source] CollectionSource<Refund> Refunds { get; } = new();
                [KeyBy] static string Refunded(Refund r) => r.OrderId;
                [Join] JoinSpec<Order, Refund> [|J|] { get; } = Join.Windowed<Order, Refund>(Window.Tumbling(System.TimeSpan.FromMinutes(1)));
                [Sink] CollectionSink<Joined<Order, Refund>> O { get; } = new();
            }
            """, "Join 'J' meets records by event time, but 'Refund' has no [EventTime] member; mark one (long Unix milliseconds, DateTime or DateTimeOffset)");

    [Fact]
    public void CMPL0007_asynchronous_sink_method()
        => AssertSingle("CMPL0007", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> S { get; } = new();
                [Sink] static async Task [|M|](int x) => await Task.Yield();
            }
            """, "'M' cannot be used as a sink: it is asynchronous; an asynchronous transform is a [Transform] method of the pipeline class returning ValueTask<U> (see docs/joins.md), and other operators and sinks are synchronous");

    [Fact]
    public void CMPL0124_late_data_of_another_type()
        => AssertSingle("CMPL0124", """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<long> S { get; } = new();
                [KeyBy] static long Key(long x) => x % 10;
                [Window] WindowSpec<long, Count<long>> W { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1))) { Time = TimeMode.Processing };
                [Sink] CollectionSink<WindowResult<long, long>> O { get; } = new();
                [LateData] CollectionSink<int> [|Late|] { get; } = new();
            }
            """, "Late-data output 'Late' needs type ISink<long> (the input of window 'W'), and only one such member per window");

    [Fact]
    public void CMPL0125_event_time_of_unsupported_type()
        => AssertSingle("CMPL0125", """
            public readonly record struct E(int K, [EventTime] string T);
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<E> S { get; } = new();
                [KeyBy] static int Key(E e) => e.K;
                [Window] WindowSpec<E, Count<E>> [|W|] { get; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1)));
                [Sink] CollectionSink<WindowResult<int, long>> O { get; } = new();
            }
            """, "Event time 'E.T' has type 'string'; use long (Unix milliseconds), DateTime or DateTimeOffset");

    [Fact]
    public void CMPL0134_map_to_a_number_where_a_filter_was_meant()
        => AssertSingle("CMPL0134", """
            public readonly record struct Person(string Name, int Age);
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Person> People { get; } = new();
                [Transform] static int [|IsAdult|](Person p) => p.Age >= 18 ? 1 : 0;
                [Sink] CollectionSink<Person> Adults { get; } = new();
            }
            """, "Stage 'IsAdult' returns 'int', so it is a map from 'Person' to 'int', but 'Adults' reads 'Person' from it; a filter returns bool — or, if it is a map, make 'Adults' take 'int'");

    [Fact]
    public void CMPL0206_codec_of_a_type_without_record()
        => AssertCodecOfUnmarkedType("""
            public readonly partial record struct Order(long Id, string Customer);
            [Pipeline]
            public sealed partial class P
            {
                [Source] FileSource<Order, Order.[|JsonCodec|]> In { get; } = new("orders.jsonl");
                [Sink] CollectionSink<Order> Out { get; } = new();
            }
            """, "'Order' has no generated JsonCodec: mark it [Record] (codecs are generated into partial [Record] types)", "CS0426");

    [Fact]
    public void CMPL0206_codec_of_a_type_neither_partial_nor_record_in_an_expression()
        => AssertCodecOfUnmarkedType("""
            public readonly record struct Order(long Id, string Customer);
            public static class Use
            {
                public static void Write(System.Buffers.IBufferWriter<byte> output) => Order.[|CsvCodec|].Encode(new Order(1, "a"), output);
            }
            """, "'Order' has no generated CsvCodec: mark it [Record] and make it partial (codecs are generated into partial [Record] types)", "CS0117");

    /// <summary>CMPL0206 comes with the compiler's own error at the same name, and nothing else.</summary>
    private static void AssertCodecOfUnmarkedType(string markup, string message, string compilerId)
    {
        var (source, span) = Markup.Parse(Usings + markup);
        var run = GeneratorHarness.Run(source);
        Assert.True(run.AnalyzerDiagnostics.Length == 1, string.Join("\n", run.AnalyzerDiagnostics));
        var diagnostic = run.AnalyzerDiagnostics[0];
        Assert.Equal("CMPL0206", diagnostic.Id);
        Assert.Equal(message, diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(span, diagnostic.Location.SourceSpan);
        var compiler = Assert.Single(run.CompilerDiagnostics, d => d.Severity == DiagnosticSeverity.Error);
        Assert.Equal(compilerId, compiler.Id);
        Assert.Equal(span, compiler.Location.SourceSpan);
    }

    [Fact]
    public void CMPL0206_codec_of_a_record_that_is_not_partial_says_to_make_it_partial()
    {
        var (source, span) = Markup.Parse(Usings + """
            [Record]
            public readonly record struct Order(long Id, string Customer);
            public static class Use
            {
                public static string Format => Order.[|BinaryCodec|].Format;
            }
            """);
        var run = GeneratorHarness.Run(source);
        var codec = Assert.Single(run.AnalyzerDiagnostics, d => d.Id == "CMPL0206");
        Assert.Equal(span, codec.Location.SourceSpan);
        Assert.Equal("'Order' has no generated BinaryCodec: make it partial (the generator adds the codecs to the type's own declaration)", codec.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(run.AnalyzerDiagnostics, d => d.Id == "CMPL0001");
    }

    [Fact]
    public void CMPL0201_field_type_without_codec()
        => AssertSingle("CMPL0201", """
            [Record]
            public partial record struct Hit(string Path, System.Collections.Generic.List<int> [|Codes|]);
            """, "Field 'Codes' has type 'List<int>', which the generated codecs do not read or write; use a number, bool, char, string, Utf8Text, DateTime, DateTimeOffset, Guid, decimal, an enum, a nullable of those, or a nested record");

    [Fact]
    public void CMPL0202_field_a_decoder_cannot_set()
        => AssertSingle("CMPL0202", """
            [Record]
            public partial class Hit
            {
                public string Path { get; set; } = "";
                public int [|Status|] { get; } = 200;
            }
            """, "Field 'Status' of 'Hit' can be read but not set: give it a setter or an init accessor, or take it as a constructor parameter of the same name");

    [Fact]
    public void CMPL0203_two_fields_with_one_name()
        => AssertSingle("CMPL0203", """
            [Record]
            public partial record struct Hit(string Path, [Field("Path")] string [|Other|]);
            """, "'Hit' has more than one field named 'Path'; give one of them another name with [Field(\"...\")]");

    [Fact]
    public void CMPL0204_record_that_nests_itself()
        => AssertSingle("CMPL0204", """
            public sealed record Node(int Value, Node? Next);

            [Record]
            public partial record struct Tree(Node [|Root|]);
            """, "Field 'Next' nests 'Node' inside itself (or nests too deep); codecs write records as finite trees", spanOverride: "Next");

    [Fact]
    public void CMPL0205_generic_record()
        => AssertSingle("CMPL0205", """
            [Record]
            public partial record struct [|Box|]<T>(int Value);
            """, "'Box<T>' is generic; [Record] types must be non-generic so that their codecs have concrete field types");

    [Fact]
    public void Every_descriptor_has_a_test_and_a_documented_section()
    {
        var tested = typeof(DiagnosticTests).GetMethods().Select(m => m.Name).Where(n => n.StartsWith("CMPL", StringComparison.Ordinal)).Select(n => n[..8]).ToHashSet();
        var docs = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "diagnostics.md"));
        var shipped = File.ReadAllText(Path.Combine(RepositoryRoot(), "src", "Generator", "AnalyzerReleases.Unshipped.md"));
        foreach (var descriptor in DiagnosticDescriptors.All)
        {
            Assert.Contains(descriptor.Id, tested);
            Assert.Contains("## " + descriptor.Id, docs, StringComparison.Ordinal);
            Assert.Contains(descriptor.Id + " |", shipped, StringComparison.Ordinal);
            Assert.EndsWith("#" + descriptor.Id.ToLowerInvariant(), descriptor.HelpLinkUri, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Every_descriptor_has_its_areas_category_a_description_and_a_sorted_release_entry()
    {
        var unshipped = File.ReadAllLines(Path.Combine(RepositoryRoot(), "src", "Generator", "AnalyzerReleases.Unshipped.md"));
        var rows = unshipped.Where(l => l.StartsWith("CMPL", StringComparison.Ordinal)).ToList();
        Assert.Equal(rows.Order(StringComparer.Ordinal), rows);
        Assert.Equal(DiagnosticDescriptors.All.Length, rows.Count);
        foreach (var descriptor in DiagnosticDescriptors.All)
        {
            Assert.StartsWith("Compiled.", descriptor.Category, StringComparison.Ordinal);
            Assert.False(string.IsNullOrWhiteSpace(descriptor.Description.ToString(System.Globalization.CultureInfo.InvariantCulture)), descriptor.Id + " has no description");
            Assert.Contains($"{descriptor.Id} | {descriptor.Category} | Error | {descriptor.Title}", rows);
        }

        // One category per area: the IDs of an area share it, so a rule set can raise or lower an area at once.
        Assert.Equal("Compiled.Codecs", DiagnosticDescriptors.UnsupportedFieldType.Category);
        Assert.Equal("Compiled.Joins", DiagnosticDescriptors.JoinKeyMismatch.Category);
        Assert.Equal(DiagnosticDescriptors.NoSource.Category, DiagnosticDescriptors.MapMeantAsFilter.Category);
    }

    [Fact]
    public void A_pragma_suppresses_a_diagnostic_because_it_is_reported_in_the_users_tree()
    {
        var run = GeneratorHarness.Run(Usings + """
            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<int> Numbers { get; } = new();
            #pragma warning disable CMPL0104
                [Transform] static long Twice(long x) => x * 2;
            #pragma warning restore CMPL0104
                [Sink] CollectionSink<long> O { get; } = new();
            }
            """);
        Assert.Empty(run.AnalyzerDiagnostics);
        Assert.Empty(run.DiagnosticsInGeneratedCode);
    }

    private const string OldLanguagePipeline = """
        using Compiled;
        using Compiled.Connectors;

        [Record(Naming = FieldNaming.CamelCase)]
        public partial record struct Hit(string Page, [property: EventTime] long At);

        [Pipeline]
        public sealed partial class Hits
        {
            [Source] public CollectionSource<Hit> A { get; set; } = new();
            [Source] public CollectionSource<Hit> B { get; set; } = new();
            [KeyBy] static string Page(Hit h) => h.Page;
            [Window] public WindowSpec<Hit, Count<Hit>> PerSecond { get; set; } = new(Window.Tumbling(System.TimeSpan.FromSeconds(1)));
            [Sink] public CollectionSink<WindowResult<string, long>> Out { get; set; } = new();
        }
        """;

    [Fact]
    public void Asynchronous_transforms_compile_at_CSharp_11()
        => GeneratorHarness.RunAt(Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp11, Scenarios.AsyncTransform).AssertClean();

    [Fact]
    public void Generated_code_compiles_at_CSharp_11_with_implicit_usings_off()
    {
        // The oldest language version generated code supports: a record with codecs and schema, several sources, a window.
        var run = GeneratorHarness.RunAt(Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp11, OldLanguagePipeline);
        run.AssertClean();
    }

    [Fact]
    public void CMPL0010_language_version_before_11()
    {
        var run = GeneratorHarness.RunAt(Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp10, OldLanguagePipeline);
        var reported = run.AnalyzerDiagnostics.Where(d => d.Id == "CMPL0010").Select(d => d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        Assert.Equal(
        [
            "'Hit' needs C# 11 or later (generated codecs and pipelines implement static abstract interface members); this project uses C# 10.0: remove <LangVersion> or set it to 11 or later",
            "'Hits' needs C# 11 or later (generated codecs and pipelines implement static abstract interface members); this project uses C# 10.0: remove <LangVersion> or set it to 11 or later",
        ], reported);
    }

    private static void AssertSingle(string id, string markup, string message, string? spanOverride = null, string? expectAlso = null)
    {
        var (source, span) = Markup.Parse(Usings + markup);
        if (spanOverride is not null)
        {
            // The diagnostic belongs at a declaration the markup cannot wrap (a positional parameter of another type).
            var at = source.IndexOf(spanOverride + ")", StringComparison.Ordinal);
            span = new Microsoft.CodeAnalysis.Text.TextSpan(at, spanOverride.Length);
        }

        var run = GeneratorHarness.Run(source);
        if (expectAlso is not null)
        {
            // A cycle is reported at each of its stages: check the one marked, and that the other is the same diagnostic.
            var other = Assert.Single(run.AnalyzerDiagnostics, d => d.Location.SourceSpan != span);
            Assert.Equal(id, other.Id);
            Assert.Equal(expectAlso, source.Substring(other.Location.SourceSpan.Start, other.Location.SourceSpan.Length));
            run = run with { AnalyzerDiagnostics = [.. run.AnalyzerDiagnostics.Where(d => d != other)] };
        }

        AssertDiagnostic(run, id, span, message);
    }

    private static void AssertDiagnostic(GeneratorRun run, string id, Microsoft.CodeAnalysis.Text.TextSpan span, string message)
    {
        Assert.True(run.AnalyzerDiagnostics.Length == 1, string.Join("\n", run.AnalyzerDiagnostics));
        var diagnostic = run.AnalyzerDiagnostics[0];
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Equal(message, diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(span, diagnostic.Location.SourceSpan);
        Assert.Equal("Source0.cs", diagnostic.Location.SourceTree?.FilePath);
        // The user sees the CMPL diagnostic and nothing from inside generated code.
        Assert.Empty(run.DiagnosticsInGeneratedCode);
        Assert.DoesNotContain(run.CompilerDiagnostics, d => d.Severity == DiagnosticSeverity.Error);
    }

    internal static string RepositoryRoot([System.Runtime.CompilerServices.CallerFilePath] string path = "")
        => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, "..", ".."));
}
