namespace ViTGen;

/// <summary>
/// Summaries of the attention probabilities a generated model's <c>ForwardAttention</c> writes: one image's maps are
/// <c>AttentionSize = Depth * Heads * Tokens * Tokens</c> floats laid out <c>[block][head][query token][key token]</c>,
/// each row a softmax (it sums to 1), tokens in timm's order (class, distillation, registers, then the patches row
/// by row). Both methods compute in double and allocate only their scratch.
/// </summary>
public static class VitAttention
{
    /// <summary>
    /// Attention rollout (Abnar &amp; Zuidema 2020, "Quantifying Attention Flow in Transformers") of one image:
    /// for each block <c>b</c>, <c>A_b</c> is the mean of its heads' maps, plus the identity for the residual
    /// connection, halved (<c>(A + I) / 2</c>) and with every row renormalized to sum 1; the rollout is
    /// <c>R = A_depth · … · A_2 · A_1</c>. Row <c>i</c> of <paramref name="result"/> is how much token <c>i</c> after
    /// the last block draws on each input token (row 0, the class token's, is the usual saliency map).
    /// </summary>
    /// <param name="attention">One image's maps: <c>depth * heads * tokens * tokens</c> floats, <c>[block][head][query][key]</c>.</param>
    /// <param name="depth">Blocks (the model's <c>Depth</c>).</param>
    /// <param name="heads">Heads per block (the model's <c>Heads</c>).</param>
    /// <param name="tokens">Tokens per image (the model's <c>Tokens</c>).</param>
    /// <param name="result">Receives <c>tokens * tokens</c> floats, <c>[query][key]</c>; each row sums to 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="depth"/>, <paramref name="heads"/> or <paramref name="tokens"/> is below 1.</exception>
    /// <exception cref="ArgumentException"><paramref name="attention"/> or <paramref name="result"/> has the wrong length.</exception>
    public static void Rollout(ReadOnlySpan<float> attention, int depth, int heads, int tokens, Span<float> result)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokens, 1);
        long map = (long)tokens * tokens;
        CheckLength(attention.Length, 1, depth, heads, map, nameof(attention));
        if (result.Length != map)
            throw new ArgumentException($"result has {result.Length} floats; the rollout of {tokens} tokens needs {map} (tokens x tokens).", nameof(result));

        int n = tokens;
        var rollout = new double[map];
        var mixed = new double[map];
        var product = new double[map];
        for (int i = 0; i < n; i++) rollout[(long)i * n + i] = 1;
        for (int block = 0; block < depth; block++)
        {
            // A = (mean over heads + I) / 2, rows renormalized.
            Array.Clear(mixed);
            for (int head = 0; head < heads; head++)
            {
                var maps = attention.Slice((int)(((long)block * heads + head) * map), (int)map);
                for (int i = 0; i < map; i++) mixed[i] += maps[i];
            }
            for (int q = 0; q < n; q++)
            {
                double sum = 0;
                for (int k = 0; k < n; k++)
                {
                    long at = (long)q * n + k;
                    double value = (mixed[at] / heads + (q == k ? 1 : 0)) / 2;
                    mixed[at] = value;
                    sum += value;
                }
                for (int k = 0; k < n; k++) mixed[(long)q * n + k] /= sum;
            }

            // R = A · R.
            Array.Clear(product);
            for (int q = 0; q < n; q++)
            {
                for (int j = 0; j < n; j++)
                {
                    double a = mixed[(long)q * n + j];
                    if (a == 0) continue;
                    long from = (long)j * n, to = (long)q * n;
                    for (int k = 0; k < n; k++) product[to + k] += a * rollout[from + k];
                }
            }
            (rollout, product) = (product, rollout);
        }
        for (int i = 0; i < map; i++) result[i] = (float)rollout[i];
    }

    /// <summary>
    /// Mean attention distance per block and head (as in Dosovitskiy et al. 2021, figure 7): for each patch-token
    /// query, the sum over patch-token keys of attention weight × the Euclidean distance in pixels between the two
    /// patches' centres, averaged over the queries and then over the images. Prefix tokens (class, distillation,
    /// registers) are left out as queries and as keys, and the remaining weights are not renormalized, so attention
    /// paid to prefix tokens counts as distance 0. Patch <c>p</c> (0-based, after the prefix) sits at row
    /// <c>p / gridSize</c>, column <c>p % gridSize</c>; neighbours are <paramref name="patchPixels"/> apart.
    /// </summary>
    /// <param name="attention"><paramref name="images"/> images' maps, <c>[image][block][head][query][key]</c>: <c>images * depth * heads * tokens * tokens</c> floats.</param>
    /// <param name="images">Images in <paramref name="attention"/>.</param>
    /// <param name="depth">Blocks (the model's <c>Depth</c>).</param>
    /// <param name="heads">Heads per block (the model's <c>Heads</c>).</param>
    /// <param name="tokens">Tokens per image (the model's <c>Tokens</c>); must be <c>prefixTokens + gridSize²</c>.</param>
    /// <param name="prefixTokens">Tokens before the patches (the model's <c>PrefixTokens</c>).</param>
    /// <param name="gridSize">Patches per side (<c>ImageSize / PatchSize</c>).</param>
    /// <param name="patchPixels">Distance between neighbouring patch centres in pixels (the model's <c>PatchSize</c>).</param>
    /// <param name="result">Receives <c>depth * heads</c> floats, <c>[block][head]</c>, in pixels.</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is below 1 (<paramref name="prefixTokens"/> below 0), or <paramref name="patchPixels"/> is not positive and finite.</exception>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> is not <c>prefixTokens + gridSize²</c>, or <paramref name="attention"/> or <paramref name="result"/> has the wrong length.</exception>
    public static void MeanDistance(ReadOnlySpan<float> attention, int images, int depth, int heads, int tokens, int prefixTokens, int gridSize,
        float patchPixels, Span<float> result)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(heads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(tokens, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(gridSize, 1);
        if (!(patchPixels > 0) || float.IsInfinity(patchPixels))
            throw new ArgumentOutOfRangeException(nameof(patchPixels), patchPixels, "patchPixels must be positive and finite.");
        long patches = (long)gridSize * gridSize;
        if (tokens != prefixTokens + patches)
            throw new ArgumentException($"tokens is {tokens}, but {prefixTokens} prefix tokens and a {gridSize}x{gridSize} patch grid make {prefixTokens + patches}.", nameof(tokens));
        long map = (long)tokens * tokens;
        CheckLength(attention.Length, images, depth, heads, map, nameof(attention));
        if (result.Length != (long)depth * heads)
            throw new ArgumentException($"result has {result.Length} floats; {depth} blocks of {heads} heads need {(long)depth * heads}.", nameof(result));

        // Distance by row and column offset: a gridSize x gridSize table instead of patches².
        var distance = new double[patches];
        for (int dr = 0; dr < gridSize; dr++)
            for (int dc = 0; dc < gridSize; dc++)
                distance[(long)dr * gridSize + dc] = patchPixels * Math.Sqrt((double)dr * dr + (double)dc * dc);

        int n = (int)patches;
        for (int block = 0; block < depth; block++)
        {
            for (int head = 0; head < heads; head++)
            {
                double total = 0;
                for (int image = 0; image < images; image++)
                {
                    long first = (((long)image * depth + block) * heads + head) * map;
                    for (int q = 0; q < n; q++)
                    {
                        var row = attention.Slice((int)(first + (long)(prefixTokens + q) * tokens + prefixTokens), n);
                        int qr = q / gridSize, qc = q % gridSize;
                        double sum = 0;
                        for (int k = 0; k < n; k++)
                            sum += row[k] * distance[(long)Math.Abs(k / gridSize - qr) * gridSize + Math.Abs(k % gridSize - qc)];
                        total += sum;
                    }
                }
                result[block * heads + head] = (float)(total / ((double)n * images));
            }
        }
    }

    private static void CheckLength(int length, int images, int depth, int heads, long map, string name)
    {
        // Exact: images * depth * heads * tokens² can exceed a long only far beyond any span's length.
        var needed = (Int128)images * depth * heads * map;
        if (length != needed)
            throw new ArgumentException($"{name} has {length} floats; {images} image(s) of {depth} blocks x {heads} heads x {map} (tokens x tokens) need {needed}.", name);
    }
}
