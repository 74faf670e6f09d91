using ViTGen.CompilerServices;
using ViTGen.Tests.Parity;
using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// After <see cref="CheckpointReader.Read"/> copies a tensor out, the mapped pages that hold nothing but read
/// tensors (and the header) are released (<c>madvise(MADV_DONTNEED)</c> on Linux), so loading does not hold the
/// weights twice. These tests check the bookkeeping, not memory figures: every released range is page-aligned and
/// covers only bytes already read, no page is released twice, all pages are released once everything was read,
/// and reads after a release still see the data.
/// </summary>
public sealed class PageReleaseTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Released_ranges_cover_only_read_tensors_and_finally_the_whole_file(int seed)
    {
        // Tensors from empty to several pages, so pages are shared by many small tensors and spanned by large ones.
        var rng = new Random(seed);
        var tensors = new List<RawTensor>();
        for (int i = 0; i < 120; i++)
        {
            int count = rng.Next(4) switch { 0 => 0, 1 => rng.Next(1, 64), 2 => rng.Next(64, 2048), _ => rng.Next(2048, 12000) };
            tensors.Add(F32($"t{i:D3}", [count], RandomFloats(rng, count)));
        }
        string path = _folder.Write(Build(tensors));

        using var reader = CheckpointReader.Open(path);
        long page = Environment.SystemPageSize;
        long length = reader.File.Length;
        var released = new bool[(length + page - 1) / page];
        var read = new HashSet<string>(StringComparer.Ordinal);
        reader.File.ReleaseObserver = (begin, end) =>
        {
            Assert.True(begin % page == 0 && end % page == 0 && begin < end, $"[{begin}, {end}) is not a page range");
            for (long p = begin / page; p < end / page; p++)
            {
                Assert.False(released[p], $"page {p} released twice");
                released[p] = true;
                // Every byte of the page belongs to the header or to a tensor already read (empty tensors have no bytes).
                foreach (SafeTensorInfo t in reader.File.Tensors.Where(t => t.ByteLength > 0))
                {
                    bool overlaps = t.FileOffset < (p + 1) * page && t.FileOffset + t.ByteLength > p * page;
                    Assert.False(overlaps && !read.Contains(t.Name), $"page {p} released while '{t.Name}' was unread");
                }
            }
        };

        foreach (RawTensor t in tensors.OrderBy(_ => rng.Next()))
        {
            read.Add(t.Name); // before Read: the release happens inside it, after the copy
            var values = new float[t.Shape[0]];
            reader.Read(t.Name, [(int)t.Shape[0]], values);
            Assert.Equal(DialectFiles.Floats(t), values);
        }
        reader.EnsureAllRead();
        if (OperatingSystem.IsLinux())
        {
            Assert.All(released, Assert.True);
        }
        else
        {
            Assert.DoesNotContain(true, released);
        }

        // Released pages fault back in from the file: reading again gives the same values.
        foreach (RawTensor t in tensors)
        {
            var values = new float[t.Shape[0]];
            reader.Read(t.Name, [(int)t.Shape[0]], values);
            Assert.Equal(DialectFiles.Floats(t), values);
        }
    }

    [Fact]
    public void A_model_loaded_twice_from_one_file_is_identical()
    {
        // The first load releases the mapping's pages in its process; the second maps the file again and must see
        // the same weights (the page cache still holds them).
        Fixture fixture = Fixture.Read("registers");
        var first = fixture.PoisonedOutput();
        var second = fixture.PoisonedOutput();
        using (var model = fixture.Load()) model.Forward(fixture.Input, first, fixture.Batch);
        using (var model = fixture.Load()) model.Forward(fixture.Input, second, fixture.Batch);
        Assert.Equal(first, second);
        Numerics.AssertClose(second, fixture.Expected, ParityTests.Bound, out _);
    }
}
