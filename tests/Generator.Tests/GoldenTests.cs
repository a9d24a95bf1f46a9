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
    [InlineData(nameof(Scenarios.Codecs), Scenarios.Codecs)]
    [InlineData(nameof(Scenarios.LookupJoin), Scenarios.LookupJoin)]
    [InlineData(nameof(Scenarios.AsyncTransform), Scenarios.AsyncTransform)]
    [InlineData(nameof(Scenarios.StreamJoin), Scenarios.StreamJoin)]
    [InlineData(nameof(Scenarios.OperatorObjectState), Scenarios.OperatorObjectState)]
    public void Generated_code_matches_the_golden_files(string scenario, string source)
    {
        var run = GeneratorHarness.Run(source);
        run.AssertClean();
        Golden.AssertMatches(scenario, run.Sources);
    }

    /// <summary>Every golden scenario.</summary>
    public static TheoryData<string, string> Scenarios_ => new()
    {
        { nameof(Scenarios.MapOnly), Scenarios.MapOnly },
        { nameof(Scenarios.MapFilterMap), Scenarios.MapFilterMap },
        { nameof(Scenarios.FlatMap), Scenarios.FlatMap },
        { nameof(Scenarios.ReusableOperator), Scenarios.ReusableOperator },
        { nameof(Scenarios.InstanceState), Scenarios.InstanceState },
        { nameof(Scenarios.StructOperators), Scenarios.StructOperators },
        { nameof(Scenarios.KeyedWindow), Scenarios.KeyedWindow },
        { nameof(Scenarios.TwoKeyedStages), Scenarios.TwoKeyedStages },
        { nameof(Scenarios.Branches), Scenarios.Branches },
        { nameof(Scenarios.Codecs), Scenarios.Codecs },
        { nameof(Scenarios.LookupJoin), Scenarios.LookupJoin },
        { nameof(Scenarios.AsyncTransform), Scenarios.AsyncTransform },
        { nameof(Scenarios.StreamJoin), Scenarios.StreamJoin },
        { nameof(Scenarios.OperatorObjectState), Scenarios.OperatorObjectState },
    };

    [Theory]
    [MemberData(nameof(Scenarios_))]
    public void Every_golden_scenario_compiles_and_emits_with_implicit_usings_off(string scenario, string source)
    {
        // The harness adds no global usings, exactly as a project with <ImplicitUsings>disable</ImplicitUsings>:
        // generated code must name everything with global:: (extension methods included) or it fails here.
        var run = GeneratorHarness.Run(source);
        Assert.True(run.AllDiagnostics.Count == 0, scenario + ":\n" + string.Join("\n", run.AllDiagnostics));
        using var stream = new MemoryStream();
        var emitted = run.Output.Emit(stream);
        Assert.True(emitted.Success, scenario + ":\n" + string.Join("\n", emitted.Diagnostics));
    }

    [Theory]
    [MemberData(nameof(Scenarios_))]
    public void Every_golden_scenario_compiles_with_implicit_usings_on(string scenario, string source)
    {
        const string implicitUsings = "global using System; global using System.Collections.Generic; global using System.IO; global using System.Linq; global using System.Net.Http; global using System.Threading; global using System.Threading.Tasks;";
        var run = GeneratorHarness.Run(GeneratorHarness.Compile(source, implicitUsings));
        Assert.True(run.AllDiagnostics.Count == 0, scenario + ":\n" + string.Join("\n", run.AllDiagnostics));
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
