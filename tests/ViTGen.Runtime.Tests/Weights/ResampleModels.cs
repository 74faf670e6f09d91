using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Weights;

// The compiled models of the resampling fixtures (tests/fixtures/make_resample_fixtures.py, CASES) whose grid no
// parity fixture has: 7x7 targets for checkpoints at 4x4, and a single patch. The 4x4 targets are the parity models.

[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 28, classes: 10)] public partial class ResampleUpCls : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 28, classes: 0, layerScale: true, registers: 4, noEmbedClass: true)] public partial class ResampleUpDinov2 : IParityModel;
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 4, classes: 10)] public partial class ResampleOnePatch : IParityModel;
