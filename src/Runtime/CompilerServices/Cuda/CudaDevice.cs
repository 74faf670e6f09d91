using System.Text;

namespace ViTGen.CompilerServices;

/// <summary>
/// One GPU as the plan executor needs it: the device's primary context (shared with the CUDA runtime, which cuBLAS
/// uses; it also avoids cuCtxCreate, whose signature CUDA 13 changed), a stream, a cuBLAS handle on that stream,
/// and the kernels' module. Opening it loads every library first, so a machine without them fails before any
/// weights are read.
/// </summary>
internal sealed unsafe class CudaDevice : IDisposable
{
    private readonly nint[] _functions = new nint[GpuKernels.All.Length];
    private nint _context, _stream, _blasHandle, _module;
    private bool _retained;

    private CudaDevice(CudaDriverApi driver, CublasApi blas, int ordinal)
    {
        Driver = driver;
        Blas = blas;
        Ordinal = ordinal;
    }

    public CudaDriverApi Driver { get; }
    public CublasApi Blas { get; }
    public int Ordinal { get; }
    public nint Stream => _stream;
    public nint BlasHandle => _blasHandle;
    public string Name { get; private set; } = "";

    /// <summary>The function of <paramref name="kernel"/> in the loaded module.</summary>
    public nint Function(GpuKernel kernel) => _functions[(int)kernel];

    /// <summary>Opens device <paramref name="ordinal"/>; throws <see cref="VitCudaException"/> when a library, the device or a call is missing.</summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        var driver = CudaDriverApi.Load();
        var blas = CublasApi.Load();
        driver.Check(driver.Init(0), "cuInit");
        int count;
        driver.Check(driver.DeviceGetCount(&count), "cuDeviceGetCount");
        if (ordinal < 0 || ordinal >= count)
            throw new VitCudaException($"CUDA device {ordinal} does not exist: the driver sees {count} device{(count == 1 ? "" : "s")}.");

        var device = new CudaDevice(driver, blas, ordinal);
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
        byte* name = stackalloc byte[256];
        Driver.Check(Driver.DeviceGetName(name, 256, device), "cuDeviceGetName");
        Name = Marshal.PtrToStringUTF8((nint)name) ?? "";
        nint context;
        Driver.Check(Driver.DevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        _retained = true;
        MakeCurrent();
        nint stream;
        Driver.Check(Driver.StreamCreate(&stream, 0), "cuStreamCreate");
        _stream = stream;
        nint handle;
        CublasApi.Check(Blas.Create(&handle), "cublasCreate_v2");
        _blasHandle = handle;
        CublasApi.Check(Blas.SetStream(handle, stream), "cublasSetStream_v2");
        CublasApi.Check(Blas.SetMathMode(handle, CublasApi.DefaultMath), "cublasSetMathMode");
        LoadKernels();
    }

    private void LoadKernels()
    {
        byte[] ptx = CudaKernelImage.NullTerminatedPtx();
        nint module;
        fixed (byte* image = ptx) Driver.Check(Driver.ModuleLoadData(&module, image), "cuModuleLoadData (JIT of kernels.ptx)");
        _module = module;
        foreach (GpuKernel kernel in GpuKernels.All)
        {
            byte[] entry = Encoding.ASCII.GetBytes(GpuKernels.EntryName(kernel) + "\0");
            nint function;
            fixed (byte* name = entry) Driver.Check(Driver.ModuleGetFunction(&function, module, name), $"cuModuleGetFunction({GpuKernels.EntryName(kernel)})");
            _functions[(int)kernel] = function;
        }
    }

    /// <summary>Binds the context to the calling thread (cuCtxSetCurrent is per thread; every call into the device starts here).</summary>
    public void MakeCurrent() => Driver.Check(Driver.CtxSetCurrent(_context), "cuCtxSetCurrent");

    /// <summary>Allocates <paramref name="floats"/> floats of device memory.</summary>
    public ulong Allocate(long floats)
    {
        ulong pointer;
        Driver.Check(Driver.MemAlloc(&pointer, (nuint)Math.Max(1, floats) * sizeof(float)), $"cuMemAlloc_v2({floats * sizeof(float)} bytes)");
        return pointer;
    }

    /// <summary>Frees device memory from <see cref="Allocate"/> (0 is ignored).</summary>
    public void Free(ulong pointer)
    {
        if (pointer != 0) Driver.Check(Driver.MemFree(pointer), "cuMemFree_v2");
    }

    /// <summary>Copies host floats to the device (synchronous).</summary>
    public void CopyToDevice(ulong destination, float* source, long floats)
        => Driver.Check(Driver.MemcpyHtoD(destination, source, (nuint)floats * sizeof(float)), "cuMemcpyHtoD_v2");

    /// <summary>Waits for the stream's work, then copies device floats to the host.</summary>
    public void CopyToHost(float* destination, ulong source, long floats)
    {
        Driver.Check(Driver.StreamSynchronize(_stream), "cuStreamSynchronize (a kernel or GEMM of the forward pass failed)");
        Driver.Check(Driver.MemcpyDtoH(destination, source, (nuint)floats * sizeof(float)), "cuMemcpyDtoH_v2");
    }

    /// <summary>Releases everything in reverse order; errors during teardown are ignored (nothing useful can follow them).</summary>
    public void Dispose()
    {
        if (_context != 0 && _retained) Driver.CtxSetCurrent(_context);
        if (_blasHandle != 0) Blas.Destroy(_blasHandle);
        if (_module != 0) Driver.ModuleUnload(_module);
        if (_stream != 0) Driver.StreamDestroy(_stream);
        if (_retained)
        {
            int device;
            if (Driver.DeviceGet(&device, Ordinal) == CudaDriverApi.Success) Driver.DevicePrimaryCtxRelease(device);
        }
        _blasHandle = _module = _stream = _context = 0;
        _retained = false;
    }
}
