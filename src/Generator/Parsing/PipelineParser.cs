using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Generator.Parsing;

/// <summary>Reads a <c>[Pipeline]</c> class into a <see cref="PipelineModel"/>, recording what is wrong with each declaration.</summary>
internal static class PipelineParser
{
    private static readonly string[] StageAttributes = [KnownNames.SourceAttribute, KnownNames.TransformAttribute, KnownNames.SinkAttribute, KnownNames.KeyByAttribute, KnownNames.WindowAttribute, KnownNames.LookupAttribute, KnownNames.JoinAttribute];

    public static PipelineModel Parse(INamedTypeSymbol type, Compilation compilation, CancellationToken cancellationToken)
    {
        var diagnostics = new List<DiagnosticInfo>();
        var location = Symbols.IdentifierLocation(type);
        var display = Symbols.DisplayName(type);

        var isPartial = Symbols.IsPartial(type);
        if (!isPartial)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingPartial, location, display));
        }

        foreach (var container in Symbols.NonPartialContainers(type))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MissingPartial, Symbols.IdentifierLocation(container), Symbols.DisplayName(container)));
        }

        if (UnsupportedTypeReason(type) is { } reason)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedPipelineType, location, display, reason));
        }

        var runtimeAvailable = compilation.GetTypeByMetadataName(KnownNames.RuntimeJob) is not null;
        if (!runtimeAvailable)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.RuntimeNotReferenced, location, display));
        }

        var stageMembers = StageMembers(type, cancellationToken);
        if (stageMembers.Select(m => m.Group).Distinct().Count() > 1)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StagesInSeveralDeclarations, location, display));
        }

        var stages = new List<StageModel>();
        var schemas = new List<RecordSchemaModel>();
        (ITypeSymbol Key, ITypeSymbol Input)? keyType = null; // the key and input of the [KeyBy] stage just before, for the [Window] or [Lookup] after it
        var windowInputs = new List<(string Name, ITypeSymbol? Input)>(); // every [Window] and [Join] member, for [LateData]
        var keyBys = new List<(string Name, ITypeSymbol Key, ITypeSymbol Input)>(); // every [KeyBy] so far, for a [Join]
        foreach (var (member, _) in stageMembers)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var stage = ParseStage(member, stages.Count, diagnostics, compilation, keyType, keyBys, schemas, out var nextKey);
            if (nextKey is { } selected)
            {
                keyBys.Add((member.Name, selected.Key, selected.Input));
            }

            if (Symbols.HasAttribute(member, KnownNames.WindowAttribute))
            {
                windowInputs.Add((member.Name, MemberType(member) is { } windowType ? WindowInput(windowType) : null));
            }
            else if (Symbols.HasAttribute(member, KnownNames.JoinAttribute))
            {
                windowInputs.Add((member.Name, stage.InputType is not null && MemberType(member) is INamedTypeSymbol { TypeArguments.Length: 2 } join && compilation.GetTypeByMetadataName(KnownNames.Either) is { } either
                    ? either.Construct(join.TypeArguments[0], join.TypeArguments[1])
                    : null)); // a join's late records are either side's
            }

            keyType = nextKey;
            stages.Add(stage);
            var recordType = stage.Shape switch
            {
                StageShape.Source => SourceOrSinkArgument(member, KnownNames.SourceInterface),
                StageShape.ConnectorSink => SourceOrSinkArgument(member, KnownNames.SinkInterface),
                _ => null,
            };

            if (recordType is not null && SchemaParser.Parse(recordType, ScalarTypes.For(compilation)) is { } schema)
            {
                // A source's record type can be built from its fields: sources that read rows (CDC) build records with it.
                var creates = stage.Shape == StageShape.Source || schemas.Any(s => s.Identifier == schema.Identifier && s.Creates);
                schemas.RemoveAll(s => s.Identifier == schema.Identifier);
                schemas.Add(schema with { Creates = creates });
            }
        }

        WithPipelineState(type, stageMembers, stages, compilation, cancellationToken);
        var attribute = type.GetAttributes().FirstOrDefault(a => a.AttributeClass is { } c && Symbols.IsNamed(c, KnownNames.PipelineAttribute));
        var name = attribute?.NamedArguments.FirstOrDefault(a => a.Key == "Name").Value.Value as string;
        var policy = attribute?.NamedArguments.FirstOrDefault(a => a.Key == "ErrorPolicy").Value.Value is int value && System.Enum.IsDefined(typeof(ErrorPolicy), value)
            ? (ErrorPolicy)value
            : ErrorPolicy.DeadLetter;

        var deadLetters = ParseDeadLetters(type, diagnostics);
        var lateData = ParseLateData(type, windowInputs, diagnostics);
        foreach (var late in lateData)
        {
            if (SourceOrSinkArgument(type.GetMembers(late.Name).First(), KnownNames.SinkInterface) is { } lateType
                && SchemaParser.Parse(lateType, ScalarTypes.For(compilation)) is { } lateSchema && !schemas.Any(s => s.Identifier == lateSchema.Identifier))
            {
                schemas.Add(lateSchema);
            }
        }

        return new PipelineModel(
            Symbols.NamespaceOf(type),
            type.Name,
            Symbols.IdentityName(type),
            string.IsNullOrWhiteSpace(name) ? type.Name : name!,
            Symbols.ContainingTypes(type),
            isPartial,
            type.InstanceConstructors.Any(c => c.Parameters.Length == 0),
            runtimeAvailable,
            location,
            stages.ToEquatableArray(),
            schemas.ToEquatableArray(),
            diagnostics.ToEquatableArray(),
            policy,
            deadLetters,
            lateData.ToEquatableArray());
    }

    /// <summary>
    /// Gives each instance method stage (a map, filter, flatMap or sink method that uses the pipeline object's fields)
    /// the pipeline fields it writes, to save as an operator object's are (<see cref="OperatorShapes.StateOf"/>): when
    /// the pipeline class passes that test — the fields holding its connectors, operator objects, dead letters and late
    /// data left out — and the method's body, read with what it calls, writes nothing but those fields
    /// (<see cref="PipelineWrites"/>). Only the fields the stage writes are saved and set back: others may be written
    /// meanwhile by code outside the loop (another partition's object handing its totals to this one when disposed).
    /// </summary>
    private static void WithPipelineState(INamedTypeSymbol type, List<(ISymbol Member, int Group)> members, List<StageModel> stages, Compilation compilation, CancellationToken cancellationToken)
    {
        static bool Saveable(StageModel s) => s is { IsValid: true, MemberKind: MemberKind.Method, OperatorMethodIsStatic: false, Shape: StageShape.Map or StageShape.Filter or StageShape.FlatMap or StageShape.MethodSink };
        if (!stages.Any(Saveable))
        {
            return;
        }

        string[] connected = [.. StageAttributes, KnownNames.DeadLettersAttribute, KnownNames.LateDataAttribute];
        var state = OperatorShapes.StateOf(type, field => connected.Any(a => Symbols.HasAttribute(field.AssociatedSymbol ?? field, a)));
        if (state is null)
        {
            return;
        }

        for (var i = 0; i < stages.Count; i++)
        {
            if (!Saveable(stages[i]) || members[i].Member is not IMethodSymbol method || PipelineWrites.Of(type, method, compilation, cancellationToken) is not { } written)
            {
                continue;
            }

            var names = new HashSet<string>(written.Select(f => f.Name));
            var saved = state.Where(f => names.Remove(f.Name)).ToEquatableArray();
            if (names.Count == 0)
            {
                stages[i] = stages[i] with { SavedState = saved }; // every field it writes can be saved (a readonly one cannot be written)
            }
        }
    }

    /// <summary>
    /// The <c>[LateData]</c> members: each an <c>ISink&lt;T&gt;</c> of the input records of the window it names
    /// (<c>Window = nameof(...)</c>, which may be left out when the pipeline has one window), one per window.
    /// </summary>
    private static List<LateDataMemberModel> ParseLateData(INamedTypeSymbol type, List<(string Name, ITypeSymbol? Input)> windows, List<DiagnosticInfo> diagnostics)
    {
        var found = new List<LateDataMemberModel>();
        foreach (var member in type.GetMembers().Where(m => m is IPropertySymbol or IFieldSymbol && Symbols.HasAttribute(m, KnownNames.LateDataAttribute)))
        {
            var location = Symbols.IdentifierLocation(member);
            var named = NamedArgument(member, KnownNames.LateDataAttribute, "Window");
            (string Name, ITypeSymbol? Input)? window = named is not null
                ? windows.FirstOrDefault(w => w.Name == named) is { Name: not null } match ? match : null
                : windows.Count == 1 ? windows[0] : null;
            if (window is null)
            {
                var problem = windows.Count == 0
                    ? "a [Window] or [Join] stage to take late records from"
                    : named is not null
                        ? $"a window to take late records from, but '{named}' is not a [Window] stage of this pipeline (its windows: '{string.Join("', '", windows.Select(w => w.Name))}')"
                        : $"to say which window it takes late records from, as the pipeline has several ('{string.Join("', '", windows.Select(w => w.Name))}'): add Window = nameof(...) to [LateData]";
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLateData, location, member.Name, problem));
                continue;
            }

            var arguments = Symbols.InterfaceArguments(MemberType(member)!, KnownNames.SinkInterface);
            var input = window.Value.Input;
            if (input is null || arguments.Count != 1 || !SymbolEqualityComparer.Default.Equals(arguments[0], input) || found.Any(f => f.Window == window.Value.Name))
            {
                var expected = input is null
                    ? $"a valid window to take late records from ('{window.Value.Name}' is not)"
                    : $"type ISink<{Symbols.DisplayName(input)}> (the input of window '{window.Value.Name}'), and only one such member per window";
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLateData, location, member.Name, expected));
                continue;
            }

            found.Add(new LateDataMemberModel(member.Name, member.IsStatic, Symbols.ToTypeRef(arguments[0]), window.Value.Name, location));
        }

        return found;
    }

    /// <summary>The string value of the named argument <paramref name="name"/> of <paramref name="member"/>'s attribute <paramref name="attribute"/>, or null.</summary>
    private static string? NamedArgument(ISymbol member, string attribute, string name)
    {
        var data = member.GetAttributes().FirstOrDefault(a => a.AttributeClass is { } c && Symbols.IsNamed(c, attribute));
        return data?.NamedArguments.FirstOrDefault(a => a.Key == name).Value.Value as string;
    }

    /// <summary>The <c>TIn</c> of a <c>WindowSpec&lt;TIn, TAggregator&gt;</c>, or null.</summary>
    private static ITypeSymbol? WindowInput(ITypeSymbol type)
        => type is INamedTypeSymbol named && Symbols.IsNamed(named.OriginalDefinition, KnownNames.WindowSpec) ? named.TypeArguments[0] : null;

    /// <summary>A <c>[KeyBy]</c> method: <c>TKey M(T)</c>.</summary>
    private static StageModel ParseKeyBy(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics, out (ITypeSymbol Key, ITypeSymbol Input)? keyType)
    {
        keyType = null;
        var shape = member switch
        {
            // Not ReadTransform's own words for other parameter counts: they describe a flatMap, which a key selector never is.
            IMethodSymbol { Parameters.Length: not 1 } => MethodShape.Invalid("a key selector is a method 'TKey M(T record)' that takes one record and returns its key"),
            IMethodSymbol method => OperatorShapes.ReadTransform(method),
            _ => MethodShape.Invalid("a key selector is a method 'TKey M(T record)'"),
        };
        if (!shape.IsValid || shape.Shape != StageShape.Map || member is not IMethodSymbol)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, member.Name, "a key selector", shape.Problem ?? "a key selector is a method 'TKey M(T record)' that returns the key"));
            return stage;
        }

        var keyMethod = (IMethodSymbol)member;
        keyType = (keyMethod.ReturnType, keyMethod.Parameters[0].Type);
        return stage with
        {
            Shape = StageShape.KeyBy,
            OperatorMethod = keyMethod.Name,
            OperatorMethodIsStatic = keyMethod.IsStatic,
            InputParameterModifier = shape.InputModifier,
            InputType = shape.Input,
            OutputType = shape.Input, // records pass through; the key travels beside them
            NeedsPipelineInstance = !keyMethod.IsStatic,
        };
    }

    private static IEnumerable<ISymbol> AllMembers(INamedTypeSymbol type)
    {
        for (var current = type; current is not null; current = current.BaseType)
        {
            foreach (var member in current.GetMembers())
            {
                yield return member;
            }
        }
    }

    /// <summary>A <c>[Window]</c> member: <c>WindowSpec&lt;TIn, TAggregator&gt;</c> right after a <c>[KeyBy]</c>, and the <c>[EventTime]</c> member of <c>TIn</c>.</summary>
    private static StageModel ParseWindow(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics, Compilation compilation, (ITypeSymbol Key, ITypeSymbol Input)? keyBy)
    {
        if (keyBy is not { Key: var keyType })
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.WindowWithoutKeyBy, stage.Location, member.Name));
            return stage;
        }

        var type = MemberType(member);
        var input = type is null ? null : WindowInput(type);
        var aggregator = input is null ? null : ((INamedTypeSymbol)type!).TypeArguments[1];
        var arguments = aggregator?.AllInterfaces.FirstOrDefault(i => Symbols.IsNamed(i, KnownNames.Aggregator))?.TypeArguments;
        var windowResult = compilation.GetTypeByMetadataName(KnownNames.WindowResult);
        if (aggregator is null || arguments is null || windowResult is null || arguments.Value.Length != 3 || !SymbolEqualityComparer.Default.Equals(arguments.Value[0], input))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidWindow, stage.Location, member.Name, type is null ? "a method" : Symbols.DisplayName(type)));
            return stage;
        }

        var output = windowResult.Construct(keyType, arguments.Value[2]);
        if (!TryEventTime(input!, stage, diagnostics, out var eventTime))
        {
            return stage;
        }

        return stage with
        {
            EventTime = eventTime,
            Shape = StageShape.Window,
            ComponentType = Symbols.ToTypeRef(type!),
            InputType = Symbols.ToTypeRef(input!),
            OutputType = Symbols.ToTypeRef(output),
            Window = new WindowModel(Symbols.ToTypeRef(keyType), Symbols.ToTypeRef(aggregator), Symbols.ToTypeRef(arguments.Value[1]), Symbols.ToTypeRef(arguments.Value[2]), Symbols.StateCodec(keyType), Symbols.StateCodec(arguments.Value[1])),
        };
    }

    /// <summary>
    /// A <c>[Join]</c> member: a <c>JoinSpec&lt;TLeft, TRight&gt;</c> of two record types, reading the nearest
    /// <c>[KeyBy]</c> above it that takes <c>TLeft</c> records and the nearest that takes <c>TRight</c> records, whose
    /// key types are the same; both record types need an <c>[EventTime]</c> member.
    /// </summary>
    private static StageModel ParseJoin(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics, Compilation compilation, List<(string Name, ITypeSymbol Key, ITypeSymbol Input)> keyBys)
    {
        var type = MemberType(member);
        var joined = compilation.GetTypeByMetadataName(KnownNames.Joined);
        var either = compilation.GetTypeByMetadataName(KnownNames.Either);
        if (type is not INamedTypeSymbol named || !named.IsGenericType || !Symbols.IsNamed(named.OriginalDefinition, KnownNames.JoinSpec) || joined is null || either is null)
        {
            var what = type is null ? "is a method" : $"has type '{Symbols.DisplayName(type)}'";
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stage.Location, member.Name, what + "; a [Join] is a property or field of type JoinSpec<TLeft, TRight>, created with Join.Interval, Join.Windowed or Join.Table"));
            return stage;
        }

        var (left, right) = (named.TypeArguments[0], named.TypeArguments[1]);
        if (SymbolEqualityComparer.Default.Equals(left, right))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stage.Location, member.Name, $"joins '{Symbols.DisplayName(left)}' with itself; a join reads two record types (records of one type from several sources are one stream, a union)"));
            return stage;
        }

        var sides = new[] { left, right }.Select(side => keyBys.LastOrDefault(k => SymbolEqualityComparer.Default.Equals(k.Input, side))).ToArray();
        for (var i = 0; i < 2; i++)
        {
            if (sides[i].Name is null)
            {
                var record = Symbols.DisplayName(i == 0 ? left : right);
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stage.Location, member.Name, $"needs a key selector above it that takes '{record}' records (its {(i == 0 ? "left" : "right")} input): add a method '[KeyBy] TKey M({record} record)'"));
                return stage;
            }
        }

        var (leftKey, rightKey) = (sides[0], sides[1]);
        if (!SymbolEqualityComparer.Default.Equals(leftKey.Key.WithNullableAnnotation(NullableAnnotation.NotAnnotated), rightKey.Key.WithNullableAnnotation(NullableAnnotation.NotAnnotated)))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.JoinKeyMismatch, stage.Location, member.Name, leftKey.Name, Symbols.DisplayName(leftKey.Key), rightKey.Name, Symbols.DisplayName(rightKey.Key)));
            return stage;
        }

        if (ReversedIntervalBounds(member, compilation) is var (lower, upper))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidJoin, stage.Location, member.Name, $"has its lower bound ({lower}) after its upper bound ({upper}): no record could meet another"));
            return stage;
        }

        var times = new string?[2];
        for (var i = 0; i < 2; i++)
        {
            var record = i == 0 ? left : right;
            if (!TryEventTime(record, stage, diagnostics, out times[i]))
            {
                return stage;
            }

            if (times[i] is null)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.JoinWithoutEventTime, stage.Location, member.Name, Symbols.DisplayName(record)));
                return stage;
            }
        }

        return stage with
        {
            Shape = StageShape.Join,
            ComponentType = Symbols.ToTypeRef(type),
            InputType = Symbols.ToTypeRef(either.Construct(left, right)),
            OutputType = Symbols.ToTypeRef(joined.Construct(left, right)),
            Join = new JoinModel(Symbols.ToTypeRef(leftKey.Key), Symbols.ToTypeRef(left), Symbols.ToTypeRef(right), leftKey.Name, rightKey.Name, times[0]!, times[1]!, Symbols.StateCodec(leftKey.Key), Symbols.StateCodec(left), Symbols.StateCodec(right))
            {
                RightChange = right is INamedTypeSymbol rightType
                    ? AllMembers(rightType).FirstOrDefault(m => m is IPropertySymbol or IFieldSymbol && !m.IsStatic && m.DeclaredAccessibility == Accessibility.Public && MemberType(m)?.ToDisplayString() == "Compiled.ChangeKind")?.Name
                    : null,
            },
        };
    }

    /// <summary>
    /// The bounds' source text when <paramref name="member"/> is initialized with <c>Join.Interval(lower, upper)</c>
    /// (maybe <c>with { … }</c>) whose bounds are both known at compile time — <c>TimeSpan.Zero</c>,
    /// <c>TimeSpan.FromSeconds(5)</c> and the like with constant arguments, negated or not — and lower is after upper;
    /// else null. <c>Join.Interval</c> throws for these when the pipeline object is created; this says so at build time.
    /// </summary>
    private static (string Lower, string Upper)? ReversedIntervalBounds(ISymbol member, Compilation compilation)
    {
        foreach (var reference in member.DeclaringSyntaxReferences)
        {
            var value = reference.GetSyntax() switch
            {
                PropertyDeclarationSyntax property => property.Initializer?.Value,
                VariableDeclaratorSyntax field => field.Initializer?.Value,
                _ => null,
            };
            while (value is WithExpressionSyntax with)
            {
                value = with.Expression;
            }

            if (value is null || compilation.GetSemanticModel(value.SyntaxTree).GetOperation(value) is not Microsoft.CodeAnalysis.Operations.IInvocationOperation { TargetMethod.Name: "Interval" } call
                || !Symbols.IsNamed(call.TargetMethod.ContainingType, KnownNames.JoinFactory) || call.Arguments.Length != 2)
            {
                continue;
            }

            var bounds = call.Arguments.OrderBy(a => a.Parameter?.Ordinal ?? 0).Select(a => (Ticks: ConstantTicks(a.Value), Text: a.Value.Syntax.ToString())).ToArray();
            if (bounds[0].Ticks is { } lower && bounds[1].Ticks is { } upper && lower > upper)
            {
                return (bounds[0].Text, bounds[1].Text);
            }
        }

        return null;
    }

    /// <summary>The ticks of a <c>TimeSpan</c> expression known at compile time, or null.</summary>
    private static double? ConstantTicks(IOperation operation)
    {
        switch (operation)
        {
            case Microsoft.CodeAnalysis.Operations.IConversionOperation conversion:
                return ConstantTicks(conversion.Operand);
            case Microsoft.CodeAnalysis.Operations.IParenthesizedOperation parenthesized:
                return ConstantTicks(parenthesized.Operand);
            case Microsoft.CodeAnalysis.Operations.IUnaryOperation { OperatorKind: Microsoft.CodeAnalysis.Operations.UnaryOperatorKind.Minus } negated:
                return -ConstantTicks(negated.Operand);
            case Microsoft.CodeAnalysis.Operations.IFieldReferenceOperation { Field.Name: "Zero" } field when IsTimeSpan(field.Field.ContainingType):
                return 0;
            case Microsoft.CodeAnalysis.Operations.IInvocationOperation { Arguments.Length: 1 } invocation when IsTimeSpan(invocation.TargetMethod.ContainingType):
                var unit = invocation.TargetMethod.Name switch
                {
                    "FromTicks" => 1d,
                    "FromMilliseconds" => 1e4,
                    "FromSeconds" => 1e7,
                    "FromMinutes" => 6e8,
                    "FromHours" => 3.6e10,
                    "FromDays" => 8.64e11,
                    _ => double.NaN,
                };
                return !double.IsNaN(unit) && invocation.Arguments[0].Value.ConstantValue is { HasValue: true, Value: { } number } && number is not string and not bool and not char
                    ? System.Convert.ToDouble(number, System.Globalization.CultureInfo.InvariantCulture) * unit
                    : null;
            default:
                return null;
        }
    }

    private static bool IsTimeSpan(ITypeSymbol? type) => type is { Name: "TimeSpan", ContainingNamespace: { Name: "System", ContainingNamespace.IsGlobalNamespace: true } };

    /// <summary>
    /// How the loop before a keyed stage reads <paramref name="input"/>'s event time: its <c>[EventTime]</c> member,
    /// <c>End - 1</c> for a window's results, the left record's for a join's results; null when it has none. False
    /// (diagnosed) when the member has an unsupported type.
    /// </summary>
    private static bool TryEventTime(ITypeSymbol input, StageModel stage, List<DiagnosticInfo> diagnostics, out string? eventTime)
    {
        eventTime = null;
        if (input is not INamedTypeSymbol record)
        {
            return true;
        }

        if (record.IsGenericType && Symbols.IsNamed(record.OriginalDefinition, KnownNames.WindowResult))
        {
            eventTime = "End - 1"; // a window's results carry the last instant of their window as event time (Flink's maxTimestamp)
            return true;
        }

        if (record.IsGenericType && Symbols.IsNamed(record.OriginalDefinition, KnownNames.Joined))
        {
            // A join's result happens when its left record does.
            var found = TryEventTime(record.TypeArguments[0], stage, diagnostics, out var left);
            eventTime = left is null ? null : "Left." + left;
            return found;
        }

        foreach (var candidate in AllMembers(record).Where(m => m is IPropertySymbol or IFieldSymbol && Symbols.IsMarked(record, m, KnownNames.EventTimeAttribute)))
        {
            var candidateType = MemberType(candidate)!;
            if (candidateType.ToDisplayString() is not ("long" or "System.DateTime" or "System.DateTimeOffset"))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidEventTime, stage.Location, Symbols.DisplayName(record) + "." + candidate.Name, Symbols.DisplayName(candidateType)));
                return false;
            }

            eventTime = candidate.Name;
            break;
        }

        return true;
    }

    /// <summary>
    /// A <c>[Lookup]</c> member: an <c>ILookup&lt;TKey, TRow&gt;</c> right after a <c>[KeyBy]</c> returning <c>TKey</c>,
    /// whose row type has one <c>[Key]</c> member of type <c>TKey</c> and can be built from its fields.
    /// </summary>
    private static StageModel ParseLookup(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics, Compilation compilation, (ITypeSymbol Key, ITypeSymbol Input)? keyBy, List<RecordSchemaModel> schemas)
    {
        if (keyBy is not { } key)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.LookupWithoutKeyBy, stage.Location, member.Name));
            return stage;
        }

        var type = MemberType(member);
        var implementations = type is null
            ? []
            : (type is INamedTypeSymbol { TypeKind: TypeKind.Interface } self ? type.AllInterfaces.Prepend(self) : type.AllInterfaces)
                .Where(i => Symbols.IsNamed(i, KnownNames.LookupInterface)).ToList();
        var arguments = implementations.Count == 1 ? implementations[0].TypeArguments : [];
        var joined = compilation.GetTypeByMetadataName(KnownNames.Joined);
        if (arguments.Length != 2 || joined is null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLookup, stage.Location, member.Name, type is null ? "a method" : Symbols.DisplayName(type)));
            return stage;
        }

        var (lookupKey, row) = (arguments[0], arguments[1]);
        if (!SymbolEqualityComparer.Default.Equals(lookupKey.WithNullableAnnotation(NullableAnnotation.NotAnnotated), key.Key.WithNullableAnnotation(NullableAnnotation.NotAnnotated)))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.LookupKeyMismatch, stage.Location, member.Name, Symbols.DisplayName(lookupKey), Symbols.DisplayName(key.Key)));
            return stage;
        }

        var schema = SchemaParser.Parse(row, ScalarTypes.For(compilation));
        var keyFields = schema?.Fields.Where(f => f.IsKey).ToList() ?? [];
        if (schema is null || keyFields.Count != 1 || schema.Construction is null)
        {
            var problem = schema is null
                ? "it has no public fields or properties"
                : keyFields.Count == 0
                    ? "none of its members is marked [Key]; mark the one whose column the lookup matches"
                    : keyFields.Count > 1
                        ? $"several members are marked [Key] ({string.Join(", ", keyFields.Select(f => f.Name))}); a lookup matches one column"
                        : "it cannot be built from its fields; give it a public constructor whose parameters are its fields, or a parameterless constructor and settable members";
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLookupRow, stage.Location, member.Name, Symbols.DisplayName(row), problem));
            return stage;
        }

        var keyMember = AllMembers((INamedTypeSymbol)row).First(m => m.Name == keyFields[0].Name && m is IPropertySymbol or IFieldSymbol);
        var keyMemberType = MemberType(keyMember)!;
        if (!SymbolEqualityComparer.Default.Equals(keyMemberType.WithNullableAnnotation(NullableAnnotation.NotAnnotated), lookupKey.WithNullableAnnotation(NullableAnnotation.NotAnnotated)))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidLookupRow, stage.Location, member.Name, Symbols.DisplayName(row), $"its [Key] member '{keyMember.Name}' is {Symbols.DisplayName(keyMemberType)} where the lookup's keys are {Symbols.DisplayName(lookupKey)}"));
            return stage;
        }

        if (!TryEventTime(key.Input, stage, diagnostics, out var eventTime))
        {
            return stage;
        }

        // The row type's schema builds rows; the same type as a sink's records shares the one schema.
        schemas.RemoveAll(s => s.Identifier == schema.Identifier);
        schemas.Add(schema with { Creates = true });

        return stage with
        {
            EventTime = eventTime,
            Shape = StageShape.Lookup,
            ComponentType = Symbols.ToTypeRef(type!),
            InputType = Symbols.ToTypeRef(key.Input),
            OutputType = Symbols.ToTypeRef(joined.Construct(key.Input, row)),
            Lookup = new LookupModel(Symbols.ToTypeRef(lookupKey), Symbols.ToTypeRef(row), keyMember.Name),
        };
    }

    private static DeadLetterMemberModel? ParseDeadLetters(INamedTypeSymbol type, List<DiagnosticInfo> diagnostics)
    {
        DeadLetterMemberModel? found = null;
        foreach (var member in type.GetMembers().Where(m => m is IPropertySymbol or IFieldSymbol && Symbols.HasAttribute(m, KnownNames.DeadLettersAttribute)))
        {
            var memberType = MemberType(member)!;
            var arguments = Symbols.InterfaceArguments(memberType, KnownNames.SinkInterface);
            if (!arguments.Any(a => a.ToDisplayString() == "Compiled.DeadLetter"))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotADeadLetterSink, Symbols.IdentifierLocation(member), member.Name, Symbols.DisplayName(memberType)));
                continue;
            }

            if (found is not null)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MultipleDeadLetterSinks, Symbols.IdentifierLocation(member), Symbols.DisplayName(type), found.Name, member.Name));
                continue;
            }

            found = new DeadLetterMemberModel(member.Name, member.IsStatic);
        }

        return found;
    }

    private static string? UnsupportedTypeReason(INamedTypeSymbol type)
    {
        if (type.IsGenericType || Symbols.ContainingTypes(type).Count > 0 && ContainingGeneric(type))
        {
            return "generic";
        }

        if (type.IsStatic)
        {
            return "static";
        }

        if (type.IsAbstract)
        {
            return "abstract";
        }

        return type.TypeKind != TypeKind.Class ? "a " + Symbols.Keyword(type) : null;
    }

    private static bool ContainingGeneric(INamedTypeSymbol type)
    {
        for (var outer = type.ContainingType; outer is not null; outer = outer.ContainingType)
        {
            if (outer.IsGenericType)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The members with a stage attribute, in declaration order, with the index of the partial declaration holding each.</summary>
    private static List<(ISymbol Member, int Group)> StageMembers(INamedTypeSymbol type, CancellationToken cancellationToken)
    {
        var declarations = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax(cancellationToken)).ToList();
        var found = new List<(ISymbol Member, int Group, int Position)>();
        foreach (var member in type.GetMembers())
        {
            if (member.IsImplicitlyDeclared || !StageAttributes.Any(a => Symbols.HasAttribute(member, a)))
            {
                continue;
            }

            var syntax = member.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken);
            var owner = syntax?.AncestorsAndSelf().OfType<TypeDeclarationSyntax>().FirstOrDefault();
            var group = owner is null ? 0 : declarations.IndexOf(owner);
            found.Add((member, group, syntax?.SpanStart ?? 0));
        }

        return found.OrderBy(m => m.Group).ThenBy(m => m.Position).Select(m => (m.Member, m.Group)).ToList();
    }

    private static StageModel ParseStage(ISymbol member, int order, List<DiagnosticInfo> diagnostics, Compilation compilation, (ITypeSymbol Key, ITypeSymbol Input)? keyType, List<(string Name, ITypeSymbol Key, ITypeSymbol Input)> keyBys, List<RecordSchemaModel> schemas, out (ITypeSymbol Key, ITypeSymbol Input)? nextKey)
    {
        nextKey = null;
        var location = Symbols.IdentifierLocation(member);
        var roles = StageAttributes.Where(a => Symbols.HasAttribute(member, a)).ToList();
        var role = roles[0] switch
        {
            KnownNames.SourceAttribute => StageRole.Source,
            KnownNames.SinkAttribute => StageRole.Sink,
            _ => StageRole.Transform,
        };

        var kind = member switch
        {
            IMethodSymbol => MemberKind.Method,
            IPropertySymbol => MemberKind.Property,
            _ => MemberKind.Field,
        };

        var stage = new StageModel(order, member.Name, role, StageShape.Invalid, kind, member.IsStatic, null, null, false, "", null, null, false, location, InputName: NamedArgument(member, roles[0], "Input"));
        if (roles.Count > 1)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.MultipleStageAttributes, location, member.Name));
            return stage;
        }

        if (member is IPropertySymbol { GetMethod: null } or IPropertySymbol { IsIndexer: true })
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, location, member.Name, "a stage", "a stage property needs a getter and no parameters"));
            return stage;
        }

        if (roles[0] == KnownNames.KeyByAttribute)
        {
            return ParseKeyBy(member, stage, diagnostics, out nextKey);
        }

        if (roles[0] == KnownNames.WindowAttribute)
        {
            return ParseWindow(member, stage, diagnostics, compilation, keyType);
        }

        if (roles[0] == KnownNames.LookupAttribute)
        {
            return ParseLookup(member, stage, diagnostics, compilation, keyType, schemas);
        }

        if (roles[0] == KnownNames.JoinAttribute)
        {
            return ParseJoin(member, stage, diagnostics, compilation, keyBys);
        }

        return role switch
        {
            StageRole.Source => ParseSource(member, stage, diagnostics),
            StageRole.Sink => ParseSink(member, stage, diagnostics),
            _ => ParseTransform(member, stage, diagnostics),
        };
    }

    private static StageModel ParseSource(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics)
    {
        var type = MemberType(member)!;
        var arguments = Symbols.InterfaceArguments(type, KnownNames.SourceInterface);
        if (arguments.Count == 0)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NotASource, stage.Location, member.Name, Symbols.DisplayName(type)));
            return stage;
        }

        if (arguments.Count > 1)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.AmbiguousConnectorType, stage.Location, member.Name, "ISource<T>", string.Join(", ", arguments.Select(Symbols.DisplayName))));
            return stage;
        }

        var output = Symbols.ToTypeRef(arguments[0]);
        return stage with { Shape = StageShape.Source, ComponentType = Symbols.ToTypeRef(type), OutputType = output };
    }

    private static StageModel ParseSink(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics)
    {
        if (member is IMethodSymbol method)
        {
            var shape = OperatorShapes.ReadSink(method);
            if (!shape.IsValid)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, member.Name, "a sink", shape.Problem!));
                return stage;
            }

            return MethodStage(stage, method, shape);
        }

        var type = MemberType(member)!;
        var arguments = Symbols.InterfaceArguments(type, KnownNames.SinkInterface);
        if (arguments.Count == 0)
        {
            return ParseOperatorSink(member, type, stage, diagnostics);
        }

        if (arguments.Count > 1)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.AmbiguousConnectorType, stage.Location, member.Name, "ISink<T>", string.Join(", ", arguments.Select(Symbols.DisplayName))));
            return stage;
        }

        var input = Symbols.ToTypeRef(arguments[0]);
        return stage with { Shape = StageShape.ConnectorSink, ComponentType = Symbols.ToTypeRef(type), InputType = input, OutputType = input };
    }

    /// <summary>A [Sink] member whose type is not a connector: an operator object whose one <c>void M(T)</c> method is called inline.</summary>
    private static StageModel ParseOperatorSink(ISymbol member, ITypeSymbol type, StageModel stage, List<DiagnosticInfo> diagnostics)
    {
        var (method, diagnostic, detail) = type is INamedTypeSymbol { TypeKind: TypeKind.Class or TypeKind.Struct, IsAbstract: false } named
            ? OperatorShapes.FindSinkMethod(named)
            : (null, null, null);
        if (method is null)
        {
            diagnostics.Add(diagnostic == DiagnosticDescriptors.AmbiguousOperatorMethod
                ? DiagnosticInfo.Create(DiagnosticDescriptors.AmbiguousOperatorMethod, stage.Location, Symbols.DisplayName(type), detail!)
                : DiagnosticInfo.Create(DiagnosticDescriptors.NotASink, stage.Location, member.Name, Symbols.DisplayName(type)));
            return stage;
        }

        var shape = OperatorShapes.ReadSink(method);
        if (!shape.IsValid)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, Symbols.DisplayName(type) + "." + method.Name, "a sink", shape.Problem!));
            return stage;
        }

        var (storage, problem) = OperatorShapes.StorageOf(member, type, method);
        if (problem is not null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StructOperatorStateLost, stage.Location, member.Name, problem));
            return stage;
        }

        return stage with
        {
            Shape = StageShape.MethodSink,
            ComponentType = Symbols.ToTypeRef(type),
            OperatorMethod = method.Name,
            OperatorMethodIsStatic = method.IsStatic,
            InputParameterModifier = shape.InputModifier,
            InputType = shape.Input,
            OutputType = shape.Output,
            NeedsPipelineInstance = !member.IsStatic && !method.IsStatic,
            Storage = storage,
            ValueState = storage == OperatorStorage.HoistedStruct && type.IsUnmanagedType,
            SavedState = SavedStateOf(storage, type),
        };
    }

    /// <summary>For an operator object of a class: its fields the fast loop saves and sets back (<see cref="OperatorShapes.StateOf"/>), or null.</summary>
    private static EquatableArray<SavedField>? SavedStateOf(OperatorStorage storage, ITypeSymbol type)
        => storage == OperatorStorage.Reference && OperatorShapes.StateOf(type) is { } fields ? fields.ToEquatableArray() : null;

    /// <summary>
    /// An asynchronous transform: a pipeline method returning <c>ValueTask&lt;U&gt;</c> or
    /// <c>ValueTask&lt;IEnumerable&lt;U&gt;&gt;</c>, tuned by an optional <c>[AsyncOptions]</c>, and the event time of its
    /// input (the loop before it writes it beside each record, so watermarks pass through to windows after it).
    /// </summary>
    private static StageModel ParseAsyncTransform(IMethodSymbol method, StageModel stage, List<DiagnosticInfo> diagnostics)
    {
        var (shape, flat, takesToken) = OperatorShapes.ReadAsyncTransform(method);
        if (!shape.IsValid)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidAsyncTransform, stage.Location, method.Name, shape.Problem!));
            return stage;
        }

        var options = method.GetAttributes().FirstOrDefault(a => a.AttributeClass is { } c && Symbols.IsNamed(c, KnownNames.AsyncOptionsAttribute));
        int Number(string name, int fallback) => options?.NamedArguments.FirstOrDefault(a => a.Key == name).Value.Value is int value ? value : fallback;
        var model = new AsyncModel(
            flat,
            takesToken,
            Number("MaxInFlight", 100),
            Number("TimeoutMilliseconds", 30_000),
            Number("MaxAttempts", 1),
            Number("RetryBackoffMilliseconds", 100),
            options?.NamedArguments.FirstOrDefault(a => a.Key == "Ordered").Value.Value is not false,
            options?.NamedArguments.FirstOrDefault(a => a.Key == "Spread").Value.Value is true);
        var problem = model.MaxInFlight < 1 ? "MaxInFlight must be at least 1"
            : model.MaxInFlight > 1 << 16 ? "MaxInFlight must be at most 65536"
            : model.TimeoutMilliseconds < 0 ? "TimeoutMilliseconds cannot be negative (0 means no timeout)"
            : model.MaxAttempts is < 1 or > 100 ? "MaxAttempts must be between 1 and 100"
            : model.RetryBackoffMilliseconds < 0 ? "RetryBackoffMilliseconds cannot be negative"
            : null;
        if (problem is not null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidAsyncOptions, stage.Location, method.Name, problem));
            return stage;
        }

        if (!TryEventTime(method.Parameters[0].Type, stage, diagnostics, out var eventTime))
        {
            return stage;
        }

        return MethodStage(stage, method, shape) with { EventTime = eventTime, Async = model };
    }

    /// <summary>A stage that is a method of the pipeline, of the shape read from its signature.</summary>
    private static StageModel MethodStage(StageModel stage, IMethodSymbol method, MethodShape shape) => stage with
    {
        Shape = shape.Shape,
        OperatorMethod = method.Name,
        OperatorMethodIsStatic = method.IsStatic,
        InputParameterModifier = shape.InputModifier,
        InputType = shape.Input,
        OutputType = shape.Output,
        NeedsPipelineInstance = !method.IsStatic,
    };

    private static StageModel ParseTransform(ISymbol member, StageModel stage, List<DiagnosticInfo> diagnostics)
    {
        if (member is IMethodSymbol method)
        {
            if (OperatorShapes.IsAsynchronous(method))
            {
                return ParseAsyncTransform(method, stage, diagnostics);
            }

            if (Symbols.HasAttribute(method, KnownNames.AsyncOptionsAttribute))
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.InvalidAsyncOptions, stage.Location, member.Name, "[AsyncOptions] applies to asynchronous transforms (methods returning ValueTask<U>); remove it, or make the method asynchronous"));
                return stage;
            }

            var shape = OperatorShapes.ReadTransform(method);
            if (!shape.IsValid)
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, member.Name, "an operator", shape.Problem!));
                return stage;
            }

            return MethodStage(stage, method, shape);
        }

        var type = MemberType(member)!;
        if (type is not INamedTypeSymbol named || named.TypeKind is not (TypeKind.Class or TypeKind.Struct))
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NoOperatorMethod, stage.Location, Symbols.DisplayName(type)));
            return stage;
        }

        if (named.IsAbstract)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, member.Name, "an operator", $"its type '{Symbols.DisplayName(type)}' is abstract; the loop calls operators directly, so use the concrete (preferably sealed) class"));
            return stage;
        }

        var (operatorMethod, diagnostic, detail) = OperatorShapes.FindOperatorMethod(named);
        if (operatorMethod is null)
        {
            diagnostics.Add(detail is null
                ? DiagnosticInfo.Create(diagnostic!, stage.Location, Symbols.DisplayName(type))
                : DiagnosticInfo.Create(diagnostic!, stage.Location, Symbols.DisplayName(type), detail));
            return stage;
        }

        var operatorShape = OperatorShapes.ReadTransform(operatorMethod);
        if (!operatorShape.IsValid)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, stage.Location, Symbols.DisplayName(type) + "." + operatorMethod.Name, "an operator", operatorShape.Problem!));
            return stage;
        }

        var (storage, problem) = OperatorShapes.StorageOf(member, type, operatorMethod);
        if (problem is not null)
        {
            diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.StructOperatorStateLost, stage.Location, member.Name, problem));
            return stage;
        }

        var saved = SavedStateOf(storage, type);
        return stage with
        {
            Shape = operatorShape.Shape,
            ComponentType = Symbols.ToTypeRef(type),
            OperatorMethod = operatorMethod.Name,
            OperatorMethodIsStatic = operatorMethod.IsStatic,
            InputParameterModifier = operatorShape.InputModifier,
            InputType = operatorShape.Input,
            OutputType = operatorShape.Output,
            NeedsPipelineInstance = !member.IsStatic && !operatorMethod.IsStatic,
            Storage = storage,
            ValueState = storage == OperatorStorage.HoistedStruct && type.IsUnmanagedType,
            Immutable = saved is { Count: 0 }, // an operator object with nothing to save cannot change
            SavedState = saved,
        };
    }

    private static ITypeSymbol? MemberType(ISymbol member) => member switch
    {
        IPropertySymbol p => p.Type,
        IFieldSymbol f => f.Type,
        _ => null,
    };

    private static ITypeSymbol? SourceOrSinkArgument(ISymbol member, string interfaceName)
        => MemberType(member) is { } type && Symbols.InterfaceArguments(type, interfaceName) is { Count: 1 } arguments ? arguments[0] : null;
}
