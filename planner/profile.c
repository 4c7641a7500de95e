/* Planner step 1: measure the model unit by unit on calibration data. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner_internal.h"
#include "sparq/select.h"
#include "sparq/trainer.h"
#include "sparq/zo_rng.h"

const int sq_plan_bits[SQ_PLAN_N_BITS] = {8, 4, 2};

double sq_plan_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sq_plan_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void sq_plan_unit_name(const sq_model_config_t *cfg, int u, char *buf, size_t cap)
{
    int layer;
    sq_unit_kind_t k = sq_model_unit_kind(cfg, u, &layer);
    if (layer < 0) snprintf(buf, cap, "%s", sq_unit_kind_name(k));
    else snprintf(buf, cap, "L%d.%s", layer, sq_unit_kind_name(k));
}

int sq_plan_choose_bits(sq_plan_profile_t *p, double min_corr)
{
    int unmet = 0;
    p->min_fidelity = min_corr;
    for (int i = 0; i < p->n_units - 1; i++) {
        sq_plan_cand_t *c = &p->cands[i];
        c->use = 0; /* 8-bit: the most faithful, when nothing meets the bar */
        int met = 0;
        for (int b = 0; b < SQ_PLAN_N_BITS; b++)
            if (c->fid_steps > 0 && c->fid_corr[b] >= min_corr &&
                (!met || c->codec_bytes[b] < c->codec_bytes[c->use])) {
                c->use = b;
                met = 1;
            }
        unmet += !met;
    }
    return unmet;
}

void sq_plan_profile_free(sq_plan_profile_t *p)
{
    if (!p) return;
    free(p->units);
    free(p->cands);
    free(p);
}

void sq_plan_ctx_close(sq_plan_ctx_t *c)
{
    free(c->calib_tokens);
    free(c->terms);
    free(c->msg);
    free(c->save);
    sq_selection_free(&c->sel);
    sq_task_destroy(c->task);
    sq_tokenizer_destroy(c->tok);
    sq_model_destroy(c->model);
    sq_backend_destroy(c->be);
    memset(c, 0, sizeof *c);
}

/* Windows of task.max_len tokens spread over a text file, bos first. */
static sq_status_t load_calib_text(sq_plan_ctx_t *c, const char *path, int n_batches)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = len > 0 ? malloc((size_t)len) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    if (!buf || got == 0) {
        free(buf);
        return sq_error_set(SQ_ERR_FORMAT, "%s: empty or unreadable calibration text", path);
    }
    size_t need = 0, n = 0;
    int32_t *ids = NULL;
    sq_status_t st = sq_tokenizer_encode(c->tok, buf, got, NULL, 0, &need);
    if (st == SQ_OK || st == SQ_ERR_RANGE) {
        ids = malloc(sizeof *ids * (need + 1));
        st = ids ? sq_tokenizer_encode(c->tok, buf, got, ids, need + 1, &n)
                 : sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    }
    free(buf);
    const int B = c->B, T = c->T, bos = c->cfg.task.bos_id, W = n_batches * B;
    const int body = bos >= 0 ? T - 1 : T;
    if (st == SQ_OK && n < (size_t)body + 1)
        st = sq_error_set(SQ_ERR_RANGE, "%s: %zu tokens, fewer than one window of %d", path, n, T);
    if (st == SQ_OK) {
        c->calib_tokens = malloc(sizeof *c->calib_tokens * (size_t)W * T);
        if (!c->calib_tokens) st = sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    }
    for (int w = 0; st == SQ_OK && w < W; w++) {
        size_t start = (n - (size_t)body) * (size_t)w / (size_t)W;
        int32_t *dst = c->calib_tokens + (size_t)w * T;
        if (bos >= 0) *dst++ = bos;
        memcpy(dst, ids + start, sizeof *dst * (size_t)body);
    }
    c->n_calib = n_batches;
    free(ids);
    return st;
}

sq_status_t sq_plan_ctx_open(sq_plan_ctx_t *c, const sq_config_t *cfg,
                             const sq_plan_profile_opts_t *o)
{
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    const int M = cfg->pipeline.micro_batches;
    if (cfg->train.batch_size % M)
        return sq_error_set(SQ_ERR_CONFIG, "pipeline.micro_batches: %d does not divide "
                                           "train.batch_size %d",
                            M, cfg->train.batch_size);
    if (!cfg->task.train[0])
        return sq_error_set(SQ_ERR_CONFIG, "task.train: the planner needs the job's training data "
                                           "(for timing and gradient fidelity)");
    c->B = cfg->train.batch_size / M;
    SQ_TRY(sq_backend_cpu_create(cfg->train.threads, &c->be));
    SQ_TRY(sq_tokenizer_load(cfg->tokenizer[0] ? cfg->tokenizer : cfg->model, &c->tok));
    /* the task's sequence length needs the vocabulary size: load the config first */
    sq_model_load_opts_t lo = {.max_batch = c->B, .max_seq = cfg->task.max_len, .perturb = 1};
    SQ_TRY(sq_model_load(cfg->model, &lo, c->be, &c->model));
    c->mcfg = sq_model_config(c->model);
    SQ_TRY(sq_task_load(cfg, c->tok, c->mcfg->vocab_size, &c->task));
    c->T = sq_task_max_seq(c->task);
    c->terms = malloc(sizeof *c->terms * (size_t)sq_task_max_terms(c->task));
    if (!c->terms) return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    SQ_TRY(sq_selection_build(cfg, c->model, &c->sel));
    c->n_units = sq_model_unit_count(c->mcfg);
    const int nb = o->calib_batches > 0 ? o->calib_batches : 4;
    if (o->calib_text) SQ_TRY(load_calib_text(c, o->calib_text, nb));
    else c->n_calib = nb;
    /* codec scratch: the largest boundary (hidden + mlp_act) of one micro-batch */
    sq_codec_params_t p = sq_config_codec_params(cfg, -1);
    const int64_t N = (int64_t)c->B * c->T, F = c->mcfg->d_ff > c->mcfg->d_model
                                                     ? c->mcfg->d_ff
                                                     : c->mcfg->d_model;
    p.encoding = SQ_CODEC_AUTO;
    c->msg_cap = sq_codec_max_size(&p, N, F);
    p.encoding = SQ_CODEC_LOSSLESS;
    size_t lossless = sq_codec_max_size(&p, N, F);
    if (lossless > c->msg_cap) c->msg_cap = lossless;
    c->msg = malloc(c->msg_cap);
    c->save = malloc(sizeof *c->save * (size_t)N * (size_t)(F + c->mcfg->d_model));
    if (!c->msg || !c->save) return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    return SQ_OK;
}

/* Calibration micro-batch i: a window batch of the text, or micro-batch 0
 * of the task's training step i. */
sq_status_t sq_plan_calib_batch(sq_plan_ctx_t *c, int i, sq_task_batch_t *out)
{
    sq_task_batch_t full;
    SQ_TRY(sq_task_train_batch(c->task, c->cfg.train.seed, i, &full));
    SQ_TRY(sq_task_micro_batch(c->task, &full, 0, c->cfg.pipeline.micro_batches, out));
    if (c->calib_tokens) {
        out->batch.tokens = c->calib_tokens + (size_t)i * c->B * c->T;
        out->batch.B = c->B;
        out->batch.T = c->T;
    }
    return SQ_OK;
}

/* Memory and update time of a stage made of unit u alone. */
static sq_status_t profile_unit_alone(sq_plan_ctx_t *c, int u, int reps, sq_plan_unit_t *pu)
{
    sq_model_t *m;
    sq_selection_t sel = {0};
    sq_model_load_opts_t lo = {.unit_begin = u, .unit_end = u + 1, .max_batch = c->B,
                               .max_seq = c->T, .perturb = 1};
    SQ_TRY(sq_model_load(c->cfg.model, &lo, c->be, &m));
    pu->param_bytes = sq_model_param_bytes(m);
    pu->act_bytes = sq_model_arena_bytes(m) - pu->param_bytes;
    pu->n_params = 0;
    for (int i = 0; i < sq_model_param_count(m); i++)
        pu->n_params += sq_tensor_numel(&sq_model_param(m, i)->t);
    sq_status_t st = sq_selection_build(&c->cfg, m, &sel);
    double *t = malloc(sizeof *t * (size_t)reps);
    const int n = c->cfg.optimizer.n_spsa;
    uint64_t seeds[SQ_MAX_SPSA];
    float g[SQ_MAX_SPSA];
    for (int k = 0; k < n; k++) {
        seeds[k] = sq_zo_step_seed(c->cfg.train.seed, 0, (uint32_t)k);
        g[k] = 0.0f; /* the update's cost does not depend on g; the weights stay put */
    }
    for (int r = 0; st == SQ_OK && r < reps; r++) {
        double t0 = sq_plan_now();
        st = sq_zo_apply_update(m, &sel, n, seeds, g, 0.0f, (float)c->cfg.optimizer.weight_decay);
        t[r] = sq_plan_now() - t0;
    }
    if (st == SQ_OK) pu->update_s = sel.n_tuned_elems ? sq_plan_median(t, reps) : 0.0;
    free(t);
    sq_selection_free(&sel);
    sq_model_destroy(m);
    return st;
}

/* Median forward time of every unit on micro-batch 0 of the task (the
 * head evaluates the rows the task's loss needs), with the perturbation on
 * as in a ZO forward. */
static sq_status_t time_units(sq_plan_ctx_t *c, int reps, sq_plan_profile_t *p)
{
    sq_task_batch_t b;
    sq_task_batch_t full;
    SQ_TRY(sq_task_train_batch(c->task, c->cfg.train.seed, 0, &full));
    SQ_TRY(sq_task_micro_batch(c->task, &full, 0, c->cfg.pipeline.micro_batches, &b));
    sq_perturbation_t pert = {.seed = sq_zo_step_seed(c->cfg.train.seed, 0, 0),
                              .scale = (float)c->cfg.optimizer.eps, .tuned = c->sel.tuned,
                              .masks = (const uint8_t *const *)c->sel.masks};
    SQ_TRY(sq_model_set_perturbation(c->model, &pert));
    double *t = malloc(sizeof *t * (size_t)reps * (size_t)c->n_units);
    if (!t) return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    sq_status_t st = SQ_OK;
    for (int r = -1; st == SQ_OK && r < reps; r++) /* r = -1: warm-up */
        for (int u = 0; st == SQ_OK && u < c->n_units; u++) {
            double t0 = sq_plan_now();
            st = sq_model_forward_units(c->model, &b.batch, u, u + 1,
                                        u == c->n_units - 1 ? &b.head : NULL);
            if (r >= 0) t[(size_t)u * reps + r] = sq_plan_now() - t0;
        }
    for (int u = 0; st == SQ_OK && u < c->n_units; u++)
        p->units[u].fwd_s = sq_plan_median(t + (size_t)u * reps, reps);
    free(t);
    sq_status_t st2 = sq_model_set_perturbation(c->model, NULL);
    return st != SQ_OK ? st : st2;
}

/* Encode one boundary's tensors with params q; returns bytes/nnz/sizes summed
 * over the tensors. Decodes in place when `apply` (the next stage's view). */
sq_status_t sq_plan_codec_boundary(sq_plan_ctx_t *c, const sq_boundary_t *bd,
                                   const sq_codec_params_t *q, int apply, sq_plan_codec_sum_t *s)
{
    for (int k = 0; k < bd->n_tensors; k++) {
        const sq_tensor_t *x = &bd->t[k];
        const int64_t rows = x->shape[0], cols = sq_tensor_cols(x);
        size_t written;
        sq_codec_stats_t cs;
        double t0 = sq_plan_now();
        SQ_TRY(sq_codec_encode(q, x->data, rows, cols, cols, c->msg, c->msg_cap, &written, &cs));
        double t1 = sq_plan_now();
        s->enc_s += t1 - t0;
        s->bytes += (double)written;
        s->nnz += (double)cs.nnz;
        s->values += (double)rows * (double)cols;
        s->size[SQ_PLAN_DENSE] += (double)cs.size_dense;
        s->size[SQ_PLAN_BITMAP] += (double)cs.size_bitmap;
        s->size[SQ_PLAN_CSR] += (double)cs.size_csr;
        s->size[SQ_PLAN_AUTO] += (double)written;
        if (!apply) continue;
        t0 = sq_plan_now();
        SQ_TRY(sq_codec_decode(c->msg, written, x->data, rows, cols, cols));
        s->dec_s += sq_plan_now() - t0;
    }
    return SQ_OK;
}

/* sum (x - ref)^2 over a boundary against a buffer in sq_boundary_save's order. */
static double sq_dist2(const sq_boundary_t *bd, const float *ref)
{
    double e = 0;
    for (int k = 0; k < bd->n_tensors; k++) {
        const sq_tensor_t *t = &bd->t[k];
        const int64_t rows = sq_tensor_rows(t), cols = sq_tensor_cols(t), ld = sq_tensor_ld(t);
        for (int64_t r = 0; r < rows; r++, ref += cols)
            for (int64_t j = 0; j < cols; j++) {
                const double d = (double)((const float *)t->data)[r * ld + j] - ref[j];
                e += d * d;
            }
    }
    return e;
}

/* Densities and sizes at every candidate, over the calibration batches. */
static sq_status_t measure_candidates(sq_plan_ctx_t *c, int reps, const sq_plan_profile_opts_t *o,
                                      sq_plan_profile_t *p)
{
    const int U = c->n_units;
    double *zeros = calloc((size_t)U, sizeof *zeros), *values = calloc((size_t)U, sizeof *values);
    double *err2 = calloc((size_t)U * SQ_PLAN_N_BITS, sizeof *err2), *sum2 = calloc((size_t)U, sizeof *sum2);
    double *tt = malloc(sizeof *tt * (size_t)reps * 2);
    if (!zeros || !values || !err2 || !sum2 || !tt) {
        free(zeros), free(values), free(err2), free(sum2), free(tt);
        return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    }
    sq_status_t st = SQ_OK;
    const sq_codec_params_t job = p->codec;
    double tokens = 0; /* task batches are padded to their longest example, not to max_len */
    for (int ib = 0; st == SQ_OK && ib < c->n_calib; ib++) {
        sq_task_batch_t b;
        st = sq_plan_calib_batch(c, ib, &b);
        if (st == SQ_OK) tokens += (double)b.batch.B * b.batch.T;
        for (int u = 1; st == SQ_OK && u < U; u++) {
            st = sq_model_forward_units(c->model, &b.batch, u - 1, u, NULL);
            sq_boundary_t bd;
            if (st == SQ_OK) st = sq_model_boundary(c->model, u, b.batch.B, b.batch.T, &bd);
            if (st != SQ_OK) break;
            sq_plan_cand_t *pc = &p->cands[u - 1];
            for (int k = 0; k < bd.n_tensors; k++) {
                const float *x = bd.t[k].data;
                const int64_t n = sq_tensor_numel(&bd.t[k]);
                for (int64_t i = 0; i < n; i++) {
                    zeros[u] += x[i] == 0.0f;
                    sum2[u] += (double)x[i] * x[i];
                }
                values[u] += (double)n;
            }
            for (int bi = 0; st == SQ_OK && bi < SQ_PLAN_N_BITS; bi++) {
                sq_codec_params_t q = job;
                q.bits = sq_plan_bits[bi];
                q.encoding = SQ_CODEC_AUTO;
                sq_plan_codec_sum_t s = {0};
                st = sq_plan_codec_boundary(c, &bd, &q, 0, &s);
                pc->density[bi] += s.nnz; /* normalised below */
                for (int l = 0; l < SQ_PLAN_N_LAYOUTS; l++) pc->bytes_per_token[bi][l] += s.size[l];
            }
            if (st != SQ_OK) break;
            /* the job's codec at each bit width: bytes, timing (first batch) and error;
             * then the exact values go back, so the next unit sees exact transport */
            sq_boundary_save(&bd, c->save);
            const int R = ib == 0 ? reps : 1;
            for (int bi = 0; st == SQ_OK && bi < SQ_PLAN_N_BITS; bi++) {
                sq_codec_params_t q = job;
                q.bits = sq_plan_bits[bi];
                for (int r = 0; st == SQ_OK && r < R; r++) {
                    sq_plan_codec_sum_t s = {0};
                    st = sq_plan_codec_boundary(c, &bd, &q, 1, &s);
                    tt[r] = s.enc_s;
                    tt[reps + r] = s.dec_s;
                    if (r == 0) {
                        pc->codec_bytes[bi] += s.bytes;
                        err2[(size_t)u * SQ_PLAN_N_BITS + bi] += sq_dist2(&bd, c->save);
                    }
                    sq_boundary_load(&bd, c->save);
                }
                if (st == SQ_OK && ib == 0) {
                    pc->enc_s[bi] = sq_plan_median(tt, R);
                    pc->dec_s[bi] = sq_plan_median(tt + reps, R);
                }
            }
        }
        if (st == SQ_OK && !o->quiet)
            fprintf(stderr, "sparq plan: densities: calibration batch %d/%d\n", ib + 1,
                    c->n_calib);
    }
    p->tokens_per_micro = tokens / c->n_calib;
    for (int u = 1; st == SQ_OK && u < U; u++) {
        sq_plan_cand_t *pc = &p->cands[u - 1];
        pc->zero_frac = zeros[u] / values[u];
        for (int bi = 0; bi < SQ_PLAN_N_BITS; bi++) {
            pc->density[bi] /= values[u];
            for (int l = 0; l < SQ_PLAN_N_LAYOUTS; l++) pc->bytes_per_token[bi][l] /= tokens;
        }
        for (int bi = 0; bi < SQ_PLAN_N_BITS; bi++) {
            pc->codec_bytes[bi] /= tokens;
            const double e2 = err2[(size_t)u * SQ_PLAN_N_BITS + bi];
            pc->rel_rms_err[bi] = sum2[u] > 0 ? sqrt(e2 / sum2[u]) : 0.0;
            if (sq_plan_bits[bi] == job.bits) pc->use = bi;
        }
        pc->fp16_bytes_per_token = 2.0 * values[u] / tokens;
        pc->fp32_bytes_per_token = 4.0 * values[u] / tokens;
    }
    free(zeros), free(values), free(err2), free(sum2), free(tt);
    return st;
}

sq_status_t sq_plan_profile(const sq_config_t *cfg, const sq_plan_profile_opts_t *opts,
                            sq_plan_profile_t **out)
{
    sq_plan_profile_opts_t o = *opts;
    if (o.reps <= 0) o.reps = 5;
    sq_plan_ctx_t c;
    sq_plan_profile_t *p = calloc(1, sizeof *p);
    if (!p) return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    sq_status_t st = sq_plan_ctx_open(&c, cfg, &o);
    if (st == SQ_OK) {
        const int U = c.n_units;
        snprintf(p->model, sizeof p->model, "%s", cfg->model);
        if (o.calib_text) snprintf(p->calib, sizeof p->calib, "%s", o.calib_text);
        else snprintf(p->calib, sizeof p->calib, "task data %s", cfg->task.train);
        p->n_units = U;
        p->B = c.B;
        p->T = c.T;
        p->fwd_per_step = 2 * cfg->optimizer.n_spsa * cfg->pipeline.micro_batches;
        p->codec = sq_config_codec_params(cfg, -1);
        p->tied_embeddings = c.mcfg->tie_embeddings;
        p->units = calloc((size_t)U, sizeof *p->units);
        p->cands = calloc((size_t)U, sizeof *p->cands);
        if (!p->units || !p->cands) st = sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
        sq_split_candidate_t *cs = malloc(sizeof *cs * (size_t)U);
        if (st == SQ_OK && !cs) st = sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
        if (st == SQ_OK) {
            sq_model_split_candidates(c.mcfg, cs, U);
            for (int i = 0; i < U - 1; i++) p->cands[i].cand = cs[i];
        }
        free(cs);
        for (int u = 0; st == SQ_OK && u < U; u++) {
            sq_plan_unit_name(c.mcfg, u, p->units[u].name, sizeof p->units[u].name);
            st = profile_unit_alone(&c, u, o.reps, &p->units[u]);
        }
        if (st == SQ_OK && !o.quiet)
            fprintf(stderr, "sparq plan: memory and update time of %d units measured\n", U);
        if (st == SQ_OK) st = time_units(&c, o.reps, p);
        if (st == SQ_OK && !o.quiet) fprintf(stderr, "sparq plan: unit forward times measured\n");
        if (st == SQ_OK) st = measure_candidates(&c, o.reps, &o, p);
        p->zo_pair = cfg->codec.zo_pair && p->codec.encoding != SQ_CODEC_LOSSLESS;
        for (int i = 0; i < U - 1; i++)
            for (int b = 0; b < SQ_PLAN_N_BITS; b++) p->cands[i].minus_ratio[b] = 1.0;
        if (st == SQ_OK && o.fid_steps > 0) st = sq_plan_measure_fidelity(&c, o.fid_steps, o.quiet, p);
        /* the calibration measured +eps-like messages; pair coding's -eps ones differ */
        for (int i = 0; st == SQ_OK && i < U - 1; i++)
            for (int b = 0; b < SQ_PLAN_N_BITS; b++)
                p->cands[i].codec_bytes[b] *= 0.5 * (1.0 + p->cands[i].minus_ratio[b]);
    }
    sq_plan_ctx_close(&c);
    if (st != SQ_OK) {
        sq_plan_profile_free(p);
        return st;
    }
    *out = p;
    return SQ_OK;
}
