using Compiled;
using Compiled.Connectors;
using Compiled.MySql;
using Compiled.Postgres;
using Compiled.Sqlite;

namespace QuickStart;

/// <summary>A person, as the seed article's example has them.</summary>
public readonly record struct Person(string Name, int Age);

/// <summary>A reusable operator: everyone gets a year older.</summary>
[Transform]
public sealed partial class Birthday
{
    public Person Map(Person person) => person with { Age = person.Age + 1 };
}

/// <summary>
/// The seed article's pipeline: people → age + 1 → the table <c>people</c>. The chain reads top to bottom; the
/// generator fuses it into one loop (see obj/**/generated/ for the code).
/// </summary>
[Pipeline]
public sealed partial class PeopleEtl
{
    [Source] CollectionSource<Person> People { get; } = new(new Person("Alice", 25), new Person("Bob", 30));

    [Transform] Birthday Birthday { get; } = new();

    [Sink] SqliteSink<Person> Table { get; } = new("people.db", table: "people", TableMode.Recreate);

    [Sink] ConsoleSink<Person> Print { get; } = new();
}

/// <summary>
/// The same pipeline writing the table <c>people</c> to PostgreSQL (<c>--postgres "Host=…;Database=…;Username=…"</c>):
/// the operator is shared, only the sink differs — a different sink is a different compiled pipeline.
/// </summary>
[Pipeline(Name = "PeopleEtl")]
public sealed partial class PeopleToPostgres
{
    [Source] CollectionSource<Person> People { get; } = new(new Person("Alice", 25), new Person("Bob", 30));

    [Transform] Birthday Birthday { get; } = new();

    [Sink] PostgresSink<Person> Table { get; } = new(new PostgresSinkOptions { Table = "people", TableMode = TableMode.Recreate });

    [Sink] ConsoleSink<Person> Print { get; } = new();
}

/// <summary>
/// The seed article's own target: the table <c>people</c> in MySQL or MariaDB (<c>--mysql "Server=…;Database=flink;User=…"</c>,
/// the article's <c>jdbc:mysql://localhost:3306/flink</c>).
/// </summary>
[Pipeline(Name = "PeopleEtl")]
public sealed partial class PeopleToMySql
{
    [Source] CollectionSource<Person> People { get; } = new(new Person("Alice", 25), new Person("Bob", 30));

    [Transform] Birthday Birthday { get; } = new();

    [Sink] MySqlSink<Person> Table { get; } = new(new MySqlSinkOptions { Table = "people", TableMode = TableMode.Recreate });

    [Sink] ConsoleSink<Person> Print { get; } = new();
}
