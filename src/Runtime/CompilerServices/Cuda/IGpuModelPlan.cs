namespace ViTGen.CompilerServices;

/// <summary>
/// The GPU forward of one compiled model, implemented by a struct the generator emits in <c>{Model}.CudaPlan.g.cs</c>:
/// its arena layout, how the checkpoint's tensors fill the weight region, and the plan of a batch. Static
/// members, so the runtime reaches them through a type parameter without an instance. Used by generated code.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IGpuModelPlan
{
    /// <summary>Where weights, inputs and outputs sit in the arena.</summary>
    static abstract GpuArenaLayout Layout { get; }

    /// <summary>Reads every tensor of the checkpoint into its place in <paramref name="weights"/> (the weight region).</summary>
    static abstract void ReadWeights(CheckpointReader checkpoint, GpuWeightImage weights);

    /// <summary>The forward pass of <paramref name="batch"/> images.</summary>
    static abstract GpuPlan Build(int batch);
}
