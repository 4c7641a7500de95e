/* Codec round trips: fast path == reference twin byte for byte, codes and
 * x^ identical across encodings, error bounds, exact size formulas, auto's
 * choice, edge shapes, thresholds, outliers, lossless, non-finite input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec_internal.h"
#include "codec_simd.h"
#include "codec_test_util.h"
#include "sparq/codec.h"

static const sq_codec_encoding_t k_encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                             SQ_CODEC_AUTO};

/* Scale of group g of row r as stored in a message. */
static float msg_scale(const uint8_t *msg, int64_t r, uint64_t g)
{
    sq_codec_header_t h;
    sq_codec_layout_t l;
    SQ_CHECK(sq_codec_peek(msg, SIZE_MAX, &h));
    sq_codec_layout(&h, &l);
    uint64_t si = (uint64_t)r * l.groups_per_row + g;
    uint32_t w = h.scale_dtype == SQ_DTYPE_F16 ? sq_ld16(msg + l.off_scales + 2 * si)
                                               : sq_ld32(msg + l.off_scales + 4 * si);
    return sq_codec_scale_value(w, h.scale_dtype);
}

static int is_outlier(const sq_codec_params_t *p, int64_t c)
{
    for (uint32_t j = 0; j < p->n_outliers; j++)
        if (p->outlier_cols[j] == (uint32_t)c) return 1;
    return 0;
}

/* Everything one encode must satisfy; returns the decoded x^. */
static float *check_one(const sq_codec_params_t *p, const float *x, int64_t rows, int64_t cols,
                        int64_t ld)
{
    sq_codec_stats_t st;
    size_t len = 0, len_ref = 0;
    uint8_t *msg = ct_encode(p, x, rows, cols, ld, &len, &st);

    /* the reference twin writes the same bytes */
    size_t cap = sq_codec_max_size(p, rows, cols);
    uint8_t *ref = malloc(cap);
    assert_non_null(ref);
    sq_codec_stats_t st_ref;
    SQ_CHECK(sq_codec_encode_ref(p, x, rows, cols, ld, ref, cap, &len_ref, &st_ref));
    assert_int_equal(len, len_ref);
    if (memcmp(msg, ref, len) != 0) {
        for (size_t i = 0; i < len; i++)
            if (msg[i] != ref[i])
                fail_msg("fast and ref encode differ at byte %zu of %zu (enc %s bits %d)", i, len,
                         sq_codec_encoding_name(st.encoding), p->bits);
    }
    assert_memory_equal(&st, &st_ref, sizeof st);
    free(ref);

    /* sizes: predicted == produced, sections add up, auto picks the minimum */
    assert_int_equal(st.bytes_total, len);
    assert_int_equal(st.bytes_header + st.bytes_scales + st.bytes_outliers + st.bytes_structure +
                         st.bytes_codes,
                     len);
    assert_int_equal(st.size_dense, sq_codec_size_dense(p, rows, cols, st.nnz));
    assert_int_equal(st.size_bitmap, sq_codec_size_bitmap(p, rows, cols, st.nnz));
    assert_int_equal(st.size_csr, sq_codec_size_csr(p, rows, cols, st.nnz));
    size_t want = st.encoding == SQ_CODEC_DENSE    ? st.size_dense
                  : st.encoding == SQ_CODEC_BITMAP ? st.size_bitmap
                                                   : st.size_csr;
    assert_int_equal(len, want);
    if (p->encoding == SQ_CODEC_AUTO) {
        size_t mn = st.size_dense;
        if (st.size_bitmap < mn) mn = st.size_bitmap;
        if (st.size_csr < mn) mn = st.size_csr;
        assert_int_equal(len, mn);
        /* ties: dense < bitmap < csr */
        if (st.encoding == SQ_CODEC_BITMAP) assert_true(st.size_dense > len);
        if (st.encoding == SQ_CODEC_CSR) assert_true(st.size_dense > len && st.size_bitmap > len);
    } else {
        assert_int_equal(st.encoding, p->encoding);
    }
    assert_true(len <= sq_codec_max_size(p, rows, cols));
    assert_true(fabs(st.density - (double)st.nnz / (double)(rows * cols)) < 1e-12);

    /* peek agrees */
    sq_codec_header_t h;
    SQ_CHECK(sq_codec_peek(msg, len, &h));
    assert_int_equal(h.total_size, len);
    assert_int_equal(h.nnz, st.nnz);
    assert_int_equal(h.encoding, st.encoding);
    assert_int_equal(h.rows, rows);
    assert_int_equal(h.cols, cols);
    assert_int_equal(h.tag, p->tag);

    float *y = ct_decode_both(msg, len, rows, cols, ld);

    /* error bounds */
    const int qmax = sq_codec_qmax(p->bits);
    const uint64_t gs = p->granularity == SQ_CODEC_PER_GROUP ? p->group_size : (uint64_t)cols;
    uint64_t nnz = 0;
    for (int64_t r = 0; r < rows; r++)
        for (uint64_t g = 0; g < (uint64_t)cols / gs; g++) {
            float s = msg_scale(msg, r, g);
            float amax = 0.0f;
            for (uint64_t c = g * gs; c < (g + 1) * gs; c++)
                if (!is_outlier(p, (int64_t)c) && fabsf(x[r * ld + c]) > amax)
                    amax = fabsf(x[r * ld + c]);
            /* no code clamps, except where a scale had to be capped near FLT_MAX */
            const int capped = isinf(nextafterf(s, INFINITY) * (float)qmax);
            assert_true((double)s * qmax >= (double)amax || capped);
            assert_false(isinf(s * (float)qmax));
            if (amax == 0.0f) assert_true(s == 0.0f);
            double ideal = (double)amax / qmax;
            double rel = p->scale_dtype == SQ_DTYPE_F16 ? 0x1p-10 : 0x1p-22;
            if (ideal > 0x1p-14) assert_true(s <= ideal * (1 + rel));
            for (uint64_t c = g * gs; c < (g + 1) * gs; c++) {
                float xv = x[r * ld + c], yv = y[r * ld + c];
                if (is_outlier(p, (int64_t)c)) {
                    float want_o =
                        p->outlier_dtype == SQ_DTYPE_F16 ? sq_f16_to_f32(sq_f32_to_f16(xv)) : xv;
                    assert_memory_equal(&yv, &want_o, 4);
                    continue;
                }
                double err = fabs((double)xv - (double)yv);
                double code = s > 0 ? (double)yv / s : 0;
                assert_true(fabs(code - rint(code)) < 1e-3);
                if (code != 0) nnz++;
                double tslack = (double)p->threshold * s; /* dropped codes */
                if (capped) tslack += (double)amax * 0x1p-16;
                assert_true(isfinite(yv));
                if (p->rounding == SQ_CODEC_ROUND_NEAREST)
                    assert_true(err <= s * 0.5 * (1 + 1e-6) + tslack + 1e-38);
                else
                    assert_true(err < s * (1 + 1e-6) + tslack + 1e-38);
            }
        }
    assert_int_equal(nnz, st.nnz);
    free(msg);
    return y;
}

static int64_t pick_group(int64_t cols)
{
    int64_t g = 32;
    while (g > 1 && cols % g)
        g /= 2;
    return g;
}

/* Every encoding x bits x granularity x scale dtype x rounding x shape x
 * density; x^ must be identical across encodings. */
static void test_matrix(void **state)
{
    (void)state;
    const int64_t shapes[][3] = {{5, 64, 64},   {3, 77, 80},     {1, 130, 130},  {9, 1, 1},
                                 {4, 256, 259}, {2, 1100, 1100}, {3, 2048, 2048}};
    const double dens[] = {0.0, 0.03, 0.5, 1.0};
    const int bits[] = {8, 4, 2};
    int configs = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int64_t rows = shapes[si][0], cols = shapes[si][1], ld = shapes[si][2];
        float *x = malloc(sizeof(float) * (size_t)(rows * ld));
        for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++) {
            ct_fill_sparse(x, rows, cols, ld, dens[di], 3.0f, 1000 + si * 10 + di);
            for (int bi = 0; bi < 3; bi++)
                for (int gran = 0; gran < 3; gran++)
                    for (int sdt = 0; sdt < 2; sdt++)
                        for (int rnd = 0; rnd < 2; rnd++) {
                            sq_codec_params_t p = sq_codec_params_default();
                            p.bits = bits[bi];
                            p.scale_dtype = sdt ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
                            p.rounding = rnd ? SQ_CODEC_ROUND_STOCHASTIC : SQ_CODEC_ROUND_NEAREST;
                            p.seed = 77;
                            p.stream = si;
                            p.tag = 0x1234567890abcdefull;
                            if (gran == 1) {
                                p.granularity = SQ_CODEC_PER_GROUP;
                                p.group_size = (uint32_t)pick_group(cols);
                            } else if (gran == 2) { /* group = cols when a power of two */
                                if (cols & (cols - 1)) continue;
                                p.granularity = SQ_CODEC_PER_GROUP;
                                p.group_size = (uint32_t)cols;
                            }
                            float *first = NULL;
                            for (size_t e = 0; e < 4; e++) {
                                p.encoding = k_encs[e];
                                float *y = check_one(&p, x, rows, cols, ld);
                                configs++;
                                if (!first) {
                                    first = y;
                                    continue;
                                }
                                assert_memory_equal(first, y, sizeof(float) * (size_t)(rows * ld));
                                free(y);
                            }
                            free(first);
                        }
        }
        free(x);
    }
    print_message("%d configurations checked\n", configs);
}

/* Smooth data, larger per-group shapes, thresholds and outliers. */
static void test_threshold_and_outliers(void **state)
{
    (void)state;
    const int64_t rows = 6, cols = 192, ld = 200;
    float *x = malloc(sizeof(float) * rows * ld);
    ct_fill_smooth(x, rows, cols, ld, 2.0f, 5);
    /* outlier columns hold the largest values of their rows */
    const uint32_t oc[] = {0, 7, 64, 100, 191};
    for (int64_t r = 0; r < rows; r++)
        for (size_t j = 0; j < 5; j++)
            x[r * ld + oc[j]] = (j & 1 ? -1.0f : 1.0f) * (300.0f + r);
    const int bits[] = {8, 4, 2};
    for (int bi = 0; bi < 3; bi++)
        for (uint32_t thr = 0; thr < (uint32_t)sq_codec_qmax(bits[bi]); thr += 2)
            for (int with_out = 0; with_out < 2; with_out++)
                for (int odt = 0; odt < 2; odt++)
                    for (int gran = 0; gran < 2; gran++) {
                        sq_codec_params_t p = sq_codec_params_default();
                        p.bits = bits[bi];
                        p.threshold = thr;
                        if (gran) {
                            p.granularity = SQ_CODEC_PER_GROUP;
                            p.group_size = 64;
                        }
                        if (with_out) {
                            p.outlier_cols = oc;
                            p.n_outliers = 5;
                            p.outlier_dtype = odt ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
                        }
                        float *first = NULL;
                        for (size_t e = 0; e < 4; e++) {
                            p.encoding = k_encs[e];
                            float *y = check_one(&p, x, rows, cols, ld);
                            if (!first) {
                                first = y;
                                continue;
                            }
                            assert_memory_equal(first, y, sizeof(float) * rows * ld);
                            free(y);
                        }
                        if (with_out) { /* the outliers did not inflate the scales */
                            size_t len;
                            uint8_t *msg = ct_encode(&p, x, rows, cols, ld, &len, NULL);
                            for (int64_t r = 0; r < rows; r++)
                                assert_true(msg_scale(msg, r, 0) < 10.0f / sq_codec_qmax(p.bits));
                            free(msg);
                        }
                        free(first);
                    }
    free(x);
}

/* All zeros, all non-zero, shapes of every small width (not multiples of
 * 8 or 64), one row, one column. */
static void test_edges(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * 8 * 140);
    for (int64_t cols = 1; cols <= 130; cols++)
        for (int64_t rows = 1; rows <= 3; rows += 2)
            for (int kind = 0; kind < 3; kind++) {
                if (kind == 0) memset(x, 0, sizeof(float) * 8 * 140);
                if (kind == 1) ct_fill_sparse(x, rows, cols, cols, 1.0, 1.5f, (uint64_t)cols);
                if (kind == 2) ct_fill_sparse(x, rows, cols, cols, 0.1, 1.5f, (uint64_t)cols);
                for (int b = 8; b >= 2; b /= 2) {
                    sq_codec_params_t p = sq_codec_params_default();
                    p.bits = b;
                    float *first = NULL;
                    for (size_t e = 0; e < 4; e++) {
                        p.encoding = k_encs[e];
                        float *y = check_one(&p, x, rows, cols, cols);
                        if (kind == 0)
                            for (int64_t i = 0; i < rows * cols; i++)
                                assert_true(y[i] == 0.0f);
                        if (kind == 1) { /* every code non-zero */
                            sq_codec_stats_t st;
                            size_t len;
                            free(ct_encode(&p, x, rows, cols, cols, &len, &st));
                            assert_int_equal(st.nnz, rows * cols);
                        }
                        if (!first) {
                            first = y;
                            continue;
                        }
                        assert_memory_equal(first, y, sizeof(float) * rows * cols);
                        free(y);
                    }
                    free(first);
                }
            }
    free(x);
}

/* Bigger than one 64-bit word per row and a CSR with 4-byte indices. */
static void test_wide(void **state)
{
    (void)state;
    const int64_t rows = 2, cols = 70000;
    float *x = malloc(sizeof(float) * rows * cols);
    ct_fill_sparse(x, rows, cols, cols, 0.01, 1.0f, 9);
    sq_codec_params_t p = sq_codec_params_default();
    for (size_t e = 0; e < 4; e++) {
        p.encoding = k_encs[e];
        float *y = check_one(&p, x, rows, cols, cols);
        free(y);
    }
    sq_codec_header_t h;
    size_t len;
    p.encoding = SQ_CODEC_CSR;
    uint8_t *msg = ct_encode(&p, x, rows, cols, cols, &len, NULL);
    SQ_CHECK(sq_codec_peek(msg, len, &h));
    assert_int_equal(h.index_bytes, 4);
    free(msg);
    free(x);
}

static void test_scale_limits(void **state)
{
    (void)state;
    float x[4 * 8];
    sq_codec_params_t p = sq_codec_params_default();
    p.scale_dtype = SQ_DTYPE_F16;
    p.bits = 2;
    p.encoding = SQ_CODEC_DENSE;
    /* fp16 overflow: absmax 1e5 > 65504 * 1 */
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i % 3);
    x[2 * 8 + 5] = 1e5f;
    uint8_t buf[1024];
    size_t len;
    assert_int_equal(sq_codec_encode(&p, x, 4, 8, 8, buf, sizeof buf, &len, NULL), SQ_ERR_RANGE);
    assert_non_null(strstr(sq_error_last(), "row 2"));
    assert_int_equal(sq_codec_encode_ref(&p, x, 4, 8, 8, buf, sizeof buf, &len, NULL),
                     SQ_ERR_RANGE);
    /* the same with fp32 scales is fine */
    p.scale_dtype = SQ_DTYPE_F32;
    free(check_one(&p, x, 4, 8, 8));
    /* tiny values: fp16 scale underflow becomes a small subnormal, fp32
     * scales go subnormal; bounds still hold (check_one) */
    const float tiny[] = {1e-9f, -3e-8f, 1e-40f, 7e-45f, 0.0f, -1e-38f, 2e-30f, 5e-39f};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 8; c++)
            x[r * 8 + c] = tiny[(r + c) % 8] * (float)(r + 1);
    for (int sdt = 0; sdt < 2; sdt++)
        for (int b = 8; b >= 2; b /= 2) {
            p.scale_dtype = sdt ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
            p.bits = b;
            free(check_one(&p, x, 4, 8, 8));
        }
    /* near and at FLT_MAX: no fp32 scale covers absmax with 127 * s finite,
     * so the scale is capped and the top codes saturate (found by
     * fuzz_codec_encode: x^ used to decode as Inf) */
    const uint32_t big[] = {0x7f7fffffu, 0x7f7ffffeu, 0x7f7ff000u, 0x7f000000u};
    p.scale_dtype = SQ_DTYPE_F32;
    int capped_rows = 0;
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 32; i++)
            x[i] = (i & 1 ? -1 : 1) * 3.4e38f / (float)(1 + i % 5);
        for (int r = 0; r < 4; r++)
            memcpy(&x[r * 8 + (r + k) % 8], &big[k], 4);
        x[8 + 2] = -x[8 + 2];
        for (int b = 8; b >= 2; b /= 2) {
            p.bits = b;
            for (size_t e = 0; e < 4; e++) {
                p.encoding = k_encs[e];
                free(check_one(&p, x, 4, 8, 8));
            }
            if (k == 0 && b == 8) { /* rows hold FLT_MAX: 127 * s cannot cover it */
                size_t mlen;
                uint8_t *msg = ct_encode(&p, x, 4, 8, 8, &mlen, NULL);
                for (int r = 0; r < 4; r++)
                    capped_rows += (double)msg_scale(msg, r, 0) * sq_codec_qmax(b) < 0x1.fffffep127;
                free(msg);
            }
        }
    }
    assert_int_equal(capped_rows, 4); /* the capping path did run */
}

static void test_nonfinite_rejected(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    float x[5 * 9];
    uint8_t buf[4096];
    size_t len = 0;
    const uint32_t oc[] = {4};
    for (int b = 0; b < 3; b++)
        for (int e = 0; e < 4; e++)
            for (int outl = 0; outl < 2; outl++) {
                ct_fill_smooth(x, 5, 9, 9, 1.0f, 3);
                x[3 * 9 + 4] = bad[b];
                x[4 * 9 + 1] = bad[b]; /* the first in row-major order is reported */
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = k_encs[e];
                if (outl) { /* outlier columns are checked too */
                    p.outlier_cols = oc;
                    p.n_outliers = 1;
                }
                assert_int_equal(sq_codec_encode(&p, x, 5, 9, 9, buf, sizeof buf, &len, NULL),
                                 SQ_ERR_RANGE);
                assert_non_null(strstr(sq_error_last(), "row 3, column 4"));
                assert_int_equal(sq_codec_encode_ref(&p, x, 5, 9, 9, buf, sizeof buf, &len, NULL),
                                 SQ_ERR_RANGE);
                assert_non_null(strstr(sq_error_last(), "row 3, column 4"));
                assert_int_equal(len, 0);
            }
}

static void test_lossless(void **state)
{
    (void)state;
    const int64_t rows = 3, cols = 7, ld = 9;
    float x[3 * 9];
    ct_fill_smooth(x, rows, cols, ld, 5.0f, 8);
    uint32_t specials[] = {0x7fc00001u, 0xffa00000u /* signalling, payload */,
                           0x7f800000u, 0xff800000u,
                           0x80000000u, 0x00000001u,
                           0x007fffffu, 0x7f7fffffu};
    for (int i = 0; i < 8; i++)
        memcpy(&x[(i / 4) * ld + (i % 4) * 2], &specials[i], 4);
    for (int dt = 0; dt < 2; dt++) {
        sq_codec_params_t p = sq_codec_params_default();
        p.encoding = SQ_CODEC_LOSSLESS;
        p.lossless_dtype = dt ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
        size_t len, len_ref;
        sq_codec_stats_t st;
        uint8_t *msg = ct_encode(&p, x, rows, cols, ld, &len, &st);
        assert_int_equal(len, sq_codec_size_lossless(&p, rows, cols));
        assert_int_equal(len, sq_codec_max_size(&p, rows, cols));
        assert_int_equal(st.encoding, SQ_CODEC_LOSSLESS);
        uint8_t ref[1024];
        SQ_CHECK(sq_codec_encode_ref(&p, x, rows, cols, ld, ref, sizeof ref, &len_ref, NULL));
        assert_int_equal(len, len_ref);
        assert_memory_equal(msg, ref, len);
        float *y = ct_decode_both(msg, len, rows, cols, ld);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                float want = dt ? sq_f16_to_f32(sq_f32_to_f16(x[r * ld + c])) : x[r * ld + c];
                assert_memory_equal(&y[r * ld + c], &want, 4); /* bit-exact, NaN payload too */
            }
        free(y);
        free(msg);
    }
}

static void test_params_and_cap(void **state)
{
    (void)state;
    float x[4 * 16];
    ct_fill_smooth(x, 4, 16, 16, 1.0f, 1);
    uint8_t buf[2048];
    size_t len = 0;
    sq_codec_params_t p = sq_codec_params_default();
    sq_codec_params_t bad = p;
    bad.bits = 3;
    assert_int_equal(sq_codec_encode(&bad, x, 4, 16, 16, buf, sizeof buf, &len, NULL),
                     SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_max_size(&bad, 4, 16), 0);
    bad = p;
    bad.granularity = SQ_CODEC_PER_GROUP;
    bad.group_size = 12;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad.group_size = 32; /* does not divide 16 */
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.threshold = 127;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    const uint32_t oc_bad[] = {3, 3};
    bad.outlier_cols = oc_bad;
    bad.n_outliers = 2;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    const uint32_t oc_far[] = {16};
    bad.outlier_cols = oc_far;
    bad.n_outliers = 1;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.granularity = (sq_codec_granularity_t)7;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.scale_dtype = SQ_DTYPE_BF16;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.rounding = (sq_codec_rounding_t)2;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.encoding = SQ_CODEC_ENCODING_COUNT;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.n_outliers = 1; /* no list */
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    const uint32_t oc_one[] = {3};
    bad.outlier_cols = oc_one;
    bad.outlier_dtype = SQ_DTYPE_I8;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    bad = p;
    bad.encoding = SQ_CODEC_LOSSLESS;
    bad.lossless_dtype = SQ_DTYPE_BF16;
    assert_int_equal(sq_codec_params_check(&bad, 4, 16), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_size_lossless(&bad, 4, 16), 0);
    assert_int_equal(sq_codec_size_dense(NULL, 4, 16, 0), 0);
    assert_int_equal(sq_codec_params_check(NULL, 4, 16), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_encode(&p, NULL, 4, 16, 16, buf, sizeof buf, &len, NULL),
                     SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_encode_ref(&p, NULL, 4, 16, 16, buf, sizeof buf, &len, NULL),
                     SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_encode_ref(&p, x, 4, 16, 8, buf, sizeof buf, &len, NULL),
                     SQ_ERR_INVALID_ARG);
    assert_string_equal(sq_codec_encoding_name(SQ_CODEC_CSR), "csr");
    assert_string_equal(sq_codec_encoding_name((sq_codec_encoding_t)99), "unknown");
    /* lossless into a short buffer */
    sq_codec_params_t pl = p;
    pl.encoding = SQ_CODEC_LOSSLESS;
    assert_int_equal(sq_codec_encode(&pl, x, 4, 16, 16, buf, 100, &len, NULL), SQ_ERR_RANGE);
    assert_int_equal(sq_codec_encode_ref(&pl, x, 4, 16, 16, buf, 100, &len, NULL), SQ_ERR_RANGE);
    /* an fp16 outlier value that overflows */
    sq_codec_params_t po = p;
    po.outlier_cols = oc_one;
    po.n_outliers = 1;
    po.outlier_dtype = SQ_DTYPE_F16;
    float xo[4 * 16];
    memcpy(xo, x, sizeof xo);
    xo[2 * 16 + 3] = 1e6f;
    assert_int_equal(sq_codec_encode(&po, xo, 4, 16, 16, buf, sizeof buf, &len, NULL),
                     SQ_ERR_RANGE);
    assert_non_null(strstr(sq_error_last(), "x[2][3]"));
    assert_int_equal(sq_codec_encode_ref(&po, xo, 4, 16, 16, buf, sizeof buf, &len, NULL),
                     SQ_ERR_RANGE);
    /* ... which fp32 outliers carry exactly */
    po.outlier_dtype = SQ_DTYPE_F32;
    free(check_one(&po, xo, 4, 16, 16));
    assert_int_equal(sq_codec_params_check(&p, 0, 16), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_params_check(&p, 1 << 21, 1 << 20), SQ_ERR_INVALID_ARG);
    assert_int_equal(sq_codec_encode(&p, x, 4, 16, 15, buf, sizeof buf, &len, NULL),
                     SQ_ERR_INVALID_ARG);
    assert_int_equal(len, 0);

    /* cap: exactly the message works, one byte less is SQ_ERR_RANGE, for
     * every encoding (bitmap below max_size takes the two-sweep route) */
    for (size_t e = 0; e < 4; e++) {
        p.encoding = k_encs[e];
        size_t need;
        SQ_CHECK(sq_codec_encode(&p, x, 4, 16, 16, buf, sizeof buf, &need, NULL));
        uint8_t tight[2048];
        assert_int_equal(sq_codec_encode(&p, x, 4, 16, 16, tight, need - 1, &len, NULL),
                         SQ_ERR_RANGE);
        SQ_CHECK(sq_codec_encode(&p, x, 4, 16, 16, tight, need, &len, NULL));
        assert_int_equal(len, need);
        assert_memory_equal(tight, buf, need);
    }
    /* a sparse bitmap into a buffer smaller than max_size */
    float xs[4 * 16] = {0};
    xs[5] = 1.0f;
    p.encoding = SQ_CODEC_BITMAP;
    size_t full;
    SQ_CHECK(sq_codec_encode(&p, xs, 4, 16, 16, buf, sizeof buf, &full, NULL));
    assert_true(full < sq_codec_max_size(&p, 4, 16));
    uint8_t tight[2048];
    SQ_CHECK(sq_codec_encode(&p, xs, 4, 16, 16, tight, full, &len, NULL));
    assert_memory_equal(tight, buf, full);
}

/* The formulas of DESIGN.md §4, padding aside. */
static void test_size_formulas(void **state)
{
    (void)state;
    sq_codec_params_t p = sq_codec_params_default();
    const int64_t R = 2048, C = 768;
    const uint64_t N = (uint64_t)R * C;
    for (int b = 8; b >= 2; b /= 2) {
        p.bits = b;
        for (uint64_t nnz = 0; nnz <= N; nnz += N / 7) {
            size_t base = 64 + 4 * R; /* header + fp32 per-row scales */
            assert_int_equal(sq_codec_size_dense(&p, R, C, nnz), base + N * b / 8);
            assert_int_equal(sq_codec_size_bitmap(&p, R, C, nnz),
                             base + N / 8 + sq_codec_align8((nnz * b + 7) / 8));
            assert_int_equal(sq_codec_size_csr(&p, R, C, nnz),
                             base + sq_codec_align8(4 * (R + 1) + 2 * nnz) +
                                 sq_codec_align8((nnz * b + 7) / 8));
        }
    }
    assert_int_equal(sq_codec_size_csr(&p, 1 << 17, 1 << 16, (uint64_t)UINT32_MAX + 1), SIZE_MAX);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(sq_codec_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(sq_codec_crc32c_ref(0, "123456789", 9), 0xE3069283u);
    uint8_t data[300];
    uint64_t s = 4;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)ct_rand(&s);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof data; n += 13) {
            assert_int_equal(sq_codec_crc32c(0, data + off, n),
                             sq_codec_crc32c_ref(0, data + off, n));
            uint32_t a = sq_codec_crc32c(0, data + off, n / 2);
            assert_int_equal(sq_codec_crc32c(a, data + off + n / 2, n - n / 2),
                             sq_codec_crc32c(0, data + off, n));
        }
}

/* The inline fp16 conversions equal base/'s on every finite value. */
static void test_fp16_helpers(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000u; h++) {
        if ((h & 0x7c00u) == 0x7c00u) continue;
        float a = sq_codec_h2f((uint16_t)h), b = sq_f16_to_f32((uint16_t)h);
        assert_memory_equal(&a, &b, 4);
    }
    uint64_t s = 11;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)ct_rand(&s);
        if (i & 1) u = (u & 0x87ffffffu) | (0x30000000u + (u & 0x0f000000u)); /* fp16's range */
        float f;
        memcpy(&f, &u, 4);
        if (!isfinite(f)) continue;
        assert_int_equal(sq_codec_f2h(f), sq_f32_to_f16(f));
    }
}

static void test_philox_blocks(void **state)
{
    (void)state;
    const uint64_t starts[] = {0, 1, 12345, 0xfffffff0ull, 0x1fffffffaull, ~0ull - 40};
    uint32_t got[4 * 80], want[4];
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        for (int nb = 0; nb <= 80; nb += 7) {
            sq_codec_philox_blocks(0x0123456789abcdefull, 0xfedcba9876543210ull + i, starts[i], nb,
                                   got);
            for (int j = 0; j < nb; j++) {
                sq_philox_block(0x0123456789abcdefull, 0xfedcba9876543210ull + i,
                                starts[i] + (uint64_t)j, want);
                assert_memory_equal(got + 4 * j, want, 16);
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),        cmocka_unit_test(test_fp16_helpers),
        cmocka_unit_test(test_philox_blocks), cmocka_unit_test(test_size_formulas),
        cmocka_unit_test(test_matrix),        cmocka_unit_test(test_threshold_and_outliers),
        cmocka_unit_test(test_edges),         cmocka_unit_test(test_wide),
        cmocka_unit_test(test_scale_limits),  cmocka_unit_test(test_nonfinite_rejected),
        cmocka_unit_test(test_lossless),      cmocka_unit_test(test_params_and_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
