using System.Runtime.InteropServices;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Threading;

/// <summary>
/// A fixed menu of calls on <see cref="FixtureBasic"/> (every forward, batches of 1 to 3, distinct images) with each
/// one's result computed once, one call at a time, as the reference concurrent callers must match bit for bit.
/// </summary>
internal sealed class ConcurrentCalls
{
    public const int MaxBatch = 3;
    private const int Images = 5;
    private static readonly string[] Methods = ["Forward", "ForwardAttention", "ForwardFeatures", "ForwardPooled"];

    private readonly float[] _images;

    public ConcurrentCalls()
    {
        // The basic fixture's two images and three more made from them, so batches at different offsets differ.
        Parity = Fixture.Read("basic");
        int size = FixtureBasic.InputSize;
        _images = new float[(Images + MaxBatch) * size];
        Parity.Input.CopyTo(_images, 0);
        for (int i = 0; i < size; i++)
        {
            float a = Parity.Input[i], b = Parity.Input[size + i];
            _images[2 * size + i] = -a;
            _images[3 * size + i] = 0.5f * (a + b);
            _images[4 * size + i] = Parity.Input[2 * size - 1 - i];
        }
        // Wrap around, so every offset has MaxBatch images after it.
        Array.Copy(_images, 0, _images, Images * size, MaxBatch * size);
        Calls = [.. from method in Enumerable.Range(0, Methods.Length)
                    from batch in Enumerable.Range(1, MaxBatch)
                    from first in Enumerable.Range(0, Images)
                    select new Call(this, method, batch, first)];
    }

    public Fixture Parity { get; }

    public Call[] Calls { get; }

    /// <summary>
    /// Computes every call's reference on <paramref name="model"/>, one call after the other on this thread, and
    /// checks that none has a NaN (the outputs are poisoned before each call, so an element never written would).
    /// </summary>
    public void ComputeReferences(FixtureBasic model)
    {
        var buffers = new Buffers();
        foreach (var call in Calls)
        {
            call.Run(model, buffers);
            call.Reference = call.Written(buffers).ToArray();
            call.ReferenceAttention = call.WrittenAttention(buffers).ToArray();
            Assert.DoesNotContain(call.Reference, float.IsNaN);
            Assert.DoesNotContain(call.ReferenceAttention, float.IsNaN);
        }
    }

    /// <summary>The output spans of one caller, sized for the largest call and reused (so calls allocate nothing).</summary>
    public sealed class Buffers
    {
        public readonly float[] Output = new float[MaxBatch * FixtureBasic.OutputSize];
        public readonly float[] Attention = new float[MaxBatch * FixtureBasic.AttentionSize];
        public readonly float[] Features = new float[MaxBatch * FixtureBasic.FeatureSize];
        public readonly float[] Pooled = new float[MaxBatch * FixtureBasic.PooledSize];
    }

    public sealed class Call(ConcurrentCalls owner, int method, int batch, int first)
    {
        /// <summary>What the call wrote when it ran alone: its output, and for ForwardAttention the maps too.</summary>
        public float[] Reference = [], ReferenceAttention = [];

        public override string ToString() => $"{Methods[method]}(batch {batch}, first image {first})";

        /// <summary>Poisons the spans this call writes with NaN, then runs it.</summary>
        public void Run(FixtureBasic model, Buffers buffers)
        {
            var pixels = owner._images.AsSpan(first * FixtureBasic.InputSize, batch * FixtureBasic.InputSize);
            var written = Written(buffers);
            written.Fill(float.NaN);
            switch (method)
            {
                case 0:
                    model.Forward(pixels, written, batch);
                    break;
                case 1:
                    var attention = WrittenAttention(buffers);
                    attention.Fill(float.NaN);
                    model.ForwardAttention(pixels, written, attention, batch);
                    break;
                case 2:
                    model.ForwardFeatures(pixels, written, batch);
                    break;
                default:
                    model.ForwardPooled(pixels, written, batch);
                    break;
            }
        }

        /// <summary>Whether what the last <see cref="Run"/> on <paramref name="buffers"/> wrote equals the reference bit for bit.</summary>
        public bool Matches(Buffers buffers)
            => Bits(Written(buffers)).SequenceEqual(Bits(Reference)) && Bits(WrittenAttention(buffers)).SequenceEqual(Bits(ReferenceAttention));

        public Span<float> Written(Buffers buffers) => method switch
        {
            0 or 1 => buffers.Output.AsSpan(0, batch * FixtureBasic.OutputSize),
            2 => buffers.Features.AsSpan(0, batch * FixtureBasic.FeatureSize),
            _ => buffers.Pooled.AsSpan(0, batch * FixtureBasic.PooledSize),
        };

        public Span<float> WrittenAttention(Buffers buffers)
            => method == 1 ? buffers.Attention.AsSpan(0, batch * FixtureBasic.AttentionSize) : default;

        // NaN != NaN and -0 == 0 as floats; as bits, equal means identical.
        private static ReadOnlySpan<int> Bits(ReadOnlySpan<float> values) => MemoryMarshal.Cast<float, int>(values);
    }
}
