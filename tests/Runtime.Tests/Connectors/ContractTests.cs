using System.Collections.Concurrent;
using System.Text;
using Compiled.Connectors;
using Compiled.Sqlite;
using Compiled.Testing;
using Microsoft.Data.Sqlite;

namespace Compiled.Runtime.Tests.Connectors;

[Record(Naming = FieldNaming.SnakeCase)]
public readonly partial record struct Measurement(int Id, string Sensor, double Value);

/// <summary>Declares a SQLite sink of measurements, so the contract can take the schema the generator derived.</summary>
[Pipeline]
public sealed partial class MeasurementsToSqlite
{
    [Source] public CollectionSource<Measurement> Input { get; set; } = new();

    [Sink] public SqliteSink<Measurement> Output { get; set; } = new("unused.db", "measurements");
}

/// <summary>The connector contract kit against the built-in connectors of Compiled.Runtime, and against broken ones.</summary>
public sealed class ContractTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-contract-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static Measurement Record(int i) => new(i, "sensor " + (i % 13) + (i % 50 == 0 ? " \"quoted\", ünïcødé" : ""), i / 8.0);

    private static Measurement[] Records(int count) => [.. Enumerable.Range(0, count).Select(Record)];

    private static void AssertHolds(ContractReport report, params string[] checks)
    {
        Assert.True(report.Ok, report.ToString());
        Assert.Equal(checks, report.Passed);
    }

    // ---- sinks ----

    [Fact]
    public async Task CollectionSink_keeps_the_contract()
    {
        var sinks = new ConcurrentDictionary<string, CollectionSink<Measurement>>();
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Measurement>
        {
            CreateSink = id => sinks.GetOrAdd(id, _ => new CollectionSink<Measurement>()),
            ReadBack = (id, _) => Task.FromResult(sinks.TryGetValue(id, out var sink) ? sink.Items : (IReadOnlyList<Measurement>)[]),
            Record = Record,
        });

        AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one");
    }

    [Fact]
    public async Task SqliteSink_keeps_the_contract()
    {
        var database = Path.Combine(_directory, "contract.db");
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Measurement>
        {
            CreateSink = id => new SqliteSink<Measurement>(database, id),
            ReadBack = (id, _) => Task.FromResult<IReadOnlyList<Measurement>>(ReadTable(database, id)),
            Record = Record,
            Schema = ConnectorContract.SchemaOf<Measurement>(new MeasurementsToSqlite()),
            CreateBroken = id => new SqliteSink<Measurement>(Path.Combine(_directory, "no-such-directory", "x.db"), id),
        });

        AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one", "failures name the connector");
    }

    private static List<Measurement> ReadTable(string database, string table)
    {
        using var connection = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT id, sensor, value FROM \"{table}\"";
        try
        {
            using var reader = command.ExecuteReader();
            var rows = new List<Measurement>();
            while (reader.Read())
            {
                rows.Add(new Measurement(reader.GetInt32(0), reader.GetString(1), reader.GetDouble(2)));
            }

            return rows;
        }
        catch (SqliteException ex) when (ex.Message.Contains("no such table", StringComparison.Ordinal))
        {
            return [];
        }
    }

    [Fact]
    public async Task FileSink_keeps_the_contract()
    {
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Measurement>
        {
            CreateSink = id => new FileSink<Measurement, Measurement.JsonCodec>(Path.Combine(_directory, id)),
            ReadBack = (id, _) => Task.FromResult<IReadOnlyList<Measurement>>(ReadFiles(Path.Combine(_directory, id))),
            Record = Record,
        });

        AssertHolds(report, "every record once", "durable at a checkpoint", "a run after an aborted one");
    }

    /// <summary>The records of the completed files (not <c>*.inprogress</c>) of a directory.</summary>
    private static List<Measurement> ReadFiles(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return [];
        }

        var records = new List<Measurement>();
        foreach (var file in Directory.GetFiles(directory).Where(f => !f.EndsWith(".inprogress", StringComparison.Ordinal)))
        {
            foreach (var line in File.ReadAllLines(file).Where(l => l.Length > 0))
            {
                Assert.True(Measurement.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(line), out var record, out var error), error.ToString());
                records.Add(record);
            }
        }

        return records;
    }

    [Fact]
    public async Task A_sink_that_keeps_the_callers_memory_breaks_every_record_once()
    {
        var sinks = new ConcurrentDictionary<string, AliasingSink>();
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Measurement>
        {
            CreateSink = id => sinks.GetOrAdd(id, _ => new AliasingSink()),
            ReadBack = (id, _) => Task.FromResult(sinks.TryGetValue(id, out var sink) ? sink.Durable : (IReadOnlyList<Measurement>)[]),
            Record = Record,
        });

        Assert.Contains(report.Violations, v => v.Check == "every record once");
    }

    [Fact]
    public async Task A_sink_whose_flush_does_not_make_records_durable_breaks_durability()
    {
        var sinks = new ConcurrentDictionary<string, LateSink>();
        var report = await ConnectorContract.CheckSinkAsync(new SinkContract<Measurement>
        {
            CreateSink = id => sinks.GetOrAdd(id, _ => new LateSink()),
            ReadBack = (id, _) => Task.FromResult(sinks.TryGetValue(id, out var sink) ? sink.Durable : (IReadOnlyList<Measurement>)[]),
            Record = Record,
        });

        Assert.Equal(["every record once", "a run after an aborted one"], report.Passed);
        Assert.NotEmpty(report.Violations);
        Assert.All(report.Violations, v => Assert.Equal("durable at a checkpoint", v.Check));
    }

    // ---- sources ----

    [Fact]
    public async Task CollectionSource_keeps_the_contract()
    {
        var records = Records(2_000);
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Measurement>
        {
            CreateSource = _ => new CollectionSource<Measurement>(records),
            Records = records,
        });

        AssertHolds(report, "every record once", "a run after an aborted one");
    }

    [Fact]
    public async Task FileSource_keeps_the_contract()
    {
        var records = Records(5_000);
        var path = Path.Combine(_directory, "in.jsonl");
        await File.WriteAllLinesAsync(path, records.Select(r => Encoding.UTF8.GetString(Encode(r))));
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Measurement>
        {
            CreateSource = _ => new FileSource<Measurement, Measurement.JsonCodec>(path, new FileSourceOptions { ChunkBytes = 16 * 1024 }),
            Records = records,
            CreateBroken = _ => new FileSource<Measurement, Measurement.JsonCodec>(Path.Combine(_directory, "missing.jsonl")),
        });

        AssertHolds(report, "every record once", "a run after an aborted one", "failures name the connector");
    }

    private static byte[] Encode(Measurement record)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        Measurement.JsonCodec.Encode(record, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public async Task A_log_that_commits_what_it_read_keeps_the_contract()
    {
        var records = Records(4_000);
        var log = new MemoryLog(records, commitAhead: 0);
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Measurement>
        {
            CreateSource = log.Consumer,
            Records = records,
            Bounded = false,
        });

        AssertHolds(report, "every record once", "resumes where it stopped", "a run after an aborted one");
    }

    [Fact]
    public async Task A_log_that_commits_ahead_of_what_it_read_breaks_resuming()
    {
        // Enough records that the first consumer is stopped well before the end (one that read them all before its stop
        // landed commits nothing ahead of the end, and so loses nothing to detect), and patience for a loaded machine: the
        // loss shows as records the second consumer never delivers, waited for that long.
        var records = Records(20_000);
        var log = new MemoryLog(records, commitAhead: 25);
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Measurement>
        {
            CreateSource = log.Consumer,
            Records = records,
            Bounded = false,
            Patience = TimeSpan.FromSeconds(15),
        });

        Assert.Contains("every record once", report.Passed);
        Assert.Contains(report.Violations, v => v.Check == "resumes where it stopped" && v.Problem.Contains("missing", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_source_that_repeats_a_record_breaks_every_record_once()
    {
        var records = Records(1_000);
        var report = await ConnectorContract.CheckSourceAsync(new SourceContract<Measurement>
        {
            CreateSource = _ => new CollectionSource<Measurement>([.. records, records[500]]),
            Records = records,
        });

        Assert.Contains(report.Violations, v => v.Check == "every record once" && v.Problem.Contains("more than expected", StringComparison.Ordinal));
    }

    /// <summary>A sink of the broken kind under test: what it made durable, readable while a run writes.</summary>
    private abstract class DurableSink : ISink<Measurement>
    {
        private readonly List<Measurement> _durable = [];

        public IReadOnlyList<Measurement> Durable
        {
            get
            {
                lock (_durable)
                {
                    return [.. _durable];
                }
            }
        }

        public ValueTask OpenAsync(SinkContext<Measurement> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public abstract ISinkWriter<Measurement> CreateWriter(int partition);

        public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        protected void MakeDurable(ReadOnlySpan<Measurement> records)
        {
            lock (_durable)
            {
                _durable.AddRange(records);
            }
        }
    }

    /// <summary>Keeps the memory it is given and copies it only when flushed: it sees batches the runtime has reused since.</summary>
    private sealed class AliasingSink : DurableSink
    {
        public override ISinkWriter<Measurement> CreateWriter(int partition) => new Writer(this);

        private sealed class Writer(AliasingSink sink) : ISinkWriter<Measurement>
        {
            private readonly List<ReadOnlyMemory<Measurement>> _kept = [];

            public ValueTask WriteAsync(ReadOnlyMemory<Measurement> records, CancellationToken cancellationToken)
            {
                _kept.Add(records); // wrong: the memory is the caller's once the call returns
                return ValueTask.CompletedTask;
            }

            public ValueTask FlushAsync(CancellationToken cancellationToken)
            {
                foreach (var kept in _kept)
                {
                    sink.MakeDurable(kept.Span);
                }

                _kept.Clear();
                return ValueTask.CompletedTask;
            }

            public ValueTask DisposeAsync() => FlushAsync(CancellationToken.None);
        }
    }

    /// <summary>Copies what it is given, but makes it durable only when its writer is disposed, not when flushed.</summary>
    private sealed class LateSink : DurableSink
    {
        public override ISinkWriter<Measurement> CreateWriter(int partition) => new Writer(this);

        private sealed class Writer(LateSink sink) : ISinkWriter<Measurement>
        {
            private readonly List<Measurement> _pending = [];

            public ValueTask WriteAsync(ReadOnlyMemory<Measurement> records, CancellationToken cancellationToken)
            {
                _pending.AddRange(records.Span);
                return ValueTask.CompletedTask;
            }

            public ValueTask FlushAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask; // wrong: nothing is durable yet

            public ValueTask DisposeAsync()
            {
                sink.MakeDurable(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending));
                return ValueTask.CompletedTask;
            }
        }
    }

    /// <summary>
    /// An in-memory log of 4 partitions read by a consumer identity, which commits offsets per identity like a Kafka
    /// group; with <c>commitAhead</c> it commits past what it handed out (a bug that loses records on a restart).
    /// Unbounded: at the end of its partitions a reader reports itself idle until the run stops.
    /// </summary>
    private sealed class MemoryLog(Measurement[] records, int commitAhead)
    {
        private const int Partitions = 4;
        private readonly Measurement[] _records = records;
        private readonly int _commitAhead = commitAhead;
        private readonly ConcurrentDictionary<(string, int), long> _committed = new();

        public ISource<Measurement> Consumer(string identity) => new Source(this, identity);

        private sealed class Source(MemoryLog log, string identity) : ISource<Measurement>
        {
            private int _parallelism;
            private int _batch;

            public ValueTask OpenAsync(SourceContext<Measurement> context, CancellationToken cancellationToken)
            {
                _parallelism = context.Parallelism;
                _batch = context.BatchSize;
                return ValueTask.CompletedTask;
            }

            public ISourceReader<Measurement> CreateReader(int partition)
                => new Reader(log, identity, [.. Enumerable.Range(0, Partitions).Where(p => p % _parallelism == partition)], _batch);

            public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
        }

        private sealed class Reader(MemoryLog log, string identity, int[] partitions, int batch) : ISourceReader<Measurement>
        {
            private readonly long[] _next = [.. partitions.Select(p => log._committed.GetValueOrDefault((identity, p)))];
            private int _turn;

            // The contract stops its first resuming consumer once half the records arrived. Reading from memory, a
            // consumer could reach the end before that stop lands (then nothing is committed ahead of anything, and
            // the loss this log causes cannot show): the first one delivers half of each partition and then waits.
            private readonly bool _holdsAtHalf = identity.Contains("resume", StringComparison.Ordinal) && partitions.All(p => !log._committed.ContainsKey((identity, p)));

            public bool CommitsPositions => true;

            public IReadOnlyList<SourcePosition> Positions => [.. partitions.Select((p, i) => new SourcePosition("log", p, _next[i]))];

            private Measurement[] PartitionOf(int p) => [.. log._records.Where((_, i) => i % Partitions == p)];

            public async ValueTask<SourceBatch<Measurement>> ReadAsync(CancellationToken cancellationToken)
            {
                for (var tried = 0; tried < partitions.Length; tried++)
                {
                    var k = _turn++ % partitions.Length;
                    var all = PartitionOf(partitions[k]);
                    var end = _holdsAtHalf ? all.Length / 2 : all.Length;
                    if (_next[k] < end)
                    {
                        var count = (int)Math.Min(batch, end - _next[k]);
                        var records = all.AsMemory((int)_next[k], count);
                        _next[k] += count;
                        return SourceBatch<Measurement>.Of(records);
                    }
                }

                await Task.Delay(5, cancellationToken).ConfigureAwait(false); // nothing new: wait as a consumer polls
                return SourceBatch<Measurement>.Idle;
            }

            /// <summary>Everything returned so far is durable downstream: commit it.</summary>
            public ValueTask CommitAsync(CancellationToken cancellationToken) => CommitAsync(Positions, cancellationToken);

            public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken)
            {
                foreach (var position in positions)
                {
                    log._committed[(identity, position.Partition)] = position.Offset + log._commitAhead;
                }

                return ValueTask.CompletedTask;
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }
}
