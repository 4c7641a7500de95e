/* Encode/decode timing and checking of one matrix (see codec_measure.h). */
#include "codec_measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double sq_cm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int sq_cm_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double sq_cm_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, sq_cm_cmp);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void *sq_cm_alloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench codec: out of memory (%zu bytes)\n", n);
        abort(); /* a tool, not the library */
    }
    return p;
}

sq_status_t sq_bench_codec_measure(const float *x, int64_t rows, int64_t cols,
                                   const sq_codec_params_t *p, int reps,
                                   sq_bench_codec_result_t *res)
{
    if (reps < 1) reps = 1;
    size_t cap = sq_codec_max_size(p, rows, cols);
    if (!cap) return SQ_ERR_INVALID_ARG; /* message recorded */
    const size_t n = (size_t)rows * (size_t)cols;
    uint8_t *msg = sq_cm_alloc(cap), *ref = sq_cm_alloc(cap);
    float *y = sq_cm_alloc(n * sizeof(float)), *yref = sq_cm_alloc(n * sizeof(float));
    double *te = sq_cm_alloc(sizeof(double) * (size_t)reps);
    double *td = sq_cm_alloc(sizeof(double) * (size_t)reps);
    sq_status_t st = SQ_OK;
    sq_codec_stats_t stats;
    size_t len = 0, len_ref = 0;

    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        double t0 = sq_cm_now();
        st = sq_codec_encode(p, x, rows, cols, cols, msg, cap, &len, &stats);
        double t1 = sq_cm_now();
        if (st != SQ_OK) goto out;
        if (r >= 0) te[r] = t1 - t0;
    }
    for (int r = -1; r < reps; r++) {
        double t0 = sq_cm_now();
        st = sq_codec_decode(msg, len, y, rows, cols, cols);
        double t1 = sq_cm_now();
        if (st != SQ_OK) goto out;
        if (r >= 0) td[r] = t1 - t0;
    }
    st = sq_codec_encode_ref(p, x, rows, cols, cols, ref, cap, &len_ref, NULL);
    if (st != SQ_OK) goto out;
    st = sq_codec_decode_ref(ref, len_ref, yref, rows, cols, cols);
    if (st != SQ_OK) goto out;

    memset(res, 0, sizeof *res);
    res->encoding = stats.encoding;
    res->nnz = stats.nnz;
    res->density = stats.density;
    res->bytes = len;
    res->size_dense = stats.size_dense;
    res->size_bitmap = stats.size_bitmap;
    res->size_csr = stats.size_csr;
    res->ratio_fp16 = (double)n * 2.0 / (double)len;
    res->bits_per_value = 8.0 * (double)len / (double)n;
    res->enc_s = sq_cm_median(te, reps); /* sorts te: te[0] is the fastest */
    res->dec_s = sq_cm_median(td, reps);
    res->enc_best_gbs = (double)n * 4.0 / te[0] * 1e-9;
    res->dec_best_gbs = (double)n * 4.0 / td[0] * 1e-9;
    res->enc_gbs = (double)n * 4.0 / res->enc_s * 1e-9;
    res->dec_gbs = (double)n * 4.0 / res->dec_s * 1e-9;
    res->msg_diff = len != len_ref || memcmp(msg, ref, len) != 0;
    double se = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&y[i], &yref[i], 4) != 0) res->wrong++;
        double e = fabs((double)x[i] - (double)y[i]);
        se += e * e;
        if (e > mx) mx = e;
    }
    res->max_abs_err = mx;
    res->rms_err = sqrt(se / (double)n);
out:
    free(msg);
    free(ref);
    free(y);
    free(yref);
    free(te);
    free(td);
    return st;
}
