using System.Net;
using System.Net.Sockets;

namespace Compiled.Integration.Tests;

/// <summary>
/// A real HTTP server on loopback (<see cref="HttpListener"/>) on a free port, answering each request on its own task:
/// the base of the test services that pipelines call or write to.
/// </summary>
internal abstract class LoopbackHttpServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _serving;

    /// <summary>Listens at <c>http://127.0.0.1:{free port}{path}</c>; <paramref name="path"/> starts and ends with '/'.</summary>
    protected LoopbackHttpServer(string path)
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Root = $"http://127.0.0.1:{port}{path}";
        _listener.Prefixes.Add(Root);
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    /// <summary>The address the server answers under.</summary>
    public string Root { get; }

    /// <summary>Answers one request (and closes its response).</summary>
    protected abstract Task AnswerAsync(HttpListenerContext context);

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // stopped
            }

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        await _serving; // the loop ends at the stop; only then is the listener released
        _listener.Close();
    }
}
