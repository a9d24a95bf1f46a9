using System.Globalization;
using System.Text;

namespace Compiled.Parquet;

/// <summary>
/// Exactly-once file commits. Each partition's checkpoint writes a manifest — the files it completed and the source
/// positions they cover — to <c>_compiled/{pipeline}/</c> (written to a temporary name, flushed, renamed: the commit
/// point), then renames the files to their final names, stores the positions (one small file per source partition,
/// replaced atomically) and deletes the manifest. A run that starts finishes every manifest a crash left behind before
/// its source claims positions, so a committed checkpoint's files and positions always appear together, and files of a
/// checkpoint that did not reach its manifest never get a final name.
/// </summary>
public sealed partial class ParquetSink<T>
{
    private readonly Lock _positions = new();

    private string PipelineDirectory => Path.Combine(_options.Directory, StateDirectory, PartitionTemplate.Escape(_pipeline));

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<SourcePosition>?> ClaimPositionsAsync(string pipeline, string source, IReadOnlyList<SourcePosition> partitions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        var claimed = new List<SourcePosition>(partitions.Count);
        lock (_positions)
        {
            foreach (var partition in partitions)
            {
                var path = PositionPath(source, partition.Stream, partition.Partition);
                var (offset, epoch) = ReadPosition(path);
                WriteAtomically(path, string.Create(CultureInfo.InvariantCulture, $"{offset} {epoch + 1}\n"));
                claimed.Add(new SourcePosition(partition.Stream, partition.Partition, offset, epoch + 1));
            }
        }

        return ValueTask.FromResult<IReadOnlyList<SourcePosition>?>(claimed);
    }

    /// <summary>Commits a partition's completed files with <paramref name="checkpoint"/>'s positions (see the class remarks).</summary>
    private void CommitExactlyOnce(Checkpoint checkpoint, int partition, long sequence, List<(string InProgress, string Final, long Rows)> files)
    {
        if (files.Count == 0 && checkpoint.Positions.Count == 0)
        {
            return;
        }

        lock (_positions)
        {
            // A reader that lost its partitions without knowing (a zombie) finds a newer epoch and commits nothing.
            foreach (var position in checkpoint.Positions)
            {
                var (_, epoch) = ReadPosition(PositionPath(checkpoint.Source, position.Stream, position.Partition));
                if (epoch != position.Epoch)
                {
                    throw new InvalidOperationException(
                        $"Exactly-once: partition {position} was claimed by another reader (epoch {epoch}, this one {position.Epoch}); " +
                        "this partition's uncommitted files stay in progress and its new owner resumes from the last committed positions.");
                }
            }

            var manifest = new StringBuilder();
            foreach (var (inProgress, final, rows) in files)
            {
                manifest.Append(CultureInfo.InvariantCulture, $"F\t{Relative(inProgress)}\t{Relative(final)}\t{rows}\n");
            }

            foreach (var position in checkpoint.Positions)
            {
                manifest.Append(CultureInfo.InvariantCulture, $"P\t{checkpoint.Source}\t{position.Stream}\t{position.Partition}\t{position.Offset}\t{position.Epoch}\n");
            }

            var path = Path.Combine(PipelineDirectory, string.Create(CultureInfo.InvariantCulture, $"commit-{partition:D3}-{_run}-{sequence:D8}.manifest"));
            WriteAtomically(path, manifest.ToString());
            Apply(path);
        }
    }

    /// <summary>Finishes the commits a crash interrupted (manifests left behind); drops manifests never completed.</summary>
    private void Recover()
    {
        var directory = PipelineDirectory;
        if (!Directory.Exists(directory))
        {
            return;
        }

        lock (_positions)
        {
            foreach (var torn in Directory.GetFiles(directory, "*.manifest.tmp"))
            {
                File.Delete(torn); // never renamed into place: that commit did not happen
            }

            foreach (var manifest in Directory.GetFiles(directory, "*.manifest").Order(StringComparer.Ordinal))
            {
                Apply(manifest);
            }
        }
    }

    /// <summary>Renames a manifest's files, stores its positions, deletes it. Idempotent: a file already renamed is skipped.</summary>
    private void Apply(string manifest)
    {
        foreach (var line in File.ReadAllLines(manifest))
        {
            var fields = line.Split('\t');
            if (fields[0] == "F")
            {
                var inProgress = Path.Combine(_options.Directory, fields[1]);
                var final = Path.Combine(_options.Directory, fields[2]);
                if (File.Exists(inProgress))
                {
                    File.Move(inProgress, final, overwrite: false);
                    Committed(long.Parse(fields[3], CultureInfo.InvariantCulture));
                }
                else if (!File.Exists(final))
                {
                    throw new InvalidDataException($"Commit manifest {manifest} names {fields[1]}, which is neither in progress nor committed: the lake directory was changed by something else.");
                }
            }
            else if (fields[0] == "P")
            {
                WriteAtomically(PositionPath(fields[1], fields[2], int.Parse(fields[3], CultureInfo.InvariantCulture)), $"{fields[4]} {fields[5]}\n");
            }
        }

        File.Delete(manifest);
    }

    private string Relative(string path) => Path.GetRelativePath(_options.Directory, path);

    private string PositionPath(string source, string stream, int partition)
        => Path.Combine(PipelineDirectory, "positions", PartitionTemplate.Escape(source), string.Create(CultureInfo.InvariantCulture, $"{PartitionTemplate.Escape(stream)}-{partition}"));

    /// <summary>A stored position and its epoch; (-1, 0) when none.</summary>
    private static (long Offset, long Epoch) ReadPosition(string path)
    {
        if (!File.Exists(path))
        {
            return (-1, 0);
        }

        var parts = File.ReadAllText(path).Trim().Split(' ');
        return (long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Writes <paramref name="text"/> to a temporary name, flushes it to disk, and renames it over <paramref name="path"/>.</summary>
    private static void WriteAtomically(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Encoding.UTF8.GetBytes(text));
            stream.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }
}
