#include "codec_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define CT_GUARD 256
#define CT_POISON 0xA5

uint64_t ct_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double ct_uniform(uint64_t *s)
{
    return (double)(ct_rand(s) >> 11) * 0x1p-53;
}

void ct_fill_sparse(float *x, int64_t rows, int64_t cols, int64_t ld, double density, float amp,
                    uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++) {
            if (c >= cols) {
                x[r * ld + c] = 12345.0f;
                continue;
            }
            float v = 0.0f;
            if (ct_uniform(&s) < density) {
                v = amp * (float)(0.6 + 0.4 * ct_uniform(&s));
                if (ct_rand(&s) & 1) v = -v;
            }
            x[r * ld + c] = v;
        }
}

void ct_fill_smooth(float *x, int64_t rows, int64_t cols, int64_t ld, float amp, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < ld; c++) {
            double g = ct_uniform(&s) + ct_uniform(&s) + ct_uniform(&s) - 1.5;
            x[r * ld + c] = c < cols ? amp * (float)g : 12345.0f;
        }
}

uint8_t *ct_encode(const sq_codec_params_t *p, const float *x, int64_t rows, int64_t cols,
                   int64_t ld, size_t *len, sq_codec_stats_t *stats)
{
    size_t cap = sq_codec_max_size(p, rows, cols);
    if (!cap) fail_msg("max_size: %s", sq_error_last());
    uint8_t *buf = malloc(cap + CT_GUARD);
    assert_non_null(buf);
    memset(buf, CT_POISON, cap + CT_GUARD);
    sq_status_t st = sq_codec_encode(p, x, rows, cols, ld, buf, cap, len, stats);
    if (st != SQ_OK) fail_msg("encode: %s: %s", sq_status_string(st), sq_error_last());
    assert_true(*len <= cap);
    for (size_t i = cap; i < cap + CT_GUARD; i++)
        assert_int_equal(buf[i], CT_POISON);
    return buf;
}

float *ct_decode_both(const uint8_t *msg, size_t len, int64_t rows, int64_t cols, int64_t ld)
{
    size_t n = (size_t)(rows * ld) + CT_GUARD;
    float *y = malloc(n * sizeof(float)), *yr = malloc(n * sizeof(float));
    assert_non_null(y);
    assert_non_null(yr);
    memset(y, CT_POISON, n * sizeof(float));
    memset(yr, CT_POISON, n * sizeof(float));
    sq_status_t st = sq_codec_decode(msg, len, y, rows, cols, ld);
    if (st != SQ_OK) fail_msg("decode: %s: %s", sq_status_string(st), sq_error_last());
    st = sq_codec_decode_ref(msg, len, yr, rows, cols, ld);
    if (st != SQ_OK) fail_msg("decode_ref: %s: %s", sq_status_string(st), sq_error_last());
    /* bitwise, so padding columns (ld > cols) and the guard must be untouched too */
    if (memcmp(y, yr, n * sizeof(float)) != 0) {
        for (size_t i = 0; i < n; i++)
            if (memcmp(&y[i], &yr[i], 4))
                fail_msg("fast and ref decode differ at %zu (row %zu col %zu): %a vs %a", i,
                         i / (size_t)ld, i % (size_t)ld, (double)y[i], (double)yr[i]);
    }
    const uint8_t *g = (const uint8_t *)(y + rows * ld);
    for (size_t i = 0; i < CT_GUARD * sizeof(float); i++)
        assert_int_equal(g[i], CT_POISON);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = cols; c < ld; c++) {
            uint32_t u;
            memcpy(&u, &y[r * ld + c], 4);
            assert_int_equal(u, 0xA5A5A5A5u);
        }
    free(yr);
    return y;
}
