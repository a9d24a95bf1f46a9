using System.Reactive.Concurrency;
using System.Reactive.Linq;
using System.Threading.Channels;
using System.Threading.Tasks.Dataflow;
using Akka.Actor;
using Akka.Streams;
using Akka.Streams.Dsl;
using BenchmarkDotNet.Attributes;
using Compiled.Bench;
using Compiled.Connectors;
using Compiled.Runtime;
using Compiled.Testing;
using ZLinq;

namespace Compiled.Benchmarks;

/// <summary>
/// DESIGN.md's workload — 10 M records of a 32-byte struct, map (Age + 1) → filter (Age ≥ 18) → map (Amount × 1.1)
/// → sum — implemented by Compiled (the generated loop alone; through the runtime at parallelism 1 and 2), by hand,
/// and by each peer. Every benchmark checks its count and sum against the hand loop's and throws if they differ.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class PipelineBenchmarks
{
    private const int Batch = 1024;
    private Order[] _orders = [];
    private Result _expected;
    private ActorSystem? _actors;
    private IMaterializer? _materializer;

    [Params(OrderWorkload.DefaultCount)]
    public int Records { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _orders = OrderWorkload.Create(Records);
        _expected = OrderWorkload.HandLoop(_orders);
        _actors = ActorSystem.Create("bench", "akka.loglevel = WARNING");
        _materializer = _actors.Materializer();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _actors?.Terminate().Wait();
    }

    [Benchmark(Baseline = true, Description = "hand-written loop")]
    public Result HandLoop() => OrderWorkload.HandLoop(_orders).Verify(_expected, "hand loop");

    /// <summary>
    /// The generated loop alone, no runtime around it: the array through the fused chain in chunks of 64 Ki records.
    /// (Pushed in one call, the loop would run as on-stack-replacement code: the benchmark calls it fewer than the 30
    /// times after which the JIT compiles its final tier, while a real run calls it once per batch.)
    /// </summary>
    [Benchmark(Description = "Compiled: generated loop")]
    public async Task<Result> CompiledFused()
    {
        FusedOrders.ResetShared();
        var pipeline = new FusedOrders();
        await using (var driver = await PipelineTestDriver.StartAsync<Order>(pipeline))
        {
            OrderWorkload.PushInChunks(driver, _orders);
        }

        return pipeline.Result.Verify(_expected, "Compiled generated loop");
    }

    /// <summary>Through the runtime: collection source, partitions, batches, the struct sink fused into the loop.</summary>
    [Benchmark(Description = "Compiled: runtime, parallelism 1")]
    public Task<Result> CompiledRuntime1() => RunRuntime(1);

    [Benchmark(Description = "Compiled: runtime, parallelism 2")]
    public Task<Result> CompiledRuntime2() => RunRuntime(2);

    /// <summary>Through the runtime with a connector sink: every surviving record is written to the port and summed by the sink.</summary>
    [Benchmark(Description = "Compiled: runtime p1, connector sink")]
    public async Task<Result> CompiledRuntimeConnector()
    {
        var pipeline = new RuntimeOrders { Orders = new CollectionSource<Order>(_orders) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = 1 });
        return pipeline.Total.Result.Verify(_expected, "Compiled runtime, connector sink");
    }

    private async Task<Result> RunRuntime(int parallelism)
    {
        FusedOrders.ResetShared();
        var pipeline = new FusedOrders { Orders = new CollectionSource<Order>(_orders) };
        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism });
        return pipeline.Result.Verify(_expected, $"Compiled runtime p={parallelism}");
    }

    [Benchmark(Description = "System.Linq")]
    public Result Linq()
    {
        double sum = 0;
        long count = 0;
        foreach (var o in _orders.Select(OrderWorkload.Birthday).Where(OrderWorkload.IsAdult).Select(OrderWorkload.WithTax))
        {
            sum += o.Amount;
            count++;
        }

        return new Result(count, sum).Verify(_expected, "System.Linq");
    }

    [Benchmark(Description = "ZLinq")]
    public Result ZLinq()
    {
        double sum = 0;
        long count = 0;
        foreach (var o in _orders.AsValueEnumerable().Select(OrderWorkload.Birthday).Where(OrderWorkload.IsAdult).Select(OrderWorkload.WithTax))
        {
            sum += o.Amount;
            count++;
        }

        return new Result(count, sum).Verify(_expected, "ZLinq");
    }

    [Benchmark(Description = "Channels, per record")]
    public async Task<Result> ChannelsPerRecord()
    {
        var channel = Channel.CreateBounded<Order>(new BoundedChannelOptions(Batch) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(async () =>
        {
            foreach (var o in _orders)
            {
                await channel.Writer.WriteAsync(o);
            }

            channel.Writer.Complete();
        });
        double sum = 0;
        long count = 0;
        await foreach (var order in channel.Reader.ReadAllAsync())
        {
            var o = OrderWorkload.Birthday(order);
            if (!OrderWorkload.IsAdult(o))
            {
                continue;
            }

            sum += OrderWorkload.WithTax(o).Amount;
            count++;
        }

        await producer;
        return new Result(count, sum).Verify(_expected, "Channels per record");
    }

    [Benchmark(Description = "Channels, batches of 1024")]
    public async Task<Result> ChannelsBatched()
    {
        var channel = Channel.CreateBounded<ArraySegment<Order>>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(async () =>
        {
            for (var i = 0; i < _orders.Length; i += Batch)
            {
                await channel.Writer.WriteAsync(new ArraySegment<Order>(_orders, i, Math.Min(Batch, _orders.Length - i)));
            }

            channel.Writer.Complete();
        });
        double sum = 0;
        long count = 0;
        await foreach (var batch in channel.Reader.ReadAllAsync())
        {
            foreach (var order in batch.AsSpan())
            {
                var o = OrderWorkload.Birthday(order);
                if (!OrderWorkload.IsAdult(o))
                {
                    continue;
                }

                sum += OrderWorkload.WithTax(o).Amount;
                count++;
            }
        }

        await producer;
        return new Result(count, sum).Verify(_expected, "Channels batched");
    }

    [Benchmark(Description = "TPL Dataflow, per record")]
    public async Task<Result> DataflowPerRecord()
    {
        var link = new DataflowLinkOptions { PropagateCompletion = true };
        var bounded = new ExecutionDataflowBlockOptions { BoundedCapacity = Batch };
        var birthday = new TransformBlock<Order, Order>(OrderWorkload.Birthday, bounded);
        var tax = new TransformBlock<Order, Order>(OrderWorkload.WithTax, bounded);
        double sum = 0;
        long count = 0;
        var total = new ActionBlock<Order>(o => { sum += o.Amount; count++; }, bounded);
        birthday.LinkTo(tax, link, OrderWorkload.IsAdult);
        // Only records the filter rejects may go to the null target: a catch-all link would also swallow adults
        // whenever the bounded next block is full (the answer check caught exactly that).
        birthday.LinkTo(DataflowBlock.NullTarget<Order>(), o => !OrderWorkload.IsAdult(o));
        tax.LinkTo(total, link);
        foreach (var o in _orders)
        {
            await birthday.SendAsync(o);
        }

        birthday.Complete();
        await total.Completion;
        return new Result(count, sum).Verify(_expected, "Dataflow per record");
    }

    [Benchmark(Description = "TPL Dataflow, batches of 1024")]
    public async Task<Result> DataflowBatched()
    {
        var link = new DataflowLinkOptions { PropagateCompletion = true };
        var bounded = new ExecutionDataflowBlockOptions { BoundedCapacity = 4 };
        var process = new TransformBlock<ArraySegment<Order>, Result>(
            batch =>
            {
                double sum = 0;
                long count = 0;
                foreach (var order in batch.AsSpan())
                {
                    var o = OrderWorkload.Birthday(order);
                    if (OrderWorkload.IsAdult(o))
                    {
                        sum += OrderWorkload.WithTax(o).Amount;
                        count++;
                    }
                }

                return new Result(count, sum);
            },
            bounded);
        double total = 0;
        long records = 0;
        var sink = new ActionBlock<Result>(r => { total += r.Sum; records += r.Count; }, bounded);
        process.LinkTo(sink, link);
        for (var i = 0; i < _orders.Length; i += Batch)
        {
            await process.SendAsync(new ArraySegment<Order>(_orders, i, Math.Min(Batch, _orders.Length - i)));
        }

        process.Complete();
        await sink.Completion;
        return new Result(records, total).Verify(_expected, "Dataflow batched");
    }

    [Benchmark(Description = "System.Reactive")]
    public Result Reactive()
    {
        double sum = 0;
        long count = 0;
        using var subscription = _orders.ToObservable(ImmediateScheduler.Instance)
            .Select(OrderWorkload.Birthday)
            .Where(OrderWorkload.IsAdult)
            .Select(OrderWorkload.WithTax)
            .Subscribe(o => { sum += o.Amount; count++; });
        return new Result(count, sum).Verify(_expected, "System.Reactive");
    }

    [Benchmark(Description = "Akka.Streams")]
    public async Task<Result> AkkaStreams()
    {
        var result = await Source.From(_orders)
            .Select(OrderWorkload.Birthday)
            .Where(OrderWorkload.IsAdult)
            .Select(OrderWorkload.WithTax)
            .RunAggregate(new Result(0, 0), (r, o) => new Result(r.Count + 1, r.Sum + o.Amount), _materializer!);
        return result.Verify(_expected, "Akka.Streams");
    }
}
