using System.Runtime.Intrinsics.X86;

namespace ViTGen.CompilerServices;

/// <summary>
/// The vector width every kernel runs at. The value is the width in bits, so tiers compare by width.
/// </summary>
internal enum SimdTier
{
    /// <summary>4 lanes: AdvSimd on ARM64, SSE on x86 machines without AVX2+FMA.</summary>
    Vector128 = 128,
    /// <summary>8 lanes: AVX2 with FMA.</summary>
    Vector256 = 256,
    /// <summary>16 lanes: AVX-512F.</summary>
    Vector512 = 512,
}

/// <summary>
/// The one place that decides the SIMD tier of the kernels (GEMM tile, epilogues, exp, softmax, LayerNorm).
/// <see cref="Hardware"/> is chosen once from what the JIT reports; tests may lower it process-wide with <see cref="Force"/>.
/// </summary>
/// <remarks>
/// A tier is only chosen when its vectors are hardware accelerated, never emulated: with AVX2 disabled the old code ran
/// the 256-bit kernel on software-emulated <see cref="Vector256{T}"/>. Measured ViT-S/16, 1 thread, on a Zen 5 shared with
/// other builds (medians of 10; the three tiers back to back, peak.c 111-210 GFLOP/s around them): AVX-512 60-126 ms, the
/// AVX2+FMA tier 112-306 ms, the Vector128 tier (DOTNET_EnableAVX2=0) 267-606 ms, 3.3-4.8x the AVX-512 time in each run; the
/// build before the tiers took 22.1 s there (315x). The dispatch reads one static field per GEMM tile or kernel row, as
/// the old <c>ForceVector256</c> switch did: paired against that build, AVX-512 and AVX2 times are unchanged within the
/// noise (quiet run: S/16 60.3 vs 59.7 ms and 116.3 vs 118.7 ms, B/16 225.2 vs 226.4 ms and 424.0 vs 435.2 ms).
/// The GEMM's packed layouts (32-column B panels, 12-row A blocks) are the same on every tier: the narrower kernels
/// cover a 32-column panel in several register passes. So weights packed under one tier stay valid under any other.
/// </remarks>
internal static class Simd
{
    /// <summary>The widest tier this machine runs without emulation.</summary>
    public static readonly SimdTier Hardware = Detect();

    private static SimdTier s_current = Hardware;

    /// <summary>The tier the kernels use now: <see cref="Hardware"/> unless a test forced a lower one.</summary>
    public static SimdTier Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => s_current;
    }

    /// <summary>
    /// Whether the 512-bit GEMM kernel broadcasts A inside each FMA (Intel cores) rather than once per row into a
    /// register (AMD and everything else). Measured both ways: see <see cref="GemmMicroKernels"/>. Either form gives the
    /// same bits; tests run both.
    /// </summary>
    public static readonly bool EmbeddedBroadcast = IsIntel();

    /// <summary>Whether this machine can run <paramref name="tier"/> (a lower tier than the hardware's always can).</summary>
    public static bool IsSupported(SimdTier tier) => tier <= Hardware;

    /// <summary>Why <paramref name="tier"/> cannot run here, or null when it can.</summary>
    public static string? MissingReason(SimdTier tier) => IsSupported(tier) ? null
        : $"{tier} needs {(tier == SimdTier.Vector512 ? "AVX-512F" : "AVX2 and FMA")}; this machine's widest tier is {Hardware}";

    /// <summary>
    /// Runs every kernel at <paramref name="tier"/> until the scope is disposed (process-wide: tests that force a tier
    /// must not run in parallel with other kernel work). A tier above <see cref="Hardware"/> throws: it would be emulated.
    /// </summary>
    public static Scope Force(SimdTier tier)
    {
        if (MissingReason(tier) is { } reason) throw new PlatformNotSupportedException(reason);
        if (!Enum.IsDefined(tier)) throw new ArgumentOutOfRangeException(nameof(tier));
        var previous = s_current;
        s_current = tier;
        return new Scope(previous);
    }

    /// <summary>Restores the tier in force before <see cref="Force"/>.</summary>
    public readonly struct Scope(SimdTier previous) : IDisposable
    {
        public void Dispose() => s_current = previous;
    }

    private static SimdTier Detect()
    {
        // AVX-512 also needs Avx512F itself (vscalefps, vrcp14ps in FastExp and GELU), not just accelerated Vector512.
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported) return SimdTier.Vector512;
        // The 256-bit kernel is FMA-bound: without FMA it would run at half speed, and FusedMultiplyAdd would be emulated.
        if (Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported) return SimdTier.Vector256;
        return SimdTier.Vector128;
    }

    private static bool IsIntel()
    {
        if (!X86Base.IsSupported) return false;
        // CPUID leaf 0 spells the vendor in EBX, EDX, ECX: "Genu" "ineI" "ntel".
        (_, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        return ebx == 0x756E6547 && edx == 0x49656E69 && ecx == 0x6C65746E;
    }

    /// <summary>
    /// <c>a * b + c</c> on 4 lanes: one fused instruction where the machine has one (FMA3 on x86, AdvSimd on ARM64),
    /// otherwise a multiply and an add (never the software-emulated fused operation, which is a scalar loop).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c)
        => Fma.IsSupported || System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported ? Vector128.FusedMultiplyAdd(a, b, c) : a * b + c;
}
