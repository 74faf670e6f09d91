using System.Diagnostics;
using ViTGen.CompilerServices;

namespace ViTGen.Benchmarks;

/// <summary>
/// Where a ViT's transformer blocks spend their time: the kernels the generated code calls, in its order, on random
/// weights of every block (so the weights stream from memory as in a real forward), timed one kernel call at a time.
/// <c>dotnet run -c Release --project tests/ViTGen.Benchmarks -- profile b16 2</c> (ti16, s16, b16, l16) prints the best of 20 passes per
/// kernel and per pass, with GFLOP/s. Not a BenchmarkDotNet benchmark: it measures the parts of one forward, not a call.
/// </summary>
internal static class BlockProfile
{
    /// <summary>The models <see cref="Run"/> knows.</summary>
    public static readonly string[] Models = ["ti16", "s16", "b16", "l16"];

    public static void Run(string model, int threads)
    {
        switch (model)
        {
            case "ti16": Run<Dim192, Heads3, Dim192, Dim768>(threads); break;
            case "s16": Run<Dim384, Heads6, Dim384, Dim768>(threads); break;
            case "b16": Run<Dim768, Heads12, Dim768, Dim768>(threads); break;
            case "l16": Run<Dim1024, Heads16, Dim512, Dim683>(threads); break;
            default: throw new ArgumentException($"profile knows ti16, s16, b16 and l16, not '{model}'", nameof(model));
        }
    }

    private const int Tokens = 197, Passes = 20;

    /// <summary>
    /// <typeparamref name="TKBlock"/>: the generator's reduction block for K = Dim (qkv, proj, fc1), <typeparamref name="TFc2KBlock"/>
    /// for K = 4 Dim (see <c>CpuModelEmitter.ChooseKBlock</c>).
    /// </summary>
    private static void Run<TDim, THeads, TKBlock, TFc2KBlock>(int threads)
        where TDim : IDimension where THeads : IDimension where TKBlock : IDimension where TFc2KBlock : IDimension
    {
        int dim = TDim.Value, hidden = 4 * dim, depth = dim > 768 ? 24 : 12;
        var random = new Random(1);
        float[] Weights(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5) * 0.05f).ToArray();
        var blocks = Enumerable.Range(0, depth).Select(_ => (
            Qkv: new PackedLinear(Weights(3 * dim * dim), Weights(3 * dim), 3 * dim, dim), Proj: new PackedLinear(Weights(dim * dim), Weights(dim), dim, dim),
            Fc1: new PackedLinear(Weights(hidden * dim), Weights(hidden), hidden, dim), Fc2: new PackedLinear(Weights(dim * hidden), Weights(dim), dim, hidden),
            Norm1: new LayerNormWeights(dim), Norm2: new LayerNormWeights(dim))).ToArray();
        using var x = new NativeBuffer((long)Tokens * dim);
        using var normed = new NativeBuffer((long)Tokens * dim);
        using var qkv = new NativeBuffer((long)Tokens * 3 * dim);
        using var context = new NativeBuffer((long)Tokens * dim);
        using var mlp = new NativeBuffer((long)Tokens * hidden);

        string[] names = ["norm1", "qkv", "attention", "proj", "norm2", "fc1", "fc2"];
        double linear = 2.0 * Tokens * dim;
        double[] flops = [0, linear * 3 * dim, 4.0 * Tokens * Tokens * dim, linear * dim, 0, linear * hidden, linear * hidden];
        var best = Enumerable.Repeat(double.MaxValue, names.Length).ToArray();
        double bestPass = double.MaxValue;
        for (int pass = -2; pass < Passes; pass++)
        {
            x.Span.Fill(0.1f);
            var ticks = new long[names.Length];
            long start = Stopwatch.GetTimestamp();
            foreach (var block in blocks)
            {
                long t = Stopwatch.GetTimestamp();
                void Lap(int kernel) { long now = Stopwatch.GetTimestamp(); ticks[kernel] += now - t; t = now; }
                LayerNorm.Apply<TDim>(x, 0, Tokens, block.Norm1, 1e-6f, normed, 0, threads); Lap(0);
                Gemm.Linear<Qkv<TDim, TKBlock>, StoreEpilogue>(normed, 0, block.Qkv, qkv, 0, threads); Lap(1);
                Attention.Run<HeadShape<TDim, THeads>>(qkv, context, threads); Lap(2);
                Gemm.Linear<Proj<TDim, TKBlock>, ResidualEpilogue>(context, 0, block.Proj, x, 0, threads); Lap(3);
                LayerNorm.Apply<TDim>(x, 0, Tokens, block.Norm2, 1e-6f, normed, 0, threads); Lap(4);
                Gemm.Linear<Fc1<TDim, TKBlock>, GeluEpilogue>(normed, 0, block.Fc1, mlp, 0, threads); Lap(5);
                Gemm.Linear<Fc2<TDim, TFc2KBlock>, ResidualEpilogue>(mlp, 0, block.Fc2, x, 0, threads); Lap(6);
            }
            if (pass < 0) continue;   // warm-up
            bestPass = Math.Min(bestPass, Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            for (int i = 0; i < names.Length; i++) best[i] = Math.Min(best[i], ticks[i] * 1000.0 / Stopwatch.Frequency);
        }
        Console.WriteLine($"{depth} blocks, dim {dim}, {THeads.Value} heads, {threads} thread(s): best pass {bestPass:F2} ms, {depth * flops.Sum() / bestPass / 1e6:F0} GFLOP/s");
        for (int i = 0; i < names.Length; i++)
            Console.WriteLine($"  {names[i],-10} {best[i],8:F2} ms" + (flops[i] > 0 ? $"  {depth * flops[i] / best[i] / 1e6,5:F0} GFLOP/s" : ""));
        foreach (var block in blocks)
        {
            block.Qkv.Dispose(); block.Proj.Dispose(); block.Fc1.Dispose(); block.Fc2.Dispose(); block.Norm1.Dispose(); block.Norm2.Dispose();
        }
    }

    // The generator's shapes for these widths.
    private readonly struct Qkv<TDim, TKBlock> : IGemmShape where TDim : IDimension where TKBlock : IDimension
    {
        public static int M => Tokens; public static int N => 3 * TDim.Value; public static int K => TDim.Value;
        public static int KBlock => TKBlock.Value; public static bool Parallel => true;
    }
    private readonly struct Proj<TDim, TKBlock> : IGemmShape where TDim : IDimension where TKBlock : IDimension
    {
        public static int M => Tokens; public static int N => TDim.Value; public static int K => TDim.Value;
        public static int KBlock => TKBlock.Value; public static bool Parallel => true;
    }
    private readonly struct Fc1<TDim, TKBlock> : IGemmShape where TDim : IDimension where TKBlock : IDimension
    {
        public static int M => Tokens; public static int N => 4 * TDim.Value; public static int K => TDim.Value;
        public static int KBlock => TKBlock.Value; public static bool Parallel => true;
    }
    private readonly struct Fc2<TDim, TKBlock> : IGemmShape where TDim : IDimension where TKBlock : IDimension
    {
        public static int M => Tokens; public static int N => TDim.Value; public static int K => 4 * TDim.Value;
        public static int KBlock => TKBlock.Value; public static bool Parallel => true;
    }
    private readonly struct HeadShape<TDim, THeads> : IAttentionShape where TDim : IDimension where THeads : IDimension
    {
        public static int Tokens => BlockProfile.Tokens; public static int Heads => THeads.Value;
        public static int HeadDim => 64; public static float Scale => 0.125f;
    }
    private readonly struct Dim192 : IDimension { public static int Value => 192; }
    private readonly struct Dim384 : IDimension { public static int Value => 384; }
    private readonly struct Dim512 : IDimension { public static int Value => 512; }
    private readonly struct Dim683 : IDimension { public static int Value => 683; }
    private readonly struct Dim768 : IDimension { public static int Value => 768; }
    private readonly struct Dim1024 : IDimension { public static int Value => 1024; }
    private readonly struct Heads3 : IDimension { public static int Value => 3; }
    private readonly struct Heads6 : IDimension { public static int Value => 6; }
    private readonly struct Heads12 : IDimension { public static int Value => 12; }
    private readonly struct Heads16 : IDimension { public static int Value => 16; }
}
