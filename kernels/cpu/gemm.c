/* linear: y[N,out] (+)= x[N,in] · W (+ bias) with OpenBLAS sgemm.
 *
 * The output is split into one block per OpenMP thread and each block is one
 * single-threaded sgemm call. OpenBLAS's own thread pool is left idle on
 * purpose (backend_cpu.c sets it to 1): two pools on the same cores fight,
 * and a fixed split keeps results a function of the thread count only.
 */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <omp.h>

#include "cpu_internal.h"

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define SQ_GEMM_PAR_MIN_MACS (1 << 18)

typedef struct gemm_args {
    const float *x;
    int64_t ldx;
    const float *w;
    int64_t ldw;
    CBLAS_TRANSPOSE wtrans;
    const float *bias;
    int accumulate;
    float *y;
    int64_t ldy;
    int64_t k;
} gemm_args_t;

/* One output block: rows [r0, r1) x cols [c0, c1). */
static void gemm_block(const gemm_args_t *a, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    int64_t m = r1 - r0, n = c1 - c0;
    if (m <= 0 || n <= 0) return;
    float beta = a->accumulate ? 1.0f : 0.0f;
    if (a->bias) {
        /* fold the bias into C so sgemm adds onto it with beta = 1 */
        for (int64_t r = r0; r < r1; r++) {
            float *yr = a->y + r * a->ldy;
            if (a->accumulate) {
#pragma omp simd
                for (int64_t c = c0; c < c1; c++)
                    yr[c] += a->bias[c];
            } else {
#pragma omp simd
                for (int64_t c = c0; c < c1; c++)
                    yr[c] = a->bias[c];
            }
        }
        beta = 1.0f;
    }
    if (a->k == 0) {
        if (beta == 0.0f)
            for (int64_t r = r0; r < r1; r++)
                for (int64_t c = c0; c < c1; c++)
                    a->y[r * a->ldy + c] = 0.0f;
        return;
    }
    /* column c of y is row c of W[out,in] or column c of W[in,out] */
    const float *wb = a->wtrans == CblasTrans ? a->w + c0 * a->ldw : a->w + c0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, a->wtrans, (int)m, (int)n, (int)a->k, 1.0f,
                a->x + r0 * a->ldx, (int)a->ldx, wb, (int)a->ldw, beta, a->y + r0 * a->ldy + c0,
                (int)a->ldy);
}

sq_status_t sq_cpu_linear(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *w,
                          sq_wlayout_t layout, const sq_tensor_t *bias, int accumulate,
                          sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend("linear", be));
    if (layout != SQ_WEIGHT_OUT_IN && layout != SQ_WEIGHT_IN_OUT)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.linear: unknown weight layout %d",
                            (int)layout);
    SQ_TRY(sq_cpu_check_mat("linear", "x", x, -1, -1));
    int64_t n_rows = sq_tensor_rows(x), in = sq_tensor_cols(x);
    SQ_TRY(sq_cpu_check_mat("linear", "y", y, n_rows, -1));
    int64_t out = sq_tensor_cols(y);
    if (layout == SQ_WEIGHT_OUT_IN)
        SQ_TRY(sq_cpu_check_mat("linear", "w[out,in]", w, out, in));
    else
        SQ_TRY(sq_cpu_check_mat("linear", "w[in,out]", w, in, out));
    if (bias) SQ_TRY(sq_cpu_check_vec("linear", "bias", bias, out));
    if (n_rows > INT_MAX || in > INT_MAX || out > INT_MAX || sq_tensor_ld(x) > INT_MAX ||
        sq_tensor_ld(w) > INT_MAX || sq_tensor_ld(y) > INT_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cpu.linear: a dimension exceeds the BLAS int range");
    if (sq_cpu_overlaps(y, x) || sq_cpu_overlaps(y, w) || (bias && sq_cpu_overlaps(y, bias)))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.linear: y overlaps an input");
    if (n_rows == 0 || out == 0) return SQ_OK;

    gemm_args_t a = {
        .x = x->data,
        .ldx = sq_tensor_ld(x),
        .w = w->data,
        .ldw = sq_tensor_ld(w),
        .wtrans = layout == SQ_WEIGHT_OUT_IN ? CblasTrans : CblasNoTrans,
        .bias = bias ? bias->data : NULL,
        .accumulate = accumulate,
        .y = y->data,
        .ldy = sq_tensor_ld(y),
        .k = in,
    };
    int nt = sq_cpu_ctx(be)->nthreads;
    if (nt == 1 || (double)n_rows * (double)out * (double)in < SQ_GEMM_PAR_MIN_MACS) {
        gemm_block(&a, 0, n_rows, 0, out);
        return SQ_OK;
    }
    /* Split rows while each thread keeps a reasonable panel; otherwise split
     * columns on 16-float (cache line) boundaries. */
    int split_rows = n_rows >= 32 * (int64_t)nt || n_rows >= out;
#pragma omp parallel num_threads(nt)
    {
        int64_t t = omp_get_thread_num(), nteam = omp_get_num_threads();
        if (split_rows) {
            gemm_block(&a, n_rows * t / nteam, n_rows * (t + 1) / nteam, 0, out);
        } else {
            int64_t units = (out + 15) / 16;
            int64_t c0 = units * t / nteam * 16, c1 = units * (t + 1) / nteam * 16;
            gemm_block(&a, 0, n_rows, c0, c1 < out ? c1 : out);
        }
    }
    return SQ_OK;
}
