namespace Compiled.Runtime;

/// <summary>
/// A window operator's state as a checkpoint holds it. One partition's snapshot is a header — the operator kind, its
/// watermark, a kind-specific clock value (the next window end of a pane operator), the entry count and the watermark
/// its inputs had reached (<see cref="KeyedOperator{TKey, TIn, TResult}.Reached"/>) — then the entries, each led by its key. Restoring reads the snapshots of every old partition and gives each entry to the new
/// partition that owns its key (<see cref="KeyHash.Partition"/> over the new parallelism): a checkpoint restores at
/// any parallelism. Key hashes are recomputed, never stored (string hashes differ between processes).
/// </summary>
internal interface IWindowState<TKey, TAcc>
    where TKey : notnull
{
    /// <summary>The operator kind a snapshot's header names (pane, session, running).</summary>
    byte Kind { get; }

    /// <summary>
    /// Writes the header and every entry — or, for state on disk, checkpoints its database beside checkpoint
    /// <paramref name="checkpoint"/>'s folder and writes the header and where that went.
    /// </summary>
    void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators);

    /// <summary>Sets the restored operator's clock: the earliest watermark and clock value among the old partitions.</summary>
    void RestoreClock(long watermark, long clock);

    /// <summary>The watermark the run's inputs had reached at the checkpoint, counting every input as idle (the largest among the old partitions).</summary>
    long Reached { get; set; }

    /// <summary>Reads <paramref name="count"/> entries and adds each to the operator in <paramref name="targets"/> that owns its key.</summary>
    void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets);
}

/// <summary>The header every window snapshot starts with.</summary>
internal readonly record struct WindowStateHeader(byte Kind, long Watermark, long Clock, long Count, long Reached, byte[]? SplitState = null)
{
    /// <summary>
    /// Version 2 added <see cref="Reached"/>; a version 1 snapshot reads with none (<see cref="long.MinValue"/>).
    /// Version 3 added <see cref="SplitState"/> (a length, -1 for none, then the bytes); earlier ones read with none.
    /// </summary>
    public const int Version = 3;

    private static bool OnDisk(byte kind) => kind is DiskRunningKind or DiskPaneKind or DiskRunningTimedKind;

    /// <summary>The kind of a running aggregate's state on disk (its snapshot names a RocksDB checkpoint).</summary>
    public const byte DiskRunningKind = 13;

    /// <summary>The kind of a tumbling or sliding window's state on disk (its snapshot names a RocksDB checkpoint).</summary>
    public const byte DiskPaneKind = 14;

    /// <summary>The kind of a running aggregate's state on disk with a state time-to-live: each value holds its last update's time.</summary>
    public const byte DiskRunningTimedKind = 15;

    public void Write(StateWriter writer)
    {
        writer.WriteByte(Version);
        writer.WriteByte(Kind);
        writer.WriteInt64(Watermark);
        writer.WriteInt64(Clock);
        writer.WriteInt64(Count);
        writer.WriteInt64(Reached);
        writer.WriteInt32(SplitState?.Length ?? -1);
        if (SplitState is { } state)
        {
            writer.WriteBytes(state);
        }
    }

    public static WindowStateHeader Read(ref StateReader reader)
    {
        var version = reader.ReadByte();
        if (version is < 1 or > Version)
        {
            throw new InvalidDataException($"Window state of version {version} (this build reads versions 1 to {Version}).");
        }

        var (kind, watermark, clock, count) = (reader.ReadByte(), reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64());
        var reached = version >= 2 ? reader.ReadInt64() : long.MinValue;
        byte[]? splitState = null;
        if (version >= 3 && reader.ReadInt32() is var length and >= 0)
        {
            splitState = reader.ReadBytes(length).ToArray();
        }

        return new WindowStateHeader(kind, watermark, clock, count, reached, splitState);
    }

    /// <summary>The split state in a snapshot's header (<see cref="ISplitStateReader"/>), or null.</summary>
    public static byte[]? SplitStateOf(ReadOnlyMemory<byte> snapshot)
    {
        var reader = new StateReader(snapshot);
        return Read(ref reader).SplitState;
    }

    /// <summary>
    /// Restores the snapshots of every old partition of one window into <paramref name="targets"/> (the new partitions,
    /// in order): the earliest clock first, then every entry to the partition that owns its key.
    /// </summary>
    public static void Restore<TKey, TAcc>(IReadOnlyList<ReadOnlyMemory<byte>> snapshots, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
        where TKey : notnull
    {
        var kind = targets[0].Kind;
        var watermark = long.MaxValue;
        var clock = long.MaxValue;
        var reached = long.MinValue;
        foreach (var snapshot in snapshots)
        {
            var reader = new StateReader(snapshot);
            var header = Read(ref reader);
            if (header.Kind != kind)
            {
                throw new InvalidDataException(OnDisk(header.Kind) != OnDisk(kind)
                    ? $"the checkpoint holds it {(OnDisk(header.Kind) ? "on disk" : "in memory")} and this run keeps it {(OnDisk(kind) ? "on disk" : "in memory")}; run with StateBackend={(OnDisk(header.Kind) ? "Disk" : "Memory")}, or start with empty state"
                    : (header.Kind, kind) is (DiskRunningKind, DiskRunningTimedKind) or (DiskRunningTimedKind, DiskRunningKind)
                        ? $"the checkpoint holds a running aggregate on disk {(header.Kind == DiskRunningTimedKind ? "with" : "without")} a state time-to-live and this run has {(kind == DiskRunningTimedKind ? "one" : "none")}; on disk a time-to-live cannot be added or removed across a restore: start with empty state"
                        : $"The checkpoint holds window state of kind {header.Kind}; this window's is {kind}.");
            }

            watermark = Math.Min(watermark, header.Watermark);
            clock = Math.Min(clock, header.Clock);
            reached = Math.Max(reached, header.Reached);
        }

        if (snapshots.Count == 0)
        {
            return;
        }

        foreach (var target in targets)
        {
            target.RestoreClock(watermark, clock);
            target.Reached = Math.Max(target.Reached, reached);
        }

        foreach (var snapshot in snapshots)
        {
            var reader = new StateReader(snapshot);
            var header = Read(ref reader);
            targets[0].RestoreEntries(ref reader, header.Count, keys, accumulators, targets);
            if (!reader.End)
            {
                throw new InvalidDataException("Window state has bytes after its last entry.");
            }
        }
    }
}
