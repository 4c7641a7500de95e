/* The codec on real activations: run a model over text, and at every split
 * candidate encode the tensors that would cross (residual stream, post-ReLU
 * MLP activations) with each bit width; report density after quantization,
 * size vs fp16, bytes per token, layout chosen, throughput and error. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "codec_measure.h"
#include "sparq/model.h"
#include "sparq/tokenizer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench codec-real [--model DIR] [--tokenizer DIR] [--text FILE]\n"
               "                              [--batch 8] [--seq 128] [--bos 2] [--reps 5] [--csv F]\n"
               "Encodes the tensors crossing every split candidate of the model, on windows of\n"
               "the text, with 8/4/2-bit per-token quantization and the auto layout.\n");
}

static sq_status_t load_tokens(const char *tok_dir, const char *text, int32_t **ids, size_t *n)
{
    sq_tokenizer_t *tok;
    SQ_TRY(sq_tokenizer_load(tok_dir, &tok));
    FILE *f = fopen(text, "rb");
    if (!f) {
        sq_tokenizer_destroy(tok);
        return sq_error_set(SQ_ERR_IO, "%s: cannot open: %s", text, strerror(errno));
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    size_t need = 0;
    sq_status_t st = sq_tokenizer_encode(tok, buf, got, NULL, 0, &need);
    if (st == SQ_ERR_RANGE || st == SQ_OK) {
        *ids = malloc(sizeof(int32_t) * (need + 1));
        st = sq_tokenizer_encode(tok, buf, got, *ids, need + 1, n);
    }
    free(buf);
    sq_tokenizer_destroy(tok);
    return st;
}

int sq_bench_codec_real_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 't'},
        {"text", required_argument, 0, 'x'},  {"batch", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 's'},   {"bos", required_argument, 0, 'o'},
        {"reps", required_argument, 0, 'r'},  {"csv", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = "models/opt-mini", *tokdir = NULL, *text = "data/text/moby-dick-ch1-12.txt";
    const char *csv = NULL;
    int B = 8, T = 128, bos = 2, reps = 5, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:x:b:s:o:r:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': tokdir = optarg; break;
        case 'x': text = optarg; break;
        case 'b': B = atoi(optarg); break;
        case 's': T = atoi(optarg); break;
        case 'o': bos = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'c': csv = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    sq_backend_t *be;
    sq_model_t *m = NULL;
    SQ_CHECK(sq_backend_cpu_create(0, &be));
    sq_model_load_opts_t lo = {.max_batch = B, .max_seq = T};
    sq_status_t st = load_tokens(tokdir ? tokdir : model, text, &ids, &n_ids);
    if (st == SQ_OK) st = sq_model_load(model, &lo, be, &m);
    if (st == SQ_OK && n_ids < (size_t)B * (T - 1))
        st = sq_error_set(SQ_ERR_RANGE, "%s: %zu tokens, fewer than %d windows of %d", text, n_ids,
                          B, T - 1);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq bench codec-real: %s\n", sq_error_last());
        return 1;
    }
    /* B windows spread over the text, each starting with bos */
    int32_t *tok = malloc(sizeof *tok * (size_t)B * T);
    for (int b = 0; b < B; b++) {
        size_t start = (n_ids - (size_t)(T - 1)) * (size_t)b / (size_t)B;
        tok[(size_t)b * T] = bos >= 0 ? bos : ids[start];
        memcpy(tok + (size_t)b * T + 1, ids + start, sizeof *tok * (size_t)(T - 1));
    }
    const sq_model_config_t *cfg = sq_model_config(m);
    const int units = sq_model_unit_count(cfg), N = B * T;
    sq_split_candidate_t *cand = malloc(sizeof *cand * (size_t)units);
    sq_model_split_candidates(cfg, cand, units);
    sq_batch_t batch = {.B = B, .T = T, .tokens = tok};
    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (cf)
        fprintf(cf, "candidate,tensor,bits,density,raw_zero_frac,encoding,bytes,bytes_per_token,"
                    "ratio_fp16,bits_per_value,enc_gbs,dec_gbs,rel_rms_err\n");

    sq_bench_print_machine();
    printf("model %s, text %s: %d windows x %d tokens; per-token fp32 scales, round to nearest, "
           "auto layout; GB/s of fp32 source, one thread, median of %d\n\n",
           model, text, B, T, reps);
    printf("| split point | tensor | exact zeros | bits | density after quant | layout | bytes/token "
           "| vs fp16 | enc GB/s | dec GB/s | rel. RMS error |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    static const int bits[] = {8, 4, 2};
    double sum_bytes[3] = {0}, sum_fp16 = 0;
    int n_cand = 0;
    for (int u = 1; u < units; u++) {
        SQ_CHECK(sq_model_forward_units(m, &batch, u - 1, u, NULL));
        sq_boundary_t bd;
        SQ_CHECK(sq_model_boundary(m, u, B, T, &bd));
        const sq_split_candidate_t *cd = &cand[u - 1];
        double fp16_bytes = 0;
        double cand_bytes[3] = {0};
        for (int k = 0; k < bd.n_tensors; k++) {
            const float *x = bd.t[k].data;
            const int64_t cols = sq_tensor_cols(&bd.t[k]);
            int64_t zeros = 0;
            double ms = 0;
            for (int64_t i = 0; i < (int64_t)N * cols; i++) {
                zeros += x[i] == 0.0f;
                ms += (double)x[i] * x[i];
            }
            double rms = sqrt(ms / ((double)N * cols));
            fp16_bytes += 2.0 * N * cols;
            for (int bi = 0; bi < 3; bi++) {
                sq_codec_params_t p = sq_codec_params_default();
                p.bits = bits[bi];
                sq_bench_codec_result_t res;
                SQ_CHECK(sq_bench_codec_measure(x, N, cols, &p, reps, &res));
                cand_bytes[bi] += (double)res.bytes;
                printf("| %s | %s | %.1f%% | %d | %.1f%% | %s | %.1f | %.2fx | %.1f | %.1f | %.3f |\n",
                       cd->name, bd.names[k], 100.0 * zeros / ((double)N * cols), bits[bi],
                       100.0 * res.density, sq_codec_encoding_name(res.encoding),
                       (double)res.bytes / N, res.ratio_fp16, res.enc_gbs, res.dec_gbs,
                       rms > 0 ? res.rms_err / rms : 0.0);
                if (cf)
                    fprintf(cf, "%s,%s,%d,%.6f,%.6f,%s,%zu,%.3f,%.4f,%.4f,%.3f,%.3f,%.6f\n",
                            cd->name, bd.names[k], bits[bi], res.density,
                            (double)zeros / ((double)N * cols),
                            sq_codec_encoding_name(res.encoding), res.bytes,
                            (double)res.bytes / N, res.ratio_fp16, res.bits_per_value, res.enc_gbs,
                            res.dec_gbs, rms > 0 ? res.rms_err / rms : 0.0);
            }
        }
        for (int bi = 0; bi < 3; bi++) sum_bytes[bi] += cand_bytes[bi];
        sum_fp16 += fp16_bytes;
        n_cand++;
    }
    printf("\nmean over the %d split points, all crossing tensors: fp16 %.0f bytes/token; "
           "8-bit %.0f (%.1f%% of fp16), 4-bit %.0f (%.1f%%), 2-bit %.0f (%.1f%%)\n",
           n_cand, sum_fp16 / n_cand / N, sum_bytes[0] / n_cand / N, 100 * sum_bytes[0] / sum_fp16,
           sum_bytes[1] / n_cand / N, 100 * sum_bytes[1] / sum_fp16, sum_bytes[2] / n_cand / N,
           100 * sum_bytes[2] / sum_fp16);
    if (cf) fclose(cf);
    free(cand);
    free(tok);
    free(ids);
    sq_model_destroy(m);
    sq_backend_destroy(be);
    return 0;
}
