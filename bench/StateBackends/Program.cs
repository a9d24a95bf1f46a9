using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using FASTER.core;
using RocksDbSharp;
using ZoneTree;
using ZoneTree.Options;
using Compiled.StateBackends;

// Embedded key-value stores as candidates for keyed state on disk, on the shape keyed state has: a count per int key
// updated by read-modify-write. Each run: every key once (a state's keys arriving, in an order unrelated to key order), then N updates
// (uniform over the keys, or 90% of them on a hot 1% of the keys), then a flush to disk (what a checkpoint costs).
// The counts of 10,000 sampled keys are checked against a reference computed from the same seed.
//
//   Compiled.StateBackends --backend memory|faster|rocksdb|rocksdb-direct|zonetree --keys N --updates N [--hot] [--dir D] [--cache-mb M]
//   Compiled.StateBackends --all --keys N --updates N [--hot] [--rounds R]   (each backend in a child process, interleaved)
var options = Args.Parse(args);
if (options.All)
{
    return Children.Run(options);
}

var dir = options.Directory ?? Path.Combine(Path.GetTempPath(), $"compiled-state-{options.Backend}-{Environment.ProcessId}");
if (Directory.Exists(dir))
{
    Directory.Delete(dir, recursive: true);
}

Directory.CreateDirectory(dir);
try
{
    using IStateStore store = options.Backend switch
    {
        "memory" => new MemoryStore(options.Keys),
        "faster" => new FasterStore(dir, options.Keys, options.CacheMegabytes),
        "rocksdb" => new RocksStore(dir, options.CacheMegabytes),
        "rocksdb-direct" => new DirectRocksStore(dir, options.CacheMegabytes),
        "zonetree" => new ZoneStore(dir, options.CacheMegabytes),
        _ => throw new ArgumentException($"unknown backend '{options.Backend}'"),
    };
    var workload = new Workload(options.Keys, options.Updates, options.Hot, seed: 42);
    var clock = Stopwatch.StartNew();
    foreach (var key in workload.Keys())
    {
        store.Increment(key);
    }

    store.Drain();
    var load = clock.Elapsed.TotalSeconds;
    clock.Restart();
    foreach (var key in workload.Updates())
    {
        store.Increment(key);
    }

    store.Drain();
    var update = clock.Elapsed.TotalSeconds;
    clock.Restart();
    store.Flush();
    var flush = clock.Elapsed.TotalSeconds;
    var onDisk = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Where(f => !f.Contains("checkpoint-1", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length); // a checkpoint's hard links are the same files
    workload.Check(store);
    var peak = PeakResidentBytes();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{options.Backend}\t{options.Keys}\t{options.Updates}\t{(options.Hot ? "hot" : "uniform")}\t{options.Keys / load:F0}\t{options.Updates / update:F0}\t{flush:F2}\t{onDisk}\t{peak}\t{GC.GetTotalMemory(false)}"));
    return 0;
}
finally
{
    if (options.Directory is null)
    {
        Directory.Delete(dir, recursive: true);
    }
}

static long PeakResidentBytes()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
        {
            return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
    }

    return -1;
}

/// <summary>The command line.</summary>
internal sealed record Args(string Backend, int Keys, long Updates, bool Hot, string? Directory, int CacheMegabytes, bool All, int Rounds, string[] Backends)
{
    public static Args Parse(string[] args)
    {
        string Value(string name, string fallback)
        {
            var at = Array.IndexOf(args, name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
        }

        return new Args(
            Value("--backend", "memory"),
            int.Parse(Value("--keys", "1000000"), CultureInfo.InvariantCulture),
            long.Parse(Value("--updates", "10000000"), CultureInfo.InvariantCulture),
            args.Contains("--hot"),
            args.Contains("--dir") ? Value("--dir", "") : null,
            int.Parse(Value("--cache-mb", "64"), CultureInfo.InvariantCulture),
            args.Contains("--all"),
            int.Parse(Value("--rounds", "1"), CultureInfo.InvariantCulture),
            Value("--backends", "memory,faster,rocksdb,rocksdb-direct,zonetree").Split(','));
    }
}

/// <summary>Runs each backend in a child process (a clean heap and a clean peak RSS per figure), interleaved.</summary>
internal static class Children
{
    public static int Run(Args options)
    {
        Console.WriteLine("backend\tkeys\tupdates\tkeys\tfirst-touch/s\tupdates/s\tflush s\tbytes on disk\tpeak RSS\tmanaged heap");
        for (var round = 0; round < options.Rounds; round++)
        {
            foreach (var backend in options.Backends)
            {
                var start = new ProcessStartInfo(Environment.ProcessPath!)
                {
                    RedirectStandardOutput = true,
                };
                foreach (var arg in new[] { "--backend", backend, "--keys", options.Keys.ToString(CultureInfo.InvariantCulture), "--updates", options.Updates.ToString(CultureInfo.InvariantCulture), "--cache-mb", options.CacheMegabytes.ToString(CultureInfo.InvariantCulture) })
                {
                    start.ArgumentList.Add(arg);
                }

                if (options.Hot)
                {
                    start.ArgumentList.Add("--hot");
                }

                using var child = Process.Start(start)!;
                var output = child.StandardOutput.ReadToEnd();
                child.WaitForExit();
                Console.Write(child.ExitCode == 0 ? output : $"{backend}\tfailed with exit code {child.ExitCode}\n");
            }
        }

        return 0;
    }
}

/// <summary>The keys and updates of a run, and the reference counts.</summary>
internal sealed class Workload(int keys, long updates, bool hot, int seed)
{
    /// <summary>Every key once, in an order unrelated to the keys' order (the keys are a bijection of 0..N-1).</summary>
    public IEnumerable<int> Keys()
    {
        for (var i = 0; i < keys; i++)
        {
            yield return Scramble(i);
        }
    }

    public IEnumerable<int> Updates()
    {
        var random = new Random(seed + 1);
        var hotKeys = Math.Max(1, keys / 100);
        for (long i = 0; i < updates; i++)
        {
            yield return Scramble(hot && random.Next(10) != 0 ? random.Next(hotKeys) : random.Next(keys));
        }
    }

    /// <summary>Checks 10,000 sampled keys against counts recomputed from the seed (without an array of every key: the heap may be capped).</summary>
    public void Check(IStateStore store)
    {
        var random = new Random(seed + 2);
        var expected = new Dictionary<int, long>();
        for (var i = 0; i < 10_000; i++)
        {
            expected[Scramble(random.Next(keys))] = 1;
        }

        foreach (var key in Updates())
        {
            if (expected.TryGetValue(key, out var count))
            {
                expected[key] = count + 1;
            }
        }

        foreach (var (key, count) in expected)
        {
            var actual = store.Get(key);
            if (actual != count)
            {
                throw new InvalidOperationException($"key {key}: {actual}, expected {count}");
            }
        }
    }

    // Keys spread over the int range (a bijection), as hashed user ids would be, not 0..N in order.
    private static int Scramble(int key) => (int)((uint)key * 0x9E3779B1u);

}

/// <summary>A count per key.</summary>
internal interface IStateStore : IDisposable
{
    void Increment(int key);

    /// <summary>Completes operations that went asynchronous (FASTER's reads from disk).</summary>
    void Drain();

    /// <summary>Makes the state durable on disk, as a checkpoint would.</summary>
    void Flush();

    long Get(int key);
}

/// <summary>The in-memory baseline: what a user writes and what the engine's running aggregate keeps.</summary>
internal sealed class MemoryStore(int keys) : IStateStore
{
    private readonly Dictionary<int, long> _counts = new(keys);

    public void Increment(int key) => System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_counts, key, out _)++;

    public void Drain()
    {
    }

    public void Flush()
    {
    }

    public long Get(int key) => _counts.GetValueOrDefault(key);

    public void Dispose()
    {
    }
}

/// <summary>Microsoft.FASTER.Core: a hash index in memory, records in a hybrid log (the tail in memory, the rest on disk).</summary>
internal sealed class FasterStore : IStateStore
{
    private readonly IDevice _log;
    private readonly FasterKV<int, long> _store;
    private readonly ClientSession<int, long, long, long, Empty, SimpleFunctions<int, long>> _session;
    private int _pending;

    public FasterStore(string dir, int keys, int cacheMegabytes)
    {
        _log = Devices.CreateLogDevice(Path.Combine(dir, "hlog.log"), deleteOnClose: false);
        var buckets = 1L << Math.Max(10, (int)Math.Ceiling(Math.Log2(Math.Max(1, keys / 8)))); // 64-byte buckets of 7 entries, in memory: 8 bytes or more per key
        var memoryBits = Math.Max(16, (int)Math.Floor(Math.Log2(cacheMegabytes * 1024.0 * 1024.0)));
        _store = new FasterKV<int, long>(
            buckets,
            new LogSettings { LogDevice = _log, MemorySizeBits = memoryBits, PageSizeBits = Math.Min(22, memoryBits - 2) },
            new CheckpointSettings { CheckpointDir = Path.Combine(dir, "checkpoints") });
        _session = _store.For(new SimpleFunctions<int, long>((a, b) => a + b)).NewSession<SimpleFunctions<int, long>>();
    }

    public void Increment(int key)
    {
        long one = 1;
        var status = _session.RMW(ref key, ref one);
        if (status.IsPending && ++_pending >= 256)
        {
            _session.CompletePending(wait: true);
            _pending = 0;
        }
    }

    public void Drain()
    {
        _session.CompletePending(wait: true);
        _pending = 0;
    }

    public void Flush()
    {
        var (success, _) = _store.TakeHybridLogCheckpointAsync(CheckpointType.FoldOver).AsTask().GetAwaiter().GetResult();
        if (!success)
        {
            throw new InvalidOperationException("FASTER checkpoint failed");
        }
    }

    public long Get(int key)
    {
        long value = 0;
        var status = _session.Read(ref key, ref value);
        if (status.IsPending)
        {
            _session.CompletePendingWithOutputs(out var outputs, wait: true);
            using (outputs)
            {
                while (outputs.Next())
                {
                    value = outputs.Current.Output;
                }
            }
        }

        return value;
    }

    public void Dispose()
    {
        _session.Dispose();
        _store.Dispose();
        _log.Dispose();
    }
}

/// <summary>RocksDB (native, through the RocksDB package's bindings): an LSM tree; a count is a get and a put, without a write-ahead log (checkpoints make state durable, as in Flink).</summary>
internal sealed class RocksStore : IStateStore
{
    private readonly RocksDb _db;
    private readonly WriteOptions _write = new WriteOptions().DisableWal(1);
    private readonly byte[] _key = new byte[4];
    private readonly byte[] _value = new byte[8];

    public RocksStore(string dir, int cacheMegabytes)
    {
        // A bloom filter per table (10 bits a key), as RocksDB's tuning guide advises for point lookups: a first touch of
        // a key is a lookup that finds nothing, and without a filter it reads a block of every level.
        var table = new BlockBasedTableOptions()
            .SetBlockCache(Cache.CreateLru((ulong)cacheMegabytes * 1024 * 1024))
            .SetFilterPolicy(BloomFilterPolicy.Create(10, false));
        var options = new DbOptions().SetCreateIfMissing(true).SetBlockBasedTableFactory(table).SetWriteBufferSize((ulong)Math.Max(4, cacheMegabytes / 2) * 1024 * 1024);
        _db = RocksDb.Open(options, dir);
    }

    public void Increment(int key)
    {
        BinaryPrimitives.WriteInt32BigEndian(_key, key);
        var current = _db.Get(_key);
        BinaryPrimitives.WriteInt64LittleEndian(_value, (current is null ? 0 : BinaryPrimitives.ReadInt64LittleEndian(current)) + 1);
        _db.Put(_key, _value, writeOptions: _write);
    }

    public void Drain()
    {
    }

    public void Flush() => _db.Flush(new FlushOptions().SetWaitForFlush(true));

    public long Get(int key)
    {
        BinaryPrimitives.WriteInt32BigEndian(_key, key);
        var current = _db.Get(_key);
        return current is null ? 0 : BinaryPrimitives.ReadInt64LittleEndian(current);
    }

    public void Dispose() => _db.Dispose();
}

/// <summary>ZoneTree (managed): an LSM tree; a count is an atomic add-or-update, without a write-ahead log; its maintainer moves full in-memory segments to disk and merges them.</summary>
internal sealed class ZoneStore : IStateStore
{
    private readonly IZoneTree<int, long> _tree;
    private readonly IMaintainer _maintainer;

    public ZoneStore(string dir, int cacheMegabytes)
    {
        _tree = new ZoneTreeFactory<int, long>()
            .SetDataDirectory(dir)
            .SetMutableSegmentMaxItemCount(Math.Max(100_000, cacheMegabytes * 1024 * 1024 / 32))
            .ConfigureWriteAheadLogOptions(x => x.WriteAheadLogMode = WriteAheadLogMode.None)
            .OpenOrCreate();
        _maintainer = _tree.CreateMaintainer();
        _maintainer.EnableJobForCleaningInactiveCaches = true;
    }

    public void Increment(int key) => _tree.TryAtomicAddOrUpdate(key, 1, static (ref long count) => { count++; return true; });

    public void Drain()
    {
    }

    public void Flush()
    {
        _tree.Maintenance.MoveMutableSegmentForward();
        _tree.Maintenance.StartMergeOperation()?.Join();
        _tree.Maintenance.SaveMetaData();
    }

    public long Get(int key) => _tree.TryGet(key, out var count) ? count : 0;

    public void Dispose()
    {
        _maintainer.WaitForBackgroundThreads();
        _maintainer.Dispose();
        _tree.Dispose();
    }
}
