using System.Numerics.Tensors;
using ViTGen.CompilerServices;

namespace ViTGen;

/// <summary>What a checkpoint's position embedding learned, from the weights alone.</summary>
public static class VitPositionEmbedding
{
    /// <summary>
    /// The cosine similarity of each patch position's embedding with every other patch position's (the ViT paper's
    /// Figure 7, centre: on a trained model, neighbours and the same row and column light up). Prefix-token rows
    /// (class, distillation, registers) are not positions in the image and are left out.
    /// </summary>
    /// <param name="checkpointPath">A ViT checkpoint in any dialect <see cref="CheckpointArchitecture"/> reads.</param>
    /// <param name="grid">The side of the square patch grid.</param>
    /// <returns><c>grid⁴</c> floats: row p (a patch position, row-major on the grid) holds its similarity with every position q.</returns>
    /// <exception cref="VitWeightsException">The file is not a ViT checkpoint or its position embedding does not form a square grid.</exception>
    public static float[] Similarity(string checkpointPath, out int grid)
    {
        using var reader = CheckpointReader.Open(checkpointPath);
        var a = CheckpointArchitecture.Infer(reader); // checks that the rows form a square grid (plus prefix tokens)
        grid = a.PositionGrid;
        int rows = a.NoEmbedClass ? a.NumPatches : a.Tokens, skip = a.NoEmbedClass ? 0 : a.PrefixTokens, patches = grid * grid;
        var table = new float[(long)rows * a.Dim];
        reader.Read(TimmNames.PositionEmbedding, [1, rows, a.Dim], table);
        var similarity = new float[(long)patches * patches];
        for (int p = 0; p < patches; p++)
        {
            var u = table.AsSpan((skip + p) * a.Dim, a.Dim);
            for (int q = 0; q < patches; q++)
                similarity[p * patches + q] = TensorPrimitives.CosineSimilarity(u, table.AsSpan((skip + q) * a.Dim, a.Dim));
        }
        return similarity;
    }
}
