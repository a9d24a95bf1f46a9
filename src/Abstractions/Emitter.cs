using System.Runtime.CompilerServices;

namespace Compiled;

/// <summary>
/// Where a flatMap operator emits its outputs: <c>void Split(Line line, Emitter&lt;Word&gt; output)</c>. The generated
/// loop hands each operator call an emitter over a reusable per-partition buffer and then runs the rest of the chain
/// over what was emitted, so emitting allocates nothing in steady state.
/// </summary>
/// <typeparam name="T">The type of the records emitted.</typeparam>
public readonly ref struct Emitter<T>
{
    private readonly RecordBuffer<T> _buffer;

    /// <summary>Creates an emitter that appends to <paramref name="buffer"/>.</summary>
    public Emitter(RecordBuffer<T> buffer) => _buffer = buffer;

    /// <summary>Emits one record to the next stage.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Emit(in T record) => _buffer.Add(record);

    /// <summary>The number of records emitted so far for the current input.</summary>
    public int Count => _buffer.Count;
}
