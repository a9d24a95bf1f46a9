using System.Text;

namespace Compiled.Serialization;

/// <summary>UTF-8 to string in one pass, rejecting invalid input instead of replacing it.</summary>
public static class Utf8Strings
{
    // Throws on invalid bytes: one pass both validates and decodes (a separate validation pass costs as much again),
    // and the exception is paid only by malformed records, which are the rare, dead-lettered ones.
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Decodes <paramref name="utf8"/>; false when it is not valid UTF-8.</summary>
    public static bool TryDecode(ReadOnlySpan<byte> utf8, out string? value)
    {
        try
        {
            value = Strict.GetString(utf8);
            return true;
        }
        catch (DecoderFallbackException)
        {
            value = null;
            return false;
        }
    }
}
