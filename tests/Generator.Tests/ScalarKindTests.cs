using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>
/// One classifier of scalar types serves the codecs and the schemas, so they agree on what a scalar is; each then says
/// which scalars the runtime can carry for it (codecs: no TimeSpan, DateOnly, TimeOnly or bytes; schemas: no
/// <c>FieldKind</c> for Utf8Text, whose fields are <c>Other</c>).
/// </summary>
public sealed class ScalarKindTests
{
    private const string Usings = "using Compiled; using Compiled.Connectors;\n";

    [Theory]
    [InlineData("System.TimeSpan")]
    [InlineData("System.DateOnly")]
    [InlineData("System.TimeOnly")]
    public void A_record_field_of_a_scalar_the_codecs_cannot_carry_is_CMPL0201_at_the_field(string type)
    {
        var source = Usings + $$"""
            [Record]
            public partial record struct Hit(string Path, {{type}} Took);
            """;
        var diagnostic = Assert.Single(GeneratorHarness.Run(source).AnalyzerDiagnostics);
        Assert.Equal("CMPL0201", diagnostic.Id);
        Assert.Equal("Took", source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
    }

    [Fact]
    public void A_pipeline_of_Utf8Text_records_compiles_as_a_scalar_has_no_schema()
    {
        var run = GeneratorHarness.Run(Usings + """
            [Pipeline]
            public sealed partial class Lines
            {
                [Source] CollectionSource<Utf8Text> In { get; } = new();
                [Sink] CollectionSink<Utf8Text> Out { get; } = new();
            }
            """);
        run.AssertClean();
        Assert.Contains("SourceSchema => null;", string.Concat(run.Sources.Values), StringComparison.Ordinal);
    }

    [Fact]
    public void Schema_fields_of_every_scalar_kind_get_their_field_kind_and_Utf8Text_is_Other()
    {
        var run = GeneratorHarness.Run(Usings + """
            public sealed record Row(System.TimeSpan Took, System.DateOnly Day, System.TimeOnly At, byte[] Blob, System.ReadOnlyMemory<byte> Memory, Utf8Text Text, System.Guid Id, System.DateTimeOffset When);

            [Pipeline]
            public sealed partial class Rows
            {
                [Source] CollectionSource<Row> In { get; } = new();
                [Sink] CollectionSink<Row> Out { get; } = new();
            }
            """);
        run.AssertClean();
        var generated = string.Concat(run.Sources.Values);
        foreach (var (field, kind) in new[] { ("Took", "TimeSpan"), ("Day", "DateOnly"), ("At", "TimeOnly"), ("Blob", "Bytes"), ("Memory", "Bytes"), ("Text", "Other"), ("Id", "Guid"), ("When", "DateTimeOffset") })
        {
            Assert.Contains($"\"{field}\", global::Compiled.FieldKind.{kind},", generated, StringComparison.Ordinal);
        }
    }
}
