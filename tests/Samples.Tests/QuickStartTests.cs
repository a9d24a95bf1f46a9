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
        SampleAssertions.QuickStartDidItsJob(result);
    }

    [Fact]
    public async Task QuickStart_run_twice_still_holds_exactly_the_two_rows()
    {
        await Processes.DotnetAsync([Repository.SampleDll("QuickStart")], _work, Timeout);
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart"), "--parallelism", "1"], _work, Timeout);
        SampleAssertions.QuickStartDidItsJob(result);
    }

    [Fact]
    public async Task The_sqlite_file_holds_exactly_the_rows_printed()
    {
        var result = await Processes.DotnetAsync([Repository.SampleDll("QuickStart")], _work, Timeout);
        SampleAssertions.QuickStartDidItsJob(result);
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
