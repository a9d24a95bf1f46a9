using Compiled.Runtime;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Compiled.Extensions.Hosting;

/// <summary>How a hosted pipeline runs.</summary>
public sealed class CompiledPipelineServiceOptions
{
    /// <summary>Changes the run's options after configuration is applied (parallelism, error policy, sinks …).</summary>
    public Action<PipelineOptions>? Configure { get; set; }

    /// <summary>Stop the whole application when the pipeline fails. Default: true — a service whose pipeline died should not look healthy.</summary>
    public bool StopHostOnFailure { get; set; } = true;

    /// <summary>Stop the whole application when a bounded pipeline completes. Default: false.</summary>
    public bool StopHostOnCompletion { get; set; }
}

/// <summary>
/// Runs a compiled pipeline for as long as the host runs: it starts with the host, and when the host stops it stops
/// the pipeline's sources, drains in-flight records and flushes the sinks; if the host's shutdown timeout runs out
/// first, the run is aborted. Settings come from the configuration section <c>Compiled:{PipelineName}</c>
/// (<c>Compiled:orders:Kafka:Topic</c>), named as on the command line.
/// </summary>
/// <typeparam name="TPipeline">The pipeline class.</typeparam>
public sealed partial class CompiledPipelineService<TPipeline> : IHostedService, IDisposable
    where TPipeline : class, ICompiledPipeline
{
    private readonly TPipeline _pipeline;
    private readonly CompiledPipelineServiceOptions _options;
    private readonly IConfiguration? _configuration;
    private readonly ILoggerFactory? _loggerFactory;
    private readonly IHostApplicationLifetime? _lifetime;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource<PipelineResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _run;

    /// <summary>Creates the service (the DI container does, through <c>AddCompiledPipeline</c>).</summary>
    public CompiledPipelineService(TPipeline pipeline, CompiledPipelineServiceOptions options, IConfiguration? configuration = null, ILoggerFactory? loggerFactory = null, IHostApplicationLifetime? lifetime = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentNullException.ThrowIfNull(options);
        _pipeline = pipeline;
        _options = options;
        _configuration = configuration;
        _loggerFactory = loggerFactory;
        _lifetime = lifetime;
        _logger = (ILogger?)loggerFactory?.CreateLogger("Compiled.Extensions.Hosting") ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    /// <summary>The run's result when it ends: completed, stopped, or failed (faulted with the pipeline's exception).</summary>
    public Task<PipelineResult> Completion => _completion.Task;

    /// <summary>The run's live state (records, sinks, failures), while it runs.</summary>
    public PipelineMonitor Monitor { get; } = new();

    /// <summary>Applies configuration and starts the run. Invalid settings fail the host's start, naming the setting.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var job = _pipeline.CreateJob();
        var name = job.Descriptor.Name;
        var options = new PipelineOptions { LoggerFactory = _loggerFactory, Monitor = Monitor };
        if (_configuration is not null)
        {
            var settings = new PipelineSettings(job, options);
            var section = _configuration.GetSection($"{PipelineSettings.ConfigurationSection}:{name}");
            var errors = settings.Apply(PipelineSettings.FromSection(section, $"configuration section '{section.Path}'"));
            if (errors.Count > 0)
            {
                throw new PipelineConfigurationException(name, $"Pipeline '{name}': " + string.Join("; ", errors));
            }
        }

        _options.Configure?.Invoke(options);
        options.Validate(name);
        _run = Task.Run(() => RunAsync(job, options), CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops the run gracefully: sources stop, in-flight records drain, sinks flush. If <paramref name="cancellationToken"/>
    /// (the host's shutdown timeout) fires first, the run is aborted.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_run is null)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        using var abort = cancellationToken.Register(() => _abort.Cancel());
        await _run.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stop.Dispose();
        _abort.Dispose();
    }

    private async Task RunAsync(IPipelineJob job, PipelineOptions options)
    {
        var name = job.Descriptor.Name;
        try
        {
            var result = await job.RunAsync(options, _stop.Token, _abort.Token).ConfigureAwait(false);
            _completion.TrySetResult(result);
            if (_options.StopHostOnCompletion && !_stop.IsCancellationRequested)
            {
                _lifetime?.StopApplication();
            }
        }
        catch (Exception ex)
        {
            LogFailed(_logger, name, ex.Message, ex);
            _completion.TrySetException(ex);
            if (_options.StopHostOnFailure && !_stop.IsCancellationRequested)
            {
                _lifetime?.StopApplication();
            }
        }
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "Hosted pipeline {Pipeline} ended with an error: {Message}")]
    private static partial void LogFailed(ILogger logger, string pipeline, string message, Exception exception);
}
