/* Writes the fuzzer's seed corpus: small valid messages of every encoding,
 * bit width and option (tests/codec/corpus/, committed). Run from the
 * repository root: build/tests/codec/gen_codec_corpus tests/codec/corpus */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_test_util.h"
#include "sparq/codec.h"

static int write_msg(const char *dir, const char *name, const sq_codec_params_t *p, const float *x,
                     int64_t rows, int64_t cols)
{
    size_t cap = sq_codec_max_size(p, rows, cols), len;
    uint8_t *buf = malloc(cap);
    if (!buf) return 1;
    sq_codec_stats_t st;
    SQ_CHECK(sq_codec_encode(p, x, rows, cols, cols, buf, cap, &len, &st));
    if (len > 16384) {
        fprintf(stderr, "%s: %zu bytes, over the 16 KiB budget\n", name, len);
        free(buf);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.spqa", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        fprintf(stderr, "%s: cannot write\n", path);
        free(buf);
        if (f) fclose(f);
        return 1;
    }
    fclose(f);
    printf("%-40s %6zu bytes  %s nnz %llu\n", path, len, sq_codec_encoding_name(st.encoding),
           (unsigned long long)st.nnz);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_codec_corpus DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int bad = 0;
    static float x[70000];
    const char *encn[] = {"dense", "bitmap", "csr"};
    const uint32_t outl[] = {1, 17, 30};
    for (int e = 0; e < 3; e++)
        for (int bits = 8; bits >= 2; bits /= 2)
            for (int v = 0; v < 4; v++) {
                /* v0 per-row fp32 nearest; v1 per-group(8) fp16 stochastic;
                 * v2 outliers (fp32) + threshold; v3 odd shape, fp16 outliers */
                int64_t rows = v == 3 ? 3 : 4, cols = v == 3 ? 37 : 32;
                ct_fill_sparse(x, rows, cols, cols, v == 3 ? 0.6 : 0.25, 2.0f,
                               (uint64_t)(e * 100 + bits * 10 + v));
                sq_codec_params_t p = sq_codec_params_default();
                p.encoding = (sq_codec_encoding_t)e;
                p.bits = bits;
                p.tag = (uint64_t)(e * 100 + bits * 10 + v);
                if (v == 1) {
                    p.granularity = SQ_CODEC_PER_GROUP;
                    p.group_size = 8;
                    p.scale_dtype = SQ_DTYPE_F16;
                    p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
                    p.seed = 7;
                }
                if (v >= 2) {
                    p.outlier_cols = outl;
                    p.n_outliers = 3;
                    p.outlier_dtype = v == 3 ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
                    for (int64_t r = 0; r < rows; r++)
                        x[r * cols + 17] = 40.0f + (float)r;
                    if (v == 2 && bits > 2) p.threshold = 1;
                }
                char name[64];
                snprintf(name, sizeof name, "%s_b%d_v%d", encn[e], bits, v);
                bad |= write_msg(dir, name, &p, x, rows, cols);
            }
    /* wide rows: CSR with 4-byte column indices, bitmap across words */
    ct_fill_sparse(x, 1, 70000, 70000, 0.001, 1.0f, 5);
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = SQ_CODEC_CSR;
    bad |= write_msg(dir, "csr_wide_idx32", &p, x, 1, 70000);
    ct_fill_sparse(x, 2, 300, 300, 0.9, 1.0f, 6);
    p.encoding = SQ_CODEC_AUTO;
    p.bits = 2;
    bad |= write_msg(dir, "auto_b2_dense", &p, x, 2, 300);
    memset(x, 0, sizeof(float) * 64);
    bad |= write_msg(dir, "auto_all_zero", &p, x, 8, 8);
    /* lossless, with non-finite values */
    ct_fill_smooth(x, 3, 11, 11, 3.0f, 8);
    x[4] = 1.0f / 0.0f;
    x[5] = -0.0f;
    x[6] = 0.0f / 0.0f;
    p = sq_codec_params_default();
    p.encoding = SQ_CODEC_LOSSLESS;
    bad |= write_msg(dir, "lossless_f32", &p, x, 3, 11);
    p.lossless_dtype = SQ_DTYPE_F16;
    bad |= write_msg(dir, "lossless_f16", &p, x, 3, 11);
    return bad;
}
