using System.Text;

namespace Compiled.Nexmark;

/// <summary>What the generator makes: how many events, at what event-time rate, from which seed.</summary>
public sealed record NexmarkConfig
{
    /// <summary>Events in total (persons, auctions and bids), event ids 0 to <c>Events - 1</c>.</summary>
    public long Events { get; init; } = 10_000_000;

    /// <summary>
    /// How fast event time advances, in events per second (Nexmark's <c>first-event.rate</c>; the published Flink
    /// runs use 10,000,000). It shapes the data, not the speed of the run: events are made as fast as they are read.
    /// </summary>
    public double EventsPerSecond { get; init; } = 10_000_000;

    /// <summary>The event time of event 0, Unix milliseconds (2025-01-01T00:00:00Z unless told).</summary>
    public long BaseTime { get; init; } = 1_735_689_600_000;

    /// <summary>The seed of every random choice: the same seed makes the same events, whatever the parallelism.</summary>
    public ulong Seed { get; init; } = 0x4E45584D41524B;

    /// <summary>
    /// Bidder ids as nexmark-flink makes them (the person-id offset added twice, so bidders run about 1000 ids ahead
    /// of the persons of their time) rather than as Beam's original generator does (added once).
    /// </summary>
    public bool FlinkBidderIds { get; init; } = true;

    /// <summary>
    /// Whether sources make the events of the kinds their query reads from no source, and drop them (on by default):
    /// Nexmark's figures include generating every event. Off, a bid query's source skips persons and auctions.
    /// </summary>
    public bool MakeUnread { get; init; } = true;

    /// <summary>
    /// How far the queries' watermark stays behind the newest event time: 4 s, as the benchmark's table definition
    /// says (<c>WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND</c>). Each partition's events come in order,
    /// so zero loses nothing; at 10 M events/s, 4 s is more event time than a 10 M-event run covers, so joins and
    /// windows hold everything until the input ends.
    /// </summary>
    public TimeSpan WatermarkDelay { get; init; } = TimeSpan.FromSeconds(4);

    /// <summary>Ids go to partitions in chunks of this many events (a multiple of 50), round robin.</summary>
    public int ChunkSize { get; init; } = 1_000;
}

/// <summary>
/// Nexmark's event generator (the rules of nexmark/nexmark's Flink generator, re-implemented): event ids
/// 0, 1, 2, … of which, per 50, one is a person, three are auctions and 46 are bids; each event's fields are drawn
/// from a random stream seeded by (seed, event id), so an event is the same whichever partition makes it and
/// whichever other events are made. Event time follows the id: <c>BaseTime + id / EventsPerSecond</c>.
/// </summary>
/// <remarks>
/// Where this differs from nexmark-flink, and why: its random numbers are unseeded (two Flink runs differ); here they
/// are seeded per event, as in Beam's original generator. Its parallel generators each take a contiguous block of
/// ids and a timeline of their own starting at the base time; here partitions take chunks of ids round robin from one
/// timeline, so results do not depend on the parallelism. Ids start at 0 (a person) instead of 2 (an auction).
/// The shapes the queries see — the 1:3:46 mix, hot auctions, sellers and bidders, price and string
/// distributions, auction lifetimes, channels and urls — follow the reference's rules.
/// </remarks>
public sealed class NexmarkGenerator
{
    /// <summary>Events per proportion round: 1 person, 3 auctions, 46 bids.</summary>
    public const int Round = 50;

    private const int PersonShare = 1;
    private const int AuctionShare = 3;
    private const long FirstPersonId = 1000;
    private const long FirstAuctionId = 1000;
    private const int FirstCategory = 10;
    private const int Categories = 5;
    private const int ActivePeople = 1000;
    private const int InFlightAuctions = 100;
    private const int PersonLead = 10;
    private const int AuctionLead = 10;
    private const int HotBlock = 100;

    private readonly double _microsPerEvent;
    private readonly ulong _seed;
    private readonly long _bidderOffset;

    /// <summary>A generator of the events <paramref name="config"/> describes.</summary>
    public NexmarkGenerator(NexmarkConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.EventsPerSecond <= 0 || double.IsNaN(config.EventsPerSecond))
        {
            throw new ArgumentOutOfRangeException(nameof(config), config.EventsPerSecond, "EventsPerSecond must be positive.");
        }

        if (config.ChunkSize <= 0 || config.ChunkSize % Round != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(config), config.ChunkSize, $"ChunkSize must be a positive multiple of {Round}.");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(config.Events, nameof(config));
        Config = config;
        _microsPerEvent = 1_000_000.0 / config.EventsPerSecond;
        _seed = config.Seed;
        _bidderOffset = config.FlinkBidderIds ? 2 * FirstPersonId : FirstPersonId;
    }

    /// <summary>What this generator makes.</summary>
    public NexmarkConfig Config { get; }

    /// <summary>The kind of event <paramref name="id"/>.</summary>
    public static EventKind KindOf(long id)
    {
        var offset = id % Round;
        return offset < PersonShare ? EventKind.Person : offset < PersonShare + AuctionShare ? EventKind.Auction : EventKind.Bid;
    }

    /// <summary>The event time of event <paramref name="id"/> (Unix ms).</summary>
    public long TimeOf(long id) => Config.BaseTime + (long)(id * _microsPerEvent) / 1000;

    /// <summary>Every event, in id order, as one of the three records (for references and tests; allocates).</summary>
    public IEnumerable<(EventKind Kind, Person Person, Auction Auction, Bid Bid)> Events()
    {
        for (long id = 0; id < Config.Events; id++)
        {
            switch (KindOf(id))
            {
                case EventKind.Person:
                    yield return (EventKind.Person, Person(id), default, default);
                    break;
                case EventKind.Auction:
                    yield return (EventKind.Auction, default, Auction(id), default);
                    break;
                default:
                    yield return (EventKind.Bid, default, default, Bid(id));
                    break;
            }
        }
    }

    /// <summary>The person of event <paramref name="id"/> (a person event).</summary>
    public Person Person(long id)
    {
        var random = new EventRandom(_seed, id);
        var name = Strings.Names[(random.Int(Strings.FirstNames.Length) * Strings.LastNames.Length) + random.Int(Strings.LastNames.Length)];
        var email = Email(ref random);
        var card = CreditCard(ref random);
        var city = Strings.Cities[random.Int(Strings.Cities.Length)];
        var state = Strings.States[random.Int(Strings.States.Length)];
        var extra = Extra(ref random, 8 + name.Length + email.Length + card.Length + city.Length + state.Length, 200);
        return new Person(LastPerson(id) + FirstPersonId, name, email, card, city, state, TimeOf(id), extra);
    }

    /// <summary>The auction of event <paramref name="id"/> (an auction event).</summary>
    public Auction Auction(long id)
    {
        var random = new EventRandom(_seed, id);
        var seller = random.Int(4) > 0 ? LastPerson(id) / HotBlock * HotBlock : RandomPerson(ref random, id);
        var category = FirstCategory + random.Int(Categories);
        var initialBid = Price(ref random);
        var time = TimeOf(id);

        // An auction lasts about as long as the next InFlightAuctions auctions take to be made (uniform up to twice that).
        var horizon = TimeOf(id + (InFlightAuctions * Round / AuctionShare)) - time;
        var expires = time + 1 + random.Long(Math.Max(2 * horizon, 1));
        var item = Text(ref random, 20);
        var description = Text(ref random, 100);
        var reserve = initialBid + Price(ref random);
        var extra = Extra(ref random, 48 + item.Length + description.Length, 500);
        return new Auction(LastAuction(id) + FirstAuctionId, item, description, initialBid, reserve, time, expires, seller + FirstPersonId, category, extra);
    }

    /// <summary>The bid of event <paramref name="id"/> (a bid event).</summary>
    public Bid Bid(long id)
    {
        var random = new EventRandom(_seed, id);
        var auction = random.Int(2) > 0 ? LastAuction(id) / HotBlock * HotBlock : RandomAuction(ref random, id);
        var bidder = random.Int(4) > 0 ? (LastPerson(id) / HotBlock * HotBlock) + 1 : RandomPerson(ref random, id);
        var price = Price(ref random);
        string channel, url;
        if (random.Int(2) > 0)
        {
            var hot = random.Int(Strings.HotChannels.Length);
            (channel, url) = (Strings.HotChannels[hot], Strings.HotUrls[hot]);
        }
        else
        {
            (channel, url) = Strings.Channels[random.Int(Strings.Channels.Length)];
        }

        var extra = Extra(ref random, 32, 100);
        return new Bid(auction + FirstAuctionId, bidder + _bidderOffset, price, channel, url, TimeOf(id), extra);
    }

    /// <summary>Makes event <paramref name="id"/>, whatever its kind, and returns its padding's length (a value no compiler can drop the work behind).</summary>
    public long Make(long id) => KindOf(id) switch
    {
        EventKind.Person => Person(id).Extra.Length,
        EventKind.Auction => Auction(id).Extra.Length,
        _ => Bid(id).Extra.Length,
    };

    /// <summary>The newest person (base 0) at or before event <paramref name="id"/>.</summary>
    private static long LastPerson(long id)
    {
        var (round, offset) = Math.DivRem(id, Round);
        return (round * PersonShare) + Math.Min(offset, PersonShare - 1);
    }

    /// <summary>The newest auction (base 0) at or before event <paramref name="id"/>.</summary>
    private static long LastAuction(long id)
    {
        var (round, offset) = Math.DivRem(id, Round);
        if (offset < PersonShare)
        {
            return ((round - 1) * AuctionShare) + AuctionShare - 1; // before this round's first auction: the last of the previous round
        }

        return (round * AuctionShare) + Math.Min(offset - PersonShare, AuctionShare - 1);
    }

    /// <summary>One of the recently active persons, or one of the next few (not made yet).</summary>
    private static long RandomPerson(ref EventRandom random, long id)
    {
        var people = LastPerson(id) + 1;
        var active = Math.Min(people, ActivePeople);
        return people - active + random.Long(active + PersonLead);
    }

    /// <summary>One of the auctions likely still open, or one of the next few.</summary>
    private static long RandomAuction(ref EventRandom random, long id)
    {
        var newest = LastAuction(id);
        var oldest = Math.Max(newest - InFlightAuctions, 0);
        return oldest + random.Long(newest - oldest + 1 + AuctionLead);
    }

    /// <summary>A price in cents, log-uniform over [100, 10^8): each decade equally likely.</summary>
    private static long Price(ref EventRandom random) => (long)Math.Floor((Math.Pow(10.0, random.Double() * 6.0) * 100.0) + 0.5);

    /// <summary>3 to <c>max - 1</c> characters: lower-case letters, one in 13 a space; trimmed.</summary>
    private static string Text(ref EventRandom random, int max)
    {
        Span<char> text = stackalloc char[max];
        var length = Letters(ref random, text, max, ' ');
        return new string(text[..length].Trim(' '));
    }

    /// <summary>Fills 3 to <c>max - 1</c> characters of <paramref name="into"/> (letters, one in 13 <paramref name="special"/>); returns how many.</summary>
    internal static int Letters(ref EventRandom random, Span<char> into, int max, char special)
    {
        var length = 3 + random.Int(max - 3);
        for (var i = 0; i < length; i++)
        {
            into[i] = random.Int(13) == 0 ? special : (char)('a' + random.Int(26));
        }

        return length;
    }

    private static string Email(ref EventRandom random)
    {
        Span<char> email = stackalloc char[16];
        Span<char> part = stackalloc char[7];
        var local = part[..Letters(ref random, part, 7, ' ')].Trim(' ');
        local.CopyTo(email);
        var length = local.Length;
        email[length++] = '@';
        var domain = part[..Letters(ref random, part, 5, ' ')].Trim(' ');
        domain.CopyTo(email[length..]);
        length += domain.Length;
        ".com".CopyTo(email[length..]);
        return new string(email[..(length + 4)]);
    }

    private static string CreditCard(ref EventRandom random)
    {
        Span<char> card = stackalloc char[19];
        for (var group = 0; group < 4; group++)
        {
            var digits = random.Int(10_000);
            var at = group * 5;
            for (var d = 3; d >= 0; d--)
            {
                card[at + d] = (char)('0' + (digits % 10));
                digits /= 10;
            }

            if (group < 3)
            {
                card[at + 4] = ' ';
            }
        }

        return new string(card);
    }

    /// <summary>Padding that brings a record to about <paramref name="average"/> bytes: a slice of one shared buffer (no allocation).</summary>
    private static Utf8Text Extra(ref EventRandom random, int size, int average)
    {
        if (size > average)
        {
            return default;
        }

        var target = average - size;
        var delta = (int)Math.Round(target * 0.2, MidpointRounding.AwayFromZero);
        var length = target - delta + (delta == 0 ? 0 : random.Int(2 * delta));
        var padding = Strings.Padding;
        return new Utf8Text(padding.AsMemory(random.Int(padding.Length - length), length));
    }

    /// <summary>The fixed tables: names, cities, states, channels and their urls, and the padding buffer.</summary>
    internal static class Strings
    {
        public static readonly string[] FirstNames = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
        public static readonly string[] LastNames = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
        public static readonly string[] Cities = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"];
        public static readonly string[] States = ["AZ", "CA", "ID", "OR", "WA", "WY"];
        public static readonly string[] HotChannels = ["Google", "Facebook", "Baidu", "Apple"];

        /// <summary>"First Last" for every pair, made once: a person's name costs no allocation.</summary>
        public static readonly string[] Names = [.. FirstNames.SelectMany(first => LastNames.Select(last => first + " " + last))];

        public static readonly string[] HotUrls;

        /// <summary>10,000 (channel, url) pairs; nine in ten urls carry a channel_id.</summary>
        public static readonly (string Channel, string Url)[] Channels;

        /// <summary>1 MiB of padding characters ('H' to 'z', mostly letters), sliced for every record's extra.</summary>
        public static readonly byte[] Padding;

#pragma warning disable CA1810 // the tables depend on one random stream, drawn in order
        static Strings()
#pragma warning restore CA1810
        {
            var random = new EventRandom(0x7AB1E5, 0);
            HotUrls = [.. Enumerable.Range(0, HotChannels.Length).Select(_ => BaseUrl(ref random))];
            Channels = new (string, string)[10_000];
            for (var i = 0; i < Channels.Length; i++)
            {
                var url = BaseUrl(ref random);
                if (random.Int(10) > 0)
                {
                    // The channel id is the index with its 32 bits reversed, as a positive number where it has one.
                    var reversed = unchecked((int)ReverseBits((uint)i));
                    url += "&channel_id=" + (reversed == int.MinValue ? reversed : Math.Abs(reversed)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                }

                Channels[i] = ("channel-" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), url);
            }

            Padding = new byte[1 << 20];
            for (var i = 0; i < Padding.Length;)
            {
                // Six base-26 digits of a signed 32-bit number, with the remainder's sign: letters, and 'H' to '`' when negative.
                var value = unchecked((int)random.Next());
                for (var d = 0; d < 6 && i < Padding.Length; d++)
                {
                    Padding[i++] = (byte)('a' + (value % 26));
                    value /= 26;
                }
            }
        }

        private static string BaseUrl(ref EventRandom random)
        {
            var url = new StringBuilder("https://www.nexmark.com/");
            Span<char> part = stackalloc char[5];
            for (var i = 0; i < 3; i++)
            {
                url.Append(part[..Letters(ref random, part, 5, '_')]).Append('/');
            }

            return url.Append("item.htm?query=1").ToString();
        }

        private static uint ReverseBits(uint value)
        {
            uint reversed = 0;
            for (var bit = 0; bit < 32; bit++)
            {
                reversed = (reversed << 1) | (value & 1);
                value >>= 1;
            }

            return reversed;
        }
    }
}

/// <summary>SplitMix64: a small, fast random stream, seeded per event.</summary>
internal struct EventRandom(ulong seed, long id)
{
    private ulong _state = seed ^ unchecked((ulong)id * 0xD1B54A32D192ED03UL);

    public ulong Next()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, <paramref name="bound"/>).</summary>
    public int Int(int bound) => (int)(((Next() >> 32) * (ulong)bound) >> 32);

    /// <summary>Uniform in [0, <paramref name="bound"/>) (a negligible bias for bounds far below 2^64).</summary>
    public long Long(long bound) => (long)(Next() % (ulong)bound);

    /// <summary>Uniform in [0, 1).</summary>
    public double Double() => (Next() >> 11) * (1.0 / (1UL << 53));
}
