namespace ViTGen.Tests.Parity;

// One compiled model per PyTorch fixture (tests/fixtures/parity/README.md lists the same attributes).
// IParityModel only gives the tests one way to call them; the generator knows nothing about it.

[VitModel(patch: 4, dim: 64, depth: 2, heads: 4, imageSize: 32, classes: 10)] public partial class FixtureBasic : IParityModel;
[VitModel(patch: 7, dim: 48, depth: 3, heads: 3, imageSize: 28, channels: 1, classes: 7, mlpDim: 100, qkvBias: false)] public partial class FixtureGray : IParityModel;
[VitModel(patch: 16, dim: 96, depth: 2, heads: 2, imageSize: 48, classes: 1000)] public partial class FixtureWidePatch : IParityModel;
[VitModel(patch: 8, dim: 80, depth: 2, heads: 5, imageSize: 40, classes: 3, mlpDim: 200)] public partial class FixtureOdd : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 0)] public partial class FixtureNoHead : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, pooling: VitPooling.Avg)] public partial class FixtureAvgPool : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, classToken: false, pooling: VitPooling.Avg)] public partial class FixtureAvgNoCls : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, activation: VitActivation.GeluTanh)] public partial class FixtureGeluTanh : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, activation: VitActivation.QuickGelu)] public partial class FixtureQuickGelu : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, activation: VitActivation.Relu)] public partial class FixtureRelu : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, normEps: 1e-5f)] public partial class FixtureEps5 : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, layerScale: true)] public partial class FixtureLayerscale : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, registers: 4)] public partial class FixtureRegisters : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, registers: 4, noEmbedClass: true)] public partial class FixtureRegistersNoembed : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, preNorm: true)] public partial class FixturePrenorm : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, distilled: true)] public partial class FixtureDistilled : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 0, layerScale: true, registers: 4, noEmbedClass: true)] public partial class FixtureComboDinov2 : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, pooling: VitPooling.Avg, registers: 2)] public partial class FixtureComboAvgReg : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 5, activation: VitActivation.QuickGelu, normEps: 1e-5f, preNorm: true)] public partial class FixtureComboClip : IParityModel;
[VitModel(patch: 5, dim: 36, depth: 2, heads: 3, imageSize: 35, classes: 10)] public partial class FixtureHd12 : IParityModel;
[VitModel(patch: 32, dim: 32, depth: 2, heads: 2, imageSize: 64, channels: 1, classes: 10)] public partial class FixturePatch32 : IParityModel;

internal static class ParityModels
{
    public static readonly IReadOnlyDictionary<string, Func<string, VitOptions?, IParityModel>> Load =
        new Dictionary<string, Func<string, VitOptions?, IParityModel>>(StringComparer.Ordinal)
        {
            ["basic"] = (path, options) => FixtureBasic.Load(path, options),
            ["gray"] = (path, options) => FixtureGray.Load(path, options),
            ["wide_patch"] = (path, options) => FixtureWidePatch.Load(path, options),
            ["odd"] = (path, options) => FixtureOdd.Load(path, options),
            ["no_head"] = (path, options) => FixtureNoHead.Load(path, options),
            ["avg_pool"] = (path, options) => FixtureAvgPool.Load(path, options),
            ["avg_no_cls"] = (path, options) => FixtureAvgNoCls.Load(path, options),
            ["gelu_tanh"] = (path, options) => FixtureGeluTanh.Load(path, options),
            ["quick_gelu"] = (path, options) => FixtureQuickGelu.Load(path, options),
            ["relu"] = (path, options) => FixtureRelu.Load(path, options),
            ["eps5"] = (path, options) => FixtureEps5.Load(path, options),
            ["layerscale"] = (path, options) => FixtureLayerscale.Load(path, options),
            ["registers"] = (path, options) => FixtureRegisters.Load(path, options),
            ["registers_noembed"] = (path, options) => FixtureRegistersNoembed.Load(path, options),
            ["prenorm"] = (path, options) => FixturePrenorm.Load(path, options),
            ["distilled"] = (path, options) => FixtureDistilled.Load(path, options),
            ["combo_dinov2"] = (path, options) => FixtureComboDinov2.Load(path, options),
            ["combo_avg_reg"] = (path, options) => FixtureComboAvgReg.Load(path, options),
            ["combo_clip"] = (path, options) => FixtureComboClip.Load(path, options),
            ["hd12"] = (path, options) => FixtureHd12.Load(path, options),
            ["patch32"] = (path, options) => FixturePatch32.Load(path, options),
        };
}
