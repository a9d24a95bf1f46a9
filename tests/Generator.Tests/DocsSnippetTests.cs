using System.Text.RegularExpressions;
using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>Every C# block of the connector guide and the joins page compiles, with no warning, against the packages it documents.</summary>
public sealed partial class DocsSnippetTests
{
    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    public static TheoryData<int> GuideBlocks() => Indexes("connector-guide.md");

    public static TheoryData<int> JoinBlocks() => Indexes("joins.md");

    private static TheoryData<int> Indexes(string doc)
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < Blocks(doc).Count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static List<string> Blocks(string doc)
        => [.. CSharpBlock().Matches(File.ReadAllText(Path.Combine(DiagnosticTests.RepositoryRoot(), "docs", doc))).Select(m => m.Groups[1].Value)];

    [Theory]
    [MemberData(nameof(JoinBlocks))]
    public void Joins_block_compiles(int block)
    {
        var run = GeneratorHarness.Run(Blocks("joins.md")[block]);
        run.AssertClean();
    }

    [Fact]
    public void The_guide_has_code_to_check() => Assert.True(Blocks("connector-guide.md").Count >= 6);

    [Theory]
    [MemberData(nameof(GuideBlocks))]
    public void Connector_guide_block_compiles(int block)
    {
        var run = GeneratorHarness.Run(Blocks("connector-guide.md")[block]);
        run.AssertClean();
    }
}
