/* libFuzzer target for the encoder: the first 16 bytes choose params and a
 * shape, the rest are the fp32 bit patterns of x (NaN/Inf included). The
 * fast encoder and the reference must agree on the status and on every
 * byte; the message must decode (fast == reference) within the error bound
 * of its quantizer. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/codec.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size)
{
    if (size < 16) return 0;
    const int64_t rows = 1 + d[0] % 6, cols = 1 + (d[1] | (d[2] << 8)) % 300;
    const size_t n = (size_t)(rows * cols);
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = (sq_codec_encoding_t)(d[3] % 5);
    p.bits = 2 << (d[4] % 3); /* 2, 4, 8 */
    if (d[5] & 1) {
        p.granularity = SQ_CODEC_PER_GROUP;
        p.group_size = 1u << (d[5] >> 1) % 8;
        while (cols % p.group_size)
            p.group_size >>= 1;
    }
    p.scale_dtype = (d[6] & 1) ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
    p.rounding = (d[6] & 2) ? SQ_CODEC_ROUND_STOCHASTIC : SQ_CODEC_ROUND_NEAREST;
    p.lossless_dtype = (d[6] & 4) ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
    p.outlier_dtype = (d[6] & 8) ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
    p.threshold = d[7] % (uint32_t)((1 << (p.bits - 1)) - 1);
    uint32_t oc[8], no = 0;
    for (int j = 0; j < 8; j++)
        if ((d[8] >> j) & 1) {
            uint32_t c = (uint32_t)(j * cols / 8);
            if (!no || c > oc[no - 1]) oc[no++] = c;
        }
    p.outlier_cols = oc;
    p.n_outliers = no;
    memcpy(&p.seed, d + 9, 4);
    p.stream = d[13];
    const int64_t ld = cols + d[14] % 3;
    float *x = calloc((size_t)(rows * ld), sizeof(float));
    if (!x) abort();
    const uint8_t *v = d + 16;
    size_t nv = (size_t)(size - 16) / 4;
    for (size_t i = 0; i < n && nv; i++) { /* cycle the given values over x */
        memcpy(&x[(int64_t)(i / (size_t)cols) * ld + (int64_t)(i % (size_t)cols)], v + 4 * (i % nv),
               4);
    }

    size_t cap = sq_codec_max_size(&p, rows, cols);
    CHECK(cap > 0);
    uint8_t *a = malloc(cap), *b = malloc(cap);
    float *y = malloc(n * 4), *yr = malloc(n * 4);
    if (!a || !b || !y || !yr) abort();
    size_t la = 0, lb = 0;
    sq_status_t sa = sq_codec_encode(&p, x, rows, cols, ld, a, cap, &la, NULL);
    sq_status_t sb = sq_codec_encode_ref(&p, x, rows, cols, ld, b, cap, &lb, NULL);
    CHECK(sa == sb);
    if (sa == SQ_OK) {
        CHECK(la == lb && memcmp(a, b, la) == 0);
        CHECK(sq_codec_decode(a, la, y, rows, cols, cols) == SQ_OK);
        CHECK(sq_codec_decode_ref(a, la, yr, rows, cols, cols) == SQ_OK);
        CHECK(memcmp(y, yr, n * 4) == 0);
        if (p.encoding != SQ_CODEC_LOSSLESS && p.rounding == SQ_CODEC_ROUND_NEAREST &&
            p.threshold == 0 && !no && p.granularity == SQ_CODEC_PER_ROW &&
            p.scale_dtype == SQ_DTYPE_F32) {
            for (int64_t r = 0; r < rows; r++) { /* |x - x^| <= s/2, s ~ absmax/qmax */
                double amax = 0;
                for (int64_t c = 0; c < cols; c++)
                    amax = fmax(amax, fabs(x[r * ld + c]));
                double s = amax / ((1 << (p.bits - 1)) - 1);
                for (int64_t c = 0; c < cols; c++)
                    CHECK(isfinite(y[r * cols + c]) &&
                          fabs((double)x[r * ld + c] - y[r * cols + c]) <=
                              0.5 * s * (1 + 1e-6) + amax * 0x1p-16 + 1e-44);
            }
        }
    } else {
        CHECK(sa == SQ_ERR_RANGE); /* non-finite input or an fp16 overflow */
    }
    free(a);
    free(b);
    free(y);
    free(yr);
    free(x);
    return 0;
}
