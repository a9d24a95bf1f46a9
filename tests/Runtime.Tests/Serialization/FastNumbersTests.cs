using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Compiled.Serialization;
using CsCheck;

namespace Compiled.Runtime.Tests.Serialization;

/// <summary>The fast number parsers agree with the base library's to the bit, on the fast path and off it.</summary>
public sealed class FastNumbersTests
{
    private static readonly Gen<string> DecimalText = Gen.Select(
        Gen.Bool,
        Gen.Long[0, 999_999_999_999_999],
        Gen.Int[0, 20],
        (negative, digits, scale) =>
        {
            var text = digits.ToString(CultureInfo.InvariantCulture).PadLeft(scale + 1, '0');
            if (scale > 0)
            {
                text = text[..^scale] + "." + text[^scale..];
            }

            return (negative ? "-" : "") + text;
        });

    [Fact]
    public void Doubles_parse_exactly_as_Utf8Parser_does()
    {
        Gen.OneOf(
                DecimalText,
                Gen.Double.Select(d => d.ToString("R", CultureInfo.InvariantCulture)),
                Gen.Double.Select(d => d.ToString("E10", CultureInfo.InvariantCulture)),
                Gen.OneOf("0", "-0", "1e5", "0.1", "123456789012345678", "1.7976931348623157E+308", "5e-324", "00012.50"))
            .Sample(text =>
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                var fastOk = FastNumbers.TryParseDouble(bytes, out var fast, out var fastUsed);
                var baseOk = Utf8Parser.TryParse(bytes, out double expected, out var baseUsed);
                Assert.Equal(baseOk, fastOk);
                Assert.Equal(baseUsed, fastUsed);
                Assert.Equal(BitConverter.DoubleToInt64Bits(expected), BitConverter.DoubleToInt64Bits(fast));
            });
    }

    [Fact]
    public void Integers_parse_exactly_as_Utf8Parser_does_including_overflow()
    {
        Gen.OneOf(
                Gen.Long.Select(l => l.ToString(CultureInfo.InvariantCulture)),
                Gen.Int.Select(i => i.ToString(CultureInfo.InvariantCulture)),
                Gen.OneOf("9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "0", "-", "", "12abc", "99999999999999999999"))
            .Sample(text =>
            {
                var bytes = Encoding.UTF8.GetBytes(text);
                Assert.Equal(Utf8Parser.TryParse(bytes, out long expected, out var used), FastNumbers.TryParseInt64(bytes, out var fast, out var fastUsed));
                Assert.Equal((expected, used), (fast, fastUsed));
                var baseOk32 = Utf8Parser.TryParse(bytes, out int expected32, out var used32);
                var fastOk32 = FastNumbers.TryParseInt32(bytes, out var fast32, out var fastUsed32);
                Assert.Equal(baseOk32, fastOk32);
                if (baseOk32)
                {
                    Assert.Equal((expected32, used32), (fast32, fastUsed32));
                }
            });
    }
}
