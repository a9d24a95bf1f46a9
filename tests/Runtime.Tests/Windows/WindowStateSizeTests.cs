namespace Compiled.Runtime.Tests.Windows;

/// <summary>
/// What window state costs per key (issue #23). Measured as what the operator allocates on this thread while it takes
/// the keys in: an upper bound on what it keeps (it includes what it let go while growing), and deterministic whatever
/// other tests do meanwhile. docs/state.md's sizing guide has the live figures, measured in a quiet process.
/// </summary>
public sealed class WindowStateSizeTests
{
    private const int Keys = 1_000_000;

    private static long AllocatedWhileAdding(KeyedOperator<int, int, WindowResult<int, long>> op, Func<int, long> timeOf)
    {
        var batch = new Keyed<int, int>[1024];
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var first = 0; first < Keys; first += batch.Length)
        {
            var count = Math.Min(batch.Length, Keys - first);
            for (var i = 0; i < count; i++)
            {
                var key = first + i;
                batch[i] = new Keyed<int, int>(key, timeOf(key), key);
            }

            op.Add(batch.AsSpan(0, count));
        }

        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void A_tumbling_count_takes_a_million_int_keys_in_at_most_40_bytes_each()
    {
        var op = WindowOperator.Create<int, int, Count<int>, long, long>(Window.Tumbling(TimeSpan.FromSeconds(1)), TimeSpan.Zero);
        var allocated = AllocatedWhileAdding(op, key => key % 1000);
        Assert.Equal(Keys, op.StateEntries);
        Assert.True(allocated <= 40L * Keys, $"{allocated / (double)Keys:F1} bytes per key");
    }
}
