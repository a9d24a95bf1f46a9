using Compiled.Connectors;

namespace Compiled.Runtime.Tests;

/// <summary>The command-line host: options, exit codes, explain and summary.</summary>
public sealed class HostTests
{
    private static async Task<(int Code, string Output, string Error)> Run(ICompiledPipeline pipeline, params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await PipelineHost.RunAsync(pipeline, args, output, error);
        return (code, output.ToString(), error.ToString());
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
    public async Task Explain_prints_the_plan_and_runs_nothing()
    {
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        var (code, output, _) = await Run(pipeline, "--explain");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Equal(
            """
            pipeline SquarePipeline (Compiled.Runtime.Tests.SquarePipeline), errors: DeadLetter
              segment 0: one fused loop (all edges forward, one input, same parallelism)
                 0 source   Numbers [CollectionSource<long>] long
                 1 map      Square [Square] long -> long
                 2 sink     Output [TrackingSink<long>] long -> long

            """.ReplaceLineEndings("\n"),
            output);
        Assert.Equal(0, pipeline.Output.Opened);
    }

    [Theory]
    [InlineData(new[] { "--parallelism", "0" }, "Invalid parallelism 0: it must be 1 to 1024.")]
    [InlineData(new[] { "--parallelism", "many" }, "many")]
    [InlineData(new[] { "--no-such-option" }, "--no-such-option")]
    public async Task Invalid_command_lines_exit_2_naming_the_problem(string[] args, string expected)
    {
        var (code, _, error) = await Run(new SquarePipeline { Numbers = new CollectionSource<long>(1) }, args);
        Assert.Equal(ExitCodes.ConfigurationError, code);
        Assert.Contains(expected, error, StringComparison.Ordinal);
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
    public async Task Help_lists_the_options()
    {
        var (code, output, _) = await Run(new SquarePipeline(), "--help");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("--parallelism", output, StringComparison.Ordinal);
        Assert.Contains("--explain", output, StringComparison.Ordinal);
    }
}
