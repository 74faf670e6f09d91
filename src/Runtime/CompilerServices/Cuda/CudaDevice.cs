using System.Text;

namespace ViTGen.CompilerServices;

/// <summary>
/// One GPU as the plan executor needs it: the device's primary context (shared with the CUDA runtime, which cuBLAS
/// uses; it also avoids cuCtxCreate, whose signature CUDA 13 changed), a non-blocking stream, a cuBLAS handle on that
/// stream with its own workspace, and the kernels' module. Opening it loads every library first, so a machine without
/// them fails before any weights are read.
/// </summary>
/// <remarks>
/// Every call into the device runs inside <see cref="Enter"/>, which pushes the context on the calling thread and pops
/// it afterwards: a host application's own context stays current on its threads (cuCtxSetCurrent would replace it).
/// The stream is <c>CU_STREAM_NON_BLOCKING</c> and every copy is asynchronous on it, so nothing goes through the legacy
/// default stream, which would serialize every model (and the host's own work) on the device.
/// </remarks>
internal sealed unsafe class CudaDevice : IDisposable
{
    /// <summary>
    /// The cuBLAS workspace. cublasSetWorkspace's documentation recommends at least 4 MiB, 32 MiB on Hopper; with a
    /// workspace set by the user, cuBLAS allocates nothing during CUDA graph capture (its own pool would).
    /// </summary>
    internal const long BlasWorkspaceBytes = 32L << 20;

    private const int JitLogBytes = 16 << 10;

    private readonly nint[] _functions = new nint[GpuKernels.All.Length];
    private nint _context, _stream, _blasHandle, _module;
    private ulong _workspace;
    private int _device;
    private bool _retained;

    private CudaDevice(CudaDriverApi driver, CublasApi blas, VitCudaOptions options, int driverVersion)
    {
        Driver = driver;
        Blas = blas;
        Options = options;
        DriverVersion = driverVersion;
    }

    public CudaDriverApi Driver { get; }
    public CublasApi Blas { get; }
    public VitCudaOptions Options { get; }
    public int Ordinal => Options.Device;
    /// <summary>cuDriverGetVersion: 1000 * major + 10 * minor.</summary>
    public int DriverVersion { get; }
    public nint Stream => _stream;
    public nint BlasHandle => _blasHandle;
    public string Name { get; private set; } = "";

    /// <summary>The function of <paramref name="kernel"/> in the loaded module.</summary>
    public nint Function(GpuKernel kernel) => _functions[(int)kernel];

    /// <summary>Opens device <see cref="VitCudaOptions.Device"/>; throws <see cref="VitCudaException"/> when a library, the device or a call is missing.</summary>
    public static CudaDevice Open(VitCudaOptions options) => Open(options, CudaDriverApi.Load(), CublasApi.Load);

    /// <summary>Opens a device over the given driver, loading cuBLAS for the driver's version with <paramref name="loadBlas"/>.</summary>
    internal static CudaDevice Open(VitCudaOptions options, CudaDriverApi driver, Func<int, CublasApi> loadBlas)
    {
        ArgumentNullException.ThrowIfNull(options);
        driver.Check(driver.Init(0), "cuInit");
        int version;
        driver.Check(driver.DriverGetVersion(&version), "cuDriverGetVersion");
        var blas = loadBlas(version);
        int count;
        driver.Check(driver.DeviceGetCount(&count), "cuDeviceGetCount");
        if (options.Device >= count)
            throw new VitCudaException($"CUDA device {options.Device} (VitCudaOptions.Device) does not exist: the driver sees {count} device{(count == 1 ? "" : "s")}.");

        var device = new CudaDevice(driver, blas, options, version);
        try
        {
            device.Initialize();
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    private void Initialize()
    {
        int device;
        Driver.Check(Driver.DeviceGet(&device, Ordinal), "cuDeviceGet");
        _device = device;
        byte* name = stackalloc byte[256];
        Driver.Check(Driver.DeviceGetName(name, 256, device), "cuDeviceGetName");
        Name = Marshal.PtrToStringUTF8((nint)name) ?? "";
        nint context;
        Driver.Check(Driver.DevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        _retained = true;
        using (Enter())
        {
            nint stream;
            Driver.Check(Driver.StreamCreate(&stream, CudaDriverApi.StreamNonBlocking), "cuStreamCreate(CU_STREAM_NON_BLOCKING)");
            _stream = stream;
            nint handle;
            CublasApi.Check(Blas.Create(&handle), "cublasCreate_v2");
            _blasHandle = handle;
            CublasApi.Check(Blas.SetStream(handle, stream), "cublasSetStream_v2");
            int math = Options.Math == VitCudaMath.Tf32 ? CublasApi.Tf32TensorOpMath : CublasApi.DefaultMath;
            CublasApi.Check(Blas.SetMathMode(handle, math), "cublasSetMathMode");
            _workspace = AllocateBytes(BlasWorkspaceBytes, "the cuBLAS workspace");
            CublasApi.Check(Blas.SetWorkspace(handle, _workspace, (nuint)BlasWorkspaceBytes), "cublasSetWorkspace_v2");
            LoadKernels();
        }
    }

    private void LoadKernels()
    {
        byte[] ptx = CudaKernelImage.NullTerminatedPtx();
        byte* log = stackalloc byte[JitLogBytes];
        log[0] = 0;
        int* options = stackalloc int[] { CudaDriverApi.JitErrorLogBuffer, CudaDriverApi.JitErrorLogBufferSizeBytes };
        void** values = stackalloc void*[2];
        values[0] = log;
        values[1] = (void*)(nuint)JitLogBytes; // an unsigned int option travels in the pointer's bits
        nint module;
        int result;
        fixed (byte* image = ptx) result = Driver.ModuleLoadDataEx(&module, image, 2, options, values);
        if (result != CudaDriverApi.Success)
        {
            log[JitLogBytes - 1] = 0;
            string message = Driver.Describe(result, "cuModuleLoadDataEx (JIT of kernels.ptx)");
            throw new VitCudaException(JitFailure(message, Marshal.PtrToStringUTF8((nint)log)), null, result);
        }
        _module = module;
        foreach (GpuKernel kernel in GpuKernels.All)
        {
            byte[] entry = Encoding.ASCII.GetBytes(GpuKernels.EntryName(kernel) + "\0");
            nint function;
            fixed (byte* name = entry) Driver.Check(Driver.ModuleGetFunction(&function, module, name), $"cuModuleGetFunction({GpuKernels.EntryName(kernel)})");
            _functions[(int)kernel] = function;
        }
    }

    /// <summary>The message of a failed PTX JIT: the driver's error, then the JIT compiler's own log (what line, what is wrong).</summary>
    internal static string JitFailure(string driverMessage, string? jitLog)
    {
        string log = jitLog?.Trim() ?? "";
        return log.Length == 0 ? driverMessage + " The JIT compiler wrote no error log." : $"{driverMessage} JIT compiler log:\n{log}";
    }

    /// <summary>Pushes the device's context on the calling thread until the scope is disposed (which pops it).</summary>
    public ContextScope Enter()
    {
        Driver.Check(Driver.CtxPushCurrent(_context), "cuCtxPushCurrent_v2");
        return new ContextScope(Driver);
    }

    /// <summary>The device's context made current on this thread; disposing restores the thread's previous context.</summary>
    internal readonly struct ContextScope(CudaDriverApi driver) : IDisposable
    {
        public void Dispose()
        {
            // Pop fails only when the context is already gone; nothing useful can follow, and throwing here would
            // replace the exception that is usually propagating at that moment.
            nint popped;
            driver.CtxPopCurrent(&popped);
        }
    }

    /// <summary>Allocates <paramref name="floats"/> floats of device memory.</summary>
    public ulong Allocate(long floats) => AllocateBytes(Math.Max(1, floats) * sizeof(float), "device memory");

    private ulong AllocateBytes(long bytes, string what)
    {
        ulong pointer;
        int result = Driver.MemAlloc(&pointer, (nuint)bytes);
        if (result != CudaDriverApi.Success) Driver.Check(result, $"cuMemAlloc_v2({bytes} bytes of {what})");
        return pointer;
    }

    /// <summary>Frees device memory from <see cref="Allocate"/> (0 is ignored).</summary>
    public void Free(ulong pointer)
    {
        if (pointer != 0) Driver.Check(Driver.MemFree(pointer), "cuMemFree_v2");
    }

    /// <summary>Allocates <paramref name="floats"/> floats of page-locked host memory, which asynchronous copies need to be asynchronous.</summary>
    public float* AllocateHost(long floats)
    {
        void* pointer;
        long bytes = Math.Max(1, floats) * sizeof(float);
        int result = Driver.MemHostAlloc(&pointer, (nuint)bytes, 0);
        if (result != CudaDriverApi.Success) Driver.Check(result, $"cuMemHostAlloc({bytes} bytes of pinned staging memory)");
        return (float*)pointer;
    }

    /// <summary>Frees host memory from <see cref="AllocateHost"/> (null is ignored).</summary>
    public void FreeHost(float* pointer)
    {
        if (pointer != null) Driver.Check(Driver.MemFreeHost(pointer), "cuMemFreeHost");
    }

    /// <summary>Enqueues a copy of host floats to the device on the stream.</summary>
    public void CopyToDeviceAsync(ulong destination, float* source, long floats)
    {
        int result = Driver.MemcpyHtoDAsync(destination, source, (nuint)floats * sizeof(float), _stream);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuMemcpyHtoDAsync_v2");
    }

    /// <summary>Enqueues a copy of device floats to the host on the stream.</summary>
    public void CopyToHostAsync(float* destination, ulong source, long floats)
    {
        int result = Driver.MemcpyDtoHAsync(destination, source, (nuint)floats * sizeof(float), _stream);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuMemcpyDtoHAsync_v2");
    }

    /// <summary>Waits for everything enqueued on the stream; <paramref name="what"/> says what was waited for.</summary>
    public void Synchronize(string what)
    {
        int result = Driver.StreamSynchronize(_stream);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuStreamSynchronize", what);
    }

    /// <summary>Creates an event for ordering (no timing).</summary>
    public nint CreateEvent()
    {
        nint handle;
        Driver.Check(Driver.EventCreate(&handle, CudaDriverApi.EventDisableTiming), "cuEventCreate");
        return handle;
    }

    /// <summary>Records <paramref name="handle"/> on the stream, after everything enqueued so far.</summary>
    public void Record(nint handle)
    {
        int result = Driver.EventRecord(handle, _stream);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuEventRecord");
    }

    /// <summary>Waits until the work before <paramref name="handle"/>'s record is done; <paramref name="what"/> says what that was.</summary>
    public void Wait(nint handle, string what)
    {
        int result = Driver.EventSynchronize(handle);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuEventSynchronize", what);
    }

    /// <summary>Destroys an event (0 is ignored).</summary>
    public void DestroyEvent(nint handle)
    {
        if (handle != 0) Driver.Check(Driver.EventDestroy(handle), "cuEventDestroy_v2");
    }

    /// <summary>
    /// Starts capturing the stream's work into a graph in <c>CU_STREAM_CAPTURE_MODE_THREAD_LOCAL</c>: only this thread's
    /// unsafe calls (allocations, synchronizations) invalidate it, so other models on other threads may keep working.
    /// </summary>
    public void BeginCapture() => Driver.Check(Driver.StreamBeginCapture(_stream, CudaDriverApi.CaptureModeThreadLocal), "cuStreamBeginCapture_v2");

    /// <summary>Ends the capture and instantiates the captured graph; the graph itself is destroyed (the executable keeps a copy).</summary>
    public nint EndCaptureAndInstantiate(string what)
    {
        nint graph;
        Driver.Check(Driver.StreamEndCapture(_stream, &graph), "cuStreamEndCapture", what);
        try
        {
            nint executable;
            Driver.Check(Driver.GraphInstantiateWithFlags(&executable, graph, 0), "cuGraphInstantiateWithFlags", what);
            return executable;
        }
        finally
        {
            Driver.GraphDestroy(graph);
        }
    }

    /// <summary>Ends a capture that failed part-way, discarding what was captured; errors are ignored (the first one is reported).</summary>
    public void AbandonCapture()
    {
        nint graph = 0;
        if (Driver.StreamEndCapture(_stream, &graph) == CudaDriverApi.Success && graph != 0) Driver.GraphDestroy(graph);
    }

    /// <summary>Enqueues an instantiated graph on the stream.</summary>
    public void Launch(nint graphExecutable, string what)
    {
        int result = Driver.GraphLaunch(graphExecutable, _stream);
        if (result != CudaDriverApi.Success) Driver.Check(result, "cuGraphLaunch", what);
    }

    /// <summary>Destroys an instantiated graph (0 is ignored).</summary>
    public void DestroyGraph(nint graphExecutable)
    {
        if (graphExecutable != 0) Driver.Check(Driver.GraphExecDestroy(graphExecutable), "cuGraphExecDestroy");
    }

    /// <summary>Releases everything in reverse order; errors during teardown are ignored (nothing useful can follow them).</summary>
    public void Dispose()
    {
        if (_retained && Driver.CtxPushCurrent(_context) == CudaDriverApi.Success)
        {
            if (_blasHandle != 0) Blas.Destroy(_blasHandle);
            if (_workspace != 0) Driver.MemFree(_workspace);
            if (_module != 0) Driver.ModuleUnload(_module);
            if (_stream != 0) Driver.StreamDestroy(_stream);
            nint popped;
            Driver.CtxPopCurrent(&popped);
        }
        if (_retained) Driver.DevicePrimaryCtxRelease(_device);
        _blasHandle = _module = _stream = _context = 0;
        _workspace = 0;
        _retained = false;
    }
}
