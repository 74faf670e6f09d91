namespace ViTGen.CompilerServices;

// The driver API and cuBLAS as unmanaged function pointers from NativeLibrary.GetExport: blittable signatures
// (pointers and primitives only), bound lazily so NativeAOT binaries start without the libraries, and no
// marshalling stubs. Signatures follow cuda.h and cublas_api.h (CUDA 12 and 13); the header names are macros over
// the exported _v2 symbols, which are what is bound. CUdeviceptr is a 64-bit integer; handles are pointers.

/// <summary>The CUDA driver API calls the GPU path makes.</summary>
internal sealed unsafe class CudaDriverApi
{
    public const int Success = 0;

    public readonly delegate* unmanaged<uint, int> Init;
    public readonly delegate* unmanaged<int*, int> DeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> DeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> DeviceGetName;
    public readonly delegate* unmanaged<nint*, int, int> DevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> DevicePrimaryCtxRelease;
    public readonly delegate* unmanaged<nint, int> CtxSetCurrent;
    public readonly delegate* unmanaged<ulong*, nuint, int> MemAlloc;
    public readonly delegate* unmanaged<ulong, int> MemFree;
    public readonly delegate* unmanaged<ulong, void*, nuint, int> MemcpyHtoD;
    public readonly delegate* unmanaged<void*, ulong, nuint, int> MemcpyDtoH;
    public readonly delegate* unmanaged<nint*, void*, int> ModuleLoadData;
    public readonly delegate* unmanaged<nint, int> ModuleUnload;
    public readonly delegate* unmanaged<nint*, nint, byte*, int> ModuleGetFunction;
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> LaunchKernel;
    public readonly delegate* unmanaged<nint*, uint, int> StreamCreate;
    public readonly delegate* unmanaged<nint, int> StreamDestroy;
    public readonly delegate* unmanaged<nint, int> StreamSynchronize;
    public readonly delegate* unmanaged<int, byte**, int> GetErrorName;

    private static readonly Lazy<CudaDriverApi> Shared = new(() => new CudaDriverApi(CudaLibraries.DriverHandle));

    private CudaDriverApi(nint library)
    {
        const string What = "The CUDA driver library";
        Init = (delegate* unmanaged<uint, int>)CudaLibraries.Export(library, "cuInit", What);
        DeviceGetCount = (delegate* unmanaged<int*, int>)CudaLibraries.Export(library, "cuDeviceGetCount", What);
        DeviceGet = (delegate* unmanaged<int*, int, int>)CudaLibraries.Export(library, "cuDeviceGet", What);
        DeviceGetName = (delegate* unmanaged<byte*, int, int, int>)CudaLibraries.Export(library, "cuDeviceGetName", What);
        DevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)CudaLibraries.Export(library, "cuDevicePrimaryCtxRetain", What);
        DevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)CudaLibraries.Export(library, "cuDevicePrimaryCtxRelease_v2", What);
        CtxSetCurrent = (delegate* unmanaged<nint, int>)CudaLibraries.Export(library, "cuCtxSetCurrent", What);
        MemAlloc = (delegate* unmanaged<ulong*, nuint, int>)CudaLibraries.Export(library, "cuMemAlloc_v2", What);
        MemFree = (delegate* unmanaged<ulong, int>)CudaLibraries.Export(library, "cuMemFree_v2", What);
        MemcpyHtoD = (delegate* unmanaged<ulong, void*, nuint, int>)CudaLibraries.Export(library, "cuMemcpyHtoD_v2", What);
        MemcpyDtoH = (delegate* unmanaged<void*, ulong, nuint, int>)CudaLibraries.Export(library, "cuMemcpyDtoH_v2", What);
        ModuleLoadData = (delegate* unmanaged<nint*, void*, int>)CudaLibraries.Export(library, "cuModuleLoadData", What);
        ModuleUnload = (delegate* unmanaged<nint, int>)CudaLibraries.Export(library, "cuModuleUnload", What);
        ModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)CudaLibraries.Export(library, "cuModuleGetFunction", What);
        LaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)CudaLibraries.Export(library, "cuLaunchKernel", What);
        StreamCreate = (delegate* unmanaged<nint*, uint, int>)CudaLibraries.Export(library, "cuStreamCreate", What);
        StreamDestroy = (delegate* unmanaged<nint, int>)CudaLibraries.Export(library, "cuStreamDestroy_v2", What);
        StreamSynchronize = (delegate* unmanaged<nint, int>)CudaLibraries.Export(library, "cuStreamSynchronize", What);
        GetErrorName = (delegate* unmanaged<int, byte**, int>)CudaLibraries.Export(library, "cuGetErrorName", What);
    }

    /// <summary>The bound driver; throws <see cref="VitCudaException"/> naming libcuda.so.1 / nvcuda.dll when it is missing.</summary>
    public static CudaDriverApi Load() => Shared.Value;

    /// <summary>Throws unless <paramref name="result"/> is CUDA_SUCCESS, naming the call and the error.</summary>
    public void Check(int result, string call, string? step = null)
    {
        if (result == Success) return;
        byte* name = null;
        string text = GetErrorName(result, &name) == Success && name != null ? Marshal.PtrToStringUTF8((nint)name) ?? "" : "";
        string hint = result switch
        {
            100 => " (no CUDA-capable device is visible: check CUDA_VISIBLE_DEVICES and the driver)",
            209 or 218 or 222 => " (the driver cannot JIT the kernels' PTX: it needs an sm_80 or newer GPU and a CUDA 11.0 or newer driver)",
            803 => " (the driver and the kernel module differ in version: reboot or reinstall the driver)",
            _ => "",
        };
        string where = step is null ? "" : $" at step '{step}'";
        throw new VitCudaException($"CUDA driver call {call} failed{where} with {result} {text}{hint}.", null, result);
    }
}

/// <summary>The cuBLAS calls the GPU path makes.</summary>
internal sealed unsafe class CublasApi
{
    public const int Success = 0;
    public const int OpN = 0, OpT = 1;
    /// <summary><c>CUBLAS_DEFAULT_MATH</c>: full FP32 for SGEMM (no TF32), which the parity bounds assume.</summary>
    public const int DefaultMath = 0;

    public readonly delegate* unmanaged<nint*, int> Create;
    public readonly delegate* unmanaged<nint, int> Destroy;
    public readonly delegate* unmanaged<nint, nint, int> SetStream;
    public readonly delegate* unmanaged<nint, int, int> SetMathMode;
    // cublasSgemm_v2(handle, transa, transb, m, n, k, alpha*, A, lda, B, ldb, beta*, C, ldc)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int> Sgemm;
    // cublasSgemmStridedBatched(handle, transa, transb, m, n, k, alpha*, A, lda, strideA, B, ldb, strideB, beta*, C, ldc, strideC, batchCount)
    public readonly delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int> SgemmStridedBatched;

    private static readonly Lazy<CublasApi> Shared = new(() => new CublasApi(CudaLibraries.BlasHandle));

    private CublasApi(nint library)
    {
        const string What = "The cuBLAS library";
        Create = (delegate* unmanaged<nint*, int>)CudaLibraries.Export(library, "cublasCreate_v2", What);
        Destroy = (delegate* unmanaged<nint, int>)CudaLibraries.Export(library, "cublasDestroy_v2", What);
        SetStream = (delegate* unmanaged<nint, nint, int>)CudaLibraries.Export(library, "cublasSetStream_v2", What);
        SetMathMode = (delegate* unmanaged<nint, int, int>)CudaLibraries.Export(library, "cublasSetMathMode", What);
        Sgemm = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, nint, int, float*, nint, int, int>)
            CudaLibraries.Export(library, "cublasSgemm_v2", What);
        SgemmStridedBatched = (delegate* unmanaged<nint, int, int, int, int, int, float*, nint, int, long, nint, int, long, float*, nint, int, long, int, int>)
            CudaLibraries.Export(library, "cublasSgemmStridedBatched", What);
    }

    /// <summary>The bound cuBLAS; throws <see cref="VitCudaException"/> naming the libraries tried when it is missing.</summary>
    public static CublasApi Load() => Shared.Value;

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
        string where = step is null ? "" : $" at step '{step}'";
        throw new VitCudaException($"cuBLAS call {call} failed{where} with status {status} {name}.", null, status);
    }
}
