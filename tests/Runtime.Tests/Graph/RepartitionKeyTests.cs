using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using CsCheck;

namespace Compiled.Runtime.Tests.Graph;

/// <summary>
/// What a repartition hop asks of a window's [KeyBy]: the partition of a source record's key, the same in every
/// process (a hash of the key's bytes, not of its .NET hash code), and its event time.
/// </summary>
public sealed class RepartitionKeyTests
{
    [Fact]
    public void A_key_selector_on_the_source_records_gives_the_partition_of_its_keys_bytes_and_the_event_time()
    {
        var job = (IPipelineJobSlots)((ICompiledPipeline)new TwoWindowBranches()).CreateJob();
        var keys = job.KeyedStages.Select(s => Assert.IsAssignableFrom<IRepartitionKey<View>>(s.RepartitionKey)).ToList();
        Assert.Equal(2, keys.Count); // a static method, and an instance method of the pipeline object
        Gen.Select(Gen.String, Gen.Long, Gen.Int[1, 64]).Sample((page, time, partitions) =>
        {
            foreach (var key in keys)
            {
                Assert.True(key.HasEventTime);
                Assert.Equal(Expected(page, partitions), key.PartitionOf(new View(page, time), partitions, out var eventTime));
                Assert.Equal(time, eventTime);
            }
        });
    }

    [Fact]
    public void A_null_key_throws_as_the_loop_does_and_a_selector_behind_a_window_has_no_repartition_key()
    {
        var branches = (IPipelineJobSlots)((ICompiledPipeline)new TwoWindowBranches()).CreateJob();
        var key = (IRepartitionKey<View>)branches.KeyedStages[0].RepartitionKey!;
        var ex = Assert.Throws<ArgumentNullException>(() => key.PartitionOf(new View(null!, 0), 4, out _));
        Assert.Equal("Page", ex.ParamName);

        // The second window's [KeyBy] reads the first window's results, not the source's records.
        var top = (IPipelineJobSlots)((ICompiledPipeline)new TopPagesPerMinute()).CreateJob();
        Assert.NotNull(top.KeyedStages[0].RepartitionKey);
        Assert.Null(top.KeyedStages[1].RepartitionKey);
    }

    /// <summary>The checkpoint codec's bytes of a string (a 32-bit little-endian length, then UTF-8), hashed with XxHash3.</summary>
    private static int Expected(string key, int partitions)
    {
        var utf8 = Encoding.UTF8.GetBytes(key);
        var bytes = new byte[4 + utf8.Length];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, utf8.Length);
        utf8.CopyTo(bytes, 4);
        return (int)(XxHash3.HashToUInt64(bytes) % (ulong)partitions);
    }
}
