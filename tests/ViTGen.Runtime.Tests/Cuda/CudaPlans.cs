using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Cuda;

/// <summary>
/// Every parity fixture's generated GPU plan (the <c>CudaPlan</c> struct in <c>{Model}.CudaPlan.g.cs</c>), as functions
/// the tests can call by fixture name.
/// </summary>
internal static class CudaPlans
{
    /// <summary>Runs the plan on the CPU executor: (weights path, pixels, batch) to the output.</summary>
    public static readonly IReadOnlyDictionary<string, Func<string, float[], int, float[]>> OnCpu =
        new Dictionary<string, Func<string, float[], int, float[]>>(StringComparer.Ordinal)
        {
            ["basic"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureBasic.CudaPlan>(path, pixels, batch),
            ["gray"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureGray.CudaPlan>(path, pixels, batch),
            ["wide_patch"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureWidePatch.CudaPlan>(path, pixels, batch),
            ["odd"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureOdd.CudaPlan>(path, pixels, batch),
            ["no_head"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureNoHead.CudaPlan>(path, pixels, batch),
            ["avg_pool"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureAvgPool.CudaPlan>(path, pixels, batch),
            ["avg_no_cls"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureAvgNoCls.CudaPlan>(path, pixels, batch),
            ["gelu_tanh"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureGeluTanh.CudaPlan>(path, pixels, batch),
            ["quick_gelu"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureQuickGelu.CudaPlan>(path, pixels, batch),
            ["relu"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureRelu.CudaPlan>(path, pixels, batch),
            ["eps5"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureEps5.CudaPlan>(path, pixels, batch),
            ["layerscale"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureLayerscale.CudaPlan>(path, pixels, batch),
            ["registers"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureRegisters.CudaPlan>(path, pixels, batch),
            ["registers_noembed"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureRegistersNoembed.CudaPlan>(path, pixels, batch),
            ["prenorm"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixturePrenorm.CudaPlan>(path, pixels, batch),
            ["distilled"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureDistilled.CudaPlan>(path, pixels, batch),
            ["combo_dinov2"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureComboDinov2.CudaPlan>(path, pixels, batch),
            ["combo_avg_reg"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureComboAvgReg.CudaPlan>(path, pixels, batch),
            ["combo_clip"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureComboClip.CudaPlan>(path, pixels, batch),
            ["hd12"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixtureHd12.CudaPlan>(path, pixels, batch),
            ["patch32"] = (path, pixels, batch) => CpuPlanExecutor.Forward<FixturePatch32.CudaPlan>(path, pixels, batch),
        };

    /// <summary>Loads the model onto the GPU with its generated <c>LoadCuda</c>.</summary>
    public static readonly IReadOnlyDictionary<string, Func<string, VitCudaModel>> OnDevice =
        new Dictionary<string, Func<string, VitCudaModel>>(StringComparer.Ordinal)
        {
            ["basic"] = path => FixtureBasic.LoadCuda(path),
            ["gray"] = path => FixtureGray.LoadCuda(path),
            ["wide_patch"] = path => FixtureWidePatch.LoadCuda(path),
            ["odd"] = path => FixtureOdd.LoadCuda(path),
            ["no_head"] = path => FixtureNoHead.LoadCuda(path),
            ["avg_pool"] = path => FixtureAvgPool.LoadCuda(path),
            ["avg_no_cls"] = path => FixtureAvgNoCls.LoadCuda(path),
            ["gelu_tanh"] = path => FixtureGeluTanh.LoadCuda(path),
            ["quick_gelu"] = path => FixtureQuickGelu.LoadCuda(path),
            ["relu"] = path => FixtureRelu.LoadCuda(path),
            ["eps5"] = path => FixtureEps5.LoadCuda(path),
            ["layerscale"] = path => FixtureLayerscale.LoadCuda(path),
            ["registers"] = path => FixtureRegisters.LoadCuda(path),
            ["registers_noembed"] = path => FixtureRegistersNoembed.LoadCuda(path),
            ["prenorm"] = path => FixturePrenorm.LoadCuda(path),
            ["distilled"] = path => FixtureDistilled.LoadCuda(path),
            ["combo_dinov2"] = path => FixtureComboDinov2.LoadCuda(path),
            ["combo_avg_reg"] = path => FixtureComboAvgReg.LoadCuda(path),
            ["combo_clip"] = path => FixtureComboClip.LoadCuda(path),
            ["hd12"] = path => FixtureHd12.LoadCuda(path),
            ["patch32"] = path => FixturePatch32.LoadCuda(path),
        };

    public static TheoryData<string> Names()
    {
        var data = new TheoryData<string>();
        foreach (var name in OnCpu.Keys.Order(StringComparer.Ordinal)) data.Add(name);
        return data;
    }
}
