using System.CommandLine;
using ViTGen.Cli.Commands;

namespace ViTGen.Cli;

internal static class Program
{
    internal static int Main(string[] args)
    {
        Avx512Dispatch.ExecAvx512BuildWhereFaster(args);
        var root = new RootCommand(
            "vitgen: Vision Transformers compiled ahead of time by ViTGen's source generator.\n" +
            "Run with no arguments to classify the bundled Fashion-MNIST samples with the bundled model.");
        root.Subcommands.Add(ClassifyCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(InspectCommand.Create());
        root.Subcommands.Add(AttentionCommand.Create());
        root.Subcommands.Add(FeaturesCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        // `vitgen` alone is the quick start: the bundled model on the bundled images.
        if (args.Length == 0) args = ["classify"];
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // Usage errors exit 2, like model errors (1 is kept for "some files failed"); System.CommandLine would return 1.
            foreach (var error in parsed.Errors) Console.Error.WriteLine("error: " + error.Message);
            Console.Error.WriteLine($"Run 'vitgen {parsed.CommandResult.Command.Name} --help' for usage.".Replace("vitgen vitgen", "vitgen", StringComparison.Ordinal));
            return 2;
        }
        return parsed.Invoke();
    }
}
