using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Compiled.StateBackends;

/// <summary>
/// RocksDB's C API (the librocksdb.so the RocksDB package ships) through source-generated P/Invoke: the bindings the
/// package brings build their delegates with Reflection.Emit and fail under Native AOT; these are plain imports.
/// </summary>
internal static unsafe partial class RocksNative
{
    private const string Library = "rocksdb";

    [LibraryImport(Library)] public static partial nint rocksdb_options_create();
    [LibraryImport(Library)] public static partial void rocksdb_options_set_create_if_missing(nint options, byte value);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_write_buffer_size(nint options, nuint size);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_block_based_table_factory(nint options, nint table);
    [LibraryImport(Library)] public static partial nint rocksdb_block_based_options_create();
    [LibraryImport(Library)] public static partial void rocksdb_block_based_options_set_block_cache(nint table, nint cache);
    [LibraryImport(Library)] public static partial void rocksdb_block_based_options_set_filter_policy(nint table, nint policy);
    [LibraryImport(Library)] public static partial nint rocksdb_filterpolicy_create_bloom(double bitsPerKey);
    [LibraryImport(Library)] public static partial nint rocksdb_cache_create_lru(nuint capacity);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint rocksdb_open(nint options, string name, out nint error);
    [LibraryImport(Library)] public static partial void rocksdb_close(nint db);
    [LibraryImport(Library)] public static partial nint rocksdb_writeoptions_create();
    [LibraryImport(Library)] public static partial void rocksdb_writeoptions_disable_WAL(nint options, int disable);
    [LibraryImport(Library)] public static partial nint rocksdb_readoptions_create();
    [LibraryImport(Library)] public static partial void rocksdb_put(nint db, nint options, byte* key, nuint keyLength, byte* value, nuint valueLength, out nint error);
    [LibraryImport(Library)] public static partial nint rocksdb_get_pinned(nint db, nint options, byte* key, nuint keyLength, out nint error);
    [LibraryImport(Library)] public static partial byte* rocksdb_pinnableslice_value(nint slice, out nuint length);
    [LibraryImport(Library)] public static partial void rocksdb_pinnableslice_destroy(nint slice);
    [LibraryImport(Library)] public static partial nint rocksdb_flushoptions_create();
    [LibraryImport(Library)] public static partial void rocksdb_flushoptions_set_wait(nint options, byte wait);
    [LibraryImport(Library)] public static partial void rocksdb_flush(nint db, nint options, out nint error);
    [LibraryImport(Library)] public static partial nint rocksdb_checkpoint_object_create(nint db, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial void rocksdb_checkpoint_create(nint checkpoint, string directory, ulong logSizeForFlush, out nint error);
    [LibraryImport(Library)] public static partial void rocksdb_checkpoint_object_destroy(nint checkpoint);
    [LibraryImport(Library)] public static partial void rocksdb_free(nint pointer);

    public static void ThrowIfError(nint error)
    {
        if (error != 0)
        {
            var message = Marshal.PtrToStringUTF8(error);
            rocksdb_free(error);
            throw new InvalidOperationException($"RocksDB: {message}");
        }
    }
}

/// <summary>RocksDB through <see cref="RocksNative"/>: a count is a pinned get and a put (no managed allocation), no write-ahead log.</summary>
internal sealed unsafe class DirectRocksStore : IStateStore
{
    private readonly nint _db;
    private readonly nint _write;
    private readonly nint _read;
    private readonly string _dir;

    public DirectRocksStore(string dir, int cacheMegabytes)
    {
        _dir = dir;
        var table = RocksNative.rocksdb_block_based_options_create();
        RocksNative.rocksdb_block_based_options_set_block_cache(table, RocksNative.rocksdb_cache_create_lru((nuint)cacheMegabytes * 1024 * 1024));
        RocksNative.rocksdb_block_based_options_set_filter_policy(table, RocksNative.rocksdb_filterpolicy_create_bloom(10));
        var options = RocksNative.rocksdb_options_create();
        RocksNative.rocksdb_options_set_create_if_missing(options, 1);
        RocksNative.rocksdb_options_set_write_buffer_size(options, (nuint)Math.Max(4, cacheMegabytes / 2) * 1024 * 1024);
        RocksNative.rocksdb_options_set_block_based_table_factory(options, table);
        _db = RocksNative.rocksdb_open(options, Path.Combine(dir, "db"), out var error);
        RocksNative.ThrowIfError(error);
        _write = RocksNative.rocksdb_writeoptions_create();
        RocksNative.rocksdb_writeoptions_disable_WAL(_write, 1);
        _read = RocksNative.rocksdb_readoptions_create();
    }

    public void Increment(int key) => Put(key, Get(key) + 1);

    private void Put(int key, long value)
    {
        var k = stackalloc byte[4];
        var v = stackalloc byte[8];
        BinaryPrimitives.WriteInt32BigEndian(new Span<byte>(k, 4), key);
        BinaryPrimitives.WriteInt64LittleEndian(new Span<byte>(v, 8), value);
        RocksNative.rocksdb_put(_db, _write, k, 4, v, 8, out var error);
        RocksNative.ThrowIfError(error);
    }

    public long Get(int key)
    {
        var k = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(new Span<byte>(k, 4), key);
        var slice = RocksNative.rocksdb_get_pinned(_db, _read, k, 4, out var error);
        RocksNative.ThrowIfError(error);
        if (slice == 0)
        {
            return 0;
        }

        var value = RocksNative.rocksdb_pinnableslice_value(slice, out var length);
        var count = length == 8 ? BinaryPrimitives.ReadInt64LittleEndian(new ReadOnlySpan<byte>(value, 8)) : 0;
        RocksNative.rocksdb_pinnableslice_destroy(slice);
        return count;
    }

    public void Drain()
    {
    }

    /// <summary>A checkpoint as Flink's incremental RocksDB checkpoints take it: flush the memtable, hard-link the immutable table files.</summary>
    public void Flush()
    {
        var checkpoint = RocksNative.rocksdb_checkpoint_object_create(_db, out var error);
        RocksNative.ThrowIfError(error);
        RocksNative.rocksdb_checkpoint_create(checkpoint, Path.Combine(_dir, "checkpoint-1"), 0, out error);
        RocksNative.rocksdb_checkpoint_object_destroy(checkpoint);
        RocksNative.ThrowIfError(error);
    }

    public void Dispose() => RocksNative.rocksdb_close(_db);
}
