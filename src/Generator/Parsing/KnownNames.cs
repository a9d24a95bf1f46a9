namespace Compiled.Generator.Parsing;

/// <summary>Metadata names of the types the generator recognises.</summary>
internal static class KnownNames
{
    public const string PipelineAttribute = "Compiled.PipelineAttribute";
    public const string SourceAttribute = "Compiled.SourceAttribute";
    public const string TransformAttribute = "Compiled.TransformAttribute";
    public const string SinkAttribute = "Compiled.SinkAttribute";
    public const string OperatorAttribute = "Compiled.OperatorAttribute";
    public const string RecordAttribute = "Compiled.RecordAttribute";
    public const string DeadLettersAttribute = "Compiled.DeadLettersAttribute";
    public const string KeyAttribute = "Compiled.KeyAttribute";
    public const string KeyByAttribute = "Compiled.KeyByAttribute";
    public const string WindowAttribute = "Compiled.WindowAttribute";
    public const string EventTimeAttribute = "Compiled.EventTimeAttribute";
    public const string LateDataAttribute = "Compiled.LateDataAttribute";
    public const string LookupAttribute = "Compiled.LookupAttribute";
    public const string LookupInterface = "Compiled.ILookup`2";
    public const string Joined = "Compiled.Joined`2";
    public const string JoinAttribute = "Compiled.JoinAttribute";
    public const string JoinSpec = "Compiled.JoinSpec`2";
    public const string JoinFactory = "Compiled.Join";
    public const string Either = "Compiled.Either`2";
    public const string WindowSpec = "Compiled.WindowSpec`2";
    public const string WindowResult = "Compiled.WindowResult`2";
    public const string Aggregator = "Compiled.IAggregator`3";
    public const string SourceInterface = "Compiled.ISource`1";
    public const string SinkInterface = "Compiled.ISink`1";
    public const string Emitter = "Compiled.Emitter`1";
    public const string AsyncOptionsAttribute = "Compiled.AsyncOptionsAttribute";
    public const string ValueTask = "System.Threading.Tasks.ValueTask`1";
    public const string Enumerable = "System.Collections.Generic.IEnumerable`1";
    public const string CancellationToken = "System.Threading.CancellationToken";
    public const string RuntimeJob = "Compiled.Runtime.CompilerServices.PipelineJob`1";
}
