namespace Compiled.Runtime.Tests;

/// <summary>
/// A source that starts a checkpoint from inside a read, as Kafka's revoke handler does, and reports the failure the
/// way a client library would: wrapped in its own exception.
/// </summary>
public sealed class CheckpointingSource : ISource<long>
{
    private SourceContext<long>? _context;

    public ValueTask OpenAsync(SourceContext<long> context, CancellationToken cancellationToken)
    {
        _context = context;
        return ValueTask.CompletedTask;
    }

    public ISourceReader<long> CreateReader(int partition) => new Reader(this, partition);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(CheckpointingSource source, int partition) : ISourceReader<long>
    {
        private int _reads;

        public async ValueTask<SourceBatch<long>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_reads++ == 0)
            {
                return SourceBatch<long>.Of(new long[] { 1, 2, 3 });
            }

            try
            {
                await source._context!.CheckpointAsync(partition, cancellationToken);
            }
            catch (Exception ex)
            {
                throw new InvalidOperationException("the rebalance callback failed", ex);
            }

            return SourceBatch<long>.End;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

[Pipeline(Name = "attribution")]
public sealed partial class CheckpointingPipeline
{
    [Source] public CheckpointingSource Numbers { get; set; } = new();

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

/// <summary>Numbers through a transform that runs out of memory on 13, behind and in front of a keyed count.</summary>
[Pipeline(Name = "out-of-memory")]
public sealed partial class OutOfMemoryPipeline
{
    [Source] public Compiled.Connectors.CollectionSource<long> Numbers { get; set; } = new();

#pragma warning disable CA2201 // stands in for the runtime's own failure: a real one would need the machine's memory
    [Transform] static long Allocate(long x) => x == 13 ? throw new OutOfMemoryException() : x;
#pragma warning restore CA2201

    [Sink] public TrackingSink<long> Output { get; set; } = new();
}

/// <summary>A run's failure names the connector that failed (issue 18, item 9).</summary>
public sealed class FailureAttributionTests
{
    [Fact]
    public async Task A_sink_failure_that_surfaces_through_the_source_is_reported_as_the_sinks()
    {
        var pipeline = new CheckpointingPipeline { Output = new TrackingSink<long> { FailWritesAt = 0 } };
        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Equal("Output", error.ConnectorName);
        Assert.Contains("disk full", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Running_out_of_memory_fails_the_run_with_an_error_that_says_so_and_is_never_a_dead_letter()
    {
        var deadLetters = new Compiled.Connectors.CollectionSink<DeadLetter>();
        var pipeline = new OutOfMemoryPipeline { Numbers = new Compiled.Connectors.CollectionSource<long>([.. Enumerable.Range(0, 100).Select(i => (long)i)]) };
        var error = await Assert.ThrowsAsync<PipelineException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, ErrorPolicy = ErrorPolicy.DeadLetter, DeadLetterSink = deadLetters }).WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("ran out of memory in partition 0", error.Message, StringComparison.Ordinal);
        Assert.Contains("Sizing", error.Message, StringComparison.Ordinal);
        Assert.IsType<OutOfMemoryException>(error.InnerException);
        Assert.Empty(deadLetters.Items);
        Assert.Equal(0, pipeline.Output.Written); // the run failed: its batch never reached the sink as complete
    }
}
