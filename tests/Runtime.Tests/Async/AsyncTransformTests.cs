using System.Collections.Concurrent;
using Compiled.Connectors;
using Compiled.Testing;

namespace Compiled.Runtime.Tests.Async;

public readonly record struct Order(int Id, int Customer, long Time);

public readonly record struct Priced(int Id, int Customer, decimal Price);

/// <summary>A stand-in for a remote service: what it answers is set by each test; it counts the calls in flight per pipeline object (per partition).</summary>
public sealed class PricingService
{
    private int _inFlight;
    private int _peak;

    public static Func<Order, CancellationToken, ValueTask<decimal>> Answer { get; set; } = (o, _) => new(o.Id * 1.5m);

    public static ConcurrentBag<PricingService> Instances { get; } = [];

    private static int _calls;

    public static int Calls => Volatile.Read(ref _calls);

    public int Peak => Volatile.Read(ref _peak);

    public async ValueTask<decimal> PriceAsync(Order order, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _calls);
        var now = Interlocked.Increment(ref _inFlight);
        int peak;
        while (now > (peak = Volatile.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, peak) != peak)
        {
        }

        try
        {
            return await Answer(order, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    public static void Reset(Func<Order, CancellationToken, ValueTask<decimal>> answer)
    {
        Answer = answer;
        Instances.Clear();
        _calls = 0;
    }
}

[Pipeline(Name = "async-pricing")]
public sealed partial class AsyncPricing
{
    private readonly PricingService _service = new();

    public AsyncPricing() => PricingService.Instances.Add(_service);

    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform, AsyncOptions(MaxInFlight = 8, TimeoutMilliseconds = 0)]
    async ValueTask<Priced> Price(Order order, CancellationToken cancellationToken)
        => new(order.Id, order.Customer, await _service.PriceAsync(order, cancellationToken));

    [Sink] public CollectionSink<Priced> Out { get; set; } = new();

    [DeadLetters] public CollectionSink<DeadLetter> Failed { get; set; } = new();
}

/// <summary>The flatMap form: zero or more results per record, and a static method without a token.</summary>
[Pipeline(Name = "async-expand")]
public sealed partial class AsyncExpand
{
    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform, AsyncOptions(MaxInFlight = 3, Ordered = false)]
    static async ValueTask<IEnumerable<Priced>> Expand(Order order)
    {
        await Task.Yield();
        return Enumerable.Range(0, order.Id % 3).Select(k => new Priced(order.Id, k, order.Customer));
    }

    [Transform] static bool Kept(Priced p) => p.Customer % 10 != 0;

    [Sink] public CollectionSink<Priced> Out { get; set; } = new();
}

/// <summary>Event time crosses the asynchronous transform: a window after it counts per customer and minute.</summary>
[Pipeline(Name = "async-then-window")]
public sealed partial class AsyncThenWindow
{
    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform, AsyncOptions(MaxInFlight = 16)]
    static async ValueTask<TimedOrder> Stamp(Order order)
    {
        await Task.Yield();
        return new TimedOrder(order.Id, order.Customer, order.Time);
    }

    [KeyBy] static int CustomerOf(TimedOrder o) => o.Customer;

    [Window] public WindowSpec<TimedOrder, Count<TimedOrder>> PerMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Sink] public CollectionSink<WindowResult<int, long>> Out { get; set; } = new();
}

public readonly record struct TimedOrder(int Id, int Customer, [property: EventTime] long Time);

public sealed class AsyncTransformTests
{
    private static Order[] Orders(int count, int seed = 1)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(1, count).Select(i => new Order(i, random.Next(1, 50), i * 1_000L))];
    }

    private static async Task<(PipelineResult Result, AsyncPricing Pipeline)> RunPricing(Order[] orders, int parallelism, int batchSize, Action<IPipelineJob>? configure = null, ErrorPolicy? policy = null)
    {
        var pipeline = new AsyncPricing { Orders = new CollectionSource<Order>(orders) };
        var job = ((ICompiledPipeline)pipeline).CreateJob();
        configure?.Invoke(job);
        var result = await job.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize, ErrorPolicy = policy }, CancellationToken.None, CancellationToken.None);
        return (result, pipeline);
    }

    private static void Set(IPipelineJob job, string name, string value)
    {
        var setting = job.Connectors.SelectMany(c => c.Settings).Single(s => s.Name == name);
        Assert.Null(setting.TrySet(value));
    }

    [Theory]
    [InlineData(1, 100)]
    [InlineData(2, 37)]
    [InlineData(4, 1000)]
    public async Task Every_record_gets_its_result_and_partitions_never_exceed_MaxInFlight(int parallelism, int batchSize)
    {
        PricingService.Reset(async (o, ct) =>
        {
            await Task.Delay(o.Id % 3, ct);
            return o.Id * 1.5m;
        });
        var orders = Orders(3_000);

        var (result, pipeline) = await RunPricing(orders, parallelism, batchSize);

        Assert.Equal(orders.Select(o => new Priced(o.Id, o.Customer, o.Id * 1.5m)).OrderBy(p => p.Id), pipeline.Out.Items.OrderBy(p => p.Id));
        Assert.Equal(orders.Length, PricingService.Calls);

        // Eight lanes start together at every batch (each call waits), so a partition reaches its bound and never passes it.
        Assert.All(PricingService.Instances.Where(s => s.Peak > 0), s => Assert.Equal(8, s.Peak));
        var summary = Assert.Single(result.AsyncTransforms);
        Assert.Equal(("Price", orders.Length, 0L, 0L, 0L, 8), (summary.Transform, summary.Calls, summary.Retries, summary.TimedOut, summary.Failed, summary.PeakInFlight));
    }

    [Fact]
    public async Task MaxInFlight_is_a_setting()
    {
        PricingService.Reset(async (o, ct) =>
        {
            await Task.Delay(1, ct);
            return o.Id;
        });

        var (result, _) = await RunPricing(Orders(500), 1, 100, job => Set(job, "Price.MaxInFlight", "3"));

        Assert.Equal(3, Assert.Single(PricingService.Instances, s => s.Peak > 0).Peak);
        Assert.Equal(3, result.AsyncTransforms[0].PeakInFlight);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Ordered_results_keep_the_input_order_and_unordered_ones_leave_as_calls_complete(bool ordered)
    {
        // Each batch's eight calls are all in flight before any completes. The eighth completes the other seven, last
        // started first, before it returns its own result: their continuations run inline (no synchronization context,
        // synchronous continuations), so the calls complete 7, 6, ..., 1 and then 8.
        var waiting = new ConcurrentDictionary<int, TaskCompletionSource<decimal>>();
        PricingService.Reset((o, _) =>
        {
            if (waiting.Count < 7)
            {
                var pending = new TaskCompletionSource<decimal>();
                waiting[o.Id] = pending;
                return new(pending.Task);
            }

            foreach (var id in waiting.Keys.OrderDescending())
            {
                waiting.TryRemove(id, out var call);
                call!.SetResult(id);
            }

            return new(o.Id);
        });
        var orders = Orders(64);

        var (_, pipeline) = await RunPricing(orders, 1, 8, job => Set(job, "Price.Ordered", ordered ? "true" : "false"));

        var expected = orders.Chunk(8).SelectMany(batch => ordered ? batch : [.. batch.Take(7).Reverse(), batch[7]]).Select(o => o.Id);
        Assert.Equal(expected, pipeline.Out.Items.Select(p => p.Id));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_call_past_its_timeout_dead_letters_its_record_whether_or_not_it_honours_its_token(bool honoursToken)
    {
        PricingService.Reset(async (o, ct) =>
        {
            if (o.Id % 100 == 0)
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, honoursToken ? ct : CancellationToken.None);
            }

            return o.Id;
        });
        var orders = Orders(1_000);

        var (result, pipeline) = await RunPricing(orders, 2, 200, job => Set(job, "Price.Timeout", "200ms"));

        Assert.Equal(orders.Where(o => o.Id % 100 != 0).Select(o => o.Id), pipeline.Out.Items.Select(p => p.Id).Order());
        var failed = pipeline.Failed.Items;
        Assert.Equal(orders.Where(o => o.Id % 100 == 0).Select(o => o.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)), failed.Select(f => f.Raw.Split(", ")[0].Split("= ")[1]).Order(StringComparer.Ordinal).OrderBy(int.Parse));
        Assert.All(failed, f => Assert.Equal(("operator", "Price", "System.TimeoutException"), (f.Kind, f.Stage, f.ErrorType)));
        Assert.Equal((10L, 10L), (result.AsyncTransforms[0].TimedOut, result.AsyncTransforms[0].Failed));
        Assert.Equal(10, result.OperatorFailures);
    }

    [Fact]
    public async Task Failed_attempts_are_retried_up_to_MaxAttempts_and_a_NonRetryableException_is_not()
    {
        var attempts = new ConcurrentDictionary<int, int>();
        PricingService.Reset((o, _) =>
        {
            var attempt = attempts.AddOrUpdate(o.Id, 1, (_, n) => n + 1);
            return o.Id % 50 == 0 ? throw new NonRetryableException("no such product")
                : o.Id % 97 == 0 ? throw new IOException("down for good")
                : o.Id % 7 == 0 && attempt < 3 ? throw new IOException("busy")
                : new(o.Id);
        });
        var orders = Orders(1_000);

        var (result, pipeline) = await RunPricing(orders, 2, 100, job =>
        {
            Set(job, "Price.MaxAttempts", "3");
            Set(job, "Price.RetryBackoff", "1ms");
        });

        static bool Fails(int id) => id % 50 == 0 || id % 97 == 0;
        Assert.Equal(orders.Where(o => !Fails(o.Id)).Select(o => o.Id), pipeline.Out.Items.Select(p => p.Id).Order());
        Assert.All(orders.Where(o => o.Id % 50 == 0), o => Assert.Equal(1, attempts[o.Id]));
        Assert.All(orders.Where(o => o.Id % 97 == 0 && o.Id % 50 != 0), o => Assert.Equal(3, attempts[o.Id]));
        Assert.All(orders.Where(o => o.Id % 7 == 0 && !Fails(o.Id)), o => Assert.Equal(3, attempts[o.Id]));
        var summary = result.AsyncTransforms[0];
        Assert.Equal(attempts.Values.Sum(), summary.Calls);
        Assert.Equal(attempts.Values.Sum(n => n - 1), summary.Retries);
        Assert.Equal(orders.Count(o => Fails(o.Id)), summary.Failed);
        Assert.Equal(summary.Failed, pipeline.Failed.Count);
    }

    [Fact]
    public async Task Under_fail_fast_a_failed_call_stops_the_run_naming_the_transform()
    {
        PricingService.Reset((o, _) => o.Id == 321 ? throw new InvalidOperationException("price list missing") : new(o.Id));

        var error = await Assert.ThrowsAsync<OperatorException>(() => RunPricing(Orders(1_000), 2, 100, policy: ErrorPolicy.FailFast));

        Assert.Equal("Price", error.StageName);
        Assert.Contains("price list missing", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task The_flatMap_form_emits_each_element(int parallelism)
    {
        var orders = Orders(2_000);
        var pipeline = new AsyncExpand { Orders = new CollectionSource<Order>(orders) };

        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 128 });

        var expected = orders.SelectMany(o => Enumerable.Range(0, o.Id % 3).Select(k => new Priced(o.Id, k, o.Customer))).Where(p => p.Customer % 10 != 0);
        Assert.Equal(expected.OrderBy(p => p.Id).ThenBy(p => p.Customer), pipeline.Out.Items.OrderBy(p => p.Id).ThenBy(p => p.Customer));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task Watermarks_pass_through_to_a_window_after_it(int parallelism)
    {
        var orders = Orders(5_000, seed: 9);
        var pipeline = new AsyncThenWindow { Orders = new CollectionSource<Order>(orders) };

        await pipeline.RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = 256 });

        var expected = orders.GroupBy(o => (o.Customer, Minute: o.Time / 60_000)).Select(g => (g.Key.Customer, g.Key.Minute * 60_000, (long)g.Count())).Order();
        Assert.Equal(expected, pipeline.Out.Items.Select(r => (r.Key, r.Start, r.Value)).Order());
    }

    [Fact]
    public async Task The_test_driver_runs_the_calls_and_dead_letters_the_failed_ones()
    {
        var attempts = new ConcurrentDictionary<int, int>();
        PricingService.Reset(async (o, ct) =>
        {
            await Task.Yield();
            return attempts.AddOrUpdate(o.Id, 1, (_, n) => n + 1) == 1 && o.Id % 2 == 0 ? throw new IOException("busy") : o.Id;
        });
        var pipeline = new AsyncPricing();
        await using (var driver = await PipelineTestDriver.StartAsync<Order>(pipeline))
        {
            driver.Push(Orders(10));
            driver.Push(Orders(5, seed: 2).Select(o => o with { Id = o.Id + 10 }).ToArray());
        }

        // One attempt per record (the transform's default): the even orders failed and went to the dead letters.
        Assert.Equal([1, 3, 5, 7, 9, 11, 13, 15], pipeline.Out.Items.Select(p => p.Id));
        Assert.Equal([2, 4, 6, 8, 10, 12, 14], pipeline.Failed.Items.Select(f => int.Parse(f.Raw.Split(", ")[0].Split("= ")[1], System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Spread_calls_in_every_partition_when_one_partition_reads_everything(bool spread)
    {
        PricingService.Reset(async (o, ct) =>
        {
            await Task.Delay(1, ct);
            return o.Id;
        });
        var orders = Orders(4_000);
        var pipeline = new AsyncPricing { Orders = new FirstPartitionOnly<Order>(orders) };
        var job = ((ICompiledPipeline)pipeline).CreateJob();
        Set(job, "Price.Spread", spread ? "true" : "false");

        await job.RunAsync(new PipelineOptions { Parallelism = 4, BatchSize = 100 }, CancellationToken.None, CancellationToken.None);

        Assert.Equal(orders.Select(o => o.Id), pipeline.Out.Items.Select(p => p.Id).Order());
        var calling = PricingService.Instances.Count(s => s.Peak > 0);
        Assert.Equal(spread ? 4 : 1, calling); // forward: only the partition that read them calls; spread: every partition
    }

    [Fact]
    public void The_settings_and_the_plan_show_the_transform()
    {
        var job = ((ICompiledPipeline)new AsyncPricing()).CreateJob();
        var transform = Assert.Single(job.Connectors, c => c.Role == ConnectorRole.Async);
        Assert.Equal(["Price.MaxInFlight", "Price.Timeout", "Price.MaxAttempts", "Price.RetryBackoff", "Price.Ordered", "Price.Spread"], transform.Settings.Select(s => s.Name));
        Assert.Equal(["8", "none", "1", "100ms", "true", "false"], transform.Settings.Select(s => s.DisplayValue));
        Assert.NotNull(transform.Settings.First().TrySet("0"));
        Assert.Equal(StageKind.Async, job.Descriptor.Stages[1].Kind);
        Assert.Equal(2, job.Descriptor.Segments.Count);
        var plan = PlanExplainer.Text(job, new PipelineOptions());
        Assert.Contains("asynchronous transform 'Price'", plan, StringComparison.Ordinal);
    }
}

/// <summary>An asynchronous transform behind a source that commits positions: barriers pass it between batches.</summary>
[Pipeline(Name = "async-behind-a-log")]
public sealed partial class AsyncBehindALog
{
    [Source] public ISource<Order> Orders { get; set; } = new CollectionSource<Order>();

    [Transform, AsyncOptions(MaxInFlight = 4)]
    static async ValueTask<Priced> Price(Order order)
    {
        await Task.Yield();
        return new Priced(order.Id, order.Customer, order.Id * 2m);
    }

    [Sink] public ISink<Priced> Out { get; set; } = new CollectionSink<Priced>();
}

public sealed class AsyncCheckpointTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("compiled-async-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Checkpoints_pass_the_transform_and_a_stopped_run_resumes_where_it_stopped(int parallelism)
    {
        var orders = Enumerable.Range(1, 20_000).Select(i => new Order(i, i % 13, i)).ToArray();
        var log = new State.Partitioned<Order>(orders, partitions: 6) { Throttle = true };
        var options = new PipelineOptions { Parallelism = parallelism, BatchSize = 64, StateDirectory = _state, CheckpointInterval = TimeSpan.FromMilliseconds(20) };

        var first = new AsyncBehindALog { Orders = log.Source(pauseAt: 0.5), Out = new TrackingSink<Priced>() };
        using var stop = new CancellationTokenSource();
        var run = first.RunAsync(options, stop.Token);
        await log.Paused.WaitAsync(TimeSpan.FromMinutes(1));
        await stop.CancelAsync();
        var stopped = await run.WaitAsync(TimeSpan.FromMinutes(1));
        Assert.True(stopped.State!.Written >= 1, "the stop's final checkpoint passed the transform"); // more on a slow machine: the interval is 20 ms

        var second = new AsyncBehindALog { Orders = log.Source(pauseAt: null), Out = new TrackingSink<Priced>() };
        await second.RunAsync(options).WaitAsync(TimeSpan.FromMinutes(1));

        var written = ((TrackingSink<Priced>)first.Out).Items.Concat(((TrackingSink<Priced>)second.Out).Items).OrderBy(p => p.Id);
        Assert.Equal(orders.Select(o => new Priced(o.Id, o.Customer, o.Id * 2m)), written); // each once: none lost, none repeated
    }
}

/// <summary>A source whose first reader reads every record and whose other readers read none (one small file read at parallelism 4).</summary>
public sealed class FirstPartitionOnly<T>(T[] records) : ISource<T>
{
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ISourceReader<T> CreateReader(int partition) => new Reader(partition == 0 ? records : []);

    public ValueTask CloseAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

    private sealed class Reader(T[] records) : ISourceReader<T>
    {
        private int _next;

        public ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            if (_next >= records.Length)
            {
                return new(SourceBatch<T>.End);
            }

            var count = Math.Min(100, records.Length - _next);
            var batch = records.AsMemory(_next, count);
            _next += count;
            return new(SourceBatch<T>.Of(batch));
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
