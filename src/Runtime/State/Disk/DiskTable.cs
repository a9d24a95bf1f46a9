using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// Accumulators by state key in RocksDB, the hottest of them in memory: what the disk backend's window operators share.
/// At most <c>capacity</c> entries stay in an in-memory table (with a dirty and a second-chance bit); before a batch is
/// added, the keys it needs that the table lacks are read from RocksDB in one MultiGet; when the table is full, changed
/// entries are written back — in write batches sorted by key — and the entries not used since the last eviction leave
/// it. A checkpoint writes the changed entries, then takes a RocksDB checkpoint (the memtable flushed, the immutable
/// table files hard-linked), so it costs what changed since the previous one. Not thread-safe: one partition's worker owns it.
/// </summary>
/// <typeparam name="TKey">The state key: a window's key, or a pane and a key.</typeparam>
/// <typeparam name="TAcc">The accumulator.</typeparam>
internal sealed class DiskTable<TKey, TAcc> : IDisposable
    where TKey : notnull
{
    /// <summary>Puts collected in a write batch before it is written, so that RocksDB's batch (native memory) stays bounded.</summary>
    internal const int WriteBatchEntries = 1 << 16;

    /// <summary>An entry held in memory.</summary>
    internal struct Entry
    {
        public TAcc Acc;
        public bool Exists; // the key has a value (in this table or in RocksDB)
        public bool Dirty;  // changed since it was last written to RocksDB
        public bool Used;   // used since the last eviction
    }

    private readonly Dictionary<TKey, Entry> _hot = [];
    private readonly int _capacity;
    private readonly Action<TKey>? _evicted;
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

    /// <param name="live">The database's folder (deleted first: state comes from checkpoints, never from an earlier run's scratch).</param>
    /// <param name="capacity">The most entries held in memory.</param>
    /// <param name="keys">How state keys are written to RocksDB.</param>
    /// <param name="accumulators">How accumulators are written to RocksDB.</param>
    /// <param name="evicted">Called with the key of each entry with a value that eviction takes out of memory (null: nobody asks).</param>
    public DiskTable(string live, int capacity, IStateCodec<TKey> keys, IStateCodec<TAcc> accumulators, Action<TKey>? evicted = null)
    {
        _capacity = capacity;
        _evicted = evicted;
        Keys = keys;
        Accumulators = accumulators;
        if (Directory.Exists(live))
        {
            Directory.Delete(live, recursive: true);
        }

        Store = RocksDbStore.Open(live);
    }

    /// <summary>The database.</summary>
    public RocksDbStore Store { get; }

    /// <summary>How state keys are written.</summary>
    public IStateCodec<TKey> Keys { get; }

    /// <summary>How accumulators are written.</summary>
    public IStateCodec<TAcc> Accumulators { get; }

    /// <summary>Starts collecting the keys a batch needs (<see cref="Need"/>, then <see cref="Load"/>).</summary>
    public void BeginPrepare()
    {
        _misses.Clear();
        _scratch.Reset();
    }

    /// <summary>Marks <paramref name="key"/> used by the batch being prepared and remembers it if it is not in memory.</summary>
    public void Need(in TKey key)
    {
        ref var entry = ref CollectionsMarshal.GetValueRefOrAddDefault(_hot, key, out var held);
        entry.Used = true;
        if (!held)
        {
            Keys.Write(_scratch, key);
            Grow(_misses.Count + 1);
            _ends[_misses.Count] = _scratch.Written.Length;
            _misses.Add(key);
        }
    }

    /// <summary>Reads the keys <see cref="Need"/> found missing from RocksDB, in one MultiGet.</summary>
    public void Load()
    {
        var count = _misses.Count;
        if (count == 0)
        {
            return;
        }

        Store.MultiGet(_scratch.Written.Span, _ends, count, _values, _lengths, _pointers, _keyLengths, _errors);
        try
        {
            for (var i = 0; i < count; i++)
            {
                if (_values[i] != 0)
                {
                    ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, _misses[i]);
                    entry.Acc = Decode(Accumulators, RocksDbStore.Bytes(_values[i], _lengths[i]), ref _value);
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

    /// <summary>The entry of <paramref name="key"/> in memory, read from RocksDB first if a batch was not prepared (a frozen partition's).</summary>
    public ref Entry Find(in TKey key)
    {
        ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
        if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref entry))
        {
            return ref entry;
        }

        BeginPrepare();
        Need(key);
        Load();
        return ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
    }

    /// <summary>The accumulator of <paramref name="key"/> — from memory, else from RocksDB (not kept in memory) — if it has one.</summary>
    public bool TryRead(in TKey key, out TAcc acc)
    {
        ref var entry = ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);
        if (!System.Runtime.CompilerServices.Unsafe.IsNullRef(ref entry))
        {
            acc = entry.Acc;
            return entry.Exists;
        }

        _scratch.Reset();
        Keys.Write(_scratch, key);
        _ends[0] = _scratch.Written.Length;
        Store.MultiGet(_scratch.Written.Span, _ends, 1, _values, _lengths, _pointers, _keyLengths, _errors);
        try
        {
            var found = _values[0] != 0;
            acc = found ? Decode(Accumulators, RocksDbStore.Bytes(_values[0], _lengths[0]), ref _value) : default!;
            return found;
        }
        finally
        {
            RocksDbStore.Free(_values[0]);
            _values[0] = 0;
        }
    }

    /// <summary>The entries in memory: with nothing evicted, every entry with a value (the enumerator must not outlive a change of the table).</summary>
    public Dictionary<TKey, Entry>.Enumerator GetEnumerator() => _hot.GetEnumerator();

    /// <summary>The entry of <paramref name="key"/> if it is in memory, else a null reference.</summary>
    public ref Entry InMemory(in TKey key) => ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key);

    /// <summary>Evicts when the table holds more than its capacity (after a batch was added).</summary>
    public void Trim()
    {
        if (_hot.Count > _capacity)
        {
            Evict();
        }
    }

    /// <summary>Drops the entries of memory that <paramref name="drop"/> selects, written or not (their state is gone).</summary>
    public void Forget<TState>(TState state, Func<TKey, TState, bool> drop)
    {
        foreach (var key in _hot.Keys)
        {
            if (drop(key, state))
            {
                _hot.Remove(key);
            }
        }
    }

    /// <summary>Decides whether an entry in memory stays (and may change it).</summary>
    public delegate bool Keep<TState>(TState state, ref Entry entry);

    /// <summary>Keeps the entries of memory that <paramref name="keep"/> accepts and drops the others, written or not.</summary>
    public void Retain<TState>(TState state, Keep<TState> keep)
    {
        foreach (var key in _hot.Keys)
        {
            if (!keep(state, ref CollectionsMarshal.GetValueRefOrNullRef(_hot, key)))
            {
                _hot.Remove(key);
            }
        }
    }

    /// <summary>Reads a value written with <paramref name="codec"/> from native memory (copied: a reader reads managed memory).</summary>
    internal static T Decode<T>(IStateCodec<T> codec, ReadOnlySpan<byte> bytes, ref byte[] buffer)
    {
        if (buffer.Length < bytes.Length)
        {
            buffer = new byte[Math.Max(bytes.Length, buffer.Length * 2)];
        }

        bytes.CopyTo(buffer);
        var reader = new StateReader(buffer.AsMemory(0, bytes.Length));
        return codec.Read(ref reader);
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

    /// <summary>
    /// Writes every changed entry to RocksDB, in batches of <see cref="WriteBatchEntries"/> sorted by key: the memtable
    /// is a skip list, and keys inserted in order reuse the previous insert's position (random order made inserting
    /// a quarter of the time, measured with perf).
    /// </summary>
    public void WriteChanged()
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
            Keys.Write(_scratch, key);
            var keyEnd = _scratch.Written.Length;
            Accumulators.Write(_scratch, entry.Acc);
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
            Store.Put(all[span.Start..span.KeyEnd], all[span.KeyEnd..span.End]);
        }

        Store.Commit();
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
                Remove(key, entry.Exists);
            }
        }

        if (_hot.Count > keep)
        {
            foreach (var key in _hot.Keys)
            {
                Remove(key, CollectionsMarshal.GetValueRefOrNullRef(_hot, key).Exists);
                if (_hot.Count <= keep)
                {
                    break;
                }
            }
        }
    }

    private void Remove(TKey key, bool exists)
    {
        _hot.Remove(key);
        if (exists)
        {
            _evicted?.Invoke(key);
        }
    }

    /// <summary>
    /// Writes the changed entries and checkpoints the database to <c>chk-{id}.disk/{name}</c> beside the checkpoint's
    /// folder under <paramref name="root"/>; returns that path relative to <paramref name="root"/>, which the snapshot holds.
    /// </summary>
    public string Checkpoint(string root, string name, long checkpoint)
    {
        WriteChanged();
        var relative = Path.Combine(DiskBackend.CheckpointFolder(checkpoint), name);
        var directory = Path.Combine(root, relative);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true); // an earlier run's attempt at this id, which never got its manifest
        }

        Directory.CreateDirectory(Path.GetDirectoryName(directory)!);
        Store.Checkpoint(directory);
        return relative;
    }

    /// <summary>
    /// Reads the RocksDB checkpoint a snapshot names (the path after its header) and writes each entry into the table
    /// <paramref name="owner"/> picks among <paramref name="targets"/> (the partition that owns its key now), calling
    /// <paramref name="added"/> with that table's index and the entry's key; <paramref name="rewrite"/>, if any, changes
    /// each value before it is written (a restored entry's time-to-live starts again).
    /// </summary>
    public static void Restore(string root, ref StateReader reader, IReadOnlyList<DiskTable<TKey, TAcc>> targets, Func<TKey, int> owner, Action<int, TKey> added, Rewrite? rewrite = null)
    {
        var relative = reader.ReadString() ?? throw new InvalidDataException("a window on disk names no checkpoint folder");
        if (Path.IsPathRooted(relative) || relative.Split('/', '\\').Contains(".."))
        {
            throw new InvalidDataException($"a window on disk names the folder '{relative}' outside the state directory");
        }

        using (var checkpoint = RocksDbStore.OpenReadOnly(Path.Combine(root, relative)))
        {
            var state = new Restoring(targets, owner, added, rewrite);
            checkpoint.ForEach(ref state, static (ref Restoring s, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => s.Put(key, value));
        }

        foreach (var target in targets)
        {
            target.Store.Commit();
        }
    }

    /// <summary>Rewrites a restored value in place (a copy of it).</summary>
    public delegate void Rewrite(Span<byte> value);

    /// <summary>Routes restored entries to their tables.</summary>
    private sealed class Restoring(IReadOnlyList<DiskTable<TKey, TAcc>> targets, Func<TKey, int> owner, Action<int, TKey> added, Rewrite? rewrite)
    {
        private byte[] _key = new byte[256];
        private byte[] _value = new byte[256];

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            var decoded = Decode(targets[0].Keys, key, ref _key);
            var index = owner(decoded);
            var target = targets[index];
            if (rewrite is not null)
            {
                if (_value.Length < value.Length)
                {
                    _value = new byte[Math.Max(value.Length, _value.Length * 2)];
                }

                var copy = _value.AsSpan(0, value.Length);
                value.CopyTo(copy);
                rewrite(copy);
                value = copy;
            }

            target.Store.Put(key, value);
            added(index, decoded);
            if (target.Store.Pending >= WriteBatchEntries)
            {
                target.Store.Commit();
            }
        }
    }

    /// <summary>Closes the database and deletes it: it is scratch (what outlives the run is in the checkpoints).</summary>
    public void Dispose()
    {
        Store.Dispose();
        try
        {
            Directory.Delete(Store.Path, recursive: true);
        }
        catch (IOException)
        {
            // another run's start deletes it too
        }
    }
}
