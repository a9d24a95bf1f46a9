namespace Compiled.Samples.Tests;

/// <summary>
/// The packages work for a user: pack Compiled.Abstractions (which carries the generator) and Compiled.Runtime, add
/// Compiled.Runtime to a fresh project from a local feed, and build and run a pipeline there.
/// </summary>
[Collection(nameof(SdkBuilds))]
public sealed class PackageTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-package-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task A_project_that_adds_the_runtime_package_gets_the_generator_and_runs_a_pipeline()
    {
        var app = await PackageApp.CreateAsync(_work, Timeout, ["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj"], ["Compiled.Runtime"], aot: false, """
            using Compiled;
            using Compiled.Connectors;

            return await Shout.RunAsync(args);

            [Pipeline]
            public sealed partial class Shout
            {
                [Source] CollectionSource<string> Words { get; } = new("hello", "packages");
                [Transform] static string Upper(string word) => word.ToUpperInvariant();
                [Sink] ConsoleSink<string> Print { get; } = new();
            }
            """);

        var run = await Processes.DotnetAsync(["run", "--project", app, "--", "--parallelism", "1"], app, Timeout);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("HELLO\nPACKAGES\n", run.Output.ReplaceLineEndings("\n"));

        // SQLite (its client and native library) is Compiled.Sqlite's: an app of the runtime alone does not carry it.
        var built = Directory.GetFiles(app, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.Contains("Compiled.Runtime.dll", built);
        Assert.DoesNotContain(built, f => f!.Contains("sqlite", StringComparison.OrdinalIgnoreCase));
    }
}
