using Compiled.Connectors;

namespace Compiled.Runtime.Tests;

/// <summary>The partitioned executor: completion, stopping, failures and backpressure, on generated pipelines.</summary>
public sealed class ExecutionTests
{
    /// <summary>A guard against hangs only: a correct run finishes in milliseconds; nothing waits on this timer.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(1, 1024)]
    [InlineData(2, 7)]
    [InlineData(4, 100)]
    public async Task A_bounded_run_completes_writes_everything_and_closes_everything(int parallelism, int batchSize)
    {
        var input = Enumerable.Range(0, 10_000).Select(i => (long)i).ToArray();
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(input) };

        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize }).WaitAsync(HangGuard);

        Assert.Equal(PipelineOutcome.Completed, result.Outcome);
        Assert.Equal(input.Length, result.RecordsRead);
        Assert.Equal(input.Length, result.Sinks.Single().Records);
        Assert.Equal(input.Select(x => x * x).Order(), pipeline.Output.Items.Order());
        Assert.Equal(1, pipeline.Output.Opened);
        Assert.Equal(1, pipeline.Output.Closed);
        Assert.Equal(parallelism, pipeline.Output.WritersCreated);
        Assert.Equal(parallelism, pipeline.Output.WritersDisposed);
        Assert.True(pipeline.Output.Flushes >= parallelism, "every writer is flushed at the end");
    }

    [Fact]
    public async Task Stopping_mid_run_stops_the_source_drains_in_flight_batches_and_closes_the_sinks()
    {
        var source = new EndlessSource(signalAfter: 50_000);
        var pipeline = new EndlessPipeline { Numbers = source };
        using var stop = new CancellationTokenSource();

        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 256 }, stop.Token);
        await source.Reached.WaitAsync(HangGuard);
        await stop.CancelAsync();
        var result = await run.WaitAsync(HangGuard);

        Assert.Equal(PipelineOutcome.Stopped, result.Outcome);
        Assert.True(result.RecordsRead >= 50_000);
        // Nothing read was lost: every record read reached the sink before it closed.
        Assert.Equal(result.RecordsRead, pipeline.Output.Written);
        Assert.Equal(result.RecordsRead, result.Sinks.Single().Records);
        Assert.Equal(1, pipeline.Output.Closed);
        Assert.Equal(2, pipeline.Output.WritersDisposed);
        Assert.True(source.Closed);
        Assert.Equal(2, source.ReadersDisposed);
    }

    [Fact]
    public async Task An_operator_exception_names_pipeline_stage_and_partition_and_stops_the_run_cleanly()
    {
        var pipeline = new FragilePipeline { Numbers = new CollectionSource<long>(Enumerable.Range(0, 10_000).Select(i => (long)i)) };

        var error = await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 100 }).WaitAsync(HangGuard));

        Assert.Equal("fragile", error.PipelineName);
        Assert.Equal("Explode", error.StageName);
        Assert.Equal(2, error.StageIndex);
        Assert.Equal(0, error.Partition); // 4242 is in the first half of the input
        Assert.Contains("Pipeline 'fragile': stage 2 'Explode'", error.Message, StringComparison.Ordinal);
        Assert.Contains("partition 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("boom at 4242", error.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(error.InnerException);
        Assert.Equal(1, pipeline.Output.Closed);
        Assert.Equal(2, pipeline.Output.WritersDisposed);
        Assert.DoesNotContain(4242L, pipeline.Output.Items);
    }

    [Fact]
    public async Task An_exception_in_the_first_stage_is_attributed_to_the_first_stage()
    {
        var pipeline = new FirstStageFails { Numbers = new CollectionSource<long>(1, 2, 7, 8) };
        var error = await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }).WaitAsync(HangGuard));
        Assert.Equal("Check", error.StageName);
        Assert.Equal(1, error.StageIndex);
    }

    [Fact]
    public async Task A_stateless_stage_failing_after_a_stateful_one_ran_for_the_same_record_is_found_by_replay()
    {
        // 4 flat-maps to [4, 5]: 4 passes Check and reaches the stateful Count (which marks stage 3); then 5 fails in
        // the stateless Check (stage 2), which carries no marker: the runtime must replay, not report stage 3.
        var pipeline = new PrefixFailsAfterMarkedStage { Numbers = new CollectionSource<long>(1, 4) };
        var error = await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }).WaitAsync(HangGuard));
        Assert.Equal("Check", error.StageName);
        Assert.Equal(2, error.StageIndex);
        Assert.Contains("five", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failing_sink_stops_the_run_with_the_sink_named()
    {
        var pipeline = new SquarePipeline
        {
            Numbers = new CollectionSource<long>(Enumerable.Range(0, 5_000).Select(i => (long)i)),
            Output = new TrackingSink<long> { BeforeWrite = _ => throw new IOException("disk full") },
        };

        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 100 }).WaitAsync(HangGuard));

        Assert.Equal("Output", error.ConnectorName);
        Assert.Contains("disk full", error.Message, StringComparison.Ordinal);
        Assert.Equal(1, pipeline.Output.Closed);
    }

    [Fact]
    public async Task A_slow_sink_slows_the_source_so_records_in_flight_stay_bounded()
    {
        const int BatchSize = 64;
        const int Capacity = 2;
        var source = new EndlessSource(signalAfter: 20_000);
        var sink = new TrackingSink<long>
        {
            // The sink is slow; the source is as fast as it can be. Without backpressure the gap grows without bound.
            BeforeWrite = async _ => await Task.Delay(1),
        };
        var pipeline = new EndlessPipeline { Numbers = source, Output = sink };
        long worstGap = 0;
        source.OnBatch = produced =>
        {
            var gap = produced - sink.Written;
            InterlockedMax(ref worstGap, gap);
        };
        using var stop = new CancellationTokenSource();

        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = BatchSize, SinkQueueCapacity = Capacity }, stop.Token);
        await source.Reached.WaitAsync(HangGuard);
        await stop.CancelAsync();
        await run.WaitAsync(HangGuard);

        // In flight at most: the batch being processed, the queue, the batch being written, and one waiting to enqueue.
        var bound = (Capacity + 3) * BatchSize;
        Assert.True(worstGap <= bound, $"records in flight reached {worstGap}, more than the bound {bound}");
        Assert.True(source.Produced >= 20_000);
    }

    [Fact]
    public async Task A_null_source_is_a_configuration_error_naming_the_member()
    {
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => new NullSourcePipeline().RunAsync(new PipelineOptions { Parallelism = 1 }));
        Assert.Contains("source 'Numbers' is null", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, 1024, "Invalid parallelism 0: it must be 1 to 1024.")]
    [InlineData(2, 0, "Invalid batch size 0: it must be 1 to 1048576.")]
    public async Task Invalid_options_fail_before_anything_runs(int parallelism, int batchSize, string message)
    {
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize }));
        Assert.Equal(message, error.Message);
        Assert.Equal(0, pipeline.Output.Opened);
    }

    [Fact]
    public async Task The_generator_source_gives_each_partition_a_contiguous_range()
    {
        var pipeline = new ReadingsPipeline { Readings = new GeneratorSource<Reading>(1_000, i => new Reading(i % 10, i)) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 3, BatchSize = 64 });
        var partitions = pipeline.Output.Partitions;
        Assert.Equal(3, partitions.Count);
        Assert.Equal(Enumerable.Range(0, 1_000).Select(i => (double)i), partitions.SelectMany(p => p).Select(r => r.Value));
        Assert.Equal([334, 333, 333], partitions.Select(p => p.Count));
    }

    private static void InterlockedMax(ref long target, long value)
    {
        long current;
        while ((current = Interlocked.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
