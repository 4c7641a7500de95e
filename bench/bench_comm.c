/* Communication volume of a pipelined ZO job, measured in one process.
 *
 * The whole model is loaded once; every step runs exactly the forwards a
 * pipeline runs (per SPSA sample, per micro-batch, +eps then -eps), stage by
 * stage over the job's own partition (pipeline.stages/boundaries/plan). At
 * each stage boundary the crossing tensors are encoded with that boundary's
 * codec, decoded back into the same buffers (what the next stage would see)
 * and the next stage runs on the decoded values; the update is applied as
 * the stages would. So the bytes are those of a real step, without UCX.
 *
 * Reported against (a) a first-order pipeline (fp16 activations forward and
 * fp16 gradients backward, one forward/backward per micro-batch) and (b)
 * dense fp16 ZO (the same forwards, fp16 dense). Memory per stage: each
 * stage's unit range is loaded in its own forked child that runs its ZO
 * forwards; its VmHWM is set against a mixed-precision Adam estimate. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "sparq/codec.h"
#include "sparq/config.h"
#include "sparq/model.h"
#include "sparq/select.h"
#include "sparq/task.h"
#include "sparq/tokenizer.h"
#include "sparq/trainer.h"
#include "sparq/zo_rng.h"

#define COMM_MAX_SETS 64
/* Encode and decode calls timed per message; the median counts. One call of
 * a small message is tens of microseconds: a lone call on a shared machine
 * can be preempted (a 9 ms encode was seen). */
#define COMM_TIMING_REPS 5

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench comm --config job.yaml [--set key=value ...] [--steps 3]\n"
               "                        [--csv FILE] [--md FILE]\n"
               "\n"
               "Runs the job's ZO steps in one process over its pipeline partition\n"
               "(pipeline.stages / pipeline.boundaries / pipeline.plan) and, at every stage\n"
               "boundary, encodes the crossing activations with that boundary's codec and\n"
               "decodes them for the next stage. Reports per boundary and step the bytes\n"
               "(fp32, fp16, encoded), density after quantization, bits per value, header and\n"
               "scale overhead and encode/decode time; per step the codec traffic against a\n"
               "first-order pipeline and dense fp16 ZO; per stage the measured peak memory\n"
               "against a first-order mixed-precision Adam estimate.\n"
               "\n"
               "  --config FILE     job configuration (YAML), with pipeline.stages >= 2\n"
               "  --set KEY=VALUE   override one key (repeatable), e.g. --set codec.bits=4\n"
               "  --steps N         steps to run (default 3)\n"
               "  --csv FILE        one row per boundary and step\n"
               "  --md FILE         also write the Markdown tables printed on stdout\n");
}

/* ---- output: stdout, and the --md file when given ---- */

static FILE *md_file;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    vprintf(fmt, ap);
    if (md_file) vfprintf(md_file, fmt, ap2);
    va_end(ap2);
    va_end(ap);
}

/* ---- one codec message, split into the sections of codec/FORMAT.md ---- */

/* Bytes of one message by what they carry. `overhead` is everything that is
 * not a value: the 64-byte header, the scales, the outlier column list and
 * values, the bitmap or the CSR row pointers, and the zero padding after
 * each section. The codes and the CSR column indices are the payload (a
 * sparse format must say where each value goes; the row pointers only say
 * where each row starts, a fixed cost per token like the scales). */
typedef struct msg_parts {
    uint64_t header, scales, outliers, struct_fixed, colidx, codes, padding;
} msg_parts_t;

static uint64_t pad8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static uint64_t parts_overhead(const msg_parts_t *p)
{
    return p->header + p->scales + p->outliers + p->struct_fixed + p->padding;
}

/* Derive the section sizes from the header with FORMAT.md's formulas, and
 * check that they add up to the message size the header states. */
static sq_status_t msg_split(const void *msg, size_t len, sq_codec_header_t *h, msg_parts_t *o)
{
    SQ_TRY(sq_codec_peek(msg, len, h));
    memset(o, 0, sizeof *o);
    const uint64_t R = (uint64_t)h->rows, C = (uint64_t)h->cols, N = R * C, b = (uint64_t)h->bits;
    o->header = h->header_size;
    if (h->encoding == SQ_CODEC_LOSSLESS) {
        o->codes = N * (h->value_dtype == SQ_DTYPE_F16 ? 2 : 4);
    } else {
        const uint64_t sb = h->scale_dtype == SQ_DTYPE_F16 ? 2 : 4;
        const uint64_t ob = h->outlier_dtype == SQ_DTYPE_F16 ? 2 : 4, K = h->n_outliers;
        o->scales = R * (C / h->group_size) * sb;
        o->outliers = K ? 4 * K + R * K * ob : 0;
        switch (h->encoding) {
        case SQ_CODEC_DENSE:
            o->codes = (N * b + 7) / 8;
            break;
        case SQ_CODEC_BITMAP:
            o->struct_fixed = (N + 7) / 8;
            o->codes = (h->nnz * b + 7) / 8;
            break;
        case SQ_CODEC_CSR:
            o->struct_fixed = 4 * (R + 1);
            o->colidx = h->nnz * h->index_bytes;
            o->codes = (h->nnz * b + 7) / 8;
            break;
        default:
            return sq_error_set(SQ_ERR_INTERNAL, "bench comm: encoding %d in a message",
                                (int)h->encoding);
        }
    }
    const uint64_t data = o->scales + o->outliers + o->struct_fixed + o->colidx + o->codes;
    const uint64_t padded =
        pad8(o->scales) + pad8(o->outliers) + pad8(o->struct_fixed + o->colidx) + pad8(o->codes);
    o->padding = padded - data;
    if (o->header + padded != h->total_size)
        return sq_error_set(SQ_ERR_INTERNAL,
                            "bench comm: a %s message of %zu bytes, but codec/FORMAT.md's sections "
                            "add up to %llu",
                            sq_codec_encoding_name(h->encoding), h->total_size,
                            (unsigned long long)(o->header + padded));
    return SQ_OK;
}

/* ---- what crossed one boundary during one step ---- */

typedef struct bd_id {
    int unit;         /* first unit of the next stage */
    char cand[48];    /* split candidate name: "L2.out", "L3.mlp_act" */
    char tensors[40]; /* "hidden" or "hidden+mlp_act" */
} bd_id_t;

typedef struct bd_acc {
    bd_id_t id; /* which boundary; the rest is reset every step */
    int bits;
    uint64_t msgs;     /* codec messages (one per tensor, micro-batch, sign, sample) */
    uint64_t elems;    /* values sent: fp32 bytes = 4x, fp16 bytes = 2x */
    uint64_t nnz;      /* non-zero codes after quantization */
    uint64_t bytes;    /* encoded message bytes */
    msg_parts_t parts; /* their breakdown */
    unsigned layouts;  /* bit e set: some message used encoding e */
    double enc_s, dec_s;
    uint64_t fo_bytes; /* first-order pipeline: fp16 activation fwd + fp16 gradient bwd */
} bd_acc_t;

static void parts_add(msg_parts_t *a, const msg_parts_t *b)
{
    a->header += b->header;
    a->scales += b->scales;
    a->outliers += b->outliers;
    a->struct_fixed += b->struct_fixed;
    a->colidx += b->colidx;
    a->codes += b->codes;
    a->padding += b->padding;
}

static void layouts_name(unsigned mask, char *buf, size_t cap)
{
    buf[0] = 0;
    for (int e = 0; e < SQ_CODEC_AUTO; e++)
        if (mask & (1u << e))
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", buf[0] ? "/" : "",
                     sq_codec_encoding_name((sq_codec_encoding_t)e));
}

/* ---- the in-process pipeline ---- */

typedef struct comm {
    sq_config_t cfg;
    int S, M, units;
    int *cut; /* [S + 1]: stage k runs units [cut[k], cut[k+1]) */
    sq_model_config_t mc;
    sq_backend_t *be;
    sq_tokenizer_t *tok;
    sq_task_t *task;
    sq_model_t *model;
    sq_selection_t sel;
    uint8_t *buf; /* one encoded message */
    size_t cap;
    float **pair_x, **pair_hat; /* [S - 1]: ZO pair coding, the sender's x+ (then x- - x+) and
                                   the receiver's decoded x+; NULL where the boundary is unpaired */
    double *terms; /* loss terms of the +eps and of the -eps pass */
    int max_terms;
    bd_acc_t *acc; /* [S - 1], one step */
} comm_t;

static double median(double *x, int n)
{
    qsort(x, (size_t)n, sizeof *x, sq_bench_cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* Encode what crosses boundary k (stage k -> k+1) as the worker does (same
 * params, dither seed and stream, ZO pair coding), decode it back in place,
 * account. */
static sq_status_t cross_boundary(comm_t *c, int k, const sq_batch_t *b, int64_t step, int micro,
                                  int sign, uint64_t seed, int count_fo)
{
    sq_boundary_t bd;
    bd_acc_t *a = &c->acc[k];
    SQ_TRY(sq_model_boundary(c->model, c->cut[k + 1], b->B, b->T, &bd));
    /* pair coding: +eps keeps x+; -eps sends d = x- - x+ and gets x^+ + d^ */
    const int diff = sq_boundary_pair_send(&bd, sign, c->pair_x[k]);
    const float *delta = c->pair_x[k];
    for (int i = 0; i < bd.n_tensors; i++) {
        const sq_codec_params_t p = sq_config_codec_msg_params(&c->cfg, k, i, step, micro, seed);
        const int64_t rows = sq_tensor_rows(&bd.t[i]), cols = sq_tensor_cols(&bd.t[i]);
        const int64_t ld = sq_tensor_ld(&bd.t[i]);
        const float *x = diff ? delta : bd.t[i].data;
        if (diff) delta += rows * cols;
        /* The message is the first encode's; every call writes the same bytes.
         * Repeats decode into the same cells with the same values. */
        size_t written = 0;
        double te[COMM_TIMING_REPS], td[COMM_TIMING_REPS];
        for (int r = 0; r < COMM_TIMING_REPS; r++) {
            double t0 = sq_bench_now();
            sq_status_t st =
                sq_codec_encode(&p, x, rows, cols, diff ? cols : ld, c->buf, c->cap, &written, NULL);
            te[r] = sq_bench_now() - t0;
            if (st != SQ_OK)
                return sq_error_push(st, "boundary %d (%s), step %lld, %s", k, a->id.cand,
                                     (long long)step, bd.names[i]);
        }
        for (int r = 0; r < COMM_TIMING_REPS; r++) {
            double t0 = sq_bench_now();
            sq_status_t st = sq_codec_decode(c->buf, written, bd.t[i].data, rows, cols, ld);
            td[r] = sq_bench_now() - t0;
            if (st != SQ_OK)
                return sq_error_push(st, "boundary %d (%s), step %lld, %s: decode", k, a->id.cand,
                                     (long long)step, bd.names[i]);
        }
        sq_codec_header_t h;
        msg_parts_t parts;
        SQ_TRY(msg_split(c->buf, written, &h, &parts));
        a->msgs++;
        a->elems += (uint64_t)(rows * cols);
        a->nnz += h.nnz;
        a->bytes += written;
        parts_add(&a->parts, &parts);
        a->layouts |= 1u << h.encoding;
        a->bits = h.bits;
        a->enc_s += median(te, COMM_TIMING_REPS);
        a->dec_s += median(td, COMM_TIMING_REPS);
        if (count_fo) a->fo_bytes += (uint64_t)(rows * cols) * 2 * 2;
    }
    sq_boundary_pair_recv(&bd, sign, c->pair_hat[k]);
    return SQ_OK;
}

/* One micro-batch at one sign through all stages. The first-order figure
 * counts each micro-batch once per step (count_fo), whatever the samples. */
static sq_status_t pipeline_forward(comm_t *c, sq_task_batch_t *mb, int64_t step, int micro,
                                    int sign, uint64_t seed, int count_fo)
{
    for (int k = 0; k < c->S; k++) {
        if (k > 0)
            SQ_TRY(cross_boundary(c, k - 1, &mb->batch, step, micro, sign, seed, count_fo));
        SQ_TRY(sq_model_forward_units(c->model, &mb->batch, c->cut[k], c->cut[k + 1],
                                      k == c->S - 1 ? &mb->head : NULL));
    }
    return SQ_OK;
}

static double mean_of(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += x[i];
    return n ? s / n : NAN;
}

typedef struct step_out {
    double lplus, lminus, g; /* g: mean projected gradient over the samples */
    int Bm, T;
} step_out_t;

/* Step t as the pipeline runs it (runtime/worker.c pipeline_step): the
 * batch of (train.seed, t), per sample s the seed sq_zo_step_seed(seed, t,
 * s), per micro-batch +eps then -eps; then g and the update. */
static sq_status_t comm_step(comm_t *c, int64_t t, step_out_t *so)
{
    const sq_config_t *cf = &c->cfg;
    const int n = cf->optimizer.n_spsa;
    sq_task_batch_t b, mb;
    uint64_t *seeds = malloc(sizeof *seeds * (size_t)n);
    float *g = malloc(sizeof *g * (size_t)n);
    sq_status_t st = SQ_OK;
    if (!seeds || !g) {
        st = sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
        goto done;
    }
    for (int k = 0; k + 1 < c->S; k++) {
        const bd_id_t id = c->acc[k].id;
        memset(&c->acc[k], 0, sizeof c->acc[k]);
        c->acc[k].id = id;
    }
    SQ_TRY_GOTO(st, sq_task_train_batch(c->task, cf->train.seed, t, &b), done);
    so->Bm = b.batch.B / c->M;
    so->T = b.batch.T;
    so->lplus = so->lminus = so->g = 0;
    for (int s = 0; s < n; s++) {
        const uint64_t seed = sq_zo_step_seed(cf->train.seed, (uint64_t)t, (uint32_t)s);
        double *plus = c->terms, *minus = c->terms + c->max_terms;
        int np = 0, nm = 0;
        seeds[s] = seed;
        for (int m = 0; m < c->M; m++) {
            SQ_TRY_GOTO(st, sq_task_micro_batch(c->task, &b, m, c->M, &mb), done);
            for (int sign = 1; sign >= -1; sign -= 2) {
                sq_perturbation_t p = {.seed = seed,
                                       .scale = (float)sign * (float)cf->optimizer.eps,
                                       .tuned = c->sel.tuned,
                                       .masks = (const uint8_t *const *)c->sel.masks};
                SQ_TRY_GOTO(st, sq_model_set_perturbation(c->model, &p), done);
                SQ_TRY_GOTO(st, pipeline_forward(c, &mb, t, m, sign, seed, s == 0 && sign > 0), done);
                if (sign > 0)
                    np += sq_task_loss_terms(c->task, &mb, plus + np, NULL);
                else
                    nm += sq_task_loss_terms(c->task, &mb, minus + nm, NULL);
            }
        }
        const double lp = mean_of(plus, np), lm = mean_of(minus, nm);
        if (!isfinite(lp) || !isfinite(lm)) {
            st = sq_error_set(SQ_ERR_RANGE, "bench comm: step %lld: loss is not finite",
                              (long long)t);
            goto done;
        }
        g[s] = (float)((lp - lm) / (2.0 * (double)(float)cf->optimizer.eps));
        so->g += (double)g[s] / n;
        so->lplus += lp / n;
        so->lminus += lm / n;
    }
    SQ_TRY_GOTO(st, sq_model_set_perturbation(c->model, NULL), done);
    /* the next step's activations are those of the updated weights */
    st = sq_zo_apply_update(c->model, &c->sel, n, seeds, g, (float)sq_zo_lr(cf, t),
                            (float)cf->optimizer.weight_decay);
done:
    free(seeds);
    free(g);
    return st;
}

/* ---- memory per stage ---- */

typedef struct mem_result {
    int ok;
    sq_status_t status; /* the child's status when !ok */
    int64_t n_params;   /* parameter elements this stage holds */
    double param_mb, arena_mb;
    double rss_mb;        /* VmHWM: the peak, loading included */
    double rss_now_mb;    /* VmRSS after the forwards: what the stage keeps */
    int Bm, T, head_rows; /* the micro-batch it ran (step 0) */
    char err[512];
} mem_result_t;

/* In the child: stage k alone, as its worker holds it, running the ZO
 * forwards of step 0 (input activations zero: the peak does not depend on
 * the values, the forward allocates nothing). ub < 0: the runtime floor, a
 * process with the backend, tokenizer and task but no model. */
static sq_status_t stage_child(const sq_config_t *cf, int ub, int ue, mem_result_t *r)
{
    sq_backend_t *be = NULL;
    sq_tokenizer_t *tok = NULL;
    sq_task_t *task = NULL;
    sq_model_t *m = NULL;
    sq_selection_t sel;
    memset(&sel, 0, sizeof sel);
    sq_status_t st;
    const char *tok_path = cf->tokenizer[0] ? cf->tokenizer : cf->model;
    SQ_TRY_GOTO(st, sq_backend_cpu_create(cf->train.threads, &be), done);
    SQ_TRY_GOTO(st, sq_tokenizer_load(tok_path, &tok), done);
    sq_model_t *probe = NULL;
    sq_model_load_opts_t lo = {.unit_begin = 1, .unit_end = 2, .max_batch = 1, .max_seq = 1};
    SQ_TRY_GOTO(st, sq_model_load(cf->model, &lo, be, &probe), done);
    const int vocab = sq_model_config(probe)->vocab_size;
    sq_model_destroy(probe);
    SQ_TRY_GOTO(st, sq_task_load(cf, tok, vocab, &task), done);
    if (ub < 0) {
        r->rss_mb = sq_bench_peak_rss_kb() / 1024.0;
        r->rss_now_mb = sq_bench_rss_kb() / 1024.0;
        r->ok = 1;
        goto done;
    }
    lo = (sq_model_load_opts_t){.unit_begin = ub,
                                .unit_end = ue,
                                .max_batch = cf->train.batch_size / cf->pipeline.micro_batches,
                                .max_seq = sq_task_max_seq(task),
                                .perturb = 1};
    SQ_TRY_GOTO(st, sq_model_load(cf->model, &lo, be, &m), done);
    SQ_TRY_GOTO(st, sq_selection_build(cf, m, &sel), done);
    const int last = ue == sq_model_unit_count(sq_model_config(m));
    sq_task_batch_t b, mb;
    SQ_TRY_GOTO(st, sq_task_train_batch(task, cf->train.seed, 0, &b), done);
    const int M = cf->pipeline.micro_batches;
    for (int s = 0; s < cf->optimizer.n_spsa; s++) {
        const uint64_t seed = sq_zo_step_seed(cf->train.seed, 0, (uint32_t)s);
        for (int mi = 0; mi < M; mi++) {
            SQ_TRY_GOTO(st, sq_task_micro_batch(task, &b, mi, M, &mb), done);
            for (int sign = 1; sign >= -1; sign -= 2) {
                sq_boundary_t in;
                SQ_TRY_GOTO(st, sq_model_input_boundary(m, mb.batch.B, mb.batch.T, &in), done);
                for (int i = 0; i < in.n_tensors; i++)
                    for (int64_t row = 0; row < sq_tensor_rows(&in.t[i]); row++)
                        memset((float *)in.t[i].data + row * sq_tensor_ld(&in.t[i]), 0,
                               sizeof(float) * (size_t)sq_tensor_cols(&in.t[i]));
                sq_perturbation_t p = {.seed = seed,
                                       .scale = (float)sign * (float)cf->optimizer.eps,
                                       .tuned = sel.tuned,
                                       .masks = (const uint8_t *const *)sel.masks};
                SQ_TRY_GOTO(st, sq_model_set_perturbation(m, &p), done);
                SQ_TRY_GOTO(st, sq_model_forward(m, &mb.batch, last ? &mb.head : NULL), done);
            }
        }
        r->Bm = mb.batch.B;
        r->T = mb.batch.T;
        r->head_rows = mb.head.rows ? mb.head.n_rows : mb.batch.B * mb.batch.T;
    }
    for (int i = 0; i < sq_model_param_count(m); i++)
        r->n_params += sq_tensor_numel(&sq_model_param(m, i)->t);
    r->param_mb = sq_model_param_bytes(m) / 1048576.0;
    r->arena_mb = sq_model_arena_bytes(m) / 1048576.0;
    r->rss_mb = sq_bench_peak_rss_kb() / 1024.0;
    r->rss_now_mb = sq_bench_rss_kb() / 1024.0;
    r->ok = 1;
done:
    sq_selection_free(&sel);
    sq_model_destroy(m);
    sq_task_destroy(task);
    sq_tokenizer_destroy(tok);
    sq_backend_destroy(be);
    return st;
}

/* Fork, run `stage_child` in the child, read its result back through a pipe. */
static mem_result_t measure_stage(const sq_config_t *cf, int ub, int ue)
{
    mem_result_t r;
    memset(&r, 0, sizeof r);
    int fd[2];
    fflush(stdout);
    fflush(stderr);
    if (md_file) fflush(md_file);
    if (pipe(fd) != 0) {
        r.status = SQ_ERR_IO;
        snprintf(r.err, sizeof r.err, "pipe: %s", strerror(errno));
        return r;
    }
    pid_t pid = fork();
    if (pid < 0) {
        r.status = SQ_ERR_NOMEM;
        snprintf(r.err, sizeof r.err, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return r;
    }
    if (pid == 0) {
        close(fd[0]);
        mem_result_t c;
        memset(&c, 0, sizeof c);
        sq_status_t st = stage_child(cf, ub, ue, &c);
        if (st != SQ_OK) {
            c.ok = 0;
            c.status = st;
            snprintf(c.err, sizeof c.err, "%s", sq_error_last());
        }
        ssize_t w = write(fd[1], &c, sizeof c);
        _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], &r, sizeof r);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof r) {
        memset(&r, 0, sizeof r);
        r.status = SQ_ERR_INTERNAL;
        snprintf(r.err, sizeof r.err, "the stage process died (status 0x%x)", status);
    }
    return r;
}

/* ---- setup ---- */

static sq_status_t comm_open(comm_t *c)
{
    const sq_config_t *cf = &c->cfg;
    const char *tok_path = cf->tokenizer[0] ? cf->tokenizer : cf->model;
    SQ_TRY(sq_backend_cpu_create(cf->train.threads, &c->be));
    SQ_TRY(sq_tokenizer_load(tok_path, &c->tok));
    SQ_TRY(sq_task_load(cf, c->tok, c->mc.vocab_size, &c->task));
    sq_model_load_opts_t lo = {.max_batch = cf->train.batch_size / c->M,
                               .max_seq = sq_task_max_seq(c->task),
                               .perturb = 1};
    SQ_TRY(sq_model_load(cf->model, &lo, c->be, &c->model));
    SQ_TRY(sq_selection_build(cf, c->model, &c->sel));
    c->max_terms = sq_task_max_terms(c->task);
    c->terms = malloc(sizeof *c->terms * (size_t)c->max_terms * 2);
    if (!c->terms) return sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
    /* one message buffer, large enough for any crossing tensor of any boundary */
    sq_split_candidate_t *cand = malloc(sizeof *cand * (size_t)c->units);
    if (!cand) return sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
    sq_model_split_candidates(&c->mc, cand, c->units);
    const int64_t rows = (int64_t)lo.max_batch * lo.max_seq;
    sq_status_t st = SQ_OK;
    for (int k = 0; st == SQ_OK && k + 1 < c->S; k++) {
        const sq_split_candidate_t *cd = &cand[c->cut[k + 1] - 1];
        sq_codec_params_t p = sq_config_codec_params(cf, k);
        bd_acc_t *a = &c->acc[k];
        a->id.unit = cd->unit;
        snprintf(a->id.cand, sizeof a->id.cand, "%s", cd->name);
        snprintf(a->id.tensors, sizeof a->id.tensors, "%s%s%s", cd->tensors[0],
                 cd->n_tensors > 1 ? "+" : "", cd->n_tensors > 1 ? cd->tensors[1] : "");
        for (int i = 0; i < cd->n_tensors; i++) {
            size_t need = sq_codec_max_size(&p, rows, cd->cols[i]);
            if (need == 0) {
                st = sq_error_push(SQ_ERR_CONFIG, "codec of boundary %d (%s)", k, cd->name);
                break;
            }
            if (need > c->cap) c->cap = need;
        }
    }
    free(cand);
    SQ_TRY(st);
    c->buf = malloc(c->cap);
    c->pair_x = calloc((size_t)c->S, sizeof *c->pair_x);
    c->pair_hat = calloc((size_t)c->S, sizeof *c->pair_hat);
    if (!c->buf || !c->pair_x || !c->pair_hat)
        return sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
    for (int k = 0; k + 1 < c->S; k++) {
        if (!sq_config_codec_pair(cf, k)) continue;
        sq_boundary_t bd;
        SQ_TRY(sq_model_boundary(c->model, c->cut[k + 1], lo.max_batch, lo.max_seq, &bd));
        const size_t n = (size_t)sq_boundary_numel(&bd);
        c->pair_x[k] = malloc(sizeof(float) * n);
        c->pair_hat[k] = malloc(sizeof(float) * n);
        if (!c->pair_x[k] || !c->pair_hat[k])
            return sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
    }
    return SQ_OK;
}

static void comm_close(comm_t *c)
{
    sq_selection_free(&c->sel);
    sq_model_destroy(c->model);
    sq_task_destroy(c->task);
    sq_tokenizer_destroy(c->tok);
    sq_backend_destroy(c->be);
    for (int k = 0; c->pair_x && k < c->S; k++) free(c->pair_x[k]), free(c->pair_hat[k]);
    free(c->pair_x);
    free(c->pair_hat);
    free(c->buf);
    free(c->terms);
    free(c->acc);
    free(c->cut);
}

/* The job, its partition and the model's shape. */
static sq_status_t comm_config(comm_t *c, const char *config, const char *const *sets, int n_sets)
{
    SQ_TRY(sq_config_load(config, &c->cfg));
    for (int i = 0; i < n_sets; i++)
        SQ_TRY(sq_config_set(&c->cfg, sets[i]));
    if (n_sets) SQ_TRY(sq_config_validate(&c->cfg, "--set"));
    c->S = c->cfg.pipeline.stages;
    c->M = c->cfg.pipeline.micro_batches;
    if (c->S < 2)
        return sq_error_set(SQ_ERR_CONFIG,
                            "%s: pipeline.stages is %d: no activations cross a stage boundary; set "
                            "pipeline.stages >= 2 (and pipeline.boundaries), or pipeline.plan, "
                            "e.g. --set pipeline.stages=2",
                            config, c->S);
    /* the model's shape without loading it: a unit-1 range holds layer 0's attention only */
    sq_backend_t *be = NULL;
    sq_model_t *probe = NULL;
    sq_model_load_opts_t lo = {.unit_begin = 1, .unit_end = 2, .max_batch = 1, .max_seq = 1};
    sq_status_t st = sq_backend_cpu_create(1, &be);
    if (st == SQ_OK) st = sq_model_load(c->cfg.model, &lo, be, &probe);
    if (st == SQ_OK) c->mc = *sq_model_config(probe);
    sq_model_destroy(probe);
    sq_backend_destroy(be);
    SQ_TRY(st);
    c->units = sq_model_unit_count(&c->mc);
    c->cut = malloc(sizeof *c->cut * (size_t)(c->S + 1));
    c->acc = calloc((size_t)c->S, sizeof *c->acc);
    if (!c->cut || !c->acc) return sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
    for (int k = 0; k < c->S; k++)
        SQ_TRY(sq_config_stage_units(&c->cfg, c->units, c->mc.n_layers, k, &c->cut[k],
                                     &c->cut[k + 1]));
    return SQ_OK;
}

/* ---- reports ---- */

static double gbs(uint64_t elems, double s)
{
    return s > 0 ? (double)elems * 4 / s * 1e-9 : 0;
}

static void print_command(int argc, char **argv)
{
    out("command: sparq bench");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *p = a; *p; p++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:+",
                        *p))
                plain = 0;
        out(plain ? " %s" : " '%s'", a);
    }
    out("\n");
}

static void csv_header(FILE *f)
{
    fprintf(f, "step,boundary,unit,candidate,tensors,messages,elements,bytes_fp32,bytes_fp16,"
               "bytes_encoded,ratio_fp16,density,bits,bits_per_value,bytes_header,bytes_scales,"
               "bytes_outliers,bytes_bitmap_rowptr,bytes_colidx,bytes_codes,bytes_padding,"
               "bytes_overhead,layout,encode_ms,encode_gbs,decode_ms,decode_gbs,"
               "bytes_first_order_fp16\n");
}

static void csv_row(FILE *f, int64_t t, int k, const bd_acc_t *a)
{
    char lay[64];
    layouts_name(a->layouts, lay, sizeof lay);
    const msg_parts_t *p = &a->parts;
    fprintf(f,
            "%lld,%d,%d,%s,%s,%llu,%llu,%llu,%llu,%llu,%.4f,%.6f,%d,%.4f,%llu,%llu,%llu,%llu,"
            "%llu,%llu,%llu,%llu,%s,%.4f,%.3f,%.4f,%.3f,%llu\n",
            (long long)t, k, a->id.unit, a->id.cand, a->id.tensors, (unsigned long long)a->msgs,
            (unsigned long long)a->elems, (unsigned long long)(a->elems * 4),
            (unsigned long long)(a->elems * 2), (unsigned long long)a->bytes,
            a->bytes ? 2.0 * (double)a->elems / (double)a->bytes : 0.0,
            a->elems ? (double)a->nnz / (double)a->elems : 0.0, a->bits,
            a->elems ? 8.0 * (double)a->bytes / (double)a->elems : 0.0,
            (unsigned long long)p->header, (unsigned long long)p->scales,
            (unsigned long long)p->outliers, (unsigned long long)p->struct_fixed,
            (unsigned long long)p->colidx, (unsigned long long)p->codes,
            (unsigned long long)p->padding, (unsigned long long)parts_overhead(p), lay,
            1e3 * a->enc_s, gbs(a->elems, a->enc_s), 1e3 * a->dec_s, gbs(a->elems, a->dec_s),
            (unsigned long long)a->fo_bytes);
}

static void md_row(int64_t t, int k, const bd_acc_t *a)
{
    char lay[64];
    layouts_name(a->layouts, lay, sizeof lay);
    const uint64_t ovh = parts_overhead(&a->parts);
    char bits[8] = "-", dens[16] = "-"; /* lossless: no codes, nothing quantized */
    if (a->bits) {
        snprintf(bits, sizeof bits, "%d", a->bits);
        snprintf(dens, sizeof dens, "%.1f%%",
                 a->elems ? 100.0 * (double)a->nnz / (double)a->elems : 0.0);
    }
    out("| %lld | %d | %d | %s | %s | %s | %llu | %llu | %llu | %.2fx | %s | %.2f | %llu "
        "(%.1f%%) | %s | %.3f | %.1f | %.3f | %.1f |\n",
        (long long)t, k, a->id.unit, a->id.cand, a->id.tensors, bits,
        (unsigned long long)(a->elems * 4), (unsigned long long)(a->elems * 2),
        (unsigned long long)a->bytes, a->bytes ? 2.0 * (double)a->elems / (double)a->bytes : 0.0,
        dens, a->elems ? 8.0 * (double)a->bytes / (double)a->elems : 0.0, (unsigned long long)ovh,
        a->bytes ? 100.0 * (double)ovh / (double)a->bytes : 0.0, lay, 1e3 * a->enc_s,
        gbs(a->elems, a->enc_s), 1e3 * a->dec_s, gbs(a->elems, a->dec_s));
}

typedef struct step_total {
    uint64_t codec, zo_fp16, fo_fp16;
    int Bm, T;
    double lplus, lminus, g;
} step_total_t;

static void md_total(const char *label, const step_total_t *s, int with_shape)
{
    char shape[32] = "-";
    if (with_shape) snprintf(shape, sizeof shape, "%dx%d", s->Bm, s->T);
    out("| %s | %s | %llu | %llu | %llu | %.1f%% | %.1f%% |", label, shape,
        (unsigned long long)s->codec, (unsigned long long)s->zo_fp16,
        (unsigned long long)s->fo_fp16,
        s->zo_fp16 ? 100.0 * (double)s->codec / (double)s->zo_fp16 : 0.0,
        s->fo_fp16 ? 100.0 * (double)s->codec / (double)s->fo_fp16 : 0.0);
    if (with_shape)
        out(" %.5f | %.5f | %+.4f |\n", s->lplus, s->lminus, s->g);
    else
        out(" | | |\n");
}

/* ---- main ---- */

static int parse_steps(const char *s, int *out_steps)
{
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || e == s || *e || v < 1 || v > 1000000) return -1;
    *out_steps = (int)v;
    return 0;
}

static int fail(sq_status_t st)
{
    fprintf(stderr, "sparq bench comm: %s: %s\n", sq_status_string(st), sq_error_last());
    return 1;
}

/* Every stage in its own process, before this one loads the model (a forked
 * child starts with its parent's anonymous pages). mr[S] is the runtime
 * floor: backend, tokenizer and task, no model. */
static sq_status_t measure_memory(const comm_t *c, mem_result_t *mr)
{
    mr[c->S] = measure_stage(&c->cfg, -1, -1);
    if (!mr[c->S].ok) return sq_error_set(mr[c->S].status, "%s", mr[c->S].err);
    for (int k = 0; k < c->S; k++) {
        mr[k] = measure_stage(&c->cfg, c->cut[k], c->cut[k + 1]);
        if (!mr[k].ok)
            return sq_error_set(mr[k].status, "stage %d, units [%d, %d): %s", k, c->cut[k],
                                c->cut[k + 1], mr[k].err);
    }
    return SQ_OK;
}

static void print_memory(const comm_t *c, const mem_result_t *mr)
{
    const mem_result_t *fl = &mr[c->S];
    out("\n### Memory per stage\n\n");
    out("Measured: each stage's unit range loaded alone in a forked process (fp32 parameters, "
        "out-of-place perturbation scratch, activations sized for %d x %d tokens), with the "
        "backend, tokenizer and task, running the ZO forwards of step 0. peak = VmHWM (loading "
        "included), after fwd = VmRSS after the forwards. Runtime floor (same process, no "
        "model): peak %.1f MB. First-order (FO) estimate: 16 B/param (fp16 weight + fp16 grad "
        "+ fp32 master + Adam m, v) + fp16 activations saved for the backward of the stage's "
        "units x micro-batches in flight under 1F1B (stage k of S: min(S-k, M)), at the "
        "micro-batch shape of step 0; it has no process or framework floor.\n\n",
        c->cfg.train.batch_size / c->M, c->cfg.task.max_len, fl->rss_mb);
    out("| stage | units | params | params MB (fp32) | arena MB | peak RSS MB | after fwd MB | "
        "micro-batch | FO weights+grads+Adam MB | FO activations MB (in flight) | FO total MB | "
        "FO / peak | FO / (peak - floor) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < c->S; k++) {
        const mem_result_t *r = &mr[k];
        sq_bench_fo_mem_t fo = sq_bench_fo_estimate(&c->mc, c->cut[k], c->cut[k + 1], k, c->S, c->M, r->n_params,
                                  r->Bm, r->T, r->head_rows);
        const double total = fo.weights_mb + fo.act_mb, net = r->rss_mb - fl->rss_mb;
        out("| %d | [%d,%d) | %lld | %.1f | %.1f | %.1f | %.1f | %dx%d | %.1f | %.2f (%d) | %.1f "
            "| %.2fx | %.2fx |\n",
            k, c->cut[k], c->cut[k + 1], (long long)r->n_params, r->param_mb, r->arena_mb,
            r->rss_mb, r->rss_now_mb, r->Bm, r->T, fo.weights_mb, fo.act_mb, fo.in_flight, total,
            r->rss_mb > 0 ? total / r->rss_mb : 0.0, net > 0 ? total / net : 0.0);
    }
}

/* sq_bench_print_machine writes to stdout only: point stdout at the --md file
 * for a second copy. */
static void print_machine(void)
{
    sq_bench_print_machine();
    if (!md_file) return;
    fflush(stdout);
    fflush(md_file);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0) return;
    if (dup2(fileno(md_file), STDOUT_FILENO) >= 0) {
        sq_bench_print_machine();
        fflush(stdout);
    }
    dup2(saved, STDOUT_FILENO);
    close(saved);
}

static void print_job(const comm_t *c, int steps)
{
    out("job: model %s, %d stages (units", c->cfg.model, c->S);
    for (int k = 0; k < c->S; k++)
        out(" [%d,%d)", c->cut[k], c->cut[k + 1]);
    out("), batch %d in %d micro-batches, %d SPSA sample(s), %d step(s), %d thread(s)\n",
        c->cfg.train.batch_size, c->M, c->cfg.optimizer.n_spsa, steps, c->cfg.train.threads);
    for (int k = 0; k + 1 < c->S; k++) {
        sq_codec_params_t p = sq_config_codec_params(&c->cfg, k);
        out("boundary %d (before unit %d, %s): codec %s", k, c->acc[k].id.unit, c->acc[k].id.cand,
            sq_codec_encoding_name(p.encoding));
        if (p.encoding == SQ_CODEC_LOSSLESS) {
            out(", %s values", p.lossless_dtype == SQ_DTYPE_F16 ? "fp16" : "fp32");
        } else {
            out(", %d bits, %s scales per %s, %s rounding", p.bits,
                p.scale_dtype == SQ_DTYPE_F16 ? "fp16" : "fp32",
                p.granularity == SQ_CODEC_PER_GROUP ? "group" : "token",
                p.rounding == SQ_CODEC_ROUND_STOCHASTIC ? "stochastic" : "nearest");
            if (p.granularity == SQ_CODEC_PER_GROUP) out(" (groups of %u columns)", p.group_size);
        }
        out("\n");
    }
}

static void print_legend(void)
{
    out("\nBytes per step and boundary, summed over every message (one per crossing tensor, "
        "micro-batch, sign and SPSA sample). fp32/fp16: the same tensors sent dense. vs fp16 = "
        "fp16 bytes / encoded bytes. density = non-zero codes / values after quantization. "
        "overhead = 64-byte header + scales + outlier list + bitmap or CSR row pointers + the "
        "zero padding to 8 bytes after each section (codec/FORMAT.md); the codes and CSR "
        "column indices are not counted in it. GB/s of fp32 source; enc/dec ms = the sum over "
        "the step's messages of the median of %d calls each, one thread.\n\n",
        COMM_TIMING_REPS);
    out("| step | boundary | unit | split | tensors | bits | fp32 B | fp16 B | encoded B | "
        "vs fp16 | density | bits/value | overhead B (%% of msg) | layout | enc ms | enc GB/s | "
        "dec ms | dec GB/s |\n");
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

static void print_totals(const step_total_t *tot, int steps, const step_total_t *all)
{
    out("\nPer step, all boundaries: codec = encoded bytes sent; dense fp16 ZO = the same forwards "
        "(2 x micro-batches x SPSA samples) sent as fp16; first-order = fp16 activations forward "
        "+ fp16 gradients backward, one forward and one backward per micro-batch. Not counted "
        "anywhere: the 8-byte length before each message and the scalar-g message going back "
        "(ZO), labels and control traffic. loss+/loss-: the mean loss of the +eps/-eps passes as "
        "the "
        "last stage computes it from the decoded activations; g = (loss+ - loss-) / (2 eps), "
        "the projected gradient the step applies.\n\n");
    out("| step | micro-batch | codec B | dense fp16 ZO B | first-order fp16 B | codec %% of dense "
        "ZO | codec %% of first-order | loss+ | loss- | g |\n");
    out("|---|---|---|---|---|---|---|---|---|---|\n");
    char label[32];
    for (int t = 0; t < steps; t++) {
        snprintf(label, sizeof label, "%d", t);
        md_total(label, &tot[t], 1);
    }
    snprintf(label, sizeof label, "all %d", steps);
    md_total(label, all, 0);
}

int sq_bench_comm_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"csv", required_argument, 0, 'v'},
                                         {"md", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *csv = NULL, *md = NULL, *sets[COMM_MAX_SETS];
    int n_sets = 0, steps = 3, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:s:n:v:m:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 's':
            if (n_sets == COMM_MAX_SETS) {
                fprintf(stderr, "sparq bench comm: more than %d --set\n", COMM_MAX_SETS);
                return 2;
            }
            sets[n_sets++] = optarg;
            break;
        case 'n':
            if (parse_steps(optarg, &steps)) {
                fprintf(stderr, "sparq bench comm: --steps \"%s\": expected an integer >= 1\n",
                        optarg);
                return 2;
            }
            break;
        case 'v':
            csv = optarg;
            break;
        case 'm':
            md = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sparq bench comm: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!config) {
        fprintf(stderr, "sparq bench comm: --config job.yaml is required\n");
        usage(stderr);
        return 2;
    }

    comm_t c;
    memset(&c, 0, sizeof c);
    FILE *cf = NULL;
    mem_result_t *mr = NULL;
    step_total_t *tot = NULL, all;
    memset(&all, 0, sizeof all);
    sq_status_t st;
    SQ_TRY_GOTO(st, comm_config(&c, config, sets, n_sets), done);
    mr = calloc((size_t)c.S + 1, sizeof *mr);
    tot = calloc((size_t)steps, sizeof *tot);
    if (!mr || !tot) {
        st = sq_error_set(SQ_ERR_NOMEM, "bench comm: out of memory");
        goto done;
    }
    /* open the outputs before the long part, so that a bad path fails at once */
    if (csv && !(cf = fopen(csv, "w"))) {
        st = sq_error_set(SQ_ERR_IO, "--csv %s: cannot open: %s", csv, strerror(errno));
        goto done;
    }
    if (md && !(md_file = fopen(md, "w"))) {
        st = sq_error_set(SQ_ERR_IO, "--md %s: cannot open: %s", md, strerror(errno));
        goto done;
    }
    SQ_TRY_GOTO(st, measure_memory(&c, mr), done);
    SQ_TRY_GOTO(st, comm_open(&c), done);

    print_machine();
    print_command(argc, argv);
    print_job(&c, steps);
    print_legend();
    if (cf) csv_header(cf);
    for (int t = 0; t < steps; t++) {
        step_out_t so = {0};
        SQ_TRY_GOTO(st, comm_step(&c, t, &so), done);
        step_total_t *s = &tot[t];
        s->Bm = so.Bm;
        s->T = so.T;
        s->lplus = so.lplus;
        s->lminus = so.lminus;
        s->g = so.g;
        for (int k = 0; k + 1 < c.S; k++) {
            const bd_acc_t *a = &c.acc[k];
            md_row(t, k, a);
            if (cf) csv_row(cf, t, k, a);
            s->codec += a->bytes;
            s->zo_fp16 += a->elems * 2;
            s->fo_fp16 += a->fo_bytes;
        }
        all.codec += s->codec;
        all.zo_fp16 += s->zo_fp16;
        all.fo_fp16 += s->fo_fp16;
    }
    print_totals(tot, steps, &all);
    print_memory(&c, mr);
    st = SQ_OK;
    if (cf && fflush(cf) != 0)
        st = sq_error_set(SQ_ERR_IO, "--csv %s: cannot write: %s", csv, strerror(errno));
    if (md_file && fflush(md_file) != 0)
        st = sq_error_set(SQ_ERR_IO, "--md %s: cannot write: %s", md, strerror(errno));
done:
    if (cf) fclose(cf);
    if (md_file) fclose(md_file);
    md_file = NULL;
    comm_close(&c);
    free(mr);
    free(tot);
    return st == SQ_OK ? 0 : fail(st);
}
