using System.Numerics.Tensors;
using System.Text.Json;

namespace ViTGen;

/// <summary>
/// Logits to a classification answer: softmax, the top classes, their labels, and the JSON fields <c>index</c>,
/// <c>label</c>, <c>probability</c> and <c>top</c>. The one implementation behind <c>vitgen classify --json</c>
/// and <c>POST /v1/classify</c>, so both write the same bytes for the same image.
/// </summary>
internal static class Classification
{
    /// <summary>Softmax of one image's logits, in place: its class probabilities.</summary>
    public static void Probabilities(Span<float> logits) => TensorPrimitives.SoftMax(logits, logits);

    /// <summary>The name of class <paramref name="index"/>, or <c>class N</c> past the end of <paramref name="labels"/>.</summary>
    public static string Label(IReadOnlyList<string> labels, int index) => index < labels.Count ? labels[index] : $"class {index}";

    /// <summary>The <paramref name="top"/> most probable classes, most probable first; ties keep the lower index first.</summary>
    public static int[] Rank(ReadOnlySpan<float> probabilities, int top)
    {
        var copy = probabilities.ToArray();
        return Enumerable.Range(0, copy.Length).OrderByDescending(i => copy[i]).Take(top).ToArray();
    }

    /// <summary>Writes the answer's fields into the object <paramref name="writer"/> is in.</summary>
    public static void WriteFields(Utf8JsonWriter writer, ReadOnlySpan<float> probabilities, int[] ranked, IReadOnlyList<string> labels)
    {
        writer.WriteNumber("index", ranked[0]);
        writer.WriteString("label", Label(labels, ranked[0]));
        writer.WriteNumber("probability", probabilities[ranked[0]]);
        writer.WriteStartArray("top");
        foreach (int i in ranked)
        {
            writer.WriteStartObject();
            writer.WriteNumber("index", i);
            writer.WriteString("label", Label(labels, i));
            writer.WriteNumber("probability", probabilities[i]);
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
    }
}
