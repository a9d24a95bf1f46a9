using Compiled.Connectors;
using Compiled.Testing;

namespace CompiledPipeline1.Tests;

/// <summary>
/// The pipeline's logic, tested without files: PipelineTestDriver pushes records through the compiled loop on the
/// calling thread, and the sink is swapped for one that keeps what it receives.
/// </summary>
public sealed class OrdersPipelineTests
{
    [Fact]
    public async Task Paid_orders_get_their_tax_and_the_others_are_dropped()
    {
        var pipeline = new OrdersPipeline();
        var paid = new CollectionSink<PaidOrder>();
        pipeline.Paid = paid;

        await using (var driver = await PipelineTestDriver.StartAsync<Order>(pipeline))
        {
            driver.Push(new Order(1, "ada", 10m, "paid"), new Order(2, "bob", 99m, "cancelled"), new Order(3, "eve", 0.5m, "paid"));
            await driver.CompleteAsync();
        }

        Assert.Equal([new PaidOrder(1, "ada", 12m), new PaidOrder(3, "eve", 0.6m)], paid.Items);
    }
}
