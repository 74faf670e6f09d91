using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace ViTGen.Cli;

/// <summary>
/// Run-time ISA dispatch for the NativeAOT CLI. NativeAOT (.NET 10) decides <c>Avx512F.IsSupported</c> and
/// <c>Vector512.IsHardwareAccelerated</c> when it compiles: from an x86-64-v3 baseline they are the constant false
/// (ILC only treats AVX-512 extensions as optional once AVX-512F itself is in the baseline), so one binary cannot
/// both start on AVX2-only CPUs and reach the AVX-512 kernels. The publish therefore writes two: the portable
/// x86-64-v3 <c>vitgen</c>, and an x86-64-v4 build in <see cref="Avx512Folder"/> next to it. On a CPU with AVX-512 the
/// portable one replaces itself with the other (execv: same process id, arguments, environment and streams) before
/// doing anything else. Measured on B/16 at 2 threads, paired with the JIT: the x86-64-v3 code alone at 2.1-4.2x the
/// JIT's latency, the dispatched x86-64-v4 build at 0.85-1.09x, median 1.02 (README, "NativeAOT").
/// </summary>
internal static class Avx512Dispatch
{
    /// <summary>The folder, next to the portable binary, that holds the x86-64-v4 build.</summary>
    public const string Avx512Folder = "x86-64-v4";

    /// <summary>
    /// Replaces this process with the x86-64-v4 build when this is the portable NativeAOT binary, the CPU and the
    /// kernel have AVX-512 (F, BW, CD, DQ, VL: x86-64-v4), that build is present, and <c>DOTNET_EnableAVX512=0</c>
    /// does not ask for the AVX2 path (the .NET 10 JIT's switch, honoured here because a NativeAOT binary ignores it).
    /// Returns when any of that does not hold, or when execv fails: the caller carries on here.
    /// </summary>
    public static void ExecAvx512BuildWhereFaster(string[] args)
    {
        // Under the JIT, and in a build whose baseline already has AVX-512, the kernels pick their width themselves.
        if (RuntimeFeature.IsDynamicCodeSupported || Avx512F.IsSupported || !X86Base.IsSupported || !OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0") return;
        if (!CpuHasAvx512() || !KernelReportsAvx512()) return;
        string target = Path.Combine(AppContext.BaseDirectory, Avx512Folder, "vitgen");
        if (!File.Exists(target)) return;

        var argv = new nint[args.Length + 2];
        try
        {
            argv[0] = Marshal.StringToCoTaskMemUTF8(target);
            for (int i = 0; i < args.Length; i++) argv[i + 1] = Marshal.StringToCoTaskMemUTF8(args[i]);
            // execv returns only when it failed; the portable code still works, so say why and go on with it.
            if (ExecV(argv[0], argv) == -1)
                Console.Error.WriteLine($"warning: could not start {target} (errno {Marshal.GetLastPInvokeError()}); running the AVX2 build");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No execv to call: stay on the portable code.
        }
        finally
        {
            foreach (nint p in argv) Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>CPUID leaf 7: AVX512F (bit 16), DQ (17), CD (28), BW (30), VL (31) of EBX, the x86-64-v4 set.</summary>
    private static bool CpuHasAvx512()
    {
        const int V4 = (1 << 16) | (1 << 17) | (1 << 28) | (1 << 30) | (1 << 31);
        if (X86Base.CpuId(0, 0).Eax < 7) return false;
        return (X86Base.CpuId(7, 0).Ebx & V4) == V4;
    }

    private static readonly string[] V4Flags = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"];

    /// <summary>
    /// Whether Linux lists AVX-512 among the CPU's flags. CPUID says what the silicon has; the kernel drops the
    /// avx512 flags when it does not save the 512-bit register state (an old kernel, or <c>clearcpuid</c>), and then
    /// the x86-64-v4 binary would refuse to start.
    /// </summary>
    private static bool KernelReportsAvx512()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                if (!line.StartsWith("flags", StringComparison.Ordinal)) continue;
                string[] flags = line.Split([' ', '\t', ':'], StringSplitOptions.RemoveEmptyEntries);
                return V4Flags.All(flags.Contains);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return false;
    }

    [DllImport("libc", EntryPoint = "execv", SetLastError = true)]
    private static extern int ExecV(nint path, nint[] argv);
}
