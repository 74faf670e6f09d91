namespace ViTGen;

/// <summary>
/// The instance members every <c>[VitModel]</c> class has, as an interface the serving layer can call: declare it on
/// the partial class (<c>public partial class MyVit : IVitModel&lt;MyVit&gt;;</c>) and the generated members implement it.
/// </summary>
public interface IVitModel : IDisposable
{
    /// <summary>Runs <paramref name="batch"/> images of normalized NCHW pixels; <paramref name="output"/> receives their logits.</summary>
    /// <param name="pixels"><c>batch * InputSize</c> floats.</param>
    /// <param name="output"><c>batch * OutputSize</c> floats.</param>
    /// <param name="batch">The number of images.</param>
    void Forward(ReadOnlySpan<float> pixels, Span<float> output, int batch = 1);

    /// <summary>Runs <paramref name="batch"/> images; <paramref name="pooled"/> receives their pre-logits features.</summary>
    /// <param name="pixels"><c>batch * InputSize</c> floats.</param>
    /// <param name="pooled"><c>batch * PooledSize</c> floats.</param>
    /// <param name="batch">The number of images.</param>
    void ForwardPooled(ReadOnlySpan<float> pixels, Span<float> pooled, int batch = 1);
}

/// <summary>
/// <see cref="IVitModel"/> plus the static members of a generated model (its architecture and loader), so
/// <c>AddVitModel&lt;TModel&gt;(weightsPath)</c> can load it knowing only its type.
/// </summary>
/// <typeparam name="TSelf">The generated model class itself.</typeparam>
public interface IVitModel<TSelf> : IVitModel where TSelf : IVitModel<TSelf>
{
    /// <summary>The attribute's arguments (shapes, pooling, classes), as the generator emits them.</summary>
    static abstract VitArchitecture Architecture { get; }

    /// <summary>Loads the model's weights from a safetensors checkpoint.</summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">Threads and checkpoint options; null for the defaults.</param>
    static abstract TSelf Load(string path, VitOptions? options);
}
