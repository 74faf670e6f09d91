using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using ViTGen.Generator.Model;

namespace ViTGen.Generator.Lowering;

/// <summary>
/// A hybrid's patch embedding, timm's <c>HybridEmbed</c> over <c>_resnetv2(layers, padding_same=True)</c>: the ResNetV2
/// trunk (stem conv, GroupNorm + ReLU, max pool, then non-preact bottlenecks) on channels-last feature maps, and the
/// patch projection of its output into the token rows. Every convolution is a GEMM: 1x1 stride-1 ones multiply the
/// map itself, the others an unfolded copy in <see cref="Columns"/>.
/// </summary>
internal static class HybridLowering
{
    // Buffer names: the image channels-last, the unfolded receptive fields, two maps the blocks ping-pong between, a
    // projected shortcut and the two inner maps of a bottleneck.
    private const string Pixels = "Pixels", Columns = "Columns", MapA = "MapA", MapB = "MapB", Shortcut = "Shortcut";
    private const string Inner1 = "Inner1", Inner2 = "Inner2";

    /// <summary>The trunk's operations, ending with the patch projection into <paramref name="tokens"/> from row <paramref name="firstRow"/>; its buffers added to <paramref name="buffers"/>.</summary>
    public static List<Operation> Embed(VitModelSpec s, WeightManifest weights, string tokens, Extent firstRow, List<BufferInfo> buffers)
    {
        var floats = new Dictionary<string, long>();
        var operations = new List<Operation>();
        var backbone = weights.Backbone.ToDictionary(p => p.Key);

        void Use(string buffer, long size) => floats[buffer] = floats.TryGetValue(buffer, out long seen) ? System.Math.Max(seen, size) : size;

        // A 'same' convolution of `input` (size² pixels) into `output`; returns the output's side.
        int Convolve(WeightParameter weight, string input, int size, string output, Extent outputRow, int stride)
        {
            int kernel = weight.Shape[2], channels = weight.Shape[1];
            int outputSize = HybridGeometry.SameOutput(size, stride);
            string source = input;
            if (kernel != 1 || stride != 1)
            {
                operations.Add(new UnfoldMap(input, size, channels, kernel, stride, Columns));
                Use(Columns, (long)outputSize * outputSize * kernel * kernel * channels);
                source = Columns;
            }
            var rows = output == tokens ? new Extent(s.NumPatches, "NumPatches") : Extent.Literal(outputSize * outputSize);
            operations.Add(new Linear(weight.Name, weight, source, Extent.Literal(0), output, outputRow, rows, Epilogue.Store));
            if (output != tokens) Use(output, (long)outputSize * outputSize * weight.OutFeatures);
            return outputSize;
        }

        void Norm(string key, string buffer, int size, GroupNormEnd end, string? residual = null)
        {
            var norm = backbone[key];
            operations.Add(new GroupNorm(norm.Name, norm, buffer, size * size, end, residual));
        }

        var zero = Extent.Literal(0);
        operations.Add(new ChannelsLast(Pixels));
        Use(Pixels, (long)s.Channels * s.ImageSize * s.ImageSize);
        int side = Convolve(backbone["StemConv"], Pixels, s.ImageSize, MapA, zero, 2);
        Norm("StemNorm", MapA, side, GroupNormEnd.Relu);
        operations.Add(new MaxPool(MapA, side, s.HybridWidth, MapB));
        side = HybridGeometry.SameOutput(side, 2);
        Use(MapB, (long)side * side * s.HybridWidth);

        string current = MapB;
        for (int stage = 0; stage < s.HybridLayers.Count; stage++)
        {
            for (int block = 0; block < s.HybridLayers[stage]; block++)
            {
                string key = "Stage" + stage.ToString(CultureInfo.InvariantCulture) + "Block" + block.ToString(CultureInfo.InvariantCulture);
                int stride = block == 0 ? HybridGeometry.StageStride(stage) : 1;
                string next = current == MapA ? MapB : MapA;
                string shortcut = current;
                if (block == 0)
                {
                    int projected = Convolve(backbone[key + "DownsampleConv"], current, side, Shortcut, zero, stride);
                    Norm(key + "DownsampleNorm", Shortcut, projected, GroupNormEnd.None);
                    shortcut = Shortcut;
                }
                Convolve(backbone[key + "Conv1"], current, side, Inner1, zero, 1);
                Norm(key + "Norm1", Inner1, side, GroupNormEnd.Relu);
                int output = Convolve(backbone[key + "Conv2"], Inner1, side, Inner2, zero, stride);
                Norm(key + "Norm2", Inner2, output, GroupNormEnd.Relu);
                Convolve(backbone[key + "Conv3"], Inner2, output, next, zero, 1);
                Norm(key + "Norm3", next, output, GroupNormEnd.AddRelu, shortcut);
                current = next;
                side = output;
            }
        }
        Convolve(weights.Embedding[0], current, side, tokens, firstRow, s.Patch);

        string[] order = { Pixels, Columns, MapA, MapB, Shortcut, Inner1, Inner2 };
        string[] comments =
        {
            "the image, channels-last", "unfolded receptive fields of the trunk's convolutions", "trunk feature map",
            "trunk feature map", "a stage's projected shortcut", "bottleneck conv1 output", "bottleneck conv2 output",
        };
        for (int i = 0; i < order.Length; i++)
        {
            if (floats.TryGetValue(order[i], out long size))
                buffers.Add(new BufferInfo(order[i], Extent.Literal(1), Extent.Literal(checked((int)size)), comments[i]));
        }
        return operations;
    }

    /// <summary>What the trunk is, for the stage's summary: "R50 trunk (stages 3, 4, 9; width 64)".</summary>
    public static string Describe(VitModelSpec s)
        => s.HybridLayers.Count == 0
            ? $"ResNetV2 stem (width {s.HybridWidth})"
            : $"ResNetV2 trunk (stages {string.Join(", ", s.HybridLayers.Select(l => l.ToString(CultureInfo.InvariantCulture)))}; width {s.HybridWidth})";
}
