using System.Reflection;
using System.Runtime.InteropServices;

namespace Compiled.Kafka.Testing;

/// <summary>
/// librdkafka's built-in mock cluster: brokers that speak the real Kafka protocol on loopback TCP, inside this
/// process, for tests and demos where no Kafka runs. Any client — this process's, or another process's — connects to
/// <see cref="BootstrapServers"/>. Produce, consume, consumer groups, rebalances, committed offsets and the
/// idempotent producer work; transactions are accepted but not enforced, and each partition keeps at most 5 MiB.
/// </summary>
public sealed partial class KafkaMockCluster : IDisposable
{
    private const string Library = "librdkafka";
    private static readonly Lock ResolverLock = new();
    private static bool _resolverSet;

    private IntPtr _handle;
    private IntPtr _cluster;

    private KafkaMockCluster(IntPtr handle, IntPtr cluster, string bootstrapServers)
    {
        _handle = handle;
        _cluster = cluster;
        BootstrapServers = bootstrapServers;
    }

    /// <summary>Where clients connect: <c>127.0.0.1:port,…</c>.</summary>
    public string BootstrapServers { get; }

    /// <summary>Starts a cluster of <paramref name="brokers"/> brokers (ids 1..n).</summary>
    public static unsafe KafkaMockCluster Start(int brokers = 3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(brokers, 1);
        EnsureResolver();
        var error = stackalloc byte[512];
        var conf = Native.rd_kafka_conf_new();
        if (Native.rd_kafka_conf_set(conf, "log_level", "0", error, 512) != 0)
        {
            throw new InvalidOperationException("librdkafka refused log_level: " + Message(error));
        }

        var handle = Native.rd_kafka_new(0 /* producer */, conf, error, 512);
        if (handle == IntPtr.Zero)
        {
            throw new InvalidOperationException("librdkafka could not create a client for the mock cluster: " + Message(error));
        }

        var cluster = Native.rd_kafka_mock_cluster_new(handle, brokers);
        if (cluster == IntPtr.Zero)
        {
            Native.rd_kafka_destroy(handle);
            throw new InvalidOperationException("librdkafka could not start a mock cluster.");
        }

        var bootstraps = Marshal.PtrToStringUTF8(Native.rd_kafka_mock_cluster_bootstraps(cluster)) ?? "";
        return new KafkaMockCluster(handle, cluster, bootstraps);
    }

    /// <summary>Creates <paramref name="topic"/> with <paramref name="partitions"/> partitions (topics also auto-create with 4).</summary>
    public void CreateTopic(string topic, int partitions, int replicationFactor = 1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(topic);
        Check(Native.rd_kafka_mock_topic_create(Cluster, topic, partitions, replicationFactor), $"create topic {topic}");
    }

    /// <summary>Takes broker <paramref name="brokerId"/> (1..n) down: its connections drop and it refuses new ones.</summary>
    public void SetBrokerDown(int brokerId) => Check(Native.rd_kafka_mock_broker_set_down(Cluster, brokerId), $"take broker {brokerId} down");

    /// <summary>Brings broker <paramref name="brokerId"/> back up.</summary>
    public void SetBrokerUp(int brokerId) => Check(Native.rd_kafka_mock_broker_set_up(Cluster, brokerId), $"bring broker {brokerId} up");

    /// <summary>Makes broker <paramref name="brokerId"/> the coordinator of consumer group <paramref name="groupId"/> (so that a test can take another broker down without touching the group).</summary>
    public void SetGroupCoordinator(string groupId, int brokerId)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(groupId);
        Check(Native.rd_kafka_mock_coordinator_set(Cluster, "group", groupId, brokerId), $"make broker {brokerId} the coordinator of group {groupId}");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_cluster != IntPtr.Zero)
        {
            Native.rd_kafka_mock_cluster_destroy(_cluster);
            _cluster = IntPtr.Zero;
        }

        if (_handle != IntPtr.Zero)
        {
            Native.rd_kafka_destroy(_handle);
            _handle = IntPtr.Zero;
        }
    }

    private IntPtr Cluster => _cluster != IntPtr.Zero ? _cluster : throw new ObjectDisposedException(nameof(KafkaMockCluster));

    private static void Check(int error, string action)
    {
        if (error != 0)
        {
            throw new InvalidOperationException($"The mock cluster could not {action}: librdkafka error {error}.");
        }
    }

    private static unsafe string Message(byte* error) => Marshal.PtrToStringUTF8((IntPtr)error) ?? "";

    /// <summary>
    /// Resolves "librdkafka" to the same file Confluent.Kafka loads. On Debian 12 the plain librdkafka.so shipped in
    /// librdkafka.redist needs libsasl2.so.3, which is missing; the self-contained centos8 build beside it loads.
    /// </summary>
    private static void EnsureResolver()
    {
        lock (ResolverLock)
        {
            if (_resolverSet)
            {
                return;
            }

            NativeLibrary.SetDllImportResolver(typeof(KafkaMockCluster).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Library)
        {
            return IntPtr.Zero;
        }

        var bases = new[] { AppContext.BaseDirectory, Path.GetDirectoryName(Environment.ProcessPath) ?? "" };
        var rid = RuntimeInformation.RuntimeIdentifier.StartsWith("linux-arm64", StringComparison.Ordinal) ? "linux-arm64" : "linux-x64";
        foreach (var directory in bases.Where(d => d.Length > 0).Distinct())
        {
            foreach (var file in new[] { "centos8-librdkafka.so", "librdkafka.so" })
            {
                foreach (var path in new[] { Path.Combine(directory, "runtimes", rid, "native", file), Path.Combine(directory, file) })
                {
                    if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle))
                    {
                        return handle;
                    }
                }
            }
        }

        return NativeLibrary.TryLoad("librdkafka.so.1", out var system) ? system : IntPtr.Zero;
    }

    private static unsafe partial class Native
    {
        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        public static partial IntPtr rd_kafka_conf_new();

        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int rd_kafka_conf_set(IntPtr conf, string name, string value, byte* errstr, nuint errstrSize);

        [LibraryImport(Library)]
        public static partial IntPtr rd_kafka_new(int type, IntPtr conf, byte* errstr, nuint errstrSize);

        [LibraryImport(Library)]
        public static partial void rd_kafka_destroy(IntPtr rk);

        [LibraryImport(Library)]
        public static partial IntPtr rd_kafka_mock_cluster_new(IntPtr rk, int brokerCount);

        [LibraryImport(Library)]
        public static partial void rd_kafka_mock_cluster_destroy(IntPtr cluster);

        [LibraryImport(Library)]
        public static partial IntPtr rd_kafka_mock_cluster_bootstraps(IntPtr cluster);

        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int rd_kafka_mock_topic_create(IntPtr cluster, string topic, int partitionCount, int replicationFactor);

        [LibraryImport(Library)]
        public static partial int rd_kafka_mock_broker_set_down(IntPtr cluster, int brokerId);

        [LibraryImport(Library)]
        public static partial int rd_kafka_mock_broker_set_up(IntPtr cluster, int brokerId);

        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int rd_kafka_mock_coordinator_set(IntPtr cluster, string keyType, string key, int brokerId);
    }
}
