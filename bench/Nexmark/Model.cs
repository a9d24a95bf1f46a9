namespace Compiled.Nexmark;

/// <summary>A person: someone who sells or bids (Nexmark's <c>person</c>). Times are Unix milliseconds.</summary>
public readonly partial record struct Person(long Id, string Name, string EmailAddress, string CreditCard, string City, string State, [property: EventTime] long DateTime, Utf8Text Extra)
    : INexmarkEvent<Person>
{
    static bool INexmarkEvent<Person>.IsKind(long id) => NexmarkGenerator.KindOf(id) == EventKind.Person;

    static Person INexmarkEvent<Person>.Create(NexmarkGenerator generator, long id) => generator.Person(id);
}

/// <summary>An auction of one item (Nexmark's <c>auction</c>): open from <see cref="DateTime"/> to <see cref="Expires"/>.</summary>
public readonly partial record struct Auction(long Id, string ItemName, string Description, long InitialBid, long Reserve, [property: EventTime] long DateTime, long Expires, long Seller, long Category, Utf8Text Extra)
    : INexmarkEvent<Auction>
{
    static bool INexmarkEvent<Auction>.IsKind(long id) => NexmarkGenerator.KindOf(id) == EventKind.Auction;

    static Auction INexmarkEvent<Auction>.Create(NexmarkGenerator generator, long id) => generator.Auction(id);
}

/// <summary>A bid on an auction (Nexmark's <c>bid</c>); prices are in cents.</summary>
public readonly partial record struct Bid(long Auction, long Bidder, long Price, string Channel, string Url, [property: EventTime] long DateTime, Utf8Text Extra)
    : INexmarkEvent<Bid>
{
    static bool INexmarkEvent<Bid>.IsKind(long id) => NexmarkGenerator.KindOf(id) == EventKind.Bid;

    static Bid INexmarkEvent<Bid>.Create(NexmarkGenerator generator, long id) => generator.Bid(id);
}

/// <summary>Which of the three streams an event belongs to.</summary>
public enum EventKind
{
    /// <summary>A person.</summary>
    Person,

    /// <summary>An auction.</summary>
    Auction,

    /// <summary>A bid.</summary>
    Bid,
}

/// <summary>A Nexmark record type: which event ids are of its kind, and how the generator builds one.</summary>
public interface INexmarkEvent<TSelf>
    where TSelf : INexmarkEvent<TSelf>
{
    /// <summary>Whether event <paramref name="id"/> is of this kind.</summary>
    static abstract bool IsKind(long id);

    /// <summary>The event <paramref name="id"/>, which is of this kind.</summary>
    static abstract TSelf Create(NexmarkGenerator generator, long id);
}
