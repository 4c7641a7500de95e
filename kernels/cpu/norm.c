/* layernorm and rmsnorm, one row per iteration. Statistics are accumulated
 * in double and the variance takes a second pass over (x - mean): activations
 * with a large common offset (residual streams drift) would lose most of
 * their digits in a one-pass fp32 E[x^2] - E[x]^2. */
#include <math.h>

#include "cpu_internal.h"

/* Rows*cols below which threads cost more than they save. */
#define SQ_NORM_PAR_MIN 32768

sq_status_t sq_cpu_layernorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                             const sq_tensor_t *b, float eps, sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend("layernorm", be));
    SQ_TRY(sq_cpu_check_mat("layernorm", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    SQ_TRY(sq_cpu_check_mat("layernorm", "y", y, n, c));
    SQ_TRY(sq_cpu_check_vec("layernorm", "g", g, c));
    if (b) SQ_TRY(sq_cpu_check_vec("layernorm", "b", b, c));
    if (!(eps >= 0.0f))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.layernorm: eps %g is negative or NaN",
                            (double)eps);
    if (n == 0 || c == 0) return SQ_OK;

    const float *gp = g->data;
    const float *bp = b ? b->data : NULL;
    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_NORM_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *xr = sq_cpu_row(x, r);
        float *yr = sq_cpu_row(y, r);
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++)
            s += xr[j];
        double mean = s / (double)c;
        double v = 0.0;
#pragma omp simd reduction(+ : v)
        for (int64_t j = 0; j < c; j++) {
            double d = (double)xr[j] - mean;
            v += d * d;
        }
        float rstd = (float)(1.0 / sqrt(v / (double)c + (double)eps));
        /* x - mean in two fp32 steps: x - m_hi is exact near the mean
         * (Sterbenz), so rounding the mean to fp32 costs nothing even when it
         * is large next to the spread */
        float m_hi = (float)mean, m_lo = (float)(mean - (double)m_hi);
        if (bp) {
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                yr[j] = ((xr[j] - m_hi) - m_lo) * rstd * gp[j] + bp[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                yr[j] = ((xr[j] - m_hi) - m_lo) * rstd * gp[j];
        }
    }
    return SQ_OK;
}

sq_status_t sq_cpu_rmsnorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g, float eps,
                           sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend("rmsnorm", be));
    SQ_TRY(sq_cpu_check_mat("rmsnorm", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    SQ_TRY(sq_cpu_check_mat("rmsnorm", "y", y, n, c));
    SQ_TRY(sq_cpu_check_vec("rmsnorm", "g", g, c));
    if (!(eps >= 0.0f))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.rmsnorm: eps %g is negative or NaN",
                            (double)eps);
    if (n == 0 || c == 0) return SQ_OK;

    const float *gp = g->data;
    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_NORM_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *xr = sq_cpu_row(x, r);
        float *yr = sq_cpu_row(y, r);
        double ss = 0.0;
#pragma omp simd reduction(+ : ss)
        for (int64_t j = 0; j < c; j++)
            ss += (double)xr[j] * (double)xr[j];
        float rinv = (float)(1.0 / sqrt(ss / (double)c + (double)eps));
        /* (x * rinv) * g, in the order HF Llama and llama2.c apply them */
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            yr[j] = (xr[j] * rinv) * gp[j];
    }
    return SQ_OK;
}
