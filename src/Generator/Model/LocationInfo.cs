using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Compiled.Generator.Model;

/// <summary>
/// Where a declaration is, as plain values (file path and span), so that models stay free of <see cref="Location"/>
/// (which pins a syntax tree) and compare by value. The analyzer turns it back into a location in the user's tree; the
/// generator drops them (<see cref="Locations"/>), as positions would make every edit above a declaration a new model.
/// </summary>
internal sealed record LocationInfo(string FilePath, TextSpan Span, LinePositionSpan LineSpan)
{
    public static LocationInfo? From(Location? location)
    {
        if (location is null || location.SourceTree is null)
        {
            return null;
        }

        return new LocationInfo(location.SourceTree.FilePath, location.SourceSpan, location.GetLineSpan().Span);
    }

    public static LocationInfo? From(SyntaxNode node) => From(node.GetLocation());

    public static LocationInfo? From(SyntaxToken token) => From(token.GetLocation());
}
