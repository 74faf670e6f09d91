using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ViTGen.CompilerServices;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// A recording stand-in for libcuda and cuBLAS, bound through the same function-pointer tables as the real libraries:
/// device memory is host memory, copies really copy (a download writes its 1-based number into every float, so a
/// test can tell which chunk landed where), GEMMs and kernels only record themselves. It proves what the device path
/// asks of the driver (which stream, which context calls, when it captures) on machines without a GPU; what the
/// plan computes is proven by <see cref="CpuPlanExecutor"/>. State is static (unmanaged entry points cannot capture),
/// so only <see cref="CudaCallSequenceTests"/>, whose tests xunit runs one at a time, uses it.
/// </summary>
internal static unsafe class FakeCuda
{
    public const nint Context = 0x1000, Stream = 0x5000, GraphExec = 0x8000;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<ulong, long> DeviceBlocks = [];
    private static readonly HashSet<nint> HostBlocks = [];

    public static List<string> Calls { get; } = [];
    /// <summary>Whether calls are recorded (recording allocates; allocation tests turn it off).</summary>
    public static bool Recording { get; set; }
    public static int DeviceCount { get; set; }
    public static int InitResult { get; set; }
    public static int Version { get; set; }
    public static int FailSynchronizeAt { get; set; }
    public static bool JitFails { get; set; }
    public static int Synchronizations { get; private set; }
    public static int Downloads { get; private set; }
    public static int Retained { get; private set; }
    public static int LiveHostBlocks { get { lock (Gate) return HostBlocks.Count; } }
    public static int LiveDeviceBlocks { get { lock (Gate) return DeviceBlocks.Count; } }

    [ThreadStatic] private static int t_depth;

    /// <summary>Contexts pushed and not yet popped on the calling thread.</summary>
    public static int PushDepth => t_depth;

    public static void Reset()
    {
        lock (Gate)
        {
            foreach (ulong block in DeviceBlocks.Keys) NativeMemory.Free((void*)block);
            foreach (nint block in HostBlocks) NativeMemory.Free((void*)block);
            DeviceBlocks.Clear();
            HostBlocks.Clear();
            Calls.Clear();
        }
        Recording = true;
        DeviceCount = 1;
        InitResult = 0;
        Version = 12040;
        FailSynchronizeAt = -1;
        JitFails = false;
        Synchronizations = Downloads = Retained = 0;
        t_depth = 0;
    }

    /// <summary>The device memory of <paramref name="bytes"/> bytes allocated last (the weights, the activations).</summary>
    public static ulong DeviceBlockOfSize(long bytes)
    {
        lock (Gate) return DeviceBlocks.Last(pair => pair.Value == bytes).Key;
    }

    public static IEnumerable<string> CallsNamed(string prefix)
    {
        lock (Gate) return Calls.Where(call => call.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
    }

    public static CudaDriverApi Driver() => new(symbol => DriverExports.TryGetValue(symbol, out nint address)
        ? address : throw new InvalidOperationException($"The device path asked the fake driver for {symbol}, which it does not bind."));

    public static CublasApi Blas() => new(symbol => BlasExports.TryGetValue(symbol, out nint address)
        ? address : throw new InvalidOperationException($"The device path asked the fake cuBLAS for {symbol}."));

    private static bool IsHostBlock(void* pointer)
    {
        lock (Gate) return HostBlocks.Contains((nint)pointer);
    }

    private static void Record(string call)
    {
        lock (Gate) Calls.Add(call);
    }

    private static readonly Dictionary<string, nint> DriverExports = new(StringComparer.Ordinal)
    {
        ["cuInit"] = (nint)(delegate* unmanaged<uint, int>)&Init,
        ["cuDriverGetVersion"] = (nint)(delegate* unmanaged<int*, int>)&DriverGetVersion,
        ["cuDeviceGetCount"] = (nint)(delegate* unmanaged<int*, int>)&DeviceGetCount,
        ["cuDeviceGet"] = (nint)(delegate* unmanaged<int*, int, int>)&DeviceGet,
        ["cuDeviceGetName"] = (nint)(delegate* unmanaged<byte*, int, int, int>)&DeviceGetName,
        ["cuDevicePrimaryCtxRetain"] = (nint)(delegate* unmanaged<nint*, int, int>)&PrimaryCtxRetain,
        ["cuDevicePrimaryCtxRelease_v2"] = (nint)(delegate* unmanaged<int, int>)&PrimaryCtxRelease,
        ["cuCtxPushCurrent_v2"] = (nint)(delegate* unmanaged<nint, int>)&CtxPush,
        ["cuCtxPopCurrent_v2"] = (nint)(delegate* unmanaged<nint*, int>)&CtxPop,
        ["cuMemAlloc_v2"] = (nint)(delegate* unmanaged<ulong*, nuint, int>)&MemAlloc,
        ["cuMemFree_v2"] = (nint)(delegate* unmanaged<ulong, int>)&MemFree,
        ["cuMemHostAlloc"] = (nint)(delegate* unmanaged<void**, nuint, uint, int>)&MemHostAlloc,
        ["cuMemFreeHost"] = (nint)(delegate* unmanaged<void*, int>)&MemFreeHost,
        ["cuMemcpyHtoDAsync_v2"] = (nint)(delegate* unmanaged<ulong, void*, nuint, nint, int>)&CopyHtoD,
        ["cuMemcpyDtoHAsync_v2"] = (nint)(delegate* unmanaged<void*, ulong, nuint, nint, int>)&CopyDtoH,
        ["cuModuleLoadDataEx"] = (nint)(delegate* unmanaged<nint*, void*, uint, int*, void**, int>)&ModuleLoadDataEx,
        ["cuModuleUnload"] = (nint)(delegate* unmanaged<nint, int>)&Ignore,
        ["cuModuleGetFunction"] = (nint)(delegate* unmanaged<nint*, nint, byte*, int>)&ModuleGetFunction,
        ["cuLaunchKernel"] = (nint)(delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)&LaunchKernel,
        ["cuStreamCreate"] = (nint)(delegate* unmanaged<nint*, uint, int>)&StreamCreate,
        ["cuStreamDestroy_v2"] = (nint)(delegate* unmanaged<nint, int>)&Ignore,
        ["cuStreamSynchronize"] = (nint)(delegate* unmanaged<nint, int>)&StreamSynchronize,
        ["cuEventCreate"] = (nint)(delegate* unmanaged<nint*, uint, int>)&EventCreate,
        ["cuEventRecord"] = (nint)(delegate* unmanaged<nint, nint, int>)&EventRecord,
        ["cuEventSynchronize"] = (nint)(delegate* unmanaged<nint, int>)&EventSynchronize,
        ["cuEventDestroy_v2"] = (nint)(delegate* unmanaged<nint, int>)&Ignore,
        ["cuStreamBeginCapture_v2"] = (nint)(delegate* unmanaged<nint, int, int>)&BeginCapture,
        ["cuStreamEndCapture"] = (nint)(delegate* unmanaged<nint, nint*, int>)&EndCapture,
        ["cuGraphInstantiateWithFlags"] = (nint)(delegate* unmanaged<nint*, nint, ulong, int>)&GraphInstantiate,
        ["cuGraphLaunch"] = (nint)(delegate* unmanaged<nint, nint, int>)&GraphLaunch,
        ["cuGraphExecDestroy"] = (nint)(delegate* unmanaged<nint, int>)&GraphExecDestroy,
        ["cuGraphDestroy"] = (nint)(delegate* unmanaged<nint, int>)&Ignore,
        ["cuGetErrorName"] = (nint)(delegate* unmanaged<int, byte**, int>)&GetErrorName,
    };

    private static readonly Dictionary<string, nint> BlasExports = new(StringComparer.Ordinal)
    {
        ["cublasCreate_v2"] = (nint)(delegate* unmanaged<nint*, int>)&BlasCreate,
        ["cublasDestroy_v2"] = (nint)(delegate* unmanaged<nint, int>)&Ignore,
        ["cublasSetStream_v2"] = (nint)(delegate* unmanaged<nint, nint, int>)&BlasSetStream,
        ["cublasSetMathMode"] = (nint)(delegate* unmanaged<nint, int, int>)&BlasSetMathMode,
        ["cublasSetWorkspace_v2"] = (nint)(delegate* unmanaged<nint, ulong, nuint, int>)&BlasSetWorkspace,
        ["cublasSgemm_v2"] = (nint)(delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)&Sgemm,
        ["cublasSgemmStridedBatched"] = (nint)(delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)&SgemmStridedBatched,
    };

    [UnmanagedCallersOnly] private static int Init(uint flags) => InitResult;
    [UnmanagedCallersOnly] private static int DriverGetVersion(int* version) { *version = Version; return 0; }
    [UnmanagedCallersOnly] private static int DeviceGetCount(int* count) { *count = DeviceCount; return 0; }
    [UnmanagedCallersOnly] private static int DeviceGet(int* device, int ordinal) { *device = ordinal; return 0; }

    [UnmanagedCallersOnly]
    private static int DeviceGetName(byte* name, int length, int device)
    {
        ReadOnlySpan<byte> text = "Fake GPU\0"u8;
        text.CopyTo(new Span<byte>(name, length));
        return 0;
    }

    [UnmanagedCallersOnly] private static int PrimaryCtxRetain(nint* context, int device) { *context = Context; Retained++; if (Recording) Record($"retain {device}"); return 0; }
    [UnmanagedCallersOnly] private static int PrimaryCtxRelease(int device) { Retained--; return 0; }
    [UnmanagedCallersOnly] private static int CtxPush(nint context) { t_depth++; if (Recording) Record(context == Context ? "push" : "push of an unknown context"); return 0; }

    [UnmanagedCallersOnly]
    private static int CtxPop(nint* context)
    {
        if (t_depth == 0) { if (Recording) Record("pop of an empty stack"); return 201; } // CUDA_ERROR_INVALID_CONTEXT
        t_depth--;
        *context = Context;
        if (Recording) Record("pop");
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int MemAlloc(ulong* pointer, nuint bytes)
    {
        *pointer = (ulong)NativeMemory.AllocZeroed(bytes);
        lock (Gate) DeviceBlocks[*pointer] = (long)bytes;
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int MemFree(ulong pointer)
    {
        lock (Gate)
        {
            if (!DeviceBlocks.Remove(pointer)) return 1; // CUDA_ERROR_INVALID_VALUE
        }
        NativeMemory.Free((void*)pointer);
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int MemHostAlloc(void** pointer, nuint bytes, uint flags)
    {
        *pointer = NativeMemory.AllocZeroed(bytes);
        lock (Gate) HostBlocks.Add((nint)(*pointer));
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int MemFreeHost(void* pointer)
    {
        lock (Gate)
        {
            if (!HostBlocks.Remove((nint)pointer)) return 1;
        }
        NativeMemory.Free(pointer);
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int CopyHtoD(ulong destination, void* source, nuint bytes, nint stream)
    {
        Buffer.MemoryCopy(source, (void*)destination, bytes, bytes);
        if (Recording) Record($"HtoD {bytes} bytes on {stream:X}{(IsHostBlock(source) ? " from pinned memory" : "")}");
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int CopyDtoH(void* destination, ulong source, nuint bytes, nint stream)
    {
        new Span<float>(destination, (int)(bytes / sizeof(float))).Fill(++Downloads);
        if (Recording) Record($"DtoH {bytes} bytes on {stream:X}{(IsHostBlock(destination) ? " to pinned memory" : "")}");
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int ModuleLoadDataEx(nint* module, void* image, uint count, int* options, void** values)
    {
        if (!JitFails) { *module = 0x2000; return 0; }
        for (int i = 0; i < count; i++)
        {
            if (options[i] != CudaDriverApi.JitErrorLogBuffer) continue;
            ReadOnlySpan<byte> log = "ptxas fatal : fake error in kernels.ptx line 7\0"u8;
            log.CopyTo(new Span<byte>(values[i], log.Length));
        }
        return 218; // CUDA_ERROR_INVALID_PTX
    }

    [UnmanagedCallersOnly] private static int ModuleGetFunction(nint* function, nint module, byte* name) { *function = 0x3000; return 0; }

    [UnmanagedCallersOnly]
    private static int LaunchKernel(nint function, uint gx, uint gy, uint gz, uint bx, uint by, uint bz, uint shared, nint stream, void** parameters, void** extra)
    {
        if (Recording) Record($"launch on {stream:X}");
        return 0;
    }

    [UnmanagedCallersOnly] private static int StreamCreate(nint* stream, uint flags) { *stream = Stream; if (Recording) Record($"stream flags {flags}"); return 0; }

    [UnmanagedCallersOnly]
    private static int StreamSynchronize(nint stream)
    {
        Synchronizations++;
        if (Recording) Record($"synchronize {stream:X}");
        return Synchronizations == FailSynchronizeAt ? 700 : 0; // CUDA_ERROR_ILLEGAL_ADDRESS
    }

    [UnmanagedCallersOnly] private static int EventCreate(nint* handle, uint flags) { *handle = 0x6000 + Calls.Count; if (Recording) Record($"event flags {flags}"); return 0; }
    [UnmanagedCallersOnly] private static int EventRecord(nint handle, nint stream) { if (Recording) Record($"record on {stream:X}"); return 0; }
    [UnmanagedCallersOnly] private static int EventSynchronize(nint handle) { if (Recording) Record("wait"); return 0; }
    [UnmanagedCallersOnly] private static int BeginCapture(nint stream, int mode) { if (Recording) Record($"begin capture on {stream:X} mode {mode}"); return 0; }
    [UnmanagedCallersOnly] private static int EndCapture(nint stream, nint* graph) { *graph = 0x7000; if (Recording) Record($"end capture on {stream:X}"); return 0; }
    [UnmanagedCallersOnly] private static int GraphInstantiate(nint* executable, nint graph, ulong flags) { *executable = GraphExec; if (Recording) Record("instantiate"); return 0; }
    [UnmanagedCallersOnly] private static int GraphLaunch(nint executable, nint stream) { if (Recording) Record($"graph launch on {stream:X}"); return 0; }
    [UnmanagedCallersOnly] private static int GraphExecDestroy(nint executable) { if (Recording) Record("graph destroy"); return 0; }
    [UnmanagedCallersOnly] private static int Ignore(nint handle) => 0;

    [UnmanagedCallersOnly]
    private static int GetErrorName(int result, byte** name)
    {
        ReadOnlySpan<byte> text = result switch
        {
            100 => "CUDA_ERROR_NO_DEVICE\0"u8,
            218 => "CUDA_ERROR_INVALID_PTX\0"u8,
            700 => "CUDA_ERROR_ILLEGAL_ADDRESS\0"u8,
            _ => "CUDA_ERROR_UNKNOWN\0"u8,
        };
        // u8 literals live in the assembly's read-only data: the address is stable.
        *name = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(text));
        return 0;
    }

    [UnmanagedCallersOnly] private static int BlasCreate(nint* handle) { *handle = 0x9000; return 0; }
    [UnmanagedCallersOnly] private static int BlasSetStream(nint handle, nint stream) { if (Recording) Record($"blas stream {stream:X}"); return 0; }
    [UnmanagedCallersOnly] private static int BlasSetMathMode(nint handle, int mode) { if (Recording) Record($"blas math {mode}"); return 0; }
    [UnmanagedCallersOnly] private static int BlasSetWorkspace(nint handle, ulong workspace, nuint bytes) { if (Recording) Record($"blas workspace {bytes}"); return 0; }

    [UnmanagedCallersOnly]
    private static int Sgemm(nint handle, int ta, int tb, int m, int n, int k, float* alpha, nint a, int lda, nint b, int ldb, float* beta, nint c, int ldc)
    {
        if (Recording) Record("gemm");
        return 0;
    }

    [UnmanagedCallersOnly]
    private static int SgemmStridedBatched(nint handle, int ta, int tb, int m, int n, int k, float* alpha, nint a, int lda, long sa, nint b, int ldb, long sb,
        float* beta, nint c, int ldc, long sc, int batch)
    {
        if (Recording) Record("gemm");
        return 0;
    }
}
