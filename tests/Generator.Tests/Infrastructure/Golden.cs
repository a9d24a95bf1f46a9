using System.Runtime.CompilerServices;

namespace Compiled.Generator.Tests.Infrastructure;

/// <summary>
/// Golden files: checked-in expected generator output (<c>*.g.cs.txt</c>, so they never compile). Set
/// <c>UPDATE_GOLDEN=1</c> to rewrite them from the current output, then review the diff.
/// </summary>
internal static class Golden
{
    public static void AssertMatches(string scenario, IReadOnlyDictionary<string, string> sources, [CallerFilePath] string callerPath = "")
    {
        var directory = Path.Combine(Path.GetDirectoryName(callerPath)!, "Golden", scenario);
        var update = Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1";
        if (update)
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            Directory.CreateDirectory(directory);
            foreach (var (hint, text) in sources)
            {
                File.WriteAllText(Path.Combine(directory, hint + ".txt"), Normalize(text));
            }
        }

        Assert.True(Directory.Exists(directory), $"No golden files for '{scenario}' in {directory}; run the tests with UPDATE_GOLDEN=1 to create them.");
        var expectedFiles = Directory.GetFiles(directory, "*.g.cs.txt").Select(f => Path.GetFileName(f)[..^".txt".Length]).Order().ToList();
        Assert.Equal(expectedFiles, sources.Keys.Order().ToList());
        foreach (var (hint, text) in sources)
        {
            var expected = Normalize(File.ReadAllText(Path.Combine(directory, hint + ".txt")));
            Assert.Equal(expected, Normalize(text));
        }
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimStart('\uFEFF');
}
