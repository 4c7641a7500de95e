/* Row softmax / log-sum-exp and the cross-entropy op built on them.
 *
 * Cross-entropy over a [2048, 50272] logits block is, with the LM-head GEMM,
 * most of a small model's forward, so the exp runs vectorized (vmath.h).
 * Sums use fp32 partials over fixed 1024-element blocks added in double:
 * cheap, accurate and independent of the thread count.
 */
#include <inttypes.h>
#include <math.h>

#include "cpu_internal.h"
#include "vmath.h"

#define SQ_SUM_BLOCK 1024

/* Max over 16 lanes kept in an array: clang will not vectorize a select-max
 * reduction without fast-math, but it does vectorize this lane-wise form. */
static float row_max(const float *x, int64_t n)
{
    enum { LANES = 16 };
    float lm[LANES];
    for (int l = 0; l < LANES; l++)
        lm[l] = -INFINITY;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
#pragma omp simd
        for (int l = 0; l < LANES; l++)
            lm[l] = x[j + l] > lm[l] ? x[j + l] : lm[l];
    float m = -INFINITY;
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    for (int l = 0; l < LANES; l++)
        m = lm[l] > m ? lm[l] : m;
    return m;
}

/* sum_j exp(x[j] - m) */
static double sum_exp(const float *x, int64_t n, float m)
{
    double s = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += SQ_SUM_BLOCK) {
        int64_t j1 = j0 + SQ_SUM_BLOCK < n ? j0 + SQ_SUM_BLOCK : n;
        float ps = 0.0f;
#pragma omp simd reduction(+ : ps)
        for (int64_t j = j0; j < j1; j++)
            ps += sq_vexpf(x[j] - m);
        s += ps;
    }
    return s;
}

void sq_cpu_softmax_row(float *p, int64_t n)
{
    float m = row_max(p, n);
    double s = 0.0;
    for (int64_t j0 = 0; j0 < n; j0 += SQ_SUM_BLOCK) {
        int64_t j1 = j0 + SQ_SUM_BLOCK < n ? j0 + SQ_SUM_BLOCK : n;
        float ps = 0.0f;
#pragma omp simd reduction(+ : ps)
        for (int64_t j = j0; j < j1; j++) {
            float e = sq_vexpf(p[j] - m);
            p[j] = e;
            ps += e;
        }
        s += ps;
    }
    float inv = (float)(1.0 / s);
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        p[j] *= inv;
}

sq_status_t sq_cpu_cross_entropy(sq_backend_t *be, const sq_tensor_t *logits,
                                 const int32_t *targets, float *nll)
{
    SQ_TRY(sq_cpu_check_backend("cross_entropy", be));
    SQ_TRY(sq_cpu_check_mat("cross_entropy", "logits", logits, -1, -1));
    int64_t n = sq_tensor_rows(logits), vocab = sq_tensor_cols(logits);
    if (n > 0 && (!targets || !nll))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.cross_entropy: targets or nll is NULL");
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= vocab)
            return sq_error_set(SQ_ERR_RANGE,
                                "cpu.cross_entropy: targets[%" PRId64 "] = %" PRId32
                                " is outside the %" PRId64 " logits",
                                i, targets[i], vocab);

    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * vocab >= 32768)
    for (int64_t i = 0; i < n; i++) {
        if (targets[i] < 0) {
            nll[i] = 0.0f; /* padding / ignored position */
            continue;
        }
        const float *xr = sq_cpu_row(logits, i);
        float m = row_max(xr, vocab);
        if (isinf(m)) {
            /* +inf anywhere: lse is inf; all -inf: the target has prob 0 */
            nll[i] = INFINITY;
            continue;
        }
        double lse = (double)m + log(sum_exp(xr, vocab, m));
        nll[i] = (float)(lse - (double)xr[targets[i]]);
    }
    return SQ_OK;
}
