/* Peak resident memory of a stage that loads one unit range vs the whole
 * model. Each configuration loads in a fresh child process so the peaks do
 * not mix. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sparq/model.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench memory [--model DIR] [--stages 1,2,3] [--batch 16] [--seq 128]\n"
               "Loads every stage of an even layer split (for each stage count) in its own\n"
               "process, runs one forward of --batch x --seq tokens, and reports parameter\n"
               "bytes, arena bytes and peak RSS (VmHWM).\n");
}

typedef struct mem_result {
    int ok;
    double param_mb, arena_mb, rss_mb;
    char err[256];
} mem_result_t;

/* One forward at full size, so the peak includes every activation buffer. */
static sq_status_t forward_once(sq_model_t *m, int B, int T)
{
    const int N = B * T;
    int32_t *tok = calloc((size_t)N, sizeof *tok), *tgt = malloc(sizeof *tgt * (size_t)N);
    float *nll = malloc(sizeof *nll * (size_t)N);
    sq_boundary_t in;
    sq_status_t st = sq_model_input_boundary(m, B, T, &in);
    for (int k = 0; st == SQ_OK && k < in.n_tensors; k++)
        memset(in.t[k].data, 0, (size_t)sq_tensor_numel(&in.t[k]) * sizeof(float));
    for (int i = 0; i < N; i++) tgt[i] = (i + 1) % T ? 1 : -1;
    sq_batch_t b = {.B = B, .T = T, .tokens = tok, .targets = tgt};
    sq_head_out_t head = {.nll = nll};
    if (st == SQ_OK) st = sq_model_forward(m, &b, &head);
    free(tok);
    free(tgt);
    free(nll);
    return st;
}

static mem_result_t measure(const char *path, int ub, int ue, int B, int T)
{
    int fd[2];
    mem_result_t r = {0};
    if (pipe(fd) != 0) return r;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        sq_backend_t *be;
        sq_model_t *m;
        mem_result_t c = {0};
        sq_model_load_opts_t lo = {.unit_begin = ub, .unit_end = ue, .max_batch = B, .max_seq = T};
        if (sq_backend_cpu_create(1, &be) == SQ_OK && sq_model_load(path, &lo, be, &m) == SQ_OK &&
            forward_once(m, B, T) == SQ_OK) {
            c.ok = 1;
            c.param_mb = sq_model_param_bytes(m) / 1048576.0;
            c.arena_mb = sq_model_arena_bytes(m) / 1048576.0;
            c.rss_mb = sq_bench_peak_rss_kb() / 1024.0;
        } else {
            snprintf(c.err, sizeof c.err, "%s", sq_error_last());
        }
        if (write(fd[1], &c, sizeof c) != (ssize_t)sizeof c) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r.ok = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return r;
}

int sq_bench_memory_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"stages", required_argument, 0, 'S'},
        {"batch", required_argument, 0, 'b'}, {"seq", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *path = "models/opt-mini", *stages = "1,2,3";
    int B = 16, T = 128, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:S:b:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': path = optarg; break;
        case 'S': stages = optarg; break;
        case 'b': B = atoi(optarg); break;
        case 's': T = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    /* a process that loads nothing: the floor to compare against */
    mem_result_t base = measure(path, 0, 1, 1, 1);
    sq_model_config_t cfg;
    {
        sq_backend_t *be;
        sq_model_t *m;
        sq_model_load_opts_t lo = {.unit_begin = 0, .unit_end = 1, .max_batch = 1, .max_seq = 1};
        SQ_CHECK(sq_backend_cpu_create(1, &be));
        if (sq_model_load(path, &lo, be, &m) != SQ_OK) {
            fprintf(stderr, "sparq bench memory: %s\n", sq_error_last());
            return 1;
        }
        cfg = *sq_model_config(m);
        sq_model_destroy(m);
        sq_backend_destroy(be);
    }
    sq_bench_print_machine();
    printf("model %s: %d layers, activations sized for %d x %d tokens; embed-only process peak "
           "RSS %.1f MB\n\n",
           path, cfg.n_layers, B, T, base.rss_mb);
    printf("| stages | stage | units | params MB | arena MB | peak RSS MB |\n|---|---|---|---|---|---|\n");
    for (const char *p = stages; *p;) {
        int S = atoi(p);
        if (S >= 1 && S <= cfg.n_layers) {
            for (int k = 0; k < S; k++) {
                const int ub = sq_model_even_cut(cfg.n_layers, S, k);
                const int ue = sq_model_even_cut(cfg.n_layers, S, k + 1);
                mem_result_t r = measure(path, ub, ue, B, T);
                if (!r.ok) {
                    printf("| %d | %d | [%d,%d) | error: %s | | |\n", S, k, ub, ue, r.err);
                    continue;
                }
                printf("| %d | %d | [%d,%d) | %.1f | %.1f | %.1f |\n", S, k, ub, ue, r.param_mb,
                       r.arena_mb, r.rss_mb);
            }
        }
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    return 0;
}
