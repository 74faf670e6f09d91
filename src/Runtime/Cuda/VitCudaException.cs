namespace ViTGen;

/// <summary>
/// Thrown when a model cannot run on a GPU: the NVIDIA driver or cuBLAS library is missing (the message and
/// <see cref="Library"/> name it), there is no CUDA device, or a driver or cuBLAS call failed (the message names the
/// call, the step of the forward pass and the error).
/// </summary>
public sealed class VitCudaException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public VitCudaException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public VitCudaException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with no message; prefer the overloads that say what went wrong.</summary>
    public VitCudaException() : base("The model could not run on the GPU.") { }

    internal VitCudaException(string message, string? library, int? errorCode) : base(message)
    {
        Library = library;
        ErrorCode = errorCode;
    }

    /// <summary>The library that could not be loaded (the first name tried, e.g. <c>libcuda.so.1</c>), or null.</summary>
    public string? Library { get; }

    /// <summary>The <c>CUresult</c> or <c>cublasStatus_t</c> of a failed call, or null.</summary>
    public int? ErrorCode { get; }
}
