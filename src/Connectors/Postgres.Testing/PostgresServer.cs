using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Compiled.Postgres.Testing;

/// <summary>
/// A throwaway PostgreSQL server for tests and demos: <c>initdb</c> in a temporary directory, <c>pg_ctl start</c> on a
/// free loopback port, password authentication, <c>fsync=off</c>; stopped and deleted on dispose. Needs the server
/// binaries (Debian: <c>apt install postgresql-15</c>); as root, runs them as the <c>postgres</c> user, since initdb
/// refuses root.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters", Justification = "Each overload ends in the optional CancellationToken, the .NET convention.")]
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>The superuser's password in every throwaway server.</summary>
    public const string Password = "compiled-test";

    private readonly string _bin;
    private readonly string _directory;
    private readonly bool _asPostgres;
    private bool _stopped;
    private string _walLevel = "logical";

    private PostgresServer(string bin, string directory, int port, bool asPostgres)
    {
        _bin = bin;
        _directory = directory;
        Port = port;
        _asPostgres = asPostgres;
    }

    /// <summary>The loopback port the server listens on.</summary>
    public int Port { get; }

    /// <summary>A connection string to database <c>postgres</c> as the superuser.</summary>
    public string ConnectionString => ConnectionStringFor("postgres");

    /// <summary>A connection string to <paramref name="database"/> as the superuser.</summary>
    public string ConnectionStringFor(string database)
        => string.Create(CultureInfo.InvariantCulture, $"Host=127.0.0.1;Port={Port};Username=postgres;Password={Password};Database={database};Pooling=true;Timeout=15");

    /// <summary>Where the server binaries are: <c>COMPILED_PG_BIN</c>, else the newest <c>/usr/lib/postgresql/*/bin</c> with initdb.</summary>
    public static string? FindBinaries()
    {
        if (Environment.GetEnvironmentVariable("COMPILED_PG_BIN") is { Length: > 0 } configured)
        {
            return configured;
        }

        const string root = "/usr/lib/postgresql";
        if (!Directory.Exists(root))
        {
            return null;
        }

        return Directory.GetDirectories(root)
            .Select(d => Path.Combine(d, "bin"))
            .Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
            .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var major) ? major : 0)
            .FirstOrDefault();
    }

    /// <summary>Creates and starts a server set up for logical replication (CDC); throws with what to install when the binaries are missing.</summary>
    public static Task<PostgresServer> StartAsync(CancellationToken cancellationToken = default) => StartAsync("logical", cancellationToken);

    /// <summary>Creates and starts a server with <c>wal_level</c> <paramref name="walLevel"/> (<c>replica</c> to see what CDC says about a server without logical replication).</summary>
    public static async Task<PostgresServer> StartAsync(string walLevel, CancellationToken cancellationToken = default)
    {
        var bin = FindBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL server binaries were not found (looked in COMPILED_PG_BIN and /usr/lib/postgresql/*/bin). Install them, e.g. 'apt-get install postgresql-15', or pass a connection string.");
        var directory = Directory.CreateTempSubdirectory("compiled-pg-").FullName;
        var asPostgres = Environment.UserName == "root";
        var data = Path.Combine(directory, "data");
        var passwordFile = Path.Combine(directory, "pw");
        await File.WriteAllTextAsync(passwordFile, Password, cancellationToken).ConfigureAwait(false);
        if (asPostgres)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", directory], null, cancellationToken).ConfigureAwait(false);
        }

        var port = FreePort();
        var server = new PostgresServer(bin, directory, port, asPostgres) { _walLevel = walLevel };
        try
        {
            await server.RunPgAsync("initdb", ["-D", data, "-U", "postgres", "-A", "scram-sha-256", "--pwfile", passwordFile, "-E", "UTF8", "--locale", "C"], cancellationToken).ConfigureAwait(false);
            await server.StartServerAsync(cancellationToken).ConfigureAwait(false);
            return server;
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Creates a database and returns a connection string to it.</summary>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name.Replace("\"", "\"\"", StringComparison.Ordinal)}\"", connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return ConnectionStringFor(name);
    }

    /// <summary>Stops the server (fast shutdown: clients are disconnected) and starts it again on the same port.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        await RunPgAsync("pg_ctl", ["-D", Path.Combine(_directory, "data"), "-m", "fast", "-w", "stop"], cancellationToken).ConfigureAwait(false);
        await StartServerAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops the server (fast shutdown: clients are disconnected) and leaves it stopped: an outage, for tests of retries.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
        => RunPgAsync("pg_ctl", ["-D", Path.Combine(_directory, "data"), "-m", "fast", "-w", "stop"], cancellationToken);

    /// <summary>Starts a server stopped by <see cref="StopAsync"/> again, on the same port.</summary>
    public Task ResumeAsync(CancellationToken cancellationToken = default) => StartServerAsync(cancellationToken);

    /// <summary>Stops the server and deletes its files.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_stopped)
        {
            _stopped = true;
            try
            {
                await RunPgAsync("pg_ctl", ["-D", Path.Combine(_directory, "data"), "-m", "immediate", "-w", "stop"], CancellationToken.None).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                // never started, or already stopped
            }
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temporary directory
        }
    }

    private Task StartServerAsync(CancellationToken cancellationToken)
        => RunPgAsync(
            "pg_ctl",
            [
                "-D", Path.Combine(_directory, "data"), "-l", Path.Combine(_directory, "server.log"), "-w", "-t", "60",
                "-o", string.Create(CultureInfo.InvariantCulture, $"-p {Port} -k {_directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c wal_level={_walLevel} -c max_replication_slots=50 -c max_wal_senders=50"),
                "start",
            ],
            cancellationToken);

    private Task RunPgAsync(string program, string[] arguments, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_bin, program);
        return _asPostgres
            ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments], _directory, cancellationToken)
            : RunAsync(path, arguments, _directory, cancellationToken);
    }

    private static async Task RunAsync(string program, string[] arguments, string? workingDirectory, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(program)} {string.Join(' ', arguments.Take(3))}… failed with exit code {process.ExitCode}: {await error.ConfigureAwait(false)}{await output.ConfigureAwait(false)}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
