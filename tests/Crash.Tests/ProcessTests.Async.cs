using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using Compiled.Samples.Tests;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// An asynchronous transform calling a real HTTP service between Kafka and exactly-once PostgreSQL, in a pipeline
/// binary killed with SIGKILL while calls are in flight: no order is lost, none is written twice, and the calls the
/// kills interrupted are made again.
/// </summary>
public sealed partial class ProcessTests
{
    [Fact]
    public async Task An_async_transform_into_exactly_once_postgres_survives_sigkill_with_calls_in_flight()
    {
        const int chunk = 4_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var topic = kafka.NewTopic("crash-async", 8);
        var group = "crash-async-" + Guid.NewGuid().ToString("N");
        var connection = await postgres.NewDatabaseAsync();
        await using var rates = new RateService(TimeSpan.FromMilliseconds(2));

        // No primary key, so that an order written twice shows as a second row (CreateIfMissing keeps this table).
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE rated_orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL, rate numeric NOT NULL, priced numeric NOT NULL)", db);
            await create.ExecuteNonQueryAsync();
        }

        // Each round produces a chunk, starts a copy, and kills it (SIGKILL) once its first rows of the round are
        // committed and the service has calls of it in flight — then the kill lands on calls that were made and never
        // answered, or answered and never committed. Kills after the copy caught up do not count.
        log.WriteLine($"seed {seed}");
        var inFlightKills = 0;
        var count = 0;
        for (var round = 0; round < 12 && inFlightKills < 5; round++)
        {
            Produce(topic, count + 1, count + chunk);
            count += chunk;
            var before = await CountAsync(connection, "rated_orders");
            await using var child = StartAsyncApp(connection, topic, group, rates.Url);
            await WaitUntil(child, async () => await CountAsync(connection, "rated_orders") > before, $"rows of round {round}");
            await Task.Delay(random.Next(0, 150)); // randomises where the kill lands; nothing waits on it
            await WaitUntil(child, () => Task.FromResult(rates.InFlight > 0 || child.HasExited), "calls in flight");
            var inFlight = rates.InFlight;
            child.Kill();
            await child.WaitAsync(Patience);
            var rowsAtKill = await CountAsync(connection, "rated_orders");
            inFlightKills += inFlight > 0 && rowsAtKill < count ? 1 : 0;
            log.WriteLine($"killed with {inFlight} calls in flight at {rowsAtKill} of {count} rows");
        }

        Assert.True(inFlightKills >= 5, $"only {inFlightKills} kills landed with calls in flight before the last row was written");

        await using (var last = StartAsyncApp(connection, topic, group, rates.Url))
        {
            await WaitUntil(last, () => Task.FromResult(Assigned(last.Error) > 0), "the last copy joined the group");
            // Behind an asynchronous transform the offsets are committed with the checkpoints (compiled_checkpoints), in the
            // same transaction as the rows: every row there means every offset committed.
            await WaitUntil(last, async () => await CountAsync(connection, "rated_orders") >= count, "every row committed");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        var rows = new List<string>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT id, customer, amount, rate, priced FROM rated_orders ORDER BY id", db);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add(string.Create(CultureInfo.InvariantCulture, $"{reader.GetInt64(0)}|{reader.GetString(1)}|{reader.GetDecimal(2):0.00}|{reader.GetDecimal(3):0.0}|{reader.GetDecimal(4):0.000}"));
            }
        }

        // Every order once, priced with the service's answer: none lost, none repeated.
        Assert.Equal(count, rows.Count);
        var expected = Enumerable.Range(1, count).Select(id =>
        {
            var (_, customer, amount, _) = OrderOf(id);
            var rate = RateService.RateOf(id);
            return string.Create(CultureInfo.InvariantCulture, $"{id}|{customer}|{amount:0.00}|{rate:0.0}|{amount * rate:0.000}");
        });
        Assert.Equal(expected, rows);

        // Every order was asked for at least once; the kills made the service answer some of them again (at-least-once calls).
        Assert.All(Enumerable.Range(1, count), id => Assert.True(rates.Calls.GetValueOrDefault(id) >= 1, $"order {id} was never priced"));
        log.WriteLine($"{rates.Calls.Values.Sum()} calls for {count} orders");
    }

    private static string KafkaAsyncToPostgresDll => Path.Combine(Repository.Root, "tests", "Apps", "KafkaAsyncToPostgres", "bin", Repository.Configuration, "net10.0", "KafkaAsyncToPostgres.dll");

    private Child StartAsyncApp(string connection, string topic, string group, string rates)
        => Child.Start(
        [
            KafkaAsyncToPostgresDll, "--bootstrap", kafka.BootstrapServers, "--postgres", connection,
            "--set", $"Orders.Topics={topic}", "--set", $"Orders.GroupId={group}", "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "CheckpointInterval=200ms", "-p", "4", "--batch-size", "256", "--log-level", "Information",
        ], _work, new Dictionary<string, string> { ["RATES_URL"] = rates });

    /// <summary>A rate service on loopback: GET /rate/{id} answers the order's rate after a short hold, and counts the calls per order.</summary>
    private sealed class RateService(TimeSpan hold) : LoopbackHttpServer("/")
    {
        private int _inFlight;

        public string Url => Root;

        public ConcurrentDictionary<long, int> Calls { get; } = new();

        public int InFlight => Volatile.Read(ref _inFlight);

        public static decimal RateOf(long id) => 1m + (id % 17) / 10m;

        protected override async Task AnswerAsync(HttpListenerContext context)
        {
            Interlocked.Increment(ref _inFlight);
            try
            {
                var id = long.Parse(context.Request.Url!.Segments[^1], CultureInfo.InvariantCulture);
                Calls.AddOrUpdate(id, 1, (_, n) => n + 1);
                await Task.Delay(hold);
                var body = Encoding.UTF8.GetBytes(RateOf(id).ToString(CultureInfo.InvariantCulture));
                await context.Response.OutputStream.WriteAsync(body);
            }
            catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
            {
                // The caller was killed while its call was held.
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
                try
                {
                    context.Response.Close();
                }
                catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
                {
                }
            }
        }
    }
}
