using System.Runtime.CompilerServices;
using Compiled.Bench;
using Compiled.Runtime.CompilerServices;

namespace Compiled.Throughput;

/// <summary>
/// Hand-written copies of the hand loop with, one at a time, each piece of bookkeeping the generated loop adds: the
/// per-record position store, the per-stage markers, and the write-back of a struct sink after each call. Run
/// interleaved in one process, they show what each costs (the generated loop is the last variant plus nothing).
/// </summary>
internal static class Diagnosis
{
    private const int Batch = 1024;

    public static IReadOnlyList<(string Name, Func<Order[], Result> Run)> Variants { get; } =
    [
        ("hand loop, in batches of 1024", orders => Batched(orders, Plain)),
        ("+ position store per record", orders => Batched(orders, Position)),
        ("+ stage markers", orders => Batched(orders, Markers)),
        ("+ struct write-back per call", orders => Batched(orders, WriteBack)),
    ];

    private delegate void Body(ReadOnlySpan<Order> batch, ref SegmentProgress progress, Holder holder);

    private sealed class Holder
    {
        public Totals Total { get; set; }
    }

    private static Result Batched(Order[] orders, Body body)
    {
        var holder = new Holder();
        var progress = default(SegmentProgress);
        for (var start = 0; start < orders.Length; start += Batch)
        {
            progress = default;
            body(orders.AsSpan(start, Math.Min(Batch, orders.Length - start)), ref progress, holder);
        }

        return holder.Total.Result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Plain(ReadOnlySpan<Order> batch, ref SegmentProgress progress, Holder holder)
    {
        var total = holder.Total;
        for (var i = 0; i < batch.Length; i++)
        {
            var r1 = OrderWorkload.Birthday(batch[i]);
            if (!OrderWorkload.IsAdult(r1))
            {
                continue;
            }

            total.Add(OrderWorkload.WithTax(r1));
        }

        holder.Total = total;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Position(ReadOnlySpan<Order> batch, ref SegmentProgress progress, Holder holder)
    {
        var total = holder.Total;
        for (var i = progress.Record; i < batch.Length; i++)
        {
            progress.Begin(i);
            var r1 = OrderWorkload.Birthday(batch[i]);
            if (!OrderWorkload.IsAdult(r1))
            {
                continue;
            }

            total.Add(OrderWorkload.WithTax(r1));
        }

        holder.Total = total;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Markers(ReadOnlySpan<Order> batch, ref SegmentProgress progress, Holder holder)
    {
        var total = holder.Total;
        for (var i = progress.Record; i < batch.Length; i++)
        {
            progress.Begin(i);
            var r1 = OrderWorkload.Birthday(batch[i]);
            progress.Stage = 2;
            if (!OrderWorkload.IsAdult(r1))
            {
                continue;
            }

            progress.Stage = 3;
            var r3 = OrderWorkload.WithTax(r1);
            progress.Stage = 4;
            total.Add(r3);
        }

        holder.Total = total;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteBack(ReadOnlySpan<Order> batch, ref SegmentProgress progress, Holder holder)
    {
        var total = holder.Total;
        for (var i = progress.Record; i < batch.Length; i++)
        {
            progress.Begin(i);
            var r1 = OrderWorkload.Birthday(batch[i]);
            progress.Stage = 2;
            if (!OrderWorkload.IsAdult(r1))
            {
                continue;
            }

            progress.Stage = 3;
            var r3 = OrderWorkload.WithTax(r1);
            progress.Stage = 4;
            total.Add(r3);
            holder.Total = total;
        }
    }
}
