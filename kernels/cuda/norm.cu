// layernorm and rmsnorm: one thread block per row. As on the CPU (norm.c)
// the statistics are accumulated in double and the variance takes a second
// pass over (x - mean): residual streams drift to large common offsets, and a
// one-pass fp32 E[x^2] - E[x]^2 would lose most of its digits there.
#include <inttypes.h>

#include "cuda_internal.h"
#include "cuda_reduce.cuh"

namespace {

int norm_threads(int64_t c)
{
    return c >= 4096 ? 1024 : c >= 1024 ? 512 : c >= 256 ? 256 : 128;
}

__global__ void layernorm_kernel(const float *x, int64_t ldx,
                                 const float *__restrict__ g, const float *__restrict__ b,
                                 float eps, float *y, int64_t ldy, int64_t c)
{
    __shared__ sq_block_slots<double> slots;
    const float *xr = x + (int64_t)blockIdx.x * ldx;
    float *yr = y + (int64_t)blockIdx.x * ldy;

    double s = 0.0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) s += (double)xr[j];
    const double mean = sq_block_sum(s, &slots) / (double)c;
    double v = 0.0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        const double d = (double)xr[j] - mean;
        v += d * d;
    }
    v = sq_block_sum(v, &slots);
    const float rstd = (float)(1.0 / sqrt(v / (double)c + (double)eps));
    // x - mean in two fp32 steps, as norm.c does: x - m_hi is exact near the
    // mean, so the fp32 mean costs nothing even when large next to the spread
    const float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi);
    // y may alias x element for element: each element is read, then written,
    // by the same thread, after both reductions have read all of x
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
        const float t = ((xr[j] - m_hi) - m_lo) * rstd * g[j];
        yr[j] = b ? t + b[j] : t;
    }
}

__global__ void rmsnorm_kernel(const float *x, int64_t ldx,
                               const float *__restrict__ g, float eps, float *y, int64_t ldy,
                               int64_t c)
{
    __shared__ sq_block_slots<double> slots;
    const float *xr = x + (int64_t)blockIdx.x * ldx;
    float *yr = y + (int64_t)blockIdx.x * ldy;

    double ss = 0.0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) ss += (double)xr[j] * (double)xr[j];
    ss = sq_block_sum(ss, &slots);
    const float rinv = (float)(1.0 / sqrt(ss / (double)c + (double)eps));
    // (x * rinv) * g, in the order HF Llama and llama2.c apply them
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) yr[j] = (xr[j] * rinv) * g[j];
}

} // namespace

sq_status_t sq_cuda_layernorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                              const sq_tensor_t *b, float eps, sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin("layernorm", be));
    SQ_TRY(sq_cuda_check_mat("layernorm", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    SQ_TRY(sq_cuda_check_mat("layernorm", "y", y, n, c));
    SQ_TRY(sq_cuda_check_vec("layernorm", "g", g, c));
    if (b) SQ_TRY(sq_cuda_check_vec("layernorm", "b", b, c));
    if (!(eps >= 0.0f))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.layernorm: eps %g is negative or NaN",
                            (double)eps);
    if (sq_cuda_overlaps(y, x) && (y->data != x->data || sq_tensor_ld(y) != sq_tensor_ld(x)))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.layernorm: y partially overlaps x (only y == x is allowed)");
    if (n == 0 || c == 0) return SQ_OK;
    if (n > INT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cuda.layernorm: %" PRId64 " rows exceed the grid", n);
    layernorm_kernel<<<(unsigned)n, norm_threads(c), 0, sq_cuda_ctx(be)->stream>>>(
        (const float *)x->data, sq_tensor_ld(x), (const float *)g->data,
        b ? (const float *)b->data : NULL, eps, (float *)y->data, sq_tensor_ld(y), c);
    SQ_CUDA_LAUNCHED("layernorm");
    return SQ_OK;
}

sq_status_t sq_cuda_rmsnorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                            float eps, sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin("rmsnorm", be));
    SQ_TRY(sq_cuda_check_mat("rmsnorm", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    SQ_TRY(sq_cuda_check_mat("rmsnorm", "y", y, n, c));
    SQ_TRY(sq_cuda_check_vec("rmsnorm", "g", g, c));
    if (!(eps >= 0.0f))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.rmsnorm: eps %g is negative or NaN",
                            (double)eps);
    if (sq_cuda_overlaps(y, x) && (y->data != x->data || sq_tensor_ld(y) != sq_tensor_ld(x)))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.rmsnorm: y partially overlaps x (only y == x is allowed)");
    if (n == 0 || c == 0) return SQ_OK;
    if (n > INT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cuda.rmsnorm: %" PRId64 " rows exceed the grid", n);
    rmsnorm_kernel<<<(unsigned)n, norm_threads(c), 0, sq_cuda_ctx(be)->stream>>>(
        (const float *)x->data, sq_tensor_ld(x), (const float *)g->data, eps, (float *)y->data,
        sq_tensor_ld(y), c);
    SQ_CUDA_LAUNCHED("rmsnorm");
    return SQ_OK;
}
