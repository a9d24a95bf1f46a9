using Compiled.Connectors;
using CsCheck;

namespace Compiled.Runtime.Tests;

public sealed class SplitsTests
{
    [Fact]
    public void Ranges_cover_the_input_exactly_once_in_order_and_differ_in_size_by_at_most_one()
    {
        Gen.Select(Gen.Long[0, 100_000], Gen.Int[1, 64]).Sample((total, parallelism) =>
        {
            var ranges = Enumerable.Range(0, parallelism).Select(p => Splits.Range(total, parallelism, p)).ToList();
            long next = 0;
            foreach (var (start, length) in ranges)
            {
                Assert.Equal(next, start);
                next += length;
            }

            Assert.Equal(total, next);
            Assert.True(ranges.Max(r => r.Length) - ranges.Min(r => r.Length) <= 1);
        });
    }
}
