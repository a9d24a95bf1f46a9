using Compiled.Kafka;
using Compiled.Runtime.CompilerServices;
using CsCheck;

namespace Compiled.Integration.Tests;

/// <summary>
/// The repartition hop's deduplication: writers of one origin (a source partition) take over from each other at the
/// committed offset, some crash, some go on writing as zombies after they were replaced; their records reach the
/// partitions of the repartition topic interleaved. What each partition's ledger admits must be every record of the
/// origin that belongs to it, once, in offset order — the naive reference is the origin itself.
/// </summary>
public sealed class OriginLedgerTests
{
    [Fact]
    public void Writers_that_take_over_at_the_committed_offset_get_every_record_admitted_once_in_order_however_they_interleave()
    {
        Gen.Select(Gen.Int[1, 400], Gen.Int[1, 4], Gen.Int).Sample((records, partitions, seed) =>
        {
            var random = new Random(seed);
            var partitionOf = Enumerable.Range(0, records).Select(_ => random.Next(partitions)).ToArray();
            var ledgers = Enumerable.Range(0, partitions).Select(_ => new OriginLedger()).ToArray();
            var admitted = Enumerable.Range(0, partitions).Select(_ => new List<long>()).ToArray();
            var committed = 0L;
            var writers = new List<Writer> { new(0) };
            var owner = writers[0];

            void Append(Writer writer)
            {
                var offset = writer.Next++;
                var partition = partitionOf[offset];
                if (ledgers[partition].Admit("clicks", 3, offset))
                {
                    admitted[partition].Add(offset);
                }
            }

            for (var step = 0; step < records * 4 && (owner.Next < records || writers.Any(w => w.Writing && w.Next < records)); step++)
            {
                var live = writers.Where(w => w.Writing && w.Next < records).ToList();
                switch (random.Next(10))
                {
                    case < 6 when live.Count > 0:
                        Append(live[random.Next(live.Count)]);
                        break;
                    case < 8:
                        committed = Math.Max(committed, owner.Next); // only the owner commits, and only what it appended
                        break;
                    case 8:
                        owner.Writing = random.Next(2) == 0; // crashed, or a zombie that goes on writing
                        owner = new Writer(committed);
                        writers.Add(owner);
                        break;
                    default:
                        if (live.Count > 0 && live[random.Next(live.Count)] is { } stopped && stopped != owner)
                        {
                            stopped.Writing = false; // a zombie noticed and stopped
                        }

                        break;
                }
            }

            // The last owner writes what is left, while the zombies still writing finish too, interleaved.
            while (owner.Next < records || writers.Any(w => w.Writing && w.Next < records))
            {
                var live = writers.Where(w => (w.Writing || w == owner) && w.Next < records).ToList();
                Append(live[random.Next(live.Count)]);
            }

            for (var p = 0; p < partitions; p++)
            {
                var expected = Enumerable.Range(0, records).Where(o => partitionOf[o] == p).Select(o => (long)o).ToList();
                Assert.Equal(expected, admitted[p]);
            }
        }, iter: 2000);
    }

    [Fact]
    public void A_ledger_read_back_admits_what_the_written_one_would()
    {
        Gen.Int[0, 40].Select(Gen.Long[0, 1_000_000]).Array[0, 30].Sample(entries =>
        {
            var ledger = new OriginLedger();
            foreach (var (partition, offset) in entries)
            {
                ledger.Admit(partition % 3 == 0 ? "views" : "clicks", partition, offset);
            }

            var writer = new StateWriter();
            ledger.WriteTo(writer);
            var reader = new StateReader(writer.Written);
            var read = OriginLedger.ReadFrom(ref reader);
            Assert.True(reader.End);
            Assert.Equal(ledger.Count, read.Count);
            foreach (var (partition, _) in entries)
            {
                var stream = partition % 3 == 0 ? "views" : "clicks";
                Assert.Equal(ledger.Highest(stream, partition), read.Highest(stream, partition));
            }

            // Written twice, the same bytes: the order is fixed, whatever the dictionary's.
            var again = new StateWriter();
            read.WriteTo(again);
            Assert.Equal(writer.Written.ToArray(), again.Written.ToArray());
        });
    }

    [Fact]
    public void A_damaged_ledger_is_refused_rather_than_read_as_another()
    {
        var ledger = new OriginLedger();
        ledger.Admit("clicks", 0, 41);
        ledger.Admit("clicks", 1, 7);
        var writer = new StateWriter();
        ledger.WriteTo(writer);
        var bytes = writer.Written.ToArray();

        for (var length = 0; length < bytes.Length; length++)
        {
            var cut = bytes.AsMemory(0, length);
            Assert.Throws<InvalidDataException>(() =>
            {
                var reader = new StateReader(cut);
                OriginLedger.ReadFrom(ref reader);
            });
        }

        var newer = (byte[])bytes.Clone();
        newer[0] = 2;
        var ex = Assert.Throws<InvalidDataException>(() =>
        {
            var reader = new StateReader(newer);
            OriginLedger.ReadFrom(ref reader);
        });
        Assert.Contains("version 2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_origin_offset_at_or_below_the_highest_admitted_is_a_repeat()
    {
        var ledger = new OriginLedger();
        Assert.Equal(-1, ledger.Highest("clicks", 0));
        Assert.True(ledger.Admit("clicks", 0, 0));
        Assert.False(ledger.Admit("clicks", 0, 0));
        Assert.True(ledger.Admit("clicks", 0, 5));
        Assert.False(ledger.Admit("clicks", 0, 3));
        Assert.True(ledger.Admit("clicks", 1, 3)); // another origin: its own offsets
        Assert.True(ledger.Admit("views", 0, 3));
        Assert.Equal(5, ledger.Highest("clicks", 0));
        Assert.Equal(3, ledger.Count);
    }

    private sealed class Writer(long start)
    {
        public long Next { get; set; } = start;

        public bool Writing { get; set; } = true;
    }
}
