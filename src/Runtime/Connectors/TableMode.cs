namespace Compiled.Connectors;

/// <summary>What a table sink does with its table when the run starts.</summary>
public enum TableMode
{
    /// <summary>Create the table from the record's schema if it does not exist; append to it if it does.</summary>
    CreateIfMissing,

    /// <summary>Drop the table if it exists and create it afresh: the run's output replaces the previous one.</summary>
    Recreate,

    /// <summary>The table must exist; the run fails at start, naming the table, if it does not.</summary>
    MustExist,
}

/// <summary>How a table sink writes rows (the SQLite sink; the PostgreSQL sink's <c>PostgresWriteMode</c> has the same two).</summary>
public enum TableWriteMode
{
    /// <summary>Insert every record. With <c>[Key]</c> members the table has them as its primary key, so a repeated key fails the write.</summary>
    Append,

    /// <summary>Insert or update by the record's <c>[Key]</c> members; within a batch the last record of a key wins. Replaying records changes nothing.</summary>
    Upsert,
}

/// <summary>How record member names become column names in table sinks (SQLite and PostgreSQL alike).</summary>
public enum ColumnNaming
{
    /// <summary><c>CustomerId</c> → <c>customer_id</c>: the SQL convention, no quoting needed. The default.</summary>
    SnakeCase,

    /// <summary>As declared (quoted): <c>"CustomerId"</c>.</summary>
    Exact,
}

/// <summary>The one naming rule of the table sinks.</summary>
public static class ColumnNames
{
    /// <summary>The column name of member <paramref name="member"/> under <paramref name="naming"/>.</summary>
    public static string Of(string member, ColumnNaming naming)
    {
        ArgumentNullException.ThrowIfNull(member);
        return naming == ColumnNaming.SnakeCase ? SnakeCase(member) : member;
    }

    /// <summary><c>CustomerId</c> → <c>customer_id</c>, <c>HTTPStatus</c> → <c>http_status</c>, <c>Value2</c> → <c>value2</c> (the PostgreSQL sink's rule since its first version).</summary>
    public static string SnakeCase(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var text = new System.Text.StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c))
            {
                if (i > 0 && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
                {
                    text.Append('_');
                }

                text.Append(char.ToLowerInvariant(c));
            }
            else
            {
                text.Append(c);
            }
        }

        return text.ToString();
    }
}
