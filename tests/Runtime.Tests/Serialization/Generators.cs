using CsCheck;

namespace Compiled.Runtime.Tests.Serialization;

/// <summary>CsCheck generators for codec records: strings full of what breaks formats.</summary>
internal static class Generators
{
    /// <summary>Strings built from pieces that need quoting or escaping in JSON and CSV, and multi-byte text.</summary>
    public static readonly Gen<string> Text = Gen.OneOf(
            Gen.Const("\""), Gen.Const(","), Gen.Const("\n"), Gen.Const("\r\n"), Gen.Const("\\"), Gen.Const("\t"),
            Gen.Const("\u0001"), Gen.Const(" "), Gen.Const("é"), Gen.Const("中文"), Gen.Const("😀"), Gen.Const("𝄞"),
            Gen.Const("\"\""), Gen.Const("'"), Gen.Const("null"), Gen.Const("{}"),
            Gen.Char['a', 'z'].Select(c => c.ToString()),
            Gen.Int[0, 99999].Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        .Array[0, 10]
        .Select(parts => string.Concat(parts));

    public static readonly Gen<string?> MaybeText = Gen.Frequency((1, Gen.Const(default(string)).Select(s => (string?)s)), (4, Text.Select(t => (string?)t)));

    public static readonly Gen<char> Letter = Gen.OneOf(Gen.Char['\u0020', '\uD7FF'], Gen.Char['\uE000', '\uFFFD'], Gen.OneOf('"', ',', '\n', '\\'));

    public static readonly Gen<DateTime> When = Gen.Select(
        Gen.Long[DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks],
        Gen.Bool,
        (ticks, utc) => new DateTime(ticks, utc ? DateTimeKind.Utc : DateTimeKind.Unspecified));

    public static readonly Gen<DateTimeOffset> At = Gen.Select(
        Gen.Long[DateTime.MinValue.Ticks + TimeSpan.TicksPerDay, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay],
        Gen.Int[-14 * 60, 14 * 60],
        (ticks, minutes) => new DateTimeOffset(ticks, TimeSpan.FromMinutes(minutes)));

    public static readonly Gen<double> Double = Gen.Frequency(
        (10, Gen.Double),
        (1, Gen.OneOf(double.NaN, double.PositiveInfinity, double.NegativeInfinity, 0.0, -0.0, double.Epsilon, double.MaxValue, double.MinValue)));

    public static readonly Gen<float> Single = Gen.Frequency(
        (10, Gen.Float),
        (1, Gen.OneOf(float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, float.Epsilon, float.MaxValue)));

    public static readonly Gen<Point> Point = Gen.Select(Gen.Int, Gen.Int, (x, y) => new Point(x, y));

    public static readonly Gen<Address?> Address = Gen.Frequency(
        (1, Gen.Const(default(Address)).Select(a => (Address?)a)),
        (3, Gen.Select(Text, MaybeText, (street, city) => (Address?)new Address(street, city))));

    public static readonly Gen<Everything> Everything =
        Gen.Select(
            Gen.Select(Gen.Bool, Gen.Byte, Gen.SByte, Gen.Short, Gen.UShort, Gen.Int, Gen.UInt, Gen.Long),
            Gen.Select(Gen.ULong, Single, Double, Gen.Decimal, Letter, Text, MaybeText, When),
            Gen.Select(At, Gen.Guid, Gen.Enum<Color>(), Gen.Int.Nullable(), Gen.Enum<Color>().Nullable(), Point, Address, Text),
            (a, b, c) => new Everything(
                a.Item1, a.Item2, a.Item3, a.Item4, a.Item5, a.Item6, a.Item7, a.Item8,
                b.Item1, b.Item2, b.Item3, b.Item4, b.Item5, b.Item6, b.Item7, b.Item8,
                c.Item1, c.Item2, c.Item3, c.Item4, c.Item5, c.Item6, c.Item7, Utf8Text.From(c.Item8)));

    public static readonly Gen<Comparable> Comparable =
        Gen.Select(
            Gen.Select(Gen.Bool, Gen.Int, Gen.Long, Double, Gen.Decimal, Text, MaybeText),
            Gen.Select(When, At, Gen.Guid, Gen.Enum<Color>(), Gen.Int.Nullable(), Point, Address),
            (a, b) => new Comparable(a.Item1, a.Item2, a.Item3, a.Item4, a.Item5, a.Item6, a.Item7, b.Item1, b.Item2, b.Item3, b.Item4, b.Item5, b.Item6, b.Item7));
}
