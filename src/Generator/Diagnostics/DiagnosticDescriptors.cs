using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Diagnostics;

/// <summary>
/// Every diagnostic Compiled reports. IDs are grouped by area: 00xx declarations of pipelines and operators,
/// 01xx the chain (sources, sinks, types, order), 02xx record codecs. Each links to its section of docs/diagnostics.md.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "Compiled";
    private const string HelpBase = "https://github.com/compiled-etl/compiled/blob/main/docs/diagnostics.md#";

    public static readonly DiagnosticDescriptor MissingPartial = Error(
        "CMPL0001",
        "Type must be partial",
        "The type '{0}' must be declared 'partial' so that Compiled can add the generated code; add the 'partial' modifier");

    public static readonly DiagnosticDescriptor UnsupportedPipelineType = Error(
        "CMPL0002",
        "Unsupported pipeline type",
        "Pipeline '{0}' cannot be {1}; declare it as a non-generic, non-static, non-abstract class");

    public static readonly DiagnosticDescriptor NeedsParameterlessConstructor = Error(
        "CMPL0003",
        "Pipeline needs a parameterless constructor",
        "Pipeline '{0}' has per-partition operators ('{1}'), so every partition gets its own pipeline object; add a parameterless constructor (public or internal)");

    public static readonly DiagnosticDescriptor RuntimeNotReferenced = Error(
        "CMPL0004",
        "Compiled.Runtime is not referenced",
        "Pipeline '{0}' needs the Compiled.Runtime package to run; add a reference to Compiled.Runtime");

    public static readonly DiagnosticDescriptor NoOperatorMethod = Error(
        "CMPL0005",
        "Operator class has no operator method",
        "'{0}' has no operator method; add a public method 'U Map(T)', 'bool Filter(T)' or 'void FlatMap(T, Emitter<U>)'");

    public static readonly DiagnosticDescriptor AmbiguousOperatorMethod = Error(
        "CMPL0006",
        "Operator class has more than one operator method",
        "'{0}' has more than one operator method ({1}); mark the one to use with [Operator]");

    public static readonly DiagnosticDescriptor UnsupportedSignature = Error(
        "CMPL0007",
        "Unsupported operator signature",
        "'{0}' cannot be used as {1}: {2}");

    public static readonly DiagnosticDescriptor MultipleStageAttributes = Error(
        "CMPL0008",
        "Member has more than one stage attribute",
        "'{0}' is marked with more than one of [Source], [Transform] and [Sink]; a member is one stage");

    public static readonly DiagnosticDescriptor StructOperatorStateLost = Error(
        "CMPL0009",
        "Struct operator state would be lost",
        "Operator '{0}' cannot keep its state: {1}");

    public static readonly DiagnosticDescriptor LanguageVersionTooOld = Error(
        "CMPL0010",
        "C# 11 or later is required",
        "'{0}' needs C# 11 or later (generated codecs and pipelines implement static abstract interface members); this project uses C# {1}: remove <LangVersion> or set it to 11 or later");

    public static readonly DiagnosticDescriptor NoSource = Error(
        "CMPL0101",
        "Pipeline has no source",
        "Pipeline '{0}' has no source; mark a property or field whose type implements ISource<T> with [Source]");

    public static readonly DiagnosticDescriptor MultipleSources = Error(
        "CMPL0102",
        "Sources of a pipeline produce different record types",
        "Pipeline '{0}' reads '{1}' ({2}) and '{3}' ({4}): sources of one record type are read as one stream, and a pipeline reads at most two record types, the two inputs of a [Join]; join them, map one to the other's type in a pipeline of its own, or read them in two pipelines");

    public static readonly DiagnosticDescriptor NoSink = Error(
        "CMPL0103",
        "Pipeline has no sink",
        "Pipeline '{0}' has no sink; mark a property or field whose type implements ISink<T>, or a method 'void M(T)', with [Sink]");

    public static readonly DiagnosticDescriptor TypeMismatch = Error(
        "CMPL0104",
        "Stage input does not match the output it reads",
        "Stage '{0}' takes '{1}' but the stage it reads from, '{2}', produces '{3}'; make '{0}' take '{3}', or add a transform from '{3}' to '{1}' between them");

    public static readonly DiagnosticDescriptor UnreachableStage = Error(
        "CMPL0105",
        "Stage can never be reached",
        "Stage '{0}' is declared before the source '{1}' and reads the stage above it, so no record can ever reach it; move it below the source, or name the stage it reads with Input = nameof(...)");

    public static readonly DiagnosticDescriptor UnconsumedStage = Error(
        "CMPL0106",
        "Stage output is never used",
        "Stage '{0}' comes after the last sink of its branch, so its output goes nowhere; move it above a sink or add a [Sink] that reads it");

    public static readonly DiagnosticDescriptor NotASource = Error(
        "CMPL0107",
        "Source member is not a source",
        "'{0}' is marked [Source] but its type '{1}' does not implement ISource<T>");

    public static readonly DiagnosticDescriptor NotASink = Error(
        "CMPL0108",
        "Sink member is not a sink",
        "'{0}' is marked [Sink] but its type '{1}' neither implements ISink<T> nor has a sink method 'void M(T)'");

    public static readonly DiagnosticDescriptor AmbiguousConnectorType = Error(
        "CMPL0109",
        "Connector implements its interface for several record types",
        "'{0}' implements {1} for more than one record type ({2}); use a connector with one record type");

    public static readonly DiagnosticDescriptor StagesInSeveralDeclarations = Error(
        "CMPL0110",
        "Stages spread over several partial declarations",
        "The stages of pipeline '{0}' are spread over more than one partial declaration, so their order is ambiguous; declare every [Source], [Transform] and [Sink] member in one declaration");

    public static readonly DiagnosticDescriptor NotADeadLetterSink = Error(
        "CMPL0111",
        "Dead-letter member is not a dead-letter sink",
        "'{0}' is marked [DeadLetters] but its type '{1}' does not implement ISink<DeadLetter>; use DeadLetterFile or another ISink<DeadLetter>");

    public static readonly DiagnosticDescriptor MultipleDeadLetterSinks = Error(
        "CMPL0112",
        "Pipeline has more than one dead-letter sink",
        "Pipeline '{0}' already sends dead letters to '{1}'; remove [DeadLetters] from '{2}'");

    public static readonly DiagnosticDescriptor WindowWithoutKeyBy = Error(
        "CMPL0120",
        "Window must follow a key selector",
        "Window '{0}' must be declared right after the [KeyBy] stage it reads from: windows are per key; add a method '[KeyBy] TKey M(T record)' just above it (a pipeline may have several key selectors and windows, each window right after its own)");

    public static readonly DiagnosticDescriptor KeyByWithoutWindow = Error(
        "CMPL0121",
        "Key selector must be followed by a window or a lookup",
        "Key selector '{0}' must be followed directly by its [Window] or [Lookup] stage: a keyed stream ends in a window or a lookup join; declare it right after the key selector");

    public static readonly DiagnosticDescriptor InvalidWindow = Error(
        "CMPL0123",
        "Invalid window declaration",
        "Window '{0}' has type '{1}'; a [Window] is a property or field of type WindowSpec<TIn, TAggregator> whose TAggregator implements IAggregator<TIn, TAcc, TOut> for the same TIn");

    public static readonly DiagnosticDescriptor InvalidLateData = Error(
        "CMPL0124",
        "Invalid late-data output",
        "Late-data output '{0}' needs {1}");

    public static readonly DiagnosticDescriptor InvalidEventTime = Error(
        "CMPL0125",
        "Event time has an unsupported type",
        "Event time '{0}' has type '{1}'; use long (Unix milliseconds), DateTime or DateTimeOffset");

    public static readonly DiagnosticDescriptor LookupWithoutKeyBy = Error(
        "CMPL0140",
        "Lookup must follow a key selector",
        "Lookup '{0}' must be declared right after the [KeyBy] stage whose key it looks up; add a method '[KeyBy] TKey M(T record)' just above it");

    public static readonly DiagnosticDescriptor InvalidLookup = Error(
        "CMPL0141",
        "Invalid lookup declaration",
        "Lookup '{0}' has type '{1}'; a [Lookup] is a property or field whose type implements ILookup<TKey, TRow> once (SqliteLookup<TKey, TRow>, PostgresLookup<TKey, TRow>)");

    public static readonly DiagnosticDescriptor LookupKeyMismatch = Error(
        "CMPL0142",
        "Lookup key type differs from the key selector's",
        "Lookup '{0}' looks up keys of type '{1}', but the key selector before it returns '{2}'; make them the same type");

    public static readonly DiagnosticDescriptor InvalidLookupRow = Error(
        "CMPL0143",
        "Lookup row type cannot be read",
        "Lookup '{0}' reads rows of type '{1}', but {2}");

    public static readonly DiagnosticDescriptor InvalidAsyncTransform = Error(
        "CMPL0144",
        "Asynchronous transform has an unsupported signature",
        "Asynchronous transform '{0}' {1}");

    public static readonly DiagnosticDescriptor InvalidAsyncOptions = Error(
        "CMPL0145",
        "Invalid [AsyncOptions]",
        "'{0}': {1}");

    public static readonly DiagnosticDescriptor InvalidJoin = Error(
        "CMPL0146",
        "Invalid join declaration",
        "Join '{0}' {1}");

    public static readonly DiagnosticDescriptor JoinKeyMismatch = Error(
        "CMPL0147",
        "Join inputs are keyed by different types",
        "Join '{0}' reads key selector '{1}' (returns '{2}') and key selector '{3}' (returns '{4}'); both inputs must be keyed by the same type");

    public static readonly DiagnosticDescriptor JoinWithoutEventTime = Error(
        "CMPL0148",
        "Join input has no event time",
        "Join '{0}' meets records by event time, but '{1}' has no [EventTime] member; mark one (long Unix milliseconds, DateTime or DateTimeOffset)");

    public static readonly DiagnosticDescriptor UnknownInput = Error(
        "CMPL0130",
        "Stage reads from an unknown stage",
        "Stage '{0}' reads from '{1}', which is not a stage of pipeline '{2}'; name a [Source], [Transform], [Window] or [Sink] member with Input = nameof(...)");

    public static readonly DiagnosticDescriptor InputCycle = Error(
        "CMPL0131",
        "Stages read from each other in a cycle",
        "Stage '{0}' reads from {1}, which leads back to it; records flow from the source to the sinks, so name a stage closer to the source as its input");

    public static readonly DiagnosticDescriptor BranchWithoutSink = Error(
        "CMPL0132",
        "Branch ends without a sink",
        "The branch that ends at '{0}' has no sink, so its records go nowhere; add a [Sink] that reads from '{0}', or remove the branch");

    public static readonly DiagnosticDescriptor ReadsKeySelector = Error(
        "CMPL0133",
        "Stage reads from a key selector",
        "Stage '{0}' reads from key selector '{1}', whose records go only to the window declared right after it; read from the stage '{1}' reads instead (Input = nameof({2}))");

    public static readonly DiagnosticDescriptor MapMeantAsFilter = Error(
        "CMPL0134",
        "Map where a filter was meant",
        "Stage '{0}' returns '{1}', so it is a map from '{2}' to '{1}', but '{3}' reads '{2}' from it; a filter returns bool — or, if it is a map, make '{3}' take '{1}'");

    public static readonly DiagnosticDescriptor UnsupportedFieldType = Error(
        "CMPL0201",
        "Field type has no codec",
        "Field '{0}' has type '{1}', which the generated codecs do not read or write; use a number, bool, char, string, Utf8Text, DateTime, DateTimeOffset, Guid, decimal, an enum, a nullable of those, or a nested record");

    public static readonly DiagnosticDescriptor FieldCannotBeDecoded = Error(
        "CMPL0202",
        "Field cannot be set by a decoder",
        "Field '{0}' of '{1}' can be read but not set: give it a setter or an init accessor, or take it as a constructor parameter of the same name");

    public static readonly DiagnosticDescriptor DuplicateFieldName = Error(
        "CMPL0203",
        "Two fields have the same name",
        "'{0}' has more than one field named '{1}'; give one of them another name with [Field(\"...\")]");

    public static readonly DiagnosticDescriptor RecursiveRecord = Error(
        "CMPL0204",
        "Record nests itself",
        "Field '{0}' nests '{1}' inside itself (or nests too deep); codecs write records as finite trees");

    public static readonly DiagnosticDescriptor GenericRecord = Error(
        "CMPL0205",
        "Generic record type",
        "'{0}' is generic; [Record] types must be non-generic so that their codecs have concrete field types");

    public static readonly DiagnosticDescriptor CodecOfUnmarkedType = Error(
        "CMPL0206",
        "Generated codec of a type that is not a partial [Record]",
        "'{0}' has no generated {1}: {2}");

    public static ImmutableArray<DiagnosticDescriptor> All { get; } = typeof(DiagnosticDescriptors)
        .GetFields()
        .Where(f => f.FieldType == typeof(DiagnosticDescriptor))
        .Select(f => (DiagnosticDescriptor)f.GetValue(null)!)
        .ToImmutableArray();

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = All.ToDictionary(d => d.Id);

    public static DiagnosticDescriptor Get(string id) => ById[id];

    private static DiagnosticDescriptor Error(string id, string title, string message) => new(
        id,
        title,
        message,
        Category,
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpBase + id.ToLowerInvariant());
}
