namespace ViTGen;

/// <summary>
/// Thrown when an image cannot be decoded: the file is unreadable, its format is not supported, its data is
/// corrupt or truncated, or its dimensions are absurd.
/// The message names the file (or the in-memory source) and the problem.
/// </summary>
public sealed class VitImageException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public VitImageException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public VitImageException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with no message; prefer the overloads that say what went wrong.</summary>
    public VitImageException() : base("The image could not be decoded.") { }

    /// <summary>Builds the standard message: "Cannot decode image 'source': problem".</summary>
    internal static VitImageException For(string source, string problem) =>
        new($"Cannot decode image '{source}': {problem}");

    /// <summary>Same as <see cref="For(string, string)"/> with the underlying cause attached.</summary>
    internal static VitImageException For(string source, string problem, Exception inner) =>
        new($"Cannot decode image '{source}': {problem}", inner);
}
