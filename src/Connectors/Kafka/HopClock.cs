using Compiled.Runtime.CompilerServices;

namespace Compiled.Kafka;

/// <summary>
/// How far in event time one partition of a repartition hop's topic has got. Such a partition mixes the records of every source partition (origin), each re-keyed as its writer reads it,
/// so its records' largest event time says nothing of an origin whose writer lags behind. The writers' marks say how
/// far each origin has got; the partition has got as far as the slowest origin still being read — as a single process
/// reading the origins as splits would. Until it has heard from every origin it holds the watermark back. An origin's
/// writer says it is at its end (and at which offset) only once it has been for the source's <c>IdleAfterEnd</c>, as a
/// single reader would; a claim the reader finds stale (the origin has more records: its writer died or froze before
/// it could say so) is withdrawn with <see cref="Wake"/> until the origin's next mark.
/// </summary>
internal sealed class HopClock
{
    private const byte Version = 2;
    private long[] _reached = []; // long.MinValue: not heard from (or at its end without a record)
    private bool[] _atEnd = [];
    private long[] _end = []; // at its end: the offset it was read to

    /// <summary>The number of origins the marks say there are (0 before the first mark).</summary>
    public int Origins => _reached.Length;

    /// <summary>
    /// A writer's mark: <paramref name="origin"/> of <paramref name="origins"/> has reached <paramref name="eventTime"/>
    /// (its largest event time so far), and is at its end — read to <paramref name="end"/> — or not. Marks of an origin
    /// only move it forward.
    /// </summary>
    public void Mark(int origin, long eventTime, int origins, bool atEnd, long end)
    {
        if (origins > _reached.Length)
        {
            var known = _reached.Length;
            Array.Resize(ref _reached, origins);
            Array.Resize(ref _atEnd, origins);
            Array.Resize(ref _end, origins);
            _reached.AsSpan(known).Fill(long.MinValue);
        }

        if ((uint)origin >= (uint)_reached.Length)
        {
            return; // a mark of a topic that had more partitions than the latest mark says: the next marks correct it
        }

        _reached[origin] = Math.Max(_reached[origin], eventTime);
        _atEnd[origin] = atEnd;
        _end[origin] = end;
    }

    /// <summary>Whether <paramref name="origin"/> said it is at its end, and the offset it was read to.</summary>
    public bool IsAtEnd(int origin, out long end)
    {
        end = _end[origin];
        return _atEnd[origin];
    }

    /// <summary>Whether some origin says it is at its end (the clock then counts on it having nothing more).</summary>
    public bool AnyAtEnd => Array.IndexOf(_atEnd, true) >= 0;

    /// <summary>
    /// <paramref name="origin"/> said it is at its end, but has more records than it was read to: its writer stopped
    /// before saying so. It holds the clock back at its event time until its next mark.
    /// </summary>
    public void Wake(int origin) => Record(origin);

    /// <summary>A record of <paramref name="origin"/> arrived: it is being read again, whatever its last mark said.</summary>
    public void Record(int origin)
    {
        if ((uint)origin < (uint)_atEnd.Length)
        {
            _atEnd[origin] = false;
        }
    }

    /// <summary>Whether every origin has said it is at its end (the partition holds nothing back then).</summary>
    public bool AllAtEnd => _reached.Length > 0 && Array.TrueForAll(_atEnd, e => e);

    /// <summary>
    /// The event time every origin still being read has reached — the smallest of theirs; with every origin at its end,
    /// the largest of all. <see cref="long.MinValue"/> until every origin has been heard from.
    /// </summary>
    public long Reached
    {
        get
        {
            if (_reached.Length == 0)
            {
                return long.MinValue;
            }

            // An origin not heard from is not at its end and at long.MinValue: it holds everything back.
            var slowest = long.MaxValue;
            var largest = long.MinValue;
            for (var i = 0; i < _reached.Length; i++)
            {
                largest = Math.Max(largest, _reached[i]);
                if (!_atEnd[i])
                {
                    slowest = Math.Min(slowest, _reached[i]);
                }
            }

            return slowest == long.MaxValue ? largest : slowest;
        }
    }

    /// <summary>Appends the clock (kept with the partition's checkpoint, so a restored run need not wait for new marks).</summary>
    public void WriteTo(StateWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteByte(Version);
        writer.WriteInt32(_reached.Length);
        for (var i = 0; i < _reached.Length; i++)
        {
            writer.WriteInt64(_reached[i]);
            writer.WriteByte(_atEnd[i] ? (byte)1 : (byte)0);
            writer.WriteInt64(_end[i]);
        }
    }

    /// <summary>Reads a clock <see cref="WriteTo"/> wrote; throws <see cref="InvalidDataException"/> on anything else.</summary>
    public static HopClock ReadFrom(ref StateReader reader)
    {
        var version = reader.ReadByte();
        if (version != Version)
        {
            throw new InvalidDataException($"A repartition clock of version {version}; this build reads version {Version}.");
        }

        var count = reader.ReadInt32();
        if (count < 0 || count > 1 << 20)
        {
            throw new InvalidDataException($"A repartition clock of {count} origins.");
        }

        var clock = new HopClock { _reached = new long[count], _atEnd = new bool[count], _end = new long[count] };
        for (var i = 0; i < count; i++)
        {
            clock._reached[i] = reader.ReadInt64();
            var atEnd = reader.ReadByte();
            if (atEnd > 1)
            {
                throw new InvalidDataException($"A repartition clock says {atEnd} of whether origin {i} is at its end.");
            }

            clock._atEnd[i] = atEnd == 1;
            clock._end[i] = reader.ReadInt64();
        }

        return clock;
    }
}
