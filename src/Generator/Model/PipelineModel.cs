namespace Compiled.Generator.Model;

/// <summary>Everything the generator knows about one <c>[Pipeline]</c> class, as plain values.</summary>
internal sealed record PipelineModel(
    string Namespace,
    string TypeName,
    string FullName,
    string PipelineName,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    bool IsPartial,
    bool HasParameterlessConstructor,
    bool RuntimeAvailable,
    LocationInfo? Location,
    EquatableArray<StageModel> Stages,
    EquatableArray<RecordSchemaModel> Schemas,
    EquatableArray<DiagnosticInfo> Diagnostics,
    ErrorPolicy ErrorPolicy = ErrorPolicy.DeadLetter,
    DeadLetterMemberModel? DeadLetters = null,
    EquatableArray<LateDataMemberModel> LateData = default);

/// <summary>
/// What a pipeline does with a record that fails (<c>[Pipeline(ErrorPolicy = ...)]</c>): the values of
/// <c>Compiled.ErrorPolicy</c>, which the attribute carries, and its names, which the descriptor is written with.
/// </summary>
internal enum ErrorPolicy
{
    DeadLetter = 0,
    Skip = 1,
    FailFast = 2,
}

/// <summary>A member a pipeline declares with <c>[LateData]</c>: the side output of the window named <paramref name="Window"/>.</summary>
internal sealed record LateDataMemberModel(string Name, bool IsStatic, TypeRef RecordType, string Window, LocationInfo? Location);

/// <summary>
/// What a <c>[Window]</c> stage aggregates with: the aggregator type and its accumulator and result types, and the
/// key type of the <c>[KeyBy]</c> before it; <paramref name="KeyCodec"/> and <paramref name="AccumulatorCodec"/> are the
/// expressions of the key's and accumulator's checkpoint codecs, null when the type cannot be checkpointed.
/// </summary>
internal sealed record WindowModel(TypeRef Key, TypeRef Aggregator, TypeRef Accumulator, TypeRef Result, string? KeyCodec, string? AccumulatorCodec);

/// <summary>A mutable field of an operator object that the fast loop saves before a batch and sets back when a record fails.</summary>
/// <param name="DeclaringType">The class that declares it (fully qualified).</param>
/// <param name="Name">Its metadata name (an auto-property's backing field: <c>&lt;P&gt;k__BackingField</c>).</param>
/// <param name="Type">Its type (fully qualified).</param>
internal sealed record SavedField(string DeclaringType, string Name, string Type);

/// <summary>
/// What a <c>[Lookup]</c> stage joins with: the key type of the <c>[KeyBy]</c> before it, the row type, and the row's
/// <c>[Key]</c> member it matches.
/// </summary>
internal sealed record LookupModel(TypeRef Key, TypeRef Row, string KeyMember);

/// <summary>
/// What an asynchronous transform calls: whether it returns a sequence (a flatMap), whether it takes a
/// <c>CancellationToken</c>, and the settings of its <c>[AsyncOptions]</c> (the attribute's defaults without one).
/// </summary>
internal sealed record AsyncModel(bool Flat, bool TakesToken, int MaxInFlight, int TimeoutMilliseconds, int MaxAttempts, int RetryBackoffMilliseconds, bool Ordered, bool Spread);

/// <summary>
/// What a <c>[Join]</c> of two streams joins: the left and right record types, the key selectors it reads (the nearest
/// <c>[KeyBy]</c> above it taking each type) and their common key type, how each side's event time is read, and the
/// checkpoint codecs of the key and of each side's records (null when the type cannot be checkpointed), and the right
/// record's <c>ChangeKind</c> member.
/// </summary>
internal sealed record JoinModel(TypeRef Key, TypeRef Left, TypeRef Right, string LeftKeyBy, string RightKeyBy, string LeftTime, string RightTime, string? KeyCodec, string? LeftCodec, string? RightCodec)
{
    /// <summary>The right record's member of type <c>ChangeKind</c>, if it has one: in a table join, what a change does to the row.</summary>
    public string? RightChange { get; init; }
}

/// <summary>The member a pipeline declares with <c>[DeadLetters]</c>.</summary>
internal sealed record DeadLetterMemberModel(string Name, bool IsStatic);

/// <summary>A type that encloses a nested pipeline or operator: the generated partial must repeat it.</summary>
internal sealed record ContainingTypeModel(string Keyword, string Name);

/// <summary>The role an attribute gives a member.</summary>
internal enum StageRole
{
    Source,
    Transform,
    Sink,
}

/// <summary>What a stage does to the stream.</summary>
internal enum StageShape
{
    /// <summary>A stage whose declaration is invalid; it has been diagnosed.</summary>
    Invalid,
    Source,
    Map,
    Filter,
    FlatMap,
    /// <summary>A connector (<c>ISink&lt;T&gt;</c>) written through an output port.</summary>
    ConnectorSink,
    /// <summary>A method <c>void M(T)</c> called inline: a pipeline method, or the sink method of an operator object.</summary>
    MethodSink,
    /// <summary>A key selector <c>TKey M(T)</c>: ends the loop with a hash exchange.</summary>
    KeyBy,
    /// <summary>A keyed window (<c>WindowSpec&lt;T, TAggregator&gt;</c>): starts the loop after the exchange.</summary>
    Window,
    /// <summary>A lookup join (<c>ILookup&lt;TKey, TRow&gt;</c>) behind a key selector's exchange: starts the loop after it.</summary>
    Lookup,
    /// <summary>An asynchronous transform (<c>ValueTask&lt;U&gt; M(T)</c>): the loop before it ends, the records wait for their calls, and a loop starts after it.</summary>
    Async,
    /// <summary>A join of two streams (<c>JoinSpec&lt;TLeft, TRight&gt;</c>) behind the exchange both inputs' key selectors write into: starts the loop after it.</summary>
    Join,
}

/// <summary>How the generated loop holds an operator object.</summary>
internal enum OperatorStorage
{
    /// <summary>No object: a method of the pipeline, or a static operator method.</summary>
    None,

    /// <summary>A class instance: read once per partition into a segment field.</summary>
    Reference,

    /// <summary>A mutable struct: copied into a local for the batch (its fields stay in registers) and written back to its member after every call.</summary>
    HoistedStruct,

    /// <summary>A readonly struct (or a readonly operator method): copied into a local for the batch, never written back.</summary>
    ReadOnlyStruct,

    /// <summary>A struct in a static member: called in place on the member.</summary>
    StaticStruct,
}

/// <summary>How a stage member is declared.</summary>
internal enum MemberKind
{
    Method,
    Property,
    Field,
}

/// <summary>
/// One <c>[Source]</c>, <c>[Transform]</c> or <c>[Sink]</c> member of a pipeline.
/// </summary>
/// <param name="Order">Declaration order within the pipeline.</param>
/// <param name="MemberName">The member's name.</param>
/// <param name="IsStatic">Whether the member itself is static.</param>
/// <param name="ComponentType">For property/field stages: the member's type (operator class, source, sink).</param>
/// <param name="OperatorMethod">The method the loop calls: the pipeline method, or the operator class method.</param>
/// <param name="OperatorMethodIsStatic">Whether that method is static.</param>
/// <param name="InputParameterModifier">"in " when the operator takes its input by readonly reference, else "".</param>
/// <param name="NeedsPipelineInstance">Whether each partition needs its own pipeline object for this stage (instance state).</param>
/// <param name="EventTime">For a window: how to read its input record's event time — an <c>[EventTime]</c> member, or <c>End - 1</c> for a window's results — or null.</param>
/// <param name="Window">For a window: its aggregate and key types.</param>
/// <param name="InputName">The stage it reads from when the attribute names one (<c>Input = nameof(...)</c>); null: the stage declared just above.</param>
/// <param name="Lookup">For a lookup join: its key and row types.</param>
/// <param name="ValueState">For a mutable struct operator: whether its fields hold only values (no references), so that setting it back undoes all it did.</param>
/// <param name="Join">For a join of two streams: its inputs and types.</param>
/// <param name="SavedState">
/// For an operator object of a class whose state is all in fields holding values: those of its fields that can change
/// (empty when none can: <paramref name="Immutable"/>); the fast loop saves them before a batch and sets them back if
/// a record fails. Null: its state cannot be set back (it keeps the marked loop).
/// </param>
internal sealed record StageModel(
    int Order,
    string MemberName,
    StageRole Role,
    StageShape Shape,
    MemberKind MemberKind,
    bool IsStatic,
    TypeRef? ComponentType,
    string? OperatorMethod,
    bool OperatorMethodIsStatic,
    string InputParameterModifier,
    TypeRef? InputType,
    TypeRef? OutputType,
    bool NeedsPipelineInstance,
    LocationInfo? Location,
    OperatorStorage Storage = OperatorStorage.None,
    string? EventTime = null,
    WindowModel? Window = null,
    string? InputName = null,
    bool ValueState = false,
    bool Immutable = false,
    LookupModel? Lookup = null,
    AsyncModel? Async = null,
    JoinModel? Join = null,
    EquatableArray<SavedField>? SavedState = null)
{
    public bool IsValid => Shape != StageShape.Invalid;

    /// <summary>Whether the stage sits behind a key selector's exchange and starts a loop (a window, a lookup or a join).</summary>
    public bool IsKeyed => Shape is StageShape.Window or StageShape.Lookup or StageShape.Join;

    /// <summary>Whether the stage starts a loop of its own: a keyed stage, or an asynchronous transform (records wait for their calls between the loops).</summary>
    public bool StartsLoop => IsKeyed || Shape == StageShape.Async;

    /// <summary>For a keyed stage: the key type of the exchange in front of it.</summary>
    public TypeRef? Key => Window?.Key ?? Lookup?.Key ?? Join?.Key;
}

/// <summary>The compile-time schema of a record type used with a connector.</summary>
internal sealed record RecordSchemaModel(string TypeFullName, string TypeDisplayName, string Identifier, EquatableArray<FieldModel> Fields)
{
    /// <summary>How <c>Create</c> builds the type from its fields; null when it cannot (a field neither a constructor parameter nor settable).</summary>
    public Construction? Construction { get; init; }

    /// <summary>Whether the schema must build records (<c>Create</c>): the row type of a lookup.</summary>
    public bool Creates { get; init; }

    /// <summary>The type's identity (<see cref="TypeRef.Identity"/>: without nullable annotations), which uses of the type are matched by.</summary>
    public string TypeIdentity { get; init; } = "";
}

/// <summary>One field of a record schema.</summary>
/// <param name="Kind">Its runtime <c>FieldKind</c>; null for <c>Other</c> (not a scalar, or a scalar <c>FieldKind</c> has no kind for).</param>
internal sealed record FieldModel(string Name, ScalarKind? Kind, string ClrTypeFullName, bool IsNullable, bool IsKey = false)
{
    /// <summary>The member's declared type (a nullable value type as such), for reading its value.</summary>
    public string MemberTypeFullName { get; init; } = ClrTypeFullName;

    /// <summary>The constructor parameter the field is passed as when the schema builds a record, or -1 (set by initializer).</summary>
    public int ConstructorPosition { get; init; } = -1;
}

/// <summary>A reusable <c>[Transform]</c> operator class.</summary>
internal sealed record OperatorClassModel(
    string Namespace,
    string TypeName,
    string TypeParameters,
    string Keyword,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    bool IsPartial,
    StageShape Shape,
    string? MethodName,
    bool MethodIsStatic,
    string InputParameterModifier,
    TypeRef? InputType,
    TypeRef? OutputType,
    bool AlreadyImplementsInterface,
    LocationInfo? Location,
    EquatableArray<DiagnosticInfo> Diagnostics);
