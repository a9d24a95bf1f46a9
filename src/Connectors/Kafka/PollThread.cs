using System.Collections.Concurrent;

namespace Compiled.Kafka;

/// <summary>
/// A thread of its own for a blocking client call (librdkafka's Consume waits up to the poll timeout). Calls are
/// handed over one at a time and awaited, so the caller's thread-pool thread is free while the call blocks, and a run
/// with more partitions than cores keeps making progress.
/// </summary>
internal sealed class PollThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public PollThread(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="call"/> on the thread; the returned task completes (off that thread) with its result.</summary>
    public Task<T> Run<T>(Func<T> call)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Thread.CurrentThread == _thread)
        {
            // Already on it (a callback inside a call): run inline rather than wait for ourselves.
            Complete(done, call);
            return done.Task;
        }

        _work.Add(() => Complete(done, call));
        return done.Task;
    }

    private static void Complete<T>(TaskCompletionSource<T> done, Func<T> call)
    {
        try
        {
            done.SetResult(call());
        }
        catch (Exception ex)
        {
            done.SetException(ex);
        }
    }

    private void Loop()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            work();
        }
    }

    public void Dispose()
    {
        _work.CompleteAdding();
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
            _work.Dispose();
        }
    }
}
