// rope: rotary position embedding in place on x[N, H*D].
//
// The angles are rope.c's exactly: inv_freq = 1 / powf(theta, (float)(2i) / D)
// is computed on the host with the same libm call (so the same bits) and
// passed by value, and the angle is the fp32 product (float)pos * inv_freq.
// Only sincosf differs (CUDA's, within 2 ulp, for glibc's cosf/sinf). The
// rotation is spelled with explicitly rounded ops, as the CPU evaluates it
// (no fma contraction). One thread per (row, head, pair): each pair is read
// and written by one thread.
#include <inttypes.h>
#include <math.h>

#include "cuda_internal.h"

namespace {

constexpr int kThreads = 256;

struct rope_freqs {
    float inv[SQ_CUDA_ROPE_MAX_PAIRS];
};

__global__ void rope_kernel(float *x, int64_t ldx, int64_t rows, int n_heads, int head_dim,
                            int stride, int mate, const int32_t *__restrict__ pos, rope_freqs f)
{
    const int n_pairs = head_dim / 2;
    const int64_t pairs = (int64_t)n_heads * n_pairs;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
        const float fpos = (float)pos[r];
        float *xr = x + r * ldx;
        for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < pairs;
             p += (int64_t)gridDim.x * blockDim.x) {
            const int h = (int)(p / n_pairs), i = (int)(p - (int64_t)h * n_pairs);
            const float a = __fmul_rn(fpos, f.inv[i]);
            float sn, cs;
            sincosf(a, &sn, &cs);
            float *p0 = xr + (int64_t)h * head_dim + (int64_t)i * stride;
            const float x0 = p0[0], x1 = p0[mate];
            p0[0] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
            p0[mate] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
        }
    }
}

} // namespace

sq_status_t sq_cuda_rope(sq_backend_t *be, sq_rope_style_t style, sq_tensor_t *x, int n_heads,
                         int head_dim, const int32_t *pos, float theta)
{
    SQ_TRY(sq_cuda_begin("rope", be));
    if (style != SQ_ROPE_HALF && style != SQ_ROPE_INTERLEAVED)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.rope: unknown style %d", (int)style);
    if (n_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.rope: need n_heads > 0 and an even head_dim > 0 (got %d, %d)",
                            n_heads, head_dim);
    if (head_dim / 2 > SQ_CUDA_ROPE_MAX_PAIRS)
        return sq_error_set(SQ_ERR_UNSUPPORTED, "cuda.rope: head_dim %d exceeds the %d supported",
                            head_dim, 2 * SQ_CUDA_ROPE_MAX_PAIRS);
    if (!(theta > 0.0f) || isinf(theta))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.rope: theta %g must be positive and finite",
                            (double)theta);
    SQ_TRY(sq_cuda_check_mat("rope", "x", x, -1, (int64_t)n_heads * head_dim));
    int64_t n = sq_tensor_rows(x);
    if (n > 0 && !pos) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.rope: pos is NULL");
    for (int64_t r = 0; r < n; r++)
        if (pos[r] < 0)
            return sq_error_set(SQ_ERR_RANGE, "cuda.rope: pos[%" PRId64 "] = %" PRId32 " < 0", r,
                                pos[r]);
    if (n == 0) return SQ_OK;
    SQ_TRY(sq_cuda_upload_i32(be, "rope", pos, n));

    rope_freqs f;
    const int n_pairs = head_dim / 2;
    for (int i = 0; i < SQ_CUDA_ROPE_MAX_PAIRS; i++)
        f.inv[i] = i < n_pairs ? 1.0f / powf(theta, (float)(2 * i) / (float)head_dim) : 0.0f;
    // pair i of a head is (i, i + D/2) or (2i, 2i + 1)
    const int stride = style == SQ_ROPE_HALF ? 1 : 2;
    const int mate = style == SQ_ROPE_HALF ? n_pairs : 1;
    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    rope_kernel<<<sq_cuda_grid_2d(n, (int64_t)n_heads * n_pairs, kThreads), kThreads, 0,
                  ctx->stream>>>((float *)x->data, sq_tensor_ld(x), n, n_heads, head_dim, stride,
                                 mate, ctx->d_i32, f);
    SQ_CUDA_LAUNCHED("rope");
    return SQ_OK;
}
