using System.Globalization;
using System.Text;
using Compiled.Samples.Tests;
using Npgsql;

namespace Compiled.Integration.Tests;

/// <summary>
/// A join of two Kafka topics (orders and their payments, an interval join, left outer) into exactly-once PostgreSQL,
/// in a pipeline binary killed with SIGKILL again and again: every order is written once, with its payment or
/// without one — the join's state, both topics' offsets and the rows are committed together.
/// </summary>
public sealed partial class ProcessTests
{
    /// <summary>Orders whose id is a multiple of 5 are never paid; the others are paid up to 10 minutes after they are placed.</summary>
    private static bool IsPaid(long id) => id % 5 != 0;

    private static decimal PaidAmount(long id) => OrderOf(id).Amount + 0.5m;

    private static byte[] PaymentJson(long id)
    {
        var paid = Epoch.AddSeconds(id + id % 600).ToString("O", CultureInfo.InvariantCulture);
        return Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $$"""{"orderId":{{id}},"amount":{{PaidAmount(id)}},"paidAt":"{{paid}}"}"""));
    }

    [Fact]
    public async Task A_join_of_two_topics_into_exactly_once_postgres_survives_repeated_sigkill()
    {
        const int chunk = 5_000;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        var orders = kafka.NewTopic("crash-join-orders", 8);
        var payments = kafka.NewTopic("crash-join-payments", 8);
        var group = "crash-join-" + Guid.NewGuid().ToString("N");
        var connection = await postgres.NewDatabaseAsync();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE paid_orders (id bigint NOT NULL, customer text NOT NULL, amount numeric NOT NULL, paid numeric NOT NULL)", db);
            await create.ExecuteNonQueryAsync();
        }

        void ProduceChunk(long from, long to)
        {
            Produce(orders, from, to);
            kafka.Produce(payments, Enumerable.Range((int)from, (int)(to - from + 1)).Where(id => IsPaid(id)).Select(id => ((string?)id.ToString(CultureInfo.InvariantCulture), (byte[]?)PaymentJson(id))));
        }

        // Each round produces a chunk of orders and their payments, starts a copy and kills it once it has committed
        // some rows of the round — mid-stream, with pairs, held orders and offsets of both topics in flight.
        log.WriteLine($"seed {seed}");
        var count = 0;
        var kills = 0;
        for (var round = 0; round < 8; round++)
        {
            ProduceChunk(count + 1, count + chunk);
            count += chunk;
            var before = await CountAsync(connection, "paid_orders");
            await using var child = StartJoinApp(connection, orders, payments, group);
            await WaitUntil(child, async () => await CountAsync(connection, "paid_orders") > before, $"rows of round {round}");
            await Task.Delay(random.Next(0, 300)); // randomises where the kill lands; nothing waits on it
            child.Kill();
            await child.WaitAsync(Patience);
            var rows = await CountAsync(connection, "paid_orders");
            kills += rows < count ? 1 : 0;
            log.WriteLine($"killed at {rows} rows of {count} orders");
        }

        Assert.True(kills >= 4, $"only {kills} kills landed before the copy caught up");

        // Orders and payments far later, in every partition of both topics (the watermark is the slowest partition's),
        // move the watermark past every order's 15 minutes, so the unpaid ones leave too.
        Produce(orders, count + 1_000_000, count + 1_000_199);
        kafka.Produce(payments, Enumerable.Range(count + 2_000_000, 200).Select(id => ((string?)id.ToString(CultureInfo.InvariantCulture), (byte[]?)PaymentJson(id))));
        await using (var last = StartJoinApp(connection, orders, payments, group))
        {
            await WaitUntil(last, async () => await CountAsync(connection, "paid_orders") >= count, "every order's row committed");
            Assert.Equal(0, await last.TerminateAsync(Patience));
        }

        var written = new List<string>();
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var select = new NpgsqlCommand("SELECT id, customer, amount, paid FROM paid_orders WHERE id <= @count ORDER BY id", db);
            select.Parameters.AddWithValue("count", (long)count);
            await using var reader = await select.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                written.Add(string.Create(CultureInfo.InvariantCulture, $"{reader.GetInt64(0)}|{reader.GetString(1)}|{reader.GetDecimal(2):0.00}|{reader.GetDecimal(3):0.00}"));
            }
        }

        // Every order once — with its payment, or alone when it was never paid: none lost, none repeated.
        var expected = Enumerable.Range(1, count).Select(id =>
        {
            var (_, customer, amount, _) = OrderOf(id);
            return string.Create(CultureInfo.InvariantCulture, $"{id}|{customer}|{amount:0.00}|{(IsPaid(id) ? PaidAmount(id) : -1):0.00}");
        });
        Assert.Equal(expected, written);
    }

    private static string KafkaJoinToPostgresDll => Path.Combine(Repository.Root, "tests", "Apps", "KafkaJoinToPostgres", "bin", Repository.Configuration, "net10.0", "KafkaJoinToPostgres.dll");

    private Child StartJoinApp(string connection, string orders, string payments, string group)
        => Child.Start(
        [
            KafkaJoinToPostgresDll, "--bootstrap", kafka.BootstrapServers, "--payments-bootstrap", kafka.BootstrapServers, "--postgres", connection,
            "--set", $"Orders.Topics={orders}", "--set", $"Orders.GroupId={group}", "--set", $"Orders.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", $"Payments.Topics={payments}", "--set", $"Payments.GroupId={group}-payments", "--set", $"Payments.SessionTimeout={kafka.KilledConsumerSessionTimeoutSetting}",
            "--set", "CheckpointInterval=200ms", "-p", "3", "--batch-size", "256", "--log-level", "Information",
        ], _work);
}
