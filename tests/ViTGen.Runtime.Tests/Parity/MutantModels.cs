namespace ViTGen.Tests.Parity;

// The `sensitive` fixture (tests/fixtures/make_fixtures.py, MUTATION_FIXTURES) compiled with its right attribute
// and with deliberately wrong ones. It is not in ParityModels.Load (nor fixtures.json): MutantTests covers it.

[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, registers: 2)] public partial class FixtureSensitive : IParityModel;

// LayerNorm eps 1e-5 where the fixture was made with timm's default 1e-6.
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, normEps: 1e-5f, registers: 2)] public partial class MutantSensitiveEps5 : IParityModel;

// tanh-approximate GELU where the fixture uses exact (erf) GELU.
[VitModel(patch: 4, dim: 24, depth: 2, heads: 2, imageSize: 16, classes: 10, activation: VitActivation.GeluTanh, registers: 2)] public partial class MutantSensitiveGeluTanh : IParityModel;
