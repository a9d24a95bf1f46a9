using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// The part of RocksDB's C API the disk state backend uses, as source-generated P/Invoke. The RocksDB package's own
/// bindings build their delegates with Reflection.Emit and fail under Native AOT (bench/RESULTS.md, "State backends on
/// disk"); these are plain imports of <c>librocksdb</c>, which the application brings (the RocksDB package).
/// </summary>
internal static unsafe partial class RocksDbNative
{
    private const string Library = "rocksdb";

    [LibraryImport(Library)] public static partial nint rocksdb_options_create();
    [LibraryImport(Library)] public static partial void rocksdb_options_destroy(nint options);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_create_if_missing(nint options, byte value);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_write_buffer_size(nint options, nuint size);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_max_open_files(nint options, int files);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_block_based_table_factory(nint options, nint table);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_memtable_prefix_bloom_size_ratio(nint options, double ratio);
    [LibraryImport(Library)] public static partial void rocksdb_options_set_memtable_whole_key_filtering(nint options, byte value);
    [LibraryImport(Library)] public static partial nint rocksdb_block_based_options_create();
    [LibraryImport(Library)] public static partial void rocksdb_block_based_options_destroy(nint table);
    [LibraryImport(Library)] public static partial void rocksdb_block_based_options_set_block_cache(nint table, nint cache);
    [LibraryImport(Library)] public static partial void rocksdb_block_based_options_set_filter_policy(nint table, nint policy);
    [LibraryImport(Library)] public static partial nint rocksdb_filterpolicy_create_bloom(double bitsPerKey);
    [LibraryImport(Library)] public static partial nint rocksdb_cache_create_lru(nuint capacity);
    [LibraryImport(Library)] public static partial void rocksdb_cache_destroy(nint cache);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint rocksdb_open(nint options, string name, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial nint rocksdb_open_for_read_only(nint options, string name, byte errorIfWalFileExists, out nint error);
    [LibraryImport(Library)] public static partial void rocksdb_close(nint db);
    [LibraryImport(Library)] public static partial nint rocksdb_writeoptions_create();
    [LibraryImport(Library)] public static partial void rocksdb_writeoptions_destroy(nint options);
    [LibraryImport(Library)] public static partial void rocksdb_writeoptions_disable_WAL(nint options, int disable);
    [LibraryImport(Library)] public static partial nint rocksdb_readoptions_create();
    [LibraryImport(Library)] public static partial void rocksdb_readoptions_destroy(nint options);
    [LibraryImport(Library)] public static partial nint rocksdb_writebatch_create();
    [LibraryImport(Library)] public static partial void rocksdb_writebatch_destroy(nint batch);
    [LibraryImport(Library)] public static partial void rocksdb_writebatch_clear(nint batch);
    [LibraryImport(Library)] public static partial int rocksdb_writebatch_count(nint batch);
    [LibraryImport(Library)] public static partial void rocksdb_writebatch_put(nint batch, byte* key, nuint keyLength, byte* value, nuint valueLength);
    [LibraryImport(Library)] public static partial void rocksdb_writebatch_delete(nint batch, byte* key, nuint keyLength);
    [LibraryImport(Library)] public static partial void rocksdb_writebatch_delete_range(nint batch, byte* startKey, nuint startLength, byte* endKey, nuint endLength);
    [LibraryImport(Library)] public static partial void rocksdb_write(nint db, nint options, nint batch, out nint error);
    [LibraryImport(Library)] public static partial void rocksdb_multi_get(nint db, nint options, nuint count, byte** keys, nuint* keyLengths, byte** values, nuint* valueLengths, nint* errors);
    [LibraryImport(Library)] public static partial nint rocksdb_create_iterator(nint db, nint options);
    [LibraryImport(Library)] public static partial void rocksdb_iter_destroy(nint iterator);
    [LibraryImport(Library)] public static partial void rocksdb_iter_seek_to_first(nint iterator);
    [LibraryImport(Library)] public static partial void rocksdb_iter_seek(nint iterator, byte* key, nuint keyLength);
    [LibraryImport(Library)] public static partial byte rocksdb_iter_valid(nint iterator);
    [LibraryImport(Library)] public static partial void rocksdb_iter_next(nint iterator);
    [LibraryImport(Library)] public static partial byte* rocksdb_iter_key(nint iterator, out nuint length);
    [LibraryImport(Library)] public static partial byte* rocksdb_iter_value(nint iterator, out nuint length);
    [LibraryImport(Library)] public static partial void rocksdb_iter_get_error(nint iterator, out nint error);
    [LibraryImport(Library)] public static partial nint rocksdb_checkpoint_object_create(nint db, out nint error);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial void rocksdb_checkpoint_create(nint checkpoint, string directory, ulong logSizeForFlush, out nint error);
    [LibraryImport(Library)] public static partial void rocksdb_checkpoint_object_destroy(nint checkpoint);
    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)] public static partial int rocksdb_property_int(nint db, string property, out ulong value);
    [LibraryImport(Library)] public static partial void rocksdb_free(nint pointer);

    /// <summary>Throws RocksDB's error message, if <paramref name="error"/> holds one (and frees it).</summary>
    public static void ThrowIfError(nint error, string doing)
    {
        if (error != 0)
        {
            var message = Marshal.PtrToStringUTF8(error);
            rocksdb_free(error);
            throw new IOException($"RocksDB could not {doing}: {message}");
        }
    }
}
