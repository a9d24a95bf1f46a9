namespace Compiled.Samples.Tests;

/// <summary>
/// Native AOT: each sample, and a user's app built from the packed packages, publishes without a warning and its
/// binary does what the JIT build does. Each publish takes a minute or more of native compilation, so these run
/// apart from the README's test command: <c>dotnet test tests/Publish.Tests</c> (and <c>.ci/run</c> runs them).
/// </summary>
[Collection(nameof(SdkBuilds))]
public sealed class NativeAotTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-aot-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task QuickStart_publishes_without_warnings_and_does_the_same_job()
    {
        var binary = await Repository.PublishNativeAsync("QuickStart", Path.Combine(_work, "publish"), Timeout);
        var run = await Processes.RunAsync(binary, [], _work, Timeout);
        SampleAssertions.QuickStartDidItsJob(run);

        // Copied alone, without the SQLite library beside it: the error names the library and exits 2 (a retry cannot fix it).
        var alone = Directory.CreateDirectory(Path.Combine(_work, "alone")).FullName;
        var copy = Path.Combine(alone, Path.GetFileName(binary));
        File.Copy(binary, copy);
        var missing = await Processes.RunAsync(copy, [], alone, Timeout);
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("libe_sqlite3.so", missing.Error, StringComparison.Ordinal);
        Assert.Contains("docs/deployment.md", missing.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Monitoring_publishes_without_warnings_and_prints_the_same()
    {
        var binary = await Repository.PublishNativeAsync("Monitoring", Path.Combine(_work, "publish"), Timeout);
        SampleAssertions.MonitoringOutput(await Processes.RunAsync(binary, [], _work, Timeout));
    }

    [Fact]
    public async Task KafkaToPostgres_publishes_without_warnings_and_runs_the_demo()
    {
        var binary = await Repository.PublishNativeAsync("KafkaToPostgres", Path.Combine(_work, "publish"), Timeout);

        var run = await Processes.RunAsync(binary, ["--demo", "--demo-orders", "3000"], _work, Timeout);
        SampleAssertions.KafkaToPostgresDemo(run, 3000);
    }

    [Fact]
    public async Task ClickCounts_publishes_without_warnings_and_runs_the_demo()
    {
        var binary = await Repository.PublishNativeAsync("ClickCounts", Path.Combine(_work, "publish"), Timeout);
        SampleAssertions.ClickCountsDemo(await Processes.RunAsync(binary, ["--demo", "--demo-clicks", "20000"], _work, Timeout), 20_000);
    }

    /// <summary>
    /// Confluent.Kafka crashes in a Native AOT binary unless its assembly is rooted; the Compiled.Kafka package does
    /// that for the app (buildTransitive). A user's own AOT binary, built from the packages alone, produces to a
    /// (mock, from Compiled.Kafka.Testing) Kafka cluster and reads it back — with no warnings, and with nothing Kafka-specific in the project.
    /// </summary>
    [Fact]
    public async Task A_native_aot_app_that_adds_the_kafka_package_publishes_without_warnings_and_talks_to_kafka()
    {
        var app = await PackageApp.CreateAsync(_work, Timeout, ["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj", "src/Connectors/Kafka/Compiled.Kafka.csproj", "src/Connectors/Kafka.Testing/Compiled.Kafka.Testing.csproj"], ["Compiled.Kafka", "Compiled.Kafka.Testing"], aot: true, """
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

    /// <summary>
    /// A user's Native AOT binary, built from the packages alone, writes a partitioned Parquet lake with every column
    /// type; DuckDB reads it back. Parquet.Net's assembly-level trim/AOT warnings (its reflection-based serializer,
    /// which the sink does not use) are silenced by the package for the app (buildTransitive), so the publish prints none.
    /// </summary>
    [Fact]
    public async Task A_native_aot_app_that_adds_the_parquet_package_writes_a_lake_duckdb_reads()
    {
        var app = await PackageApp.CreateAsync(_work, Timeout, ["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj", "src/Connectors/Parquet/Compiled.Parquet.csproj"], ["Compiled.Parquet"], aot: true, """
            using Compiled;
            using Compiled.Connectors;
            using Compiled.Parquet;
            using Compiled.Runtime;

            var pipeline = new SalesLake();
            var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2 });
            Console.WriteLine(pipeline.Lake.RowsCommitted);
            return 0;

            public enum Channel { Web, Store }

            public readonly record struct Sale(long Id, string Country, decimal Amount, DateTimeOffset At, DateOnly Day, TimeOnly Time, TimeSpan Span, Guid Ref, Channel Channel, int? Maybe, byte[]? Blob, float F, ulong U, bool B);

            [Pipeline]
            public sealed partial class SalesLake
            {
                [Source] CollectionSource<Sale> Sales { get; } = new(Enumerable.Range(1, 10_000).Select(i => new Sale(
                    i, i % 2 == 0 ? "DE" : "FR", i / 4m, new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero).AddMinutes(i), new DateOnly(2026, 1, 1).AddDays(i % 300),
                    new TimeOnly(1, 2, 3), TimeSpan.FromSeconds(i), new Guid(i, 0, 0, new byte[8]), (Channel)(i % 2), i % 3 == 0 ? null : i, i % 5 == 0 ? null : [1, 2, 3], i / 4f, (ulong)i, i % 2 == 0)).ToArray());

                [Sink] public ParquetSink<Sale> Lake { get; } = new(new ParquetSinkOptions { Directory = "lake", PartitionBy = "country={Country}/dt={At:yyyy-MM-dd}" });
            }
            """);

        var publish = Path.Combine(_work, "publish");
        var build = await Processes.DotnetAsync(["publish", app, "-c", "Release", "-o", publish, "-nologo"], app, Timeout);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotContain("warning", build.Output, StringComparison.OrdinalIgnoreCase);

        var run = await Processes.RunAsync(Path.Combine(publish, "App"), [], app, Timeout);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("10000", run.Output.Trim());

        using var connection = new DuckDB.NET.Data.DuckDBConnection("DataSource=:memory:");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*), CAST(sum(id) AS BIGINT), sum(amount), count(maybe), count(blob), min(\"day\"), count(DISTINCT channel), CAST(sum(u) AS BIGINT) FROM read_parquet('{Path.Combine(app, "lake")}/**/*.parquet')";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal(10_000L, Convert.ToInt64(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(50_005_000L, Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(Enumerable.Range(1, 10_000).Sum(i => i / 4m), reader.GetDecimal(2));
        Assert.Equal(10_000L - 3_333, Convert.ToInt64(reader.GetValue(3), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(8_000L, Convert.ToInt64(reader.GetValue(4), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(new DateOnly(2026, 1, 1), reader.GetValue(5));
        Assert.Equal(2L, Convert.ToInt64(reader.GetValue(6), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(50_005_000L, Convert.ToInt64(reader.GetValue(7), System.Globalization.CultureInfo.InvariantCulture));
    }
    /// <summary>
    /// The template package, as a user meets it: installed from the packed package, <c>dotnet new compiled-pipeline</c>
    /// creates a pipeline and a test project; the tests pass against the packed Compiled.Testing, and the pipeline
    /// publishes as a Native AOT binary without a warning and does its job on the sample input it ships with.
    /// </summary>
    [Fact]
    public async Task The_template_creates_a_pipeline_whose_tests_pass_and_that_publishes_as_a_native_binary()
    {
        var (feed, version) = await PackageApp.PackAsync(_work, Timeout,
            ["src/Abstractions/Compiled.Abstractions.csproj", "src/Runtime/Compiled.Runtime.csproj", "src/Testing/Compiled.Testing.csproj", "templates/Compiled.Templates.csproj"]);
        var hive = Path.Combine(_work, "hive"); // dotnet new's settings for this test only, not the machine's
        var install = await Processes.DotnetAsync(["new", "install", Path.Combine(feed, $"Compiled.Templates.{version}.nupkg"), "--debug:custom-hive", hive], _work, Timeout);
        Assert.True(install.ExitCode == 0, install.ToString());

        var solution = Path.Combine(_work, "Shop-Etl"); // a name that is not an identifier: the code gets Shop_Etl, the projects keep it
        var created = await Processes.DotnetAsync(["new", "compiled-pipeline", "-n", "Shop-Etl", "-o", solution, "--debug:custom-hive", hive], _work, Timeout);
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.Contains(version, await File.ReadAllTextAsync(Path.Combine(solution, "Shop-Etl", "Shop-Etl.csproj")), StringComparison.Ordinal);
        await PackageApp.WriteNuGetConfigAsync(solution, feed);
        var environment = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(_work, "packages") };

        var test = await Processes.DotnetAsync(["test", Path.Combine(solution, "Shop-Etl.Tests"), "-nologo"], solution, Timeout, environment);
        Assert.True(test.ExitCode == 0, test.ToString());
        Assert.Contains("Passed!", test.Output, StringComparison.Ordinal);

        var publish = Path.Combine(_work, "publish");
        var build = await Processes.DotnetAsync(["publish", Path.Combine(solution, "Shop-Etl"), "-c", "Release", "-o", publish, "-nologo"], solution, Timeout, environment);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotContain("warning", build.Output, StringComparison.OrdinalIgnoreCase);

        var output = Directory.CreateDirectory(Path.Combine(_work, "run")).FullName;
        var run = await Processes.RunAsync(Path.Combine(publish, "Shop-Etl"), [], output, Timeout);
        Assert.True(run.ExitCode == 0, run.ToString());
        var rows = Directory.GetFiles(Path.Combine(output, "paid"), "*.csv").SelectMany(File.ReadAllLines).Where(l => !l.StartsWith("id,", StringComparison.Ordinal)).Order(StringComparer.Ordinal);
        Assert.Equal(["1,ada,15.00", "3,eve,48.0", "5,max,120.0"], rows); // 12.5, 40 and 100 plus 20 %
    }
}
