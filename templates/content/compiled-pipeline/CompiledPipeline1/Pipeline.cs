using Compiled;
using Compiled.Connectors;

namespace CompiledPipeline1;

/// <summary>One order as it arrives: JSON Lines such as {"id":1,"customer":"ada","amount":12.5,"status":"paid"}.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public sealed partial record Order(long Id, string Customer, decimal Amount, string Status);

/// <summary>What the pipeline writes: paid orders with their amount including tax (CSV columns id, customer, gross).</summary>
[Record(Naming = FieldNaming.CamelCase)]
public sealed partial record PaidOrder(long Id, string Customer, decimal Gross);

/// <summary>
/// Reads orders from a JSON Lines file, keeps the paid ones, adds tax and writes CSV files. Change the source and sink
/// from the command line (<c>--set Orders.Path=other.jsonl</c>, <c>--set Paid.Directory=out</c>) or here; add
/// <c>[Transform]</c>s in the order they run.
/// </summary>
[Pipeline(Name = "orders")]
public sealed partial class OrdersPipeline
{
    /// <summary>The tax rate added to every paid order.</summary>
    public const decimal TaxRate = 0.2m;

    [Source] public FileSource<Order, Order.JsonCodec> Orders { get; set; } = new(Path.Combine(AppContext.BaseDirectory, "orders.jsonl"));

    [Transform] static bool IsPaid(Order order) => order.Status == "paid";

    [Transform] static PaidOrder WithTax(Order order) => new(order.Id, order.Customer, decimal.Round(order.Amount * (1 + TaxRate), 2));

    // Typed as ISink<T> so a test can put a CollectionSink in its place (see the test project).
    [Sink] public ISink<PaidOrder> Paid { get; set; } = new FileSink<PaidOrder, PaidOrder.CsvCodec>("paid");
}
