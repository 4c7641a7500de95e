// ZO kernels (see cuda_zo.h). One thread per Philox block: block k holds the
// normals of elements 4k .. 4k+3 of the tensor, exactly as sq_zo_normal4 and
// the CPU's 16-lane generator number them. zo_rng.h spells every float
// operation as an _rn intrinsic here, so nvcc cannot contract or reorder
// anything the CPU does differently.
#include "cuda_zo.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "sparq/zo_rng.h"

namespace {

constexpr int kThreads = 256;

struct spsa_args {
    uint64_t seeds[SQ_MAX_SPSA];
    float g[SQ_MAX_SPSA];
};

__device__ __forceinline__ void store(float *p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16 *p, int64_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}
__device__ __forceinline__ void store(__half *p, int64_t i, float v)
{
    p[i] = __float2half_rn(v);
}

// dst = src + scale * z, rounded once into Out (float: the CPU's bits;
// bf16/fp16: the perturbed weight formed straight in the GEMM's operand
// type). scale 0 is a plain copy/cast, with no normals drawn.
template <class Out>
__global__ void zo_perturb_kernel(const float *__restrict__ src, Out *dst, int64_t n,
                                  uint64_t seed, uint64_t tensor_id, int64_t offset, float scale,
                                  const uint8_t *__restrict__ mask)
{
    if (scale == 0.0f) {
        for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
             e += (int64_t)gridDim.x * blockDim.x)
            store(dst, e, src[e]);
        return;
    }
    const int64_t k0 = offset / 4, k1 = (offset + n + 3) / 4;
    for (int64_t k = k0 + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < k1;
         k += (int64_t)gridDim.x * blockDim.x) {
        float z[4];
        sq_zo_normal4(seed, tensor_id, (uint64_t)k, z);
        for (int j = 0; j < 4; j++) {
            const int64_t e = 4 * k + j - offset;
            if (e < 0 || e >= n) continue;
            const float zj = mask ? (mask[e] ? z[j] : 0.0f) : z[j];
            store(dst, e, SQ_FMA(scale, zj, src[e]));
        }
    }
}

__global__ void zo_update_kernel(float *w, int64_t numel, int n, spsa_args a, uint64_t tensor_id,
                                 float lr, float wd, float inv_n, const uint8_t *__restrict__ mask)
{
    const int64_t k1 = (numel + 3) / 4;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < k1;
         k += (int64_t)gridDim.x * blockDim.x) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f}, z[4];
        for (int s = 0; s < n; s++) {
            sq_zo_normal4(a.seeds[s], tensor_id, (uint64_t)k, z);
            for (int j = 0; j < 4; j++) acc[j] = SQ_FMA(a.g[s], z[j], acc[j]);
        }
        for (int j = 0; j < 4; j++) {
            const int64_t e = 4 * k + j;
            if (e >= numel) break;
            const float gz = (mask && !mask[e]) ? 0.0f : SQ_FMUL(acc[j], inv_n);
            const float step = SQ_FMA(wd, w[e], gz);
            w[e] = SQ_FSUB(w[e], SQ_FMUL(lr, step));
        }
    }
}

int grid_for(int64_t blocks)
{
    int64_t g = (blocks + kThreads - 1) / kThreads;
    if (g < 1) g = 1;
    return g > 65535 ? 65535 : (int)g; // grid-stride loops cover the rest
}

sq_status_t launched(const char *op)
{
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess)
        return sq_error_set(SQ_ERR_CUDA, "cuda.%s: launch failed: %s", op, cudaGetErrorString(err));
    return SQ_OK;
}

} // namespace

template <class Out>
sq_status_t perturb(const float *src, Out *dst, int64_t n, uint64_t seed, uint64_t tensor_id,
                    int64_t offset, float scale, const uint8_t *mask, void *stream)
{
    if (n < 0 || offset < 0 || (n > 0 && (!src || !dst)))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.zo_perturb: %lld elements at offset %lld",
                            (long long)n, (long long)offset);
    if (n == 0) return SQ_OK;
    const int64_t blocks = scale == 0.0f ? n : (offset + n + 3) / 4 - offset / 4;
    zo_perturb_kernel<Out><<<grid_for(blocks), kThreads, 0, (cudaStream_t)stream>>>(
        src, dst, n, seed, tensor_id, offset, scale, mask);
    return launched("zo_perturb");
}

extern "C" sq_status_t sq_cuda_zo_perturb(const float *src, float *dst, int64_t n, uint64_t seed,
                                          uint64_t tensor_id, int64_t offset, float scale,
                                          const uint8_t *mask, void *stream)
{
    return perturb(src, dst, n, seed, tensor_id, offset, scale, mask, stream);
}

extern "C" sq_status_t sq_cuda_zo_perturb_cast(const float *src, void *dst, sq_dtype_t dst_dtype,
                                               int64_t n, uint64_t seed, uint64_t tensor_id,
                                               int64_t offset, float scale, const uint8_t *mask,
                                               void *stream)
{
    switch (dst_dtype) {
    case SQ_DTYPE_BF16:
        return perturb(src, (__nv_bfloat16 *)dst, n, seed, tensor_id, offset, scale, mask,
                       stream);
    case SQ_DTYPE_F16:
        return perturb(src, (__half *)dst, n, seed, tensor_id, offset, scale, mask, stream);
    case SQ_DTYPE_F32:
        return perturb(src, (float *)dst, n, seed, tensor_id, offset, scale, mask, stream);
    default:
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.zo_perturb: dst dtype %s (F32, F16, BF16)",
                            sq_dtype_name(dst_dtype));
    }
}

extern "C" sq_status_t sq_cuda_zo_update(float *w, int64_t numel, int n, const uint64_t *seeds,
                                         const float *g, uint64_t tensor_id, float lr, float wd,
                                         const uint8_t *mask, void *stream)
{
    if (n <= 0 || n > SQ_MAX_SPSA || !seeds || !g || numel < 0 || (numel > 0 && !w))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.zo_update: %d SPSA samples (1 .. %d)", n,
                            SQ_MAX_SPSA);
    if (numel == 0) return SQ_OK;
    spsa_args a = {};
    for (int s = 0; s < n; s++) {
        a.seeds[s] = seeds[s];
        a.g[s] = g[s];
    }
    const float inv_n = 1.0f / (float)n; // on the host, as the CPU computes it
    zo_update_kernel<<<grid_for((numel + 3) / 4), kThreads, 0, (cudaStream_t)stream>>>(
        w, numel, n, a, tensor_id, lr, wd, inv_n, mask);
    return launched("zo_update");
}
