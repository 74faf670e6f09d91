using static ViTGen.Tests.Weights.SafeTensorsWriter;

namespace ViTGen.Tests.Weights;

/// <summary>
/// <see cref="SafeTensorsFile.Dispose"/> racing reads: every read either completes with the right values or throws
/// <see cref="ObjectDisposedException"/>; the mapping is never unmapped under a read (which would crash the process).
/// </summary>
public sealed class DisposeRaceTests : IDisposable
{
    private const int Count = 1 << 16;
    private readonly TempFolder _folder = new();
    private readonly float[] _values = Enumerable.Range(0, Count).Select(i => i * 0.25f - 7f).ToArray();

    public void Dispose() => _folder.Dispose();

    private string WriteFile() => _folder.Write(Build(
        [F32("big", [Count], _values), I64("ints", [3], [1, -2, long.MaxValue]), U8("bytes", [3], [7, 8, 9])]));

    [Fact]
    public void Dispose_inside_a_read_waits_for_the_read_to_finish()
    {
        // Deterministic: the read holds its lease when the observer disposes the file from the reading thread.
        using var file = SafeTensorsFile.Open(WriteFile());
        bool inside = false, unmappedInside = true;
        int leasesInside = 0;
        file.LeaseObserver = () =>
        {
            if (inside) return;
            inside = true;
            file.Dispose();
            unmappedInside = file.IsUnmapped;
            leasesInside = file.Leases;
        };
        var result = new float[Count];
        file.ReadFloat32("big", result);

        Assert.True(inside);
        Assert.False(unmappedInside);
        Assert.Equal(1, leasesInside);
        Assert.Equal(_values, result);
        Assert.True(file.IsUnmapped);
        Assert.Equal(0, file.Leases);

        Assert.Throws<ObjectDisposedException>(() => file.ReadFloat32("big", result));
        Assert.Throws<ObjectDisposedException>(() => file.ReadFloat64("big", new double[Count]));
        Assert.Throws<ObjectDisposedException>(() => file.ReadInt64("ints"));
        Assert.Throws<ObjectDisposedException>(() => file.ReadBytes("bytes"));
        Assert.Throws<ObjectDisposedException>(() => file.GetBytes("bytes"));
    }

    [Fact]
    public void Dispose_with_a_read_in_flight_on_another_thread_unmaps_when_it_ends()
    {
        // Deterministic: the reader blocks inside its lease until the main thread has disposed.
        var file = SafeTensorsFile.Open(WriteFile());
        using var entered = new ManualResetEventSlim();
        using var disposed = new ManualResetEventSlim();
        file.LeaseObserver = () =>
        {
            entered.Set();
            disposed.Wait();
        };
        var result = new float[Count];
        Exception? failure = null;
        var reader = new Thread(() =>
        {
            try
            {
                file.ReadFloat32("big", result);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        reader.Start();
        entered.Wait();
        file.Dispose();
        Assert.False(file.IsUnmapped);
        Assert.Equal(1, file.Leases);
        file.LeaseObserver = null;
        Assert.Throws<ObjectDisposedException>(() => file.ReadInt64("ints"));
        disposed.Set();
        reader.Join();
        Assert.Null(failure);
        Assert.Equal(_values, result);
        Assert.True(file.IsUnmapped);
        file.Dispose();
    }

    [Fact]
    public void Reads_racing_Dispose_succeed_or_throw_ObjectDisposedException()
    {
        const int Rounds = 150, Readers = 3;
        int succeeded = 0, refused = 0;
        string path = WriteFile();
        for (int round = 0; round < Rounds; round++)
        {
            var file = SafeTensorsFile.Open(path);
            using var start = new Barrier(Readers + 1);
            var failures = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
            var threads = Enumerable.Range(0, Readers).Select(reader => new Thread(() =>
            {
                var floats = new float[Count];
                var doubles = new double[Count];
                start.SignalAndWait();
                for (int i = 0; ; i++)
                {
                    try
                    {
                        switch ((i + reader) % 4)
                        {
                            case 0:
                                file.ReadFloat32("big", floats);
                                if (floats[Count - 1] != _values[Count - 1] || floats[1] != _values[1]) throw new InvalidDataException("wrong float32");
                                break;
                            case 1:
                                file.ReadFloat64("big", doubles);
                                if (doubles[Count - 1] != _values[Count - 1]) throw new InvalidDataException("wrong float64");
                                break;
                            case 2:
                                if (file.ReadInt64("ints")[2] != long.MaxValue) throw new InvalidDataException("wrong int64");
                                break;
                            default:
                                if (file.ReadBytes("bytes")[2] != 9) throw new InvalidDataException("wrong u8");
                                break;
                        }
                        Interlocked.Increment(ref succeeded);
                    }
                    catch (ObjectDisposedException)
                    {
                        Interlocked.Increment(ref refused);
                        return;
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue(e);
                        return;
                    }
                }
            })).ToList();
            foreach (Thread t in threads) t.Start();
            start.SignalAndWait();
            // Vary where Dispose lands: at once, or after the readers got going.
            for (int spin = 0; spin < round % 10 * 200; spin++) Thread.SpinWait(20);
            file.Dispose();
            foreach (Thread t in threads) t.Join();

            Assert.Empty(failures);
            Assert.True(file.IsUnmapped);
            Assert.Equal(0, file.Leases);
        }
        Assert.Equal(Rounds * Readers, refused);
        Assert.True(succeeded > 0);
    }
}
