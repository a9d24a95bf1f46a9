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
        var app = await CreateAppAsync(["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj"], "Compiled.Runtime", aot: false, """
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

    /// <summary>
    /// Confluent.Kafka crashes in a Native AOT binary unless its assembly is rooted; the Compiled.Kafka package does
    /// that for the app (buildTransitive). A user's own AOT binary, built from the packages alone, produces to a
    /// (mock) Kafka cluster and reads it back — with no warnings, and with nothing Kafka-specific in the project.
    /// </summary>
    [Fact]
    public async Task A_native_aot_app_that_adds_the_kafka_package_publishes_without_warnings_and_talks_to_kafka()
    {
        var app = await CreateAppAsync(["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj", "src/Connectors/Kafka/Compiled.Kafka.csproj"], "Compiled.Kafka", aot: true, """
            using Compiled;
            using Compiled.Connectors;
            using Compiled.Kafka;
            using Compiled.Kafka.Testing;
            using Compiled.Runtime;
            using Confluent.Kafka;

            using var cluster = KafkaMockCluster.Start(brokers: 1);
            cluster.CreateTopic("words", 1);
            var pipeline = new Words();
            pipeline.Output.Options.BootstrapServers = cluster.BootstrapServers;
            await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });

            var config = new ConsumerConfig { BootstrapServers = cluster.BootstrapServers, GroupId = "check", AutoOffsetReset = AutoOffsetReset.Earliest };
            using var consumer = new ConsumerBuilder<Ignore, string>(config).SetLogHandler((_, _) => { }).Build();
            consumer.Subscribe("words");
            for (var read = 0; read < 2; read++)
            {
                var result = consumer.Consume(TimeSpan.FromSeconds(60));
                if (result is null)
                {
                    return 1;
                }

                Console.WriteLine(result.Message.Value);
            }

            consumer.Close();
            return 0;

            [Record]
            public readonly partial record struct Word(string Text);

            [Pipeline]
            public sealed partial class Words
            {
                [Source] CollectionSource<Word> Input { get; } = new(new Word("hello"), new Word("kafka"));
                [Sink] public KafkaSink<Word, Word.JsonCodec> Output { get; } = new(new KafkaSinkOptions { Topic = "words" });
            }
            """);

        var publish = Path.Combine(_work, "publish");
        var build = await Processes.DotnetAsync(["publish", app, "-c", "Release", "-o", publish, "-nologo"], app, Timeout);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotContain("warning", build.Output, StringComparison.OrdinalIgnoreCase);

        var run = await Processes.RunAsync(Path.Combine(publish, "App"), [], app, Timeout);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("{\"Text\":\"hello\"}\n{\"Text\":\"kafka\"}\n", run.Output.ReplaceLineEndings("\n"));
    }

    /// <summary>Packs <paramref name="projects"/> into a local feed and creates an app that references <paramref name="package"/> from it.</summary>
    private async Task<string> CreateAppAsync(string[] projects, string package, bool aot, string program)
    {
        var feed = Path.Combine(_work, "feed");
        var version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var project in projects)
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
                <PublishAot>{(aot ? "true" : "false")}</PublishAot>
                <RestorePackagesPath>{Path.Combine(_work, "packages")}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{package}" Version="{version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), program);
        return app;
    }
}
