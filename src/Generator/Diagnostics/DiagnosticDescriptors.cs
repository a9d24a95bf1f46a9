using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Diagnostics;

/// <summary>
/// Every diagnostic Compiled reports. IDs are grouped by area: 00xx declarations of pipelines and operators,
/// 01xx the chain (sources, sinks, types, order; keyed stages from 0120), 02xx record codecs; each area has its own
/// category (<c>Compiled.Pipeline</c>, <c>Compiled.Windows</c>, <c>Compiled.Codecs</c>…), so a rule set can treat an area
/// as one. Each descriptor links to its section of docs/diagnostics.md. Parsing and planning hold these objects, never
/// their IDs as strings.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Declarations = "Compiled.Declarations";
    private const string Operators = "Compiled.Operators";
    private const string Pipeline = "Compiled.Pipeline";
    private const string Windows = "Compiled.Windows";
    private const string Lookups = "Compiled.Lookups";
    private const string Async = "Compiled.Async";
    private const string Joins = "Compiled.Joins";
    private const string Codecs = "Compiled.Codecs";
    private const string HelpBase = "https://github.com/compiled-etl/compiled/blob/main/docs/diagnostics.md#";

    // Declarations (00xx): the declaration of a pipeline or a [Record] type itself.

    public static readonly DiagnosticDescriptor MissingPartial = Error(
        "CMPL0001",
        Declarations,
        "Type must be partial",
        "The type '{0}' must be declared 'partial' so that Compiled can add the generated code; add the 'partial' modifier",
        "The generator adds members to the user's own type (and to every type around it), which C# allows only in a partial declaration.");

    public static readonly DiagnosticDescriptor UnsupportedPipelineType = Error(
        "CMPL0002",
        Declarations,
        "Unsupported pipeline type",
        "Pipeline '{0}' cannot be {1}; declare it as a non-generic, non-static, non-abstract class",
        "A pipeline is compiled into members of one concrete class that the runtime creates per partition: it cannot be generic, static or abstract, and must be a class.");

    public static readonly DiagnosticDescriptor NeedsParameterlessConstructor = Error(
        "CMPL0003",
        Declarations,
        "Pipeline needs a parameterless constructor",
        "Pipeline '{0}' has per-partition operators ('{1}'), so every partition gets its own pipeline object; add a parameterless constructor (public or internal)",
        "Stages that keep state in the pipeline object (instance methods, operator objects) need one pipeline object per partition, which the generated code creates with the parameterless constructor.");

    public static readonly DiagnosticDescriptor RuntimeNotReferenced = Error(
        "CMPL0004",
        Declarations,
        "Compiled.Runtime is not referenced",
        "Pipeline '{0}' needs the Compiled.Runtime package to run; add a reference to Compiled.Runtime",
        "The generated pipeline derives from Compiled.Runtime types; without the package there is nothing to run it.");

    public static readonly DiagnosticDescriptor LanguageVersionTooOld = Error(
        "CMPL0010",
        Declarations,
        "C# 11 or later is required",
        "'{0}' needs C# 11 or later (generated codecs and pipelines implement static abstract interface members); this project uses C# {1}: remove <LangVersion> or set it to 11 or later",
        "Generated codecs and pipelines implement static abstract interface members, which need C# 11.");

    // Operators (00xx): operator classes and stage signatures.

    public static readonly DiagnosticDescriptor NoOperatorMethod = Error(
        "CMPL0005",
        Operators,
        "Operator class has no operator method",
        "'{0}' has no operator method; add a public method 'U Map(T)', 'bool Filter(T)' or 'void FlatMap(T, Emitter<U>)'",
        "An operator class is called through one method whose signature says what it does: a map, a filter or a flatMap.");

    public static readonly DiagnosticDescriptor AmbiguousOperatorMethod = Error(
        "CMPL0006",
        Operators,
        "Operator class has more than one operator method",
        "'{0}' has more than one operator method ({1}); mark the one to use with [Operator]",
        "With several methods of operator shape the generator cannot tell which one the loop should call; [Operator] says which.");

    public static readonly DiagnosticDescriptor UnsupportedSignature = Error(
        "CMPL0007",
        Operators,
        "Unsupported operator signature",
        "'{0}' cannot be used as {1}: {2}",
        "The fused loop calls each stage directly, so its signature must be one the loop knows: a map, filter, flatMap, sink or key selector of one record.");

    public static readonly DiagnosticDescriptor MultipleStageAttributes = Error(
        "CMPL0008",
        Operators,
        "Member has more than one stage attribute",
        "'{0}' is marked with more than one of [Source], [Transform] and [Sink]; a member is one stage",
        "Each member is one stage of the chain; a member with two stage attributes would be two stages at once.");

    public static readonly DiagnosticDescriptor StructOperatorStateLost = Error(
        "CMPL0009",
        Operators,
        "Struct operator state would be lost",
        "Operator '{0}' cannot keep its state: {1}",
        "A struct operator is copied into the loop and written back; where it cannot be written back (a readonly member, a property without a setter) every change it makes would be lost.");

    // Pipeline (010x-011x, 013x): the chain — its sources, sinks, types, order and wiring.

    public static readonly DiagnosticDescriptor NoSource = Error(
        "CMPL0101",
        Pipeline,
        "Pipeline has no source",
        "Pipeline '{0}' has no source; mark a property or field whose type implements ISource<T> with [Source]",
        "Records enter a pipeline only through a [Source]; without one the pipeline has nothing to run.");

    public static readonly DiagnosticDescriptor MultipleSources = Error(
        "CMPL0102",
        Pipeline,
        "Sources of a pipeline produce different record types",
        "Pipeline '{0}' reads '{1}' ({2}) and '{3}' ({4}): sources of one record type are read as one stream, and a pipeline reads at most two record types, the two inputs of a [Join]; join them, map one to the other's type in a pipeline of its own, or read them in two pipelines",
        "Sources of one record type are read as one stream; a pipeline reads at most two record types, the two inputs of a [Join].");

    public static readonly DiagnosticDescriptor NoSink = Error(
        "CMPL0103",
        Pipeline,
        "Pipeline has no sink",
        "Pipeline '{0}' has no sink; mark a property or field whose type implements ISink<T>, or a method 'void M(T)', with [Sink]",
        "Records leave a pipeline only through a [Sink]; without one everything it computes is thrown away.");

    public static readonly DiagnosticDescriptor TypeMismatch = Error(
        "CMPL0104",
        Pipeline,
        "Stage input does not match the output it reads",
        "Stage '{0}' takes '{1}' but the stage it reads from, '{2}', produces '{3}'; make '{0}' take '{3}', or add a transform from '{3}' to '{1}' between them",
        "Each stage reads the records of the stage before it (or the one it names), so its input type must accept what that stage produces.");

    public static readonly DiagnosticDescriptor UnreachableStage = Error(
        "CMPL0105",
        Pipeline,
        "Stage can never be reached",
        "Stage '{0}' is declared before the source '{1}' and reads the stage above it, so no record can ever reach it; move it below the source, or name the stage it reads with Input = nameof(...)",
        "A stage reads the stage declared above it unless it names another; declared above the source, it reads nothing.");

    public static readonly DiagnosticDescriptor UnconsumedStage = Error(
        "CMPL0106",
        Pipeline,
        "Stage output is never used",
        "Stage '{0}' comes after the last sink of its branch, so its output goes nowhere; move it above a sink or add a [Sink] that reads it",
        "A transform after the last sink of its branch produces records that nothing reads.");

    public static readonly DiagnosticDescriptor NotASource = Error(
        "CMPL0107",
        Pipeline,
        "Source member is not a source",
        "'{0}' is marked [Source] but its type '{1}' does not implement ISource<T>",
        "A [Source] member is read through ISource<T>, which gives the pipeline its record type.");

    public static readonly DiagnosticDescriptor NotASink = Error(
        "CMPL0108",
        Pipeline,
        "Sink member is not a sink",
        "'{0}' is marked [Sink] but its type '{1}' neither implements ISink<T> nor has a sink method 'void M(T)'",
        "A [Sink] member is written through ISink<T>, or called through its one sink method 'void M(T)'.");

    public static readonly DiagnosticDescriptor AmbiguousConnectorType = Error(
        "CMPL0109",
        Pipeline,
        "Connector implements its interface for several record types",
        "'{0}' implements {1} for more than one record type ({2}); use a connector with one record type",
        "The record type of a connector is the T of its ISource<T> or ISink<T>; with several the pipeline's record type is ambiguous.");

    public static readonly DiagnosticDescriptor StagesInSeveralDeclarations = Error(
        "CMPL0110",
        Pipeline,
        "Stages spread over several partial declarations",
        "The stages of pipeline '{0}' are spread over more than one partial declaration, so their order is ambiguous; declare every [Source], [Transform] and [Sink] member in one declaration",
        "Stages run in declaration order; the order of members in different partial declarations is not defined.");

    public static readonly DiagnosticDescriptor NotADeadLetterSink = Error(
        "CMPL0111",
        Pipeline,
        "Dead-letter member is not a dead-letter sink",
        "'{0}' is marked [DeadLetters] but its type '{1}' does not implement ISink<DeadLetter>; use DeadLetterFile or another ISink<DeadLetter>",
        "Records that fail are written to the [DeadLetters] member as DeadLetter envelopes, so it must be an ISink<DeadLetter>.");

    public static readonly DiagnosticDescriptor MultipleDeadLetterSinks = Error(
        "CMPL0112",
        Pipeline,
        "Pipeline has more than one dead-letter sink",
        "Pipeline '{0}' already sends dead letters to '{1}'; remove [DeadLetters] from '{2}'",
        "A pipeline sends its failed records to one dead-letter sink.");

    public static readonly DiagnosticDescriptor UnknownInput = Error(
        "CMPL0130",
        Pipeline,
        "Stage reads from an unknown stage",
        "Stage '{0}' reads from '{1}', which is not a stage of pipeline '{2}'; name a [Source], [Transform], [Window] or [Sink] member with Input = nameof(...)",
        "Input = nameof(...) names the stage a stage reads from; it must be a stage of the same pipeline.");

    public static readonly DiagnosticDescriptor InputCycle = Error(
        "CMPL0131",
        Pipeline,
        "Stages read from each other in a cycle",
        "Stage '{0}' reads from {1}, which leads back to it; records flow from the source to the sinks, so name a stage closer to the source as its input",
        "Records flow from the source to the sinks; stages that read from each other in a circle never receive any.");

    public static readonly DiagnosticDescriptor BranchWithoutSink = Error(
        "CMPL0132",
        Pipeline,
        "Branch ends without a sink",
        "The branch that ends at '{0}' has no sink, so its records go nowhere; add a [Sink] that reads from '{0}', or remove the branch",
        "Every branch of the pipeline ends in a sink, or its records go nowhere.");

    public static readonly DiagnosticDescriptor ReadsKeySelector = Error(
        "CMPL0133",
        Pipeline,
        "Stage reads from a key selector",
        "Stage '{0}' reads from key selector '{1}', whose records go only to the window declared right after it; read from the stage '{1}' reads instead (Input = nameof({2}))",
        "A key selector's records cross the exchange only to the window, lookup or join it feeds.");

    public static readonly DiagnosticDescriptor MapMeantAsFilter = Error(
        "CMPL0134",
        Pipeline,
        "Map where a filter was meant",
        "Stage '{0}' returns '{1}', so it is a map from '{2}' to '{1}', but '{3}' reads '{2}' from it; a filter returns bool — or, if it is a map, make '{3}' take '{1}'",
        "A stage returning a number where the next stage reads the same records it took is a filter written as a map: filters return bool.");

    // Windows (012x): key selectors, windows, late data and event time.

    public static readonly DiagnosticDescriptor WindowWithoutKeyBy = Error(
        "CMPL0120",
        Windows,
        "Window must follow a key selector",
        "Window '{0}' must be declared right after the [KeyBy] stage it reads from: windows are per key; add a method '[KeyBy] TKey M(T record)' just above it (a pipeline may have several key selectors and windows, each window right after its own)",
        "Windows aggregate per key, so a [Window] reads the [KeyBy] stage declared right before it.");

    public static readonly DiagnosticDescriptor KeyByWithoutWindow = Error(
        "CMPL0121",
        Windows,
        "Key selector must be followed by a window or a lookup",
        "Key selector '{0}' must be followed directly by its [Window] or [Lookup] stage, or be read by a [Join]: a keyed stream ends in a window, a lookup join or a join of two streams; declare the window or lookup right after the key selector (a JoinSpec member needs the [Join] attribute)",
        "A key selector ends its loop with an exchange by key, and only a window, lookup or join reads keyed records.");

    public static readonly DiagnosticDescriptor InvalidWindow = Error(
        "CMPL0123",
        Windows,
        "Invalid window declaration",
        "Window '{0}' has type '{1}'; a [Window] is a property or field of type WindowSpec<TIn, TAggregator> whose TAggregator implements IAggregator<TIn, TAcc, TOut> for the same TIn",
        "A [Window] is a WindowSpec<TIn, TAggregator> whose aggregator takes the window's input records.");

    public static readonly DiagnosticDescriptor InvalidLateData = Error(
        "CMPL0124",
        Windows,
        "Invalid late-data output",
        "Late-data output '{0}' needs {1}",
        "A [LateData] member receives the records too late for every window of the window it names, so it is an ISink of that window's input type, one per window.");

    public static readonly DiagnosticDescriptor InvalidEventTime = Error(
        "CMPL0125",
        Windows,
        "Event time has an unsupported type",
        "Event time '{0}' has type '{1}'; use long (Unix milliseconds), DateTime or DateTimeOffset",
        "Event time is read as Unix milliseconds from a long, DateTime or DateTimeOffset member.");

    // Lookups (0140-0143): lookup joins.

    public static readonly DiagnosticDescriptor LookupWithoutKeyBy = Error(
        "CMPL0140",
        Lookups,
        "Lookup must follow a key selector",
        "Lookup '{0}' must be declared right after the [KeyBy] stage whose key it looks up; add a method '[KeyBy] TKey M(T record)' just above it",
        "A lookup joins each record with the rows of its key, so a [Lookup] reads the [KeyBy] stage declared right before it.");

    public static readonly DiagnosticDescriptor InvalidLookup = Error(
        "CMPL0141",
        Lookups,
        "Invalid lookup declaration",
        "Lookup '{0}' has type '{1}'; a [Lookup] is a property or field whose type implements ILookup<TKey, TRow> once (SqliteLookup<TKey, TRow>, PostgresLookup<TKey, TRow>)",
        "A [Lookup] is a property or field that implements ILookup<TKey, TRow> once.");

    public static readonly DiagnosticDescriptor LookupKeyMismatch = Error(
        "CMPL0142",
        Lookups,
        "Lookup key type differs from the key selector's",
        "Lookup '{0}' looks up keys of type '{1}', but the key selector before it returns '{2}'; make them the same type",
        "A lookup finds rows by the key its key selector returns, so both use the same key type.");

    public static readonly DiagnosticDescriptor InvalidLookupRow = Error(
        "CMPL0143",
        Lookups,
        "Lookup row type cannot be read",
        "Lookup '{0}' reads rows of type '{1}', but {2}",
        "A lookup builds rows from columns: its row type needs one [Key] member of the key type, and a constructor or settable members for its fields.");

    // Async (0144-0145): asynchronous transforms.

    public static readonly DiagnosticDescriptor InvalidAsyncTransform = Error(
        "CMPL0144",
        Async,
        "Asynchronous transform has an unsupported signature",
        "Asynchronous transform '{0}' {1}",
        "An asynchronous transform is a pipeline method returning ValueTask<U> or ValueTask<IEnumerable<U>> for one record, with an optional CancellationToken.");

    public static readonly DiagnosticDescriptor InvalidAsyncOptions = Error(
        "CMPL0145",
        Async,
        "Invalid [AsyncOptions]",
        "'{0}': {1}",
        "[AsyncOptions] bounds an asynchronous transform's calls in flight, timeout and retries; its values must be in range, and it applies only to asynchronous transforms.");

    // Joins (0146-0148): joins of two streams.

    public static readonly DiagnosticDescriptor InvalidJoin = Error(
        "CMPL0146",
        Joins,
        "Invalid join declaration",
        "Join '{0}' {1}",
        "A [Join] is a JoinSpec<TLeft, TRight> of two different record types, both produced by sources of the pipeline and keyed by key selectors in the loop of the sources.");

    public static readonly DiagnosticDescriptor JoinKeyMismatch = Error(
        "CMPL0147",
        Joins,
        "Join inputs are keyed by different types",
        "Join '{0}' reads key selector '{1}' (returns '{2}') and key selector '{3}' (returns '{4}'); both inputs must be keyed by the same type",
        "A join meets records of the two sides that have the same key, so both key selectors return the same type.");

    public static readonly DiagnosticDescriptor JoinWithoutEventTime = Error(
        "CMPL0148",
        Joins,
        "Join input has no event time",
        "Join '{0}' meets records by event time, but '{1}' has no [EventTime] member; mark one (long Unix milliseconds, DateTime or DateTimeOffset)",
        "A join meets records by event time, so both record types need an [EventTime] member.");

    // Codecs (02xx): the codecs of [Record] types.

    public static readonly DiagnosticDescriptor UnsupportedFieldType = Error(
        "CMPL0201",
        Codecs,
        "Field type has no codec",
        "Field '{0}' has type '{1}', which the generated codecs do not read or write; use a number, bool, char, string, Utf8Text, DateTime, DateTimeOffset, Guid, decimal, an enum, a nullable of those, or a nested record",
        "Generated codecs read and write numbers, bool, char, string, Utf8Text, DateTime, DateTimeOffset, Guid, decimal, enums, nullables of those and nested records.");

    public static readonly DiagnosticDescriptor FieldCannotBeDecoded = Error(
        "CMPL0202",
        Codecs,
        "Field cannot be set by a decoder",
        "Field '{0}' of '{1}' can be read but not set: give it a setter or an init accessor, or take it as a constructor parameter of the same name",
        "A decoder builds the record from its fields: each field must be a constructor parameter, or have a setter or init accessor.");

    public static readonly DiagnosticDescriptor DuplicateFieldName = Error(
        "CMPL0203",
        Codecs,
        "Two fields have the same name",
        "'{0}' has more than one field named '{1}'; give one of them another name with [Field(\"...\")]",
        "Each field of a record is one name in JSON and one column in CSV, so two fields cannot share a name.");

    public static readonly DiagnosticDescriptor RecursiveRecord = Error(
        "CMPL0204",
        Codecs,
        "Record nests itself",
        "Field '{0}' nests '{1}' inside itself (or nests too deep); codecs write records as finite trees",
        "Codecs write a record as a finite tree of nested objects; a record that contains itself (or nests very deep) has none.");

    public static readonly DiagnosticDescriptor GenericRecord = Error(
        "CMPL0205",
        Codecs,
        "Generic record type",
        "'{0}' is generic; [Record] types must be non-generic so that their codecs have concrete field types",
        "Codecs are generated for concrete field types, so a [Record] type cannot have type parameters.");

    public static readonly DiagnosticDescriptor CodecOfUnmarkedType = Error(
        "CMPL0206",
        Codecs,
        "Generated codec of a type that is not a partial [Record]",
        "'{0}' has no generated {1}: {2}",
        "JsonCodec, CsvCodec and BinaryCodec are generated only into types that are [Record] and partial.");

    public static ImmutableArray<DiagnosticDescriptor> All { get; } = typeof(DiagnosticDescriptors)
        .GetFields()
        .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
        .Select(f => (DiagnosticDescriptor)f.GetValue(null)!)
        .ToImmutableArray();

    private static DiagnosticDescriptor Error(string id, string category, string title, string message, string description) => new(
        id,
        title,
        message,
        category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: description,
        helpLinkUri: HelpBase + id.ToLowerInvariant());
}
