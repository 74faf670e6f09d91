using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using ViTGen.Cli.Commands;
using ViTGen.Cli.Tests;

namespace ViTGen.Serving.Tests;

/// <summary><c>vitgen serve</c>'s options (usage errors exit 2) and the process's SIGTERM handling (exit 0).</summary>
[Collection(nameof(Console))]
public sealed partial class ServeCommandTests
{
    [Theory]
    [InlineData("--max-batch", "0", "--max-batch")]
    [InlineData("--max-batch", "100000", "--max-batch")]
    [InlineData("--max-queue", "0", "--max-queue")]
    [InlineData("--max-delay-ms", "-1", "--max-delay-ms")]
    [InlineData("--max-delay-ms", "100000", "--max-delay-ms")]
    [InlineData("--threads", "0", "--threads")]
    [InlineData("--max-body-bytes", "0", "--max-body-bytes")]
    [InlineData("--max-body-bytes", "10000000000", "--max-body-bytes")]
    [InlineData("--max-pixels", "0", "--max-pixels")]
    [InlineData("--urls", "not a url", "--urls")]
    [InlineData("--urls", "ftp://127.0.0.1:21", "--urls")]
    [InlineData("--max-batch", "many", "many")]
    [InlineData("--model", "/nonexistent/model-dir", "model.json")]
    [InlineData("--random-weights", "nope", "nope")]
    public void A_bad_option_exits_2_with_a_message_naming_it(string option, string value, string named)
    {
        var result = CliRunner.Run("serve", option, value);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(named, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Random_weights_and_a_model_directory_exclude_each_other()
    {
        var result = CliRunner.Run("serve", "--random-weights", "tiny32", "--model", ".");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("exclude", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_option_exits_2()
    {
        var result = CliRunner.Run("serve", "--max-bach", "4");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--max-bach", result.Error, StringComparison.Ordinal);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    [Fact]
    public async Task Sigterm_stops_the_server_and_it_exits_0()
    {
        if (!OperatingSystem.IsLinux()) return; // the signal is POSIX; CI and this project run Linux
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "vitgen.dll"), "serve", "--urls", "http://127.0.0.1:0", "--threads", "1" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        try
        {
            var listening = new TaskCompletionSource<Uri>();
            process.OutputDataReceived += (_, e) =>
            {
                const string Marker = "Now listening on: ";
                if (e.Data?.Contains(Marker, StringComparison.Ordinal) == true) listening.TrySetResult(new Uri(e.Data[(e.Data.IndexOf(Marker, StringComparison.Ordinal) + Marker.Length)..].Trim()));
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var address = await listening.Task.WaitAsync(TimeSpan.FromMinutes(1));

            using var client = new HttpClient { BaseAddress = address };
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
            HttpStatusCode health;
            while ((health = (await client.GetAsync("/healthz")).StatusCode) != HttpStatusCode.OK)
            {
                Assert.True(DateTime.UtcNow < deadline, $"healthz stayed {health}");
                await Task.Delay(20);
            }
            using (var answer = await client.PostAsync("/v1/classify", RunningServer.Body(BundledModel.Samples().First().Data)))
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

            Assert.Equal(0, Kill(process.Id, 15)); // SIGTERM
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            Assert.Equal(0, process.ExitCode);
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
    }
}
