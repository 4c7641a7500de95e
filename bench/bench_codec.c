/* sparq bench codec — compression and speed of the activation codec on
 * random tensors of controlled density: a fraction d of the cells holds a
 * value of magnitude [0.6, 1] (non-zero at every bit width), the rest exact
 * zeros, so the code density after quantization is d. Sweeps density x bits
 * x encoding; the exit status is non-zero when a decode is wrong or AUTO is
 * larger than the best fixed layout. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "codec_measure.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_codec [--rows N] [--cols N] [--reps N] [--quick] [--csv FILE]\n"
               "                   [--group G] [--f16] [--stochastic]\n"
               "  Encode/decode random fp32 tensors with a swept fraction of non-zero values\n"
               "  (0.1%% .. 100%%) at 8/4/2 bits in dense, bitmap, CSR and auto layouts\n"
               "  (one thread; by default per-row fp32 scales and round to nearest).\n"
               "  --rows, --cols  one shape instead of 2048x768 and 2048x192\n"
               "  --reps N        timed repetitions per measurement, median reported (default 9)\n"
               "  --quick         4 densities, 3 repetitions\n"
               "  --csv FILE      also write every row as CSV\n"
               "  --group G       one scale per G columns (power of two dividing cols)\n"
               "  --f16           fp16 scales\n"
               "  --stochastic    stochastic rounding (Philox dither)\n"
               "  Throughput is GB/s (1e9 bytes) of fp32 source; ratio is fp16 bytes / message\n"
               "  bytes; 'wrong' counts decoded values differing from the reference codec.\n");
}

static void bc_fill(float *x, size_t n, double density, uint64_t seed)
{
    uint64_t s = seed;
    const uint64_t thresh = (uint64_t)(density * 0x1p53);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = sq_bench_splitmix64(&s);
        float v = 0.0f;
        if ((r >> 11) < thresh) {
            uint64_t m = sq_bench_splitmix64(&s);
            v = 0.6f + 0.4f * (float)((m >> 40) * 0x1p-24);
            if (m & 1) v = -v;
        }
        x[i] = v;
    }
}

static int parse_int(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1) return -1;
    *out = v;
    return 0;
}

int sq_bench_codec_main(int argc, char **argv)
{
    long rows = 0, cols = 0, reps = 9, group = 0;
    int quick = 0, f16 = 0, stochastic = 0;
    const char *csv_path = NULL;
    for (int a = 1; a < argc; a++) {
        const char *o = argv[a];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(o, "--quick")) {
            quick = 1;
        } else if (!strcmp(o, "--f16")) {
            f16 = 1;
        } else if (!strcmp(o, "--stochastic")) {
            stochastic = 1;
        } else if (a + 1 < argc && !strcmp(o, "--group")) {
            if (parse_int(argv[++a], &group)) goto bad;
        } else if (a + 1 < argc && !strcmp(o, "--rows")) {
            if (parse_int(argv[++a], &rows)) goto bad;
        } else if (a + 1 < argc && !strcmp(o, "--cols")) {
            if (parse_int(argv[++a], &cols)) goto bad;
        } else if (a + 1 < argc && !strcmp(o, "--reps")) {
            if (parse_int(argv[++a], &reps)) goto bad;
        } else if (a + 1 < argc && !strcmp(o, "--csv")) {
            csv_path = argv[++a];
        } else {
            goto bad;
        }
    }
    if (quick && reps == 9) reps = 3;

    long shapes[2][2] = {{2048, 768}, {2048, 192}};
    int nshapes = 2;
    if (rows || cols) {
        shapes[0][0] = rows ? rows : 2048;
        shapes[0][1] = cols ? cols : 768;
        nshapes = 1;
    }
    const double dens_full[] = {0.001, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 1.0};
    const double dens_quick[] = {0.01, 0.10, 0.50, 1.0};
    const double *dens = quick ? dens_quick : dens_full;
    const int ndens = quick ? 4 : 8;
    const int bits[] = {8, 4, 2};
    const sq_codec_encoding_t encs[] = {SQ_CODEC_DENSE, SQ_CODEC_BITMAP, SQ_CODEC_CSR,
                                        SQ_CODEC_AUTO};

    FILE *csv = NULL;
    if (csv_path) {
        csv = fopen(csv_path, "w");
        if (!csv) {
            fprintf(stderr, "bench_codec: cannot write %s\n", csv_path);
            return 1;
        }
        fprintf(
            csv,
            "rows,cols,target_density,bits,encoding,chosen,nnz,density,bytes,"
            "ratio_fp16,bits_per_value,enc_gbs,dec_gbs,enc_best_gbs,dec_best_gbs,wrong,msg_diff,"
            "auto_ok\n");
    }

    sq_bench_print_machine();
    char scheme[64] = "per-row";
    if (group) snprintf(scheme, sizeof scheme, "per-group (G=%ld)", group);
    printf("codec: %s %s scales, %s rounding, 1 thread, median of %ld reps\n\n", scheme,
           f16 ? "fp16" : "fp32", stochastic ? "stochastic" : "nearest", reps);
    printf("| shape | target | bits | encoding | chosen | nnz %% | bytes | x fp16 | bits/val | "
           "enc GB/s | dec GB/s | wrong | auto<=min |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");

    int failures = 0;
    for (int si = 0; si < nshapes; si++) {
        const int64_t R = shapes[si][0], C = shapes[si][1];
        const size_t n = (size_t)R * (size_t)C;
        float *x = malloc(n * sizeof(float));
        if (!x) {
            fprintf(stderr, "bench_codec: out of memory\n");
            return 1;
        }
        for (int di = 0; di < ndens; di++) {
            bc_fill(x, n, dens[di], 0x5eed0000u + (uint64_t)(si * 100 + di));
            for (int bi = 0; bi < 3; bi++) {
                sq_bench_codec_result_t res[4];
                for (int e = 0; e < 4; e++) {
                    sq_codec_params_t p = sq_codec_params_default();
                    p.bits = bits[bi];
                    p.encoding = encs[e];
                    if (group) {
                        p.granularity = SQ_CODEC_PER_GROUP;
                        p.group_size = (uint32_t)group;
                    }
                    if (f16) p.scale_dtype = SQ_DTYPE_F16;
                    if (stochastic) {
                        p.rounding = SQ_CODEC_ROUND_STOCHASTIC;
                        p.seed = 1;
                    }
                    sq_status_t st = sq_bench_codec_measure(x, R, C, &p, (int)reps, &res[e]);
                    if (st != SQ_OK) {
                        fprintf(stderr, "bench_codec: %s: %s\n", sq_status_string(st),
                                sq_error_last());
                        free(x);
                        if (csv) fclose(csv);
                        return 1;
                    }
                }
                size_t best = res[0].bytes;
                for (int e = 1; e < 3; e++)
                    if (res[e].bytes < best) best = res[e].bytes;
                for (int e = 0; e < 4; e++) {
                    const sq_bench_codec_result_t *m = &res[e];
                    int auto_ok = e != 3 || m->bytes <= best;
                    failures += m->wrong != 0 || m->msg_diff != 0 || !auto_ok;
                    char shape[32];
                    snprintf(shape, sizeof shape, "%ldx%ld", (long)R, (long)C);
                    printf("| %s | %g%% | %d | %s | %s | %.2f | %zu | %.2f | %.3f | %.2f | %.2f | "
                           "%llu | %s |\n",
                           shape, dens[di] * 100, bits[bi], sq_codec_encoding_name(encs[e]),
                           sq_codec_encoding_name(m->encoding), m->density * 100, m->bytes,
                           m->ratio_fp16, m->bits_per_value, m->enc_gbs, m->dec_gbs,
                           (unsigned long long)(m->wrong + m->msg_diff),
                           e == 3 ? (auto_ok ? "yes" : "NO") : "");
                    if (csv)
                        fprintf(
                            csv,
                            "%ld,%ld,%g,%d,%s,%s,%llu,%.6f,%zu,%.4f,%.4f,%.3f,%.3f,%.3f,%.3f,"
                            "%llu,%llu,%d\n",
                            (long)R, (long)C, dens[di], bits[bi], sq_codec_encoding_name(encs[e]),
                            sq_codec_encoding_name(m->encoding), (unsigned long long)m->nnz,
                            m->density, m->bytes, m->ratio_fp16, m->bits_per_value, m->enc_gbs,
                            m->dec_gbs, m->enc_best_gbs, m->dec_best_gbs,
                            (unsigned long long)m->wrong, (unsigned long long)m->msg_diff, auto_ok);
                }
                fflush(stdout);
            }
        }
        free(x);
    }
    if (csv) fclose(csv);
    printf("\n%s: %d failing rows (wrong decode, message != reference, or auto > min)\n",
           failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
bad:
    usage(stderr);
    return 2;
}

#ifdef SQ_BENCH_STANDALONE
int main(int argc, char **argv)
{
    return sq_bench_codec_main(argc, argv);
}
#endif
