using Compiled.Connectors;

namespace Compiled.Runtime.Tests.Graph;

/// <summary>A page view at a time (Unix milliseconds).</summary>
public readonly record struct View(string Page, [property: EventTime] long Time);

/// <summary>A page's view count in one minute; <see cref="Time"/> is the minute's last instant.</summary>
public readonly record struct PageCount(string Page, [property: EventTime] long Time, long Views);

/// <summary>The three pages with the most views (ties: the smaller name first), as "page:views" joined by spaces.</summary>
public readonly struct Top3 : IAggregator<PageCount, Top3.State, string>
{
    public struct State
    {
        public PageCount First { get; set; }

        public PageCount Second { get; set; }

        public PageCount Third { get; set; }
    }

    private static bool Before(in PageCount a, in PageCount b)
        => a.Page is not null && (b.Page is null || a.Views > b.Views || (a.Views == b.Views && string.CompareOrdinal(a.Page, b.Page) < 0));

    public static void Add(ref State state, in PageCount input)
    {
        if (Before(input, state.First))
        {
            state.Third = state.Second;
            state.Second = state.First;
            state.First = input;
        }
        else if (Before(input, state.Second))
        {
            state.Third = state.Second;
            state.Second = input;
        }
        else if (Before(input, state.Third))
        {
            state.Third = input;
        }
    }

    public static void Merge(ref State state, in State other)
    {
        foreach (var count in new[] { other.First, other.Second, other.Third })
        {
            if (count.Page is not null)
            {
                Add(ref state, count);
            }
        }
    }

    public static string Result(in State state)
        => string.Join(" ", new[] { state.First, state.Second, state.Third }.Where(c => c.Page is not null).Select(c => $"{c.Page}:{c.Views}"));
}

/// <summary>Two keyed stages in sequence: views per (page, minute), then the top 3 pages of each minute.</summary>
[Pipeline(Name = "top-pages")]
public sealed partial class TopPagesPerMinute
{
    [Source] public ISource<View> Views { get; set; } = new CollectionSource<View>();

    [KeyBy] static string Page(View v) => v.Page;

    [Window] public WindowSpec<View, Count<View>> PerMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Transform] static PageCount Counted(WindowResult<string, long> r) => new(r.Key, r.End - 1, r.Value);

    [KeyBy] static long Minute(PageCount c) => c.Time;

    [Window] public WindowSpec<PageCount, Top3> Top { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Sink] public ISink<WindowResult<long, string>> Results { get; set; } = new CollectionSink<WindowResult<long, string>>();

    /// <summary>What the default collection sink received.</summary>
    public IReadOnlyCollection<WindowResult<long, string>> Collected => ((CollectionSink<WindowResult<long, string>>)Results).Items;
}

/// <summary>
/// One stream in three branches: the errors (a filter, then an instance-method tap, then a sink), the slow requests (a
/// map to their latency), and error counts per service in 1-minute windows, whose late records are only counted.
/// </summary>
[Pipeline(Name = "branches")]
public sealed partial class ServiceBranches
{
    private long _errorsSeen;

    public long ErrorsSeen => _errorsSeen;

    [Source] public ISource<ServiceEvent> Events { get; set; } = new CollectionSource<ServiceEvent>();

    [Transform] static ServiceEvent Normalized(ServiceEvent e) => e with { Level = e.Level.ToUpperInvariant() };

    [Transform] static bool IsError(ServiceEvent e) => e.Level == "ERROR";

    [Transform] bool CountError(ServiceEvent e) => ++_errorsSeen > 0;

    [Sink] public CollectionSink<ServiceEvent> Errors { get; set; } = new();

    [Transform(Input = nameof(Normalized))] static bool IsSlow(ServiceEvent e) => e.LatencyMs >= 500;

    [Transform] static int Latency(ServiceEvent e) => e.LatencyMs;

    [Sink] public CollectionSink<int> SlowLatencies { get; set; } = new();

    [KeyBy(Input = nameof(IsError))] static string Service(ServiceEvent e) => e.Service;

    [Window] public WindowSpec<ServiceEvent, Count<ServiceEvent>> ErrorsPerMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Sink] public CollectionSink<WindowResult<string, long>> Counts { get; set; } = new();
}

/// <summary>A service event; <see cref="Time"/> is Unix milliseconds.</summary>
public readonly record struct ServiceEvent(string Service, string Level, [property: EventTime] long Time, int LatencyMs);

/// <summary>The naive, independent reference for <see cref="TopPagesPerMinute"/>: group by minute and page, rank.</summary>
public static class TopPagesReference
{
    public static List<(long Minute, string Top)> Of(IEnumerable<View> views)
        => views
            .GroupBy(v => (Minute: Floor(v.Time), v.Page))
            .Select(g => new PageCount(g.Key.Page, g.Key.Minute + 59_999, g.LongCount()))
            .GroupBy(c => Floor(c.Time))
            .OrderBy(g => g.Key)
            .Select(g => (g.Key, string.Join(" ", g.OrderByDescending(c => c.Views).ThenBy(c => c.Page, StringComparer.Ordinal).Take(3).Select(c => $"{c.Page}:{c.Views}"))))
            .ToList();

    private static long Floor(long time) => (long)Math.Floor(time / 60_000.0) * 60_000;
}

/// <summary>A page hit as a JSON line.</summary>
[Record(Naming = FieldNaming.CamelCase)]
public readonly partial record struct Hit(string Page, [property: EventTime] long Time);

/// <summary>Hits per page per second, from files followed like tail -F.</summary>
[Pipeline(Name = "followed-hits")]
public sealed partial class FollowedHits
{
    [Source] public FileSource<Hit, Hit.JsonCodec> Input { get; set; } = new("unused");

    [KeyBy] static string Page(Hit h) => h.Page;

    [Window] public WindowSpec<Hit, Count<Hit>> PerSecond { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(1)));

    [Sink] public ISink<WindowResult<string, long>> Results { get; set; } = new CollectionSink<WindowResult<string, long>>();
}

/// <summary>One stream in two keyed branches, each with its own window and sink.</summary>
[Pipeline(Name = "two-window-branches")]
public sealed partial class TwoWindowBranches
{
    [Source] public ISource<View> Views { get; set; } = new CollectionSource<View>();

    [KeyBy] static string Page(View v) => v.Page;

    [Window] public WindowSpec<View, Count<View>> PerMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Sink] public ISink<WindowResult<string, long>> Minutes { get; set; } = new CollectionSink<WindowResult<string, long>>();

    [KeyBy(Input = nameof(Views))] string SamePage(View v) => v.Page; // an instance method: called on the pipeline object

    [Window] public WindowSpec<View, Count<View>> PerHalfMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromSeconds(30)));

    [Sink] public ISink<WindowResult<string, long>> HalfMinutes { get; set; } = new CollectionSink<WindowResult<string, long>>();
}

/// <summary>Views per page per minute: one keyed stage right behind the source (what a distributed run takes).</summary>
[Pipeline(Name = "pages-per-minute")]
public sealed partial class PagesPerMinute
{
    [Source] public ISource<View> Views { get; set; } = new CollectionSource<View>();

    [KeyBy] static string Page(View v) => v.Page;

    [Window] public WindowSpec<View, Count<View>> PerMinute { get; set; } = new(Window.Tumbling(TimeSpan.FromMinutes(1)));

    [Sink] public ISink<WindowResult<string, long>> Results { get; set; } = new CollectionSink<WindowResult<string, long>>();
}
