namespace ViTGen.Tests.Parity;

// One compiled hybrid per fixture of tests/fixtures/make_hybrid_fixtures.py (tests/fixtures/hybrid/README.md lists the same attributes).
[VitModel(patch: 2, dim: 32, depth: 1, heads: 2, imageSize: 72, classes: 10, hybridLayers: new int[0], hybridWidth: 32)] public partial class HybridStem : IParityModel;
[VitModel(patch: 1, dim: 32, depth: 1, heads: 2, imageSize: 50, classes: 7, hybridLayers: new int[0])] public partial class HybridStemW64 : IParityModel;
[VitModel(patch: 1, dim: 32, depth: 1, heads: 2, imageSize: 50, classes: 5, hybridLayers: new[] { 1 })] public partial class HybridR1 : IParityModel;
[VitModel(patch: 1, dim: 32, depth: 1, heads: 2, imageSize: 72, classes: 10, hybridLayers: new[] { 2, 1 }, hybridWidth: 32)] public partial class HybridR21 : IParityModel;
[VitModel(patch: 1, dim: 32, depth: 1, heads: 2, imageSize: 33, classes: 6, hybridLayers: new[] { 1, 1, 1 }, hybridWidth: 32)] public partial class HybridR111 : IParityModel;

internal static class HybridModels
{
    public static readonly IReadOnlyDictionary<string, Func<string, VitOptions?, IParityModel>> Load =
        new Dictionary<string, Func<string, VitOptions?, IParityModel>>(StringComparer.Ordinal)
        {
            ["hybrid_r1"] = (path, options) => HybridR1.Load(path, options),
            ["hybrid_r111"] = (path, options) => HybridR111.Load(path, options),
            ["hybrid_r21"] = (path, options) => HybridR21.Load(path, options),
            ["hybrid_stem"] = (path, options) => HybridStem.Load(path, options),
            ["hybrid_stem_w64"] = (path, options) => HybridStemW64.Load(path, options),
        };
}
