using ViTGen.Tests.Parity;

namespace ViTGen.Tests.Explain;

/// <summary><see cref="VitPositionEmbedding.Similarity"/> against cosine similarities computed here in float64 from the stored rows.</summary>
public class PositionEmbeddingTests
{
    [Theory]
    [InlineData("basic", 1, false)]            // class token: row 0 skipped
    [InlineData("registers", 5, false)]        // class + 4 registers skipped
    [InlineData("registers_noembed", 0, true)] // no_embed_class: every row is a patch
    [InlineData("distilled", 2, false)]
    public void Matches_float64_cosine_similarity_of_the_patch_rows(string fixture, int skip, bool noEmbedClass)
    {
        string path = Fixture.Read(fixture).WeightsPath;
        var similarity = VitPositionEmbedding.Similarity(path, out int grid);

        using var file = SafeTensorsFile.Open(path);
        var info = file.GetTensor("pos_embed");
        var table = new float[info.ElementCount];
        file.ReadFloat32("pos_embed", table);
        int rows = (int)info.Shape[1], dim = (int)info.Shape[2], patches = grid * grid;
        Assert.Equal(rows - skip, patches);
        Assert.Equal(noEmbedClass ? patches : patches + skip, rows);
        Assert.Equal(patches * patches, similarity.Length);

        double worst = 0;
        for (int p = 0; p < patches; p++)
        {
            for (int q = 0; q < patches; q++)
            {
                double dot = 0, pp = 0, qq = 0;
                for (int d = 0; d < dim; d++)
                {
                    double u = table[(skip + p) * dim + d], v = table[(skip + q) * dim + d];
                    dot += u * v;
                    pp += u * u;
                    qq += v * v;
                }
                worst = Math.Max(worst, Math.Abs(similarity[p * patches + q] - dot / Math.Sqrt(pp * qq)));
            }
            Assert.Equal(1.0, similarity[p * patches + p], 5); // every position is itself
        }
        Assert.True(worst < 1e-6, $"max |error| {worst:E2}");
    }

    [Fact]
    public void A_file_that_is_not_a_checkpoint_is_a_typed_error()
    {
        string io = Path.Combine(Fixture.Directory, "basic.io.safetensors");
        Assert.Throws<VitWeightsException>(() => VitPositionEmbedding.Similarity(io, out _));
    }
}
