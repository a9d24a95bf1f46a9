using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Compiled.Runtime;

/// <summary>
/// Runs a pipeline as a command-line program: parses options, handles Ctrl+C and SIGTERM (the first stops the run
/// gracefully, a second aborts it), prints a summary, and maps the outcome to an exit code (<see cref="ExitCodes"/>).
/// </summary>
public static class PipelineHost
{
    /// <summary>Runs <paramref name="pipeline"/> with the command line <paramref name="args"/>; returns the exit code.</summary>
    public static Task<int> RunAsync(ICompiledPipeline pipeline, string[] args, CancellationToken cancellationToken = default)
        => RunAsync(pipeline, args, Console.Out, Console.Error, cancellationToken);

    /// <summary>As <see cref="RunAsync(ICompiledPipeline, string[], CancellationToken)"/>, writing to the given streams.</summary>
    public static async Task<int> RunAsync(ICompiledPipeline pipeline, string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var job = pipeline.CreateJob();
        var descriptor = job.Descriptor;

        var parallelism = new Option<int>("--parallelism", "-p")
        {
            Description = "Number of partitions (workers)",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Records per batch",
            DefaultValueFactory = _ => PipelineOptions.DefaultBatchSize,
        };
        var explain = new Option<bool>("--explain") { Description = "Print the compiled plan and exit" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print no summary" };
        var root = new RootCommand($"Runs the compiled pipeline '{descriptor.Name}'.") { parallelism, batchSize, explain, quiet };

        var exitCode = ExitCodes.Success;
        root.SetAction(async (parse, token) =>
        {
            if (parse.GetValue(explain))
            {
                await output.WriteAsync(descriptor.Explain()).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var options = new PipelineOptions
            {
                Parallelism = parse.GetValue(parallelism),
                BatchSize = parse.GetValue(batchSize),
            };
            exitCode = await RunWithSignalsAsync(job, options, parse.GetValue(quiet), error, token).ConfigureAwait(false);
            return exitCode;
        });

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {parseError.Message}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run with --help to see the options.").ConfigureAwait(false);
            return ExitCodes.ConfigurationError;
        }

        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        return await parsed.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<int> RunWithSignalsAsync(IPipelineJob job, PipelineOptions options, bool quiet, TextWriter error, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource();
        var name = job.Descriptor.Name;

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // the run decides when to exit
            if (!stop.IsCancellationRequested)
            {
                error.WriteLine($"{name}: stopping — draining in-flight records (press Ctrl+C again to abort)");
                stop.Cancel();
            }
            else
            {
                error.WriteLine($"{name}: aborting");
                abort.Cancel();
            }
        }

        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        try
        {
            var result = await job.RunAsync(options, stop.Token, abort.Token).ConfigureAwait(false);
            if (!quiet)
            {
                await error.WriteAsync(Summary(result)).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        }
        catch (PipelineConfigurationException ex)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.ConfigurationError;
        }
        catch (Exception) when (abort.IsCancellationRequested)
        {
            await error.WriteLineAsync($"{name}: aborted before draining; uncommitted input will be read again on the next run").ConfigureAwait(false);
            return ExitCodes.Aborted;
        }
        catch (PipelineException ex)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.RuntimeFailure;
        }
    }

    /// <summary>The end-of-run summary: records, time, throughput, and where the output went.</summary>
    public static string Summary(PipelineResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var seconds = Math.Max(result.Elapsed.TotalSeconds, 1e-9);
        var verb = result.Outcome == PipelineOutcome.Completed ? "completed" : "stopped";
        var text = string.Create(
            CultureInfo.InvariantCulture,
            $"{result.PipelineName} {verb} in {FormatDuration(result.Elapsed)}: {result.RecordsRead:N0} records read from {result.Source} ({result.RecordsRead / seconds:N0} records/s, parallelism {result.Parallelism})\n");
        foreach (var sink in result.Sinks)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  {sink.Name} -> {sink.Description}: {sink.Records:N0} records\n");
        }

        if (result.Filtered is { } filtered)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  filtered out: {filtered:N0} records\n");
        }

        if (result.Malformed > 0 || result.OperatorFailures > 0)
        {
            var where = result.DeadLetterDestination is { } destination ? $" -> {destination}: {result.DeadLettered:N0} dead letters" : " (skipped)";
            text += string.Create(CultureInfo.InvariantCulture, $"  failed: {result.Malformed:N0} malformed, {result.OperatorFailures:N0} operator failures{where}\n");
        }

        return text;
    }

    private static string FormatDuration(TimeSpan elapsed) => elapsed.TotalSeconds < 1
        ? string.Create(CultureInfo.InvariantCulture, $"{elapsed.TotalMilliseconds:F0} ms")
        : string.Create(CultureInfo.InvariantCulture, $"{elapsed.TotalSeconds:F2} s");
}
