using System.Collections;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace Compiled.Runtime;

/// <summary>One value for a setting, and where it came from (for error messages).</summary>
/// <param name="Key">The setting's name as given: <c>Log.Path</c>, <c>log:path</c>, <c>LOG__PATH</c>.</param>
/// <param name="Value">The value as text.</param>
/// <param name="Origin">Where it came from: <c>--set</c>, <c>appsettings.json</c>, <c>COMPILED__LOG__PATH</c>.</param>
public readonly record struct SettingValue(string Key, string Value, string Origin);

/// <summary>What the command-line host itself can be told, beside the pipeline.</summary>
public sealed class HostSettings
{
    /// <summary>The address the metrics endpoint listens on by default: every interface, so a scraper in another container reaches it (metrics hold no secrets).</summary>
    public const string DefaultMetricsHost = "0.0.0.0";

    /// <summary>The least severe log level written to standard error. Default: <see cref="LogLevel.Warning"/>, so a healthy run prints only its progress and summary.</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Warning;

    /// <summary>The TCP port serving <c>/metrics</c> in the Prometheus text format; null: no endpoint.</summary>
    public int? MetricsPort { get; set; }

    /// <summary>The address the metrics endpoint listens on. Default: <see cref="DefaultMetricsHost"/>.</summary>
    public string MetricsHost { get; set; } = DefaultMetricsHost;

    /// <summary>The port <c>--ui</c> serves the console on when given without one: Flink's web UI port, familiar to its users.</summary>
    public const int DefaultUiPort = 8081;

    /// <summary>The address the console listens on by default: this machine only (it shows the run's settings and failures).</summary>
    public const string DefaultUiHost = "127.0.0.1";

    /// <summary>The TCP port serving the live console (and metrics and probes on the same listener); null: no console.</summary>
    public int? UiPort { get; set; }

    /// <summary>The address the console listens on. Default: <see cref="DefaultUiHost"/>.</summary>
    public string UiHost { get; set; } = DefaultUiHost;
}

/// <summary>
/// Every setting of a pipeline run, by name: the run's own (<c>Parallelism</c>, <c>BatchSize</c>, <c>ErrorPolicy</c>,
/// <c>GracePeriod</c> …), the host's (<c>LogLevel</c>, <c>MetricsPort</c>) and each connector's, named
/// <c>{Member}.{Setting}</c> (<c>Log.Path</c>, <c>Table.ConnectionString</c>). Values come from a configuration file's
/// <c>Compiled</c> section, <c>COMPILED__…</c> environment variables and <c>--set</c>, applied in that order (the
/// last wins). Names match case-insensitively, with <c>.</c>, <c>:</c> or <c>__</c> between the parts. Nothing here
/// uses reflection: each setting parses its own text, so binding works under Native AOT.
/// </summary>
public sealed class PipelineSettings
{
    /// <summary>The prefix of environment variables read as settings: <c>COMPILED__Log__Path=…</c>.</summary>
    public const string EnvironmentPrefix = "COMPILED__";

    /// <summary>The configuration section read as settings: <c>{ "Compiled": { "Log": { "Path": "…" } } }</c>.</summary>
    public const string ConfigurationSection = "Compiled";

    private readonly Dictionary<string, Setting> _byName = new(StringComparer.OrdinalIgnoreCase);
    private readonly List<Setting> _all = [];
    private readonly string _pipeline;

    /// <summary>Collects the settings of <paramref name="job"/> run with <paramref name="options"/>, and of <paramref name="host"/> when given.</summary>
    public PipelineSettings(IPipelineJob job, PipelineOptions options, HostSettings? host = null, IEnumerable<IHostExtension>? extensions = null)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        var descriptor = job.Descriptor;
        _pipeline = descriptor.Name;
        Add(Setting.Number(nameof(PipelineOptions.Parallelism), "Number of partitions (workers)", () => options.Parallelism, v => options.Parallelism = (int)v, 1, PipelineOptions.MaxParallelism));
        Add(Setting.Number(nameof(PipelineOptions.BatchSize), "Records per batch", () => options.BatchSize, v => options.BatchSize = (int)v, 1, PipelineOptions.MaxBatchSize));
        Add(Setting.Number(nameof(PipelineOptions.SinkQueueCapacity), "Batches queued in front of each decoupled sink writer, per partition", () => options.SinkQueueCapacity, v => options.SinkQueueCapacity = (int)v, 1, 1 << 16));
        Add(Setting.Choice(nameof(PipelineOptions.ErrorPolicy), "What happens to records that fail to decode or make an operator throw", () => options.ErrorPolicy ?? descriptor.ErrorPolicy, v => options.ErrorPolicy = v));
        Add(Setting.Text(nameof(PipelineOptions.DeadLetterPath), "A JSON Lines file for dead letters (default: the pipeline's [DeadLetters] member, else {pipeline}.deadletters.jsonl)", () => options.DeadLetterPath ?? "", v => options.DeadLetterPath = v));
        Add(Setting.Duration(nameof(PipelineOptions.CheckpointInterval), "How often sources that commit positions (Kafka) take a checkpoint: sinks flush, positions are committed", () => options.CheckpointInterval, v => options.CheckpointInterval = v!.Value));
        Add(Setting.Text(nameof(PipelineOptions.StateDirectory), "Where checkpoints of window state are written and restored from, one folder per pipeline (windows behind Kafka)", () => options.StateDirectory, v => options.StateDirectory = v));
        Add(Setting.Text(nameof(PipelineOptions.SavepointDirectory), "On a stop, also write the final checkpoint of window state here (a savepoint; windows behind Kafka)", () => options.SavepointDirectory ?? "", v => options.SavepointDirectory = v.Length == 0 ? null : v, allowEmpty: true));
        Add(Setting.Text(nameof(PipelineOptions.RestoreFrom), "Restore window state from the newest checkpoint in this directory (a savepoint) instead of the state directory's", () => options.RestoreFrom ?? "", v => options.RestoreFrom = v.Length == 0 ? null : v, allowEmpty: true));
        Add(Setting.Choice(nameof(PipelineOptions.StateBackend), "Where keyed state lives: Memory, or Disk (RocksDB; the application adds the RocksDB package) for state larger than memory", () => options.StateBackend, v => options.StateBackend = v));
        Add(Setting.Number(nameof(PipelineOptions.StateCacheKeys), "With StateBackend=Disk: the most keys each keyed partition holds in memory", () => options.StateCacheKeys, v => options.StateCacheKeys = (int)v, 1, int.MaxValue));
        Add(Setting.Number(nameof(PipelineOptions.RetainedCheckpoints), "How many complete checkpoints of window state are kept (windows behind Kafka)", () => options.RetainedCheckpoints, v => options.RetainedCheckpoints = (int)v, 1, 1000));

        Add(Setting.Duration(nameof(PipelineOptions.GracePeriod), "How long a stop (Ctrl+C, SIGTERM) may drain, flush and commit before the run is aborted", () => options.GracePeriod, v => options.GracePeriod = v!.Value));
        if (host is not null)
        {
            Add(Setting.Choice(nameof(HostSettings.LogLevel), "The least severe log level written to standard error", () => host.LogLevel, v => host.LogLevel = v));
            Add(Setting.OptionalNumber(nameof(HostSettings.MetricsPort), "Serve Prometheus metrics at http://host:port/metrics, and the probes /healthz and /readyz", () => host.MetricsPort, v => host.MetricsPort = (int?)v, 0));
            Add(Setting.Text(nameof(HostSettings.MetricsHost), "The address the metrics endpoint listens on", () => host.MetricsHost, v => host.MetricsHost = v));
            Add(Setting.OptionalNumber(nameof(HostSettings.UiPort), "Serve the live console at http://UiHost:port/ (with /metrics, /healthz and /readyz on the same listener)", () => host.UiPort, v => host.UiPort = (int?)v, 0));
            Add(Setting.Text(nameof(HostSettings.UiHost), "The address the console listens on (default: this machine only)", () => host.UiHost, v => host.UiHost = v));
        }

        foreach (var extension in extensions ?? [])
        {
            foreach (var setting in extension.Settings)
            {
                Add(setting.WithPrefix(extension.Name));
            }
        }

        foreach (var connector in job.Connectors)
        {
            foreach (var setting in connector.Settings)
            {
                Add(setting);
            }
        }
    }

    /// <summary>Every setting, the run's first, then the host's, then each connector's in chain order.</summary>
    public IReadOnlyList<Setting> All => _all;

    /// <summary>The setting named <paramref name="key"/> (any case; <c>.</c>, <c>:</c> or <c>__</c> between parts), or null.</summary>
    public Setting? Find(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _byName.GetValueOrDefault(Normalize(key));
    }

    /// <summary>
    /// Applies <paramref name="values"/> in order and returns what was wrong, one message per bad value, each naming
    /// the setting, where the value came from, and what is valid. Secret values are never echoed.
    /// </summary>
    public IReadOnlyList<string> Apply(IEnumerable<SettingValue> values, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var errors = new List<string>();
        foreach (var value in values)
        {
            var setting = Find(value.Key);
            if (setting is null)
            {
                errors.Add(Unknown(value));
                continue;
            }

            if (setting.TrySet(value.Value) is { } problem)
            {
                var shown = setting.IsSecret ? Secrets.Mask : $"'{SafeText.Escape(value.Value, SafeText.MaxQuotedChars)}'";
                errors.Add($"invalid value {shown} for setting '{setting.Name}' (from {value.Origin}): {problem}");
                continue;
            }

            if (logger is not null)
            {
                var display = setting.DisplayValue;
                Log.SettingApplied(logger, _pipeline, setting.Name, display, value.Origin);
            }
        }

        return errors;
    }

    /// <summary>Parses one <c>--set</c> argument, <c>Name=Value</c>; null if it has no <c>=</c> or no name.</summary>
    public static SettingValue? ParseAssignment(string text, string origin = "--set")
    {
        ArgumentNullException.ThrowIfNull(text);
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0)
        {
            return null;
        }

        return new SettingValue(text[..equals].Trim(), text[(equals + 1)..], origin);
    }

    /// <summary>The settings among environment variables: each <c>COMPILED__A__B=v</c> is setting <c>A.B</c>.</summary>
    public static IEnumerable<SettingValue> FromEnvironment(IDictionary variables)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var found = new List<SettingValue>();
        foreach (DictionaryEntry entry in variables)
        {
            if (entry.Key is string name && entry.Value is string value && name.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase) && name.Length > EnvironmentPrefix.Length)
            {
                found.Add(new SettingValue(name[EnvironmentPrefix.Length..], value, name));
            }
        }

        // Environment order is arbitrary; sort so that a run is reproducible.
        found.Sort((a, b) => string.CompareOrdinal(a.Origin, b.Origin));
        return found;
    }

    /// <summary>The settings in the <c>Compiled</c> section of <paramref name="configuration"/>.</summary>
    public static IEnumerable<SettingValue> FromConfiguration(IConfiguration configuration, string origin)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return FromSection(configuration.GetSection(ConfigurationSection), origin);
    }

    /// <summary>The settings in <paramref name="section"/>: each key below it (<c>Log:Path</c>) names a setting.</summary>
    public static IEnumerable<SettingValue> FromSection(IConfigurationSection section, string origin)
    {
        ArgumentNullException.ThrowIfNull(section);
        return section
            .AsEnumerable(makePathsRelative: true)
            .Where(pair => pair.Value is not null)
            .OrderBy(pair => pair.Key, StringComparer.Ordinal)
            .Select(pair => new SettingValue(pair.Key, pair.Value!, origin))
            .ToList();
    }

    /// <summary>Reads the <c>Compiled</c> section of a JSON file; throws <see cref="PipelineConfigurationException"/> if it is missing or not JSON.</summary>
    public IEnumerable<SettingValue> FromJsonFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new PipelineConfigurationException(_pipeline, $"configuration file '{path}' does not exist");
        }

        try
        {
            var configuration = new ConfigurationBuilder().AddJsonFile(full, optional: false, reloadOnChange: false).Build();
            var values = FromConfiguration(configuration, Path.GetFileName(path)).ToList();
            if (values.Count == 0 && configuration.AsEnumerable().Any(pair => pair.Value is not null))
            {
                throw new PipelineConfigurationException(_pipeline, $"configuration file '{path}' has no '{ConfigurationSection}' section; put the settings under {{ \"{ConfigurationSection}\": {{ … }} }}");
            }

            return values;
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or IOException)
        {
            // The JSON reader's own message, innermost, says where: "… LineNumber: 1 | BytePositionInLine: 2."
            var innermost = ex;
            while (innermost.InnerException is { } inner)
            {
                innermost = inner;
            }

            var where = innermost != ex ? $" ({innermost.Message})" : "";
            throw new PipelineConfigurationException(_pipeline, $"configuration file '{path}' could not be read: {ex.Message}{where}", ex);
        }
    }

    private void Add(Setting setting)
    {
        _byName[Normalize(setting.Name)] = setting;
        _all.Add(setting);
    }

    private string Unknown(SettingValue value)
    {
        var key = Normalize(value.Key);
        var closest = _all.Select(s => (s.Name, Distance: Distance(Normalize(s.Name).ToUpperInvariant(), key.ToUpperInvariant())))
            .OrderBy(c => c.Distance)
            .FirstOrDefault();
        var hint = closest.Name is not null && closest.Distance <= Math.Max(2, key.Length / 3) ? $" Did you mean '{closest.Name}'?" : "";
        return $"unknown setting '{value.Key}' (from {value.Origin}).{hint} Settings of pipeline '{_pipeline}': {string.Join(", ", _all.Select(s => s.Name))}";
    }

    private static string Normalize(string key) => key.Trim().Replace("__", ".", StringComparison.Ordinal).Replace(':', '.');

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(Environment.NewLine, _all.Select(s => s.ToString()));

    internal static string Describe(Setting setting) => string.Create(CultureInfo.InvariantCulture, $"{setting.Name}={setting.DisplayValue}");
}
