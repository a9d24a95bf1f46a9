using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Compiled.Runtime.Tests.Connectors;

/// <summary>
/// A burst of connections against a socket source in a child process with a hard heap limit (issue 18, item 2): it
/// must not run out of memory, and every line of every connection it accepted must arrive.
/// </summary>
public sealed class SocketBurstTests
{
    private const int Connections = 10_000;
    private const int ClientConcurrency = 2_000;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(4);

    [Fact]
    public async Task A_burst_of_10000_connections_under_a_192_MiB_heap_limit_loses_no_line_and_does_not_crash()
    {
        var port = FreePort();
        var app = App();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in new[] { "exec", Path.GetFullPath(app), "--set", $"Input.Port={port}", "-p", "2" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_GCHeapHardLimit"] = "0xC000000"; // 192 MiB
        start.Environment["BURST_EXPECTED"] = Connections.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var child = Process.Start(start)!;
        var error = child.StandardError.ReadToEndAsync();
        var output = child.StandardOutput.ReadToEndAsync();
        try
        {
            await WaitUntilListening(port, child);
            using var gate = new SemaphoreSlim(ClientConcurrency);
            var clients = Enumerable.Range(0, Connections).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port);
                    var stream = client.GetStream();
                    await stream.WriteAsync(Encoding.UTF8.GetBytes($"{{\"seq\":{i},\"client\":\"c{i}\"}}\n"));
                    client.Client.Shutdown(SocketShutdown.Send);
                }
                finally
                {
                    gate.Release();
                }
            }).ToList();
            await Task.WhenAll(clients).WaitAsync(Patience);
            await child.WaitForExitAsync().WaitAsync(Patience);
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }

        var stderr = await error;
        Assert.True(child.ExitCode == 0, $"exit code {child.ExitCode}\n{stderr}\n{await output}");
        Assert.Contains($"{Connections:N0} records read", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Out of memory", stderr, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_sigterm_while_the_host_sets_up_stops_the_run_gracefully_instead_of_killing_the_process()
    {
        // An outside kill loop's finding: a SIGTERM in the first ~150 ms (options read, extensions started, before the
        // run's handler existed) ended the process with the runtime's exit code 143. The app's host extension holds the
        // setup until the test has signalled, so the signal lands there every time.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in new[] { "exec", Path.GetFullPath(App()), "--set", $"Input.Port={FreePort()}", "-p", "1" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["BURST_HOLD"] = "1";
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEndAsync();
        try
        {
            var first = await child.StandardError.ReadLineAsync().WaitAsync(Patience);
            Assert.Equal("holding", first);
            using (var kill = Process.Start("kill", ["-TERM", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync().WaitAsync(Patience);
                Assert.Equal(0, kill.ExitCode);
            }

            await child.StandardInput.WriteLineAsync("go"); // the setup goes on, and the run starts stopped
            child.StandardInput.Close();
            await child.WaitForExitAsync().WaitAsync(Patience);
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }

        var stderr = await child.StandardError.ReadToEndAsync();
        Assert.True(child.ExitCode == 0, $"exit code {child.ExitCode}\n{stderr}\n{await output}");
        Assert.Contains("socket-burst: stopping", stderr, StringComparison.Ordinal);
        Assert.Contains("socket-burst stopped in", stderr, StringComparison.Ordinal);
    }

    private static string App()
        => Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "Apps", "SocketBurst", "bin",
            Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd('/'))!), "net10.0", "SocketBurst.dll");

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>Connects (and closes at once, sending nothing) until the child's listener accepts.</summary>
    private static async Task WaitUntilListening(int port, Process child)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(child.HasExited, "the child exited before listening");
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) when (deadline.Elapsed < Patience)
            {
                await Task.Delay(50); // polling for the listener, not synchronising with it
            }
        }
    }
}
