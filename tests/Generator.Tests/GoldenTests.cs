using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>Snapshots of generated code for representative pipelines (UPDATE_GOLDEN=1 rewrites them).</summary>
public sealed class GoldenTests
{
    [Theory]
    [InlineData(nameof(Scenarios.MapOnly), Scenarios.MapOnly)]
    [InlineData(nameof(Scenarios.MapFilterMap), Scenarios.MapFilterMap)]
    [InlineData(nameof(Scenarios.FlatMap), Scenarios.FlatMap)]
    [InlineData(nameof(Scenarios.ReusableOperator), Scenarios.ReusableOperator)]
    [InlineData(nameof(Scenarios.InstanceState), Scenarios.InstanceState)]
    [InlineData(nameof(Scenarios.StructOperators), Scenarios.StructOperators)]
    [InlineData(nameof(Scenarios.KeyedWindow), Scenarios.KeyedWindow)]
    [InlineData(nameof(Scenarios.TwoKeyedStages), Scenarios.TwoKeyedStages)]
    [InlineData(nameof(Scenarios.Branches), Scenarios.Branches)]
    public void Generated_code_matches_the_golden_files(string scenario, string source)
    {
        var run = GeneratorHarness.Run(source);
        run.AssertClean();
        Golden.AssertMatches(scenario, run.Sources);
    }

    [Fact]
    public void The_fused_loop_calls_every_operator_directly()
    {
        var run = GeneratorHarness.Run(Scenarios.MapFilterMap);
        var code = run.Sources["Demo.Orders.g.cs"];
        var start = code.IndexOf("protected override void Run", StringComparison.Ordinal);
        var loop = code[start..code.IndexOf("protected override int Diagnose", start, StringComparison.Ordinal)];
        Assert.Contains("var r1 = global::Demo.Orders.AgeOneYear(r0);", loop, StringComparison.Ordinal);
        Assert.Contains("if (!global::Demo.Orders.IsAdult(r1)) continue;", loop, StringComparison.Ordinal);
        Assert.Contains("var r3 = global::Demo.Orders.WithTax(r1);", loop, StringComparison.Ordinal);
        // No exception handler in the loop method (it would pin every loop variable to the stack), and no delegates,
        // LINQ, iterators or interface dispatch.
        Assert.DoesNotContain("try", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("catch", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("Func<", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("Invoke(", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("System.Linq", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("yield", loop, StringComparison.Ordinal);
        Assert.DoesNotContain("IMapOperator", loop, StringComparison.Ordinal);
    }
}
