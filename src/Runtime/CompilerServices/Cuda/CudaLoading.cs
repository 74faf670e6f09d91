namespace ViTGen.CompilerServices;

/// <summary>Loads a compiled model onto a GPU, or its weights into a host arena image. Used by generated code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static unsafe class CudaLoading
{
    /// <summary>
    /// Opens the GPU (loading the driver and cuBLAS first, so that a machine without them fails before the weights
    /// are read), reads the checkpoint into <typeparamref name="TPlan"/>'s weight layout and copies it to the device.
    /// </summary>
    /// <exception cref="VitCudaException">The driver, cuBLAS or a device is missing, or a CUDA call failed.</exception>
    /// <exception cref="VitWeightsException">The checkpoint does not match the model.</exception>
    public static VitCudaModel Load<TPlan>(string path, VitOptions? options) where TPlan : IGpuModelPlan
        => Load<TPlan>(path, options, CudaDevice.Open);

    /// <summary><see cref="Load{TPlan}(string, VitOptions?)"/> over the device <paramref name="open"/> opens (tests pass a fake driver).</summary>
    internal static VitCudaModel Load<TPlan>(string path, VitOptions? options, Func<VitCudaOptions, CudaDevice> open) where TPlan : IGpuModelPlan
    {
        ArgumentNullException.ThrowIfNull(path);
        var device = open(options?.Cuda ?? new VitCudaOptions());
        ulong weights = 0;
        try
        {
            using (var image = ReadWeights<TPlan>(path, options))
            using (device.Enter())
            {
                weights = device.Allocate(image.Length);
                // From pageable memory the driver stages the copy; the wait keeps the image alive until it is done.
                device.CopyToDeviceAsync(weights, image.Data, image.Length);
                device.Synchronize("the upload of the weights");
            }
            return new VitCudaModel(device, weights, TPlan.Layout, TPlan.Build);
        }
        catch
        {
            try
            {
                using (device.Enter()) device.Free(weights);
            }
            catch (VitCudaException)
            {
                // Already failing; the first error is the one to report.
            }
            device.Dispose();
            throw;
        }
    }

    /// <summary>Reads every tensor of the checkpoint into a new host image of <typeparamref name="TPlan"/>'s weight region.</summary>
    internal static GpuWeightImage ReadWeights<TPlan>(string path, VitOptions? options) where TPlan : IGpuModelPlan
    {
        using var checkpoint = WeightLoading.OpenCheckpoint(path, options);
        var image = new GpuWeightImage(TPlan.Layout.WeightFloats);
        try
        {
            TPlan.ReadWeights(checkpoint, image);
            checkpoint.EnsureAllRead();
            return image;
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }
}
