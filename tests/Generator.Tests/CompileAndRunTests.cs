using Compiled.Generator.Tests.Infrastructure;

namespace Compiled.Generator.Tests;

/// <summary>The generated code compiles with the user's, and the pipelines it produces compute the right thing.</summary>
public sealed class CompileAndRunTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Map_only_doubles_every_number(int parallelism)
    {
        var assembly = GeneratorHarness.Run(Scenarios.MapOnly).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.Doubler");
        var result = await LoadedPipelines.RunAsync(pipeline, parallelism);
        Assert.Equal([2, 4, 6, 8, 10], LoadedPipelines.Partitions<int>(pipeline, "Output").SelectMany(p => p));
        Assert.Equal(5, result.RecordsRead);
        Assert.Equal(5, result.Sinks.Single().Records);
    }

    [Fact]
    public async Task Map_filter_map_keeps_adults_and_adds_tax()
    {
        var assembly = GeneratorHarness.Run(Scenarios.MapFilterMap).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.Orders");
        var result = await LoadedPipelines.RunAsync(pipeline, 2);
        Assert.Equal("orders", result.PipelineName);
        // Order 1 turns 17 and is dropped; the others are adults, and only their amounts (with tax) flow on.
        Assert.Equal([20 * 1.1, 30 * 1.1], LoadedPipelines.Partitions<double>(pipeline, "Output").SelectMany(p => p));
        Assert.Equal(3, result.RecordsRead);
    }

    [Fact]
    public async Task FlatMap_emits_every_word_and_the_filter_applies_to_each()
    {
        var assembly = GeneratorHarness.Run(Scenarios.FlatMap).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.WordSplitter");
        await LoadedPipelines.RunAsync(pipeline, 1);
        Assert.Equal(["not"], LoadedPipelines.Partitions<string>(pipeline, "Output").SelectMany(p => p));
    }

    [Fact]
    public async Task Reusable_operator_classes_run_their_operator_methods()
    {
        var assembly = GeneratorHarness.Run(Scenarios.ReusableOperator).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.People");
        await LoadedPipelines.RunAsync(pipeline, 2);
        Assert.Equal(["Person { Name = Bob, Age = 13 }", "Person { Name = Eve, Age = 19 }"], LoadedPipelines.ItemsAsText(pipeline, "Output"));
    }

    [Fact]
    public async Task Instance_operators_keep_state_per_partition()
    {
        var assembly = GeneratorHarness.Run(Scenarios.InstanceState).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.Numbering");
        await LoadedPipelines.RunAsync(pipeline, 2);
        var partitions = LoadedPipelines.Partitions<string>(pipeline, "Output");
        // Each partition numbers its own records from 0: state is not shared between partitions.
        Assert.Equal(["0:10:0", "1:20:1", "2:30:2"], partitions[0]);
        Assert.Equal(["0:40:0", "1:50:1", "2:60:2"], partitions[1]);
        // The inline sink method ran on partition 0's object (the root) for partition 0's records.
        Assert.Equal(3L, LoadedPipelines.Get<long>(pipeline, "Counted"));
    }

    [Fact]
    public async Task Struct_operators_keep_their_state_across_batches_and_operator_sinks_receive_every_record()
    {
        var assembly = GeneratorHarness.Run(Scenarios.StructOperators).Load();
        var pipeline = LoadedPipelines.Create(assembly, "Demo.StructState");
        await LoadedPipelines.RunAsync(pipeline, parallelism: 2, batchSize: 2);

        // Partition 0 (the root object) reads 1, 2, 3 in batches of two; the counter goes on across batches.
        long[] expected = [3 * 1000, 3 * 2001, 3 * 3002];
        var print = LoadedPipelines.Get<object>(pipeline, "Print");
        Assert.Equal(expected, (List<long>)print.GetType().GetProperty("Seen")!.GetValue(print)!);
        var totals = pipeline.GetType().GetField("Total")!.GetValue(pipeline)!;
        Assert.Equal(expected.Sum(), (long)totals.GetType().GetField("Sum")!.GetValue(totals)!);
        Assert.Equal(3L, (long)totals.GetType().GetField("Count")!.GetValue(totals)!);
        var counter = LoadedPipelines.Get<object>(pipeline, "Numbering");
        Assert.Equal(3L, (long)counter.GetType().GetField("_next", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(counter)!);
    }
}
