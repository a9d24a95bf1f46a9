using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>
/// Which loops get the fast path (no bookkeeping until a record fails): only those whose every stage can run a batch
/// again — stateless, or with state the loop can set back (a struct of values, an operator object whose fields hold values).
/// </summary>
public sealed class FastPathEmitTests
{
    private static string Generated(string operatorDeclaration)
    {
        var run = GeneratorHarness.Run($$"""
            using System.Collections.Generic;
            using Compiled;
            using Compiled.Connectors;

            public struct Values { private long _n; public long Apply(long x) => x + _n++; }
            public struct Refs { private List<long> _seen; public long Apply(long x) { (_seen ??= new()).Add(x); return x; } }
            public sealed class Counter { private long _n; public long Apply(long x) => x + _n++; }
            public readonly struct Factor { public Factor(long k) { K = k; } public long K { get; } }
            public sealed class Scale { private readonly long _k; private readonly string _name = "scale"; private readonly Factor _f = new(1); public Scale(long k) => _k = k; public long Apply(long x) => x * _k * _f.K + _name.Length; }
            public class OpenScale { private readonly long _k = 2; public long Apply(long x) => x * _k; }
            public sealed class Keeper { private readonly List<long> _seen = new(); public long Apply(long x) { _seen.Add(x); return x; } }
            public abstract class Base { protected long Calls; }
            public sealed class Derived : Base { private readonly long _k = 2; public long Apply(long x) { Calls++; return x * _k; } }
            public sealed class Settable { public long K { get; set; } = 2; public long Apply(long x) => x * K; }
            public sealed class Captures(long k) { public long Apply(long x) => x + k++; }
            public sealed class Initialises(long k) { private readonly long _k = k; public long K { get; } = k; public long Apply(long x) => x * _k * K; }
            public sealed class GenericCounter<T> { private long _n; public long Apply(long x) => x + _n++; }
            public sealed class GenericScale<T> { private readonly long _k = 2; public long Apply(long x) => x * _k; }
            public sealed class Hidden { private struct State { public long N; } private State _state; public long Apply(long x) => x + _state.N++; }
            public static class Helper { public static long Use(object o, long x) => x; }
            public static class S { public static long N; }
            public struct Pair2 { public long V; public void Deconstruct(out long a, out long b) { S.N++; a = V; b = 0; } }
            public sealed class Loud { public override string ToString() { S.N++; return "x"; } }
            public sealed class Init { public long P { get => 0; init => S.N++; } }
            public readonly struct Cmp : System.IComparable<Cmp> { public readonly long V; public Cmp(long v) => V = v; public int CompareTo(Cmp o) { S.N++; return V.CompareTo(o.V); } }
            public struct Disp : System.IDisposable { public void Dispose() => S.N++; }
            public sealed class Fmt : System.IFormatProvider { public object? GetFormat(System.Type? t) { S.N++; return null; } }
            public readonly record struct Pair(long A, long B);
            public sealed class Named { private string _last = ""; private (int, long) _pair; public long Apply(long x) { _last = x.ToString(); _pair = (1, x); return x + _last.Length + _pair.Item1; } }

            [Pipeline]
            public sealed partial class P
            {
                [Source] public CollectionSource<long> S { get; set; } = new();
                {{operatorDeclaration}}
                [Sink] public CollectionSink<long> O { get; set; } = new();
            }
            """);
        run.AssertClean();
        return string.Concat(run.Sources.Values);
    }

    [Theory]
    [InlineData("[Transform] static long Twice(long x) => x * 2;", true)]
    [InlineData("[Transform] public Values Number { get; set; }", true)] // a struct of values: set back by not writing it back
    [InlineData("[Transform] public Refs Remember { get; set; }", false)] // the list it refers to could not be set back
    [InlineData("[Transform] public Counter Count { get; } = new();", true)] // a class operator whose fields hold values: saved before a batch, set back on failure
    [InlineData("[Transform] public Named Name { get; } = new();", true)] // a string and a tuple of values: set back too
    [InlineData("[Transform] public Hidden Count { get; } = new();", false)] // its state's type is private: the loop cannot name it
    [InlineData("[Transform] public Scale Scaled { get; } = new(3);", true)] // sealed, readonly fields of values: nothing to set back
    [InlineData("[Transform] public OpenScale Scaled { get; } = new();", false)] // not sealed: a derived instance could hold state
    [InlineData("[Transform] public Keeper Keep { get; } = new();", false)] // a readonly field, but it refers to a list it changes
    [InlineData("[Transform] public Derived Scaled { get; } = new();", true)] // its base class (in source) holds a mutable field of a value: set back
    [InlineData("[Transform] public Settable Scaled { get; } = new();", true)] // an auto-property with a setter: its backing field is set back
    [InlineData("[Transform] public Captures Count { get; } = new(1);", false)] // a parameter its method changes lives in a field the compiler does not show
    [InlineData("[Transform] public Initialises Scaled { get; } = new(2);", true)] // parameters only initialise fields: nothing hidden
    [InlineData("[Transform] public GenericCounter<int> Count { get; } = new();", false)] // generic, with a mutable field: not reached
    [InlineData("[Transform] public GenericScale<int> Scaled { get; } = new();", true)] // generic, but nothing can change
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++;", true)] // an instance method: the pipeline's fields of values are saved
    [InlineData("private long _n; public string Last { get; private set; } = \"\"; [Transform] long Number(long x) { Last = x.ToString(); return x + _n++; }", true)] // a string too
    [InlineData("private readonly List<long> _seen = new(); [Transform] long Keep(long x) { _seen.Add(x); return x; }", false)] // the pipeline refers to a list it changes
    [InlineData("private Counter _counter = new(); [Transform] long Count(long x) => _counter.Apply(x);", false)] // an object that is not a stage of the pipeline
    [InlineData("private struct State { public long N; } private State _state; [Transform] long Count(long x) => x + _state.N++;", false)] // its state's type is private: the loop cannot name it
    [InlineData("private long _n; long Next() => _n++; [Transform] long Number(long x) => x + Next();", true)] // through a method of its own: read too
    [InlineData("private long _n; [Transform] long Number(long x) { var p = new Pair(x, _n++); return p.A + p.B + p.ToString().Length; }", true)] // a record made and read
    [InlineData("private static long s_n; [Transform] long Number(long x) => x + s_n++;", false)] // a static field would be written again
    [InlineData("private long _n; [Transform] long Number(long x) { System.Console.WriteLine(x); return x + _n++; }", false)] // a call into a library with effects
    [InlineData("private long _n; [Transform] long Number(long x) => x + System.Threading.Interlocked.Increment(ref _n);", false)] // Interlocked: not a core type that changes nothing
    [InlineData("private long _n; [Transform] long Number(long x) => Helper.Use(this, x + _n++);", false)] // `this` handed on
    [InlineData("private long _n; [Transform] long Number(long x) => x == 13 ? throw new System.InvalidOperationException(\"13\") : x + _n++;", true)] // throwing changes nothing
    // What the compiler or a library calls unasked is read too (an outside test found each of these counting a static twice):
    [InlineData("private long _n; [Transform] long Number(long x) { var (a, b) = new Pair2 { V = x }; return a + b + _n++; }", false)] // Deconstruct
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++ + $\"{new Loud()}\".Length;", false)] // ToString in an interpolation
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++ + new Init { P = 1 }.P;", false)] // an init accessor
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++ + System.Linq.Enumerable.Max(new[] { new Cmp(x), new Cmp(1) }).V;", false)] // CompareTo, called by LINQ
    [InlineData("private long _n; [Transform] long Number(long x) { using (new Disp()) { } return x + _n++; }", false)] // Dispose, called by using
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++ + x.ToString(\"N\", new Fmt()).Length;", false)] // GetFormat, called by the formatting
    [InlineData("private long _n; long Bump(long v) { global::S.N++; return v; } [Transform] long Number(long x) => x + _n++ + System.Linq.Enumerable.Sum(new[] { x }, Bump);", false)] // a method group, called by LINQ
    public void Only_stages_that_can_run_a_batch_again_get_the_fast_path(string declaration, bool fast)
        => Assert.Equal(fast, Generated(declaration).Contains("TryRunFast", StringComparison.Ordinal));

    [Fact]
    public void The_loop_saves_only_the_pipeline_fields_its_methods_write()
    {
        // Another partition's object may hand its totals to this one's other fields while the loop runs (an outside
        // test lost whole partitions' totals when every field was set back): those are not the loop's to set back.
        var generated = Generated("private long _n; private long _others; public void Add(long more) => _others += more; public long Others => _others; [Transform] long Number(long x) => x + _n++;");
        Assert.Contains("TryRunFast", generated, StringComparison.Ordinal);
        Assert.Contains("Name = \"_n\"", generated, StringComparison.Ordinal);
        Assert.DoesNotContain("Name = \"_others\"", generated, StringComparison.Ordinal);
    }
}
