using System.Collections;
using System.Runtime.CompilerServices;
using Compiled.Connectors;
using Compiled.Runtime.Tests.Connectors;

namespace Compiled.Runtime.Tests.Hosting;

/// <summary>The command-line host: options, settings, exit codes, explain, help and summary.</summary>
public sealed class HostTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-host-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    internal static async Task<(int Code, string Output, string Error)> Run(ICompiledPipeline pipeline, string[] args, IDictionary? environment = null, CancellationToken cancellationToken = default)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new PipelineHostContext { Output = output, Error = error, EnvironmentVariables = environment ?? new Hashtable(), HandleSignals = false };
        var code = await PipelineHost.RunAsync(pipeline, args, context, cancellationToken);
        return (code, output.ToString(), error.ToString());
    }

    private static Task<(int Code, string Output, string Error)> Run(ICompiledPipeline pipeline, params string[] args) => Run(pipeline, args, null);

    private string WriteLines(string name, int count)
    {
        var path = Path.Combine(_work, name);
        File.WriteAllLines(path, Enumerable.Range(1, count).Select(i => $$"""{"seq":{{i}},"path":"/p{{i % 3}}","status":200}"""));
        return path;
    }

    [Fact]
    public async Task A_successful_run_exits_0_and_prints_a_summary_naming_each_sink()
    {
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        var (code, _, error) = await Run(pipeline, "--parallelism", "2");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("SquarePipeline completed in", error, StringComparison.Ordinal);
        Assert.Contains("3 records read from collection (3 records)", error, StringComparison.Ordinal);
        Assert.Contains("Output -> TrackingSink`1: 3 records", error, StringComparison.Ordinal);
        Assert.Equal(3, pipeline.Output.Written);
    }

    [Fact]
    public async Task Set_overrides_a_connector_setting_declared_in_code()
    {
        var input = WriteLines("input.jsonl", 30);
        var pipeline = new JsonFilePipeline();
        var (code, _, error) = await Run(pipeline, "--set", $"Input.Path={input}", "-p", "1");
        Assert.True(code == ExitCodes.Success, error);
        Assert.Equal(30, pipeline.Output.Count);
    }

    [Fact]
    public async Task Configuration_file_then_environment_then_named_options_then_set_the_last_wins()
    {
        var config = Path.Combine(_work, "appsettings.json");
        File.WriteAllText(config, """
            {
              "Logging": { "LogLevel": { "Default": "Information" } },
              "Compiled": {
                "Parallelism": 3,
                "BatchSize": 100,
                "GracePeriod": "30s",
                "Input": { "Path": "from-file/*.jsonl", "ChunkBytes": 4096 },
                "Files": { "Prefix": "from-file", "RollBytes": "none" }
              }
            }
            """);
        var environment = new Hashtable
        {
            ["COMPILED__INPUT__PATH"] = "from-env/*.jsonl",
            ["COMPILED__Parallelism"] = "5",
            ["COMPILED__Files__RollInterval"] = "10m",
            ["UNRELATED__Input__Path"] = "ignored",
        };
        var (code, output, error) = await Run(new ExplainedPipeline(), ["--config", config, "-p", "2", "--set", "BatchSize=7", "--set", "files:prefix=from-set", "--explain"], environment);
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("parallelism 2, batches of 7 records, grace period 30s", output, StringComparison.Ordinal);
        Assert.Contains("Input.Path = from-env/*.jsonl", output, StringComparison.Ordinal);
        Assert.Contains("Input.ChunkBytes = 4096", output, StringComparison.Ordinal);
        Assert.Contains("Files.Prefix = from-set", output, StringComparison.Ordinal);
        Assert.Contains("Files.RollBytes = none", output, StringComparison.Ordinal);
        Assert.Contains("Files.RollInterval = 10m", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_environment_variable_alone_configures_a_run()
    {
        var input = WriteLines("env.jsonl", 12);
        var pipeline = new JsonFilePipeline();
        var (code, _, error) = await Run(pipeline, ["-p", "1"], new Hashtable { ["COMPILED__Input__Path"] = input });
        Assert.True(code == ExitCodes.Success, error);
        Assert.Equal(12, pipeline.Output.Count);
    }

    [Theory]
    [InlineData(new[] { "--parallelism", "0" }, "invalid value '0' for setting 'Parallelism' (from --parallelism): expected an integer from 1 to 1024")]
    [InlineData(new[] { "--parallelism", "many" }, "many")]
    [InlineData(new[] { "--no-such-option" }, "--no-such-option")]
    [InlineData(new[] { "--set", "Input.Pth=x" }, "unknown setting 'Input.Pth' (from --set). Did you mean 'Input.Path'? Settings of pipeline 'files': Parallelism, BatchSize")]
    [InlineData(new[] { "--set", "Input.ChunkBytes=12" }, "invalid value '12' for setting 'Input.ChunkBytes' (from --set): expected an integer ≥ 1024")]
    [InlineData(new[] { "--set", "ErrorPolicy=Sometimes" }, "invalid value 'Sometimes' for setting 'ErrorPolicy' (from --set): expected one of DeadLetter, Skip, FailFast")]
    [InlineData(new[] { "--set", "Input.Follow=yes" }, "expected true or false")]
    [InlineData(new[] { "--set", "GracePeriod=soon" }, "expected a positive duration such as 250ms, 5s, 2m, 1h or hh:mm:ss")]
    [InlineData(new[] { "--set", "GracePeriod=0" }, "invalid value '0' for setting 'GracePeriod' (from --set): expected a positive duration")]
    [InlineData(new[] { "--set", "Parallelism" }, "--set 'Parallelism' is not Name=Value")]
    [InlineData(new[] { "--explain", "html" }, "html")]
    [InlineData(new[] { "--log-level", "Loud" }, "Loud")]
    [InlineData(new[] { "--config", "/no/such/appsettings.json" }, "configuration file '/no/such/appsettings.json' does not exist")]
    public async Task Invalid_options_and_settings_exit_2_naming_the_problem_and_what_is_valid(string[] args, string expected)
    {
        var pipeline = new JsonFilePipeline();
        var (code, _, error) = await Run(pipeline, args);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
        Assert.Empty(pipeline.Output.Items);
    }

    [Fact]
    public async Task A_bad_environment_variable_is_named_in_the_error()
    {
        var (code, _, error) = await Run(new JsonFilePipeline(), ["--explain"], new Hashtable { ["COMPILED__BATCHSIZE"] = "-1" });
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains("invalid value '-1' for setting 'BatchSize' (from COMPILED__BATCHSIZE)", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ not json", "could not be read")]
    [InlineData("{\n  \"Compiled\": { \"Parallelism\": 2, }\n  oops\n}", "LineNumber: 2")] // where the JSON breaks
    [InlineData("""{ "Other": { "Parallelism": 2 } }""", "has no 'Compiled' section")]
    [InlineData("""{ "Compiled": { "Input": { "Colour": "blue" } } }""", "unknown setting 'Input:Colour' (from appsettings.json)")]
    public async Task A_bad_configuration_file_exits_2(string json, string expected)
    {
        var config = Path.Combine(_work, "appsettings.json");
        File.WriteAllText(config, json);
        var (code, _, error) = await Run(new JsonFilePipeline(), "--config", config, "--explain");
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.True(error.Contains(expected, StringComparison.Ordinal), error);
    }

    [Theory]
    [InlineData("text", "explained.keyed.txt")]
    [InlineData("mermaid", "explained.keyed.mermaid.txt")]
    public async Task Explain_shows_where_a_keyed_pipeline_breaks_its_chain_at_the_exchange(string format, string golden)
    {
        var pipeline = new Windows.SumsPerWindow();
        var (code, output, error) = await Run(pipeline, "--explain", format, "-p", "3");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
        Assert.Empty(pipeline.Results.Items);
    }

    [Theory]
    [InlineData("text", "explained.union.txt")]
    [InlineData("mermaid", "explained.union.mermaid.txt")]
    public async Task Explain_shows_every_source_of_a_union(string format, string golden)
    {
        var (code, output, error) = await Run(new Windows.UnionOfTwo(), "--explain", format, "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
    }

    [Theory]
    [InlineData("text", "explained.lookup.txt")]
    [InlineData("mermaid", "explained.lookup.mermaid.txt")]
    public async Task Explain_shows_a_lookup_and_its_table(string format, string golden)
    {
        var (code, output, error) = await Run(new Joins.SalesWithCustomers(), "--explain", format, "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
    }

    [Fact]
    public async Task Explain_says_a_local_lookup_reads_the_loop_before_it_without_an_exchange()
    {
        var (code, mermaid, error) = await Run(new Joins.SalesWithCustomers(), "--explain", "mermaid", "--set", "Customers.Routing=Local", "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("s1 -- \"local lookup\" --> s2", mermaid, StringComparison.Ordinal);
        Assert.DoesNotContain("hash exchange", mermaid, StringComparison.Ordinal);

        (code, var output, error) = await Run(new Joins.SalesWithCustomers(), "--explain", "--set", "Customers.Routing=Local", "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("reads keyBy 'CustomerOf' (loop 0) partition by partition (lookup Routing = Local): no exchange", output, StringComparison.Ordinal);
        Assert.DoesNotContain("hash exchange", output, StringComparison.Ordinal);
        Assert.Contains("routing Local: each partition looks up its own records", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("text", "explained.graph.txt")]
    [InlineData("mermaid", "explained.graph.mermaid.txt")]
    public async Task Explain_shows_the_whole_graph_with_its_branches_and_exchanges(string format, string golden)
    {
        var pipeline = new Graph.ServiceBranches();
        var (code, output, error) = await Run(pipeline, "--explain", format, "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
    }

    [Theory]
    [InlineData("text", "explained.twostage.txt")]
    [InlineData("mermaid", "explained.twostage.mermaid.txt")]
    public async Task Explain_shows_keyed_stages_in_sequence(string format, string golden)
    {
        var (code, output, error) = await Run(new Graph.TopPagesPerMinute(), "--explain", format, "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
    }

    [Theory]
    [InlineData("text", "explained.txt")]
    [InlineData("mermaid", "explained.mermaid.txt")]
    public async Task Explain_prints_the_plan_with_its_chain_break_and_runs_nothing(string format, string golden)
    {
        var pipeline = new ExplainedPipeline();
        var (code, output, error) = await Run(pipeline, "--explain", format, "-p", "2");
        Assert.True(code == ExitCodes.Success, error);
        AssertGolden(golden, output);
        Assert.Empty(pipeline.Memory.Items);
        Assert.False(Directory.Exists("out/lines"));
    }

    [Fact]
    public async Task Explain_without_a_format_prints_text()
    {
        var (_, text, _) = await Run(new ExplainedPipeline(), "--explain", "-p", "2");
        var (_, explicitText, _) = await Run(new ExplainedPipeline(), "--explain", "text", "-p", "2");
        Assert.Equal(explicitText, text);
        Assert.StartsWith("pipeline explained (Compiled.Runtime.Tests.Hosting.ExplainedPipeline)", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_run_exits_1_naming_the_stage()
    {
        var pipeline = new FragilePipeline { Numbers = new CollectionSource<long>(4241, 4242, 4243) };
        var (code, _, error) = await Run(pipeline, "-p", "1");
        Assert.Equal(ExitCodes.RuntimeFailure, code);
        Assert.Contains("stage 2 'Explode'", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stop_that_outlasts_the_grace_period_aborts_with_exit_code_3()
    {
        var source = new EndlessSource(signalAfter: 64);
        var pipeline = new EndlessPipeline
        {
            Numbers = source,
            Output = new TrackingSink<long> { Stall = token => new ValueTask(Task.Delay(Timeout.Infinite, token)) },
        };
        using var stop = new CancellationTokenSource();
        var run = Run(pipeline, ["-p", "1", "--batch-size", "16", "--grace-period", "200ms"], null, stop.Token);
        await source.Reached;
        await stop.CancelAsync();
        var (code, _, error) = await run;
        Assert.Equal(ExitCodes.Aborted, code);
        Assert.Contains("the grace period (200ms) ran out before in-flight records drained", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_connector_that_never_returns_from_an_abort_does_not_keep_the_host_from_exiting()
    {
        // An outside test: a copy whose Kafka cluster had been stopped did not exit on SIGTERM — client calls that wait
        // for brokers ignore cancellation. Here a writer ignores its token and never returns: the host gives the run
        // the grace period to drain and as long again to abort, then exits with 3 anyway.
        var source = new EndlessSource(signalAfter: 64);
        var never = new TaskCompletionSource();
        var pipeline = new EndlessPipeline
        {
            Numbers = source,
            Output = new TrackingSink<long> { Stall = _ => new ValueTask(never.Task) },
        };
        using var stop = new CancellationTokenSource();
        var run = Run(pipeline, ["-p", "1", "--batch-size", "16", "--grace-period", "200ms"], null, stop.Token);
        try
        {
            await source.Reached;
            await stop.CancelAsync();
            var (code, _, error) = await run.WaitAsync(TimeSpan.FromMinutes(2)); // a guard against hanging the suite, not a timing
            Assert.True(code == ExitCodes.Aborted, error);
            Assert.Contains("was still aborting 200ms after the grace period (200ms) ran out", error, StringComparison.Ordinal);
        }
        finally
        {
            never.SetResult(); // let the stuck writer go, so nothing of this run outlives the test
        }
    }

    [Fact]
    public async Task A_stop_before_the_end_of_a_bounded_collection_exits_4_saying_the_input_was_read_in_part()
    {
        var numbers = Enumerable.Range(1, 1_000_000).Select(i => (long)i).ToArray();
        using var stop = new CancellationTokenSource();
        var pipeline = new BoundedPipeline
        {
            Numbers = new CollectionSource<long>(numbers),
            Output = new TrackingSink<long> { BeforeWrite = _ => new ValueTask(stop.CancelAsync()) },
        };
        var (code, _, error) = await Run(pipeline, ["-p", "1", "--batch-size", "16"], null, stop.Token);
        Assert.True(code == ExitCodes.StoppedBeforeEnd, error);
        Assert.Contains("bounded: stopped before the end of its input", error, StringComparison.Ordinal);
        Assert.InRange(pipeline.Output.Written, 1, numbers.Length - 1);
        Assert.Contains($"{pipeline.Output.Written:N0} records read", error, StringComparison.Ordinal); // drained: all it read was written
    }

    [Fact]
    public async Task A_stop_after_a_bounded_collection_s_last_record_was_read_exits_0()
    {
        var numbers = Enumerable.Range(1, 10_000).Select(i => (long)i).ToArray();
        using var stop = new CancellationTokenSource();
        long received = 0;
        var pipeline = new BoundedPipeline
        {
            Numbers = new CollectionSource<long>(numbers),
            Output = new TrackingSink<long>
            {
                BeforeWrite = records => Interlocked.Add(ref received, records.Length) == numbers.Length ? new ValueTask(stop.CancelAsync()) : ValueTask.CompletedTask,
            },
        };
        var (code, _, error) = await Run(pipeline, ["-p", "1", "--batch-size", "16"], null, stop.Token);
        Assert.True(code == ExitCodes.Success, error);
        Assert.Equal(numbers.Length, pipeline.Output.Written);
        Assert.DoesNotContain("before the end", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stop_part_way_through_files_that_are_not_followed_exits_4_and_one_after_their_end_exits_0()
    {
        Directory.CreateDirectory(Path.Combine(_work, "in"));
        const int Lines = 200_000;
        File.Move(WriteLines("big.tmp", Lines), Path.Combine(_work, "in", "big.jsonl"));
        var pattern = Path.Combine(_work, "in", "*.jsonl");

        using (var stop = new CancellationTokenSource())
        {
            var pipeline = new BoundedFilePipeline
            {
                Input = new FileSource<LogLine, LogLine.JsonCodec>(pattern),
                Output = new TrackingSink<LogLine> { BeforeWrite = _ => new ValueTask(stop.CancelAsync()) },
            };
            var (code, _, error) = await Run(pipeline, ["-p", "1", "--batch-size", "16"], null, stop.Token);
            Assert.True(code == ExitCodes.StoppedBeforeEnd, error);
            Assert.InRange(pipeline.Output.Written, 1, Lines - 1);
        }

        using (var stop = new CancellationTokenSource())
        {
            long received = 0;
            var pipeline = new BoundedFilePipeline
            {
                Input = new FileSource<LogLine, LogLine.JsonCodec>(pattern),
                Output = new TrackingSink<LogLine>
                {
                    BeforeWrite = records => Interlocked.Add(ref received, records.Length) == Lines ? new ValueTask(stop.CancelAsync()) : ValueTask.CompletedTask,
                },
            };
            var (code, _, error) = await Run(pipeline, ["-p", "1", "--batch-size", "16"], null, stop.Token);
            Assert.True(code == ExitCodes.Success, error);
            Assert.Equal(Lines, pipeline.Output.Written);
        }
    }

    [Fact]
    public async Task A_stop_part_way_through_a_file_read_through_a_symbolic_link_exits_4()
    {
        // The input's size is its target's, not the link's (the length of the target's name): a stop part-way counted
        // as after the end when the link's size was taken.
        Directory.CreateDirectory(Path.Combine(_work, "in"));
        const int Lines = 200_000;
        var target = WriteLines("big.data", Lines);
        File.CreateSymbolicLink(Path.Combine(_work, "in", "big.jsonl"), target);
        using var stop = new CancellationTokenSource();
        var pipeline = new BoundedFilePipeline
        {
            Input = new FileSource<LogLine, LogLine.JsonCodec>(Path.Combine(_work, "in", "*.jsonl")),
            Output = new TrackingSink<LogLine> { BeforeWrite = _ => new ValueTask(stop.CancelAsync()) },
        };
        var (code, _, error) = await Run(pipeline, ["-p", "1", "--batch-size", "16"], null, stop.Token);
        Assert.True(code == ExitCodes.StoppedBeforeEnd, error);
        Assert.InRange(pipeline.Output.Written, 1, Lines - 1);
    }

    [Fact]
    public async Task An_abort_hands_no_queued_batch_to_a_writer_that_does_not_watch_its_token()
    {
        // The grace period runs out with batches queued for a slow writer that ignores its cancellation token: the
        // abort must not wait for it to take every queued batch (an outside test: 13 batches written after the abort).
        var source = new EndlessSource(signalAfter: 2_000);
        long afterAbort = 0;
        var pipeline = new EndlessPipeline
        {
            Numbers = source,
            Output = new TrackingSink<long>
            {
                Stall = async token =>
                {
                    if (token.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref afterAbort);
                    }

                    await Task.Delay(20, CancellationToken.None); // a writer busy with its own I/O, token unwatched
                },
            },
        };
        using var stop = new CancellationTokenSource();
        var run = Run(pipeline, ["-p", "1", "--batch-size", "16", "--grace-period", "200ms", "--set", "SinkQueueCapacity=64"], null, stop.Token);
        await source.Reached;
        await stop.CancelAsync();
        var (code, _, error) = await run;
        Assert.True(code == ExitCodes.Aborted, error);
        Assert.InRange(Interlocked.Read(ref afterAbort), 0, 1); // at most the batch whose write began as the abort came
    }

    [Fact]
    public async Task A_line_that_does_not_decode_under_FailFast_exits_2_not_the_retryable_1()
    {
        Directory.CreateDirectory(Path.Combine(_work, "in"));
        File.WriteAllText(Path.Combine(_work, "in", "a.jsonl"), "{\"seq\":1,\"path\":\"/a\",\"status\":200}\n{\"seq\":2,\"path\":\"/b\",\"status\":\"two hundred\"}\n");
        var pipeline = new BoundedFilePipeline { Input = new FileSource<LogLine, LogLine.JsonCodec>(Path.Combine(_work, "in", "*.jsonl")) };
        var (code, _, error) = await Run(pipeline, "-p", "1", "--error-policy", "FailFast");
        Assert.True(code == ExitCodes.ConfigurationError, error);
        Assert.Contains("a.jsonl", error, StringComparison.Ordinal); // where: the file and line
    }

    [Fact]
    public async Task A_stop_within_the_grace_period_drains_every_record_read_and_exits_0()
    {
        var source = new EndlessSource(signalAfter: 5_000);
        var pipeline = new EndlessPipeline { Numbers = source };
        using var stop = new CancellationTokenSource();
        var run = Run(pipeline, ["-p", "2", "--batch-size", "100"], null, stop.Token);
        await source.Reached;
        await stop.CancelAsync();
        var (code, _, error) = await run;
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("endless stopped in", error, StringComparison.Ordinal);
        Assert.True(pipeline.Output.Written > 0);
        Assert.Contains($"{pipeline.Output.Written:N0} records read", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_the_options_and_the_pipelines_own_settings_with_their_values()
    {
        var (code, output, _) = await Run(new ExplainedPipeline(), "--help");
        Assert.Equal(ExitCodes.Success, code);
        foreach (var option in new[] { "--parallelism", "--config", "--set", "--log-level", "--metrics-port", "--explain", "--grace-period" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }

        Assert.Contains("Input.Path", output, StringComparison.Ordinal);
        Assert.Contains("[now: in/*.jsonl]", output, StringComparison.Ordinal);
        Assert.Contains("Files.RollBytes", output, StringComparison.Ordinal);
        Assert.Contains("Exit codes: 0", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_shows_the_values_the_command_line_sets()
    {
        var (code, output, _) = await Run(new ExplainedPipeline(), "--set", "Input.Path=elsewhere/*.jsonl", "--parallelism", "3", "--help");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("[now: elsewhere/*.jsonl]", output, StringComparison.Ordinal);
        Assert.DoesNotContain("[now: in/*.jsonl]", output, StringComparison.Ordinal);
        Assert.Matches(@"Parallelism .*\[now: 3\]", output);
    }

    [Fact]
    public async Task Logs_go_to_standard_error_at_the_chosen_level()
    {
        var (quietCode, _, quietError) = await Run(new SquarePipeline { Numbers = new CollectionSource<long>(1, 2) }, "-p", "1");
        var (code, _, error) = await Run(new SquarePipeline { Numbers = new CollectionSource<long>(1, 2) }, "-p", "1", "--log-level", "Information");
        Assert.Equal(ExitCodes.Success, quietCode);
        Assert.Equal(ExitCodes.Success, code);
        Assert.DoesNotContain("info Compiled.Pipeline", quietError, StringComparison.Ordinal);
        Assert.Contains("info Compiled.Pipeline: Pipeline SquarePipeline starting: parallelism 1", error, StringComparison.Ordinal);
        Assert.Contains("info Compiled.Pipeline: Pipeline SquarePipeline completed", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quiet_prints_nothing_on_success()
    {
        var (code, output, error) = await Run(new SquarePipeline { Numbers = new CollectionSource<long>(1, 2) }, "-p", "1", "--quiet");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Empty(output);
        Assert.Empty(error);
    }

    private static void AssertGolden(string name, string actual, [CallerFilePath] string here = "")
    {
        var path = Path.Combine(Path.GetDirectoryName(here)!, "Golden", name);
        actual = actual.ReplaceLineEndings("\n");
        if (Environment.GetEnvironmentVariable("UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(path, actual);
        }

        Assert.True(File.Exists(path), $"golden file {path} is missing; run with UPDATE_GOLDEN=1 to create it");
        Assert.Equal(File.ReadAllText(path).ReplaceLineEndings("\n"), actual);
    }
}
