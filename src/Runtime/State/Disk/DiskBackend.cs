namespace Compiled.Runtime;

/// <summary>Where a pipeline's keyed state lives (<see cref="PipelineOptions.StateBackend"/>, <c>--set StateBackend=Disk</c>).</summary>
public enum StateBackend
{
    /// <summary>Tables on the heap of the keyed partition that owns the key: the fastest, bounded by memory.</summary>
    Memory,

    /// <summary>
    /// RocksDB on local disk, the hottest keys in memory: state larger than memory, checkpointed incrementally. The
    /// application brings RocksDB's native library (the RocksDB package). Running aggregates, tumbling and sliding windows; not sessions or joins yet.
    /// </summary>
    Disk,
}

/// <summary>What the disk state backend shares between windows: its folders and its errors.</summary>
internal static class DiskBackend
{
    /// <summary>The folder beside checkpoint <paramref name="id"/>'s that holds its windows' RocksDB checkpoints.</summary>
    public static string CheckpointFolder(long id) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"chk-{id:D12}.disk");

    /// <summary>The pipeline's state folder, which holds its checkpoints and, on disk, its live state.</summary>
    public static string Root(PipelineOptions options, string pipeline) => Path.Combine(options.StateDirectory, PipelineRun.FileName(pipeline));

    /// <summary>
    /// Deletes every window database an earlier run left in the live folder — also those of partitions this run does
    /// not have (a crash at a higher parallelism): live state is scratch, a run's state comes from checkpoints.
    /// </summary>
    public static void ClearLive(string pipeline, PipelineOptions options)
    {
        var live = Path.Combine(Root(options, pipeline), "live");
        try
        {
            if (Directory.Exists(live))
            {
                Directory.Delete(live, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': the state on disk left by an earlier run in '{live}' could not be deleted: {ex.Message}", ex);
        }
    }

    /// <summary>A keyed stage the disk backend does not hold yet (a time window, a join, …): a configuration error that says which and what to do.</summary>
    public static PipelineConfigurationException Unsupported(string pipeline, string what)
        => new(pipeline, $"Pipeline '{pipeline}': StateBackend=Disk holds running aggregates and tumbling and sliding windows, but {what}; run it with StateBackend=Memory. See docs/state.md.");

    /// <summary>Opens a window's database; a missing native library is a configuration error, not a crash.</summary>
    public static T Open<T>(string pipeline, Func<T> open)
    {
        try
        {
            return open();
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': StateBackend=Disk keeps window state in RocksDB, whose native library (librocksdb) this application does not bring: add the RocksDB package (dotnet add package RocksDB --version 11.12.0.7641). See docs/state.md.", ex);
        }
        catch (IOException ex)
        {
            throw new PipelineConfigurationException(pipeline, $"Pipeline '{pipeline}': the state on disk could not be opened: {ex.Message}", ex);
        }
    }
}
