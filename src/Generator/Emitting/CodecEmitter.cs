using System.Collections.Generic;
using System.Linq;
using System.Text;
using Compiled.Generator.Model;

namespace Compiled.Generator.Emitting;

/// <summary>
/// Writes the codecs of a <c>[Record]</c> type as nested classes: <c>JsonCodec</c>, <c>CsvCodec</c>,
/// <c>BinaryCodec</c>. Each decoder is straight-line code over a reader struct: a switch on property-name length and
/// bytes (JSON), fields in order (CSV, binary); no reflection, no dictionaries, no boxing.
/// </summary>
internal static class CodecEmitter
{
    private const string Json = "global::Compiled.Serialization.JsonRecordReader";
    private const string JsonWriter = "global::Compiled.Serialization.JsonRecordWriter";
    private const string Csv = "global::Compiled.Serialization.CsvRecordReader";
    private const string CsvWriter = "global::Compiled.Serialization.CsvRecordWriter";
    private const string Bin = "global::Compiled.Serialization.BinaryRecordReader";
    private const string BinWriter = "global::Compiled.Serialization.BinaryRecordWriter";
    private const string BufferWriter = "global::System.Buffers.IBufferWriter<byte>";
    private const string Memory = "global::System.ReadOnlyMemory<byte>";
    private const string Span = "global::System.ReadOnlySpan<byte>";
    private const string Error = "global::Compiled.DecodeError";

    /// <summary>Called as a static method: an extension call would need <c>using System;</c>, which a project without implicit usings lacks.</summary>
    private const string SequenceEqual = "global::System.MemoryExtensions.SequenceEqual";

    public static (string HintName, string Source)? Emit(CodecModel model)
    {
        // Codecs go into the user's type: it and every type around it must be partial (else CMPL0001), and not generic.
        if (!model.CanHostCodecs)
        {
            return null;
        }

        var writer = new SourceWriter();
        TypeScopes.Begin(writer, model.Namespace, model.ContainingTypes);
        writer.Open($"partial {model.Keyword} {model.TypeName}");
        if (model.Diagnostics.Count > 0)
        {
            EmitStubs(writer, model);
            writer.Close();
            TypeScopes.End(writer, model.Namespace, model.ContainingTypes);
            return (TypeScopes.HintName(model.Namespace, model.ContainingTypes, model.TypeName, ".Codecs"), writer.ToString());
        }

        EmitJson(writer, model);
        writer.Line();
        EmitCsv(writer, model);
        writer.Line();
        EmitBinary(writer, model);
        writer.Close();
        TypeScopes.End(writer, model.Namespace, model.ContainingTypes);
        return (TypeScopes.HintName(model.Namespace, model.ContainingTypes, model.TypeName, ".Codecs"), writer.ToString());
    }

    /// <summary>
    /// With errors in the declaration (CMPL0201-0204), the codec classes still exist — so that <c>FileSource&lt;T,
    /// T.JsonCodec&gt;</c> compiles and only the CMPL diagnostics show (a missing nested type would be a C# error that
    /// stops the build before analyzers run) — but their members throw, naming the problems.
    /// </summary>
    private static void EmitStubs(SourceWriter writer, CodecModel model)
    {
        var ids = string.Join(", ", model.Diagnostics.Select(d => d.Id).Distinct());
        var message = SourceWriter.Literal($"The codecs of '{model.Root.DisplayName}' were not generated because its [Record] declaration has errors ({ids}); fix them and rebuild.");
        var record = model.Root.FullName;
        foreach (var (name, format, framing) in new[] { ("JsonCodec", "jsonl", "Lines"), ("CsvCodec", "csv", "QuotedLines"), ("BinaryCodec", "bin", "LengthPrefixed") })
        {
            Header(writer, model, name, $"Not available: the [Record] declaration of <c>{Xml(model.Root.DisplayName)}</c> has errors ({ids}).", format, framing, "default");
            writer.Line("/// <inheritdoc/>");
            writer.Line($"public static bool TryDecode({Memory} input, out {record} record, out {Error} error) => throw new global::System.InvalidOperationException({message});");
            writer.Line();
            writer.Line("/// <inheritdoc/>");
            writer.Line($"public static void Encode(in {record} record, {BufferWriter} output) => throw new global::System.InvalidOperationException({message});");
            writer.Close();
            writer.Line();
        }
    }

    private static IEnumerable<CodecObjectModel> Objects(CodecModel model) => new[] { model.Root }.Concat(model.Nested);

    private static void Header(SourceWriter writer, CodecModel model, string name, string summary, string format, string framing, string header)
    {
        var record = model.Root.FullName;
        writer.Line($"/// <summary>{summary}</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"public sealed class {name} : global::Compiled.IRecordCodec<{record}>");
        writer.Line($"private {name}()");
        writer.Line("{");
        writer.Line("}");
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Line($"public static string Format => {SourceWriter.Literal(format)};");
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Line($"public static global::Compiled.RecordFraming Framing => global::Compiled.RecordFraming.{framing};");
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Line($"public static {Span} Header => {header};");
        writer.Line();
    }

    // ---------------------------------------------------------------- JSON

    private static void EmitJson(SourceWriter writer, CodecModel model)
    {
        var record = model.Root.FullName;
        Header(writer, model, "JsonCodec", $"JSON Lines codec of <c>{Xml(model.Root.DisplayName)}</c>: one JSON object per line; unknown properties are skipped.", "jsonl", "Lines", "default");
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static bool TryDecode({Memory} input, out {record} record, out {Error} error)");
        writer.Line($"var reader = new {Json}(input{JsonOptions(model)});");
        writer.Open($"if (Read{model.Root.Identifier}(ref reader, out record) && reader.End())");
        writer.Line("error = default;");
        writer.Line("return true;");
        writer.Close();
        writer.Line("record = default;");
        writer.Line("error = reader.Error;");
        writer.Line("return false;");
        writer.Close();
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static void Encode(in {record} record, {BufferWriter} output)");
        writer.Line($"var writer = new {JsonWriter}(output);");
        writer.Line($"Write{model.Root.Identifier}(ref writer, in record);");
        writer.Line("writer.Flush();");
        writer.Close();
        foreach (var type in Objects(model))
        {
            writer.Line();
            EmitJsonRead(writer, model, type);
            writer.Line();
            EmitJsonWrite(writer, model, type);
        }

        EmitEnumHelpers(writer, model);
        writer.Close();
    }

    private static void EmitJsonRead(SourceWriter writer, CodecModel model, CodecObjectModel type)
    {
        writer.Open($"internal static bool Read{type.Identifier}(ref {Json} reader, out {type.FullName} value)");
        writer.Line("value = default;");
        writer.Open("if (!reader.BeginObject())");
        writer.Line("return false;");
        writer.Close();
        DeclareLocals(writer, type, tracked: true);
        writer.Open("while (reader.NextProperty(out var name))");
        writer.Open("switch (name.Length)");
        foreach (var group in type.Fields.Select((f, i) => (Field: f, Index: i)).GroupBy(x => Encoding.UTF8.GetByteCount(x.Field.WireName)).OrderBy(g => g.Key))
        {
            writer.Line($"case {SourceWriter.Number(group.Key)}:");
            writer.Indent();
            foreach (var (field, index) in group)
            {
                writer.Open($"if ({SequenceEqual}(name, {U8(field.WireName)}))");
                EmitJsonReadValue(writer, model, field, index);
                if (field.IsRequired)
                {
                    writer.Line($"has{index} = true;");
                }

                writer.Line("continue;");
                writer.Close();
                writer.Line();
            }

            writer.Line("break;");
            writer.Unindent();
        }

        writer.Close();
        writer.Open("if (!reader.Skip())");
        writer.Line("return false;");
        writer.Close();
        writer.Close();
        writer.Open("if (reader.HasError)");
        writer.Line("return false;");
        writer.Close();
        EmitRequiredChecks(writer, type, "reader.Fail");
        EmitConstruct(writer, type);
        writer.Line("return true;");
        writer.Close();
    }

    private static void EmitJsonReadValue(SourceWriter writer, CodecModel model, CodecFieldModel field, int index)
    {
        var target = $"f{index}";
        var fail = $"reader.InField({SourceWriter.Literal(field.WireName)}); return false;";
        if (field.IsNullableValue || field.IsNested && field.IsNullableReference)
        {
            writer.Open("if (reader.TryReadNull())");
            writer.Line($"{target} = null;");
            writer.Line("continue;");
            writer.Close();
        }

        var call = field.Kind switch
        {
            null => $"Read{field.Nested}(ref reader, out var v{index})",
            ScalarKind.Enum => $"ReadEnum{field.Nested}(ref reader, out var v{index})",
            ScalarKind.String => $"reader.ReadString(out var v{index})",
            _ => $"reader.Read{field.Kind}(out var v{index})",
        };
        writer.Line($"if (!{call}) {{ {fail} }}");
        if (field.Kind == ScalarKind.String && !field.IsOptional)
        {
            writer.Line($"if (v{index} is null) {{ reader.FailField({SourceWriter.Literal(field.WireName)}, \"null is not allowed\"); return false; }}");
        }

        writer.Line($"{target} = v{index};");
    }

    private static void EmitJsonWrite(SourceWriter writer, CodecModel model, CodecObjectModel type)
    {
        writer.Open($"internal static void Write{type.Identifier}(ref {JsonWriter} writer, in {type.FullName} value)");
        if (type.Fields.Count == 0)
        {
            writer.Line("writer.WriteRaw(\"{}\"u8);");
            writer.Close();
            return;
        }

        for (var i = 0; i < type.Fields.Count; i++)
        {
            var field = type.Fields[i];
            var prefix = (i == 0 ? "{" : ",") + JsonString(field.WireName) + ":";
            writer.Line($"writer.WriteRaw({U8(prefix)});");
            var access = "value." + field.MemberName;
            if (field.IsOptional && field.Kind != ScalarKind.String)
            {
                writer.Open($"if ({access} is {{ }} v{i})");
                EmitJsonWriteValue(writer, field, $"v{i}");
                writer.Close();
                writer.Open("else");
                writer.Line("writer.WriteNull();");
                writer.Close();
            }
            else
            {
                EmitJsonWriteValue(writer, field, access);
            }
        }

        writer.Line("writer.WriteRaw(\"}\"u8);");
        writer.Close();
    }

    private static void EmitJsonWriteValue(SourceWriter writer, CodecFieldModel field, string value)
    {
        writer.Line(field.Kind switch
        {
            null => $"Write{field.Nested}(ref writer, {value});",
            ScalarKind.Enum => $"WriteEnum{field.Nested}(ref writer, {value});",
            ScalarKind.Byte or ScalarKind.SByte or ScalarKind.Int16 or ScalarKind.UInt16 or ScalarKind.Int32 or ScalarKind.Int64 => $"writer.WriteInt64({value});",
            ScalarKind.UInt32 or ScalarKind.UInt64 => $"writer.WriteUInt64({value});",
            _ => $"writer.Write{field.Kind}({value});",
        });
    }

    private static void EmitEnumHelpers(SourceWriter writer, CodecModel model)
    {
        foreach (var e in model.Enums)
        {
            writer.Line();
            writer.Open($"internal static bool ParseEnum{e.Identifier}({Span} text, out {e.FullName} value)");
            if (!e.IsFlags)
            {
                writer.Open("switch (text.Length)");
                foreach (var group in e.Members.GroupBy(m => m.Name.Length).OrderBy(g => g.Key))
                {
                    writer.Line($"case {SourceWriter.Number(group.Key)}:");
                    writer.Indent();
                    foreach (var member in group)
                    {
                        writer.Line($"if ({SequenceEqual}(text, {U8(member.Name)})) {{ value = {e.FullName}.{member.Name}; return true; }}");
                    }

                    writer.Line("break;");
                    writer.Unindent();
                }

                writer.Close();
            }

            writer.Open($"if (global::System.Buffers.Text.Utf8Parser.TryParse(text, out long number, out var used) && used == text.Length)");
            writer.Line($"value = ({e.FullName})({e.UnderlyingType})number;");
            writer.Line("return true;");
            writer.Close();
            writer.Line("value = default;");
            writer.Line("return false;");
            writer.Close();
            writer.Line();
            writer.Open($"internal static {Span} EnumName{e.Identifier}({e.FullName} value)");
            if (!e.IsFlags)
            {
                writer.Open("switch (value)");
                foreach (var member in e.Members.GroupBy(m => m.Value).Select(g => g.First()))
                {
                    writer.Line($"case {e.FullName}.{member.Name}: return {U8(member.Name)};");
                }

                writer.Close();
            }

            writer.Line("return default;");
            writer.Close();
            writer.Line();
            writer.Open($"private static bool ReadEnum{e.Identifier}(ref {Json} reader, out {e.FullName} value)");
            writer.Open("if (reader.ReadStringToken(out var text, \"an enum name\") && ParseEnum" + e.Identifier + "(text, out value))");
            writer.Line("return true;");
            writer.Close();
            writer.Line("value = default;");
            writer.Line("return reader.Fail(\"expected one of the names of " + e.FullName.Replace("global::", "") + "\");");
            writer.Close();
            writer.Line();
            writer.Open($"private static void WriteEnum{e.Identifier}(ref {JsonWriter} writer, {e.FullName} value)");
            writer.Line("var name = EnumName" + e.Identifier + "(value);");
            writer.Open("if (name.IsEmpty)");
            writer.Line($"writer.WriteRaw(\"\\\"\"u8);");
            writer.Line($"writer.WriteInt64((long)value);");
            writer.Line($"writer.WriteRaw(\"\\\"\"u8);");
            writer.Line("return;");
            writer.Close();
            writer.Line($"writer.WriteRaw(\"\\\"\"u8);");
            writer.Line("writer.WriteRaw(name);");
            writer.Line($"writer.WriteRaw(\"\\\"\"u8);");
            writer.Close();
        }
    }

    // ---------------------------------------------------------------- CSV

    private static void EmitCsv(SourceWriter writer, CodecModel model)
    {
        var record = model.Root.FullName;
        var header = string.Join(",", model.Root.Fields.Select(f => CsvName(f.WireName)));
        Header(writer, model, "CsvCodec", $"CSV codec of <c>{Xml(model.Root.DisplayName)}</c> (RFC 4180): fields in declaration order, header <c>{Xml(header)}</c>; nested records are JSON cells.", "csv", "QuotedLines", U8(header));
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static bool TryDecode({Memory} input, out {record} record, out {Error} error)");
        writer.Line($"var reader = new {Csv}(input);");
        var type = model.Root;
        DeclareLocals(writer, type, tracked: false);
        writer.Line("record = default;");
        for (var i = 0; i < type.Fields.Count; i++)
        {
            var field = type.Fields[i];
            var name = SourceWriter.Literal(field.WireName);
            writer.Open($"if (!reader.NextField({name}))");
            writer.Line("error = reader.Error;");
            writer.Line("return false;");
            writer.Close();
            EmitCsvReadValue(writer, model, field, i, name);
        }

        writer.Open("if (!reader.End())");
        writer.Line("error = reader.Error;");
        writer.Line("return false;");
        writer.Close();
        EmitConstruct(writer, type, "record");
        writer.Line("error = default;");
        writer.Line("return true;");
        writer.Close();
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static void Encode(in {record} record, {BufferWriter} output)");
        writer.Line($"var writer = new {CsvWriter}(output);");
        for (var i = 0; i < type.Fields.Count; i++)
        {
            var field = type.Fields[i];
            var access = "record." + field.MemberName;
            if (field.IsOptional && field.Kind != ScalarKind.String)
            {
                writer.Open($"if ({access} is {{ }} v{i})");
                EmitCsvWriteValue(writer, field, $"v{i}", i);
                writer.Close();
                writer.Open("else");
                writer.Line("writer.WriteNull();");
                writer.Close();
            }
            else
            {
                EmitCsvWriteValue(writer, field, access, i);
            }
        }

        writer.Line("writer.Flush();");
        writer.Close();
        writer.Close();
    }

    private static void EmitCsvReadValue(SourceWriter writer, CodecModel model, CodecFieldModel field, int index, string name)
    {
        var fail = "{ error = reader.Error; return false; }";
        if (field.IsOptional && field.Kind != ScalarKind.String)
        {
            writer.Open("if (!reader.IsNull)");
        }

        switch (field.Kind)
        {
            case null:
                writer.Line($"var json{index} = new {Json}(reader.FieldMemory(){JsonOptions(model)});");
                writer.Line($"if (!JsonCodec.Read{field.Nested}(ref json{index}, out var v{index}) || !json{index}.End()) {{ json{index}.InField({name}); error = json{index}.Error; return false; }}");
                break;
            case ScalarKind.Enum:
                writer.Line($"if (!JsonCodec.ParseEnum{field.Nested}(reader.Unescaped(), out var v{index})) {{ reader.Fail(\"field '\" + {name} + \"': not one of the enum's names\"); error = reader.Error; return false; }}");
                break;
            case ScalarKind.String:
                writer.Line($"if (!reader.ReadString({name}, out var v{index})) {fail}");
                if (!field.IsOptional)
                {
                    writer.Line($"v{index} ??= \"\"; // an empty CSV field is the empty string for a non-nullable string");
                }

                break;
            default:
                writer.Line($"if (!reader.Read{field.Kind}({name}, out var v{index})) {fail}");
                break;
        }

        writer.Line($"f{index} = v{index};");
        if (field.IsOptional && field.Kind != ScalarKind.String)
        {
            writer.Close();
        }
    }

    private static void EmitCsvWriteValue(SourceWriter writer, CodecFieldModel field, string value, int index)
    {
        switch (field.Kind)
        {
            case null:
                writer.Line($"var nested{index} = new global::System.Buffers.ArrayBufferWriter<byte>();");
                writer.Line($"var json{index} = new {JsonWriter}(nested{index});");
                writer.Line($"JsonCodec.Write{field.Nested}(ref json{index}, {value});");
                writer.Line($"json{index}.Flush();");
                writer.Line($"writer.WriteUtf8Field(nested{index}.WrittenSpan);");
                break;
            case ScalarKind.Enum:
                writer.Line($"var name{index} = JsonCodec.EnumName{field.Nested}({value});");
                writer.Line($"if (name{index}.IsEmpty) writer.WriteInt64((long){value}); else writer.WriteUtf8Field(name{index});");
                break;
            default:
                EmitJsonWriteValue(writer, field, value);
                break;
        }
    }

    // ---------------------------------------------------------------- Binary

    private static void EmitBinary(SourceWriter writer, CodecModel model)
    {
        var record = model.Root.FullName;
        Header(writer, model, "BinaryCodec", $"Compact binary codec of <c>{Xml(model.Root.DisplayName)}</c>: a version byte, then the fields in declaration order.", "bin", "LengthPrefixed", "default");
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static bool TryDecode({Memory} input, out {record} record, out {Error} error)");
        writer.Line($"var reader = new {Bin}(input);");
        writer.Open($"if (reader.Begin() && Read{model.Root.Identifier}(ref reader, out record) && reader.End())");
        writer.Line("error = default;");
        writer.Line("return true;");
        writer.Close();
        writer.Line("record = default;");
        writer.Line("error = reader.Error;");
        writer.Line("return false;");
        writer.Close();
        writer.Line();
        writer.Line("/// <inheritdoc/>");
        writer.Open($"public static void Encode(in {record} record, {BufferWriter} output)");
        writer.Line($"var writer = new {BinWriter}(output);");
        writer.Line($"Write{model.Root.Identifier}(ref writer, in record);");
        writer.Line("writer.Flush();");
        writer.Close();
        foreach (var type in Objects(model))
        {
            writer.Line();
            writer.Open($"internal static bool Read{type.Identifier}(ref {Bin} reader, out {type.FullName} value)");
            writer.Line("value = default;");
            DeclareLocals(writer, type, tracked: false);
            for (var i = 0; i < type.Fields.Count; i++)
            {
                EmitBinaryReadValue(writer, type.Fields[i], i);
            }

            EmitConstruct(writer, type);
            writer.Line("return true;");
            writer.Close();
            writer.Line();
            writer.Open($"internal static void Write{type.Identifier}(ref {BinWriter} writer, in {type.FullName} value)");
            for (var i = 0; i < type.Fields.Count; i++)
            {
                EmitBinaryWriteValue(writer, type.Fields[i], i);
            }

            writer.Close();
        }

        writer.Close();
    }

    private static void EmitBinaryReadValue(SourceWriter writer, CodecFieldModel field, int index)
    {
        var fail = $"{{ reader.InField({SourceWriter.Literal(field.WireName)}); return false; }}";
        var presence = field.IsNullableValue || field.IsNullableReference && field.Kind != ScalarKind.String;
        if (presence)
        {
            writer.Line($"if (!reader.ReadPresence(out var present{index})) {fail}");
            writer.Open($"if (present{index})");
        }

        var (call, convert) = field.Kind switch
        {
            null => ($"Read{field.Nested}(ref reader, out var v{index})", $"v{index}"),
            ScalarKind.Enum => ($"reader.ReadInt64(out var v{index})", $"({field.ValueTypeFullName})v{index}"),
            ScalarKind.SByte => ($"reader.ReadByte(out var v{index})", $"unchecked((sbyte)v{index})"),
            ScalarKind.UInt16 => ($"reader.ReadInt16(out var v{index})", $"unchecked((ushort)v{index})"),
            ScalarKind.UInt32 => ($"reader.ReadInt32(out var v{index})", $"unchecked((uint)v{index})"),
            ScalarKind.UInt64 => ($"reader.ReadInt64(out var v{index})", $"unchecked((ulong)v{index})"),
            ScalarKind.Char => ($"reader.ReadInt16(out var v{index})", $"unchecked((char)v{index})"),
            ScalarKind.String when field.IsOptional => ($"reader.ReadNullableString(out var v{index})", $"v{index}"),
            _ => ($"reader.Read{field.Kind}(out var v{index})", $"v{index}"),
        };
        writer.Line($"if (!{call}) {fail}");
        writer.Line($"f{index} = {convert};");
        if (presence)
        {
            writer.Close();
        }
    }

    private static void EmitBinaryWriteValue(SourceWriter writer, CodecFieldModel field, int index)
    {
        var access = "value." + field.MemberName;
        var presence = field.IsNullableValue || field.IsNullableReference && field.Kind != ScalarKind.String;
        if (presence)
        {
            writer.Line($"writer.WritePresence({access} is not null);");
            writer.Open($"if ({access} is {{ }} v{index})");
            access = $"v{index}";
        }

        writer.Line(field.Kind switch
        {
            null => $"Write{field.Nested}(ref writer, {access});",
            ScalarKind.Enum => $"writer.WriteInt64((long){access});",
            ScalarKind.SByte => $"writer.WriteByte(unchecked((byte){access}));",
            ScalarKind.UInt16 => $"writer.WriteInt16(unchecked((short){access}));",
            ScalarKind.UInt32 => $"writer.WriteInt32(unchecked((int){access}));",
            ScalarKind.UInt64 => $"writer.WriteInt64(unchecked((long){access}));",
            ScalarKind.Char => $"writer.WriteInt16(unchecked((short){access}));",
            ScalarKind.String when field.IsOptional => $"writer.WriteNullableString({access});",
            _ => $"writer.Write{field.Kind}({access});",
        });
        if (presence)
        {
            writer.Close();
        }
    }

    // ---------------------------------------------------------------- shared

    /// <summary>One local per field; with <paramref name="tracked"/>, a flag per field saying it was seen (JSON, where fields may be missing).</summary>
    private static void DeclareLocals(SourceWriter writer, CodecObjectModel type, bool tracked)
    {
        for (var i = 0; i < type.Fields.Count; i++)
        {
            var field = type.Fields[i];
            var nullable = field.IsNullableValue || field.IsReferenceType;
            writer.Line($"{field.ValueTypeFullName}{(nullable ? "?" : "")} f{i} = {field.Default ?? "default"};");
            if (tracked && field.IsRequired)
            {
                writer.Line($"var has{i} = false;");
            }
        }
    }

    private static void EmitRequiredChecks(SourceWriter writer, CodecObjectModel type, string fail)
    {
        for (var i = 0; i < type.Fields.Count; i++)
        {
            var field = type.Fields[i];
            if (field.IsRequired)
            {
                writer.Line($"if (!has{i}) return {fail}({SourceWriter.Literal($"field '{field.WireName}' is missing")});");
            }
        }
    }

    private static void EmitConstruct(SourceWriter writer, CodecObjectModel type, string target = "value")
    {
        string Argument(int i)
        {
            var field = type.Fields[i];
            return field.IsReferenceType && !field.IsOptional ? $"f{i}!" : $"f{i}";
        }

        var ordered = type.Fields.Select((f, i) => (Field: f, Index: i)).ToList();
        var arguments = ordered.Where(x => x.Field.ConstructorPosition >= 0).OrderBy(x => x.Field.ConstructorPosition).Select(x => Argument(x.Index));
        var initializers = ordered.Where(x => x.Field.ConstructorPosition < 0).Select(x => $"{x.Field.MemberName} = {Argument(x.Index)}").ToList();
        var construct = type.Construction == Construction.Constructor
            ? $"new {type.FullName}({string.Join(", ", arguments)})"
            : $"new {type.FullName}()";
        if (initializers.Count > 0)
        {
            construct += " { " + string.Join(", ", initializers) + " }";
        }

        writer.Line($"{target} = {construct};");
    }

    private static string JsonString(string name)
    {
        var escaped = new StringBuilder("\"");
        foreach (var c in name)
        {
            switch (c)
            {
                case '"': escaped.Append("\\\""); break;
                case '\\': escaped.Append("\\\\"); break;
                default:
                    if (c < 0x20)
                    {
                        escaped.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        escaped.Append(c);
                    }

                    break;
            }
        }

        return escaped.Append('"').ToString();
    }

    private static readonly char[] CsvSpecial = [',', '"', '\r', '\n'];

    private static string CsvName(string name)
        => name.IndexOfAny(CsvSpecial) >= 0 || name.StartsWith(" ", System.StringComparison.Ordinal) || name.EndsWith(" ", System.StringComparison.Ordinal)
            ? "\"" + name.Replace("\"", "\"\"") + "\""
            : name;

    /// <summary>The JSON reader's options beyond its input: none, unless the record opts into lenient numbers.</summary>
    private static string JsonOptions(CodecModel model) => model.LenientJsonNumbers ? ", lenientNumbers: true" : "";

    private static string U8(string text) => SourceWriter.Literal(text) + "u8";

    private static string Xml(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
