namespace ViTGen;

/// <summary>
/// Thrown when a weights file cannot be loaded into a model: the file is unreadable or malformed,
/// a tensor is missing or unexpected, or its dtype or shape differs from what the model was compiled for.
/// The message names the file, the tensor and the problem.
/// </summary>
public sealed class VitWeightsException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public VitWeightsException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public VitWeightsException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with no message; prefer the overloads that say what went wrong.</summary>
    public VitWeightsException() : base("The weights could not be loaded.") { }
}
