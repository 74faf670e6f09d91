// ViTGen's CUDA kernels: everything of a ViT forward that is not a GEMM (the GEMMs go to cuBLAS).
//
// Why PTX, shipped in the assembly: the driver JIT-compiles PTX text for whatever GPU it finds
// (cuModuleLoadData), so a machine needs nothing but the NVIDIA driver. No NVRTC (libnvrtc is a large,
// toolkit-versioned dependency that most machines lack), no nvcc, and one image serves sm_80 and every later
// architecture (A100, H100, H200, ...).
//
// Regenerate the PTX after editing this file (the test CudaKernelSourceTests fails until you do):
//   clang-14 -x cuda --cuda-gpu-arch=sm_80 --cuda-device-only -nocudainc -nocudalib -O3 -S kernels.cu -o kernels.ptx
// -nocudainc / -nocudalib: no CUDA SDK and no libdevice, so the prelude below declares what the kernels use,
// and every math function is written here (a call into libdevice would leave an unresolved symbol in the PTX).
//
// Conventions, shared with the C# twins in tests/ViTGen.Runtime.Tests/Cuda/KernelTwins.cs (which the tests' CPU
// plan executor runs, so that every index here is tested without a GPU): shapes are kernel arguments, row-major
// buffers, element-wise kernels take one element per thread over a 1-D grid with a bounds check, row kernels
// (LayerNorm, softmax) take one row per block with any block size that is a multiple of 32 (at most 1024).
// Pointers that may be null say so.

// ---- Prelude: what the CUDA headers would declare -----------------------------------------------------------
#include <__clang_cuda_builtin_vars.h> // threadIdx, blockIdx, blockDim, gridDim

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))
#define KERNEL extern "C" __global__ void // unmangled entry names: CudaDevice.cs looks them up by name (GpuKernel.cs)

// One element per thread over a 1-D grid; the plan sizes the grid to cover `total`.
#define ELEMENT_INDEX(total)                                         \
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);            \
    if (i >= (total)) return

__device__ static inline float warp_shuffle_xor(float v, int lane_mask) {
    float other;
    // The shfl builtin needs a PTX feature flag clang only sets with a CUDA SDK present; the instruction is the same.
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 31, -1;" : "=f"(other) : "f"(v), "r"(lane_mask));
    return other;
}

// ---- Block reductions: butterfly within each warp, then the first warp over the warps' results -------------
// Every thread returns the total. `partial` is 32 floats of shared memory; it is free again on return.

__device__ static inline float warp_sum(float v) {
    for (int mask = 16; mask > 0; mask >>= 1) v += warp_shuffle_xor(v, mask);
    return v;
}

__device__ static inline float warp_max(float v) {
    for (int mask = 16; mask > 0; mask >>= 1) v = __builtin_fmaxf(v, warp_shuffle_xor(v, mask));
    return v;
}

__device__ static float block_sum(float v, float* partial) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = warp_sum(lane < warps ? partial[lane] : 0.0f);
    __syncthreads();
    return v;
}

__device__ static float block_max(float v, float* partial) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = warp_max(lane < warps ? partial[lane] : -__builtin_inff());
    __syncthreads();
    return v;
}

// ---- Math (no libdevice): exp, and the activations built on it ---------------------------------------------

__device__ static inline float pow2i(int k) { return __builtin_bit_cast(float, (k + 127) << 23); } // -126 <= k <= 127

// e^x with a relative error of about 1 ulp: x = n ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 split in two so
// n ln2 is exact), e^r by its Taylor series to r^7 (truncation error < 1e-8), then the exponent scaled in two
// halves so that 2^n stays a normal float for every n in range.
__device__ static float vit_exp(float x) {
    if (x < -87.0f) return 0.0f;
    if (x > 88.5f) return __builtin_inff();
    float n = __builtin_rintf(x * 1.44269504f);
    float r = __builtin_fmaf(n, -0.693145751953125f, x);
    r = __builtin_fmaf(n, -1.42860677e-6f, r);
    float p = 1.98412698e-4f;                 // 1/7!
    p = __builtin_fmaf(p, r, 1.38888889e-3f); // 1/6!
    p = __builtin_fmaf(p, r, 8.33333333e-3f); // 1/5!
    p = __builtin_fmaf(p, r, 4.16666667e-2f); // 1/4!
    p = __builtin_fmaf(p, r, 1.66666667e-1f); // 1/3!
    p = __builtin_fmaf(p, r, 0.5f);
    p = __builtin_fmaf(p, r, 1.0f);
    p = __builtin_fmaf(p, r, 1.0f);
    int k = (int)n, half = k >> 1;
    return p * pow2i(half) * pow2i(k - half);
}

// GELU with erf (PyTorch's nn.GELU(), not the tanh form): erf from Abramowitz & Stegun 7.1.26, |error| <= 1.5e-7,
// the same formula as the CPU kernels' GeluEpilogue.
__device__ static float gelu(float x) {
    float z = __builtin_fabsf(x * 0.70710678f);
    float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float erf_abs = 1.0f - poly * vit_exp(-(z * z));
    return 0.5f * x * (1.0f + (x < 0.0f ? -erf_abs : erf_abs));
}

// tanh(u) = 1 - 2 / (e^2u + 1): e^2u overflows to +inf for large u, which still gives exactly 1.
__device__ static float gelu_tanh(float x) {
    float u = 0.79788456f * (x + 0.044715f * x * x * x);
    float tanh_u = 1.0f - 2.0f / (vit_exp(u + u) + 1.0f);
    return 0.5f * x * (1.0f + tanh_u);
}

__device__ static float quick_gelu(float x) { return x / (1.0f + vit_exp(-1.702f * x)); }

__device__ static float relu(float x) { return x > 0.0f ? x : 0.0f; }

// ---- Embedding ---------------------------------------------------------------------------------------------

// Images [batch, channels, size, size] to patch rows [batch * patches, channels * patch * patch]: patches row by
// row from the top left, features in the conv weight's order (channel, y, x). total = batch * patches * features.
KERNEL vit_patch_unfold(const float* image, float* patches, int channels, int image_size, int patch, int total) {
    ELEMENT_INDEX(total);
    int grid = image_size / patch, area = patch * patch, features = channels * area, count = grid * grid;
    int f = i % features, row = i / features;
    int b = row / count, p = row % count;
    int c = f / area, y = (f % area) / patch, x = f % patch;
    int source_y = (p / grid) * patch + y, source_x = (p % grid) * patch + x;
    patches[i] = image[((b * channels + c) * image_size + source_y) * image_size + source_x];
}

// The token matrix x [batch * tokens, dim]: prefix rows (class, distillation, register tokens) first, then the
// patch projections plus their bias; the position embedding is added from row pos_first_row on (0, or the
// prefix count with no_embed_class). patch_bias and prefix may be null. total = batch * tokens * dim.
KERNEL vit_embed_tokens(const float* patch_tokens, const float* patch_bias, const float* prefix, const float* pos,
                        float* x, int tokens, int prefix_tokens, int dim, int pos_first_row, int total) {
    ELEMENT_INDEX(total);
    int d = i % dim, row = i / dim, t = row % tokens, b = row / tokens;
    float v;
    if (t < prefix_tokens) {
        v = prefix[t * dim + d];
    } else {
        v = patch_tokens[(b * (tokens - prefix_tokens) + t - prefix_tokens) * dim + d];
        if (patch_bias) v = v + patch_bias[d];
    }
    if (t >= pos_first_row) v = v + pos[(t - pos_first_row) * dim + d];
    x[i] = v;
}

// ---- Row kernels: one row per block ------------------------------------------------------------------------

// LayerNorm of row blockIdx.x of group blockIdx.y: x + group * x_group_stride + row * dim (likewise y). Groups
// let the final norm pick the class token of every image (dim-wide rows, tokens * dim apart). y may be x.
// Two reductions, the mean first and then the centered sum of squares, as the CPU kernel does.
KERNEL vit_layer_norm(const float* x, float* y, const float* gamma, const float* beta, int dim,
                      int x_group_stride, int y_group_stride, float eps) {
    __shared__ float partial[32];
    const float* in = x + (long long)blockIdx.y * x_group_stride + (long long)blockIdx.x * dim;
    float* out = y + (long long)blockIdx.y * y_group_stride + (long long)blockIdx.x * dim;
    float sum = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) sum += in[j];
    float mean = block_sum(sum, partial) / dim;
    float squares = 0.0f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) {
        float centered = in[j] - mean;
        squares = __builtin_fmaf(centered, centered, squares);
    }
    float inverse_std = 1.0f / __nvvm_sqrt_rn_f(block_sum(squares, partial) / dim + eps);
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        out[j] = __builtin_fmaf((in[j] - mean) * inverse_std, gamma[j], beta[j]);
}

// Softmax of row blockIdx.x of a [rows, cols] matrix, in place: subtract the max, exponentiate, scale by 1/sum.
KERNEL vit_softmax_rows(float* scores, int cols) {
    __shared__ float partial[32];
    float* row = scores + (long long)blockIdx.x * cols;
    float max = -__builtin_inff();
    for (int j = threadIdx.x; j < cols; j += blockDim.x) max = __builtin_fmaxf(max, row[j]);
    max = block_max(max, partial);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) {
        float e = vit_exp(row[j] - max);
        row[j] = e;
        sum += e;
    }
    float inverse_sum = 1.0f / block_sum(sum, partial);
    for (int j = threadIdx.x; j < cols; j += blockDim.x) row[j] = row[j] * inverse_sum;
}

// Mean of `count` token rows from first_token on, image blockIdx.x: pooled [batch, dim]. Rows are summed in
// order, then scaled by 1/count, as the CPU's MeanRows does.
KERNEL vit_mean_tokens(const float* x, float* pooled, int tokens, int first_token, int count, int dim) {
    const float* image = x + ((long long)blockIdx.x * tokens + first_token) * dim;
    float scale = 1.0f / count;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) {
        float sum = 0.0f;
        for (int r = 0; r < count; r++) sum += image[(long long)r * dim + d];
        pooled[(long long)blockIdx.x * dim + d] = sum * scale;
    }
}

// ---- Attention layout --------------------------------------------------------------------------------------

// The QKV GEMM's rows [batch * tokens, 3 * dim] (timm order: q heads | k heads | v heads), plus the bias (may be
// null), scattered into three planes of [batch, heads, tokens, head_dim] so each head is one dense matrix for
// the strided-batched GEMMs. total = batch * tokens * 3 * dim.
KERNEL vit_split_qkv(const float* qkv, const float* bias, float* planes, int tokens, int heads, int head_dim, int total) {
    ELEMENT_INDEX(total);
    int dim = heads * head_dim, width = 3 * dim;
    int c = i % width, row = i / width, b = row / tokens, t = row % tokens;
    int plane = c / dim, h = (c % dim) / head_dim, e = c % head_dim;
    float v = qkv[i];
    if (bias) v = v + bias[c];
    planes[plane * (total / 3) + ((b * heads + h) * tokens + t) * head_dim + e] = v;
}

// Per-head context [batch, heads, tokens, head_dim] back to token rows [batch * tokens, heads * head_dim].
// total = batch * tokens * dim.
KERNEL vit_merge_heads(const float* head_context, float* context, int tokens, int heads, int head_dim, int total) {
    ELEMENT_INDEX(total);
    int dim = heads * head_dim;
    int d = i % dim, row = i / dim, b = row / tokens, t = row % tokens;
    int h = d / head_dim, e = d % head_dim;
    context[i] = head_context[((b * heads + h) * tokens + t) * head_dim + e];
}

// ---- GEMM epilogues (cuBLAS computes the bare product) ----------------------------------------------------

// x += y + bias, per element of [rows, cols]: the residual connection after proj and fc2.
KERNEL vit_bias_residual(float* x, const float* y, const float* bias, int cols, int total) {
    ELEMENT_INDEX(total);
    x[i] = (y[i] + bias[i % cols]) + x[i];
}

KERNEL vit_bias_add(float* x, const float* bias, int cols, int total) {
    ELEMENT_INDEX(total);
    x[i] = x[i] + bias[i % cols];
}

#define BIAS_ACTIVATION_KERNEL(name, activation)                    \
    KERNEL name(float* x, const float* bias, int cols, int total) { \
        ELEMENT_INDEX(total);                                       \
        x[i] = activation(x[i] + bias[i % cols]);                   \
    }

BIAS_ACTIVATION_KERNEL(vit_bias_gelu, gelu)
BIAS_ACTIVATION_KERNEL(vit_bias_gelu_tanh, gelu_tanh)
BIAS_ACTIVATION_KERNEL(vit_bias_quick_gelu, quick_gelu)
BIAS_ACTIVATION_KERNEL(vit_bias_relu, relu)

// DeiT's distilled inference: out = ((head + bias) + (head_dist + dist_bias)) / 2, from logits [batch, 2, classes]
// (the two heads' products side by side). total = batch * classes.
KERNEL vit_distilled_average(const float* logits, const float* bias, const float* dist_bias, float* out, int classes, int total) {
    ELEMENT_INDEX(total);
    int c = i % classes, b = i / classes;
    const float* image = logits + 2 * b * classes;
    out[i] = ((image[c] + bias[c]) + (image[classes + c] + dist_bias[c])) * 0.5f;
}
