using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using MySqlConnector;

namespace Compiled.MySql.Testing;

/// <summary>
/// A throwaway MariaDB server: <c>mariadb-install-db</c> in a temporary directory, <c>mariadbd</c> on a free loopback
/// port (as the <c>mysql</c> user when run as root), a user <c>compiled</c> with a password; killed and deleted on
/// dispose. Needs Debian's <c>mariadb-server</c> package (installed by <c>.ci/run</c>). Shared by the integration
/// tests and the benchmarks (linked into both; not part of a package).
/// </summary>
public sealed class MariaDbServer : IAsyncDisposable
{
    public const string User = "compiled";
    public const string Password = "compiled-mysql-test";

    private readonly string _directory;
    private readonly bool _asMysql;
    private Process? _process;

    private MariaDbServer(string directory, int port, bool asMysql)
    {
        _directory = directory;
        Port = port;
        _asMysql = asMysql;
    }

    public int Port { get; }

    /// <summary>The server's log, for failure messages.</summary>
    public string Log => File.Exists(Path.Combine(_directory, "server.log")) ? File.ReadAllText(Path.Combine(_directory, "server.log")) : "";

    public string ConnectionStringFor(string database)
        => string.Create(CultureInfo.InvariantCulture, $"Server=127.0.0.1;Port={Port};User ID={User};Password={Password};Database={database};Connection Timeout=15");

    private string RootConnectionString => string.Create(CultureInfo.InvariantCulture, $"Server=127.0.0.1;Port={Port};User ID=root;Pooling=false");

    public static async Task<MariaDbServer> StartAsync()
    {
        if (!File.Exists("/usr/sbin/mariadbd") || !File.Exists("/usr/bin/mariadb-install-db"))
        {
            throw new InvalidOperationException("MariaDB was not found (/usr/sbin/mariadbd, /usr/bin/mariadb-install-db). Install it: apt-get install mariadb-server; or set COMPILED_TEST_MYSQL to a connection string.");
        }

        var directory = Directory.CreateTempSubdirectory("compiled-mariadb-").FullName;
        var asMysql = Environment.UserName == "root";
        if (asMysql)
        {
            await RunAsync("chown", ["-R", "mysql:mysql", directory]);
        }

        var server = new MariaDbServer(directory, FreePort(), asMysql);
        try
        {
            await RunAsync("/usr/bin/mariadb-install-db", ["--no-defaults", "--user=" + (asMysql ? "mysql" : Environment.UserName), "--datadir=" + Path.Combine(directory, "data"), "--auth-root-authentication-method=normal", "--skip-test-db"]);
            await server.StartServerAsync();
            await using var connection = new MySqlConnection(server.RootConnectionString);
            await connection.OpenAsync();
            await using var command = new MySqlCommand($"CREATE USER '{User}'@'%' IDENTIFIED BY '{Password}'; GRANT ALL PRIVILEGES ON *.* TO '{User}'@'%' WITH GRANT OPTION;", connection);
            await command.ExecuteNonQueryAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Creates a database and returns a connection string to it as user <see cref="User"/>.</summary>
    public async Task<string> CreateDatabaseAsync(string name)
    {
        await ExecuteAsRootAsync($"CREATE DATABASE `{name}` CHARACTER SET utf8mb4");
        return ConnectionStringFor(name);
    }

    /// <summary>Runs a statement as root (server settings: <c>SET GLOBAL …</c>).</summary>
    public async Task ExecuteAsRootAsync(string sql)
    {
        await using var connection = new MySqlConnection(RootConnectionString);
        await connection.OpenAsync();
        await using var command = new MySqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Kills the server (SIGKILL: every client's connection breaks) and leaves it stopped.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        _process = null;
    }

    /// <summary>Starts a server stopped by <see cref="StopAsync"/> again, on the same port.</summary>
    public Task ResumeAsync() => StartServerAsync();

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temporary directory
        }
    }

    private async Task StartServerAsync()
    {
        string[] arguments =
        [
            "/usr/sbin/mariadbd", "--no-defaults", "--datadir=" + Path.Combine(_directory, "data"), "--socket=" + Path.Combine(_directory, "s.sock"),
            "--port=" + Port.ToString(CultureInfo.InvariantCulture), "--bind-address=127.0.0.1", "--skip-log-bin", "--local-infile=1",
            "--innodb-flush-log-at-trx-commit=2", "--skip-innodb-doublewrite", "--innodb-buffer-pool-size=128M", "--max-connections=300",
            "--log-error=" + Path.Combine(_directory, "server.log"),
        ];
        var start = new ProcessStartInfo(_asMysql ? "runuser" : arguments[0]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in _asMysql ? ["-u", "mysql", "--", .. arguments] : arguments[1..])
        {
            start.ArgumentList.Add(argument);
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("Could not start mariadbd.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        // Ready when it accepts a connection (the server needs well under a second; allow a slow machine a minute).
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            try
            {
                await using var connection = new MySqlConnection(RootConnectionString);
                await connection.OpenAsync();
                return;
            }
            catch (MySqlException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
            catch (MySqlException ex)
            {
                throw new InvalidOperationException($"mariadbd did not start: {ex.Message}\n{Log}", ex);
            }
        }
    }

    private static async Task RunAsync(string program, string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {program}.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(program)} failed with exit code {process.ExitCode}: {await error}{await output}");
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
