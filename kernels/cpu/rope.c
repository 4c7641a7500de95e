/* rope: rotary position embedding in place on x[N, H*D].
 *
 * Angles follow PyTorch (HF) and llama2.c exactly, in fp32: inv_freq =
 * 1 / powf(theta, (float)(2i) / D), angle = (float)pos * inv_freq. The fp32
 * product is off from the exact angle by up to pos * 2^-24 rad, but it is
 * the value those references rotate by, so matching it is what keeps us
 * within ~1e-6 of them at long positions. cosf/sinf of that fp32 angle
 * (glibc: under 1 ulp) then stand in for torch's fp32 cos/sin.
 */
#include <inttypes.h>
#include <math.h>

#include "cpu_internal.h"

/* Pairs whose cos/sin are computed together before sweeping the heads. */
#define SQ_ROPE_CHUNK 64
#define SQ_ROPE_PAR_MIN 16384

sq_status_t sq_cpu_rope(sq_backend_t *be, sq_rope_style_t style, sq_tensor_t *x, int n_heads,
                        int head_dim, const int32_t *pos, float theta)
{
    SQ_TRY(sq_cpu_check_backend("rope", be));
    if (style != SQ_ROPE_HALF && style != SQ_ROPE_INTERLEAVED)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.rope: unknown style %d", (int)style);
    if (n_heads <= 0 || head_dim <= 0 || head_dim % 2 != 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.rope: need n_heads > 0 and an even head_dim > 0 (got %d, %d)",
                            n_heads, head_dim);
    if (!(theta > 0.0f) || isinf(theta))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.rope: theta %g must be positive and finite",
                            (double)theta);
    SQ_TRY(sq_cpu_check_mat("rope", "x", x, -1, (int64_t)n_heads * head_dim));
    int64_t n = sq_tensor_rows(x);
    if (n > 0 && !pos) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.rope: pos is NULL");
    for (int64_t r = 0; r < n; r++)
        if (pos[r] < 0)
            return sq_error_set(SQ_ERR_RANGE, "cpu.rope: pos[%" PRId64 "] = %" PRId32 " < 0", r,
                                pos[r]);

    int half = head_dim / 2;
    /* pair i of a head is (i, i + D/2) or (2i, 2i + 1) */
    int64_t stride = style == SQ_ROPE_HALF ? 1 : 2;
    int64_t mate = style == SQ_ROPE_HALF ? half : 1;
    int nt = sq_cpu_ctx(be)->nthreads;
    for (int i0 = 0; i0 < half; i0 += SQ_ROPE_CHUNK) {
        int m = half - i0 < SQ_ROPE_CHUNK ? half - i0 : SQ_ROPE_CHUNK;
        float inv_freq[SQ_ROPE_CHUNK];
        for (int i = 0; i < m; i++)
            inv_freq[i] = 1.0f / powf(theta, (float)(2 * (i0 + i)) / (float)head_dim);
#pragma omp parallel for num_threads(nt) schedule(static) if (n * n_heads * m >= SQ_ROPE_PAR_MIN)
        for (int64_t r = 0; r < n; r++) {
            float *xr = sq_cpu_row(x, r);
            float fpos = (float)pos[r];
            float cs[SQ_ROPE_CHUNK], sn[SQ_ROPE_CHUNK];
            for (int i = 0; i < m; i++) {
                float a = fpos * inv_freq[i];
                cs[i] = cosf(a);
                sn[i] = sinf(a);
            }
            for (int h = 0; h < n_heads; h++) {
                float *xh = xr + (int64_t)h * head_dim + i0 * stride;
                for (int i = 0; i < m; i++) {
                    float *p0 = xh + i * stride;
                    float x0 = p0[0], x1 = p0[mate];
                    p0[0] = x0 * cs[i] - x1 * sn[i];
                    p0[mate] = x0 * sn[i] + x1 * cs[i];
                }
            }
        }
    }
    return SQ_OK;
}
