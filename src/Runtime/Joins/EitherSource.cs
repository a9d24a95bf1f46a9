using System.ComponentModel;

namespace Compiled.Runtime.CompilerServices;

/// <summary>
/// The sources of a pipeline that reads two record types (the two inputs of a join), read as one stream of
/// <see cref="Either{TLeft, TRight}"/>: a union of every source, each wrapped so its records arrive as the side they are.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class EitherSource
{
    /// <summary>Reads the <typeparamref name="TLeft"/> sources and the <typeparamref name="TRight"/> sources (named by the pipeline members) as one stream (generated code).</summary>
    public static ISource<Either<TLeft, TRight>> Create<TLeft, TRight>(
        string[] leftNames,
        ISource<TLeft>?[] left,
        RecordSchema<TLeft>? leftSchema,
        string[] rightNames,
        ISource<TRight>?[] right,
        RecordSchema<TRight>? rightSchema)
    {
        ArgumentNullException.ThrowIfNull(leftNames);
        ArgumentNullException.ThrowIfNull(left);
        ArgumentNullException.ThrowIfNull(rightNames);
        ArgumentNullException.ThrowIfNull(right);
        var members = new ISource<Either<TLeft, TRight>>?[left.Length + right.Length];
        for (var i = 0; i < left.Length; i++)
        {
            members[i] = left[i] is { } source ? new LeftSide<TLeft, TRight>(source, leftSchema) : null;
        }

        for (var i = 0; i < right.Length; i++)
        {
            members[left.Length + i] = right[i] is { } source ? new RightSide<TLeft, TRight>(source, rightSchema) : null;
        }

        return new UnionSource<Either<TLeft, TRight>>([.. leftNames, .. rightNames], members);
    }
}

/// <summary>A source of one side of a join, seen as a source of <see cref="Either{TLeft, TRight}"/>; its settings and progress are the wrapped source's.</summary>
internal interface ISideSource
{
    /// <summary>The pipeline member's source.</summary>
    object Inner { get; }
}

/// <summary>Reads <typeparamref name="TRecord"/> records from a source and hands them on as one side of <typeparamref name="TOut"/>.</summary>
internal abstract class SideSource<TRecord, TOut>(ISource<TRecord> inner, RecordSchema<TRecord>? schema) : ISource<TOut>, ISourceProgress, ISideSource
{
    public object Inner => inner;

    public SourceProgress Progress => inner is ISourceProgress progress ? progress.Progress : new SourceProgress(0, null, "records");

    public ValueTask OpenAsync(SourceContext<TOut> context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var own = new SourceContext<TRecord>(context.PipelineName, context.SourceName, context.Parallelism, context.BatchSize, schema, context.DeadLetters, context.Delivery, context.PositionStore, context.CheckpointAsync)
        {
            Inform = context.Inform,
            CheckpointsState = context.CheckpointsState,
            RestoredPositions = context.RestoredPositions,
        };
        return inner.OpenAsync(own, cancellationToken);
    }

    public ISourceReader<TOut> CreateReader(int partition) => new Reader(this, inner.CreateReader(partition));

    public ValueTask CloseAsync(CancellationToken cancellationToken) => inner.CloseAsync(cancellationToken);

    public string Describe() => inner.Describe();

    /// <summary>Copies <paramref name="records"/> into <paramref name="into"/> as this side.</summary>
    protected abstract void Convert(ReadOnlySpan<TRecord> records, Span<TOut> into);

    private sealed class Reader(SideSource<TRecord, TOut> side, ISourceReader<TRecord> reader) : ISourceReader<TOut>
    {
        // One buffer per reader: a batch's records stay valid until the next read, as every source promises.
        private TOut[] _buffer = [];

        public bool CommitsPositions => reader.CommitsPositions;

        public bool CanCheckpoint => reader.CanCheckpoint;

        public IReadOnlyList<SourcePosition> Positions => reader.Positions;

        public object? CheckpointState => reader.CheckpointState;

        public async ValueTask<SourceBatch<TOut>> ReadAsync(CancellationToken cancellationToken)
        {
            var batch = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (batch.IsEnd)
            {
                return SourceBatch<TOut>.End;
            }

            if (batch.IsIdle)
            {
                return SourceBatch<TOut>.Idle;
            }

            var records = batch.Records.Span;
            if (_buffer.Length < records.Length)
            {
                _buffer = new TOut[Math.Max(records.Length, _buffer.Length * 2)];
            }

            side.Convert(records, _buffer);
            var converted = new ReadOnlyMemory<TOut>(_buffer, 0, records.Length);
            return batch.Splits is { } splits
                ? SourceBatch<TOut>.Of(converted, batch.Origins, splits)
                : SourceBatch<TOut>.Of(converted, batch.Origins);
        }

        public ValueTask CommitAsync(CancellationToken cancellationToken) => reader.CommitAsync(cancellationToken);

        public ValueTask CommitAsync(IReadOnlyList<SourcePosition> positions, CancellationToken cancellationToken) => reader.CommitAsync(positions, cancellationToken);

        public ValueTask DisposeAsync() => reader.DisposeAsync();
    }
}

/// <summary>A source of the left records of a join.</summary>
internal sealed class LeftSide<TLeft, TRight>(ISource<TLeft> inner, RecordSchema<TLeft>? schema) : SideSource<TLeft, Either<TLeft, TRight>>(inner, schema)
{
    protected override void Convert(ReadOnlySpan<TLeft> records, Span<Either<TLeft, TRight>> into)
    {
        for (var i = 0; i < records.Length; i++)
        {
            into[i] = Either<TLeft, TRight>.FromLeft(records[i]);
        }
    }
}

/// <summary>A source of the right records of a join.</summary>
internal sealed class RightSide<TLeft, TRight>(ISource<TRight> inner, RecordSchema<TRight>? schema) : SideSource<TRight, Either<TLeft, TRight>>(inner, schema)
{
    protected override void Convert(ReadOnlySpan<TRight> records, Span<Either<TLeft, TRight>> into)
    {
        for (var i = 0; i < records.Length; i++)
        {
            into[i] = Either<TLeft, TRight>.FromRight(records[i]);
        }
    }
}
