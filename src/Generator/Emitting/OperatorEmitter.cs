using Compiled.Generator.Model;

namespace Compiled.Generator.Emitting;

/// <summary>
/// Writes the generated half of a reusable operator class: the operator interface (<c>IMapOperator</c>,
/// <c>IFilterOperator</c>, <c>IFlatMapOperator</c>) implemented explicitly by forwarding to the user's method, so the
/// operator can be driven by tests and tools without reflection. Pipelines never call through the interface.
/// </summary>
internal static class OperatorEmitter
{
    public static (string HintName, string Source)? Emit(OperatorClassModel model)
    {
        if (!model.IsPartial || model.Diagnostics.Count > 0 || model.AlreadyImplementsInterface || model.InputType is null || model.OutputType is null)
        {
            return null;
        }

        var input = model.InputType.FullName;
        var output = model.OutputType.FullName;
        var (interfaceType, member) = model.Shape switch
        {
            StageShape.Map => ($"global::Compiled.IMapOperator<{input}, {output}>", $"{output} global::Compiled.IMapOperator<{input}, {output}>.Map({input} input) => {model.MethodName}(input);"),
            StageShape.Filter => ($"global::Compiled.IFilterOperator<{input}>", $"bool global::Compiled.IFilterOperator<{input}>.Filter({input} input) => {model.MethodName}(input);"),
            _ => ($"global::Compiled.IFlatMapOperator<{input}, {output}>", $"void global::Compiled.IFlatMapOperator<{input}, {output}>.FlatMap({input} input, global::Compiled.Emitter<{output}> output) => {model.MethodName}(input, output);"),
        };

        var writer = new SourceWriter();
        TypeScopes.Begin(writer, model.Namespace, model.ContainingTypes);
        writer.Open($"partial {model.Keyword} {model.TypeName}{model.TypeParameters} : {interfaceType}");
        writer.Line(Names.GeneratedCode);
        writer.Line(member);
        writer.Close();
        TypeScopes.End(writer, model.Namespace, model.ContainingTypes);
        return (TypeScopes.HintName(model.Namespace, model.ContainingTypes, model.TypeName + model.TypeParameters, ".Operator"), writer.ToString());
    }
}
