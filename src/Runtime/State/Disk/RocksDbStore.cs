namespace Compiled.Runtime;

/// <summary>
/// One RocksDB database of the disk state backend: a keyed partition's state (read-write, no write-ahead log —
/// checkpoints make state durable, as in Flink) or a checkpoint of it being restored (read-only). Keys and values are
/// the bytes of the window's state codecs. Not thread-safe: one partition's worker owns it.
/// </summary>
internal sealed unsafe class RocksDbStore : IDisposable
{
    /// <summary>Block cache per database: filter and index blocks and recently read data. RocksDB's memory is native and bounded by this and the write buffers, not by the number of keys.</summary>
    private const int BlockCacheBytes = 32 << 20;

    /// <summary>Memtable size: writes collect here before they become a table file (and a checkpoint flushes it).</summary>
    private const int WriteBufferBytes = 32 << 20;

    /// <summary>Bloom filter bits per key, as RocksDB's tuning guide advises for point lookups: about 1% of the lookups of absent keys reach a table file.</summary>
    private const double BloomBitsPerKey = 10;

    /// <summary>The share of the memtable given to its bloom filter (RocksDB suggests 0.1 when it is used).</summary>
    private const double MemtableBloomRatio = 0.1;

    /// <summary>Table files one database keeps open (each costs a descriptor and index memory).</summary>
    private const int MaxOpenFiles = 512;

    private readonly nint _options;
    private readonly nint _table;
    private readonly nint _cache;
    private readonly nint _write;
    private readonly nint _read;
    private readonly nint _batch;
    private nint _db;

    private RocksDbStore(string path, bool readOnly)
    {
        Path = path;
        _cache = RocksDbNative.rocksdb_cache_create_lru(BlockCacheBytes); // the first call: a missing librocksdb throws here
        _table = RocksDbNative.rocksdb_block_based_options_create();
        RocksDbNative.rocksdb_block_based_options_set_block_cache(_table, _cache);
        RocksDbNative.rocksdb_block_based_options_set_filter_policy(_table, RocksDbNative.rocksdb_filterpolicy_create_bloom(BloomBitsPerKey));
        _options = RocksDbNative.rocksdb_options_create();
        RocksDbNative.rocksdb_options_set_create_if_missing(_options, 1);
        RocksDbNative.rocksdb_options_set_write_buffer_size(_options, WriteBufferBytes);
        RocksDbNative.rocksdb_options_set_max_open_files(_options, MaxOpenFiles);
        RocksDbNative.rocksdb_options_set_block_based_table_factory(_options, _table);

        // A bloom filter over the memtable's whole keys: most keys a batch looks up are absent (new keys), and without
        // it each such lookup walks the memtable's skip list (a quarter of the time, measured with perf).
        RocksDbNative.rocksdb_options_set_memtable_prefix_bloom_size_ratio(_options, MemtableBloomRatio);
        RocksDbNative.rocksdb_options_set_memtable_whole_key_filtering(_options, 1);
        _write = RocksDbNative.rocksdb_writeoptions_create();
        RocksDbNative.rocksdb_writeoptions_disable_WAL(_write, 1);
        _read = RocksDbNative.rocksdb_readoptions_create();
        _batch = RocksDbNative.rocksdb_writebatch_create();
        nint error;
        _db = readOnly
            ? RocksDbNative.rocksdb_open_for_read_only(_options, path, 0, out error)
            : RocksDbNative.rocksdb_open(_options, path, out error);
        if (error != 0)
        {
            Release();
            RocksDbNative.ThrowIfError(error, $"open {path}");
        }
    }

    /// <summary>The database's directory.</summary>
    public string Path { get; }

    /// <summary>Opens (creating it) the database at <paramref name="path"/> for reading and writing.</summary>
    public static RocksDbStore Open(string path)
    {
        Directory.CreateDirectory(path);
        return new RocksDbStore(path, readOnly: false);
    }

    /// <summary>Opens a checkpoint of a database to read it.</summary>
    public static RocksDbStore OpenReadOnly(string path)
        => Directory.Exists(path) ? new RocksDbStore(path, readOnly: true) : throw new InvalidDataException($"its disk state {path} is missing");

    /// <summary>Puts into the pending write batch (written by <see cref="Commit"/>).</summary>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            RocksDbNative.rocksdb_writebatch_put(_batch, k, (nuint)key.Length, v, (nuint)value.Length);
        }
    }

    /// <summary>Deletes <paramref name="key"/>, in the pending write batch.</summary>
    public void Delete(ReadOnlySpan<byte> key)
    {
        fixed (byte* k = key)
        {
            RocksDbNative.rocksdb_writebatch_delete(_batch, k, (nuint)key.Length);
        }
    }

    /// <summary>Deletes every key from <paramref name="start"/> (included) to <paramref name="end"/> (excluded), in the pending write batch: one range tombstone, not a delete per key.</summary>
    public void DeleteRange(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end)
    {
        fixed (byte* s = start)
        fixed (byte* e = end)
        {
            RocksDbNative.rocksdb_writebatch_delete_range(_batch, s, (nuint)start.Length, e, (nuint)end.Length);
        }
    }

    /// <summary>Puts waiting in the write batch.</summary>
    public int Pending => RocksDbNative.rocksdb_writebatch_count(_batch);

    /// <summary>Writes the pending batch atomically.</summary>
    public void Commit()
    {
        if (Pending == 0)
        {
            return;
        }

        RocksDbNative.rocksdb_write(_db, _write, _batch, out var error);
        RocksDbNative.ThrowIfError(error, $"write to {Path}");
        RocksDbNative.rocksdb_writebatch_clear(_batch);
    }

    /// <summary>
    /// Looks up <paramref name="count"/> keys at once (RocksDB's MultiGet): key i is <paramref name="keys"/>[ends[i-1]..ends[i]].
    /// <paramref name="values"/>[i] receives a value RocksDB allocated (free it with <see cref="Free"/>), or zero when the key is absent.
    /// </summary>
    public void MultiGet(ReadOnlySpan<byte> keys, ReadOnlySpan<int> ends, int count, Span<nint> values, Span<nuint> lengths, Span<nint> pointers, Span<nuint> keyLengths, Span<nint> errors)
    {
        fixed (byte* k = keys)
        fixed (nint* keyPointers = pointers)
        fixed (nuint* keySizes = keyLengths)
        fixed (nint* v = values)
        fixed (nuint* l = lengths)
        fixed (nint* e = errors)
        {
            var start = 0;
            for (var i = 0; i < count; i++)
            {
                keyPointers[i] = (nint)(k + start);
                keySizes[i] = (nuint)(ends[i] - start);
                start = ends[i];
            }

            RocksDbNative.rocksdb_multi_get(_db, _read, (nuint)count, (byte**)keyPointers, keySizes, (byte**)v, l, e);
        }

        for (var i = 0; i < count; i++)
        {
            if (errors[i] != 0)
            {
                for (var j = 0; j < count; j++)
                {
                    Free(values[j]);
                    if (j != i)
                    {
                        Free(errors[j]);
                    }
                }

                RocksDbNative.ThrowIfError(errors[i], $"read from {Path}");
            }
        }
    }

    /// <summary>The bytes of a value <see cref="MultiGet"/> returned.</summary>
    public static ReadOnlySpan<byte> Bytes(nint value, nuint length) => new((void*)value, checked((int)length));

    /// <summary>Frees what RocksDB allocated (zero is ignored).</summary>
    public static void Free(nint pointer)
    {
        if (pointer != 0)
        {
            RocksDbNative.rocksdb_free(pointer);
        }
    }

    /// <summary>
    /// Writes a checkpoint of the database to <paramref name="directory"/> (which must not exist): the memtable is flushed
    /// to a table file, and the table files — immutable — are hard-linked, not copied: only what was written since the
    /// previous checkpoint takes new disk space (Flink's incremental RocksDB checkpoints).
    /// </summary>
    public void Checkpoint(string directory)
    {
        var checkpoint = RocksDbNative.rocksdb_checkpoint_object_create(_db, out var error);
        RocksDbNative.ThrowIfError(error, $"checkpoint {Path}");
        try
        {
            RocksDbNative.rocksdb_checkpoint_create(checkpoint, directory, 0, out error);
            RocksDbNative.ThrowIfError(error, $"checkpoint {Path} to {directory}");
        }
        finally
        {
            RocksDbNative.rocksdb_checkpoint_object_destroy(checkpoint);
        }
    }

    /// <summary>Calls <paramref name="visit"/> with every key and value, in key order.</summary>
    public void ForEach<TState>(ref TState state, EntryVisitor<TState> visit)
    {
        var iterator = RocksDbNative.rocksdb_create_iterator(_db, _read);
        try
        {
            for (RocksDbNative.rocksdb_iter_seek_to_first(iterator); RocksDbNative.rocksdb_iter_valid(iterator) != 0; RocksDbNative.rocksdb_iter_next(iterator))
            {
                var key = RocksDbNative.rocksdb_iter_key(iterator, out var keyLength);
                var value = RocksDbNative.rocksdb_iter_value(iterator, out var valueLength);
                visit(ref state, new ReadOnlySpan<byte>(key, checked((int)keyLength)), new ReadOnlySpan<byte>(value, checked((int)valueLength)));
            }

            RocksDbNative.rocksdb_iter_get_error(iterator, out var error);
            RocksDbNative.ThrowIfError(error, $"read {Path}");
        }
        finally
        {
            RocksDbNative.rocksdb_iter_destroy(iterator);
        }
    }

    /// <summary>A cursor over the entries whose keys start with <paramref name="prefix"/>, in key order (dispose it before the store).</summary>
    public Cursor Seek(ReadOnlySpan<byte> prefix) => new(this, prefix);

    /// <summary>An iterator over the keys that share a prefix; it reads the database as it was when it was created.</summary>
    internal sealed class Cursor : IDisposable
    {
        private readonly RocksDbStore _store;
        private readonly byte[] _prefix;
        private nint _iterator;

        public Cursor(RocksDbStore store, ReadOnlySpan<byte> prefix)
        {
            _store = store;
            _prefix = prefix.ToArray();
            _iterator = RocksDbNative.rocksdb_create_iterator(store._db, store._read);
            fixed (byte* p = _prefix)
            {
                RocksDbNative.rocksdb_iter_seek(_iterator, p, (nuint)_prefix.Length);
            }

            Check();
        }

        /// <summary>Whether the cursor is at an entry of the prefix.</summary>
        public bool Valid { get; private set; }

        /// <summary>The current key, prefix included (valid until <see cref="Next"/>).</summary>
        public ReadOnlySpan<byte> WholeKey
        {
            get
            {
                var key = RocksDbNative.rocksdb_iter_key(_iterator, out var length);
                return new ReadOnlySpan<byte>(key, checked((int)length));
            }
        }

        /// <summary>The current key, after the prefix (valid until <see cref="Next"/>).</summary>
        public ReadOnlySpan<byte> Key
        {
            get
            {
                var key = RocksDbNative.rocksdb_iter_key(_iterator, out var length);
                return new ReadOnlySpan<byte>(key, checked((int)length))[_prefix.Length..];
            }
        }

        /// <summary>The current value (valid until <see cref="Next"/>).</summary>
        public ReadOnlySpan<byte> Value
        {
            get
            {
                var value = RocksDbNative.rocksdb_iter_value(_iterator, out var length);
                return new ReadOnlySpan<byte>(value, checked((int)length));
            }
        }

        /// <summary>Moves to the next entry.</summary>
        public void Next()
        {
            RocksDbNative.rocksdb_iter_next(_iterator);
            Check();
        }

        private void Check()
        {
            Valid = RocksDbNative.rocksdb_iter_valid(_iterator) != 0;
            if (Valid)
            {
                var key = RocksDbNative.rocksdb_iter_key(_iterator, out var length);
                Valid = new ReadOnlySpan<byte>(key, checked((int)length)).StartsWith(_prefix);
                return;
            }

            RocksDbNative.rocksdb_iter_get_error(_iterator, out var error);
            RocksDbNative.ThrowIfError(error, $"read {_store.Path}");
        }

        public void Dispose()
        {
            if (_iterator != 0)
            {
                RocksDbNative.rocksdb_iter_destroy(_iterator);
                _iterator = 0;
            }
        }
    }

    /// <summary>Receives one entry of <see cref="ForEach"/>.</summary>
    public delegate void EntryVisitor<TState>(ref TState state, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Bytes of table files on disk (RocksDB's estimate), for what a run reports.</summary>
    public long TableBytes => RocksDbNative.rocksdb_property_int(_db, "rocksdb.total-sst-files-size", out var bytes) == 0 ? (long)bytes : 0;

    private void Release()
    {
        RocksDbNative.rocksdb_writebatch_destroy(_batch);
        RocksDbNative.rocksdb_readoptions_destroy(_read);
        RocksDbNative.rocksdb_writeoptions_destroy(_write);
        RocksDbNative.rocksdb_options_destroy(_options);
        RocksDbNative.rocksdb_block_based_options_destroy(_table);
        RocksDbNative.rocksdb_cache_destroy(_cache);
    }

    public void Dispose()
    {
        if (_db == 0)
        {
            return;
        }

        RocksDbNative.rocksdb_close(_db);
        _db = 0;
        Release();
    }
}
