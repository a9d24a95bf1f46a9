namespace Compiled.Generator.Emitting;

/// <summary>Names of the runtime and generator types that generated code refers to, fully qualified.</summary>
internal static class Names
{
    public const string GeneratorName = "Compiled.Generator";
    public const string GeneratorVersion = "0.1.0";
    public const string GeneratedCode = "[global::System.CodeDom.Compiler.GeneratedCode(\"" + GeneratorName + "\", \"" + GeneratorVersion + "\")]";
    public const string Task = "global::System.Threading.Tasks.Task";
    public const string CancellationToken = "global::System.Threading.CancellationToken";
    public const string ReadOnlySpan = "global::System.ReadOnlySpan";
    public const string Exception = "global::System.Exception";
    public const string RecordBuffer = "global::Compiled.RecordBuffer";
    public const string Emitter = "global::Compiled.Emitter";
    public const string ISource = "global::Compiled.ISource";
    public const string RecordSchema = "global::Compiled.RecordSchema";
    public const string RecordField = "global::Compiled.RecordField";
    public const string FieldKind = "global::Compiled.FieldKind";
    public const string FieldVisitor = "global::Compiled.IFieldVisitor";
    public const string Descriptor = "global::Compiled.Runtime.PipelineDescriptor";
    public const string StageDescriptor = "global::Compiled.Runtime.StageDescriptor";
    public const string SegmentDescriptor = "global::Compiled.Runtime.SegmentDescriptor";
    public const string StageKind = "global::Compiled.Runtime.StageKind";
    public const string PipelineJob = "global::Compiled.Runtime.CompilerServices.PipelineJob";
    public const string IPipelineJob = "global::Compiled.Runtime.IPipelineJob";
    public const string CompiledPipeline = "global::Compiled.Runtime.ICompiledPipeline";
    public const string SinkBinder = "global::Compiled.Runtime.CompilerServices.SinkBinder";
    public const string PartitionContext = "global::Compiled.Runtime.CompilerServices.PartitionContext";
    public const string FusedSegment = "global::Compiled.Runtime.CompilerServices.FusedSegment";
    public const string Keyed = "global::Compiled.Runtime.CompilerServices.Keyed";
    public const string KeyedStage = "global::Compiled.Runtime.CompilerServices.KeyedStage";
    public const string LookupStage = "global::Compiled.Runtime.CompilerServices.LookupStage";
    public const string LookupSegment = "global::Compiled.Runtime.CompilerServices.ILookupSegment";
    public const string LookupMatches = "global::Compiled.Runtime.CompilerServices.LookupMatches";
    public const string JoinStage = "global::Compiled.Runtime.CompilerServices.JoinStage";
    public const string Either = "global::Compiled.Either";
    public const string AsyncStage = "global::Compiled.Runtime.CompilerServices.AsyncStage";
    public const string AsyncPartition = "global::Compiled.Runtime.CompilerServices.AsyncPartition";
    public const string AsyncSettings = "global::Compiled.Runtime.CompilerServices.AsyncSettings";
    public const string EventTimes = "global::Compiled.Runtime.CompilerServices.EventTimes";
    public const string SegmentProgress = "global::Compiled.Runtime.CompilerServices.SegmentProgress";
    public const string PipelineHost = "global::Compiled.Runtime.PipelineHost";
    public const string PipelineOptions = "global::Compiled.Runtime.PipelineOptions";
    public const string PipelineResult = "global::Compiled.Runtime.PipelineResult";
    public const string InvalidOperation = "global::System.InvalidOperationException";
}
