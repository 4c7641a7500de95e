/* Stochastic rounding: unbiased over seeds, a pure function of
 * (seed, stream, element index), documented dither mapping. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "codec_test_util.h"
#include "sparq/codec.h"
#include "sparq/philox.h"

enum { R = 4, C = 64 };

static void encode_decode(const sq_codec_params_t *p, const float *x, int64_t ld, uint8_t *msg,
                          size_t cap, size_t *len, float *y)
{
    SQ_CHECK(sq_codec_encode(p, x, R, C, ld, msg, cap, len, NULL));
    SQ_CHECK(sq_codec_decode(msg, *len, y, R, C, C));
}

/* Mean error over many seeds is within a few standard deviations of 0 for
 * every element, while round-to-nearest is visibly biased on the same data. */
static void test_unbiased(void **state)
{
    (void)state;
    for (int bits = 2; bits <= 8; bits *= 2) {
        float x[R * C];
        ct_fill_smooth(x, R, C, C, 1.0f, 17 + (uint64_t)bits);
        for (int r = 0; r < R; r++)
            x[r * C] = 1.0f;                            /* absmax 1 per row: known scale */
        const double s = 1.0 / ((1 << (bits - 1)) - 1); /* fp32 scale 1/qmax (bumped <= 1 ulp) */
        const int T = 4000;
        double *sum = calloc(R * C, sizeof(double));
        sq_codec_params_t p = sq_codec_params_default();
        p.bits = bits;
        p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
        p.stream = 5;
        uint8_t msg[8192];
        size_t len;
        float y[R * C];
        for (int t = 0; t < T; t++) {
            p.seed = 1000 + (uint64_t)t;
            encode_decode(&p, x, C, msg, sizeof msg, &len, y);
            for (int i = 0; i < R * C; i++)
                sum[i] += (double)y[i] - (double)x[i];
        }
        /* per element: x^ takes two neighbouring values s apart, so the
         * standard deviation of one error is <= s/2 */
        const double sd_mean = 0.5 * s / sqrt((double)T);
        double total = 0, worst_nearest = 0;
        sq_codec_params_t pn = p;
        pn.rounding = SQ_CODEC_ROUND_NEAREST;
        float yn[R * C];
        encode_decode(&pn, x, C, msg, sizeof msg, &len, yn);
        for (int i = 0; i < R * C; i++) {
            double mean = sum[i] / T;
            if (fabs(mean) > 5.5 * sd_mean + 1e-6 * s)
                fail_msg("bits %d element %d: mean error %g > 5.5 sd (%g)", bits, i, mean, sd_mean);
            total += sum[i];
            double bn = fabs((double)yn[i] - (double)x[i]);
            if (bn > worst_nearest) worst_nearest = bn;
        }
        double grand = total / ((double)T * R * C);
        assert_true(fabs(grand) < 5.0 * 0.5 * s / sqrt((double)T * R * C));
        /* the bias stochastic rounding removes is large for nearest */
        assert_true(worst_nearest > 50 * sd_mean);
        free(sum);
    }
}

/* Same seed -> same bytes (the +eps and -eps passes of a micro-batch);
 * another seed or stream -> other bytes; ld does not move the dither. */
static void test_determinism(void **state)
{
    (void)state;
    float x[R * (C + 5)];
    ct_fill_smooth(x, R, C, C + 5, 1.0f, 3);
    float xc[R * C];
    for (int r = 0; r < R; r++)
        memcpy(xc + r * C, x + r * (C + 5), sizeof(float) * C);
    sq_codec_params_t p = sq_codec_params_default();
    p.bits = 4;
    p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
    p.seed = 42;
    p.stream = 7;
    uint8_t a[4096], b[4096];
    size_t la, lb;
    float y[R * C];
    for (size_t e = 0; e < 3; e++) {
        p.encoding = (sq_codec_encoding_t)e;
        p.seed = 42;
        p.stream = 7;
        encode_decode(&p, x, C + 5, a, sizeof a, &la, y);
        encode_decode(&p, xc, C, b, sizeof b, &lb, y);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        p.seed = 43;
        encode_decode(&p, xc, C, b, sizeof b, &lb, y);
        assert_true(la != lb || memcmp(a, b, la) != 0);
        p.seed = 42;
        p.stream = 8;
        encode_decode(&p, xc, C, b, sizeof b, &lb, y);
        assert_true(la != lb || memcmp(a, b, la) != 0);
    }
}

/* The documented mapping: element (r, c) uses u = sq_philox_uniform of word
 * i % 4 of sq_philox_block(seed, stream, i / 4) with i = r * cols + c, and
 * q = floor(v) + (u < v - floor(v)). */
static void test_dither_mapping(void **state)
{
    (void)state;
    enum { RR = 3, CC = 37 };
    float x[RR * CC];
    ct_fill_smooth(x, RR, CC, CC, 3.0f, 9);
    sq_codec_params_t p = sq_codec_params_default();
    p.bits = 8;
    p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
    p.encoding = SQ_CODEC_DENSE;
    p.seed = 0xdeadbeefcafef00dull;
    p.stream = 0x123456789ull;
    uint8_t msg[4096];
    size_t len;
    float y[RR * CC];
    SQ_CHECK(sq_codec_encode(&p, x, RR, CC, CC, msg, sizeof msg, &len, NULL));
    SQ_CHECK(sq_codec_decode(msg, len, y, RR, CC, CC));
    for (int r = 0; r < RR; r++) {
        float amax = 0;
        for (int c = 0; c < CC; c++)
            amax = fmaxf(amax, fabsf(x[r * CC + c]));
        float s;
        memcpy(&s, msg + 64 + 4 * r, 4); /* per-row fp32 scales start the payload */
        assert_true((double)s * 127 >= amax && s <= amax / 127 * (1 + 1e-6));
        for (int c = 0; c < CC; c++) {
            uint64_t i = (uint64_t)r * CC + (uint64_t)c;
            uint32_t blk[4];
            sq_philox_block(p.seed, p.stream, i / 4, blk);
            float u = sq_philox_uniform(blk[i % 4]);
            float v = x[r * CC + c] / s, fl = floorf(v);
            int q = (int)fl + (u < v - fl);
            assert_true(y[r * CC + c] == (float)q * s);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unbiased),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_dither_mapping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
