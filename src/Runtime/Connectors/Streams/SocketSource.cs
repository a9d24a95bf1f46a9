using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Compiled.Connectors;

/// <summary>
/// Listens on a TCP port and reads records from every connection (line-delimited, or length-prefixed for binary),
/// the seed article's socket source. Each accepted connection is a split, given to the partitions in turn. The
/// source is unbounded: it ends when the run is stopped. A connection is read only as fast as its partition
/// processes it, so TCP flow control slows a sender down when the pipeline is behind.
/// </summary>
/// <typeparam name="T">The record type.</typeparam>
/// <typeparam name="TCodec">The record format.</typeparam>
public sealed class SocketSource<T, TCodec> : ISource<T>, IConfigurable, IDisposable
    where TCodec : IRecordCodec<T>
{
    private IPAddress _address;
    private int _port;
    private readonly RecordSourceOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Lock _lock = new();
    private TcpListener? _listener;
    private Channel<Handoff>[] _queues = [];
    private SourceContext<T>? _context;
    private Task? _accepting;
    private int _accepted;

    /// <summary>Listens on <paramref name="port"/> (0: any free port, see <see cref="LocalEndPoint"/>) at <paramref name="host"/>.</summary>
    public SocketSource(int port, string host = "127.0.0.1", RecordSourceOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _address = IPAddress.Parse(host);
        _port = port;
        _options = options ?? new RecordSourceOptions();
        _options.Validate();
    }

    /// <summary>Where the source listens, once open.</summary>
    public IPEndPoint? LocalEndPoint => (IPEndPoint?)_listener?.LocalEndpoint;

    /// <inheritdoc/>
    public IEnumerable<Setting> Settings =>
    [
        Setting.Number("Port", "The TCP port to listen on (0: any free port)", () => _port, v => _port = (int)v, 0, 65535),
        Setting.Custom("Host", "The IP address to listen on", "an IP address such as 127.0.0.1 or 0.0.0.0", () => _address.ToString(), text =>
        {
            if (!IPAddress.TryParse(text.Trim(), out var address))
            {
                return "expected an IP address such as 127.0.0.1 or 0.0.0.0";
            }

            _address = address;
            return null;
        }),
        .. _options.Settings(!TCodec.Header.IsEmpty),
    ];

    /// <summary>Connections accepted so far.</summary>
    public int ConnectionsAccepted => Volatile.Read(ref _accepted);

    /// <inheritdoc/>
    public ValueTask OpenAsync(SourceContext<T> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _queues = Enumerable.Range(0, context.Parallelism).Select(_ => Channel.CreateUnbounded<Handoff>(new UnboundedChannelOptions { SingleReader = true })).ToArray();
        _listener = new TcpListener(_address, _port);
        _listener.Start();
        _accepting = Task.Run(AcceptAsync, CancellationToken.None);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ISourceReader<T> CreateReader(int partition) => new Reader(_queues[partition]);

    /// <inheritdoc/>
    public async ValueTask CloseAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener?.Stop();
        Task[] running;
        lock (_lock)
        {
            running = [.. _connections, .. _accepting is null ? Array.Empty<Task>() : [_accepting]];
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        _listener?.Dispose();
    }

    /// <summary>Stops listening if a run left the listener open.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _listener?.Dispose();
        _stop.Dispose();
    }

    /// <inheritdoc/>
    public string Describe() => $"{TCodec.Format} over tcp {LocalEndPoint?.ToString() ?? $"{_address}:{_port}"}";

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener!.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                var number = Interlocked.Increment(ref _accepted) - 1;
                var partition = number % _queues.Length;
                lock (_lock)
                {
                    _connections.Add(Task.Run(() => ServeAsync(client, number, partition), CancellationToken.None));
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && _stop.IsCancellationRequested)
        {
            // the source is closing
        }
    }

    /// <summary>Reads one connection: decodes a batch, hands it to the partition, waits until the partition is done with it.</summary>
    private async Task ServeAsync(TcpClient client, int number, int partition)
    {
        var context = _context!;
        using (client)
        {
            var pipe = PipeReader.Create(client.GetStream(), new StreamPipeReaderOptions(bufferSize: RecordSourceOptions.DefaultReadBufferBytes));
            var reader = new RecordStreamReader<T, TCodec>(pipe, new RecordStreamSettings(
                context.SourceName, $"tcp connection {number} from {client.Client.RemoteEndPoint}", partition, context.BatchSize, _options, context.DeadLetters, ExpectHeader: _options.HasHeader));
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var batch = await reader.ReadBatchAsync(_stop.Token).ConfigureAwait(false);
                    if (batch.IsEnd)
                    {
                        break;
                    }

                    var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    await _queues[partition].Writer.WriteAsync(new Handoff(batch, done), _stop.Token).ConfigureAwait(false);
                    await done.Task.WaitAsync(_stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException && _stop.IsCancellationRequested)
            {
                // the source is closing
            }
            catch (IOException)
            {
                // The peer went away mid-record: what arrived complete was processed; the rest never arrived.
            }
            finally
            {
                await pipe.CompleteAsync().ConfigureAwait(false);
            }
        }
    }

    private readonly record struct Handoff(SourceBatch<T> Batch, TaskCompletionSource Done);

    private sealed class Reader(Channel<Handoff> queue) : ISourceReader<T>
    {
        private TaskCompletionSource? _served;

        public async ValueTask<SourceBatch<T>> ReadAsync(CancellationToken cancellationToken)
        {
            // The batch served last has been processed: its connection may decode the next one.
            _served?.TrySetResult();
            _served = null;
            var handoff = await queue.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            _served = handoff.Done;
            return handoff.Batch;
        }

        public ValueTask DisposeAsync()
        {
            _served?.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }
}
