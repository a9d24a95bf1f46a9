using Compiled.Generator.Tests.Infrastructure;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Tests;

/// <summary>
/// Mistakes whose CMPL diagnostic used to hide behind a C# error in a member the generator did not write (issue 18,
/// item 11). The compiler stops before running analyzers when a declaration does not bind (CS0426 in a property
/// type), so the generator writes what users reference even for an invalid declaration, and users see the CMPL
/// diagnostic at their own member and nothing else.
/// </summary>
public sealed class HiddenDiagnosticsTests
{
    private const string Usings = "using System.Threading.Tasks; using Compiled; using Compiled.Connectors;\n";

    private static void AssertOnly(GeneratorRun run, string id, string at, string source)
    {
        var all = run.AllDiagnostics;
        var diagnostic = Assert.Single(all);
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(at, source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        Assert.Empty(run.DiagnosticsInGeneratedCode);
    }

    [Fact]
    public void A_record_with_an_unsupported_field_used_through_its_codec_shows_only_CMPL0201()
    {
        var source = Usings + """
            [Record]
            public partial record struct Hit(string Path, System.Collections.Generic.List<int> Codes);

            [Pipeline]
            public sealed partial class P
            {
                [Source] FileSource<Hit, Hit.JsonCodec> In { get; } = new("in.jsonl");
                [Sink] FileSink<Hit, Hit.CsvCodec> Out { get; } = new("out");
            }
            """;
        AssertOnly(GeneratorHarness.Run(source), "CMPL0201", "Codes", source);
    }

    [Fact]
    public void A_pipeline_without_partial_shows_only_CMPL0001_even_where_RunAsync_is_called()
    {
        var source = Usings + """
            [Pipeline]
            public sealed class Etl
            {
                [Source] CollectionSource<int> S { get; } = new(1, 2);
                [Sink] CollectionSink<int> O { get; } = new();
            }

            public static class Program
            {
                public static Task<int> Main(string[] args) => Etl.RunAsync(args);
                public static Task<Compiled.Runtime.PipelineResult> Embedded() => new Etl().RunAsync();
            }
            """;
        AssertOnly(GeneratorHarness.Run(source), "CMPL0001", "Etl", source);
    }

    [Fact]
    public void A_filter_that_returns_int_is_reported_at_the_filter_not_at_the_next_stage()
    {
        var source = Usings + """
            public readonly record struct Person(string Name, int Age);

            [Pipeline]
            public sealed partial class P
            {
                [Source] CollectionSource<Person> People { get; } = new();
                [Transform] static int IsAdult(Person p) => p.Age >= 18 ? 1 : 0;
                [Sink] CollectionSink<Person> Adults { get; } = new();
            }
            """;
        var run = GeneratorHarness.Run(source);
        AssertOnly(run, "CMPL0134", "IsAdult", source);
        Assert.Equal(
            "Stage 'IsAdult' returns 'int', so it is a map from 'Person' to 'int', but 'Adults' reads 'Person' from it; a filter returns bool — or, if it is a map, make 'Adults' take 'int'",
            run.AllDiagnostics[0].GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(DiagnosticSeverity.Error, run.AllDiagnostics[0].Severity);
    }
}
