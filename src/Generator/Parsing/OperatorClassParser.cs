using System.Collections.Generic;
using System.Linq;
using Compiled.Generator.Diagnostics;
using Compiled.Generator.Model;
using Microsoft.CodeAnalysis;

namespace Compiled.Generator.Parsing;

/// <summary>Reads a reusable <c>[Transform]</c> operator class into an <see cref="OperatorClassModel"/>.</summary>
internal static class OperatorClassParser
{
    public static OperatorClassModel Parse(INamedTypeSymbol type)
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

        var shape = StageShape.Invalid;
        MethodShape read = default;
        var (method, diagnostic, detail) = OperatorShapes.FindOperatorMethod(type);
        if (method is null)
        {
            diagnostics.Add(detail is null
                ? DiagnosticInfo.Create(diagnostic!, location, display)
                : DiagnosticInfo.Create(diagnostic!, location, display, detail));
        }
        else
        {
            read = OperatorShapes.ReadTransform(method);
            if (read.IsValid)
            {
                shape = read.Shape;
            }
            else
            {
                diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedSignature, Symbols.IdentifierLocation(method), display + "." + method.Name, "an operator", read.Problem!));
            }
        }

        var interfaceName = shape switch
        {
            StageShape.Map => "Compiled.IMapOperator`2",
            StageShape.Filter => "Compiled.IFilterOperator`1",
            StageShape.FlatMap => "Compiled.IFlatMapOperator`2",
            _ => null,
        };

        var alreadyImplements = interfaceName is not null && type.AllInterfaces.Any(i => Symbols.IsNamed(i, interfaceName));

        return new OperatorClassModel(
            Symbols.NamespaceOf(type),
            type.Name,
            Symbols.TypeParameterList(type),
            Symbols.Keyword(type),
            Symbols.ContainingTypes(type),
            isPartial,
            shape,
            method?.Name,
            method?.IsStatic ?? false,
            read.InputModifier ?? "",
            read.Input,
            read.Output,
            alreadyImplements,
            location,
            diagnostics.ToEquatableArray());
    }
}
