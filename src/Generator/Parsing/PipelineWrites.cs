using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace Compiled.Generator.Parsing;

/// <summary>
/// What an instance method of a pipeline changes, read from its body: the pipeline object's own fields it writes —
/// directly, through the pipeline's auto-properties, or through the methods and accessors of the user's code it calls —
/// or null when it may change anything else. The fast loop saves exactly those fields before a batch and sets them back
/// when a record fails; anything else the method changed would be changed again for the records before the failure.
/// </summary>
/// <remarks>
/// Null (the loop keeps its bookkeeping) for: a write to a static field or property, to another object's field or
/// property, to an array element that is not a local's, through a ref local; <c>this</c> handed to a method or stored;
/// a call into a library other than the side-effect-free core types (<see cref="PureTypes"/>) — a file, a console, a
/// lock, <c>Interlocked</c> —; an event; and anything this reading does not know. Being wrong here would repeat a
/// record's effects, so whatever is not understood is null.
/// </remarks>
internal static class PipelineWrites
{
    /// <summary>Library types whose members change nothing but what they are given by reference: calls into them are let through.</summary>
    private static readonly HashSet<string> PureTypes =
    [
        "System.String", "System.Math", "System.MathF", "System.Char", "System.Boolean", "System.Byte", "System.SByte",
        "System.Int16", "System.UInt16", "System.Int32", "System.UInt32", "System.Int64", "System.UInt64", "System.Int128",
        "System.UInt128", "System.Single", "System.Double", "System.Half", "System.Decimal", "System.DateTime",
        "System.DateTimeOffset", "System.DateOnly", "System.TimeOnly", "System.TimeSpan", "System.Guid", "System.Nullable`1",
        "System.ValueTuple", "System.Enum", "System.Object", "System.ValueType", "System.ReadOnlySpan`1", "System.Span`1",
        "System.MemoryExtensions", "System.Numerics.BitOperations", "System.Linq.Enumerable",
        "System.Runtime.CompilerServices.DefaultInterpolatedStringHandler", "System.Globalization.CultureInfo",
    ];

    /// <summary>The fields of <paramref name="pipeline"/> that <paramref name="method"/> may write, or null (see the type's remarks).</summary>
    public static HashSet<IFieldSymbol>? Of(INamedTypeSymbol pipeline, IMethodSymbol method, Compilation compilation, CancellationToken cancellationToken)
    {
        var written = new HashSet<IFieldSymbol>(SymbolEqualityComparer.Default);
        var visited = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        var pending = new Stack<IMethodSymbol>();
        var seen = new HashSet<ITypeSymbol>(SymbolEqualityComparer.Default);
        pending.Push(method);
        while (pending.Count > 0)
        {
            var next = pending.Pop();
            if (!visited.Add(next.OriginalDefinition))
            {
                continue;
            }

            var references = next.DeclaringSyntaxReferences;
            if (next.IsImplicitlyDeclared)
            {
                continue; // what the compiler writes (a record's Equals, ToString, Clone, a positional property): it changes only its own object
            }

            if (references.IsEmpty)
            {
                return null; // no body to read
            }

            // A constructor's or init accessor's own fields are the new object's.
            var reading = new Reading(pipeline, next.MethodKind == MethodKind.Constructor || next.IsInitOnly ? next.ContainingType : null, written, pending, seen);
            if (next.MethodKind == MethodKind.Constructor && !Initializers(next.ContainingType, compilation, reading, cancellationToken))
            {
                return null;
            }

            foreach (var reference in references)
            {
                var syntax = reference.GetSyntax(cancellationToken);
                SyntaxNode? body = syntax switch
                {
                    BaseMethodDeclarationSyntax m => (SyntaxNode?)m.Body ?? m.ExpressionBody,
                    AccessorDeclarationSyntax a => (SyntaxNode?)a.Body ?? a.ExpressionBody,
                    ArrowExpressionClauseSyntax arrow => arrow,
                    LocalFunctionStatementSyntax f => (SyntaxNode?)f.Body ?? f.ExpressionBody,
                    _ => null,
                };
                if (body is null)
                {
                    if (syntax is AccessorDeclarationSyntax or RecordDeclarationSyntax or ParameterSyntax
                        || (syntax is MethodDeclarationSyntax declaration && declaration.Modifiers.Any(m => m.ValueText == "partial")))
                    {
                        continue; // an auto-accessor, a primary constructor, or the declaring half of a partial method (the other half has the body)
                    }

                    return null;
                }

                var operation = compilation.GetSemanticModel(syntax.SyntaxTree).GetOperation(body, cancellationToken);
                if (operation is null || !Read(operation, reading))
                {
                    return null;
                }
            }
        }

        return written;
    }

    /// <summary>The members the compiler or a library may call on a value without the code saying so.</summary>
    private static readonly HashSet<string> CallbackNames =
    [
        "ToString", "Equals", "GetHashCode", "CompareTo", "Deconstruct", "Dispose", "DisposeAsync", "TryFormat", "Format",
        "GetEnumerator", "MoveNext", "get_Current", "PrintMembers", "op_Equality", "op_Inequality", "op_Implicit", "op_Explicit",
    ];

    /// <summary>
    /// A value of a type of the user's (its elements' and type arguments' too): the members the compiler or a library may
    /// call on it unasked — string interpolation calls ToString, a deconstruction Deconstruct, <c>using</c> Dispose,
    /// a sort CompareTo, LINQ's Distinct GetHashCode and Equals, a format provider GetFormat (an outside test) — are
    /// read as if called.
    /// </summary>
    private static void Callbacks(ITypeSymbol? type, Reading reading, int depth)
    {
        if (type is null || depth > 4)
        {
            return;
        }

        switch (type)
        {
            case IArrayTypeSymbol array:
                Callbacks(array.ElementType, reading, depth + 1);
                return;
            case INamedTypeSymbol named:
                foreach (var argument in named.TypeArguments)
                {
                    Callbacks(argument, reading, depth + 1);
                }

                for (var t = named.OriginalDefinition; t is not null; t = t.BaseType)
                {
                    // The pipeline's own: its Dispose, say, runs when a partition ends, not in the loop.
                    if (!t.Locations.Any(l => l.IsInSource) || SymbolEqualityComparer.Default.Equals(t, reading.Pipeline) || !reading.Seen.Add(t))
                    {
                        break;
                    }

                    // By name (patterns the compiler follows: Deconstruct, GetEnumerator, Dispose), any override of
                    // object's, and every method that implements an interface (IFormatProvider.GetFormat, IComparer's
                    // Compare, IEqualityComparer's Equals): a library handed the value may call any of them.
                    var implementing = new HashSet<ISymbol>(
                        t.AllInterfaces.SelectMany(i => i.GetMembers()).Select(t.FindImplementationForInterfaceMember).Where(m => m is not null)!,
                        SymbolEqualityComparer.Default);
                    foreach (var member in t.GetMembers().OfType<IMethodSymbol>().Where(m => CallbackNames.Contains(m.Name) || m.IsOverride || implementing.Contains(m)
                        || (m.AssociatedSymbol is not null && implementing.Contains(m.AssociatedSymbol))))
                    {
                        if (!member.IsImplicitlyDeclared && member.DeclaringSyntaxReferences.Length > 0)
                        {
                            reading.Pending.Push(member);
                        }
                    }
                }

                return;
        }
    }

    /// <summary>An exception of the runtime's (<c>throw new InvalidOperationException(…)</c>): building one changes nothing.</summary>
    private static bool IsException(INamedTypeSymbol type)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            if (!t.Locations.Any(l => l.IsInMetadata))
            {
                return false; // the user's own exception type: its constructor is read like any other
            }

            if (t.ContainingNamespace?.ToDisplayString() == "System" && t.Name == "Exception")
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A constructor runs its type's instance field and property initializers too: reads them.</summary>
    private static bool Initializers(INamedTypeSymbol type, Compilation compilation, Reading reading, CancellationToken cancellationToken)
    {
        foreach (var member in type.GetMembers().Where(m => !m.IsStatic && m is IFieldSymbol or IPropertySymbol))
        {
            foreach (var reference in member.DeclaringSyntaxReferences)
            {
                var initializer = reference.GetSyntax(cancellationToken) switch
                {
                    VariableDeclaratorSyntax field => field.Initializer?.Value,
                    PropertyDeclarationSyntax property => property.Initializer?.Value,
                    _ => null,
                };
                if (initializer is not null
                    && (compilation.GetSemanticModel(initializer.SyntaxTree).GetOperation(initializer, cancellationToken) is not { } operation || !Read(operation, reading)))
                {
                    return false;
                }
            }
        }

        return true;
    }

    /// <summary>One body's reading: the pipeline, the type whose constructor it is (its own fields are the new object's), what was found.</summary>
    /// <remarks><paramref name="Seen"/>: the user's types whose callbacks are queued already, over the whole method.</remarks>
    private sealed record Reading(INamedTypeSymbol Pipeline, INamedTypeSymbol? Constructing, HashSet<IFieldSymbol> Written, Stack<IMethodSymbol> Pending, HashSet<ITypeSymbol> Seen);

    private static bool Read(IOperation root, Reading reading)
    {
        foreach (var operation in root.DescendantsAndSelf())
        {
            Callbacks(operation.Type, reading, 0);
            var understood = operation switch
            {
                IInvalidOperation => false,
                ISimpleAssignmentOperation { IsRef: true } => false,
                IDeconstructionAssignmentOperation deconstruction => Targets(deconstruction.Target).All(t => Write(t, reading)),
                ICompoundAssignmentOperation compound => Write(compound.Target, reading) && Operator(compound.OperatorMethod, reading),
                IAssignmentOperation assignment => Write(assignment.Target, reading),
                IIncrementOrDecrementOperation step => Write(step.Target, reading) && Operator(step.OperatorMethod, reading),
                IArgumentOperation { Parameter.RefKind: RefKind.Ref or RefKind.Out } argument => Write(argument.Value, reading),
                IInvocationOperation invocation => Call(invocation.TargetMethod, invocation.Instance, reading),
                IMethodReferenceOperation reference => Call(reference.Method, reference.Instance, reading), // a method group: whoever gets the delegate may call it
                IPropertyReferenceOperation property => property.Property.GetMethod is null || Call(property.Property.GetMethod, property.Instance, reading, read: true), // no getter: a write, which Write reads
                IObjectCreationOperation creation => creation.Constructor is null || IsException(creation.Constructor.ContainingType) || Call(creation.Constructor, null, reading),
                IUsingOperation or IUsingDeclarationOperation => true, // Dispose: read as a callback of the value's type (above)
                IBinaryOperation binary => Operator(binary.OperatorMethod, reading),
                IUnaryOperation unary => Operator(unary.OperatorMethod, reading),
                IConversionOperation conversion => Operator(conversion.OperatorMethod, reading),
                IInstanceReferenceOperation self => self.ReferenceKind != InstanceReferenceKind.ContainingTypeInstance
                    || (self.Parent is IMemberReferenceOperation member && member.Instance == self)
                    || (self.Parent is IInvocationOperation call && call.Instance == self), // `this` handed on: whoever gets it may change it
                IEventAssignmentOperation or IEventReferenceOperation or IDynamicInvocationOperation or IDynamicMemberReferenceOperation
                    or IDynamicIndexerAccessOperation or IDynamicObjectCreationOperation or IFunctionPointerInvocationOperation => false,
                _ => true,
            };
            if (!understood)
            {
                return false;
            }
        }

        return true;
    }

    private static IEnumerable<IOperation> Targets(IOperation target)
        => target is ITupleOperation tuple ? tuple.Elements.SelectMany(Targets)
            : target is IDeclarationExpressionOperation declaration ? Targets(declaration.Expression)
            : [target];

    /// <summary>A user-defined operator: its body is read like a call's.</summary>
    private static bool Operator(IMethodSymbol? method, Reading reading) => method is null || Call(method, null, reading);

    /// <summary>Whether a write to <paramref name="target"/> is one this reading follows; a field of the pipeline object is added to what was written.</summary>
    private static bool Write(IOperation target, Reading reading)
    {
        var (pipeline, constructing, written, pending, _) = reading;
        switch (target)
        {
            case ILocalReferenceOperation local:
                return !local.Local.IsRef;
            case IParameterReferenceOperation parameter:
                return parameter.Parameter.RefKind == RefKind.None; // a ref parameter's writes are its caller's ref argument's
            case IDiscardOperation:
                return true;
            case IFieldReferenceOperation field when !field.Field.IsStatic:
                // The pipeline's own field, or a field of a struct held in one (`_state.N++`): the outer field is written.
                var owner = field;
                while (owner.Instance is IFieldReferenceOperation outer && !outer.Field.IsStatic && outer.Field.Type.IsValueType)
                {
                    owner = outer;
                }

                if (owner.Instance is IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ImplicitReceiver })
                {
                    return true; // an initializer's: the new object's (`new T { F = … }`, `r with { F = … }`)
                }

                if (owner.Instance is IInstanceReferenceOperation && SymbolEqualityComparer.Default.Equals(owner.Field.ContainingType, constructing))
                {
                    return true; // a constructor's own object
                }

                if (owner.Instance is IInstanceReferenceOperation && SymbolEqualityComparer.Default.Equals(owner.Field.ContainingType, pipeline))
                {
                    written.Add(owner.Field);
                    return true;
                }

                return false;
            case IPropertyReferenceOperation { Instance: IInstanceReferenceOperation { ReferenceKind: InstanceReferenceKind.ImplicitReceiver } } initialized:
                if (initialized.Property.SetMethod is { } init && !init.IsImplicitlyDeclared && init.DeclaringSyntaxReferences.Length > 0)
                {
                    pending.Push(init); // an initializer's, on the new object: what its accessor's body writes besides
                }

                return true;
            case IPropertyReferenceOperation { Instance: IInstanceReferenceOperation } own when constructing is not null && SymbolEqualityComparer.Default.Equals(own.Property.ContainingType, constructing):
                return true; // a constructor's own object
            case IPropertyReferenceOperation { Instance: IInstanceReferenceOperation } property
                when SymbolEqualityComparer.Default.Equals(property.Property.ContainingType, pipeline) && property.Property.Parameters.IsEmpty:
                var backing = pipeline.GetMembers().OfType<IFieldSymbol>().FirstOrDefault(f => SymbolEqualityComparer.Default.Equals(f.AssociatedSymbol, property.Property));
                if (backing is not null && property.Property.SetMethod is { } setter && setter.DeclaringSyntaxReferences.All(r => r.GetSyntax() is AccessorDeclarationSyntax { Body: null, ExpressionBody: null }))
                {
                    written.Add(backing); // an auto-property
                    return true;
                }

                if (property.Property.SetMethod is { } body && body.DeclaringSyntaxReferences.Length > 0)
                {
                    pending.Push(body); // a setter with a body: what it writes
                    return true;
                }

                return false;
            case IArrayElementReferenceOperation element:
                return element.ArrayReference is ILocalReferenceOperation { Local.IsRef: false };
            default:
                return false;
        }
    }

    /// <summary>Whether a call is one this reading follows: into the user's code (its body is read too), or into a core type that changes nothing.</summary>
    private static bool Call(IMethodSymbol method, IOperation? instance, Reading reading, bool read = false)
    {
        if (instance is IFieldReferenceOperation field && field.Type?.IsValueType == true && !method.IsReadOnly && !read && !Write(field, reading))
        {
            return false; // a method of a struct held in a field may change it: the field counts as written
        }

        if (method.IsImplicitlyDeclared || method.DeclaringSyntaxReferences.Length > 0)
        {
            // The user's code: read what it writes. Its writes to any object but the pipeline's are not understood. What
            // the compiler wrote (a record's ==, Equals, ToString) calls the type's own members: read as its callbacks.
            reading.Pending.Push(method);
            Callbacks(method.ContainingType, reading, 0);
            return true;
        }

        if (method.MethodKind is MethodKind.PropertyGet && read)
        {
            return true; // a library's property read (a string's Length, a culture)
        }

        var type = method.ContainingType?.OriginalDefinition;
        return type is not null && (type.IsRecord || type.IsTupleType
            || (type.ContainingType is null && PureTypes.Contains(type.ContainingNamespace.ToDisplayString() + "." + type.MetadataName)));
    }
}
