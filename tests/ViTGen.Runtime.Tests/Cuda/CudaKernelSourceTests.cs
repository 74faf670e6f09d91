using System.Text.RegularExpressions;
using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// The shipped PTX: rebuilt from kernels.cu it is what is checked in, it is what the runtime embeds, and every
/// kernel's <c>.entry</c> takes exactly the parameters plans are built against.
/// </summary>
public sealed partial class CudaKernelSourceTests
{
    private static readonly string[] CompileArguments =
        ["-x", "cuda", "--cuda-gpu-arch=sm_80", "--cuda-device-only", "-nocudainc", "-nocudalib", "-O3", "-S", "kernels.cu"];

    private static string CudaDirectory
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                string candidate = Path.Combine(directory.FullName, "src", "Runtime", "CompilerServices", "Cuda");
                if (File.Exists(Path.Combine(candidate, "kernels.cu"))) return candidate;
            }
            throw new DirectoryNotFoundException("src/Runtime/CompilerServices/Cuda/kernels.cu not found above " + AppContext.BaseDirectory);
        }
    }

    private static string CheckedInPtx => Normalize(File.ReadAllText(Path.Combine(CudaDirectory, "kernels.ptx")));

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal);

    [Clang14Fact]
    public void CheckedInPtxIsUpToDate()
    {
        string output = Path.Combine(Path.GetTempPath(), $"vitgen-kernels-{Environment.ProcessId}-{Guid.NewGuid():N}.ptx");
        try
        {
            var (exitCode, errors) = Clang14FactAttribute.Run(CudaDirectory, [.. CompileArguments, "-o", output]);
            Assert.True(exitCode == 0, $"clang-14 failed to compile kernels.cu:\n{errors}");
            Assert.True(Normalize(File.ReadAllText(output)) == CheckedInPtx,
                "src/Runtime/CompilerServices/Cuda/kernels.ptx is stale. Regenerate it in src/Runtime/CompilerServices/Cuda with: clang-14 " + string.Join(' ', CompileArguments) + " -o kernels.ptx");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void RuntimeEmbedsTheCheckedInPtx()
    {
        byte[]? embedded = CudaKernelImage.TryRead();
        Assert.True(embedded is not null,
            $"ViTGen.Runtime lacks the resource '{CudaKernelImage.ResourceName}': add <EmbeddedResource Include=\"CompilerServices\\Cuda\\kernels.ptx\" " +
            $"LogicalName=\"{CudaKernelImage.ResourceName}\" /> to src/Runtime/ViTGen.Runtime.csproj.");
        Assert.Equal(CheckedInPtx, Normalize(System.Text.Encoding.UTF8.GetString(embedded)));
    }

    [Fact]
    public void PtxTargetsSm80AndCallsNothingOutside()
    {
        string ptx = CheckedInPtx;
        Assert.Contains(".target sm_80", ptx, StringComparison.Ordinal);
        Assert.Contains(".address_size 64", ptx, StringComparison.Ordinal);
        // An .extern function (libdevice's expf, say) would fail the driver's JIT on every user's machine.
        Assert.DoesNotContain(".extern", ptx, StringComparison.Ordinal);
        Assert.DoesNotContain("call.uni", ptx, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryKernelEntryMatchesItsSignature()
    {
        var entries = EntryPattern().Matches(CheckedInPtx)
            .ToDictionary(m => m.Groups["name"].Value, m => ParamPattern().Matches(m.Groups["params"].Value).Select(p => p.Groups["type"].Value).ToArray());
        Assert.Equal(GpuKernels.All.Select(GpuKernels.EntryName).Order(StringComparer.Ordinal), entries.Keys.Order(StringComparer.Ordinal));
        foreach (GpuKernel kernel in GpuKernels.All)
        {
            string[] expected = GpuKernels.Parameters(kernel).Select(p => p.Kind switch
            {
                GpuParameterKind.Pointer or GpuParameterKind.OptionalPointer => "u64",
                GpuParameterKind.Int => "u32",
                _ => "f32",
            }).ToArray();
            Assert.Equal(expected, entries[GpuKernels.EntryName(kernel)]);
        }
    }

    [Fact]
    public void KernelSourceDeclaresEveryParameterByTheSignaturesName()
    {
        // The C# signatures name each parameter as kernels.cu does; a reordering in one place shows here.
        string source = File.ReadAllText(Path.Combine(CudaDirectory, "kernels.cu"));
        foreach (GpuKernel kernel in GpuKernels.All)
        {
            string entry = GpuKernels.EntryName(kernel);
            var match = Regex.Match(source, @"KERNEL\s+" + entry + @"\((?<params>[^)]*)\)");
            if (!match.Success)
            {
                // The bias + activation kernels come from one macro.
                Assert.Contains($"BIAS_ACTIVATION_KERNEL({entry},", source, StringComparison.Ordinal);
                match = Regex.Match(source, @"KERNEL\s+name\((?<params>[^)]*)\)");
            }
            Assert.True(match.Success, entry + " not found in kernels.cu");
            string[] names = match.Groups["params"].Value.Split(',').Select(p => p.Trim().Split(' ', '*').Last()).ToArray();
            Assert.Equal(GpuKernels.Parameters(kernel).Select(p => p.Name), names);
        }
    }

    [GeneratedRegex(@"\.entry\s+(?<name>\w+)\(\s*(?<params>[^)]*)\)")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"\.param\s+\.(?<type>\w+)\s+\w+")]
    private static partial Regex ParamPattern();
}
