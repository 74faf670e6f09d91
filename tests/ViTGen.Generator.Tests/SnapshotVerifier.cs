using System.Runtime.CompilerServices;
using Xunit.Sdk;

namespace ViTGen.Generator.Tests;

/// <summary>
/// A small stand-in for Verify: compares text with <c>Snapshots/{Class}.{Method}.verified.cs</c> next to the
/// calling test's source file, or with <c>Snapshots/{Class}.{Method}#{Target}.verified.cs</c> when one test checks
/// several files (Verify.SourceGenerators' convention: the target is the hint name without <c>.cs</c>). On a
/// mismatch, or when no verified file exists yet, it writes the same name with <c>.received.cs</c> beside it and
/// fails; accept a change by renaming received to verified. A passing run deletes a stale received file.
/// </summary>
internal static class SnapshotVerifier
{
    public static void Verify(
        string actual,
        string? target = null,
        [CallerFilePath] string sourceFile = "",
        [CallerMemberName] string method = "")
    {
        string directory = Path.Combine(SourceDirectory(sourceFile), "Snapshots");
        string name = Path.GetFileNameWithoutExtension(sourceFile) + "." + method + (target is null ? "" : "#" + target);
        string verifiedPath = Path.Combine(directory, name + ".verified.cs");
        string receivedPath = Path.Combine(directory, name + ".received.cs");
        actual = Normalize(actual);

        if (!File.Exists(verifiedPath))
        {
            Write(receivedPath, actual);
            throw new XunitException(
                $"No verified snapshot for {name}. Review {receivedPath} and rename it to {Path.GetFileName(verifiedPath)} to accept it.");
        }

        string expected = Normalize(File.ReadAllText(verifiedPath));
        if (expected == actual)
        {
            if (File.Exists(receivedPath)) File.Delete(receivedPath);
            return;
        }

        Write(receivedPath, actual);
        throw new XunitException(
            $"Snapshot {name} differs from {verifiedPath}.{Environment.NewLine}" +
            $"{FirstDifference(expected, actual)}{Environment.NewLine}" +
            $"Compare with: diff -u \"{verifiedPath}\" \"{receivedPath}\"{Environment.NewLine}" +
            $"If the change is intended, accept it with: mv \"{receivedPath}\" \"{verifiedPath}\"");
    }

    /// <summary>
    /// The test's source directory. [CallerFilePath] gives it, unless the build mapped source paths (deterministic CI
    /// builds may write <c>/_/</c>); then the project directory is found above the test assembly.
    /// </summary>
    private static string SourceDirectory(string sourceFile)
    {
        string? directory = Path.GetDirectoryName(sourceFile);
        if (directory is not null && Directory.Exists(directory)) return directory;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ViTGen.Generator.Tests.csproj"))) return dir.FullName;
        }
        throw new InvalidOperationException($"Cannot find the snapshot directory from '{sourceFile}' or '{AppContext.BaseDirectory}'.");
    }

    // Git may check snapshots out with CRLF; the generator always writes \n.
    private static string Normalize(string text) => text.Replace("\r\n", "\n");

    private static void Write(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
    }

    private static string FirstDifference(string expected, string actual)
    {
        var expectedLines = expected.Split('\n');
        var actualLines = actual.Split('\n');
        for (int i = 0; i < Math.Max(expectedLines.Length, actualLines.Length); i++)
        {
            string? e = i < expectedLines.Length ? expectedLines[i] : null;
            string? a = i < actualLines.Length ? actualLines[i] : null;
            if (e != a)
                return $"First difference at line {i + 1}:{Environment.NewLine}- {e ?? "<end of file>"}{Environment.NewLine}+ {a ?? "<end of file>"}";
        }
        return "The texts differ only in line endings.";
    }
}
