using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Connectors;

[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Numbered(long Value);

/// <summary>
/// Partition 1 fails at its 2 000th record while partition 0 reads forever: the run fails and aborts partition 0 with
/// its file half written.
/// </summary>
[Pipeline(Name = "half-written", ErrorPolicy = ErrorPolicy.FailFast)]
public sealed partial class HalfWrittenPipeline
{
    [Source] public EndlessSource Numbers { get; set; } = new();

    [Transform] static Numbered Wrap(long x) => x == 4001 ? throw new InvalidOperationException("record 4001 is poison") : new Numbered(x);

    [Sink] public FileSink<Numbered, Numbered.JsonCodec> Files { get; set; } = new("unused");
}

/// <summary>What a failed run leaves behind (issue 18, item 3).</summary>
public sealed class FailedRunOutputTests : IDisposable
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("compiled-failed-run-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_failed_run_leaves_its_files_in_progress_and_never_renames_partial_output_to_a_final_name()
    {
        var output = Path.Combine(_directory, "out");
        var pipeline = new HalfWrittenPipeline { Files = new(output, new FileSinkOptions { RollBytes = null }) };

        await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 100 }).WaitAsync(HangGuard));

        var files = Directory.GetFiles(output);
        Assert.NotEmpty(files);
        Assert.All(files, f => Assert.EndsWith(".inprogress", f, StringComparison.Ordinal));
        Assert.Equal(0, pipeline.Files.FilesCompleted);
    }

    [Fact]
    public async Task A_writer_is_told_it_is_aborted_rather_than_disposed_as_if_complete()
    {
        var sink = new TrackingSink<long>();
        var pipeline = new FragilePipeline { Numbers = new CollectionSource<long>(Enumerable.Range(4200, 100).Select(i => (long)i)), Output = sink };
        await Assert.ThrowsAsync<OperatorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, BatchSize = 10 }).WaitAsync(HangGuard));
        Assert.Equal(1, sink.WritersAborted);
    }

    [Fact]
    public async Task A_dead_letter_file_that_cannot_be_written_stops_the_run_at_start()
    {
        var blocker = Path.Combine(_directory, "not-a-directory");
        File.WriteAllText(blocker, "a file where a directory should be");
        var deadLetters = Path.Combine(blocker, "dead.jsonl");
        var sink = new TrackingSink<long>();
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3), Output = sink };

        var error = await Assert.ThrowsAsync<ConnectorException>(() => pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard));

        Assert.Contains(deadLetters, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, sink.Written);
        Assert.True(NonRetryableException.IsCause(error));
    }

    [Fact]
    public async Task A_clean_run_still_leaves_no_dead_letter_file_or_directory()
    {
        var deadLetters = Path.Combine(_directory, "letters", "dead.jsonl");
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterPath = deadLetters }).WaitAsync(HangGuard);
        Assert.False(Directory.Exists(Path.GetDirectoryName(deadLetters)));
        Assert.Empty(Directory.GetFiles(_directory));
    }

    [Fact]
    public async Task A_dead_letter_sink_of_its_own_is_opened_at_start()
    {
        var letters = new TrackingSink<DeadLetter>();
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1, DeadLetterSink = letters }).WaitAsync(HangGuard);
        Assert.Equal(1, letters.Opened);
        Assert.Equal(1, letters.Closed);
    }
}
