namespace Compiled;

/// <summary>
/// A map operator: one record in, one out. The generator implements it on <see cref="TransformAttribute"/> classes
/// (explicitly, forwarding to the operator method) so tools and tests can drive an operator without reflection;
/// pipelines call the operator method directly, never through this interface.
/// </summary>
public interface IMapOperator<TIn, TOut>
{
    /// <summary>Transforms one record.</summary>
    TOut Map(TIn input);
}

/// <summary>A filter operator: keeps the records for which it returns true. See <see cref="IMapOperator{TIn, TOut}"/>.</summary>
public interface IFilterOperator<T>
{
    /// <summary>Whether to keep <paramref name="input"/>.</summary>
    bool Filter(T input);
}

/// <summary>A flatMap operator: emits zero or more records per input. See <see cref="IMapOperator{TIn, TOut}"/>.</summary>
public interface IFlatMapOperator<TIn, TOut>
{
    /// <summary>Emits the outputs of one record.</summary>
    void FlatMap(TIn input, Emitter<TOut> output);
}
