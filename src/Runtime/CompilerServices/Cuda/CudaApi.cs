namespace ViTGen.CompilerServices;

// The driver API and cuBLAS as unmanaged function pointers from NativeLibrary.GetExport: blittable signatures
// (pointers and primitives only), bound lazily so NativeAOT binaries start without the libraries, and no
// marshalling stubs. Signatures follow cuda.h and cublas_api.h (CUDA 12 and 13); the header names are macros over
// the exported _v2 symbols, which are what is bound. CUdeviceptr is a 64-bit integer; handles are pointers.
// Each signature is written beside its field as the CUDA Driver API reference and cuBLAS's cublasSetWorkspace give
// it; the enum values (CU_STREAM_NON_BLOCKING 1, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL 1, CU_EVENT_DISABLE_TIMING 2,
// CU_JIT_ERROR_LOG_BUFFER 5 and its _SIZE_BYTES 6, CUBLAS_TF32_TENSOR_OP_MATH 3) are cuda.h's and cublas_api.h's.
// Constructors take a symbol resolver so that tests bind a recording fake through the same tables.

/// <summary>The CUDA driver API calls the GPU path makes.</summary>
internal sealed unsafe class CudaDriverApi
{
    public const int Success = 0;
    /// <summary><c>CU_STREAM_NON_BLOCKING</c>: no implicit synchronization with the legacy default stream (cuda.h).</summary>
    public const uint StreamNonBlocking = 1;
    /// <summary><c>CU_STREAM_CAPTURE_MODE_THREAD_LOCAL</c> (<c>CUstreamCaptureMode</c>: GLOBAL 0, THREAD_LOCAL 1, RELAXED 2).</summary>
    public const int CaptureModeThreadLocal = 1;
    /// <summary><c>CU_EVENT_DISABLE_TIMING</c>: the cheapest event, for ordering only (cuda.h).</summary>
    public const uint EventDisableTiming = 2;
    /// <summary><c>CUjit_option</c>: <c>CU_JIT_ERROR_LOG_BUFFER</c> 5, <c>CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES</c> 6.</summary>
    public const int JitErrorLogBuffer = 5, JitErrorLogBufferSizeBytes = 6;

    public readonly delegate* unmanaged<uint, int> Init;
    public readonly delegate* unmanaged<int*, int> DriverGetVersion;
    public readonly delegate* unmanaged<int*, int> DeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> DeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> DeviceGetName;
    public readonly delegate* unmanaged<nint*, int, int> DevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> DevicePrimaryCtxRelease;
    // cuCtxPushCurrent_v2(CUcontext ctx); cuCtxPopCurrent_v2(CUcontext* pctx)
    public readonly delegate* unmanaged<nint, int> CtxPushCurrent;
    public readonly delegate* unmanaged<nint*, int> CtxPopCurrent;
    public readonly delegate* unmanaged<ulong*, nuint, int> MemAlloc;
    public readonly delegate* unmanaged<ulong, int> MemFree;
    // cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags); cuMemFreeHost(void* p)
    public readonly delegate* unmanaged<void**, nuint, uint, int> MemHostAlloc;
    public readonly delegate* unmanaged<void*, int> MemFreeHost;
    // cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, CUstream); cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, CUstream)
    public readonly delegate* unmanaged<ulong, void*, nuint, nint, int> MemcpyHtoDAsync;
    public readonly delegate* unmanaged<void*, ulong, nuint, nint, int> MemcpyDtoHAsync;
    // cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions, CUjit_option* options, void** optionValues)
    public readonly delegate* unmanaged<nint*, void*, uint, int*, void**, int> ModuleLoadDataEx;
    public readonly delegate* unmanaged<nint, int> ModuleUnload;
    public readonly delegate* unmanaged<nint*, nint, byte*, int> ModuleGetFunction;
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> LaunchKernel;
    public readonly delegate* unmanaged<nint*, uint, int> StreamCreate;
    public readonly delegate* unmanaged<nint, int> StreamDestroy;
    public readonly delegate* unmanaged<nint, int> StreamSynchronize;
    // cuEventCreate(CUevent* phEvent, unsigned int Flags); cuEventRecord(CUevent, CUstream); cuEventSynchronize(CUevent); cuEventDestroy_v2(CUevent)
    public readonly delegate* unmanaged<nint*, uint, int> EventCreate;
    public readonly delegate* unmanaged<nint, nint, int> EventRecord;
    public readonly delegate* unmanaged<nint, int> EventSynchronize;
    public readonly delegate* unmanaged<nint, int> EventDestroy;
    // cuStreamBeginCapture_v2(CUstream, CUstreamCaptureMode); cuStreamEndCapture(CUstream, CUgraph* phGraph)
    public readonly delegate* unmanaged<nint, int, int> StreamBeginCapture;
    public readonly delegate* unmanaged<nint, nint*, int> StreamEndCapture;
    // cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags); cuGraphLaunch(CUgraphExec, CUstream)
    public readonly delegate* unmanaged<nint*, nint, ulong, int> GraphInstantiateWithFlags;
    public readonly delegate* unmanaged<nint, nint, int> GraphLaunch;
    public readonly delegate* unmanaged<nint, int> GraphExecDestroy;
    public readonly delegate* unmanaged<nint, int> GraphDestroy;
    public readonly delegate* unmanaged<int, byte**, int> GetErrorName;

    private static readonly Lazy<CudaDriverApi> Shared = new(() => Bind(CudaLibraries.DriverHandle));

    /// <summary>Binds every export through <paramref name="resolve"/> (symbol to address; tests pass fakes).</summary>
    internal CudaDriverApi(Func<string, nint> resolve)
    {
        Init = (delegate* unmanaged<uint, int>)resolve("cuInit");
        DriverGetVersion = (delegate* unmanaged<int*, int>)resolve("cuDriverGetVersion");
        DeviceGetCount = (delegate* unmanaged<int*, int>)resolve("cuDeviceGetCount");
        DeviceGet = (delegate* unmanaged<int*, int, int>)resolve("cuDeviceGet");
        DeviceGetName = (delegate* unmanaged<byte*, int, int, int>)resolve("cuDeviceGetName");
        DevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)resolve("cuDevicePrimaryCtxRetain");
        DevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)resolve("cuDevicePrimaryCtxRelease_v2");
        CtxPushCurrent = (delegate* unmanaged<nint, int>)resolve("cuCtxPushCurrent_v2");
        CtxPopCurrent = (delegate* unmanaged<nint*, int>)resolve("cuCtxPopCurrent_v2");
        MemAlloc = (delegate* unmanaged<ulong*, nuint, int>)resolve("cuMemAlloc_v2");
        MemFree = (delegate* unmanaged<ulong, int>)resolve("cuMemFree_v2");
        MemHostAlloc = (delegate* unmanaged<void**, nuint, uint, int>)resolve("cuMemHostAlloc");
        MemFreeHost = (delegate* unmanaged<void*, int>)resolve("cuMemFreeHost");
        MemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)resolve("cuMemcpyHtoDAsync_v2");
        MemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)resolve("cuMemcpyDtoHAsync_v2");
        ModuleLoadDataEx = (delegate* unmanaged<nint*, void*, uint, int*, void**, int>)resolve("cuModuleLoadDataEx");
        ModuleUnload = (delegate* unmanaged<nint, int>)resolve("cuModuleUnload");
        ModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)resolve("cuModuleGetFunction");
        LaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)resolve("cuLaunchKernel");
        StreamCreate = (delegate* unmanaged<nint*, uint, int>)resolve("cuStreamCreate");
        StreamDestroy = (delegate* unmanaged<nint, int>)resolve("cuStreamDestroy_v2");
        StreamSynchronize = (delegate* unmanaged<nint, int>)resolve("cuStreamSynchronize");
        EventCreate = (delegate* unmanaged<nint*, uint, int>)resolve("cuEventCreate");
        EventRecord = (delegate* unmanaged<nint, nint, int>)resolve("cuEventRecord");
        EventSynchronize = (delegate* unmanaged<nint, int>)resolve("cuEventSynchronize");
        EventDestroy = (delegate* unmanaged<nint, int>)resolve("cuEventDestroy_v2");
        StreamBeginCapture = (delegate* unmanaged<nint, int, int>)resolve("cuStreamBeginCapture_v2");
        StreamEndCapture = (delegate* unmanaged<nint, nint*, int>)resolve("cuStreamEndCapture");
        GraphInstantiateWithFlags = (delegate* unmanaged<nint*, nint, ulong, int>)resolve("cuGraphInstantiateWithFlags");
        GraphLaunch = (delegate* unmanaged<nint, nint, int>)resolve("cuGraphLaunch");
        GraphExecDestroy = (delegate* unmanaged<nint, int>)resolve("cuGraphExecDestroy");
        GraphDestroy = (delegate* unmanaged<nint, int>)resolve("cuGraphDestroy");
        GetErrorName = (delegate* unmanaged<int, byte**, int>)resolve("cuGetErrorName");
    }

    /// <summary>Binds the exports of a loaded driver library; a missing one is a <see cref="VitCudaException"/> naming it.</summary>
    internal static CudaDriverApi Bind(nint library)
        => new(symbol => CudaLibraries.Export(library, symbol, "The CUDA driver library"));

    /// <summary>The bound driver; throws <see cref="VitCudaException"/> naming libcuda.so.1 / nvcuda.dll when it is missing.</summary>
    public static CudaDriverApi Load() => Shared.Value;

    /// <summary>Throws unless <paramref name="result"/> is CUDA_SUCCESS, naming the call and the error.</summary>
    public void Check(int result, string call, string? step = null)
    {
        if (result == Success) return;
        throw new VitCudaException(Describe(result, call, step), null, result);
    }

    /// <summary>The message of a failed driver call: the call, the step, the CUresult with its name, and what to do about it.</summary>
    public string Describe(int result, string call, string? step = null)
    {
        byte* name = null;
        string text = GetErrorName(result, &name) == Success && name != null ? Marshal.PtrToStringUTF8((nint)name) ?? "" : "";
        string where = step is null ? "" : $" at {step}";
        return $"CUDA driver call {call} failed{where} with {result} {text}{Hint(result, stepKnown: step is not null)}.";
    }

    /// <summary>
    /// What a CUresult usually means for this path (cuda.h's CUresult values); a fault reported without its step
    /// (<paramref name="stepKnown"/> false) also says how to find the step.
    /// </summary>
    internal static string Hint(int result, bool stepKnown = false) => result switch
    {
        100 => " (no CUDA-capable device is visible: check CUDA_VISIBLE_DEVICES and the driver)",
        209 or 218 or 222 => " (the driver cannot JIT the kernels' PTX: it needs an sm_80 or newer GPU and a CUDA 11.0 or newer driver)",
        803 => " (the driver and the kernel module differ in version: reboot or reinstall the driver)",
        700 or 701 or 702 or 719 when stepKnown => " (a kernel or GEMM of that step faulted)",
        700 or 701 or 702 or 719 => " (a kernel or GEMM faulted; the error surfaces at the next synchronization. Set VitCudaOptions.SynchronizeEachStep to name the step)",
        >= 900 and <= 908 => " (CUDA graph capture failed; set VitCudaOptions.CudaGraphs = false to run the plan eagerly)",
        _ => "",
    };
}

/// <summary>The cuBLAS calls the GPU path makes.</summary>
internal sealed unsafe class CublasApi
{
    public const int Success = 0;
    public const int OpN = 0, OpT = 1;
    /// <summary><c>CUBLAS_DEFAULT_MATH</c>: full FP32 for SGEMM (no TF32), which the parity bounds assume.</summary>
    public const int DefaultMath = 0;
    /// <summary><c>CUBLAS_TF32_TENSOR_OP_MATH</c> (cublas_api.h <c>cublasMath_t</c>): SGEMM on tensor cores with TF32 inputs.</summary>
    public const int Tf32TensorOpMath = 3;

    public readonly delegate* unmanaged<nint*, int> Create;
    public readonly delegate* unmanaged<nint, int> Destroy;
    public readonly delegate* unmanaged<nint, nint, int> SetStream;
    public readonly delegate* unmanaged<nint, int, int> SetMathMode;
    // cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes)
    public readonly delegate* unmanaged<nint, ulong, nuint, int> SetWorkspace;
    // cublasSgemm_v2(handle, transa, transb, m, n, k, alpha*, A, lda, B, ldb, beta*, C, ldc)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> Sgemm;
    // cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha*, A, lda, strideA, B, ldb, strideB, beta*, C, ldc, strideC, batchCount)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int> SgemmStridedBatched;

    private static readonly Lock SharedGate = new();
    private static CublasApi? _shared;

    /// <summary>Binds every export through <paramref name="resolve"/> (symbol to address; tests pass fakes).</summary>
    internal CublasApi(Func<string, nint> resolve)
    {
        Create = (delegate* unmanaged<nint*, int>)resolve("cublasCreate_v2");
        Destroy = (delegate* unmanaged<nint, int>)resolve("cublasDestroy_v2");
        SetStream = (delegate* unmanaged<nint, nint, int>)resolve("cublasSetStream_v2");
        SetMathMode = (delegate* unmanaged<nint, int, int>)resolve("cublasSetMathMode");
        SetWorkspace = (delegate* unmanaged<nint, ulong, nuint, int>)resolve("cublasSetWorkspace_v2");
        Sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)resolve("cublasSgemm_v2");
        SgemmStridedBatched = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)
            resolve("cublasSgemmStridedBatched");
    }

    /// <summary>
    /// The bound cuBLAS of the newest major the driver supports (<see cref="CudaLibraries.BlasMajors"/>); throws
    /// <see cref="VitCudaException"/> naming the libraries tried when none loads. Bound once per process.
    /// </summary>
    public static CublasApi Load(int driverVersion)
    {
        lock (SharedGate)
        {
            if (_shared is not null) return _shared;
            nint library = CudaLibraries.LoadBlas(driverVersion);
            return _shared = new CublasApi(symbol => CudaLibraries.Export(library, symbol, "The cuBLAS library"));
        }
    }

    /// <summary>Throws unless <paramref name="status"/> is CUBLAS_STATUS_SUCCESS, naming the call and the status.</summary>
    public static void Check(int status, string call, string? step = null)
    {
        if (status == Success) return;
        string name = status switch
        {
            1 => "CUBLAS_STATUS_NOT_INITIALIZED",
            3 => "CUBLAS_STATUS_ALLOC_FAILED",
            7 => "CUBLAS_STATUS_INVALID_VALUE",
            8 => "CUBLAS_STATUS_ARCH_MISMATCH",
            13 => "CUBLAS_STATUS_EXECUTION_FAILED",
            14 => "CUBLAS_STATUS_INTERNAL_ERROR",
            15 => "CUBLAS_STATUS_NOT_SUPPORTED",
            _ => "",
        };
        string where = step is null ? "" : $" at {step}";
        throw new VitCudaException($"cuBLAS call {call} failed{where} with status {status} {name}.", null, status);
    }
}
