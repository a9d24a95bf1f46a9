using System.Text;
using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Connectors;

/// <summary>Standard input whose reads ignore cancellation, as the console's do.</summary>
public sealed class StdinTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_stop_ends_a_run_whose_input_is_open_and_idle_even_when_its_reads_ignore_cancellation()
    {
        // An outside test's finding: SIGTERM to a pipeline reading an idle stdin pipe waited for input that never came.
        var input = new GateStream();
        var pipeline = new ShellPipeline { Input = new(input) };
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 1 }, stop.Token);
        await input.ReadStarted.WaitAsync(HangGuard);
        await stop.CancelAsync();
        var result = await run.WaitAsync(HangGuard);
        Assert.Equal(0, result.RecordsIn);
    }

    [Fact]
    public async Task A_read_whose_wait_was_cancelled_hands_its_bytes_to_the_next_read()
    {
        var inner = new GateStream();
        using var stream = new InterruptibleReadStream(inner, 64, leaveOpen: false);
        using (var cancel = new CancellationTokenSource())
        {
            var waiting = stream.ReadAsync(new byte[16], cancel.Token).AsTask();
            await inner.ReadStarted.WaitAsync(HangGuard);
            await cancel.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        }

        inner.Complete("abc"u8.ToArray()); // the read that was left pending ends now
        var buffer = new byte[2];
        var first = await stream.ReadAsync(buffer);
        Assert.Equal("ab", Encoding.ASCII.GetString(buffer, 0, first));
        var second = await stream.ReadAsync(buffer);
        Assert.Equal("c", Encoding.ASCII.GetString(buffer, 0, second));
        Assert.Equal(1, inner.Reads); // one read of the inner stream, not one per call
    }

    /// <summary>A stream whose one read ends only when the test says, whatever its token says (the console's behaviour).</summary>
    private sealed class GateStream : Stream
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<byte[]> _data = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task ReadStarted => _started.Task;

        public int Reads { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public void Complete(byte[] data) => _data.SetResult(data);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Reads++;
            _started.TrySetResult();
            var data = await _data.Task.ConfigureAwait(false); // the token is ignored
            data.CopyTo(buffer);
            return data.Length;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count, CancellationToken.None).GetAwaiter().GetResult();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
