using System.Text;

namespace Compiled;

/// <summary>
/// A UTF-8 text field that decodes without allocating: it points at the bytes the record was decoded from. It is
/// valid while the batch it arrived in is being processed; call <see cref="Copy"/> (or <see cref="ToString"/>) to
/// keep it longer.
/// </summary>
public readonly struct Utf8Text : IEquatable<Utf8Text>
{
    /// <summary>Wraps UTF-8 bytes (not copied, not validated: codecs validate before they wrap).</summary>
    public Utf8Text(ReadOnlyMemory<byte> utf8) => Utf8 = utf8;

    /// <summary>The UTF-8 bytes.</summary>
    public ReadOnlyMemory<byte> Utf8 { get; }

    /// <summary>The UTF-8 bytes, as a span.</summary>
    public ReadOnlySpan<byte> Span => Utf8.Span;

    /// <summary>The length in bytes.</summary>
    public int Length => Utf8.Length;

    /// <summary>Whether the text is empty.</summary>
    public bool IsEmpty => Utf8.IsEmpty;

    /// <summary>Encodes <paramref name="text"/> (allocates).</summary>
    public static Utf8Text From(string text) => new(Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))));

    /// <summary>A copy that owns its bytes, valid after the batch is gone.</summary>
    public Utf8Text Copy() => new(Utf8.ToArray());

    /// <summary>Whether the text equals the UTF-8 bytes <paramref name="utf8"/> (e.g. <c>"GET"u8</c>).</summary>
    public bool Equals(ReadOnlySpan<byte> utf8) => Span.SequenceEqual(utf8);

    /// <inheritdoc/>
    public bool Equals(Utf8Text other) => Span.SequenceEqual(other.Span);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Utf8Text other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Span);
        return hash.ToHashCode();
    }

    /// <summary>The text as a string (allocates).</summary>
    public override string ToString() => Encoding.UTF8.GetString(Span);

    /// <summary>Equality of content.</summary>
    public static bool operator ==(Utf8Text left, Utf8Text right) => left.Equals(right);

    /// <summary>Inequality of content.</summary>
    public static bool operator !=(Utf8Text left, Utf8Text right) => !left.Equals(right);
}
