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
}
