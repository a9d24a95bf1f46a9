using System.Text;

namespace Compiled.Runtime.Tests.Serialization;

[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Measure(long Count, double Value, float Ratio, decimal Amount);

[Record(Naming = FieldNaming.CamelCase, LenientJsonNumbers = true)]
public readonly partial record struct LenientMeasure(long Count, double Value, float Ratio, decimal Amount);

/// <summary>JSON numbers follow RFC 8259 unless a record opts out; numbers out of range never become Infinity or 0.</summary>
public sealed class StrictNumberTests
{
    private static string Json(string count = "1", string value = "1.5", string ratio = "0.5", string amount = "2.25", string extra = "")
        => $"{{\"count\":{count},\"value\":{value},\"ratio\":{ratio},\"amount\":{amount}{extra}}}";

    [Theory]
    [InlineData("+5")]
    [InlineData("007")]
    [InlineData("01.5")]
    [InlineData(".5")]
    [InlineData("5.")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("1e")]
    [InlineData("-")]
    public void Json_numbers_outside_RFC_8259_are_rejected_with_a_reason(string token)
    {
        foreach (var line in new[] { Json(value: token), Json(ratio: token), Json(amount: token) })
        {
            Assert.False(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(line), out _, out var error), line);
            Assert.Contains("number", error.Message, StringComparison.Ordinal);
        }

        if (!token.Contains('.', StringComparison.Ordinal) && !token.Contains('e', StringComparison.Ordinal))
        {
            Assert.False(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(count: token)), out _, out _), token);
        }

        // Skipped values are held to the same grammar.
        Assert.False(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(extra: $",\"other\":[{token}]")), out _, out _), token);
    }

    [Theory]
    [InlineData("1e400", "large")]
    [InlineData("-1e400", "large")]
    [InlineData("1e-400", "small")]
    [InlineData("-2.5e-400", "small")]
    public void Numbers_that_overflow_or_underflow_are_rejected_in_json_and_csv(string token, string reason)
    {
        foreach (var line in new[] { Json(value: token), Json(ratio: token), Json(amount: token) })
        {
            Assert.False(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(line), out _, out var error), line);
            Assert.Contains(reason, error.Message, StringComparison.Ordinal);
            Assert.False(LenientMeasure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(line), out _, out _), line);
        }

        foreach (var line in new[] { $"1,{token},0.5,2.25", $"1,1.5,{token},2.25", $"1,1.5,0.5,{token}" })
        {
            Assert.False(Measure.CsvCodec.TryDecode(Encoding.UTF8.GetBytes(line), out _, out var error), line);
            Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("0", 0.0)]
    [InlineData("-0", 0.0)]
    [InlineData("5", 5.0)]
    [InlineData("1.5", 1.5)]
    [InlineData("1e5", 1e5)]
    [InlineData("1E+5", 1e5)]
    [InlineData("-0.5e-3", -0.5e-3)]
    [InlineData("0.0e0", 0.0)]
    [InlineData("1e-320", 1e-320)]
    [InlineData("\"NaN\"", double.NaN)]
    [InlineData("\"-Infinity\"", double.NegativeInfinity)]
    public void Valid_json_numbers_and_quoted_named_literals_are_read(string token, double expected)
    {
        Assert.True(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(value: token)), out var measure, out var error), error.ToString());
        Assert.Equal(expected, measure.Value);
    }

    [Theory]
    [InlineData("+5", 5.0)]
    [InlineData("007", 7.0)]
    [InlineData(".5", 0.5)]
    [InlineData("5.", 5.0)]
    [InlineData("NaN", double.NaN)]
    [InlineData("Infinity", double.PositiveInfinity)]
    public void A_record_that_opts_into_lenient_numbers_reads_them(string token, double expected)
    {
        Assert.True(LenientMeasure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(value: token, extra: $",\"skipped\":{token}")), out var measure, out var error), error.ToString());
        Assert.Equal(expected, measure.Value);
    }

    [Fact]
    public void Csv_keeps_its_own_number_forms()
    {
        Assert.True(Measure.CsvCodec.TryDecode("007,NaN,Infinity,2.25"u8.ToArray(), out var measure, out var error), error.ToString());
        Assert.Equal((7L, double.NaN, float.PositiveInfinity), (measure.Count, measure.Value, measure.Ratio));
    }

    [Fact]
    public void Invalid_utf8_and_malformed_values_in_unknown_properties_are_rejected()
    {
        var start = Encoding.UTF8.GetBytes(Json()[..^1]);
        byte[] badValue = [.. start, .. ",\"note\":\""u8, 0xC3, 0x28, .. "\"}"u8];
        Assert.False(Measure.JsonCodec.TryDecode(badValue, out _, out var error));
        Assert.Contains("UTF-8", error.Message, StringComparison.Ordinal);
        byte[] badName = [.. start, .. ",\""u8, 0xFF, .. "\":1}"u8];
        Assert.False(Measure.JsonCodec.TryDecode(badName, out _, out error));
        Assert.Contains("UTF-8", error.Message, StringComparison.Ordinal);
        foreach (var extra in new[] { ",\"x\":[1 2]", ",\"x\":[1,,2]", ",\"x\":{\"a\" 1}", ",\"x\":{1:2}", ",\"x\":[1,]", ",\"x\":\"\\q\"", ",\"x\":tru" })
        {
            Assert.False(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(extra: extra)), out _, out _), extra);
        }

        Assert.True(Measure.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(Json(extra: ",\"x\":{\"a\":[1,{\"b\":null},\"\\u00e9\"],\"c\":-0.5e2}")), out _, out error), error.ToString());
    }
}
