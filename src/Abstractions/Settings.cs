using System.Globalization;

namespace Compiled;

/// <summary>
/// Something in a pipeline — a connector, usually — whose settings can be changed without recompiling: from a
/// configuration file, environment variables or <c>--set Name=Value</c>. Settings are named after the pipeline
/// member (<c>Log.Path</c>, <c>Table.ConnectionString</c>) and applied before the run opens anything.
/// </summary>
public interface IConfigurable
{
    /// <summary>The settings, each with a getter and a parser-setter; no reflection, so they work under Native AOT.</summary>
    IEnumerable<Setting> Settings { get; }
}

/// <summary>Reports how far a bounded source has got, for progress and ETA.</summary>
public interface ISourceProgress
{
    /// <summary>Work done and, when known, the total, in <see cref="SourceProgress.Unit"/>s.</summary>
    SourceProgress Progress { get; }
}

/// <summary>How far a source has got.</summary>
/// <param name="Done">Units done.</param>
/// <param name="Total">Units in all, when known.</param>
/// <param name="Unit">What is counted: <c>records</c>, <c>bytes</c>.</param>
public readonly record struct SourceProgress(long Done, long? Total, string Unit);

/// <summary>One setting: its name, what it means, its current value as text, and how to set it from text.</summary>
public sealed class Setting
{
    private readonly Func<string> _get;
    private readonly Func<string, string?> _set;
    private readonly Func<string, string>? _redact;

    private Setting(string name, string description, string valueHint, bool isSecret, Func<string> get, Func<string, string?> set, Func<string, string>? redact = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Description = description;
        ValueHint = valueHint;
        IsSecret = isSecret || redact is not null;
        _get = get;
        _set = set;
        _redact = redact;
    }

    /// <summary>The setting's name within its component (<c>Path</c>); pipelines prefix it with the member name.</summary>
    public string Name { get; }

    /// <summary>What the setting does.</summary>
    public string Description { get; }

    /// <summary>What values are valid, for messages and help: <c>an integer ≥ 1024</c>, <c>true or false</c>.</summary>
    public string ValueHint { get; }

    /// <summary>
    /// Whether the value is or holds a secret: it is never shown in plans, logs, metrics or errors — only
    /// <see cref="DisplayValue"/>, which is <c>***</c> or, for connection strings, the string with its secrets masked.
    /// </summary>
    public bool IsSecret { get; }

    /// <summary>The current value as text.</summary>
    public string Value => _get();

    /// <summary>The value as it may be shown: <c>***</c> for secrets, connection strings with their secrets masked.</summary>
    public string DisplayValue => _redact is not null ? _redact(_get()) : IsSecret ? "***" : _get();

    /// <summary>Sets the value from text; returns null, or why the text is not valid.</summary>
    public string? TrySet(string text) => _set(text ?? throw new ArgumentNullException(nameof(text)));

    /// <summary>A copy named <paramref name="prefix"/>.<see cref="Name"/>.</summary>
    public Setting WithPrefix(string prefix) => new($"{prefix}.{Name}", Description, ValueHint, IsSecret, _get, _set, _redact);

    /// <summary>
    /// A connection string (<c>Host=…;Password=…</c>): shown with its passwords, tokens and secrets masked
    /// (<see cref="Secrets.RedactConnectionString"/>), never whole.
    /// </summary>
    public static Setting ConnectionString(string name, string description, Func<string?> get, Action<string> set)
        => new(name, description, "a connection string (Key=Value;…)", false, () => get() ?? "", text =>
        {
            if (string.IsNullOrWhiteSpace(text))
            {
                return "expected a connection string (Key=Value;…)";
            }

            set(text);
            return null;
        }, Secrets.RedactConnectionString);

    /// <summary>
    /// A setting of any other type: <paramref name="trySet"/> parses the text and stores the value, returning null, or
    /// why the text is not valid (say what is expected, as <paramref name="valueHint"/> does).
    /// </summary>
    public static Setting Custom(string name, string description, string valueHint, Func<string> get, Func<string, string?> trySet, bool secret = false)
        => new(name, description, valueHint, secret, get, trySet);

    /// <summary>A text setting (a path, a host, a connection string when <paramref name="secret"/>).</summary>
    public static Setting Text(string name, string description, Func<string?> get, Action<string> set, bool secret = false, bool allowEmpty = false)
        => new(name, description, allowEmpty ? "text" : "non-empty text", secret, () => get() ?? "", text =>
        {
            if (!allowEmpty && string.IsNullOrWhiteSpace(text))
            {
                return "expected non-empty text";
            }

            set(text);
            return null;
        });

    /// <summary>An integer setting within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static Setting Number(string name, string description, Func<long> get, Action<long> set, long min = long.MinValue, long max = long.MaxValue)
        => new(name, description, Range(min, max), false, () => get().ToString(CultureInfo.InvariantCulture), text =>
        {
            if (!long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            {
                return "expected " + Range(min, max);
            }

            set(value);
            return null;
        });

    /// <summary>An integer setting that may be <c>none</c>.</summary>
    public static Setting OptionalNumber(string name, string description, Func<long?> get, Action<long?> set, long min = 1)
        => new(name, description, Range(min, long.MaxValue) + " or none", false, () => get()?.ToString(CultureInfo.InvariantCulture) ?? "none", text =>
        {
            if (IsNone(text))
            {
                set(null);
                return null;
            }

            if (!long.TryParse(text.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min)
            {
                return $"expected {Range(min, long.MaxValue)} or none";
            }

            set(value);
            return null;
        });

    /// <summary>A true/false setting.</summary>
    public static Setting Boolean(string name, string description, Func<bool> get, Action<bool> set)
        => new(name, description, "true or false", false, () => get() ? "true" : "false", text =>
        {
            if (!bool.TryParse(text.Trim(), out var value))
            {
                return "expected true or false";
            }

            set(value);
            return null;
        });

    /// <summary>
    /// A duration setting: <c>250ms</c>, <c>5s</c>, <c>2m</c>, <c>1h</c> or <c>hh:mm:ss</c>; <c>none</c> when
    /// <paramref name="optional"/>; <c>0</c> when <paramref name="zeroAllowed"/> (a setting whose zero means something:
    /// "at once", "never").
    /// </summary>
    public static Setting Duration(string name, string description, Func<TimeSpan?> get, Action<TimeSpan?> set, bool optional = false, bool zeroAllowed = false)
        => new(name, description, optional ? "a duration (250ms, 5s, 2m, 1h, hh:mm:ss) or none" : zeroAllowed ? "a duration (250ms, 5s, 2m, 1h, hh:mm:ss) or 0" : "a duration (250ms, 5s, 2m, 1h, hh:mm:ss)", false, () => get() is { } value ? FormatDuration(value) : "none", text =>
        {
            if (optional && IsNone(text))
            {
                set(null);
                return null;
            }

            var trimmed = text.Trim();
            if (zeroAllowed && trimmed == "0")
            {
                set(TimeSpan.Zero);
                return null;
            }

            if (!TryParseDuration(trimmed, out var value) || value < TimeSpan.Zero || (value == TimeSpan.Zero && !zeroAllowed))
            {
                return zeroAllowed
                    ? "expected 0 or a positive duration such as 250ms, 5s, 2m, 1h or hh:mm:ss"
                    : "expected a positive duration such as 250ms, 5s, 2m, 1h or hh:mm:ss";
            }

            set(value);
            return null;
        });

    /// <summary>A setting with a fixed set of values (an enum), matched case-insensitively.</summary>
    public static Setting Choice<TEnum>(string name, string description, Func<TEnum> get, Action<TEnum> set)
        where TEnum : struct, Enum
    {
        var names = Enum.GetNames<TEnum>();
        var hint = "one of " + string.Join(", ", names);
        return new(name, description, hint, false, () => get().ToString(), text =>
        {
            if (!Enum.TryParse<TEnum>(text.Trim(), ignoreCase: true, out var value) || !names.Contains(value.ToString(), StringComparer.Ordinal))
            {
                return "expected " + hint;
            }

            set(value);
            return null;
        });
    }

    /// <summary>Parses <c>250ms</c>, <c>5s</c>, <c>2m</c>, <c>1h</c>, or a <see cref="TimeSpan"/> in <c>hh:mm:ss</c> form.</summary>
    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        (string Suffix, double Milliseconds)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, milliseconds) in units)
        {
            if (text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
                && number >= 0)
            {
                value = TimeSpan.FromMilliseconds(number * milliseconds);
                return true;
            }
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A duration as the shortest of <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c> that is exact.</summary>
    public static string FormatDuration(TimeSpan value) => value.TotalMilliseconds switch
    {
        var ms when ms % 3_600_000 == 0 && ms > 0 => (ms / 3_600_000).ToString(CultureInfo.InvariantCulture) + "h",
        var ms when ms % 60_000 == 0 && ms > 0 => (ms / 60_000).ToString(CultureInfo.InvariantCulture) + "m",
        var ms when ms % 1000 == 0 && ms > 0 => (ms / 1000).ToString(CultureInfo.InvariantCulture) + "s",
        var ms => ms.ToString(CultureInfo.InvariantCulture) + "ms",
    };

    /// <inheritdoc/>
    public override string ToString() => $"{Name}={DisplayValue}";

    private static bool IsNone(string text) => string.IsNullOrWhiteSpace(text) || text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase);

    private static string Range(long min, long max) => (min, max) switch
    {
        (long.MinValue, long.MaxValue) => "an integer",
        (_, long.MaxValue) => $"an integer ≥ {min.ToString(CultureInfo.InvariantCulture)}",
        _ => $"an integer from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}",
    };
}
