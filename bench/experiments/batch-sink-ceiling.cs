// What handing records to a batch sink costs in plain C#, with no framework: the lookup join's hand-written loop
// (sales enriched from a Dictionary of customers, amounts and name lengths summed) written three ways — in one pass;
// writing each enriched record (two string references) into a 1,024-record buffer that a second pass sums, as an
// ISink receives them; and the same with the buffer holding no references. bench/RESULTS.md, "Lookup joins", cites it.
// Run: dotnet run -c Release bench/experiments/batch-sink-ceiling.cs
using System.Diagnostics;
using System.Runtime.CompilerServices;

var n = 5_000_000;
var rnd = new Random(1);
var customers = new Dictionary<int, Customer>();
for (var i = 0; i < 10_000; i++) customers[i] = new Customer(i, "name " + i, "country " + (i % 50));
var sales = new Sale[n];
for (var i = 0; i < n; i++) sales[i] = new Sale(i, rnd.Next(10_000), rnd.NextDouble() * 100);
var buffer = new Enriched[1024];
var plain = new Plain[1024];
double sink = 0;
for (var round = 0; round < 9; round++)
{
    foreach (var (name, body) in new (string, Func<double>)[] { ("direct", Direct), ("buffer with refs", Buffered), ("buffer without refs", BufferedPlain) })
    {
        GC.Collect();
        var sw = Stopwatch.StartNew();
        sink += body();
        if (round >= 4) Console.WriteLine($"{name,-22} {sw.Elapsed.TotalMilliseconds,8:F1} ms");
    }
}
Console.WriteLine(sink > 0 ? "" : "x");

double Direct()
{
    double amount = 0; long chars = 0;
    foreach (ref readonly var s in sales.AsSpan())
    {
        if (customers.TryGetValue(s.CustomerId, out var c)) { var e = new Enriched(s.Id, c.Name, c.Country, s.Amount); amount += e.Amount; chars += e.Name.Length + e.Country.Length; }
    }
    return amount + chars;
}

double Buffered()
{
    double amount = 0; long chars = 0;
    var span = sales.AsSpan();
    for (var start = 0; start < span.Length; start += 1024)
    {
        var batch = span.Slice(start, Math.Min(1024, span.Length - start));
        var count = 0;
        foreach (ref readonly var s in batch)
        {
            if (customers.TryGetValue(s.CustomerId, out var c)) buffer[count++] = new Enriched(s.Id, c.Name, c.Country, s.Amount);
        }
        (amount, chars) = Sum(buffer.AsSpan(0, count), amount, chars);
    }
    return amount + chars;
}

double BufferedPlain()
{
    double amount = 0; long chars = 0;
    var span = sales.AsSpan();
    for (var start = 0; start < span.Length; start += 1024)
    {
        var batch = span.Slice(start, Math.Min(1024, span.Length - start));
        var count = 0;
        foreach (ref readonly var s in batch)
        {
            if (customers.TryGetValue(s.CustomerId, out var c)) plain[count++] = new Plain(s.Id, c.Name.Length, c.Country.Length, s.Amount);
        }
        foreach (ref readonly var p in plain.AsSpan(0, count)) { amount += p.Amount; chars += p.NameLength + p.CountryLength; }
    }
    return amount + chars;
}

[MethodImpl(MethodImplOptions.NoInlining)]
static (double, long) Sum(ReadOnlySpan<Enriched> records, double amount, long chars)
{
    foreach (ref readonly var r in records) { amount += r.Amount; chars += r.Name.Length + r.Country.Length; }
    return (amount, chars);
}

sealed record Customer(int Id, string Name, string Country);
readonly record struct Sale(int Id, int CustomerId, double Amount);
readonly record struct Enriched(int Id, string Name, string Country, double Amount);
readonly record struct Plain(int Id, int NameLength, int CountryLength, double Amount);
