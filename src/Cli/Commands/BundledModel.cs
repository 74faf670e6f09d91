using System.Reflection;
using System.Security.Cryptography;

namespace ViTGen.Cli.Commands;

/// <summary>The Fashion-MNIST model and sample images embedded in the binary.</summary>
internal static class BundledModel
{
    private const string Prefix = "fashion-mnist/";

    private const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static Stream Open(string name) => Assembly.GetExecutingAssembly().GetManifestResourceStream(Prefix + name)
        ?? throw new InvalidOperationException($"resource '{Prefix + name}' is missing from the vitgen binary");

    /// <summary>Sample images as (name, bytes), in name order.</summary>
    public static IEnumerable<(string Name, byte[] Data)> Samples()
    {
        var assembly = Assembly.GetExecutingAssembly();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix + "samples/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            yield return (resource[Prefix.Length..], memory.ToArray());
        }
    }

    private static readonly Lazy<byte[]> WeightsHash = new(() =>
    {
        using var stream = Open("model.safetensors");
        return SHA256.HashData(stream);
    });

    /// <summary>The SHA-256 of the embedded weights: what the extracted file must hash to.</summary>
    public static ReadOnlySpan<byte> ExpectedHash => WeightsHash.Value;

    /// <summary>The name the extracted weights have in the cache directory (content-addressed).</summary>
    public static string WeightsFileName => $"fashion-mnist-{Convert.ToHexStringLower(WeightsHash.Value)[..16]}.safetensors";

    /// <summary>
    /// The weights as a file (Load maps files), in a directory only this user can write (<see cref="PrivateCacheDirectory"/>).
    /// No shared, predictable path is trusted: a file already there is used only if it is a regular file (not a link)
    /// whose SHA-256 is the embedded weights'; otherwise it is replaced, atomically, by a fresh copy.
    /// </summary>
    public static string ExtractWeights() => ExtractWeights(PrivateCacheDirectory());

    /// <summary>
    /// <see cref="ExtractWeights()"/> into <paramref name="directory"/> (which the caller has made private), verified
    /// against the embedded hash before it is returned.
    /// </summary>
    internal static string ExtractWeights(string directory)
    {
        string path = Path.Combine(directory, WeightsFileName);
        if (IsVerified(path)) return path;

        // Write a fresh copy under a name nobody can have planted (O_CREAT|O_EXCL: an existing file or link fails),
        // readable only by this user, then rename it over whatever is at `path` (rename replaces a link, never follows it).
        string partial = Path.Combine(directory, $".{WeightsFileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PrivateFile;
            using (var stream = Open("model.safetensors"))
            using (var file = new FileStream(partial, options))
            {
                stream.CopyTo(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(partial, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
        if (!IsVerified(path)) throw new IOException($"the bundled weights extracted to {path} do not verify (SHA-256); is another process writing there?");
        return path;
    }

    /// <summary>Whether <paramref name="path"/> is a regular file, not a link, whose content hashes to the embedded weights'.</summary>
    internal static bool IsVerified(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists || info.LinkTarget is not null || info.Attributes.HasFlag(FileAttributes.ReparsePoint)) return false;
        try
        {
            // FileStream on a path opens what is there now; a link swapped in after the check above would be followed,
            // but only this user can write the private directory.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return stream.Length == info.Length && SHA256.HashData(stream).AsSpan().SequenceEqual(ExpectedHash);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// A directory only this user can write: <c>$XDG_RUNTIME_DIR/vitgen</c>, else <c>LocalApplicationData/vitgen</c>
    /// (on Linux <c>~/.local/share/vitgen</c>), created with mode 0700 and checked not to be a link nor writable by
    /// others; when neither can be had, a fresh <see cref="Directory.CreateTempSubdirectory"/> (0700, unpredictable).
    /// </summary>
    internal static string PrivateCacheDirectory()
    {
        foreach (string? root in new[] { Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR"), Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData) })
        {
            if (string.IsNullOrEmpty(root) || !Path.IsPathFullyQualified(root) || !Directory.Exists(root)) continue;
            string directory = Path.Combine(root, "vitgen");
            if (TryMakePrivate(directory)) return directory;
        }
        // mkdtemp: mode 0700, a name nobody can predict; one per process, so removed when the process ends.
        string temporary = Directory.CreateTempSubdirectory("vitgen-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(temporary, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        };
        return temporary;
    }

    /// <summary>Creates <paramref name="directory"/> (0700) or checks an existing one: a real directory, not a link, no group/other access.</summary>
    internal static bool TryMakePrivate(string directory)
    {
        try
        {
            var info = OperatingSystem.IsWindows() ? Directory.CreateDirectory(directory) : Directory.CreateDirectory(directory, PrivateDirectory);
            info.Refresh();
            if (info.LinkTarget is not null || info.Attributes.HasFlag(FileAttributes.ReparsePoint)) return false;
            if (OperatingSystem.IsWindows()) return true;
            if ((info.UnixFileMode & ~PrivateDirectory) != 0)
            {
                info.UnixFileMode = PrivateDirectory; // only the owner may change the mode: fails for someone else's directory
                info.Refresh();
            }
            return info.UnixFileMode == PrivateDirectory;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
