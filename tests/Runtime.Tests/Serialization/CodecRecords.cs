namespace Compiled.Runtime.Tests.Serialization;

public enum Color
{
    Red,
    Green,
    Blue,
}

/// <summary>A nested struct: no attribute needed, it is written inside its parent.</summary>
public readonly record struct Point(int X, int Y);

/// <summary>A nested class.</summary>
public sealed record Address(string Street, string? City);

/// <summary>Every field kind the codecs support.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Everything(
    bool Flag,
    byte Small,
    sbyte Signed,
    short Short,
    ushort UShort,
    int Int,
    uint UInt,
    long Long,
    ulong ULong,
    float Single,
    double Double,
    decimal Decimal,
    char Letter,
    string Text,
    string? Maybe,
    DateTime When,
    DateTimeOffset At,
    Guid Id,
    Color Color,
    int? Optional,
    Color? MaybeColor,
    Point Point,
    Address? Address,
    [Field("utf8_text")] Utf8Text Raw);

/// <summary>The fields System.Text.Json and Compiled both understand, for the agreement tests.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public sealed partial record Comparable(
    bool Flag,
    int Int,
    long Long,
    double Double,
    decimal Decimal,
    string Text,
    string? Maybe,
    DateTime When,
    DateTimeOffset At,
    Guid Id,
    Color Color,
    int? Optional,
    Point Point,
    Address? Address);

/// <summary>Snake case, an explicit name, a settable class with an initializer-only construction.</summary>
[Record(Naming = FieldNaming.SnakeCase)]
public sealed partial class AccessEntry
{
    public string RemoteAddress { get; set; } = "";

    public int StatusCode { get; init; }

    [Field("ms")]
    public double DurationMilliseconds { get; set; }

    public string Summary => $"{StatusCode} {RemoteAddress}";
}

/// <summary>Constructor parameters with default values: a JSON object may leave them out.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct WithDefaults(
    long Id,
    ChangeKind Kind = ChangeKind.Insert,
    Color Color = Color.Blue,
    string Note = "none \"quoted\"",
    int Count = -3,
    long Big = long.MinValue,
    decimal Amount = 0.1m,
    double Ratio = 1e20,
    float Small = -0.5f,
    bool Flag = true,
    char Mark = '\'',
    int? Maybe = 7,
    DateTimeOffset At = default,
    string? Missing = null);
