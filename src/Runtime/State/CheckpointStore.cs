using System.Globalization;
using System.IO.Hashing;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime;

/// <summary>One window's part of a checkpoint: its schema and one snapshot per keyed partition.</summary>
internal sealed record WindowCheckpoint(StateSchema Schema, IReadOnlyList<ReadOnlyMemory<byte>> Partitions);

/// <summary>
/// A complete checkpoint: where every source partition resumes, and every window's state as it was when the barrier
/// carrying <see cref="Id"/> passed it.
/// </summary>
internal sealed record CheckpointData(long Id, DateTimeOffset Taken, IReadOnlyList<SourcePosition> Positions, IReadOnlyList<WindowCheckpoint> Windows);

/// <summary>Where a run's checkpoints of keyed state go: a local directory, or a sink that commits them with its rows.</summary>
internal interface ICheckpointStore
{
    /// <summary>Where the checkpoints are, for messages.</summary>
    string Directory { get; }

    /// <summary>Writes a complete checkpoint.</summary>
    Task WriteAsync(CheckpointData data, CancellationToken cancellationToken);

    /// <summary>The highest checkpoint id stored (new checkpoints are numbered after it).</summary>
    long HighestId();
}

/// <summary>
/// Checkpoints committed by the pipeline's exactly-once sink (<see cref="ICheckpointCommitter"/>): rows, positions and
/// state in one transaction of the sink's own store.
/// </summary>
internal sealed class CommitterCheckpointStore(ICheckpointCommitter committer, string pipeline, long restoredId) : ICheckpointStore
{
    private const char Separator = '\u001f';

    public string Directory => committer.CheckpointLocation;

    public long HighestId() => restoredId;

    public Task WriteAsync(CheckpointData data, CancellationToken cancellationToken)
    {
        var state = data.Windows
            .SelectMany(w => w.Partitions.Select((bytes, p) => new WindowState(w.Schema.Window, SchemaText(w.Schema), p, bytes)))
            .ToList();
        return committer.CommitCheckpointAsync(pipeline, new StoredCheckpoint(data.Id, data.Positions, state), cancellationToken).AsTask();
    }

    /// <summary>The committer's checkpoint in the runtime's terms (windows by name, partitions in order).</summary>
    public static CheckpointData FromStored(StoredCheckpoint stored, DateTimeOffset taken)
    {
        var windows = new List<WindowCheckpoint>();
        foreach (var window in stored.State.GroupBy(s => s.Window))
        {
            var schema = SchemaOf(window.Key, window.First().Schema);
            var partitions = window.OrderBy(s => s.Partition).ToList();
            if (partitions.Select(s => s.Partition).Where((p, i) => p != i).Any())
            {
                throw new InvalidDataException($"the stored state of window '{window.Key}' misses partitions");
            }

            windows.Add(new WindowCheckpoint(schema, partitions.Select(s => s.Bytes).ToList()));
        }

        return new CheckpointData(stored.Id, taken, stored.Positions, windows);
    }

    /// <summary>A window's schema as one string (<see cref="WindowState.Schema"/>).</summary>
    internal static string SchemaText(StateSchema schema) => string.Join(Separator, schema.Key, schema.Accumulator, schema.Spec);

    /// <summary>A window's schema read back from <see cref="SchemaText"/>.</summary>
    internal static StateSchema SchemaOf(string window, string text)
    {
        var parts = text.Split(Separator);
        return parts.Length == 3
            ? new StateSchema(window, parts[0], parts[1], parts[2])
            : throw new InvalidDataException($"the stored schema of window '{window}' is not one this build writes");
    }
}

/// <summary>
/// Checkpoints of a distributed run, committed by its exactly-once sink per Kafka partition
/// (<see cref="IPartitionedCheckpointCommitter"/>): keyed partition i holds the keys of the i-th claimed partition, so its
/// snapshot is that partition's state; every commit carries each claimed partition's epoch, and fails once another
/// copy has claimed one of them.
/// </summary>
internal sealed class PartitionedCheckpointStore(IPartitionedCheckpointCommitter committer, string pipeline, StoredCheckpoint claimed) : ICheckpointStore
{
    /// <summary>The claimed partitions, in the order of the keyed partitions: where each resumes (-1: nowhere yet) and its epoch.</summary>
    public IReadOnlyList<SourcePosition> Claimed { get; } = [.. claimed.Positions.OrderBy(p => p.Stream, StringComparer.Ordinal).ThenBy(p => p.Partition)];

    public string Directory => committer.PartitionCheckpointLocation;

    public long HighestId() => claimed.Id;

    public Task WriteAsync(CheckpointData data, CancellationToken cancellationToken)
    {
        var read = data.Positions.ToDictionary(p => (p.Stream, p.Partition), p => p.Offset);
        var positions = Claimed.Select(c => c with { Offset = read.GetValueOrDefault((c.Stream, c.Partition), c.Offset) }).ToList();
        var state = data.Windows
            .SelectMany(w => w.Partitions.Select((bytes, i) => new WindowState(w.Schema.Window, CommitterCheckpointStore.SchemaText(w.Schema), Claimed[i].Partition, bytes)))
            .ToList();
        return committer.CommitPartitionsAsync(pipeline, new StoredCheckpoint(data.Id, positions, state), cancellationToken).AsTask();
    }

    /// <summary>
    /// The claimed state in the runtime's terms: each window's snapshot for keyed partition i is the i-th claimed
    /// partition's (empty for a partition without state); null when no claimed partition has a checkpoint.
    /// </summary>
    public CheckpointData? Restored(DateTimeOffset taken)
    {
        if (claimed.Id == 0)
        {
            return null;
        }

        var index = Claimed.Select((p, i) => (p.Partition, i)).ToDictionary(x => x.Partition, x => x.i);
        var windows = new List<WindowCheckpoint>();
        foreach (var window in claimed.State.GroupBy(s => s.Window))
        {
            var partitions = new ReadOnlyMemory<byte>[Claimed.Count];
            foreach (var part in window)
            {
                partitions[index[part.Partition]] = part.Bytes;
            }

            windows.Add(new WindowCheckpoint(CommitterCheckpointStore.SchemaOf(window.Key, window.First().Schema), partitions));
        }

        return new CheckpointData(claimed.Id, taken, [.. Claimed.Where(p => p.Offset >= 0)], windows);
    }
}

/// <summary>
/// Checkpoints in a local directory: <c>chk-{id}/</c> holds one file per window and keyed partition, written and
/// flushed to disk, then <c>_checkpoint.json</c> — the manifest, with each file's length and CRC-32 — written to a
/// temporary name, flushed and renamed: a checkpoint without its manifest never happened. On start the newest
/// checkpoint whose manifest and files check out is restored; a torn or corrupt one is skipped with a warning.
/// The newest <c>retain</c> complete checkpoints are kept.
/// </summary>
internal sealed class FileCheckpointStore(string pipeline, string directory, int retain, ILogger logger) : ICheckpointStore
{
    private const string Manifest = "_checkpoint.json";
    private const int Version = 1;

    /// <summary>The pipeline's checkpoint directory.</summary>
    public string Directory { get; } = directory;

    /// <summary>
    /// Fails, as a configuration error, when checkpoints cannot be written to <see cref="Directory"/> (read-only, owned
    /// by another user, under a file): found at start, not at the first checkpoint, after the run read and wrote for an
    /// interval with nothing it could commit.
    /// </summary>
    public void EnsureWritable(string what)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            var probe = Path.Combine(Directory, string.Create(CultureInfo.InvariantCulture, $".write-test-{Environment.ProcessId}"));
            File.WriteAllBytes(probe, []);
            File.Delete(probe);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': {what} cannot be written to '{Directory}': {ex.Message}");
        }
    }

    /// <summary>Writes checkpoint <paramref name="data"/> and then deletes checkpoints beyond the retained number.</summary>
    public async Task WriteAsync(CheckpointData data, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(Directory, Name(data.Id));
        if (System.IO.Directory.Exists(folder))
        {
            System.IO.Directory.Delete(folder, recursive: true); // a torn attempt at this id from an earlier run
        }

        System.IO.Directory.CreateDirectory(folder);
        var files = new List<List<(string File, long Length, uint Crc)>>();
        for (var w = 0; w < data.Windows.Count; w++)
        {
            var partitions = new List<(string, long, uint)>();
            for (var p = 0; p < data.Windows[w].Partitions.Count; p++)
            {
                var bytes = data.Windows[w].Partitions[p];
                var file = string.Create(CultureInfo.InvariantCulture, $"w{w}-p{p}.state");
                await WriteDurablyAsync(Path.Combine(folder, file), bytes, cancellationToken).ConfigureAwait(false);
                partitions.Add((file, bytes.Length, Crc32.HashToUInt32(bytes.Span)));
            }

            files.Add(partitions);
        }

        var manifest = new MemoryStream();
        using (var json = new Utf8JsonWriter(manifest, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("version", Version);
            json.WriteNumber("id", data.Id);
            json.WriteString("pipeline", pipeline);
            json.WriteString("taken", data.Taken);
            json.WriteStartArray("positions");
            foreach (var position in data.Positions)
            {
                json.WriteStartObject();
                json.WriteString("stream", position.Stream);
                json.WriteNumber("partition", position.Partition);
                json.WriteNumber("offset", position.Offset);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("windows");
            for (var w = 0; w < data.Windows.Count; w++)
            {
                var schema = data.Windows[w].Schema;
                json.WriteStartObject();
                json.WriteString("name", schema.Window);
                json.WriteString("key", schema.Key);
                json.WriteString("accumulator", schema.Accumulator);
                json.WriteString("spec", schema.Spec);
                json.WriteStartArray("partitions");
                foreach (var (file, length, crc) in files[w])
                {
                    json.WriteStartObject();
                    json.WriteString("file", file);
                    json.WriteNumber("length", length);
                    json.WriteNumber("crc32", crc);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        var temporary = Path.Combine(folder, Manifest + ".tmp");
        await WriteDurablyAsync(temporary, manifest.GetBuffer().AsMemory(0, (int)manifest.Length), cancellationToken).ConfigureAwait(false);
        File.Move(temporary, Path.Combine(folder, Manifest));
        Prune(data.Id);
    }

    /// <summary>
    /// Copies checkpoint <paramref name="id"/>'s state on disk (<c>chk-N.disk/</c>, RocksDB checkpoints whose files the
    /// state directory's checkpoints share through hard links) from <paramref name="from"/> into this store, whole: a
    /// savepoint stands alone, on another disk or after the state directory is gone. Nothing when the state is in memory.
    /// </summary>
    public void CopyDiskState(string from, long id)
    {
        var name = DiskBackend.CheckpointFolder(id);
        var source = Path.Combine(from, name);
        if (!System.IO.Directory.Exists(source))
        {
            return;
        }

        var target = Path.Combine(Directory, name);
        if (System.IO.Directory.Exists(target))
        {
            System.IO.Directory.Delete(target, recursive: true); // an earlier attempt at this id
        }

        foreach (var file in System.IO.Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(target, Path.GetRelativePath(source, file));
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
            using var written = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite);
            written.Flush(flushToDisk: true);
        }
    }

    private static async Task WriteDurablyAsync(string path, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous);
        await using (stream.ConfigureAwait(false))
        {
            await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>Deletes complete checkpoints beyond the newest <c>retain</c>, and incomplete ones older than the newest complete one.</summary>
    private void Prune(long newest)
    {
        var complete = 0;
        foreach (var (id, folder) in Checkpoints())
        {
            var isComplete = File.Exists(Path.Combine(folder, Manifest));
            if (id > newest)
            {
                continue;
            }

            if (isComplete && ++complete <= retain)
            {
                continue;
            }

            if (isComplete || id < newest)
            {
                Delete(folder);
            }
        }

        // State on disk keeps its checkpoints beside the folders (chk-N.disk/): they go with their checkpoint, and
        // those of attempts that never got a manifest go once a later checkpoint is complete.
        foreach (var disk in System.IO.Directory.EnumerateDirectories(Directory, "chk-*.disk"))
        {
            var name = Path.GetFileName(disk);
            if (long.TryParse(name.AsSpan(4, name.Length - 9), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                && id < newest && !System.IO.Directory.Exists(Path.Combine(Directory, Name(id))))
            {
                Delete(disk);
            }
        }
    }

    private void Delete(string folder)
    {
        try
        {
            System.IO.Directory.Delete(folder, recursive: true);
        }
        catch (IOException ex)
        {
            Log.CheckpointNotDeleted(logger, pipeline, folder, ex.Message);
        }
    }

    /// <summary>The checkpoint folders, newest first.</summary>
    private List<(long Id, string Folder)> Checkpoints()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            return [];
        }

        return System.IO.Directory.EnumerateDirectories(Directory, "chk-*")
            .Select(folder => (Id: long.TryParse(Path.GetFileName(folder).AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : -1, Folder: folder))
            .Where(c => c.Id >= 0)
            .OrderByDescending(c => c.Id)
            .ToList();
    }

    /// <summary>The newest checkpoint that is complete and intact (older ones are tried in turn, each skip logged), or null.</summary>
    public CheckpointData? LoadLatest()
    {
        foreach (var (id, folder) in Checkpoints())
        {
            try
            {
                return Load(id, folder);
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or JsonException or UnauthorizedAccessException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                Log.CheckpointSkipped(logger, pipeline, id, folder, ex.Message);
            }
        }

        return null;
    }

    /// <summary>The highest checkpoint id in the directory, complete or not (new checkpoints are numbered after it).</summary>
    public long HighestId() => Checkpoints().Select(c => c.Id).DefaultIfEmpty(0).Max();

    private static CheckpointData Load(long id, string folder)
    {
        var manifestPath = Path.Combine(folder, Manifest);
        if (!File.Exists(manifestPath))
        {
            throw new InvalidDataException("it has no manifest (the run stopped while writing it)");
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(manifestPath));
        var root = document.RootElement;
        if (root.GetProperty("version").GetInt32() != Version)
        {
            throw new InvalidDataException($"its format version is {root.GetProperty("version").GetInt32()}; this build reads version {Version}");
        }

        if (root.GetProperty("id").GetInt64() != id)
        {
            throw new InvalidDataException("its manifest names another checkpoint");
        }

        var positions = root.GetProperty("positions").EnumerateArray()
            .Select(p => new SourcePosition(p.GetProperty("stream").GetString()!, p.GetProperty("partition").GetInt32(), p.GetProperty("offset").GetInt64()))
            .ToList();
        var windows = new List<WindowCheckpoint>();
        foreach (var window in root.GetProperty("windows").EnumerateArray())
        {
            var schema = new StateSchema(window.GetProperty("name").GetString()!, window.GetProperty("key").GetString()!, window.GetProperty("accumulator").GetString()!, window.GetProperty("spec").GetString()!);
            var partitions = new List<ReadOnlyMemory<byte>>();
            foreach (var partition in window.GetProperty("partitions").EnumerateArray())
            {
                var file = partition.GetProperty("file").GetString()!;
                if (file.Contains('/', StringComparison.Ordinal) || file.Contains('\\', StringComparison.Ordinal) || file.StartsWith('.'))
                {
                    throw new InvalidDataException($"its manifest names file '{file}' outside the checkpoint");
                }

                var path = Path.Combine(folder, file);
                if (!File.Exists(path))
                {
                    throw new InvalidDataException($"file {file} is missing");
                }

                var bytes = File.ReadAllBytes(path);
                if (bytes.Length != partition.GetProperty("length").GetInt64())
                {
                    throw new InvalidDataException($"file {file} has {bytes.Length} bytes, the manifest says {partition.GetProperty("length").GetInt64()} (torn)");
                }

                if (Crc32.HashToUInt32(bytes) != partition.GetProperty("crc32").GetUInt32())
                {
                    throw new InvalidDataException($"file {file} does not match its checksum (corrupt)");
                }

                partitions.Add(bytes);
            }

            windows.Add(new WindowCheckpoint(schema, partitions));
        }

        return new CheckpointData(id, root.GetProperty("taken").GetDateTimeOffset(), positions, windows);
    }

    private static string Name(long id) => string.Create(CultureInfo.InvariantCulture, $"chk-{id:D12}");
}
