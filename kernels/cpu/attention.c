/* Causal self-attention with GQA.
 *
 * Work items are (sequence b, query head h, block of SQ_CPU_ATTN_BLOCK query
 * rows). An item needs keys 0..i1 only, so the score block is
 * [rows, i1] = scale * Q_blk K[0:i1]^T (one sgemm), its rows go through a
 * causal softmax in place, and out_blk = P V[0:i1] (a second sgemm) is written
 * straight into the output view. Items are independent, so the result does
 * not depend on which thread ran which item, and skipping whole blocks above
 * the diagonal saves ~half of the flops at long T.
 */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

sq_status_t sq_cpu_attention(sq_backend_t *be, const sq_tensor_t *q, const sq_tensor_t *k,
                             const sq_tensor_t *v, int B, int T, int n_heads, int n_kv_heads,
                             int head_dim, float scale, sq_tensor_t *out)
{
    SQ_TRY(sq_cpu_check_backend("attention", be));
    if (B < 0 || T < 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.attention: bad sizes B=%d T=%d H=%d K=%d D=%d",
                            B, T, n_heads, n_kv_heads, head_dim);
    if (n_heads % n_kv_heads != 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.attention: %d query heads do not group evenly over %d kv heads",
                            n_heads, n_kv_heads);
    if (!isfinite(scale))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.attention: scale %g is not finite",
                            (double)scale);
    int64_t n = (int64_t)B * T;
    int64_t qc = (int64_t)n_heads * head_dim, kc = (int64_t)n_kv_heads * head_dim;
    SQ_TRY(sq_cpu_check_mat("attention", "q", q, n, qc));
    SQ_TRY(sq_cpu_check_mat("attention", "k", k, n, kc));
    SQ_TRY(sq_cpu_check_mat("attention", "v", v, n, kc));
    SQ_TRY(sq_cpu_check_mat("attention", "out", out, n, qc));
    if (sq_cpu_overlaps(out, q) || sq_cpu_overlaps(out, k) || sq_cpu_overlaps(out, v))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.attention: out overlaps q, k or v");
    if (sq_tensor_ld(q) > INT_MAX || sq_tensor_ld(k) > INT_MAX || sq_tensor_ld(v) > INT_MAX ||
        sq_tensor_ld(out) > INT_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cpu.attention: a row stride exceeds the BLAS int range");
    sq_cpu_ctx_t *ctx = sq_cpu_ctx(be);
    if (n == 0) return SQ_OK;
    if (T > ctx->attn_max_seq)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.attention: T = %d exceeds the scratch reserved for max_seq = "
                            "%" PRId64 " (call reserve with the model's limits first)",
                            T, ctx->attn_max_seq);

    const int group = n_heads / n_kv_heads;
    const int64_t ldq = sq_tensor_ld(q), ldk = sq_tensor_ld(k), ldv = sq_tensor_ld(v),
                  ldo = sq_tensor_ld(out);
    const int64_t nblk = (T + SQ_CPU_ATTN_BLOCK - 1) / SQ_CPU_ATTN_BLOCK;
    const int64_t items = (int64_t)B * n_heads * nblk;
    const float *qd = q->data, *kd = k->data, *vd = v->data;
    float *od = out->data;

    /* later blocks are longer, hence the dynamic schedule; placement does not
     * change any value */
#pragma omp parallel for num_threads(ctx->nthreads) schedule(dynamic, 1) if (items > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t blk = it % nblk, bh = it / nblk;
        int64_t b = bh / n_heads, h = bh % n_heads, kvh = h / group;
        int64_t i0 = blk * SQ_CPU_ATTN_BLOCK;
        int64_t m = T - i0 < SQ_CPU_ATTN_BLOCK ? T - i0 : SQ_CPU_ATTN_BLOCK;
        int64_t nk = i0 + m; /* keys 0..nk-1 are visible to some row of the block */
        int64_t row0 = b * T;
        float *s = ctx->attn_scratch + (size_t)omp_get_thread_num() * ctx->attn_slot_floats;

        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nk, head_dim, scale,
                    qd + (row0 + i0) * ldq + h * head_dim, (int)ldq,
                    kd + row0 * ldk + kvh * head_dim, (int)ldk, 0.0f, s, (int)nk);
        for (int64_t r = 0; r < m; r++) {
            float *sr = s + r * nk;
            int64_t vis = i0 + r + 1; /* causal: keys 0..i */
            sq_cpu_softmax_row(sr, vis);
            memset(sr + vis, 0, (size_t)(nk - vis) * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, head_dim, (int)nk, 1.0f, s,
                    (int)nk, vd + row0 * ldv + kvh * head_dim, (int)ldv, 0.0f,
                    od + (row0 + i0) * ldo + h * head_dim, (int)ldo);
    }
    return SQ_OK;
}
