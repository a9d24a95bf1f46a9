using System.Linq;
using Compiled.Generator.Model;

namespace Compiled.Generator.Emitting;

/// <summary>Writes the <c>RecordSchema&lt;T&gt;</c> of a record type: field descriptions and a visitor over the fields.</summary>
internal static class SchemaEmitter
{
    public static string ClassName(RecordSchemaModel schema) => ClassName(schema.Identifier);

    public static string ClassName(string identifier) => "__Schema_" + identifier;

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
            writer.Line($"new {Names.RecordField}({ordinal}, {SourceWriter.Literal(field.Name)}, {Names.FieldKind}.{field.Kind?.ToString() ?? "Other"}, typeof({field.ClrTypeFullName}), {SourceWriter.Bool(field.IsNullable)}{(field.IsKey ? ", isKey: true" : "")}),");
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
        if (schema.Creates && schema.Construction is { } construction)
        {
            EmitCreate(writer, schema, construction);
        }

        writer.Close();
    }

    /// <summary>
    /// <c>Create</c>: reads every field in order into a local (the source is asked once per field, in field order), then
    /// calls the constructor with its parameters and sets the rest by object initializer.
    /// </summary>
    private static void EmitCreate(SourceWriter writer, RecordSchemaModel schema, Construction construction)
    {
        writer.Line();
        writer.Line("public override bool CanCreate => true;");
        writer.Line();
        writer.Open($"public override {schema.TypeFullName} Create<TSource>(ref TSource source)");
        for (var i = 0; i < schema.Fields.Count; i++)
        {
            var field = schema.Fields[i];
            writer.Line($"var f{SourceWriter.Number(i)} = source.Read<{field.MemberTypeFullName}>({SourceWriter.Number(i)});");
        }

        var arguments = Enumerable.Range(0, schema.Fields.Count)
            .Where(i => schema.Fields[i].ConstructorPosition >= 0)
            .OrderBy(i => schema.Fields[i].ConstructorPosition)
            .Select(i => "f" + SourceWriter.Number(i));
        var initializers = Enumerable.Range(0, schema.Fields.Count)
            .Where(i => construction == Construction.Initializer || schema.Fields[i].ConstructorPosition < 0)
            .Select(i => $"{schema.Fields[i].Name} = f{SourceWriter.Number(i)}")
            .ToList();
        var call = construction == Construction.Constructor ? $"new {schema.TypeFullName}({string.Join(", ", arguments)})" : $"new {schema.TypeFullName}()";
        writer.Line(initializers.Count == 0 ? $"return {call};" : $"return {call} {{ {string.Join(", ", initializers)} }};");
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
