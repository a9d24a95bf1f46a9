using System.Net.Sockets;
using System.Text;

namespace Compiled.Runtime.Tests.Connectors;

public sealed class StreamConnectorTests
{
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_socket_source_reads_several_real_tcp_clients_at_once_each_in_order()
    {
        const int Clients = 5;
        const int PerClient = 2_000;
        var pipeline = new SocketPipeline();
        using var stop = new CancellationTokenSource();
        var run = pipeline.RunAsync(new PipelineOptions { Parallelism = 2, BatchSize = 64 }, stop.Token);
        var endpoint = await WaitForEndpointAsync(pipeline);

        var senders = Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(endpoint.Address, endpoint.Port);
            await using var stream = tcp.GetStream();
            var text = new StringBuilder();
            for (var i = 0; i < PerClient; i++)
            {
                text.Append(FileConnectorTests.Line((client * 1_000_000) + i));
            }

            var bytes = Encoding.UTF8.GetBytes(text.ToString());
            // Write in uneven pieces, so records straddle reads.
            for (var at = 0; at < bytes.Length; at += 977)
            {
                await stream.WriteAsync(bytes.AsMemory(at, Math.Min(977, bytes.Length - at)));
            }
        })).ToArray();

        await Task.WhenAll(senders).WaitAsync(HangGuard);
        await pipeline.Output.WhenCount(Clients * PerClient).WaitAsync(HangGuard);
        await stop.CancelAsync();
        var result = await run.WaitAsync(HangGuard);

        Assert.Equal(Clients, pipeline.Input.ConnectionsAccepted);
        Assert.Equal(Clients * PerClient, result.RecordsRead);
        var items = pipeline.Output.Items.ToList();
        for (var client = 0; client < Clients; client++)
        {
            var mine = items.Where(l => l.Seq / 1_000_000 == client).Select(l => l.Seq % 1_000_000).ToList();
            Assert.Equal(Enumerable.Range(0, PerClient).Select(i => (long)i), mine); // complete, and in the order sent
        }
    }

    [Fact]
    public async Task Stdin_to_stdout_works_as_a_shell_filter()
    {
        var input = new MemoryStream(Encoding.UTF8.GetBytes(FileConnectorTests.Line(1) + FileConnectorTests.Line(2) + "junk\n" + FileConnectorTests.Line(3)));
        var output = new MemoryStream();
        var pipeline = new ShellPipeline { Input = new(input), Output = new(output) };
        var result = await pipeline.RunAsync(new PipelineOptions { Parallelism = 2, ErrorPolicy = ErrorPolicy.Skip }).WaitAsync(HangGuard);

        Assert.Equal("seq,path,status\n1,/p1,201\n2,/p2,201\n3,/p3,201\n", Encoding.UTF8.GetString(output.ToArray()));
        Assert.Equal(1, result.Malformed);
    }

    private static async Task<System.Net.IPEndPoint> WaitForEndpointAsync(SocketPipeline pipeline)
    {
        // The source opens on the run's own task; wait for it to publish its port (no sleep: yield until it exists).
        var started = DateTime.UtcNow;
        while (pipeline.Input.LocalEndPoint is null)
        {
            if (DateTime.UtcNow - started > HangGuard)
            {
                throw new TimeoutException("the socket source did not start listening");
            }

            await Task.Yield();
        }

        return pipeline.Input.LocalEndPoint;
    }
}
