using Compiled;
using Compiled.Connectors;
using Compiled.Runtime;

namespace LogEtl;

/// <summary>One line of the access log (JSON Lines, snake_case).</summary>
[Record(Naming = FieldNaming.SnakeCase)]
public readonly partial record struct AccessLog(
    DateTimeOffset Time,
    string Method,
    string Path,
    int Status,
    double DurationMs,
    string Client,
    Utf8Text UserAgent);

/// <summary>A server error, enriched: what the CSV files hold.</summary>
[Record(Naming = FieldNaming.SnakeCase)]
public readonly partial record struct ServerError(
    DateTimeOffset Time,
    string Service,
    string Method,
    string Path,
    int Status,
    double DurationMs,
    string Severity,
    bool FromBot);

/// <summary>Where the sample reads and writes.</summary>
public static class Paths
{
    /// <summary>The access log shipped with the sample (copied beside the binary).</summary>
    public static string Input { get; } = Path.Combine(AppContext.BaseDirectory, "data", "access.jsonl");

    /// <summary>The output, in the working directory.</summary>
    public const string Output = "out/server-errors";

    /// <summary>The dead letters, beside the output.</summary>
    public const string DeadLetters = "out/deadletters.jsonl";
}

/// <summary>
/// The log ETL: JSON Lines access log → keep server errors (5xx) → enrich (service, severity, bot traffic) → CSV
/// files. Malformed log lines go to the dead-letter file with their line number and raw bytes.
/// </summary>
[Pipeline(Name = "log-etl")]
public sealed partial class LogPipeline
{
    [Source] FileSource<AccessLog, AccessLog.JsonCodec> Log { get; } = new(Paths.Input);

    [Transform] static bool IsServerError(AccessLog entry) => entry.Status >= 500;

    [Transform]
    static ServerError Enrich(AccessLog entry) => new(
        entry.Time,
        ServiceOf(entry.Path),
        entry.Method,
        entry.Path,
        entry.Status,
        entry.DurationMs,
        entry.Status == 503 || entry.DurationMs > 1000 ? "page" : "ticket",
        entry.UserAgent.Span.IndexOf("bot"u8) >= 0); // a UTF-8 slice of the input line: no string allocated

    [Sink] FileSink<ServerError, ServerError.CsvCodec> Errors { get; } = new(Paths.Output, new FileSinkOptions { Prefix = "server-errors" });

    [DeadLetters] DeadLetterFile Rejected { get; } = new(Paths.DeadLetters);

    /// <summary>The first path segment after /api, or the first segment.</summary>
    private static string ServiceOf(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return parts switch
        {
            ["api", var service, ..] => service,
            [var first, ..] => first,
            _ => "root",
        };
    }
}
