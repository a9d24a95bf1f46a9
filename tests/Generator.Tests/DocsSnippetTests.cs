using System.Text.RegularExpressions;
using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>Every C# block of the connector guide compiles, with no warning, against the packages it documents.</summary>
public sealed partial class DocsSnippetTests
{
    [GeneratedRegex("```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    public static TheoryData<int> GuideBlocks()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < Blocks("connector-guide.md").Count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static List<string> Blocks(string doc)
        => [.. CSharpBlock().Matches(File.ReadAllText(Path.Combine(DiagnosticTests.RepositoryRoot(), "docs", doc))).Select(m => m.Groups[1].Value)];

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
