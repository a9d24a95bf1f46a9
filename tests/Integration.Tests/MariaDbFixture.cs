using Compiled.MySql.Testing;
using MySqlConnector;

namespace Compiled.Integration.Tests;

/// <summary>
/// A MariaDB (or MySQL) server for the whole test run, started on first use: the one in <c>COMPILED_TEST_MYSQL</c> (a
/// connection string of a user that may create databases), or a throwaway <see cref="MariaDbServer"/>.
/// </summary>
public sealed class MariaDbFixture : IAsyncLifetime, IDisposable
{
    private readonly SemaphoreSlim _starting = new(1, 1);
    private MariaDbServer? _server;
    private readonly string? _existing = Environment.GetEnvironmentVariable("COMPILED_TEST_MYSQL") is { Length: > 0 } configured ? configured : null;
    private int _databases;

    /// <summary>The throwaway server (null when the tests use <c>COMPILED_TEST_MYSQL</c>).</summary>
    public MariaDbServer? Server => _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public void Dispose() => _starting.Dispose();

    /// <summary>A new, empty database for one test; returns its connection string.</summary>
    public async Task<string> NewDatabaseAsync()
    {
        var name = $"t{Environment.ProcessId}_{Interlocked.Increment(ref _databases)}";
        if (_existing is { } existing)
        {
            await using var connection = new MySqlConnection(existing);
            await connection.OpenAsync();
            await using var command = new MySqlCommand($"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", connection);
            await command.ExecuteNonQueryAsync();
            return new MySqlConnectionStringBuilder(existing) { Database = name }.ConnectionString;
        }

        await _starting.WaitAsync();
        try
        {
            _server ??= await MariaDbServer.StartAsync();
        }
        finally
        {
            _starting.Release();
        }

        return await _server.CreateDatabaseAsync(name);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}
