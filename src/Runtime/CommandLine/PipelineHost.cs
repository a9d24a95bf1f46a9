using System.Collections;
using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime;

/// <summary>Where a host reads and writes, so that tests and embedding apps can redirect it.</summary>
public sealed class PipelineHostContext
{
    /// <summary>Standard output: <c>--explain</c> and <c>--help</c> go here. Default: <see cref="Console.Out"/>.</summary>
    public TextWriter Output { get; init; } = Console.Out;

    /// <summary>Standard error: logs, the status line, errors and the summary go here. Default: <see cref="Console.Error"/>.</summary>
    public TextWriter Error { get; init; } = Console.Error;

    /// <summary>The environment variables read for <c>COMPILED__…</c> settings. Default: the process's.</summary>
    public IDictionary? EnvironmentVariables { get; init; }

    /// <summary>Whether to show the live status line. Default: when standard error is a terminal.</summary>
    public bool? Interactive { get; init; }

    /// <summary>Whether Ctrl+C and SIGTERM stop the run. Default: true.</summary>
    public bool HandleSignals { get; init; } = true;

    /// <summary>
    /// The program's own options, each a shorthand for one setting (<c>--bootstrap host:9092</c> for
    /// <c>--set Orders.BootstrapServers=host:9092</c>); <c>--help</c> lists them. A <c>--set</c> of the same setting wins.
    /// </summary>
    public IReadOnlyList<SettingOption> SettingOptions { get; init; } = [];

    /// <summary>
    /// What the host starts beside the run — an exporter of the <c>Compiled</c> meter, for instance
    /// (<c>OtlpExport</c> in Compiled.OpenTelemetry). Their settings join the run's, named <c>{Name}.{Setting}</c>.
    /// </summary>
    public IReadOnlyList<IHostExtension> Extensions { get; init; } = [];
}

/// <summary>
/// Something the command-line host starts beside a run and stops after it (an exporter of the run's metrics); its
/// <see cref="IConfigurable.Settings"/> are settings of the run, named <c>{Name}.{Setting}</c>.
/// </summary>
public interface IHostExtension : IConfigurable
{
    /// <summary>The prefix of its settings (<c>Otlp</c>).</summary>
    string Name { get; }

    /// <summary>Whether its settings, as applied, ask it to run (an exporter with an endpoint).</summary>
    bool Enabled { get; }

    /// <summary>Starts it for <paramref name="job"/>, once the settings are applied; disposing the result stops it (after a last flush).</summary>
    IAsyncDisposable Start(IPipelineJob job);

    /// <summary>A one-line description for the log, secrets masked.</summary>
    string Describe();
}

/// <summary>A command-line option that sets one setting.</summary>
/// <param name="Name">The option, with its dashes: <c>--bootstrap</c>.</param>
/// <param name="Setting">The setting it sets: <c>Orders.BootstrapServers</c>.</param>
/// <param name="Description">The line <c>--help</c> shows.</param>
/// <param name="HelpName">What the value is called in <c>--help</c>.</param>
public sealed record SettingOption(string Name, string Setting, string Description, string HelpName = "value");

/// <summary>
/// Runs a pipeline as a command-line program: parses options and settings (configuration file, environment,
/// <c>--set</c>), explains the plan, shows live progress on a terminal, serves metrics, handles Ctrl+C and SIGTERM
/// (the first stops the run gracefully within the grace period, a second aborts it), prints a summary, and maps
/// the outcome to an exit code (<see cref="ExitCodes"/>). docs/operations.md describes it for operators.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "Each overload ends in the optional CancellationToken, the .NET convention; no two can be confused.")]
public static class PipelineHost
{
    /// <summary>Runs <paramref name="pipeline"/> with the command line <paramref name="args"/>; returns the exit code.</summary>
    public static Task<int> RunAsync(ICompiledPipeline pipeline, string[] args, CancellationToken cancellationToken = default)
        => RunAsync(pipeline, args, new PipelineHostContext(), cancellationToken);

    /// <summary>As <see cref="RunAsync(ICompiledPipeline, string[], CancellationToken)"/>, writing to the given streams.</summary>
    public static Task<int> RunAsync(ICompiledPipeline pipeline, string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
        => RunAsync(pipeline, args, new PipelineHostContext { Output = output, Error = error }, cancellationToken);

    /// <summary>As <see cref="RunAsync(ICompiledPipeline, string[], CancellationToken)"/>, in <paramref name="context"/>.</summary>
    public static async Task<int> RunAsync(ICompiledPipeline pipeline, string[] args, PipelineHostContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(context);
        using var signals = context.HandleSignals ? new HostSignals() : null;
        var output = context.Output;
        var error = context.Error;
        var job = pipeline.CreateJob();
        var descriptor = job.Descriptor;
        var options = new PipelineOptions();
        var host = new HostSettings();
        PipelineSettings settings;
        try
        {
            settings = new PipelineSettings(job, options, host, context.Extensions);
        }
        catch (PipelineConfigurationException ex)
        {
            await error.WriteLineAsync($"error: {ex.Message}").ConfigureAwait(false);
            return ExitCodes.ConfigurationError;
        }

        // Values are taken as text and parsed by the settings they set, so a bad one is reported as a bad setting
        // ("invalid value 'abc' for setting 'Parallelism' (from --parallelism): expected an integer from 1 to 1024"),
        // not in the command-line parser's words.
        var parallelism = new Option<string?>("--parallelism", "-p") { Description = "Number of partitions (workers) [default: the processor count]", HelpName = "n" };
        var batchSize = new Option<string?>("--batch-size") { Description = $"Records per batch [default: {PipelineOptions.DefaultBatchSize}]", HelpName = "n" };
        var config = new Option<string?>("--config", "-c") { Description = "A JSON configuration file; settings are read from its \"Compiled\" section", HelpName = "appsettings.json" };
        var set = new Option<string[]>("--set", "-s") { Description = "Set a pipeline or connector setting (repeatable); see Settings below", HelpName = "Name=Value" };
        var logLevel = new Option<string?>("--log-level") { Description = "Least severe log level written to standard error [default: Warning]", HelpName = "Trace|Debug|Information|Warning|Error|Critical|None" };
        var metricsPort = new Option<string?>("--metrics-port") { Description = "Serve Prometheus metrics at http://0.0.0.0:port/metrics and the probes /healthz, /readyz (0: any free port)", HelpName = "port" };
        var ui = new Option<string?>("--ui")
        {
            Description = $"Serve the live console at http://127.0.0.1:port/ [default port: {HostSettings.DefaultUiPort}; 0: any free port]",
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "port",
        };
        var errorPolicy = new Option<string?>("--error-policy") { Description = $"What happens to records that fail [default: {descriptor.ErrorPolicy}]", HelpName = "DeadLetter|Skip|FailFast" };
        var deadLetters = new Option<string?>("--dead-letters") { Description = "A JSON Lines file for dead letters", HelpName = "path" };
        var gracePeriod = new Option<string?>("--grace-period") { Description = $"How long a stop may drain before the run is aborted [default: {Setting.FormatDuration(PipelineOptions.DefaultGracePeriod)}]", HelpName = "duration" };
        var stateDirectory = new Option<string?>("--state-dir") { Description = "Where checkpoints of window state are written and restored from (windows behind Kafka) [default: state]", HelpName = "path" };
        var savepoint = new Option<string?>("--savepoint") { Description = "On a stop, also write the final checkpoint of window state to this directory (windows behind Kafka)", HelpName = "path" };
        var fromSavepoint = new Option<string?>("--from-savepoint") { Description = "Restore window state from the checkpoint in this directory instead of the state directory's", HelpName = "path" };
        var explain = new Option<string?>("--explain")
        {
            Description = "Print the compiled plan and exit: text (default) or mermaid",
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "text|mermaid",
        };
        explain.AcceptOnlyFromAmong("text", "mermaid");
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print neither the status line nor the summary" };
        var root = new RootCommand($"Runs the compiled pipeline '{descriptor.Name}' ({descriptor.TypeName}).")
        {
            parallelism, batchSize, config, set, logLevel, metricsPort, ui, errorPolicy, deadLetters, gracePeriod, stateDirectory, savepoint, fromSavepoint, explain, quiet,
        };
        var shorthands = context.SettingOptions.Select(o => (o, Option: new Option<string?>(o.Name) { Description = o.Description, HelpName = o.HelpName })).ToList();
        foreach (var (_, option) in shorthands)
        {
            root.Options.Add(option);
        }

        // Settings in order of precedence, lowest first: configuration file, environment, named options, --set. A bad
        // --set is a problem; a configuration file that cannot be read throws (PipelineConfigurationException).
        List<SettingValue> Gather(ParseResult parse, List<string> problems)
        {
            var values = new List<SettingValue>();
            if (parse.GetValue(config) is { } path)
            {
                values.AddRange(settings.FromJsonFile(path));
            }

            values.AddRange(PipelineSettings.FromEnvironment(context.EnvironmentVariables ?? Environment.GetEnvironmentVariables()));
            AddNamed(values, "Parallelism", "--parallelism", parse.GetValue(parallelism));
            AddNamed(values, "BatchSize", "--batch-size", parse.GetValue(batchSize));
            AddNamed(values, "LogLevel", "--log-level", parse.GetValue(logLevel));
            AddNamed(values, "MetricsPort", "--metrics-port", parse.GetValue(metricsPort));
            if (parse.GetResult(ui) is not null)
            {
                AddNamed(values, "UiPort", "--ui", parse.GetValue(ui) ?? HostSettings.DefaultUiPort.ToString(CultureInfo.InvariantCulture));
            }

            AddNamed(values, "ErrorPolicy", "--error-policy", parse.GetValue(errorPolicy));
            AddNamed(values, "DeadLetterPath", "--dead-letters", parse.GetValue(deadLetters));
            AddNamed(values, "GracePeriod", "--grace-period", parse.GetValue(gracePeriod));
            AddNamed(values, "StateDirectory", "--state-dir", parse.GetValue(stateDirectory));
            AddNamed(values, "SavepointDirectory", "--savepoint", parse.GetValue(savepoint));
            AddNamed(values, "RestoreFrom", "--from-savepoint", parse.GetValue(fromSavepoint));
            foreach (var (shorthand, option) in shorthands)
            {
                AddNamed(values, shorthand.Setting, shorthand.Name, parse.GetValue(option));
            }

            foreach (var assignment in parse.GetValue(set) ?? [])
            {
                if (PipelineSettings.ParseAssignment(assignment) is { } value)
                {
                    values.Add(value);
                }
                else
                {
                    problems.Add($"--set '{assignment}' is not Name=Value");
                }
            }

            return values;
        }

        foreach (var option in root.Options)
        {
            if (option is HelpOption help && help.Action is SynchronousCommandLineAction builtIn)
            {
                // Help shows each setting's value as this command line, its configuration file and environment make it.
                help.Action = new SettingsHelpAction(builtIn, settings, output, parse =>
                {
                    try
                    {
                        settings.Apply(Gather(parse, []));
                    }
                    catch (PipelineConfigurationException)
                    {
                        // An unreadable configuration file: help still shows the values the code gives.
                    }
                });
            }
        }

        var exitCode = ExitCodes.Success;
        root.SetAction(async (parse, token) =>
        {
            var problems = new List<string>();
            List<SettingValue> values;
            try
            {
                values = Gather(parse, problems);
            }
            catch (PipelineConfigurationException ex)
            {
                await error.WriteLineAsync($"error: {SafeText.Escape(ex.Message)}").ConfigureAwait(false);
                return ExitCodes.ConfigurationError;
            }

            problems.AddRange(settings.Apply(values));
            if (problems.Count == 0)
            {
                try
                {
                    options.Validate(descriptor.Name);
                }
                catch (PipelineConfigurationException ex)
                {
                    problems.Add(ex.Message);
                }
            }

            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                {
                    await error.WriteLineAsync($"error: {SafeText.Escape(problem)}").ConfigureAwait(false);
                }

                await error.WriteLineAsync("Run with --help to see the options and settings.").ConfigureAwait(false);
                return ExitCodes.ConfigurationError;
            }

            if (parse.GetResult(explain) is not null)
            {
                var plan = parse.GetValue(explain) == "mermaid" ? PlanExplainer.Mermaid(job, options) : PlanExplainer.Text(job, options);
                await output.WriteAsync(plan).ConfigureAwait(false);
                return ExitCodes.Success;
            }

            var quietRun = parse.GetValue(quiet);
            var live = !quietRun && (context.Interactive ?? IsTerminal(error));
            exitCode = await RunAsync(job, options, host, new StatusWriter(error, live), quietRun, context, settings, values, signals, token).ConfigureAwait(false);
            return exitCode;
        });

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
            {
                await error.WriteLineAsync($"error: {SafeText.Escape(parseError.Message)}").ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run with --help to see the options and settings.").ConfigureAwait(false);
            return ExitCodes.ConfigurationError;
        }

        var configuration = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        return await parsed.InvokeAsync(configuration, cancellationToken).ConfigureAwait(false);
    }

    private static void AddNamed(List<SettingValue> values, string setting, string option, string? value)
    {
        if (value is not null)
        {
            values.Add(new SettingValue(setting, value, option));
        }
    }

    private static bool IsTerminal(TextWriter error)
        => ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    private static async Task<int> RunAsync(IPipelineJob job, PipelineOptions options, HostSettings host, StatusWriter status, bool quiet, PipelineHostContext context, PipelineSettings settings, List<SettingValue> applied, HostSignals? signals, CancellationToken cancellationToken)
    {
        using var loggerFactory = LoggerFactory.Create(builder => builder.SetMinimumLevel(host.LogLevel).AddProvider(new StatusLoggerProvider(status)));
        var logger = loggerFactory.CreateLogger("Compiled.Host");
        if (logger.IsEnabled(LogLevel.Debug))
        {
            // Replayed only for the log: the values were applied already. Display values hide secrets.
            foreach (var value in applied)
            {
                if (settings.Find(value.Key) is { } setting)
                {
                    var display = setting.DisplayValue;
                    Log.SettingApplied(logger, job.Descriptor.Name, setting.Name, display, value.Origin);
                }
            }
        }

        options.LoggerFactory = loggerFactory;
        options.Monitor = new PipelineMonitor();
        PrometheusEndpoint? metrics = null;
        PrometheusEndpoint? console = null;
        var extensions = new List<IAsyncDisposable>();
        try
        {
            foreach (var extension in context.Extensions.Where(e => e.Enabled))
            {
                try
                {
                    extensions.Add(extension.Start(job));
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException or NotSupportedException)
                {
                    status.Line($"error: cannot start {extension.Name} ({extension.Describe()}): {SafeText.Escape(ex.Message)}");
                    return ExitCodes.ConfigurationError;
                }

                status.Line($"{job.Descriptor.Name}: {extension.Describe()}");
            }

            if (host.UiPort is { } uiPort)
            {
                if (!IPAddress.TryParse(host.UiHost, out var uiAddress))
                {
                    status.Line($"error: invalid setting 'UiHost' value '{host.UiHost}': expected an IP address such as 127.0.0.1 or 0.0.0.0");
                    return ExitCodes.ConfigurationError;
                }

                if (uiPort != 0 && host.MetricsPort == uiPort)
                {
                    status.Line($"error: the console and the metrics endpoint cannot both listen on port {uiPort}: the console's listener serves /metrics, /healthz and /readyz too, so drop --metrics-port or give another port");
                    return ExitCodes.ConfigurationError;
                }

                var monitor = options.Monitor;
                console = new PrometheusEndpoint(uiAddress, uiPort) { Readiness = () => monitor.IsReady, Console = new PipelineConsole(job, monitor, settings.All) };
                try
                {
                    console.Start();
                }
                catch (System.Net.Sockets.SocketException ex)
                {
                    status.Line($"error: cannot serve the console on {host.UiHost}:{uiPort}: {ex.Message}");
                    return ExitCodes.ConfigurationError;
                }

                status.Line($"{job.Descriptor.Name}: console at http://{console.EndPoint}/");
            }

            if (host.MetricsPort is { } port)
            {
                if (!IPAddress.TryParse(host.MetricsHost, out var address))
                {
                    status.Line($"error: invalid setting 'MetricsHost' value '{host.MetricsHost}': expected an IP address such as 0.0.0.0 or 127.0.0.1");
                    return ExitCodes.ConfigurationError;
                }

                var monitor = options.Monitor;
                metrics = new PrometheusEndpoint(address, port) { Readiness = () => monitor.IsReady };
                try
                {
                    metrics.Start();
                }
                catch (System.Net.Sockets.SocketException ex)
                {
                    status.Line($"error: cannot serve metrics on {host.MetricsHost}:{port}: {ex.Message}");
                    return ExitCodes.ConfigurationError;
                }

                status.Line($"{job.Descriptor.Name}: metrics at http://{metrics.EndPoint}/metrics (probes: /healthz, /readyz)");
            }

            return await RunWithSignalsAsync(job, options, status, quiet, signals, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (metrics is not null)
            {
                await metrics.DisposeAsync().ConfigureAwait(false);
            }

            if (console is not null)
            {
                await console.DisposeAsync().ConfigureAwait(false);
            }

            // Last: an exporter's final flush carries the run's last measurements.
            foreach (var extension in extensions)
            {
                await extension.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> RunWithSignalsAsync(IPipelineJob job, PipelineOptions options, StatusWriter status, bool quiet, HostSignals? signals, CancellationToken cancellationToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var abort = new CancellationTokenSource();
        var name = job.Descriptor.Name;

        void OnSignal(PosixSignalContext signal)
        {
            signal.Cancel = true; // the run decides when to exit
            if (!stop.IsCancellationRequested)
            {
                status.Line($"{name}: stopping — draining in-flight records within {Setting.FormatDuration(options.GracePeriod)} (press Ctrl+C again to abort)");
                stop.Cancel();
            }
            else if (signal.Signal == PosixSignal.SIGINT)
            {
                status.Line($"{name}: aborting");
                abort.Cancel();
            }
            else
            {
                // A second SIGTERM is not a person insisting: `timeout`, process supervisors and shells signal the child
                // and then its whole process group, so one stop arrives twice. The grace period bounds the stop anyway.
                status.Line($"{name}: already stopping (SIGTERM again is ignored; Ctrl+C aborts, and the grace period ends the stop)");
            }
        }

        using var attached = signals?.Attach(OnSignal);
        var progress = status.Live ? new ProgressReporter(options.Monitor!, status) : null;
        try
        {
            PipelineResult result;
            try
            {
                result = await WithinStopDeadlineAsync(job.RunAsync(options, stop.Token, abort.Token), options, name, stop.Token, abort.Token).ConfigureAwait(false);
            }
            finally
            {
                if (progress is not null)
                {
                    await progress.DisposeAsync().ConfigureAwait(false);
                }
            }

            if (!quiet)
            {
                status.Line(Summary(result).TrimEnd('\n'));
            }

            if (abort.IsCancellationRequested)
            {
                // "aborting" was printed, but the run had drained by then: it ends as the stop it was.
                status.Line($"{name}: the abort came after the run had drained; it ended as a graceful stop");
            }

            if (result.StoppedBeforeEnd)
            {
                // A supervisor or script must not take a stop part-way through a bounded input for a finished job.
                status.Line($"{name}: stopped before the end of its input; what was written covers the records read, and a rerun reads the input from the start (exit code {ExitCodes.StoppedBeforeEnd}; see docs/delivery.md)");
                return ExitCodes.StoppedBeforeEnd;
            }

            return ExitCodes.Success;
        }
        catch (PipelineConfigurationException ex)
        {
            status.Line($"error: {SafeText.Escape(ex.Message)}");
            return ExitCodes.ConfigurationError;
        }
        catch (PipelineAbortedException ex)
        {
            status.Line($"{name}: {SafeText.Escape(ex.Message)}");
            return ExitCodes.Aborted;
        }
        catch (PipelineException ex)
        {
            // Printed here, once: the run's own error log line (event 6) is left out of the host's log (StatusLoggerProvider).
            status.Line($"error: {SafeText.Escape(ex.Message)}");
            return NonRetryableException.IsCause(ex) ? ExitCodes.ConfigurationError : ExitCodes.RuntimeFailure;
        }
    }

    /// <summary>
    /// The run's result — unless, after a stop, it has neither drained nor finished aborting by twice the grace period
    /// (the grace period to drain, as long again to abort), or a grace period after an abort (Ctrl+C twice): then a
    /// <see cref="PipelineAbortedException"/>, and the process exits while the run is still unwinding. A connector
    /// blocked in a call that ignores cancellation — a client library waiting for brokers or a server that are gone —
    /// must not keep the process alive (an outside test: a copy whose Kafka cluster had been stopped ignored SIGTERM).
    /// What the run had not committed is read again by the next run, as after a kill.
    /// </summary>
    private static async Task<PipelineResult> WithinStopDeadlineAsync(Task<PipelineResult> run, PipelineOptions options, string name, CancellationToken stop, CancellationToken abort)
    {
        var overdue = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously); // true: after an abort
        var grace = options.GracePeriod;
        var twice = grace > TimeSpan.FromDays(10) ? Timeout.InfiniteTimeSpan : grace * 2; // a timer's due time stops at ~49 days
        using var afterStop = options.TimeProvider.CreateTimer(_ => overdue.TrySetResult(false), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        using var afterAbort = options.TimeProvider.CreateTimer(_ => overdue.TrySetResult(true), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        using var onStop = stop.Register(() => afterStop.Change(twice, Timeout.InfiniteTimeSpan));
        using var onAbort = abort.Register(() => afterAbort.Change(grace, Timeout.InfiniteTimeSpan));
        if (await Task.WhenAny(run, overdue.Task).ConfigureAwait(false) == run)
        {
            return await run.ConfigureAwait(false);
        }

        _ = run.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default); // observed, however it ends
        var period = Setting.FormatDuration(grace);
        var since = await overdue.Task.ConfigureAwait(false) ? "the abort" : $"the grace period ({period}) ran out";
        throw new PipelineAbortedException(name, $"the run was still aborting {period} after {since}: a connector is blocked in a call that does not stop (a client waiting for a server or brokers that are gone). Exiting anyway; uncommitted input will be read again on the next run.");
    }

    /// <summary>
    /// Ctrl+C and SIGTERM from the moment the host starts, not only once the run does. The first one that comes while
    /// the command line is read and the host sets up (an outside kill loop found that window: ~150 ms in which a
    /// SIGTERM ended the process with the runtime's exit code 143) is kept and handed to the run, which then stops as
    /// it would have a moment later; a second one before the run exists ends the process as before — nothing has been
    /// read yet. After the run, signals are swallowed while the host finishes (the summary, the exporters' last flush).
    /// </summary>
    private sealed class HostSignals : IDisposable
    {
        private readonly Lock _lock = new();
        private readonly PosixSignalRegistration _sigint;
        private readonly PosixSignalRegistration _sigterm;
        private Action<PosixSignalContext>? _handler;
        private PosixSignal? _early;
        private bool _attached;

        public HostSignals()
        {
            _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        }

        private void OnSignal(PosixSignalContext signal)
        {
            Action<PosixSignalContext>? handler;
            lock (_lock)
            {
                handler = _handler;
                if (handler is null)
                {
                    // Before the run: keep the first; a second one ends the process. After it: let the host finish.
                    signal.Cancel = _attached || _early is null;
                    _early ??= signal.Signal;
                    return;
                }
            }

            handler(signal);
        }

        /// <summary>Hands signals to the run's <paramref name="handler"/> (and the one that came before, if any) until the result is disposed.</summary>
        public IDisposable Attach(Action<PosixSignalContext> handler)
        {
            PosixSignal? early;
            lock (_lock)
            {
                _handler = handler;
                _attached = true;
                early = _early;
            }

            if (early is { } signal)
            {
                handler(new PosixSignalContext(signal));
            }

            return new Detach(this);
        }

        public void Dispose()
        {
            _sigint.Dispose();
            _sigterm.Dispose();
        }

        private sealed class Detach(HostSignals signals) : IDisposable
        {
            public void Dispose()
            {
                lock (signals._lock)
                {
                    signals._handler = null;
                }
            }
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

        text += result.Delivery == DeliveryGuarantee.ExactlyOnce
            ? "  delivery: exactly-once (records and source positions committed together)\n"
            : "  delivery: at-least-once (a rerun reads again what was not committed; see docs/delivery.md)\n";

        if (result.State is { } state)
        {
            var restored = state.Restored is { } id ? string.Create(CultureInfo.InvariantCulture, $"restored checkpoint {id}") : "started empty";
            var kept = state.KeptOpen ? "; stopped with a final checkpoint: open windows go on in the next run" : "";
            text += string.Create(CultureInfo.InvariantCulture, $"  state: {restored}, {state.Written:N0} checkpoints written to {state.Location}{kept}\n");
        }

        if (result.Filtered is { } filtered)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  filtered out: {filtered:N0} records\n");
        }

        foreach (var window in result.Windows.Where(w => w.LateRecords > 0))
        {
            var late = window.IsJoin ? $"to meet anything in join {window.Window}" : $"for every window of {window.Window}";
            text += window.LateSink is null
                ? string.Create(CultureInfo.InvariantCulture, $"  late: {window.LateRecords:N0} records too late {late}, dropped (declare a [LateData] sink to keep them)\n")
                : string.Create(CultureInfo.InvariantCulture, $"  late: {window.LateRecords:N0} records too late {late} -> {window.LateSink}\n");
        }

        foreach (var lookup in result.Lookups)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  lookup {lookup.Lookup}: {lookup.CacheHits:N0} records from the cache, {lookup.KeysFetched:N0} keys fetched in {lookup.Fetches:N0} {(lookup.Fetches == 1 ? "query" : "queries")} ({lookup.RowsFetched:N0} rows), {lookup.Unmatched:N0} records without a row\n");
        }

        foreach (var transform in result.AsyncTransforms)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  async {transform.Transform}: {transform.Calls:N0} calls ({transform.Retries:N0} retries, {transform.TimedOut:N0} timed out), {transform.Failed:N0} records failed every attempt, at most {transform.PeakInFlight:N0} in flight\n");
        }

        foreach (var window in result.Windows.Where(w => w.ExpiredKeys > 0))
        {
            text += string.Create(CultureInfo.InvariantCulture, $"  expired: {window.ExpiredKeys:N0} keys of {window.Window} outlived its state time-to-live and were dropped\n");
        }

        if (result.Malformed > 0 || result.OperatorFailures > 0)
        {
            var where = result.DeadLetterDestination is { } destination ? $" -> {destination}: {result.DeadLettered:N0} dead letters" : " (skipped)";
            var lines = result.MalformedLines > result.Malformed ? string.Create(CultureInfo.InvariantCulture, $" (covering {result.MalformedLines:N0} input lines)") : "";
            text += string.Create(CultureInfo.InvariantCulture, $"  failed: {result.Malformed:N0} malformed{lines}, {result.OperatorFailures:N0} operator failures{where}\n");
        }

        return text;
    }

    private static string FormatDuration(TimeSpan elapsed) => elapsed.TotalSeconds < 1
        ? string.Create(CultureInfo.InvariantCulture, $"{elapsed.TotalMilliseconds:F0} ms")
        : string.Create(CultureInfo.InvariantCulture, $"{elapsed.TotalSeconds:F2} s");

    /// <summary>The built-in help, followed by the pipeline's settings with their current values.</summary>
    private sealed class SettingsHelpAction(SynchronousCommandLineAction builtIn, PipelineSettings settings, TextWriter output, Action<ParseResult> apply) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var code = builtIn.Invoke(parseResult);
            apply(parseResult);
            output.WriteLine("Settings (--set Name=Value, a --config file's \"Compiled\" section, or COMPILED__Name__Part environment variables):");
            var width = settings.All.Max(s => s.Name.Length) + 2;
            foreach (var setting in settings.All)
            {
                output.WriteLine($"  {setting.Name.PadRight(width)}{setting.Description} — {setting.ValueHint} [now: {Shown(setting)}]");
            }

            output.WriteLine();
            output.WriteLine("Exit codes: 0 completed or stopped cleanly, 1 runtime failure, 2 configuration error, 3 aborted, 4 stopped before the end of a bounded input (files, a collection).");
            return code;
        }

        private static string Shown(Setting setting) => setting.DisplayValue is { Length: > 0 } value ? value : "unset";
    }
}
