using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using CsCheck;

namespace Compiled.Runtime.Tests.Serialization;

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    UseStringEnumConverter = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(Comparable))]
internal sealed partial class StjContext : JsonSerializerContext;

/// <summary>The generated codecs: round trips, agreement with System.Text.Json, and clear errors for bad input.</summary>
public sealed class CodecTests
{
    [Fact]
    public void Json_encode_then_decode_is_the_identity() => RoundTrip<Everything.JsonCodec>();

    [Fact]
    public void Csv_encode_then_decode_is_the_identity() => RoundTrip<Everything.CsvCodec>();

    [Fact]
    public void Binary_encode_then_decode_is_the_identity() => RoundTrip<Everything.BinaryCodec>();

    [Fact]
    public void System_Text_Json_reads_what_the_generated_codec_writes()
    {
        Generators.Comparable.Sample(value =>
        {
            var bytes = Encode<Comparable, Comparable.JsonCodec>(value);
            var parsed = JsonSerializer.Deserialize(bytes.Span, StjContext.Default.Comparable);
            AssertSame(value, parsed!);
        });
    }

    [Fact]
    public void The_generated_codec_reads_what_System_Text_Json_writes()
    {
        Generators.Comparable.Sample(value =>
        {
            var bytes = JsonSerializer.SerializeToUtf8Bytes(value, StjContext.Default.Comparable);
            Assert.True(Comparable.JsonCodec.TryDecode(bytes, out var parsed, out var error), $"{error}: {Encoding.UTF8.GetString(bytes)}");
            AssertSame(value, parsed);
        });
    }

    [Fact]
    public void Names_follow_the_naming_policy_and_field_attributes_and_computed_properties_are_left_out()
    {
        var entry = new AccessEntry { RemoteAddress = "10.0.0.1", StatusCode = 503, DurationMilliseconds = 1.5 };
        Assert.Equal("""{"remote_address":"10.0.0.1","status_code":503,"ms":1.5}""", Encoding.UTF8.GetString(Encode<AccessEntry, AccessEntry.JsonCodec>(entry).Span));
        Assert.Equal("remote_address,status_code,ms", Encoding.UTF8.GetString(AccessEntry.CsvCodec.Header));
        Assert.Equal("10.0.0.1,503,1.5", Encoding.UTF8.GetString(Encode<AccessEntry, AccessEntry.CsvCodec>(entry).Span));
    }

    [Fact]
    public void Json_skips_unknown_properties_of_any_shape_and_accepts_any_order()
    {
        var json = """{"ms":2,"extra":{"a":[1,{"b":null}],"c":"}"},"status_code":200,"tags":[true,false],"remote_address":"h"}""";
        Assert.True(AccessEntry.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(json), out var entry, out var error), error.ToString());
        Assert.Equal(("h", 200, 2.0), (entry.RemoteAddress, entry.StatusCode, entry.DurationMilliseconds));
    }

    [Theory]
    [InlineData("""{"remote_address":"h","ms":1}""", "field 'status_code' is missing")]
    [InlineData("""{"remote_address":"h","status_code":"x","ms":1}""", "field 'status_code': expected an integer")]
    [InlineData("""{"remote_address":"h","status_code":1.5,"ms":1}""", "field 'status_code': expected an integer")]
    [InlineData("""{"remote_address":null,"status_code":1,"ms":1}""", "field 'remote_address': null is not allowed")]
    [InlineData("""{"remote_address":"h","status_code": null ,"ms":1}""", "field 'status_code': null is not allowed")]
    [InlineData("""{"remote_address":"h","status_code":1,"ms":null}""", "field 'ms': null is not allowed")]
    [InlineData("""{"remote_address":"h","status_code":nul,"ms":1}""", "field 'status_code': expected an integer")]
    [InlineData("""{"remote_address":"h","status_code":1,"ms":1""", "the object is not closed")]
    [InlineData("""{"remote_address":"h","status_code":1,"ms":1} trailing""", "unexpected content after the JSON object")]
    [InlineData("""{"remote_address":"unterminated""", "not closed")]
    [InlineData("""not json""", "expected '{'")]
    [InlineData("", "the record is empty")]
    public void Bad_json_is_an_error_naming_the_field_never_an_exception(string json, string message)
    {
        Assert.False(AccessEntry.JsonCodec.TryDecode(Encoding.UTF8.GetBytes(json), out _, out var error));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_json_field_left_out_takes_its_constructor_parameter_default_and_one_without_a_default_is_still_required()
    {
        Assert.True(WithDefaults.JsonCodec.TryDecode("""{"id":5}"""u8.ToArray(), out var decoded, out var error), error.ToString());
        Assert.Equal(new WithDefaults(5), decoded);
        Assert.Equal((ChangeKind.Insert, Color.Blue, "none \"quoted\"", 1e20, '\''), (decoded.Kind, decoded.Color, decoded.Note, decoded.Ratio, decoded.Mark));

        // Present fields win over defaults, including an explicit null for a nullable one.
        Assert.True(WithDefaults.JsonCodec.TryDecode("""{"kind":"Delete","maybe":null,"note":"n","amount":2.5,"id":6}"""u8.ToArray(), out decoded, out error), error.ToString());
        Assert.Equal(new WithDefaults(6, ChangeKind.Delete, Note: "n", Amount: 2.5m, Maybe: null), decoded);

        Assert.False(WithDefaults.JsonCodec.TryDecode("""{"kind":"Delete"}"""u8.ToArray(), out _, out error));
        Assert.Contains("field 'id' is missing", error.Message, StringComparison.Ordinal);

        // A default is what a missing field takes, not a null one: null in a field that cannot hold it says so, whatever its type.
        Assert.False(WithDefaults.JsonCodec.TryDecode("""{"id":1,"kind":null}"""u8.ToArray(), out _, out error));
        Assert.Equal("field 'kind': null is not allowed", error.Message);
        Assert.False(WithDefaults.JsonCodec.TryDecode("""{"id":1,"flag":null}"""u8.ToArray(), out _, out error));
        Assert.Equal("field 'flag': null is not allowed", error.Message);
    }

    [Fact]
    public void Invalid_utf8_in_a_string_is_an_error()
    {
        byte[] bytes = [.. "{\"remote_address\":\""u8, 0xC3, 0x28, .. "\",\"status_code\":1,\"ms\":1}"u8];
        Assert.False(AccessEntry.JsonCodec.TryDecode(bytes, out _, out var error));
        Assert.Contains("not valid UTF-8", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("h,200", "the record has 2 fields; 'ms' is missing")]
    [InlineData("h,200,1,extra", "the record has more than 3 fields")]
    [InlineData("\"h,200,1", "the quoted field is not closed")]
    [InlineData("\"h\"x,200,1", "unexpected characters after a closing quote")]
    [InlineData("h\"i,200,1", "a quote inside an unquoted field")]
    [InlineData("h,abc,1", "field 'status_code': expected an integer")]
    public void Bad_csv_is_an_error_naming_the_field(string csv, string message)
    {
        Assert.False(AccessEntry.CsvCodec.TryDecode(Encoding.UTF8.GetBytes(csv), out _, out var error));
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Csv_keeps_null_and_empty_strings_apart_and_reads_crlf_records()
    {
        var value = Generators.Everything.Single() with { Maybe = null, Text = "" };
        var csv = Encode<Everything, Everything.CsvCodec>(value);
        Assert.True(Everything.CsvCodec.TryDecode(csv, out var back, out var error), error.ToString());
        Assert.Null(back.Maybe);
        Assert.Equal("", back.Text);
        byte[] crlf = [.. csv.Span, (byte)'\r'];
        Assert.True(Everything.CsvCodec.TryDecode(crlf, out back, out error), error.ToString());
        Assert.Equal(value, back);
    }

    [Fact]
    public void Binary_rejects_truncated_records_and_unknown_versions()
    {
        var bytes = Encode<Everything, Everything.BinaryCodec>(Generators.Everything.Single()).ToArray();
        Assert.False(Everything.BinaryCodec.TryDecode(bytes.AsMemory(0, bytes.Length - 1), out _, out var error));
        Assert.Contains("truncated", error.Message, StringComparison.Ordinal);
        bytes[0] = 99;
        Assert.False(Everything.BinaryCodec.TryDecode(bytes, out _, out error));
        Assert.Contains("version 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Utf8_text_fields_point_into_the_input_without_copying()
    {
        var bytes = Encode<Everything, Everything.JsonCodec>(Generators.Everything.Single() with { Raw = Utf8Text.From("plain") });
        Assert.True(Everything.JsonCodec.TryDecode(bytes, out var value, out _));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(bytes, out var input));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(value.Raw.Utf8, out var text));
        Assert.Same(input.Array, text.Array);
        Assert.Equal("plain", value.Raw.ToString());
    }

    private static void RoundTrip<TCodec>()
        where TCodec : IRecordCodec<Everything>
    {
        Generators.Everything.Sample(value =>
        {
            var bytes = Encode<Everything, TCodec>(value);
            Assert.True(TCodec.TryDecode(bytes, out var back, out var error), $"{error}: {Encoding.UTF8.GetString(bytes.Span)}");
            Assert.Equal(value, back);
            Assert.Equal(value.When.Kind, back.When.Kind);
            Assert.Equal(value.At.Offset, back.At.Offset);
            Assert.Equal(value.Address?.City, back.Address?.City);
        });
    }

    private static void AssertSame(Comparable expected, Comparable actual)
    {
        Assert.Equal(expected, actual);
        Assert.Equal(expected.When.Kind, actual.When.Kind);
        Assert.Equal(expected.At.Offset, actual.At.Offset);
    }

    private static ReadOnlyMemory<byte> Encode<T, TCodec>(T value)
        where TCodec : IRecordCodec<T>
    {
        var buffer = new ArrayBufferWriter<byte>();
        TCodec.Encode(value, buffer);
        return buffer.WrittenMemory;
    }
}
