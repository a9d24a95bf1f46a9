using Compiled.Generator.Model;

namespace Compiled.Generator.Emitting;

/// <summary>Writes the <c>RecordSchema&lt;T&gt;</c> of a record type: field descriptions and a visitor over the fields.</summary>
internal static class SchemaEmitter
{
    public static string ClassName(RecordSchemaModel schema) => "__Schema_" + schema.Identifier;

    public static void Emit(SourceWriter writer, RecordSchemaModel schema)
    {
        var name = ClassName(schema);
        writer.Line($"/// <summary>The compile-time schema of <c>{schema.TypeDisplayName.Replace("<", "&lt;").Replace(">", "&gt;")}</c>: its fields in declaration order.</summary>");
        writer.Line(Names.GeneratedCode);
        writer.Open($"private sealed class {name} : {Names.RecordSchema}<{schema.TypeFullName}>");
        writer.Line($"public static readonly {name} Instance = new();");
        writer.Line();
        writer.Open($"private {name}() : base({SourceWriter.Literal(schema.TypeDisplayName)}, new {Names.RecordField}[]");
        foreach (var field in schema.Fields)
        {
            var ordinal = SourceWriter.Number(IndexOf(schema, field));
            writer.Line($"new {Names.RecordField}({ordinal}, {SourceWriter.Literal(field.Name)}, {Names.FieldKind}.{field.Kind}, typeof({field.ClrTypeFullName}), {SourceWriter.Bool(field.IsNullable)}{(field.IsKey ? ", isKey: true" : "")}),");
        }

        writer.Unindent();
        writer.Line("})");
        writer.Line("{");
        writer.Line("}");
        writer.Line();
        writer.Open($"public override void Visit<TVisitor>(in {schema.TypeFullName} record, ref TVisitor visitor)");
        foreach (var field in schema.Fields)
        {
            writer.Line($"visitor.Visit({SourceWriter.Number(IndexOf(schema, field))}, record.{field.Name});");
        }

        writer.Close();
        writer.Close();
    }

    private static int IndexOf(RecordSchemaModel schema, FieldModel field)
    {
        for (var i = 0; i < schema.Fields.Count; i++)
        {
            if (ReferenceEquals(schema.Fields[i], field))
            {
                return i;
            }
        }

        return -1;
    }
}
