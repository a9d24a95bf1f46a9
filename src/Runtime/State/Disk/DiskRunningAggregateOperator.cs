using System.Globalization;
using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// A running aggregate per key whose state lives in RocksDB (<c>StateBackend=Disk</c>), for key spaces larger than
/// memory. Hot keys stay in an in-memory table of at most <c>StateCacheKeys</c> entries; before a batch is added, the
/// keys it needs that the table lacks are read from RocksDB in one MultiGet; when the table is full, changed entries are
/// written back in one write batch and the keys not used since the last eviction leave it. A checkpoint writes the
/// changed entries, then takes a RocksDB checkpoint beside the checkpoint's folder (<c>chk-N.disk/</c>): the memtable is
/// flushed and the immutable table files are hard-linked, so a checkpoint costs what changed since the previous one.
/// Results are the in-memory operator's, record for record.
/// </summary>
internal sealed class DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut> : WindowOperator<TKey, TIn, TOut>, IWindowState<TKey, TAcc>, IDisposable
    where TKey : notnull
    where TAgg : IAggregator<TIn, TAcc, TOut>
{
    /// <summary>The snapshot kind of a running aggregate on disk: a header and the path of its RocksDB checkpoint.</summary>
    public const byte DiskKind = WindowStateHeader.DiskStateKind;

    /// <summary>Puts collected in a write batch before it is written, so that RocksDB's batch (native memory) stays bounded.</summary>
    private const int WriteBatchEntries = 1 << 16;

    private struct Entry
    {
        public TAcc Acc;
        public bool Exists; // the key has a value (in this table or in RocksDB): its next result is an update
        public bool Dirty;  // changed since it was last written to RocksDB
        public bool Used;   // used since the last eviction
    }

    private readonly Dictionary<TKey, Entry> _hot = [];
    private readonly IStateCodec<TKey> _keys;
    private readonly IStateCodec<TAcc> _accumulators;
    private readonly int _capacity;
    private readonly string _root;
    private readonly string _name;
    private readonly StateWriter _scratch = new(1 << 16);
    private readonly List<TKey> _misses = [];
    private readonly List<Written> _spans = [];
    private int[] _ends = new int[1024];
    private nint[] _values = new nint[1024];
    private nuint[] _lengths = new nuint[1024];
    private nint[] _pointers = new nint[1024];
    private nuint[] _keyLengths = new nuint[1024];
    private nint[] _errors = new nint[1024];
    private byte[] _value = new byte[256];
    private readonly RocksDbStore _store;
    private long _distinct;

    /// <param name="root">The pipeline's state folder: the live database goes in <c>live/</c>, checkpoints beside <c>chk-N/</c>.</param>
    /// <param name="name">The window's name and partition, a folder name (<c>Total-p0</c>).</param>
    /// <param name="capacity">The most keys held in memory.</param>
    /// <param name="keys">How keys are written to RocksDB.</param>
    /// <param name="accumulators">How accumulators are written to RocksDB.</param>
    public DiskRunningAggregateOperator(string root, string name, int capacity, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
        : base(0)
    {
        _root = root;
        _name = name;
        _capacity = capacity;
        _keys = keys;
        _accumulators = accumulators;
        var live = Path.Combine(root, "live", name);
        if (Directory.Exists(live))
        {
            Directory.Delete(live, recursive: true); // an earlier run's: state comes from the checkpoint, never from here
        }

        _store = RocksDbStore.Open(live);
    }

    /// <summary>Keys held, in memory or on disk.</summary>
    public override int StateEntries => (int)Math.Min(_distinct, int.MaxValue);

    /// <summary>Reads the keys of <paramref name="batch"/> that are not in memory from RocksDB, in one MultiGet.</summary>
    public override ValueTask PrepareAsync(ReadOnlyMemory<Keyed<TKey, TIn>> batch, CancellationToken cancellationToken)
    {
        _misses.Clear();
        _scratch.Reset();
        foreach (ref readonly var record in batch.Span)
        {
            ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_hot, record.Key, out var held);
            entry.Used = true;
            if (!held)
            {
                _keys.Write(_scratch, record.Key);
                Grow(_misses.Count + 1);
                _ends[_misses.Count] = _scratch.Written.Length;
                _misses.Add(record.Key);
            }
        }

        if (_misses.Count > 0)
        {
            Load();
        }

        return ValueTask.CompletedTask;
    }

    private void Load()
    {
        var count = _misses.Count;
        _store.MultiGet(_scratch.Written.Span, _ends, count, _values, _lengths, _pointers, _keyLengths, _errors);
        try
        {
            for (var i = 0; i < count; i++)
            {
                if (_values[i] != 0)
                {
                    ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, _misses[i]);
                    entry.Acc = Decode(RocksDbStore.Bytes(_values[i], _lengths[i]));
                    entry.Exists = true;
                }
            }
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                RocksDbStore.Free(_values[i]);
                _values[i] = 0;
            }
        }
    }

    private TAcc Decode(ReadOnlySpan<byte> bytes)
    {
        if (_value.Length < bytes.Length)
        {
            _value = new byte[Math.Max(bytes.Length, _value.Length * 2)];
        }

        bytes.CopyTo(_value);
        var reader = new StateReader(_value.AsMemory(0, bytes.Length));
        return _accumulators.Read(ref reader);
    }

    private void Grow(int count)
    {
        if (count <= _ends.Length)
        {
            return;
        }

        var size = Math.Max(count, _ends.Length * 2);
        Array.Resize(ref _ends, size);
        Array.Resize(ref _values, size);
        Array.Resize(ref _lengths, size);
        Array.Resize(ref _pointers, size);
        Array.Resize(ref _keyLengths, size);
        Array.Resize(ref _errors, size);
    }

    public override void Add(ReadOnlySpan<Keyed<TKey, TIn>> batch)
    {
        for (var i = 0; i < batch.Length; i++)
        {
            ref readonly var record = ref batch[i];
            ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, record.Key);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref entry))
            {
                entry = ref Fetch(record.Key); // a batch that was not prepared (a frozen partition's)
            }

            var seen = entry.Exists;
            TAgg.Add(ref entry.Acc!, record.Record);
            entry.Exists = true;
            entry.Dirty = true;
            entry.Used = true;
            if (!seen)
            {
                _distinct++;
            }

            Results.Add(new WindowResult<TKey, TOut>(record.Key, long.MinValue, long.MaxValue, TAgg.Result(entry.Acc), seen));
        }

        if (_hot.Count > _capacity)
        {
            Evict();
        }
    }

    private ref Entry Fetch(TKey key)
    {
        _misses.Clear();
        _scratch.Reset();
        _keys.Write(_scratch, key);
        _ends[0] = _scratch.Written.Length;
        _misses.Add(key);
        CollectionsMarshal.GetValueRefOrAddDefault(_hot, key, out _);
        Load();
        return ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
    }

    /// <summary>
    /// Writes every changed entry to RocksDB, in batches of <see cref="WriteBatchEntries"/> sorted by key: the memtable
    /// is a skip list, and keys inserted in order reuse the previous insert's position (random order made inserting
    /// a quarter of the time, measured with perf).
    /// </summary>
    private void WriteChanged()
    {
        _scratch.Reset();
        _spans.Clear();
        foreach (var key in _hot.Keys)
        {
            ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
            if (!entry.Dirty)
            {
                continue;
            }

            var start = _scratch.Written.Length;
            _keys.Write(_scratch, key);
            var keyEnd = _scratch.Written.Length;
            _accumulators.Write(_scratch, entry.Acc);
            _spans.Add(new Written(start, keyEnd, _scratch.Written.Length));
            entry.Dirty = false;
            if (_spans.Count >= WriteBatchEntries)
            {
                PutSorted();
            }
        }

        PutSorted();
    }

    private void PutSorted()
    {
        var bytes = _scratch.Written;
        var spans = CollectionsMarshal.AsSpan(_spans);
        spans.Sort(new ByKey(bytes));
        foreach (var span in spans)
        {
            var all = bytes.Span;
            _store.Put(all[span.Start..span.KeyEnd], all[span.KeyEnd..span.End]);
        }

        _store.Commit();
        _spans.Clear();
        _scratch.Reset();
    }

    /// <summary>Where an entry's key and value were written in the scratch buffer.</summary>
    private readonly record struct Written(int Start, int KeyEnd, int End);

    private readonly struct ByKey(ReadOnlyMemory<byte> bytes) : IComparer<Written>
    {
        public int Compare(Written x, Written y)
        {
            var all = bytes.Span;
            return all[x.Start..x.KeyEnd].SequenceCompareTo(all[y.Start..y.KeyEnd]);
        }
    }

    /// <summary>
    /// The table is full: changed entries go to RocksDB, then the keys not used since the last eviction leave memory
    /// (a second chance for the rest); if that frees less than a quarter, more leave until three quarters remain.
    /// </summary>
    private void Evict()
    {
        WriteChanged();
        var keep = _capacity - (_capacity / 4);
        foreach (var key in _hot.Keys)
        {
            ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
            if (entry.Used)
            {
                entry.Used = false;
            }
            else
            {
                _hot.Remove(key);
            }
        }

        if (_hot.Count > keep)
        {
            foreach (var key in _hot.Keys)
            {
                _hot.Remove(key);
                if (_hot.Count <= keep)
                {
                    break;
                }
            }
        }
    }

    public override void Advance(long watermark) => Watermark = Math.Max(Watermark, watermark);

    public byte Kind => DiskKind;

    /// <summary>
    /// Writes the changed entries to RocksDB and checkpoints it to <c>chk-{id}.disk/{name}</c> beside the checkpoint's
    /// folder; the snapshot itself is the header and that path (relative to the pipeline's state folder). The codecs
    /// are the ones the operator writes RocksDB with.
    /// </summary>
    public void Snapshot(StateWriter writer, long checkpoint, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators)
    {
        WriteChanged();
        var relative = Path.Combine(DiskFolder(checkpoint), _name);
        var directory = Path.Combine(_root, relative);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true); // an earlier run's attempt at this id, which never got its manifest
        }

        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        _store.Checkpoint(directory);
        new WindowStateHeader(Kind, Watermark, 0, _distinct).Write(writer);
        writer.WriteString(relative);
    }

    /// <summary>The folder beside checkpoint <paramref name="id"/>'s that holds its windows' RocksDB checkpoints.</summary>
    internal static string DiskFolder(long id) => string.Create(CultureInfo.InvariantCulture, $"chk-{id:D12}.disk");

    public void RestoreClock(long watermark, long clock) => RestoreWatermark(watermark);

    /// <summary>Reads an old partition's RocksDB checkpoint and writes each entry into the partition that owns its key now.</summary>
    public void RestoreEntries(ref StateReader reader, long count, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, IReadOnlyList<IWindowState<TKey, TAcc>> targets)
    {
        var relative = reader.ReadString() ?? throw new InvalidDataException("a window on disk names no checkpoint folder");
        if (Path.IsPathRooted(relative) || relative.Split('/', '\\').Contains(".."))
        {
            throw new InvalidDataException($"a window on disk names the folder '{relative}' outside the state directory");
        }

        var partitions = targets.Cast<DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>>().ToArray();
        using (var checkpoint = RocksDbStore.OpenReadOnly(Path.Combine(_root, relative)))
        {
            var state = new Restoring(partitions, keys);
            checkpoint.ForEach(ref state, static (ref Restoring s, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => s.Put(key, value));
        }

        foreach (var partition in partitions)
        {
            partition._store.Commit();
        }
    }

    /// <summary>Routes restored entries to their partitions.</summary>
    private sealed class Restoring(DiskRunningAggregateOperator<TKey, TIn, TAgg, TAcc, TOut>[] partitions, IStateCodec<TKey> keys)
    {
        private byte[] _key = new byte[256];

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            if (_key.Length < key.Length)
            {
                _key = new byte[Math.Max(key.Length, _key.Length * 2)];
            }

            key.CopyTo(_key);
            var reader = new StateReader(_key.AsMemory(0, key.Length));
            var decoded = keys.Read(ref reader);
            var target = partitions[KeyHash.Partition(KeyHash.Of(decoded), partitions.Length)];
            target._store.Put(key, value);
            target._distinct++;
            if (target._store.Pending >= WriteBatchEntries)
            {
                target._store.Commit();
            }
        }
    }

    /// <summary>Closes the database and deletes it: it is scratch (what outlives the run is in the checkpoints).</summary>
    public void Dispose()
    {
        _store.Dispose();
        try
        {
            Directory.Delete(_store.Path, recursive: true);
        }
        catch (IOException)
        {
            // another run's start deletes it too
        }
    }
}
