using System.Runtime.InteropServices;

namespace ViTGen;

/// <summary>
/// JPEG decoding through libjpeg-turbo's TurboJPEG C API, loaded at run time with <see cref="NativeLibrary"/>
/// and called through unmanaged function pointers (no marshalling; AOT-compatible). Decodes with the
/// library's defaults (accurate integer IDCT, fancy upsampling), the same settings PIL uses through libjpeg.
/// </summary>
internal static unsafe class TurboJpeg
{
    internal const string MissingLibraryMessage =
        "JPEG decoding needs libjpeg-turbo: install Debian/Ubuntu package libturbojpeg0";

    private const int PixelFormatRgb = 0, PixelFormatGray = 6; // TJPF_RGB, TJPF_GRAY
    private const int ColorspaceGray = 2, ColorspaceCmyk = 3, ColorspaceYcck = 4; // TJCS_*
    private const int FlagLimitScans = 32768; // TJFLAG_LIMITSCANS: refuse progressive files with absurd scan counts

    /// <summary>Names tried in order: Linux soname, then macOS and Windows names, then unversioned ones.</summary>
    internal static readonly string[] DefaultLibraryNames =
        ["libturbojpeg.so.0", "libturbojpeg.0.dylib", "turbojpeg.dll", "libturbojpeg.so", "libturbojpeg.dylib", "turbojpeg",
         "/opt/homebrew/opt/jpeg-turbo/lib/libturbojpeg.0.dylib", "/usr/local/opt/jpeg-turbo/lib/libturbojpeg.0.dylib"];

    private static readonly Lazy<Api?> DefaultApi = new(() => Api.Load(DefaultLibraryNames));

    internal static VitImage Decode(ReadOnlySpan<byte> data, string source) =>
        Decode(data, source, DefaultApi.Value);

    /// <summary>Decodes with a library looked up under other names; lets tests see what happens when it is missing.</summary>
    internal static VitImage Decode(ReadOnlySpan<byte> data, string source, IReadOnlyList<string> libraryNames) =>
        Decode(data, source, Api.Load(libraryNames));

    private static VitImage Decode(ReadOnlySpan<byte> data, string source, Api? api)
    {
        if (api is null)
        {
            throw VitImageException.For(source, MissingLibraryMessage);
        }
        if (!JpegMarkers.HasEndOfImage(data))
        {
            throw VitImageException.For(source, "truncated JPEG: the data ends before the end-of-image marker");
        }
        nint handle = api.InitDecompress();
        if (handle == 0)
        {
            throw VitImageException.For(source, "libturbojpeg could not create a decompressor");
        }
        try
        {
            fixed (byte* jpeg = data)
            {
                var size = new CULong((nuint)data.Length);
                int width = 0, height = 0, subsampling = 0, colorspace = 0;
                if (api.DecompressHeader3(handle, jpeg, size, &width, &height, &subsampling, &colorspace) != 0)
                {
                    ReportFailure(api, handle, source, "invalid JPEG header");
                }
                if (width == 0 || height == 0)
                {
                    throw VitImageException.For(source, "JPEG has no image (only tables)");
                }
                VitImage.CheckDecodedSize(width, height, source);
                if (colorspace is ColorspaceCmyk or ColorspaceYcck)
                {
                    throw VitImageException.For(source, "CMYK/YCCK JPEG images are not supported");
                }
                int channels = colorspace == ColorspaceGray ? 1 : 3;
                byte[] pixels = GC.AllocateUninitializedArray<byte>(checked(width * height * channels)); // fully written
                fixed (byte* destination = pixels)
                {
                    int format = channels == 1 ? PixelFormatGray : PixelFormatRgb;
                    if (api.Decompress2(handle, jpeg, size, destination, width, width * channels, height, format, FlagLimitScans) != 0)
                    {
                        ReportFailure(api, handle, source, "corrupt JPEG");
                    }
                }
                return new VitImage(width, height, channels, pixels);
            }
        }
        finally
        {
            api.Destroy(handle);
        }
    }

    /// <summary>
    /// libjpeg's warnings (recoverable damage) are tolerated, as PIL tolerates them; anything else is an error.
    /// The last message tells which: a fatal error stops decoding, so it is always the last one.
    /// (tjGetErrorCode cannot tell: in libjpeg-turbo 2.1 any earlier warning makes it report a warning.)
    /// </summary>
    private static void ReportFailure(Api api, nint handle, string source, string problem)
    {
        string text = api.ErrorText(handle);
        if (text.StartsWith("Premature end of JPEG file", StringComparison.Ordinal))
        {
            throw VitImageException.For(source, $"truncated JPEG: {text}");
        }
        foreach (string warning in RecoverableWarnings)
        {
            if (text.StartsWith(warning, StringComparison.Ordinal))
            {
                return;
            }
        }
        throw VitImageException.For(source, $"{problem}: {text}");
    }

    /// <summary>How libjpeg's warning messages (JWRN_* in jerror.h) begin.</summary>
    private static readonly string[] RecoverableWarnings =
        ["Corrupt JPEG data:", "Warning:", "Unknown Adobe color transform code", "Inconsistent progression sequence",
         "Invalid SOS parameters for sequential JPEG", "Application transferred too many scanlines"];

    /// <summary>The TurboJPEG entry points of one loaded library.</summary>
    private sealed class Api
    {
        internal delegate* unmanaged<nint> InitDecompress;
        internal delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int> DecompressHeader3;
        internal delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int> Decompress2;
        internal delegate* unmanaged<nint, int> Destroy;
        internal delegate* unmanaged<nint, byte*> GetErrorStr2;

        internal string ErrorText(nint handle) =>
            Marshal.PtrToStringUTF8((nint)GetErrorStr2(handle)) ?? "unknown libturbojpeg error";

        internal static Api? Load(IReadOnlyList<string> names)
        {
            foreach (string name in names)
            {
                if (!NativeLibrary.TryLoad(name, typeof(TurboJpeg).Assembly, null, out nint library))
                {
                    continue;
                }
                if (NativeLibrary.TryGetExport(library, "tjInitDecompress", out nint init)
                    && NativeLibrary.TryGetExport(library, "tjDecompressHeader3", out nint header)
                    && NativeLibrary.TryGetExport(library, "tjDecompress2", out nint decompress)
                    && NativeLibrary.TryGetExport(library, "tjDestroy", out nint destroy)
                    && NativeLibrary.TryGetExport(library, "tjGetErrorStr2", out nint error))
                {
                    return new Api
                    {
                        InitDecompress = (delegate* unmanaged<nint>)init,
                        DecompressHeader3 = (delegate* unmanaged<nint, byte*, CULong, int*, int*, int*, int*, int>)header,
                        Decompress2 = (delegate* unmanaged<nint, byte*, CULong, byte*, int, int, int, int, int, int>)decompress,
                        Destroy = (delegate* unmanaged<nint, int>)destroy,
                        GetErrorStr2 = (delegate* unmanaged<nint, byte*>)error,
                    };
                }
                NativeLibrary.Free(library); // too old: lacks the 2.x API
            }
            return null;
        }
    }
}
