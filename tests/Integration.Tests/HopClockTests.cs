using Compiled.Kafka;
using Compiled.Runtime.CompilerServices;
using CsCheck;

namespace Compiled.Integration.Tests;

/// <summary>
/// The event time a partition of a repartition hop has reached, from the writers' marks: the slowest origin still
/// being read, nothing before every origin was heard from — checked against a naive reference over random marks.
/// </summary>
public sealed class HopClockTests
{
    [Fact]
    public void The_clock_follows_the_slowest_origin_still_read_and_waits_for_every_origin()
    {
        var step = Gen.Select(Gen.Int[0, 3], Gen.Long[0, 1_000], Gen.Bool, Gen.Int[0, 4]);
        Gen.Select(Gen.Int[1, 4], step.Array[1, 60]).Sample((origins, steps) =>
        {
            var clock = new HopClock();
            var reached = new Dictionary<int, long>();
            var atEnd = new Dictionary<int, bool>();
            var ends = new Dictionary<int, long>();
            foreach (var (origin, time, end, kind) in steps)
            {
                var o = origin % origins;
                if (kind == 0)
                {
                    clock.Record(o); // a record: the origin is read again
                    atEnd[o] = false;
                }
                else if (kind == 1)
                {
                    clock.Wake(o); // its end found stale: it is read again
                    atEnd[o] = false;
                }
                else
                {
                    clock.Mark(o, time, origins, end, time + 7);
                    reached[o] = Math.Max(reached.GetValueOrDefault(o, long.MinValue), time);
                    atEnd[o] = end;
                    ends[o] = time + 7;
                }

                foreach (var known in reached.Keys)
                {
                    Assert.Equal(atEnd[known], clock.IsAtEnd(known, out var readTo));
                    Assert.Equal(ends[known], readTo);
                }

                Assert.Equal(reached.Keys.Any(k => atEnd[k]), clock.AnyAtEnd);

                var expected = reached.Count < origins
                    ? long.MinValue
                    : Enumerable.Range(0, origins).All(i => atEnd[i])
                        ? reached.Values.Max()
                        : Enumerable.Range(0, origins).Where(i => !atEnd[i]).Min(i => reached[i]);
                Assert.Equal(expected, clock.Reached);
                Assert.Equal(reached.Count == origins && Enumerable.Range(0, origins).All(i => atEnd[i]), clock.AllAtEnd);
            }

            // Kept with a checkpoint, it reads back the same.
            var writer = new StateWriter();
            clock.WriteTo(writer);
            var reader = new StateReader(writer.Written);
            var read = HopClock.ReadFrom(ref reader);
            Assert.True(reader.End);
            Assert.Equal(clock.Reached, read.Reached);
            Assert.Equal(clock.AllAtEnd, read.AllAtEnd);
            Assert.Equal(clock.Origins, read.Origins);
            foreach (var known in reached.Keys)
            {
                Assert.Equal(clock.IsAtEnd(known, out var end), read.IsAtEnd(known, out var readEnd));
                Assert.Equal(end, readEnd);
            }
        });
    }

    [Fact]
    public void A_topic_that_grows_adds_origins_the_clock_waits_for_and_a_damaged_clock_is_refused()
    {
        var clock = new HopClock();
        clock.Mark(0, 100, 2, atEnd: false, end: 0);
        Assert.Equal(long.MinValue, clock.Reached); // origin 1 not heard from yet
        clock.Mark(1, 50, 2, atEnd: false, end: 0);
        Assert.Equal(50, clock.Reached);
        clock.Mark(1, 40, 2, atEnd: false, end: 0);
        Assert.Equal(50, clock.Reached); // a mark never moves an origin back
        clock.Mark(2, 500, 3, atEnd: false, end: 0); // the topic grew
        Assert.Equal(50, clock.Reached);
        clock.Mark(5, 1, 3, atEnd: false, end: 0); // an origin the marks do not know of is ignored
        Assert.Equal(3, clock.Origins);

        var writer = new StateWriter();
        clock.WriteTo(writer);
        var bytes = writer.Written.ToArray();
        for (var length = 0; length < bytes.Length; length++)
        {
            var cut = bytes.AsMemory(0, length);
            Assert.Throws<InvalidDataException>(() =>
            {
                var reader = new StateReader(cut);
                HopClock.ReadFrom(ref reader);
            });
        }
    }
}
