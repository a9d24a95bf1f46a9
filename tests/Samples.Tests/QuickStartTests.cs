using Microsoft.Data.Sqlite;

namespace Compiled.Samples.Tests;

[Collection(nameof(SdkBuilds))]
public sealed class QuickStartTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(10);
    private readonly string _work = Directory.CreateTempSubdirectory("compiled-quickstart-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    [Fact]
    public async Task QuickStart_prints_the_two_people_a_year_older_and_the_table_holds_exactly_them()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart")], _work, Timeout);
        AssertQuickStartDidItsJob(result);
    }

    [Fact]
    public async Task QuickStart_run_twice_still_holds_exactly_the_two_rows()
    {
        await Processes.DotnetAsync([Repository.SampleDll("QuickStart")], _work, Timeout);
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--parallelism", "1"], _work, Timeout);
        AssertQuickStartDidItsJob(result);
    }

    [Fact]
    public async Task The_native_aot_binary_publishes_without_warnings_and_does_the_same_job()
    {
        var binary = await Repository.PublishNativeAsync("QuickStart", Path.Combine(_work, "publish"), Timeout);
        var run = await Processes.RunAsync(binary, [], _work, Timeout);
        AssertQuickStartDidItsJob(run);

        // Copied alone, without the SQLite library beside it: the error names the library and exits 2 (a retry cannot fix it).
        var alone = Directory.CreateDirectory(Path.Combine(_work, "alone")).FullName;
        var copy = Path.Combine(alone, Path.GetFileName(binary));
        File.Copy(binary, copy);
        var missing = await Processes.RunAsync(copy, [], alone, Timeout);
        Assert.True(missing.ExitCode == 2, missing.ToString());
        Assert.Contains("libe_sqlite3.so", missing.Error, StringComparison.Ordinal);
        Assert.Contains("docs/deployment.md", missing.Error, StringComparison.Ordinal);
    }

    internal static void AssertQuickStartDidItsJob(ProcessResult result, string? workingDirectory = null)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order().ToList();
        Assert.Equal(["Person { Name = Alice, Age = 26 }", "Person { Name = Bob, Age = 31 }"], lines);
        Assert.Contains("Table -> sqlite people.db table people: 2 records", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sqlite_file_holds_exactly_the_rows_printed()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart")], _work, Timeout);
        AssertQuickStartDidItsJob(result);
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_work, "people.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT Name || ':' || Age FROM people ORDER BY Name";
        using var reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(reader.GetString(0));
        }

        Assert.Equal(["Alice:26", "Bob:31"], rows);
    }
}
