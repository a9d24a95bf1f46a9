using System.Globalization;
using System.Text;

namespace Compiled.Parquet;

/// <summary>
/// A <see cref="ParquetSinkOptions.PartitionBy"/> template — literal text and <c>{Member[:format]}</c> placeholders —
/// checked against the record's schema once, and turned into a record's relative directory.
/// </summary>
internal sealed class PartitionTemplate
{
    /// <summary>What Hive writes for a null partition value.</summary>
    public const string NullValue = "__HIVE_DEFAULT_PARTITION__";

    private readonly (string Literal, int Ordinal, string? Format)[] _parts;
    private readonly bool[] _used;

    private PartitionTemplate((string, int, string?)[] parts, int fields)
    {
        _parts = parts;
        _used = new bool[fields];
        foreach (var (_, ordinal, _) in parts)
        {
            if (ordinal >= 0)
            {
                _used[ordinal] = true;
            }
        }
    }

    /// <summary>Parses <paramref name="template"/>, naming an unknown member or a malformed placeholder.</summary>
    public static PartitionTemplate Parse<T>(string template, RecordSchema<T> schema, ParquetColumn[] columns)
    {
        var parts = new List<(string, int, string?)>();
        var literal = new StringBuilder();
        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if (c != '{')
            {
                if (c == '}')
                {
                    throw new NonRetryableException($"PartitionBy '{template}': a '}}' without its '{{' at position {i}.");
                }

                literal.Append(c);
                continue;
            }

            var end = template.IndexOf('}', i);
            if (end < 0)
            {
                throw new NonRetryableException($"PartitionBy '{template}': the placeholder at position {i} has no closing '}}'.");
            }

            var placeholder = template[(i + 1)..end];
            var colon = placeholder.IndexOf(':', StringComparison.Ordinal);
            var name = (colon < 0 ? placeholder : placeholder[..colon]).Trim();
            var format = colon < 0 ? null : placeholder[(colon + 1)..];
            var field = schema.Fields.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? columns.FirstOrDefault(c => string.Equals(c.Data.Name, name, StringComparison.OrdinalIgnoreCase))?.Field
                ?? throw new NonRetryableException(
                    $"PartitionBy '{template}': '{name}' is not a member of {typeof(T).Name} (members: {string.Join(", ", schema.Fields.Select(f => f.Name))}).");
            parts.Add((literal.ToString(), -1, null));
            literal.Clear();
            parts.Add(("", field.Ordinal, format));
            i = end;
        }

        parts.Add((literal.ToString(), -1, null));
        var constant = string.Concat(parts.Select(p => p.Item1));
        if (constant.StartsWith('/') || constant.Split('/').Any(segment => segment is ".." or "."))
        {
            throw new NonRetryableException($"PartitionBy '{template}' must be a relative path below the directory, without '.' or '..' segments.");
        }

        return new PartitionTemplate([.. parts.Where(p => p.Item1.Length > 0 || p.Item2 >= 0)], schema.Fields.Count);
    }

    /// <summary>The size of the scratch array <see cref="DirectoryOf"/> needs (one per writer: templates are shared).</summary>
    public int Parts => _parts.Length;

    /// <summary>The directory, relative to the lake's root, of <paramref name="record"/>.</summary>
    public string DirectoryOf<T>(in T record, RecordSchema<T> schema, StringBuilder text, string[] values)
    {
        if (_parts.Length == 0)
        {
            return "";
        }

        if (_parts.Length == 1 && _parts[0].Ordinal < 0)
        {
            return _parts[0].Literal;
        }

        var visitor = new Capture(this, values);
        schema.Visit(record, ref visitor);
        text.Clear();
        for (var p = 0; p < _parts.Length; p++)
        {
            text.Append(_parts[p].Ordinal < 0 ? _parts[p].Literal : values[p]);
        }

        return text.ToString();
    }

    /// <summary>
    /// Hive's escaping of a partition value: control characters and <c>"#%'*/:=?\{[]^</c> as <c>%XX</c>; and a value that
    /// is <c>.</c> or <c>..</c> as <c>%2E</c>s, so that no value can name a directory outside the lake.
    /// </summary>
    public static string Escape(string value)
    {
        const string special = "\"#%'*/:=?\\\u007F{[]^";
        if (value.Length == 0)
        {
            return NullValue;
        }

        if (value is "." or "..")
        {
            return value.Replace(".", "%2E", StringComparison.Ordinal); // a whole path segment of dots would leave the lake
        }

        StringBuilder? escaped = null;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c < ' ' || special.Contains(c, StringComparison.Ordinal))
            {
                escaped ??= new StringBuilder(value, 0, i, value.Length + 8);
                escaped.Append(CultureInfo.InvariantCulture, $"%{(int)c:X2}");
            }
            else
            {
                escaped?.Append(c);
            }
        }

        return escaped?.ToString() ?? value;
    }

    private readonly struct Capture(PartitionTemplate template, string[] values) : IFieldVisitor
    {
        public void Visit<TField>(int ordinal, TField value)
        {
            if (!template._used[ordinal])
            {
                return;
            }

            // One member may appear several times with different formats (dt={At:yyyy-MM-dd}/hour={At:HH}).
            var parts = template._parts;
            for (var p = 0; p < parts.Length; p++)
            {
                if (parts[p].Ordinal == ordinal)
                {
                    var format = parts[p].Format;
                    values[p] = value switch
                    {
                        null => NullValue,
                        DateTimeOffset time => Escape(time.UtcDateTime.ToString(format, CultureInfo.InvariantCulture)),
                        IFormattable formattable => Escape(formattable.ToString(format, CultureInfo.InvariantCulture)),
                        _ => Escape(value.ToString() ?? ""),
                    };
                }
            }
        }
    }
}
