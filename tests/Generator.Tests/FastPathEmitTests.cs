using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>Which loops get the fast path (no bookkeeping until a record fails): only those whose every stage can run a batch again.</summary>
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
    [InlineData("[Transform] public Counter Count { get; } = new();", false)] // a class operator: its state cannot be set back
    [InlineData("private long _n; [Transform] long Number(long x) => x + _n++;", false)] // an instance method: the pipeline's fields
    public void Only_stages_that_can_run_a_batch_again_get_the_fast_path(string declaration, bool fast)
        => Assert.Equal(fast, Generated(declaration).Contains("TryRunFast", StringComparison.Ordinal));
}
