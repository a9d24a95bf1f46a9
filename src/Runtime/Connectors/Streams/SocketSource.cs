using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Compiled.Connectors;

/// <summary>Options of <see cref="SocketSource{T, TCodec}"/>.</summary>
public sealed class SocketSourceOptions : RecordSourceOptions
{
    /// <summary>
    /// Connections open at once: 1 000. Each holds a read buffer (<see cref="DefaultConnectionBufferBytes"/>) and a
    /// batch of records, so the source's memory stays in the tens of MiB whatever the burst; past the limit the source
    /// stops accepting, new connections wait in the kernel's listen backlog and their senders are slowed down by TCP.
    /// </summary>
    public const int DefaultMaxConnections = 1000;

    /// <summary>The read buffer of one connection: 16 KiB, a few TCP segments, so a thousand idle connections cost little.</summary>
    public const int DefaultConnectionBufferBytes = 16 * 1024;

    /// <summary>Connections open at once (being read, or waiting for their partition). Default: <see cref="DefaultMaxConnections"/>.</summary>
    public int MaxConnections { get; set; } = DefaultMaxConnections;

    /// <inheritdoc/>
    public override IEnumerable<Setting> Settings(bool hasHeader)
    {
        foreach (var setting in base.Settings(hasHeader))
        {
            yield return setting;
        }

        yield return Setting.Number(nameof(MaxConnections), "Connections open at once; past it the source stops accepting and new ones wait in the kernel's backlog", () => MaxConnections, v => MaxConnections = (int)v, 1, 1_000_000);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (MaxConnections < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnections), MaxConnections, "MaxConnections must be at least 1.");
        }
    }
}

/// <summary>
/// Listens on a TCP port and reads records from every connection (line-delimited, or length-prefixed for binary),
/// the seed article's socket source. Each accepted connection is a split, given to the partitions in turn. The
/// source is unbounded: it ends when the run is stopped. A connection is read only as fast as its partition
/// processes it, so TCP flow control slows a sender down when the pipeline is behind. At most
/// <see cref="SocketSourceOptions.MaxConnections"/> connections are open at once; past that the source stops
/// accepting, so a burst waits in the kernel's listen backlog instead of in memory.
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
    private readonly Dictionary<int, Task> _connections = [];
    private readonly Lock _lock = new();
    private SemaphoreSlim? _slots;
    private TcpListener? _listener;
    private Channel<Handoff>[] _queues = [];
    private SourceContext<T>? _context;
    private Task? _accepting;
    private int _accepted;

    /// <summary>
    /// Listens on <paramref name="port"/> (0: any free port, see <see cref="LocalEndPoint"/>) at <paramref name="host"/>.
    /// <paramref name="options"/> may be <see cref="SocketSourceOptions"/>, to bound the connections open at once.
    /// </summary>
    public SocketSource(int port, string host = "127.0.0.1", RecordSourceOptions? options = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _address = IPAddress.Parse(host);
        _port = port;
        _options = options ?? new SocketSourceOptions();
        _options.Validate();
    }

    private int MaxConnections => (_options as SocketSourceOptions)?.MaxConnections ?? SocketSourceOptions.DefaultMaxConnections;

    /// <summary>Connections open now.</summary>
    public int ConnectionsOpen
    {
        get
        {
            lock (_lock)
            {
                return _connections.Count;
            }
        }
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
        _slots = new SemaphoreSlim(MaxConnections, MaxConnections);
        _listener = new TcpListener(_address, _port);
        _listener.Start();
        _accepting = Task.Run(AcceptAsync, CancellationToken.None);
        context.Inform?.Invoke($"listening on tcp {LocalEndPoint} (at most {MaxConnections} connections at once)");
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
            running = [.. _connections.Values, .. _accepting is null ? Array.Empty<Task>() : [_accepting]];
        }

        await Task.WhenAll(running).ConfigureAwait(false);
        _listener?.Dispose();
        _slots?.Dispose();
        _slots = null;
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
                // A free slot first: past MaxConnections nothing is accepted, and the kernel's backlog holds the rest.
                await _slots!.WaitAsync(_stop.Token).ConfigureAwait(false);
                TcpClient client;
                try
                {
                    client = await _listener!.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                }
                catch
                {
                    _slots.Release();
                    throw;
                }

                var number = Interlocked.Increment(ref _accepted) - 1;
                var partition = number % _queues.Length;
                lock (_lock)
                {
                    _connections[number] = Task.Run(() => ServeAsync(client, number, partition), CancellationToken.None);
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
        try
        {
            await ReadConnectionAsync(client, number, partition).ConfigureAwait(false);
        }
        finally
        {
            // A finished connection leaves the source's books and frees its slot for the next one.
            lock (_lock)
            {
                _connections.Remove(number);
            }

            _slots?.Release();
        }
    }

    private async Task ReadConnectionAsync(TcpClient client, int number, int partition)
    {
        var context = _context!;
        using (client)
        {
            var pipe = PipeReader.Create(client.GetStream(), new StreamPipeReaderOptions(bufferSize: SocketSourceOptions.DefaultConnectionBufferBytes, minimumReadSize: 1024));
            var reader = new RecordStreamReader<T, TCodec>(pipe, new RecordStreamSettings(
                context.SourceName, $"tcp connection {number} from {client.Client.RemoteEndPoint}", partition, context.BatchSize, _options, context.DeadLetters, ExpectHeader: _options.HasHeader, GrowBatches: true));
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
