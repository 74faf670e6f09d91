using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using ViTGen;
using ViTGen.Tests.Parity;

// Every parity fixture against its float64 PyTorch reference, at 1 and 2 threads, with the bound of the test suite
// (tests/ViTGen.Runtime.Tests/Parity/ParityTests.cs). One line per case, then "N passed, M failed"; exit code 1 on
// any failure. Usage: vitgen-parity [FIXTURE_DIR]
// Equal to ParityTests.Bound (the reasons and the measured worst per SIMD tier are there): worst seen 3.4e-7
// (AVX-512), 3.2e-7 (AVX2), 3.8e-7 (128-bit), ARM64 5.5e-8..2.9e-7.
const double Bound = 5e-6;
string directory = args.Length > 0 ? args[0] : Path.Combine(AppContext.BaseDirectory, "fixtures", "parity");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} processors; Vector128 {Vector128.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, Vector512 {Vector512.IsHardwareAccelerated}"));

int passed = 0, failed = 0;
// The hybrid fixtures (tests/fixtures/hybrid) sit beside the plain ones.
string hybridDirectory = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(directory))!, "hybrid");
var cases = ParityModels.Load.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => (Name: m.Key, Load: m.Value, Directory: directory))
    .Concat(HybridModels.Load.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => (Name: m.Key, Load: m.Value, Directory: hybridDirectory)));
foreach (var (name, load, fixtures) in cases)
{
    foreach (int threads in new[] { 1, 2 })
    {
        string verdict;
        try
        {
            using var io = SafeTensorsFile.Open(Path.Combine(fixtures, name + ".io.safetensors"));
            var input = new float[io.GetTensor("input").ElementCount];
            var expected = new double[io.GetTensor("expected").ElementCount];
            io.ReadFloat32("input", input);
            io.ReadFloat64("expected", expected);
            int batch = (int)io.GetTensor("input").Shape[0];

            using var model = load(Path.Combine(fixtures, name + ".safetensors"), new VitOptions { Threads = threads });
            var output = Enumerable.Repeat(float.NaN, expected.Length).ToArray(); // poisoned: an unwritten element fails
            model.Forward(input, output, batch);
            double error = RelativeL2(output, expected);
            bool ok = error <= Bound; // NaN compares false
            verdict = string.Create(CultureInfo.InvariantCulture, $"relative L2 {error:E2} (bound {Bound:E0}): {(ok ? "ok" : "FAILED")}");
            if (ok) passed++; else failed++;
        }
        catch (Exception e)
        {
            verdict = $"FAILED: {e.GetType().Name}: {e.Message}";
            failed++;
        }
        Console.WriteLine($"{name} threads={threads}: {verdict}");
    }
}
Console.WriteLine($"{passed} passed, {failed} failed");
return failed == 0 ? 0 : 1;

static double RelativeL2(float[] actual, double[] expected)
{
    double error = 0, norm = 0;
    for (int i = 0; i < actual.Length; i++)
    {
        double d = actual[i] - expected[i];
        error += d * d;
        norm += expected[i] * expected[i];
    }
    return Math.Sqrt(error / norm);
}
