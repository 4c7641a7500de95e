/* Is there a signal for fine-tuning to find? A first-order linear probe on a
 * classification job's frozen features: at several depths, the hidden state
 * at the prompt's last position (what the label words are scored from) and
 * the mean over the prompt's tokens, fit by L2-regularised logistic
 * regression (full-batch gradient descent on standardised features) on the
 * training examples and scored on the eval examples. ZO fine-tuning of a
 * small parameter subset can at best reach what such a probe reaches; when
 * the probe is near chance, the representations carry no usable signal. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sparq/task.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench probe [--config job.yaml] [--set key=value ...] [--iters 2000]\n"
               "Linear probes (logistic regression) on the frozen hidden states of a\n"
               "classification job: last prompt position and mean over the prompt, at the\n"
               "embedding and after every layer; train on task.train, score on task.eval.\n");
}

typedef struct feats {
    int n, d;
    float *last, *mean; /* [n, d] */
    int *y;
} feats_t;

/* Hidden states after units [0, u) for every example of the task's eval set. */
static sq_status_t collect(sq_model_t *m, sq_task_t *t, int u, feats_t *f)
{
    const int n = sq_task_eval_size(t), d = f->d;
    f->n = n;
    for (int first = 0; first < n; first += 32) {
        const int cnt = n - first < 32 ? n - first : 32;
        sq_task_batch_t b;
        sq_boundary_t bd;
        SQ_TRY(sq_task_eval_batch(t, first, cnt, &b));
        SQ_TRY(sq_model_forward_units(m, &b.batch, 0, u, NULL));
        SQ_TRY(sq_model_boundary(m, u, b.batch.B, b.batch.T, &bd));
        const float *h = bd.t[0].data;
        const int T = b.batch.T;
        for (int i = 0; i < cnt; i++) {
            const int row = b.head.rows[i], len = row - i * T + 1;
            float *last = f->last + (size_t)(first + i) * d, *mean = f->mean + (size_t)(first + i) * d;
            memcpy(last, h + (size_t)row * d, sizeof(float) * (size_t)d);
            for (int c = 0; c < d; c++) {
                double s = 0;
                for (int k = 0; k < len; k++) s += h[(size_t)(i * T + k) * d + c];
                mean[c] = (float)(s / len);
            }
            f->y[first + i] = b.labels[i];
        }
    }
    return SQ_OK;
}

/* Standardise with the training set's mean and deviation. */
static void standardise(float *tr, int ntr, float *ev, int nev, int d)
{
    for (int c = 0; c < d; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < ntr; i++) s += tr[(size_t)i * d + c];
        const double mu = s / ntr;
        for (int i = 0; i < ntr; i++) s2 += (tr[(size_t)i * d + c] - mu) * (tr[(size_t)i * d + c] - mu);
        const double sd = sqrt(s2 / ntr) + 1e-6;
        for (int i = 0; i < ntr; i++) tr[(size_t)i * d + c] = (float)((tr[(size_t)i * d + c] - mu) / sd);
        for (int i = 0; i < nev; i++) ev[(size_t)i * d + c] = (float)((ev[(size_t)i * d + c] - mu) / sd);
    }
}

static double accuracy(const float *x, const int *y, int n, int d, const double *w)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        double z = w[d];
        for (int c = 0; c < d; c++) z += w[c] * x[(size_t)i * d + c];
        ok += (z > 0) == (y[i] == 1);
    }
    return (double)ok / n;
}

/* Binary logistic regression (label 1 vs the rest), full-batch GD. */
static void fit(const float *x, const int *y, int n, int d, double lambda, int iters, double *w)
{
    double *g = malloc(sizeof *g * (size_t)(d + 1));
    memset(w, 0, sizeof *w * (size_t)(d + 1));
    for (int it = 0; it < iters; it++) {
        memset(g, 0, sizeof *g * (size_t)(d + 1));
        for (int i = 0; i < n; i++) {
            double z = w[d];
            for (int c = 0; c < d; c++) z += w[c] * x[(size_t)i * d + c];
            const double e = 1.0 / (1.0 + exp(-z)) - (y[i] == 1);
            for (int c = 0; c < d; c++) g[c] += e * x[(size_t)i * d + c];
            g[d] += e;
        }
        for (int c = 0; c <= d; c++) w[c] -= 0.5 * (g[c] / n + (c < d ? lambda * w[c] : 0.0));
    }
    free(g);
}

int sq_bench_probe_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"iters", required_argument, 0, 'i'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = "examples/sentiment-opt-mini.yaml", *sets[32];
    int n_sets = 0, iters = 2000, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's':
            if (n_sets < 32) sets[n_sets++] = optarg;
            break;
        case 'i': iters = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    sq_config_t cfg, cfg_tr;
    sq_backend_t *be = NULL;
    sq_tokenizer_t *tok = NULL;
    sq_model_t *m = NULL;
    sq_task_t *ev = NULL, *tr = NULL;
    sq_status_t st = sq_config_load(config, &cfg);
    for (int i = 0; st == SQ_OK && i < n_sets; i++) st = sq_config_set(&cfg, sets[i]);
    if (st == SQ_OK && (cfg.task.type != SQ_TASK_CLASSIFY || !cfg.task.eval[0]))
        st = sq_error_set(SQ_ERR_CONFIG, "%s: the probe needs a classification task with task.eval",
                          config);
    if (st == SQ_OK) st = sq_backend_cpu_create(cfg.train.threads, &be);
    if (st == SQ_OK) st = sq_tokenizer_load(cfg.tokenizer[0] ? cfg.tokenizer : cfg.model, &tok);
    sq_model_load_opts_t lo = {.max_batch = 32, .max_seq = cfg.task.max_len};
    if (st == SQ_OK) st = sq_model_load(cfg.model, &lo, be, &m);
    /* the training set read as an eval set: every example once, in file order */
    cfg_tr = cfg;
    memcpy(cfg_tr.task.eval, cfg.task.train, sizeof cfg.task.train);
    cfg_tr.task.eval_limit = 0;
    const int V = m ? sq_model_config(m)->vocab_size : 0;
    if (st == SQ_OK) st = sq_task_load(&cfg, tok, V, &ev);
    if (st == SQ_OK) st = sq_task_load(&cfg_tr, tok, V, &tr);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq bench probe: %s\n", sq_error_last());
        sq_task_destroy(ev), sq_task_destroy(tr), sq_model_destroy(m);
        sq_tokenizer_destroy(tok), sq_backend_destroy(be);
        return 1;
    }
    const sq_model_config_t *mc = sq_model_config(m);
    const int d = mc->d_model, ntr = sq_task_eval_size(tr), nev = sq_task_eval_size(ev);
    feats_t ftr = {.d = d}, fev = {.d = d};
    ftr.last = malloc(sizeof(float) * (size_t)ntr * d), ftr.mean = malloc(sizeof(float) * (size_t)ntr * d);
    fev.last = malloc(sizeof(float) * (size_t)nev * d), fev.mean = malloc(sizeof(float) * (size_t)nev * d);
    ftr.y = malloc(sizeof(int) * (size_t)ntr), fev.y = malloc(sizeof(int) * (size_t)nev);
    double *w = malloc(sizeof *w * (size_t)(d + 1));
    int major = 0;
    sq_bench_print_machine();
    printf("job %s: %d train / %d eval examples, features d = %d; logistic regression, %d GD "
           "iterations; eval accuracy of the best lambda in {1e-3, 1e-2, 1e-1} (an optimistic "
           "upper bound: lambda picked on eval)\n\n",
           config, ntr, nev, d, iters);
    printf("| features after | position | train acc | eval acc | lambda |\n|---|---|---|---|---|\n");
    for (int l = -1; l < mc->n_layers; l++) {
        const int u = l < 0 ? 1 : 1 + 3 * (l + 1); /* after the embedding, after layer l */
        if (collect(m, tr, u, &ftr) != SQ_OK || collect(m, ev, u, &fev) != SQ_OK) {
            fprintf(stderr, "sparq bench probe: %s\n", sq_error_last());
            return 1;
        }
        for (int pos = 0; pos < 2; pos++) {
            float *xtr = pos ? ftr.mean : ftr.last, *xev = pos ? fev.mean : fev.last;
            standardise(xtr, ntr, xev, nev, d);
            static const double lambdas[] = {1e-3, 1e-2, 1e-1};
            double best_ev = -1, best_tr = 0, best_l = 0;
            for (int k = 0; k < 3; k++) {
                fit(xtr, ftr.y, ntr, d, lambdas[k], iters, w);
                const double a = accuracy(xev, fev.y, nev, d, w);
                if (a > best_ev) best_ev = a, best_tr = accuracy(xtr, ftr.y, ntr, d, w), best_l = lambdas[k];
            }
            char where[32];
            if (l < 0) snprintf(where, sizeof where, "embedding");
            else snprintf(where, sizeof where, "layer %d", l);
            printf("| %s | %s | %.3f | %.3f | %.0e |\n", where, pos ? "mean" : "last", best_tr,
                   best_ev, best_l);
            fflush(stdout);
        }
    }
    for (int i = 0; i < nev; i++) major += fev.y[i] == 1;
    printf("\neval majority class: %.3f\n", (double)(major > nev - major ? major : nev - major) / nev);
    free(w), free(ftr.last), free(ftr.mean), free(fev.last), free(fev.mean), free(ftr.y), free(fev.y);
    sq_task_destroy(ev), sq_task_destroy(tr), sq_model_destroy(m);
    sq_tokenizer_destroy(tok), sq_backend_destroy(be);
    return 0;
}
