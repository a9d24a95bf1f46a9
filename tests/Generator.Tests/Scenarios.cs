namespace Compiled.Generator.Tests;

/// <summary>Representative pipelines: each is snapshotted (golden files) and compiled and run.</summary>
internal static class Scenarios
{
    public const string MapOnly = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        [Pipeline]
        public sealed partial class Doubler
        {
            [Source] public CollectionSource<int> Numbers { get; set; } = new(1, 2, 3, 4, 5);

            [Transform] static int Double(int x) => x * 2;

            [Sink] public CollectionSink<int> Output { get; } = new();
        }
        """;

    public const string MapFilterMap = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Order(int Id, int Age, double Amount);

        [Pipeline(Name = "orders")]
        public sealed partial class Orders
        {
            [Source] public CollectionSource<Order> Input { get; set; } = new(new Order(1, 16, 10), new Order(2, 18, 20), new Order(3, 40, 30));

            [Transform] static Order AgeOneYear(Order o) => o with { Age = o.Age + 1 };

            [Transform] static bool IsAdult(Order o) => o.Age >= 18;

            [Transform] static double WithTax(Order o) => o.Amount * 1.1;

            [Sink] public CollectionSink<double> Output { get; } = new();
        }
        """;

    public const string KeyedWindow = """
        using System;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Click(int User, [EventTime] long Time, string Page);

        [Pipeline(Name = "clicks")]
        public sealed partial class ClicksPerMinute
        {
            [Source] public CollectionSource<Click> Input { get; set; } = new(new Click(1, 1_000, "/"), new Click(2, 61_000, "/a"), new Click(1, 2_000, "/b"));

            [Transform] static bool Real(Click c) => c.Page.Length > 0;

            [KeyBy] static int User(Click c) => c.User;

            [Window] public WindowSpec<Click, Count<Click>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Transform] static bool Busy(WindowResult<int, long> r) => r.Value > 1;

            [Sink] public CollectionSink<WindowResult<int, long>> Output { get; } = new();

            [LateData] public CollectionSink<Click> Late { get; } = new();
        }
        """;

    /// <summary>A join of two streams: two record types, a key selector for each, an interval join, a map after it.</summary>
    public const string StreamJoin = """
        using System;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        [Record]
        public readonly partial record struct Order(int Id, [property: EventTime] long Time, double Amount);

        public sealed record Payment(int OrderId, [property: EventTime] DateTimeOffset At, double Amount);

        [Pipeline(Name = "paid-orders")]
        public sealed partial class PaidOrders
        {
            [Source] public CollectionSource<Order> Orders { get; set; } = new();

            [Source] public CollectionSource<Payment> Payments { get; set; } = new();

            [Transform] static bool Settled(Payment p) => p.Amount > 0;

            [KeyBy] static int PaidOrder(Payment p) => p.OrderId;

            [KeyBy] static int OrderId(Order o) => o.Id;

            [Join] public JoinSpec<Order, Payment> Paid { get; } = Join.Interval<Order, Payment>(TimeSpan.Zero, TimeSpan.FromMinutes(15)) with { Kind = JoinKind.LeftOuter };

            [Transform] static double Owed(Joined<Order, Payment> j) => j.Left.Amount - (j.HasRight ? j.Right!.Amount : 0);

            [Sink] public CollectionSink<double> Output { get; } = new();
        }
        """;

    /// <summary>A lookup join, then a window over the joined records (event time is the left record's).</summary>
    public const string LookupJoin = """
        using System;
        using Compiled;
        using Compiled.Connectors;
        using Compiled.Sqlite;

        namespace Demo;

        public readonly record struct Order(int Id, string Customer, [EventTime] long Time, double Amount);

        public sealed record Customer([property: Key] string Id, string Country, int? Discount);

        public sealed class Account
        {
            [Key] public string Id { get; init; } = "";
            public string Owner { get; set; } = "";
        }

        [Pipeline(Name = "orders")]
        public sealed partial class OrdersByCountry
        {
            [Source] public CollectionSource<Order> Input { get; set; } = new();

            [KeyBy] static string CustomerOf(Order o) => o.Customer;

            [Lookup] public SqliteLookup<string, Customer> Customers { get; } = new("shop.db", "customers") { Join = JoinKind.LeftOuter };

            [KeyBy] static string Country(Joined<Order, Customer> j) => j.HasRight ? j.Right!.Country : "unknown";

            [Window] public WindowSpec<Joined<Order, Customer>, Count<Joined<Order, Customer>>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Sink] public CollectionSink<WindowResult<string, long>> Output { get; } = new();

            [KeyBy(Input = nameof(Input))] static string AccountOf(Order o) => o.Customer;

            [Lookup] public SqliteLookup<string, Account> Accounts { get; } = new("shop.db", "accounts");

            [Sink] public CollectionSink<Joined<Order, Account>> Owned { get; } = new();
        }
        """;

    /// <summary>
    /// Asynchronous transforms: an instance map taking a token (per-partition state), a static flatMap behind it, a
    /// branch that reaches a sink before them, and a window after them fed the records' event time.
    /// </summary>
    public const string AsyncTransform = """
        using System;
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Order(int Id, string Customer, [EventTime] long Time);

        public readonly record struct Rated(int Id, string Customer, [EventTime] long Time, double Rate);

        [Pipeline(Name = "rates")]
        public sealed partial class Rates
        {
            private int _calls;

            [Source] public CollectionSource<Order> Input { get; set; } = new();

            [Transform] static bool Valid(Order o) => o.Id > 0;

            [Sink] public CollectionSink<Order> Audit { get; } = new();

            [Transform(Input = nameof(Valid)), AsyncOptions(MaxInFlight = 32, TimeoutMilliseconds = 2_000, MaxAttempts = 3, Ordered = false, Spread = true)]
            async ValueTask<Rated> Rate(Order o, CancellationToken cancellationToken)
            {
                _calls++;
                await Task.Delay(1, cancellationToken);
                return new Rated(o.Id, o.Customer, o.Time, 1.5);
            }

            [Transform] static async ValueTask<IEnumerable<Rated>> Split(Rated r)
            {
                await Task.Yield();
                return new[] { r, r with { Rate = r.Rate * 2 } };
            }

            [KeyBy] static string CustomerOf(Rated r) => r.Customer;

            [Window] public WindowSpec<Rated, Count<Rated>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Sink] public CollectionSink<WindowResult<string, long>> Output { get; } = new();
        }
        """;

    /// <summary>Two keyed stages in sequence: clicks per (page, minute), then the top pages of each minute.</summary>
    public const string TwoKeyedStages = """
        using System;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Click(string Page, [EventTime] long Time);

        public readonly record struct PageCount(string Page, [EventTime] long WindowEnd, long Clicks);

        public readonly struct Top3 : IAggregator<PageCount, Top3.State, string>
        {
            public struct State { public PageCount A, B, C; }

            public static void Add(ref State s, in PageCount c)
            {
                if (c.Clicks > s.A.Clicks) { s.C = s.B; s.B = s.A; s.A = c; }
                else if (c.Clicks > s.B.Clicks) { s.C = s.B; s.B = c; }
                else if (c.Clicks > s.C.Clicks) { s.C = c; }
            }

            public static void Merge(ref State s, in State other) { Add(ref s, other.A); Add(ref s, other.B); Add(ref s, other.C); }

            public static string Result(in State s) => $"{s.A.Page} {s.B.Page} {s.C.Page}";
        }

        [Pipeline(Name = "top-pages")]
        public sealed partial class TopPages
        {
            [Source] public CollectionSource<Click> Clicks { get; set; } = new();

            [KeyBy] static string Page(Click c) => c.Page;

            [Window] public WindowSpec<Click, Count<Click>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Transform] static PageCount Counted(WindowResult<string, long> r) => new(r.Key, r.End - 1, r.Value);

            [KeyBy] static long Minute(PageCount c) => c.WindowEnd;

            [Window] public WindowSpec<PageCount, Top3> Top { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Sink] public CollectionSink<WindowResult<long, string>> Output { get; } = new();
        }
        """;

    /// <summary>One stream read by three branches: a forked loop, one branch behind a filter, one keyed.</summary>
    public const string Branches = """
        using System;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Event(string Service, string Level, [EventTime] long Time);

        [Pipeline(Name = "branches")]
        public sealed partial class Branches
        {
            [Source] public CollectionSource<Event> Events { get; set; } = new();

            [Transform] static Event Normalized(Event e) => e with { Level = e.Level.ToLowerInvariant() };

            [Transform] static bool IsError(Event e) => e.Level == "error";

            [Sink] public CollectionSink<Event> Errors { get; } = new();

            [Transform(Input = nameof(Normalized))] static bool IsWarning(Event e) => e.Level == "warning";

            [Sink] public CollectionSink<Event> Warnings { get; } = new();

            [KeyBy(Input = nameof(Normalized))] static string Service(Event e) => e.Service;

            [Window] public WindowSpec<Event, Count<Event>> PerMinute { get; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

            [Sink] public CollectionSink<WindowResult<string, long>> Counts { get; } = new();

            [LateData(Window = nameof(PerMinute))] public CollectionSink<Event> Late { get; } = new();
        }
        """;

    public const string FlatMap = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        [Pipeline]
        public sealed partial class WordSplitter
        {
            [Source] public CollectionSource<string> Lines { get; set; } = new("to be or", "not to be");

            [Transform]
            static void Split(string line, Emitter<string> words)
            {
                foreach (var word in line.Split(' '))
                {
                    words.Emit(word);
                }
            }

            [Transform] static bool IsLong(string word) => word.Length > 2;

            [Sink] public CollectionSink<string> Output { get; } = new();
        }
        """;

    public const string ReusableOperator = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public readonly record struct Person(string Name, int Age);

        [Transform]
        public sealed partial class Birthday
        {
            public Person Map(Person person) => person with { Age = person.Age + 1 };
        }

        [Transform]
        public sealed partial class Teenager
        {
            public static bool IsTeen(Person person) => person.Age is >= 13 and <= 19;
        }

        [Pipeline]
        public sealed partial class People
        {
            [Source] public CollectionSource<Person> Input { get; set; } = new(new Person("Alice", 25), new Person("Bob", 12), new Person("Eve", 18));

            [Transform] Birthday Birthday { get; } = new();

            [Transform] static Teenager Teens { get; } = new();

            [Sink] public CollectionSink<Person> Output { get; } = new();
        }
        """;

    /// <summary>
    /// Operator objects with state in fields of values (a counter, an auto-property, a string), as a transform and as
    /// the sink: the loop keeps its fast path, saving their fields before a batch and setting them back on failure.
    /// </summary>
    public const string OperatorObjectState = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public sealed class Tagger
        {
            private long _next;
            private string _last = "";

            public long Calls { get; private set; }

            public long Tag(long value)
            {
                Calls++;
                _last = value.ToString();
                return (value * 1000) + _next++;
            }
        }

        public sealed class Totals
        {
            public long Sum { get; private set; }

            public void Add(long value) => Sum += value;
        }

        [Pipeline]
        public sealed partial class Tagging
        {
            [Source] public CollectionSource<long> Input { get; set; } = new(1, 2, 3);

            [Transform] public Tagger Tags { get; } = new();

            [Transform] static bool Small(long value) => value < 1_000_000 ? true : throw new System.OverflowException();

            [Sink] public Totals Total { get; } = new();
        }
        """;

    public const string InstanceState = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        /// <summary>Numbers the records it sees: state that must belong to one partition.</summary>
        [Transform]
        public sealed partial class Sequencer
        {
            private long _next;

            public (long Sequence, long Value) Number(long value) => (_next++, value);
        }

        [Pipeline]
        public sealed partial class Numbering
        {
            private long _seen;

            [Source] public CollectionSource<long> Input { get; set; } = new(10, 20, 30, 40, 50, 60);

            [Transform] Sequencer Sequencer { get; } = new();

            [Transform] string Describe((long Sequence, long Value) item) => $"{item.Sequence}:{item.Value}:{_seen++}";

            [Sink] public CollectionSink<string> Output { get; } = new();

            [Sink] void Count(string line) => Counted++;

            public long Counted { get; private set; }
        }
        """;

    public const string StructOperators = """
        using System.Collections.Generic;
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        /// <summary>A mutable struct operator: its counter is kept in registers for a batch and written back.</summary>
        public struct Counter
        {
            private long _next;

            public long Number(long value) => (value * 1000) + _next++;
        }

        /// <summary>A readonly struct operator: copied once per batch, never written back.</summary>
        public readonly struct Scale(int factor)
        {
            public long Apply(long value) => value * factor;
        }

        /// <summary>A struct sink operator: an accumulator.</summary>
        public struct Totals
        {
            public long Sum;
            public long Count;

            public void Add(long value)
            {
                Sum += value;
                Count++;
            }
        }

        /// <summary>A class sink operator.</summary>
        public sealed class Printer
        {
            public List<long> Seen { get; } = new();

            public void Write(long value) => Seen.Add(value);
        }

        [Pipeline]
        public sealed partial class StructState
        {
            [Source] public CollectionSource<long> Input { get; set; } = new(1, 2, 3, 4, 5, 6);

            [Transform] public Counter Numbering { get; set; }

            [Transform] Scale Triple { get; } = new(3);

            [Sink] public Totals Total;

            [Sink] public Printer Print { get; } = new();
        }
        """;

    /// <summary>A [Record] with every kind of field that needs care in generated code: enums, nullables, a nested record, Utf8Text.</summary>
    public const string Codecs = """
        using Compiled;
        using Compiled.Connectors;

        namespace Demo;

        public enum Level { Info, Error }

        public readonly record struct Where(string Host, int Port);

        [Record(Naming = FieldNaming.SnakeCase)]
        public readonly partial record struct LogEntry(long Seq, string Message, string? Note, Level Level, Level? MaybeLevel, double? Score, decimal Amount, System.DateTimeOffset At, Where Origin, Utf8Text Raw);

        [Pipeline]
        public sealed partial class Logs
        {
            [Source] FileSource<LogEntry, LogEntry.JsonCodec> Input { get; } = new("in.jsonl");

            [Sink] FileSink<LogEntry, LogEntry.CsvCodec> Output { get; } = new("out");
        }
        """;
}
