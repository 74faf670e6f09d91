namespace ViTGen.CompilerServices;

/// <summary>
/// The PTX of <c>Cuda/kernels.cu</c>, embedded in this assembly. PTX rather than a cubin or CUDA C: the driver
/// JIT-compiles it for the GPU it finds (sm_80 and every later architecture) with nothing but the driver installed,
/// so there is no NVRTC dependency and no per-architecture binary to ship.
/// </summary>
internal static class CudaKernelImage
{
    /// <summary>The manifest resource name (<c>LogicalName</c> of the <c>EmbeddedResource</c> item).</summary>
    public const string ResourceName = "ViTGen.Cuda.kernels.ptx";

    /// <summary>The PTX text as bytes, or null when the assembly was built without it.</summary>
    public static byte[]? TryRead()
    {
        using Stream? stream = typeof(CudaKernelImage).Assembly.GetManifestResourceStream(ResourceName);
        if (stream is null) return null;
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The PTX with the terminating zero cuModuleLoadData expects of text images.</summary>
    public static byte[] NullTerminatedPtx()
    {
        byte[] ptx = TryRead() ?? throw new VitCudaException(
            $"ViTGen.Runtime was built without its CUDA kernels (resource '{ResourceName}' from CompilerServices/Cuda/kernels.ptx).");
        var image = new byte[ptx.Length + 1];
        ptx.CopyTo(image, 0);
        return image;
    }
}
