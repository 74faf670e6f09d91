using BenchmarkDotNet.Running;

namespace ViTGen.Benchmarks;

/// <summary>
/// Runs the benchmarks in this assembly, for example:
/// <c>dotnet run -c Release --project tests/ViTGen.Benchmarks -- --filter '*Generator*' --job short</c>.
/// Every public benchmark class in the assembly is found, so new files need no registration here.
/// <c>-- profile MODEL THREADS</c> runs <see cref="BlockProfile"/> instead.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        if (args is ["profile", var model, var threads])
            BlockProfile.Run(model, int.Parse(threads, System.Globalization.CultureInfo.InvariantCulture));
        else
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
