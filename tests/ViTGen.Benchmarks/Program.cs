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
    public static int Main(string[] args)
    {
        if (args is not ["profile", ..])
        {
            BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
            return 0;
        }
        if (args is not [_, var model, var count] || !BlockProfile.Models.Contains(model)
            || !int.TryParse(count, System.Globalization.CultureInfo.InvariantCulture, out int threads) || threads < 1)
        {
            Console.Error.WriteLine($"usage: profile MODEL THREADS  (MODEL: {string.Join(", ", BlockProfile.Models)}; THREADS: 1 or more)");
            return 2;
        }
        BlockProfile.Run(model, threads);
        return 0;
    }
}
