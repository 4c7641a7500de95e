/* Forward throughput on the CPU backend, and its FLOP utilization against
 * the OpenBLAS sgemm peak measured in the same run. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sparq/model.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench forward [--model DIR] [--batch 16] [--seq 128] [--threads N]\n"
               "                           [--reps 5]\n"
               "Times whole-model forwards (embedding to per-token LM loss) and compares the\n"
               "achieved GFLOP/s with a 2048^3 OpenBLAS sgemm on the same threads.\n");
}

int sq_bench_forward_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
        {"seq", required_argument, 0, 's'},   {"threads", required_argument, 0, 'j'},
        {"reps", required_argument, 0, 'r'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *path = "models/opt-mini";
    int B = 16, T = 128, threads = 0, reps = 5, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:b:s:j:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'b': B = atoi(optarg); break;
        case 's': T = atoi(optarg); break;
        case 'j': threads = atoi(optarg); break;
        case 'r': reps = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (B <= 0 || T <= 0 || reps <= 0) {
        fprintf(stderr, "sparq bench forward: --batch, --seq and --reps must be positive\n");
        return 2;
    }
    sq_backend_t *be;
    sq_model_t *m;
    SQ_CHECK(sq_backend_cpu_create(threads, &be));
    sq_model_load_opts_t lo = {.max_batch = B, .max_seq = T};
    sq_status_t st = sq_model_load(path, &lo, be, &m);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq bench forward: %s\n", sq_error_last());
        return 1;
    }
    const sq_model_config_t *cfg = sq_model_config(m);
    int N = B * T;
    int32_t *tok = malloc(sizeof *tok * (size_t)N), *tgt = malloc(sizeof *tgt * (size_t)N);
    float *nll = malloc(sizeof *nll * (size_t)N);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        tok[i] = (int32_t)(x % (uint32_t)cfg->vocab_size);
    }
    for (int i = 0; i < N; i++) tgt[i] = (i + 1) % T ? tok[i + 1] : -1;
    sq_batch_t batch = {.B = B, .T = T, .tokens = tok, .targets = tgt};
    sq_head_out_t out = {.nll = nll};

    sq_bench_print_machine();
    double *times = malloc(sizeof *times * (size_t)reps);
    SQ_CHECK(sq_model_forward(m, &batch, &out)); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = sq_bench_now();
        SQ_CHECK(sq_model_forward(m, &batch, &out));
        times[r] = sq_bench_now() - t0;
    }
    qsort(times, (size_t)reps, sizeof *times, sq_bench_cmp_double);
    double med = times[reps / 2], flops = sq_model_forward_flops(m, B, T);
    double gflops = flops / med * 1e-9;
    double peak = sq_bench_sgemm_peak(threads, 2048, 5);
    double loss = 0;
    int cnt = 0;
    for (int i = 0; i < N; i++)
        if (tgt[i] >= 0) loss += nll[i], cnt++;

    printf("\n| model | batch x seq | threads | forward ms (median of %d) | tokens/s | GFLOP/fwd | "
           "GFLOP/s | sgemm peak GFLOP/s | utilization |\n",
           reps);
    printf("|---|---|---|---|---|---|---|---|---|\n");
    printf("| %s | %d x %d | %d | %.1f | %.0f | %.2f | %.1f | %.1f | %.0f%% |\n", path, B, T,
           threads > 0 ? threads : omp_get_max_threads(), med * 1e3, N / med, flops * 1e-9, gflops, peak,
           100.0 * gflops / peak);
    printf("\nmean LM loss on random tokens: %.4f (sanity: ~ln V = %.2f is expected)\n",
           loss / cnt, __builtin_log((double)cfg->vocab_size));
    free(times);
    free(tok);
    free(tgt);
    free(nll);
    sq_model_destroy(m);
    sq_backend_destroy(be);
    return 0;
}
