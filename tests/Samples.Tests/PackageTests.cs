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
        var feed = Path.Combine(_work, "feed");
        var version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var project in new[] { "src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj" })
        {
            var pack = await Processes.DotnetAsync(["pack", Path.Combine(Repository.Root, project), "-c", "Release", "-o", feed, $"-p:Version={version}", "-nologo"], Repository.Root, Timeout);
            Assert.True(pack.ExitCode == 0, pack.ToString());
        }

        var app = Path.Combine(_work, "app");
        Directory.CreateDirectory(app);
        await File.WriteAllTextAsync(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <RestorePackagesPath>{Path.Combine(_work, "packages")}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Compiled.Runtime" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
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
    }
}
