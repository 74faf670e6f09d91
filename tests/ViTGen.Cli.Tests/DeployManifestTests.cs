using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using YamlDotNet.RepresentationModel;

namespace ViTGen.Cli.Tests;

/// <summary>
/// deploy/: no container daemon or cluster runs here, so each file is checked against what it must agree with: every
/// manifest parses as YAML and has the fields Kubernetes needs (probes on /healthz, resources, the HPA's target, the
/// Job's Indexed mode), the Dockerfile's publish command and entrypoint match the CLI project and its options, and the
/// batch Job's own arguments are run, shard by shard, against a copy of its volumes.
/// </summary>
[Collection(nameof(Console))]
public sealed class DeployManifestTests : IDisposable
{
    private static readonly string Deploy = Path.Combine(BatchClassifyTests.RepositoryRoot(), "deploy");

    private readonly string _directory = Directory.CreateTempSubdirectory("vitgen-deploy-tests").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Every document of every deploy/*.yaml, by kind.</summary>
    private static readonly Lazy<List<(string File, YamlMappingNode Root)>> Manifests = new(() =>
    {
        var manifests = new List<(string, YamlMappingNode)>();
        foreach (var file in Directory.GetFiles(Deploy, "*.yaml").Order(StringComparer.Ordinal))
        {
            var stream = new YamlStream();
            using (var reader = new StreamReader(file)) stream.Load(reader);
            foreach (var document in stream.Documents) manifests.Add((Path.GetFileName(file), (YamlMappingNode)document.RootNode));
        }
        return manifests;
    });

    private static YamlMappingNode Single(string kind) => Manifests.Value.Single(m => Scalar(m.Root, "kind") == kind).Root;

    /// <summary>The node at <paramref name="path"/> (mapping keys, or sequence indexes); fails the test when absent.</summary>
    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (var step in path)
        {
            node = step switch
            {
                string key => ((YamlMappingNode)node).Children.TryGetValue(new YamlScalarNode(key), out var child)
                    ? child : throw new Xunit.Sdk.XunitException($"no '{key}' in {node.Start}"),
                int index => ((YamlSequenceNode)node).Children[index],
                _ => throw new ArgumentException(step.ToString()),
            };
        }
        return node;
    }

    private static bool Has(YamlNode node, string key) => ((YamlMappingNode)node).Children.ContainsKey(new YamlScalarNode(key));

    private static string Scalar(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static string[] Strings(YamlNode node, params object[] path) =>
        [.. ((YamlSequenceNode)At(node, path)).Children.Select(c => ((YamlScalarNode)c).Value!)];

    private static string ArgAfter(string[] args, string option) => args[Array.IndexOf(args, option) + 1];

    private static YamlNode Container(YamlMappingNode workload) => At(workload, "spec", "template", "spec", "containers", 0);

    [Fact]
    public void EveryManifestParsesWithItsApiVersionKindAndName()
    {
        var expected = new Dictionary<string, string>
        {
            ["Deployment"] = "apps/v1", ["Service"] = "v1", ["HorizontalPodAutoscaler"] = "autoscaling/v2",
            ["Job"] = "batch/v1", ["PersistentVolumeClaim"] = "v1",
        };
        Assert.Equal(["batch-job.yaml", "deployment.yaml", "hpa.yaml", "service.yaml", "storage.yaml"], Manifests.Value.Select(m => m.File).Distinct());
        foreach (var (file, root) in Manifests.Value)
        {
            string kind = Scalar(root, "kind");
            Assert.True(expected.ContainsKey(kind), $"{file}: unexpected kind {kind}");
            Assert.Equal(expected[kind], Scalar(root, "apiVersion"));
            Assert.Matches("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", Scalar(root, "metadata", "name"));
        }
        Assert.Equal(expected.Keys.Order(), Manifests.Value.Select(m => Scalar(m.Root, "kind")).Distinct().Order());
    }

    [Fact]
    public void TheDeploymentProbesHealthzOnTheServedPortWithResourcesAndThreadsForItsCpus()
    {
        var deployment = Single("Deployment");
        var container = Container(deployment);
        var ports = (YamlSequenceNode)At(container, "ports");
        var http = Assert.Single(ports.Children);
        Assert.Equal("http", Scalar(http, "name"));
        Assert.Equal(Dockerfile.ExposedPort.ToString(), Scalar(http, "containerPort"));
        Assert.Equal(Dockerfile.ExposedPort, Dockerfile.ServedPort);
        foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
        {
            Assert.Equal("/healthz", Scalar(container, probe, "httpGet", "path"));
            Assert.Equal("http", Scalar(container, probe, "httpGet", "port"));
        }
        foreach (var bound in new[] { "requests", "limits" })
        {
            Assert.True(Has(At(container, "resources", bound), "cpu"), bound);
            Assert.True(Has(At(container, "resources", bound), "memory"), bound);
        }
        // One forward-pass thread per CPU of the limit (a whole number, so the pod can have whole cores).
        var args = Strings(container, "args");
        Assert.Equal(Scalar(container, "resources", "limits", "cpu"), ArgAfter(args, "--threads"));
        Assert.DoesNotContain("--urls", args); // the image's entrypoint has it
        // The selector picks the template's pods; the image runs as the Dockerfile's non-root user.
        Assert.Equal(Scalar(deployment, "spec", "selector", "matchLabels", "app.kubernetes.io/name"), Scalar(deployment, "spec", "template", "metadata", "labels", "app.kubernetes.io/name"));
        Assert.Equal("true", Scalar(deployment, "spec", "template", "spec", "securityContext", "runAsNonRoot"));
        Assert.Equal(Dockerfile.User, Scalar(deployment, "spec", "template", "spec", "securityContext", "runAsUser"));
        Assert.Equal("--model", args[0]);
        Assert.Equal(Scalar(container, "volumeMounts", 0, "mountPath"), args[1]);
    }

    [Fact]
    public void TheServiceSendsToTheDeploymentsHttpPort()
    {
        var service = Single("Service");
        var deployment = Single("Deployment");
        var selector = (YamlMappingNode)At(service, "spec", "selector");
        var labels = (YamlMappingNode)At(deployment, "spec", "template", "metadata", "labels");
        Assert.NotEmpty(selector.Children);
        foreach (var (key, value) in selector.Children) Assert.Equal(value, labels.Children[key]);
        Assert.Equal("http", Scalar(service, "spec", "ports", 0, "targetPort"));
    }

    [Fact]
    public void TheAutoscalerScalesTheDeploymentOnCpuUtilization()
    {
        var hpa = Single("HorizontalPodAutoscaler");
        var deployment = Single("Deployment");
        Assert.Equal("Deployment", Scalar(hpa, "spec", "scaleTargetRef", "kind"));
        Assert.Equal(Scalar(deployment, "apiVersion"), Scalar(hpa, "spec", "scaleTargetRef", "apiVersion"));
        Assert.Equal(Scalar(deployment, "metadata", "name"), Scalar(hpa, "spec", "scaleTargetRef", "name"));
        var metric = At(hpa, "spec", "metrics", 0);
        Assert.Equal("Resource", Scalar(metric, "type"));
        Assert.Equal("cpu", Scalar(metric, "resource", "name"));
        Assert.Equal("Utilization", Scalar(metric, "resource", "target", "type"));
        Assert.InRange(int.Parse(Scalar(metric, "resource", "target", "averageUtilization")), 1, 100);
        Assert.InRange(int.Parse(Scalar(hpa, "spec", "minReplicas")), 1, int.Parse(Scalar(hpa, "spec", "maxReplicas")));
        // Utilization is measured against the request: without one the HPA has nothing to compute.
        Assert.True(Has(At(Container(deployment), "resources", "requests"), "cpu"));
    }

    [Fact]
    public void TheBatchJobIsIndexedWithOneShardPerIndexAndResumes()
    {
        var job = Single("Job");
        var spec = At(job, "spec");
        Assert.Equal("Indexed", Scalar(spec, "completionMode"));
        int completions = int.Parse(Scalar(spec, "completions"));
        Assert.InRange(int.Parse(Scalar(spec, "parallelism")), 1, completions);
        Assert.Equal("Never", Scalar(spec, "template", "spec", "restartPolicy"));
        var container = Container(job);
        var args = Strings(container, "args");
        Assert.Equal($"$(SHARD_INDEX)/{completions}", ArgAfter(args, "--shard"));
        Assert.Contains("$(SHARD_INDEX)", ArgAfter(args, "--output"));
        Assert.Contains("--resume", args);
        var env = At(container, "env", 0);
        Assert.Equal("SHARD_INDEX", Scalar(env, "name"));
        Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']", Scalar(env, "valueFrom", "fieldRef", "fieldPath"));
        Assert.Equal([Dockerfile.Entrypoint[0], "classify"], Strings(container, "command"));
        Assert.Equal(Scalar(container, "resources", "limits", "cpu"), ArgAfter(args, "--threads"));

        // Every path the arguments name is on a mounted volume, and every claim is one storage.yaml defines.
        var mounts = ((YamlSequenceNode)At(container, "volumeMounts")).Children.Select(m => Scalar(m, "mountPath")).ToArray();
        foreach (var option in new[] { "--model", "--input-list", "--output" })
            Assert.Contains(mounts, m => ArgAfter(args, option).StartsWith(m + "/", StringComparison.Ordinal) || ArgAfter(args, option) == m);
        var claims = Manifests.Value.Where(m => Scalar(m.Root, "kind") == "PersistentVolumeClaim").Select(m => Scalar(m.Root, "metadata", "name")).ToHashSet();
        foreach (var volume in ((YamlSequenceNode)At(spec, "template", "spec", "volumes")).Children)
            Assert.Contains(Scalar(volume, "persistentVolumeClaim", "claimName"), claims);
        Assert.Contains(Scalar(Single("Deployment"), "spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName"), claims);
    }

    [Fact]
    public void TheBatchJobsArgumentsRunAsShardsThatTogetherClassifyTheList()
    {
        // The Job's volumes, here: /models with the bundled model's files, /data with a list and the bundled samples.
        var job = Single("Job");
        var args = Strings(Container(job), "args");
        int completions = int.Parse(Scalar(job, "spec", "completions"));
        string models = Path.Combine(_directory, "models"), data = Path.Combine(_directory, "data");
        Directory.CreateDirectory(models);
        Directory.CreateDirectory(Path.Combine(data, "images"));
        string samples = Path.Combine(BatchClassifyTests.RepositoryRoot(), "samples", "fashion-mnist");
        foreach (var file in new[] { "model.json", "model.safetensors" }) File.Copy(Path.Combine(samples, file), Path.Combine(models, file));
        var paths = new List<string>();
        foreach (var (sample, copy) in Directory.GetFiles(Path.Combine(samples, "samples")).SelectMany(s => Enumerable.Range(0, 5).Select(c => (s, c))))
        {
            string path = $"images/{copy}-{Path.GetFileName(sample)}";
            File.Copy(sample, Path.Combine(data, path));
            paths.Add(path);
        }
        File.WriteAllLines(Path.Combine(data, "list.txt"), paths);
        string[] Local(string index) => [.. args.Select(a => a.Replace("$(SHARD_INDEX)", index).Replace("/models", models).Replace("/data", data))];

        // Each index as its pod would run it, then each again as a retried pod: nothing changes the second time.
        var records = new List<string>();
        for (int index = 0; index < completions; index++)
        {
            var run = CliRunner.Run(["classify", .. Local(index.ToString())]);
            Assert.True(run.ExitCode == 0, run.Error);
            string output = ArgAfter(Local(index.ToString()), "--output");
            var before = File.ReadAllBytes(output);
            Assert.Equal(0, CliRunner.Run(["classify", .. Local(index.ToString())]).ExitCode);
            Assert.Equal(before, File.ReadAllBytes(output));
            records.AddRange(File.ReadAllLines(output));
        }
        var classified = records.Select(r => JsonDocument.Parse(r).RootElement).ToArray();
        Assert.Equal(paths.Order(StringComparer.Ordinal), classified.Select(r => r.GetProperty("path").GetString()).Order(StringComparer.Ordinal));
        Assert.All(classified, r => Assert.Equal(CommandTests.LabelOfSampleName(Path.GetFileName(r.GetProperty("path").GetString()!)[2..]), r.GetProperty("label").GetString()));

        // An index past the shards is a usage error, exit 2: the code the Job's pod failure policy fails the Job on.
        var wrong = CliRunner.Run(["classify", .. Local(completions.ToString())]);
        Assert.Equal(2, wrong.ExitCode);
        var failJob = ((YamlSequenceNode)At(job, "spec", "podFailurePolicy", "rules")).Children.Single(r => Scalar(r, "action") == "FailJob");
        Assert.Equal([wrong.ExitCode.ToString()], Strings(failJob, "onExitCodes", "values"));
        Assert.Equal(Scalar(Container(job), "name"), Scalar(failJob, "onExitCodes", "containerName"));
    }

    [Fact]
    public void TheDockerfilePublishesTheCliAsNativeAotAndRunsServe()
    {
        var project = XDocument.Load(Path.Combine(BatchClassifyTests.RepositoryRoot(), "src", "Cli", "ViTGen.Cli.csproj"));
        string[] Property(string name) => [.. project.Descendants(name).Select(e => e.Value)];
        var publish = Dockerfile.Publish;
        Assert.Equal(["dotnet", "publish", "src/Cli"], publish[..3]);
        Assert.True(Directory.Exists(Path.Combine(BatchClassifyTests.RepositoryRoot(), publish[2])));
        string framework = ArgAfter(publish, "-f");
        Assert.Contains(framework, Property("TargetFrameworks").Concat(Property("TargetFramework")).SelectMany(f => f.Split(';')));
        Assert.Equal("Release", ArgAfter(publish, "-c"));
        Assert.Equal("linux-x64", ArgAfter(publish, "-r"));
        // NativeAOT for that framework: set by the project itself, or asked for with the project's AotTarget switch.
        bool aotByProject = project.Descendants("PublishAot").Any(e => e.Value == "true" && e.Parent!.Attribute("Condition") is null);
        bool aotByCommand = publish.Contains($"-p:AotTarget={framework}") && project.ToString().Contains("'$(AotTarget)'", StringComparison.Ordinal);
        Assert.True(aotByProject || aotByCommand, string.Join(' ', publish));
        Assert.DoesNotContain("-p:PublishAot=true", publish); // global: it would reach the generator project too (NETSDK1207)
        // The final stage copies the publish folder; the entrypoint is the project's binary in it.
        Assert.Equal(ArgAfter(publish, "-o").TrimEnd('/'), Dockerfile.CopiedPublish.From.TrimEnd('/'));
        Assert.Equal(Dockerfile.CopiedPublish.To.TrimEnd('/') + "/" + Property("AssemblyName").Single(), Dockerfile.Entrypoint[0]);
        Assert.Equal(["serve", "--urls", $"http://0.0.0.0:{Dockerfile.ExposedPort}"], Dockerfile.Entrypoint[1..]);
        Assert.StartsWith("mcr.microsoft.com/dotnet/runtime-deps:10.0", Dockerfile.RuntimeBase);
        Assert.NotEqual("0", Dockerfile.User);
        Assert.Matches("^[0-9]+$", Dockerfile.User); // numeric: runAsNonRoot can check it
    }

    /// <summary>
    /// The command the image runs has every option the entrypoint and the Deployment pass. Read from the command's
    /// help: parsing with --help reports no errors (System.CommandLine lets help win), so the test looks for the
    /// command's own usage line and each option in it.
    /// </summary>
    [Fact]
    public void TheEntrypointAndTheDeploymentsArgumentsAreOptionsOfTheServeCommand()
    {
        var entrypoint = Dockerfile.Entrypoint;
        var result = CliRunner.Run(entrypoint[1], "--help");
        Assert.Equal(0, result.ExitCode);
        // The usage line names the root command after the process, which differs in-process (the test host).
        Assert.Matches($@"(?m)^\s+\S+ {Regex.Escape(entrypoint[1])} \[options\]", result.Out);
        var options = entrypoint.Concat(Strings(Container(Single("Deployment")), "args")).Where(a => a.StartsWith("--", StringComparison.Ordinal)).ToArray();
        Assert.Contains("--urls", options);
        foreach (var option in options) Assert.Matches($@"(?m)^\s+(-\w+, )?{Regex.Escape(option)}\b", result.Out);
    }

    /// <summary>deploy/Dockerfile, read the way Docker reads it (line continuations, comments, exec-form JSON).</summary>
    private static class Dockerfile
    {
        private static readonly Lazy<List<(string Instruction, string Arguments)>> Instructions = new(() =>
        {
            var instructions = new List<(string, string)>();
            string pending = "";
            foreach (var raw in File.ReadAllLines(Path.Combine(Deploy, "Dockerfile")))
            {
                string line = raw.Trim();
                if (line.StartsWith('#') || (line.Length == 0 && pending.Length == 0)) continue;
                if (line.EndsWith('\\'))
                {
                    pending += line[..^1] + " ";
                    continue;
                }
                line = pending + line;
                pending = "";
                int space = line.IndexOf(' ');
                instructions.Add((line[..space].ToUpperInvariant(), line[(space + 1)..].Trim()));
            }
            return instructions;
        });

        private static string Only(string instruction) => Instructions.Value.Single(i => i.Instruction == instruction).Arguments;

        /// <summary>The words of the <c>dotnet publish</c> command (up to a following <c>&amp;&amp;</c>).</summary>
        public static string[] Publish => [.. Instructions.Value.Single(i => i.Instruction == "RUN" && i.Arguments.StartsWith("dotnet publish", StringComparison.Ordinal))
            .Arguments.Split("&&")[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)];

        public static string[] Entrypoint => JsonSerializer.Deserialize<string[]>(Only("ENTRYPOINT"))!;

        public static int ExposedPort => int.Parse(Only("EXPOSE"));

        public static int ServedPort => new Uri(Entrypoint[Array.IndexOf(Entrypoint, "--urls") + 1]).Port;

        public static string User => Only("USER");

        public static (string From, string To) CopiedPublish
        {
            get
            {
                var match = Regex.Match(Instructions.Value.Single(i => i.Instruction == "COPY" && i.Arguments.StartsWith("--from=build", StringComparison.Ordinal)).Arguments, @"^--from=build (\S+) (\S+)$");
                Assert.True(match.Success);
                return (match.Groups[1].Value, match.Groups[2].Value);
            }
        }

        /// <summary>The base of the stage the entrypoint is in.</summary>
        public static string RuntimeBase
        {
            get
            {
                var list = Instructions.Value;
                int entrypoint = list.FindIndex(i => i.Instruction == "ENTRYPOINT");
                return list.Take(entrypoint).Last(i => i.Instruction == "FROM").Arguments.Split(' ')[0];
            }
        }
    }
}
