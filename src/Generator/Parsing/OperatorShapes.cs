using System;
using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Compiled.Generator.Parsing;

/// <summary>The result of reading an operator or sink method's signature.</summary>
internal readonly record struct MethodShape(StageShape Shape, TypeRef? Input, TypeRef? Output, string InputModifier, string? Problem)
{
    public bool IsValid => Problem is null && Shape != StageShape.Invalid;

    public static MethodShape Invalid(string problem) => new(StageShape.Invalid, null, null, "", problem);
}

/// <summary>Reads method signatures as operator shapes: map, filter, flatMap, or an inline sink.</summary>
internal static class OperatorShapes
{
    private static readonly HashSet<string> NotOperators = new()
    {
        "Equals", "GetHashCode", "ToString", "Deconstruct", "Dispose", "DisposeAsync", "GetType", "Finalize", "PrintMembers",
    };

    /// <summary>Reads a transform method: <c>U M(T)</c> (map), <c>bool M(T)</c> (filter), <c>void M(T, Emitter&lt;U&gt;)</c> (flatMap).</summary>
    public static MethodShape ReadTransform(IMethodSymbol method)
    {
        if (CommonProblem(method) is { } problem)
        {
            return MethodShape.Invalid(problem);
        }

        var parameters = method.Parameters;
        if (parameters.Length == 2)
        {
            if (!method.ReturnsVoid || EmitterArgument(parameters[1].Type) is not { } emitted || parameters[1].RefKind != RefKind.None)
            {
                return MethodShape.Invalid("a two-parameter operator must be 'void M(T input, Emitter<U> output)'");
            }

            if (InputProblem(parameters[0]) is { } inputProblem)
            {
                return MethodShape.Invalid(inputProblem);
            }

            return new MethodShape(StageShape.FlatMap, Symbols.ToTypeRef(parameters[0].Type), Symbols.ToTypeRef(emitted), Modifier(parameters[0]), null);
        }

        if (parameters.Length != 1)
        {
            return MethodShape.Invalid("an operator takes one record (and, for a flatMap, an Emitter<U>)");
        }

        if (InputProblem(parameters[0]) is { } problemOfInput)
        {
            return MethodShape.Invalid(problemOfInput);
        }

        if (method.ReturnsVoid)
        {
            return MethodShape.Invalid("it returns void; a transform returns its output (map), a bool (filter), or emits through an Emitter<U> (flatMap), and a method that only consumes records is a [Sink]");
        }

        if (method.ReturnType.IsRefLikeType)
        {
            return MethodShape.Invalid($"it returns the ref struct '{Symbols.DisplayName(method.ReturnType)}', which cannot be stored in a batch");
        }

        var input = Symbols.ToTypeRef(parameters[0].Type);
        return method.ReturnType.SpecialType == SpecialType.System_Boolean
            ? new MethodShape(StageShape.Filter, input, input, Modifier(parameters[0]), null)
            : new MethodShape(StageShape.Map, input, Symbols.ToTypeRef(method.ReturnType), Modifier(parameters[0]), null);
    }

    /// <summary>Whether a method is asynchronous (declared <c>async</c>, or returns a task or an async sequence).</summary>
    public static bool IsAsynchronous(IMethodSymbol method) => method.IsAsync || IsAwaitable(method.ReturnType);

    /// <summary>
    /// Reads an asynchronous transform: <c>ValueTask&lt;U&gt; M(T record[, CancellationToken])</c> (a map), or
    /// <c>ValueTask&lt;IEnumerable&lt;U&gt;&gt;</c> (a flatMap). The problem, if any, is a CMPL0144 message.
    /// </summary>
    public static (MethodShape Shape, bool Flat, bool TakesToken) ReadAsyncTransform(IMethodSymbol method)
    {
        if (method.IsGenericMethod)
        {
            return (MethodShape.Invalid("is generic; an operator is a non-generic method"), false, false);
        }

        var returned = method.ReturnType as INamedTypeSymbol;
        if (returned is null || !Symbols.IsNamed(returned, KnownNames.ValueTask))
        {
            var what = method.ReturnsVoid ? "void" : Symbols.DisplayName(method.ReturnType);
            var hint = returned is { IsGenericType: true } && returned.OriginalDefinition.ToDisplayString() == "System.Threading.Tasks.Task<TResult>"
                ? $" (to call a method that returns Task<{Symbols.DisplayName(returned.TypeArguments[0])}>, write 'async ValueTask<{Symbols.DisplayName(returned.TypeArguments[0])}> {method.Name}(...) => await Other(...)')"
                : "";
            return (MethodShape.Invalid($"returns '{what}'; an asynchronous transform returns ValueTask<U> (one result per record) or ValueTask<IEnumerable<U>> (any number){hint}"), false, false);
        }

        var parameters = method.Parameters;
        var takesToken = parameters.Length == 2 && parameters[1].Type is INamedTypeSymbol token && Symbols.IsNamed(token, KnownNames.CancellationToken) && parameters[1].RefKind == RefKind.None;
        if (parameters.Length is not (1 or 2) || (parameters.Length == 2 && !takesToken))
        {
            return (MethodShape.Invalid("must take the record, and may take a CancellationToken after it: 'async ValueTask<U> M(T record, CancellationToken cancellationToken)'"), false, false);
        }

        if (InputProblem(parameters[0]) is { } inputProblem)
        {
            return (MethodShape.Invalid(inputProblem), false, false);
        }

        var result = returned.TypeArguments[0];
        var flat = result is INamedTypeSymbol sequence && Symbols.IsNamed(sequence, KnownNames.Enumerable);
        var output = flat ? ((INamedTypeSymbol)result).TypeArguments[0] : result;
        if (output.IsRefLikeType || output.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
        {
            return (MethodShape.Invalid($"produces '{Symbols.DisplayName(output)}', which cannot be stored in a batch"), false, false);
        }

        return (new MethodShape(StageShape.Async, Symbols.ToTypeRef(parameters[0].Type), Symbols.ToTypeRef(output), Modifier(parameters[0]), null), flat, takesToken);
    }

    /// <summary>Reads an inline sink method: <c>void M(T)</c>.</summary>
    public static MethodShape ReadSink(IMethodSymbol method)
    {
        if (CommonProblem(method) is { } problem)
        {
            return MethodShape.Invalid(problem);
        }

        if (!method.ReturnsVoid || method.Parameters.Length != 1)
        {
            return MethodShape.Invalid("a sink method must be 'void M(T record)'");
        }

        if (InputProblem(method.Parameters[0]) is { } inputProblem)
        {
            return MethodShape.Invalid(inputProblem);
        }

        var input = Symbols.ToTypeRef(method.Parameters[0].Type);
        return new MethodShape(StageShape.MethodSink, input, input, Modifier(method.Parameters[0]), null);
    }

    /// <summary>
    /// The operator method of an operator class: the one marked [Operator], else the only public or internal method
    /// of an operator shape. Returns the method, or a diagnostic id and argument explaining why there is none.
    /// </summary>
    public static (IMethodSymbol? Method, DiagnosticDescriptor? Diagnostic, string? Detail) FindOperatorMethod(INamedTypeSymbol type)
        => FindMethod(type, LooksLikeOperator);

    /// <summary>The sink method of an operator object used as a sink: the one marked [Operator], else the only <c>void M(T)</c>.</summary>
    public static (IMethodSymbol? Method, DiagnosticDescriptor? Diagnostic, string? Detail) FindSinkMethod(INamedTypeSymbol type)
        => FindMethod(type, static m => m.Parameters.Length == 1 && m.ReturnsVoid);

    /// <summary>
    /// How the loop holds the operator object of a property or field stage, or a problem when a mutable struct sits
    /// in a member its state cannot be written back to.
    /// </summary>
    public static (OperatorStorage Storage, string? Problem) StorageOf(ISymbol member, ITypeSymbol type, IMethodSymbol method)
    {
        if (method.IsStatic)
        {
            return (OperatorStorage.None, null);
        }

        if (!type.IsValueType)
        {
            return (OperatorStorage.Reference, null);
        }

        if (member.IsStatic)
        {
            return (OperatorStorage.StaticStruct, null);
        }

        if (type is INamedTypeSymbol { IsReadOnly: true } || method.IsReadOnly)
        {
            return (OperatorStorage.ReadOnlyStruct, null);
        }

        var writable = member switch
        {
            IFieldSymbol field => !field.IsReadOnly && !field.IsConst,
            IPropertySymbol property => property.SetMethod is { IsInitOnly: false },
            _ => false,
        };

        return writable
            ? (OperatorStorage.HoistedStruct, null)
            : (OperatorStorage.None, $"'{Symbols.DisplayName(type)}' is a mutable struct, and '{member.Name}' cannot be assigned, so the operator's state would be lost after every call; make '{member.Name}' a mutable field or give it a setter, or make the struct readonly");
    }

    /// <summary>
    /// The mutable fields of an operator object of a class whose whole state they are, so that saving them before a
    /// batch and setting them back after a failure undoes everything the batch did to it: a sealed class
    /// declared in source (its private fields are all visible), every instance field of it and of its base classes
    /// holding only values — numbers, bools, enums, strings, structs of such — readonly or not. Empty: nothing can
    /// change, so calling the object again for a batch's records is as harmless as calling a static operator again.
    /// Null: the class keeps state the loop cannot save — a field holding an object, a base class from a library, a
    /// generic class with mutable fields, a mutable field whose type or class generated code cannot name (private),
    /// or primary constructor parameters its members use (kept in fields the compiler does not show).
    /// <paramref name="skip"/> leaves fields out of that judgement: a pipeline's own state leaves out the members that
    /// hold its connectors and operator objects, which its methods read but do not replace.
    /// </summary>
    public static List<SavedField>? StateOf(ITypeSymbol type, Func<IFieldSymbol, bool>? skip = null)
    {
        if (type is not INamedTypeSymbol { TypeKind: TypeKind.Class, IsSealed: true } named)
        {
            return null;
        }

        var saved = new List<SavedField>();
        var generic = false;
        for (var t = named; t is not null && t.SpecialType != SpecialType.System_Object; t = t.BaseType)
        {
            if (!t.Locations.Any(l => l.IsInSource) || CapturesParameters(t))
            {
                return null; // private fields not all visible here: a library's class, or parameters captured into hidden fields
            }

            generic |= t.IsGenericType;

            foreach (var field in InstanceFields(t))
            {
                if (skip?.Invoke(field) == true)
                {
                    continue;
                }

                if (!HoldsOnlyValues(field.Type, 0))
                {
                    return null;
                }

                if (!field.IsReadOnly)
                {
                    if (!Visible(field.Type) || !Visible(t))
                    {
                        return null; // the generated loop could not name the field's type (a private nested struct) or its class
                    }

                    saved.Add(new SavedField(Symbols.ToTypeRef(t).FullName, field.Name, Symbols.ToTypeRef(field.Type).FullName));
                }
            }
        }

        return generic && saved.Count > 0 ? null : saved; // the loop reaches a generic class's fields only through its own type arguments
    }

    /// <summary>
    /// Whether a class (not a record) declared with parameters uses one of them in a member's body: the compiler then
    /// keeps it in a field that is not among the type's members, so its state is not all visible. A parameter used only
    /// to initialise fields and properties, or hidden by a member of the same name, is not kept. Any identifier of a
    /// parameter's name in a body counts (a local of that name too): when in doubt, the loop keeps its bookkeeping.
    /// </summary>
    private static bool CapturesParameters(INamedTypeSymbol type)
    {
        if (type.IsRecord)
        {
            return false; // a positional parameter names a property, which hides it
        }

        var declarations = type.DeclaringSyntaxReferences.Select(r => r.GetSyntax()).OfType<TypeDeclarationSyntax>().ToList();
        var parameters = new HashSet<string>(declarations
            .SelectMany(d => d.ParameterList?.Parameters ?? default)
            .Select(p => p.Identifier.ValueText)
            .Where(name => type.GetMembers(name).IsEmpty));
        if (parameters.Count == 0)
        {
            return false;
        }

        foreach (var member in declarations.SelectMany(d => d.Members))
        {
            SyntaxNode? body = member switch
            {
                FieldDeclarationSyntax => null, // initialisers run once, in the constructor
                PropertyDeclarationSyntax property => (SyntaxNode?)property.AccessorList ?? property.ExpressionBody,
                _ => member,
            };
            if (body is not null && body.DescendantNodesAndSelf().OfType<IdentifierNameSyntax>().Any(id => parameters.Contains(id.Identifier.ValueText)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether code elsewhere in the assembly can name <paramref name="type"/>: it, the types it is nested in and its type arguments are public or internal.</summary>
    private static bool Visible(ITypeSymbol type)
    {
        if (type is not INamedTypeSymbol named)
        {
            return type.SpecialType != SpecialType.None;
        }

        for (var t = named; t is not null; t = t.ContainingType)
        {
            if (t.DeclaredAccessibility is not (Accessibility.Public or Accessibility.Internal or Accessibility.ProtectedOrInternal))
            {
                return false;
            }
        }

        return named.TypeArguments.All(Visible);
    }

    private static IEnumerable<IFieldSymbol> InstanceFields(ITypeSymbol type)
        => type.GetMembers().OfType<IFieldSymbol>().Where(field => !field.IsStatic && !field.IsConst);

    private static bool HoldsOnlyValues(ITypeSymbol type, int depth)
    {
        if (type.SpecialType == SpecialType.System_String || type.TypeKind == TypeKind.Enum)
        {
            return true;
        }

        if (!type.IsValueType || type is ITypeParameterSymbol || depth > 8)
        {
            return false;
        }

        if (type.SpecialType != SpecialType.None)
        {
            return true; // numbers, bool, char, decimal, DateTime
        }

        return InstanceFields(type).All(field => HoldsOnlyValues(field.Type, depth + 1));
    }

    private static (IMethodSymbol? Method, DiagnosticDescriptor? Diagnostic, string? Detail) FindMethod(INamedTypeSymbol type, System.Func<IMethodSymbol, bool> looksRight)
    {
        var methods = CandidateMethods(type).ToList();
        var marked = methods.Where(m => Symbols.HasAttribute(m, KnownNames.OperatorAttribute)).ToList();
        if (marked.Count == 1)
        {
            return (marked[0], null, null);
        }

        if (marked.Count > 1)
        {
            return (null, DiagnosticDescriptors.AmbiguousOperatorMethod, Describe(marked));
        }

        var shaped = methods.Where(looksRight).ToList();
        return shaped.Count switch
        {
            1 => (shaped[0], null, null),
            0 => (null, DiagnosticDescriptors.NoOperatorMethod, null),
            // A library type with many such methods (List<T>.Add, Remove, ...) was not written as an operator:
            // say it has none, rather than asking to mark one of its methods.
            _ when !type.Locations.Any(l => l.IsInSource) => (null, DiagnosticDescriptors.NoOperatorMethod, null),
            _ => (null, DiagnosticDescriptors.AmbiguousOperatorMethod, Describe(shaped)),
        };
    }

    private static IEnumerable<IMethodSymbol> CandidateMethods(INamedTypeSymbol type)
    {
        var overridden = new HashSet<IMethodSymbol>(SymbolEqualityComparer.Default);
        for (var current = type; current is not null && current.SpecialType is not (SpecialType.System_Object or SpecialType.System_ValueType); current = current.BaseType)
        {
            foreach (var method in current.GetMembers().OfType<IMethodSymbol>())
            {
                if (method.OverriddenMethod is { } baseMethod)
                {
                    overridden.Add(baseMethod.OriginalDefinition);
                }

                if (method.MethodKind == MethodKind.Ordinary
                    && !method.IsImplicitlyDeclared
                    && method.DeclaredAccessibility is Accessibility.Public or Accessibility.Internal
                    && !NotOperators.Contains(method.Name)
                    && !overridden.Contains(method.OriginalDefinition))
                {
                    yield return method;
                }
            }
        }
    }

    /// <summary>A method that a reader would take for an operator: one record in and a value out, or a record and an emitter.</summary>
    private static bool LooksLikeOperator(IMethodSymbol method) => method.Parameters.Length switch
    {
        1 => !method.ReturnsVoid,
        2 => EmitterArgument(method.Parameters[1].Type) is not null,
        _ => false,
    };

    private static string Describe(IEnumerable<IMethodSymbol> methods)
        => string.Join(", ", methods.Select(m => m.Name + "(" + string.Join(", ", m.Parameters.Select(p => Symbols.DisplayName(p.Type))) + ")"));

    private static string? CommonProblem(IMethodSymbol method)
    {
        if (method.IsGenericMethod)
        {
            return "it is generic; an operator is a non-generic method (make the class generic instead)";
        }

        if (method.ReturnsByRef || method.ReturnsByRefReadonly)
        {
            return "it returns by reference; return the value instead";
        }

        if (method.IsAsync || IsAwaitable(method.ReturnType))
        {
            return "it is asynchronous; an asynchronous transform is a [Transform] method of the pipeline class returning ValueTask<U> (see docs/joins.md), and other operators and sinks are synchronous";
        }

        return null;
    }

    private static string? InputProblem(IParameterSymbol parameter)
    {
        if (parameter.RefKind is RefKind.Ref or RefKind.Out)
        {
            return $"its input is passed by '{(parameter.RefKind == RefKind.Ref ? "ref" : "out")}'; take the record by value or by 'in'";
        }

        if (parameter.Type.IsRefLikeType)
        {
            return $"its input is the ref struct '{Symbols.DisplayName(parameter.Type)}', which cannot be stored in a batch";
        }

        if (parameter.Type.TypeKind is TypeKind.Pointer or TypeKind.FunctionPointer)
        {
            return "its input is a pointer, which cannot be stored in a batch";
        }

        return null;
    }

    private static string Modifier(IParameterSymbol parameter)
        => parameter.RefKind is RefKind.In or RefKind.RefReadOnlyParameter ? "in " : "";

    private static ITypeSymbol? EmitterArgument(ITypeSymbol type)
        => type is INamedTypeSymbol named && Symbols.IsNamed(named, KnownNames.Emitter) ? named.TypeArguments[0] : null;

    private static bool IsAwaitable(ITypeSymbol type)
    {
        if (type is not INamedTypeSymbol named)
        {
            return false;
        }

        var name = named.OriginalDefinition.ToDisplayString();
        return name is "System.Threading.Tasks.Task" or "System.Threading.Tasks.Task<TResult>"
            or "System.Threading.Tasks.ValueTask" or "System.Threading.Tasks.ValueTask<TResult>"
            or "System.Collections.Generic.IAsyncEnumerable<T>";
    }
}
