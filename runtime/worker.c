/* A pipeline stage worker: its unit range, its neighbours, the step loop. */
#include "sparq/worker.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sparq/codec.h"
#include "sparq/codec_staging.h"
#include "sparq/task.h"
#include "sparq/tokenizer.h"
#include "sparq/trainer.h"
#include "sparq/transport.h"
#include "sparq/weights.h"
#include "sparq/zo_rng.h"

enum { MSG_ACT = 1, MSG_GRAD = 2, MSG_RESUME = 3, MSG_EVAL = 4 };

/* The gradient message: what the last stage decided for a step. */
typedef struct grad_msg {
    int32_t n;
    float g[SQ_MAX_SPSA];
    uint64_t seeds[SQ_MAX_SPSA];
    double lplus, lminus;
    float lr;
} grad_msg_t;

typedef struct stage_stats {
    double compute_s, encode_s, decode_s, wait_s;
    uint64_t bytes_raw, bytes_enc;
} stage_stats_t;

typedef struct worker {
    sq_config_t cfg;
    int k, S, M, ub, ue, units, quiet;
    sq_backend_t *be;
    sq_model_t *model;
    sq_tokenizer_t *tok;
    sq_task_t *task;
    sq_selection_t sel;
    sq_transport_t *tr;
    sq_peer_t *prev, *next;
    uint8_t *send_buf;
    size_t send_cap;
    float *pair_out;  /* ZO pair coding: exact x+ of the micro-batch being sent (NULL: off) */
    float *pair_in;   /* decoded x+ of the micro-batch being received (NULL: off) */
    /* on a GPU: pair buffers live in device memory, boundaries go through the
     * stager, and with overlap the send of micro-batch i waits in `pending`
     * until micro-batch i+1's compute has been queued */
    int gpu;
    sq_codec_stager_t *stager;
    int pending;
    sq_msg_hdr_t pending_hdr;
    double *terms;   /* last stage: loss terms of all micro-batches of one pass */
    int max_terms;
    char dir[SQ_CONFIG_PATH_MAX + 32];
    FILE *runlog, *metrics;
    stage_stats_t st;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sq_worker_stage_from_env(void)
{
    const char *vars[] = {"SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return -1;
}

uint64_t sq_worker_job_token(const sq_config_t *cfg)
{
    const char *env = getenv("SPARQ_JOB_TOKEN");
    const char *s = env && *env ? env : cfg->pipeline.token[0] ? cfg->pipeline.token : NULL;
    if (!s) return sq_config_hash(cfg) ^ 0x70c3e11a5eedull;
    return sq_zo_tensor_id(s); /* FNV-1a of the text */
}

static void stage_address(const sq_config_t *cfg, int k, char *buf, size_t cap)
{
    if (cfg->pipeline.n_addresses)
        snprintf(buf, cap, "%s", cfg->pipeline.addresses[k - 1]);
    else
        snprintf(buf, cap, "127.0.0.1:%d", cfg->pipeline.base_port + k);
}


/* ---- activations over the wire ---- */

/* A device boundary's tensors as contiguous views into a pair buffer. */
static sq_tensor_t pair_view(const sq_boundary_t *bd, int i, float *buf)
{
    int64_t off = 0;
    for (int k = 0; k < i; k++) off += sq_tensor_rows(&bd->t[k]) * sq_tensor_cols(&bd->t[k]);
    sq_tensor_t t = sq_tensor_2d(buf + off, SQ_DTYPE_F32, sq_tensor_rows(&bd->t[i]),
                                 sq_tensor_cols(&bd->t[i]));
    t.device = bd->t[i].device;
    return t;
}

/* sq_boundary_pair_send / _recv on device memory, with the backend's axpby:
 * send +1: buf = x; send -1: buf = x - buf (returns 1: encode from buf);
 * recv +1: buf = x; recv -1: x += buf. */
static sq_status_t gpu_pair(worker_t *w, const sq_boundary_t *bd, int sign, float *buf, int send,
                            int *diff)
{
    sq_backend_t *be = w->be;
    if (diff) *diff = 0;
    if (!buf || sign == 0) return SQ_OK;
    for (int i = 0; i < bd->n_tensors; i++) {
        sq_tensor_t pv = pair_view(bd, i, buf);
        sq_tensor_t x = bd->t[i];
        if (sign > 0) SQ_TRY(be->ops->axpby(be, 1.0f, &x, 0.0f, &pv));
        else if (send) SQ_TRY(be->ops->axpby(be, 1.0f, &x, -1.0f, &pv));
        else SQ_TRY(be->ops->axpby(be, 1.0f, &pv, 1.0f, &x));
    }
    if (diff) *diff = send && sign < 0;
    return SQ_OK;
}

/* Finish the queued GPU encode (sizes, pack, copy to host, seal) and send
 * it; with overlap this runs after the next micro-batch's compute is queued. */
static sq_status_t flush_send(worker_t *w)
{
    if (!w->pending) return SQ_OK;
    double t0 = now_s();
    w->pending = 0;
    size_t len = 0;
    SQ_TRY(sq_codec_stager_finish(w->stager, &len));
    w->st.encode_s += now_s() - t0;
    w->st.bytes_enc += len;
    w->pending_hdr.len = len;
    return sq_peer_send(w->next, &w->pending_hdr, w->send_buf);
}

/* payload: per crossing tensor, u64 length then one codec message */
static sq_status_t send_boundary(worker_t *w, int64_t step, int micro, int sign, uint64_t seed,
                                 int B, int T)
{
    sq_boundary_t bd;
    SQ_TRY(sq_model_output_boundary(w->model, B, T, &bd));
    double t0 = now_s();
    /* pair coding: +eps keeps x+, -eps sends x- - x+ from that buffer */
    int diff = 0;
    if (w->gpu) SQ_TRY(gpu_pair(w, &bd, sign, w->pair_out, 1, &diff));
    else diff = sq_boundary_pair_send(&bd, sign, w->pair_out);
    const float *delta = w->pair_out;
    size_t off = 0;
    for (int i = 0; i < bd.n_tensors; i++) {
        const sq_codec_params_t p = sq_config_codec_msg_params(&w->cfg, w->k, i, step, micro, seed);
        size_t written = 0;
        const int64_t rows = sq_tensor_rows(&bd.t[i]), cols = sq_tensor_cols(&bd.t[i]);
        const float *x = diff ? delta : bd.t[i].data;
        const int64_t ld = diff ? cols : sq_tensor_ld(&bd.t[i]);
        if (diff) delta += rows * cols;
        w->st.bytes_raw += (uint64_t)(rows * cols * 4);
        if (w->gpu) { /* queued; the stager frames the payload at finish */
            SQ_TRY(sq_codec_stager_encode(w->stager, &p, x, rows, cols, ld));
            continue;
        }
        if (off + 8 > w->send_cap)
            return sq_error_set(SQ_ERR_INTERNAL, "stage %d: send buffer too small", w->k);
        SQ_TRY(sq_codec_encode(&p, x, rows, cols, ld, w->send_buf + off + 8,
                               w->send_cap - off - 8, &written, NULL));
        uint64_t len = written;
        memcpy(w->send_buf + off, &len, 8);
        off += 8 + written; /* messages are multiples of 8 bytes: each starts 8-aligned */
    }
    w->st.encode_s += now_s() - t0;
    sq_msg_hdr_t h = {.type = MSG_ACT, .micro = (uint32_t)micro, .step = step, .sign = sign,
                      .len = off, .tag = ((uint64_t)B << 32) | (uint32_t)T};
    if (w->gpu) {
        w->pending_hdr = h;
        w->pending = 1;
        return w->cfg.train.overlap ? SQ_OK : flush_send(w);
    }
    w->st.bytes_enc += off;
    return sq_peer_send(w->next, &h, w->send_buf);
}

static sq_status_t recv_expect(worker_t *w, sq_peer_t *peer, uint32_t type, int64_t step,
                               int micro, int sign, sq_msg_hdr_t *h, const void **payload)
{
    double t0 = now_s();
    sq_status_t st = sq_peer_recv(peer, h, payload);
    w->st.wait_s += now_s() - t0;
    if (st != SQ_OK) return sq_error_push(st, "stage %d, step %lld", w->k, (long long)step);
    if (h->type != type || h->step != step || (micro >= 0 && (int)h->micro != micro) ||
        h->sign != sign) {
        sq_peer_release(peer);
        return sq_error_set(SQ_ERR_TRANSPORT,
                            "stage %d: expected message %u (step %lld, micro %d, sign %d) from "
                            "stage %d, got %u (step %lld, micro %u, sign %d)",
                            w->k, type, (long long)step, micro, sign, sq_peer_stage(peer), h->type,
                            (long long)h->step, h->micro, h->sign);
    }
    return SQ_OK;
}

static sq_status_t recv_boundary(worker_t *w, int64_t step, int micro, int sign, int B, int T)
{
    sq_msg_hdr_t h;
    const uint8_t *p;
    SQ_TRY(recv_expect(w, w->prev, MSG_ACT, step, micro, sign, &h, (const void **)&p));
    sq_status_t st = SQ_OK;
    if (h.tag != (((uint64_t)B << 32) | (uint32_t)T))
        st = sq_error_set(SQ_ERR_TRANSPORT, "stage %d, step %lld: activations of %llu x %llu "
                                            "tokens, expected %d x %d (different data?)",
                          w->k, (long long)step, (unsigned long long)(h.tag >> 32),
                          (unsigned long long)(uint32_t)h.tag, B, T);
    sq_boundary_t bd;
    if (st == SQ_OK) st = sq_model_input_boundary(w->model, B, T, &bd);
    double t0 = now_s();
    size_t off = 0;
    for (int i = 0; st == SQ_OK && i < bd.n_tensors; i++) {
        uint64_t len;
        if (off + 8 > h.len) {
            st = sq_error_set(SQ_ERR_FORMAT, "stage %d, step %lld: activation message truncated",
                              w->k, (long long)step);
            break;
        }
        memcpy(&len, p + off, 8);
        if (len > h.len - off - 8) {
            st = sq_error_set(SQ_ERR_FORMAT, "stage %d, step %lld: tensor %d overruns the message",
                              w->k, (long long)step, i);
            break;
        }
        if (w->gpu)
            st = sq_codec_stager_decode(w->stager, p + off + 8, len, bd.t[i].data,
                                        sq_tensor_rows(&bd.t[i]), sq_tensor_cols(&bd.t[i]),
                                        sq_tensor_ld(&bd.t[i]));
        else
            st = sq_codec_decode(p + off + 8, len, bd.t[i].data, sq_tensor_rows(&bd.t[i]),
                                 sq_tensor_cols(&bd.t[i]), sq_tensor_ld(&bd.t[i]));
        if (st != SQ_OK) sq_error_push(st, "stage %d, step %lld, %s", w->k, (long long)step, bd.names[i]);
        off += 8 + len;
    }
    if (st == SQ_OK && off != h.len)
        st = sq_error_set(SQ_ERR_FORMAT, "stage %d, step %lld: %llu bytes after the activations",
                          w->k, (long long)step, (unsigned long long)(h.len - off));
    /* pair coding: keep the decoded x+; the -eps message is x- - x+ */
    if (st == SQ_OK && w->gpu) st = gpu_pair(w, &bd, sign, w->pair_in, 0, NULL);
    else if (st == SQ_OK) sq_boundary_pair_recv(&bd, sign, w->pair_in);
    w->st.decode_s += now_s() - t0;
    sq_peer_release(w->prev);
    return st;
}

/* ---- one forward of a micro-batch through this stage ---- */

static sq_status_t stage_forward(worker_t *w, sq_task_batch_t *mb, int64_t step, int micro,
                                 int sign, uint64_t seed, int perturb, double *terms, int *n_terms,
                                 int *correct)
{
    const int B = mb->batch.B, T = mb->batch.T;
    if (w->k > 0) {
        SQ_TRY(flush_send(w)); /* downstream must not wait on our upstream */
        SQ_TRY(recv_boundary(w, step, micro, sign, B, T));
    }
    if (perturb) {
        sq_perturbation_t p = {.seed = seed,
                               .scale = (float)sign * (float)w->cfg.optimizer.eps,
                               .tuned = w->sel.tuned,
                               .masks = (const uint8_t *const *)w->sel.masks};
        SQ_TRY(sq_model_set_perturbation(w->model, &p));
    } else {
        SQ_TRY(sq_model_set_perturbation(w->model, NULL));
    }
    double t0 = now_s();
    const int last = w->k == w->S - 1;
    SQ_TRY(sq_model_forward(w->model, &mb->batch, last ? &mb->head : NULL));
    /* on a GPU the forward is only queued: without overlap, time it whole */
    if (w->gpu && !w->cfg.train.overlap) SQ_TRY(w->be->ops->sync(w->be));
    w->st.compute_s += now_s() - t0;
    if (w->k == 0) SQ_TRY(flush_send(w)); /* the previous send overlaps this compute */
    if (last) {
        *n_terms = sq_task_loss_terms(w->task, mb, terms, correct);
        return SQ_OK;
    }
    return send_boundary(w, step, micro, sign, seed, B, T);
}

/* ---- the step ---- */

static double sum_mean(const double *x, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s / n;
}

static sq_status_t pipeline_step(worker_t *w, int64_t t, grad_msg_t *gm)
{
    const sq_config_t *c = &w->cfg;
    const int last = w->k == w->S - 1;
    sq_task_batch_t b, mb;
    SQ_TRY(sq_task_train_batch(w->task, c->train.seed, t, &b));
    memset(gm, 0, sizeof *gm);
    gm->n = c->optimizer.n_spsa;
    for (int s = 0; s < gm->n; s++) {
        uint64_t seed = sq_zo_step_seed(c->train.seed, (uint64_t)t, (uint32_t)s);
        gm->seeds[s] = seed;
        int np = 0, nm = 0;
        double *plus = w->terms, *minus = w->terms + w->max_terms;
        for (int m = 0; m < w->M; m++) {
            for (int sign = 1; sign >= -1; sign -= 2) {
                int n = 0;
                SQ_TRY(sq_task_micro_batch(w->task, &b, m, w->M, &mb));
                SQ_TRY(stage_forward(w, &mb, t, m, sign, seed, 1,
                                     sign > 0 ? plus + np : minus + nm, &n, NULL));
                if (sign > 0) np += n;
                else nm += n;
            }
        }
        if (last) {
            double lp = sum_mean(plus, np), lm = sum_mean(minus, nm);
            if (!isfinite(lp) || !isfinite(lm))
                return sq_error_set(SQ_ERR_RANGE, "stage %d, step %lld: loss is not finite", w->k,
                                    (long long)t);
            /* as the single-process trainer: eps as the float the perturbation used */
            gm->g[s] = (float)((lp - lm) / (2.0 * (double)(float)c->optimizer.eps));
            gm->lplus += lp / gm->n;
            gm->lminus += lm / gm->n;
        }
    }
    SQ_TRY(flush_send(w));
    SQ_TRY(sq_model_set_perturbation(w->model, NULL));
    /* g travels from the last stage back to stage 0 */
    if (last) {
        gm->lr = (float)sq_zo_lr(c, t);
    } else {
        sq_msg_hdr_t h;
        const void *p;
        SQ_TRY(recv_expect(w, w->next, MSG_GRAD, t, -1, 0, &h, &p));
        if (h.len != sizeof *gm) {
            sq_peer_release(w->next);
            return sq_error_set(SQ_ERR_FORMAT, "stage %d, step %lld: gradient message of %llu "
                                               "bytes",
                                w->k, (long long)t, (unsigned long long)h.len);
        }
        memcpy(gm, p, sizeof *gm);
        sq_peer_release(w->next);
        if (gm->n != c->optimizer.n_spsa)
            return sq_error_set(SQ_ERR_FORMAT, "stage %d, step %lld: %d samples in g", w->k,
                                (long long)t, gm->n);
    }
    if (w->prev) {
        sq_msg_hdr_t h = {.type = MSG_GRAD, .step = t, .len = sizeof *gm};
        SQ_TRY(sq_peer_send(w->prev, &h, gm));
    }
    return sq_zo_apply_update(w->model, &w->sel, gm->n, gm->seeds, gm->g, gm->lr,
                              (float)c->optimizer.weight_decay);
}

/* Evaluation through the pipeline (no perturbation); the last stage reports. */
static sq_status_t pipeline_eval(worker_t *w, int64_t step, double *loss, double *acc)
{
    int n = sq_task_eval_size(w->task), total = 0, ok_total = 0;
    double sum = 0;
    for (int i = 0, chunk = 0; i < n; i += 32, chunk++) {
        int k = n - i < 32 ? n - i : 32, nt = 0, ok = 0;
        sq_task_batch_t b;
        SQ_TRY(sq_task_eval_batch(w->task, i, k, &b));
        SQ_TRY(stage_forward(w, &b, step, chunk, 0, 0, 0, w->terms, &nt, &ok));
        if (w->k == w->S - 1) {
            for (int j = 0; j < nt; j++) sum += w->terms[j];
            total += nt;
            ok_total += ok;
        }
    }
    SQ_TRY(flush_send(w));
    *loss = total ? sum / total : NAN;
    *acc = total && ok_total >= 0 ? (double)ok_total / total : NAN;
    return SQ_OK;
}

/* ---- run folder, resume agreement ---- */

/* Every stage may have logged a different number of steps before a crash:
 * agree on the smallest (forward along the chain, answer back) and cut the
 * longer logs to it, then restore. */
static sq_status_t resume_agree(worker_t *w, int64_t *start)
{
    char path[SQ_CONFIG_PATH_MAX + 64];
    sq_runlog_entry_t *e = NULL;
    int64_t mine = 0, v;
    snprintf(path, sizeof path, "%s/runlog.jsonl", w->dir);
    if (access(path, F_OK) == 0) {
        SQ_TRY(sq_runlog_read(path, &e, &mine));
        free(e);
    }
    sq_msg_hdr_t h;
    const void *p;
    v = mine;
    if (w->prev) {
        SQ_TRY(recv_expect(w, w->prev, MSG_RESUME, 0, 0, 1, &h, &p));
        memcpy(&v, p, 8);
        sq_peer_release(w->prev);
        if (mine < v) v = mine;
    }
    if (w->next) {
        sq_msg_hdr_t o = {.type = MSG_RESUME, .sign = 1, .len = 8};
        SQ_TRY(sq_peer_send(w->next, &o, &v));
        SQ_TRY(recv_expect(w, w->next, MSG_RESUME, 0, 0, -1, &h, &p));
        memcpy(&v, p, 8);
        sq_peer_release(w->next);
    }
    if (w->prev) {
        sq_msg_hdr_t o = {.type = MSG_RESUME, .sign = -1, .len = 8};
        SQ_TRY(sq_peer_send(w->prev, &o, &v));
    }
    SQ_TRY(sq_jsonl_trim_steps(path, v));
    snprintf(path, sizeof path, "%s/metrics.jsonl", w->dir);
    SQ_TRY(sq_jsonl_trim_steps(path, v));
    int64_t steps = 0;
    if (v > 0) SQ_TRY(sq_run_restore(w->dir, &w->cfg, w->model, &w->sel, &steps));
    *start = steps;
    return SQ_OK;
}

static void worker_close(worker_t *w)
{
    if (w->runlog) fclose(w->runlog);
    if (w->metrics) fclose(w->metrics);
    sq_transport_destroy(w->tr); /* flushes and closes the endpoints */
    sq_selection_free(&w->sel);
    sq_task_destroy(w->task);
    sq_tokenizer_destroy(w->tok);
    sq_model_destroy(w->model);
    if (w->gpu) {
        sq_codec_stager_destroy(w->stager); /* owns send_buf */
        w->be->ops->free(w->be, w->pair_out);
        w->be->ops->free(w->be, w->pair_in);
    } else {
        free(w->send_buf);
        free(w->pair_out);
        free(w->pair_in);
    }
    sq_backend_destroy(w->be);
    free(w->terms);
}

static sq_status_t worker_open(worker_t *w, const sq_config_t *cfg, const sq_worker_opts_t *o)
{
    char addr[96];
    w->cfg = *cfg;
    w->k = o->stage;
    w->S = cfg->pipeline.stages;
    w->M = cfg->pipeline.micro_batches;
    w->quiet = o->quiet;
    if (w->k < 0 || w->k >= w->S)
        return sq_error_set(SQ_ERR_CONFIG, "stage %d: the job has %d stages (pipeline.stages)",
                            w->k, w->S);
    SQ_TRY(sq_job_backend(cfg, w->k, &w->be));
    w->gpu = w->be->ops->device != SQ_DEVICE_CPU;
    /* the unit range needs the config of the model: peek with a tiny load of unit 0 */
    sq_model_t *probe;
    sq_model_load_opts_t lo = {.unit_begin = 0, .unit_end = 1, .max_batch = 1, .max_seq = 1};
    SQ_TRY(sq_model_load(cfg->model, &lo, w->be, &probe));
    sq_model_config_t mc = *sq_model_config(probe);
    sq_model_destroy(probe);
    w->units = sq_model_unit_count(&mc);
    SQ_TRY(sq_config_stage_units(cfg, w->units, mc.n_layers, w->k, &w->ub, &w->ue));

    const char *tok_path = cfg->tokenizer[0] ? cfg->tokenizer : cfg->model;
    SQ_TRY(sq_tokenizer_load(tok_path, &w->tok));
    int max_batch = cfg->train.batch_size > 32 ? cfg->train.batch_size : 32;
    lo = (sq_model_load_opts_t){.unit_begin = w->ub, .unit_end = w->ue, .max_batch = max_batch,
                                .max_seq = cfg->task.max_len, .perturb = 1,
                                .gemm_dtype = sq_job_gemm_dtype(cfg)};
    SQ_TRY(sq_model_load(cfg->model, &lo, w->be, &w->model));
    SQ_TRY(sq_task_load(cfg, w->tok, mc.vocab_size, &w->task));
    SQ_TRY(sq_selection_build(cfg, w->model, &w->sel));
    w->max_terms = sq_task_max_terms(w->task);
    w->terms = malloc(sizeof *w->terms * (size_t)w->max_terms * 2);
    if (!w->terms) return sq_error_set(SQ_ERR_NOMEM, "stage %d: out of memory", w->k);

    /* the send buffer: the largest boundary message at full batch size */
    size_t max_msg = sizeof(grad_msg_t);
    int n_out = 0; /* messages per activation payload */
    if (w->k < w->S - 1) {
        sq_boundary_t bd;
        sq_codec_params_t p = sq_config_codec_params(cfg, w->k);
        SQ_TRY(sq_model_output_boundary(w->model, max_batch, cfg->task.max_len, &bd));
        size_t need = 0;
        for (int i = 0; i < bd.n_tensors; i++)
            need += 8 + sq_codec_max_size(&p, sq_tensor_rows(&bd.t[i]), sq_tensor_cols(&bd.t[i]));
        w->send_cap = need;
        n_out = bd.n_tensors;
        if (!w->gpu && !(w->send_buf = malloc(need)))
            return sq_error_set(SQ_ERR_NOMEM, "stage %d: out of memory", w->k);
    }
    /* a generous bound for what the previous stage sends (its boundary is ours) */
    if (w->k > 0) {
        sq_boundary_t bd;
        sq_codec_params_t p = sq_config_codec_params(cfg, w->k - 1);
        SQ_TRY(sq_model_input_boundary(w->model, max_batch, cfg->task.max_len, &bd));
        size_t need = 0;
        for (int i = 0; i < bd.n_tensors; i++)
            need += 8 + sq_codec_max_size(&p, sq_tensor_rows(&bd.t[i]), sq_tensor_cols(&bd.t[i]));
        if (need > max_msg) max_msg = need;
    }
    if (w->send_cap > max_msg) max_msg = w->send_cap;
    if (w->gpu) { /* device codec, page-locked send buffer */
        const int64_t rows = (int64_t)max_batch * cfg->task.max_len;
        const int64_t widest = mc.d_ff > mc.d_model ? mc.d_ff : mc.d_model;
        SQ_TRY(sq_codec_stager_create(rows, rows * widest, w->send_cap, n_out,
                                      w->k > 0 ? max_msg : 0, sq_backend_cuda_stream(w->be),
                                      &w->stager));
        w->send_buf = sq_codec_stager_send_buf(w->stager);
    }
    /* pair coding buffers: one training micro-batch of the boundary (eval passes do not pair) */
    const int micro_b = cfg->train.batch_size / w->M;
    for (int side = 0; side < 2; side++) {
        const int out_side = side == 0;
        if (out_side ? w->k == w->S - 1 || !sq_config_codec_pair(cfg, w->k)
                     : w->k == 0 || !sq_config_codec_pair(cfg, w->k - 1))
            continue;
        sq_boundary_t bd;
        if (out_side) SQ_TRY(sq_model_output_boundary(w->model, micro_b, cfg->task.max_len, &bd));
        else SQ_TRY(sq_model_input_boundary(w->model, micro_b, cfg->task.max_len, &bd));
        const size_t bytes = sizeof(float) * (size_t)sq_boundary_numel(&bd);
        float **buf = out_side ? &w->pair_out : &w->pair_in;
        if (w->gpu) SQ_TRY(w->be->ops->alloc(w->be, bytes, "pair coding", (void **)buf));
        else if (!(*buf = malloc(bytes)))
            return sq_error_set(SQ_ERR_NOMEM, "stage %d: out of memory", w->k);
    }

    /* the plan every stage must agree on: config (no paths) + the model's shape */
    uint64_t plan = sq_config_hash(cfg) ^ ((uint64_t)w->units << 40) ^ (uint64_t)mc.d_model;
    if (w->k > 0) stage_address(cfg, w->k, addr, sizeof addr);
    sq_transport_opts_t to = {.listen_addr = w->k > 0 ? addr : NULL,
                              .job_token = o->token ? o->token : sq_worker_job_token(cfg),
                              .plan_hash = plan,
                              .stage = w->k,
                              .n_stages = w->S,
                              .max_msg = max_msg,
                              .slots = 2 * w->M + 4,
                              .timeout_s = 120};
    /* The transport sets CM_REUSEADDR, so a restarted stage can listen on its
     * old port at once; if something else holds the port, keep trying for 90 s
     * rather than fail a resume at once. */
    sq_status_t st;
    double t_start = now_s();
    int told = 0;
    while ((st = sq_transport_create(&to, &w->tr)) != SQ_OK && w->k > 0 &&
           strstr(sq_error_last(), "cannot listen") && now_s() - t_start < 90) {
        if (!told++)
            fprintf(stderr, "stage %d: %s; retrying for up to 90 s (a crashed run's connections "
                            "or another process may hold the port; or set pipeline.base_port)\n",
                    w->k, sq_error_last());
        sleep(2);
    }
    SQ_TRY(st);
    if (w->k < w->S - 1) {
        stage_address(cfg, w->k + 1, addr, sizeof addr);
        SQ_TRY(sq_transport_connect(w->tr, addr, w->k + 1, &w->next));
    }
    if (w->k > 0) SQ_TRY(sq_transport_accept(w->tr, w->k - 1, &w->prev));
    return SQ_OK;
}

sq_status_t sq_worker_run(const sq_config_t *cfg, const sq_worker_opts_t *opts)
{
    worker_t w;
    memset(&w, 0, sizeof w);
    sq_status_t st;
    char path[SQ_CONFIG_PATH_MAX + 64];
    snprintf(w.dir, sizeof w.dir, "%s/stage-%d", cfg->output, opts->stage);
    SQ_TRY_GOTO(st, sq_run_mkdir(w.dir), done);
    snprintf(path, sizeof path, "%s/runlog.jsonl", w.dir);
    if (!opts->resume && access(path, F_OK) == 0) {
        st = sq_error_set(SQ_ERR_CONFIG, "%s already holds a run (resume it, or use another output)",
                          w.dir);
        goto done;
    }
    SQ_TRY_GOTO(st, worker_open(&w, cfg, opts), done);
    int64_t start = 0;
    if (opts->resume) SQ_TRY_GOTO(st, resume_agree(&w, &start), done);
    snprintf(path, sizeof path, "%s/config.yaml", w.dir);
    FILE *cf = fopen(path, "w");
    if (cf) {
        sq_config_dump(cfg, cf);
        fclose(cf);
    }
    snprintf(path, sizeof path, "%s/runlog.jsonl", w.dir);
    w.runlog = fopen(path, "a");
    snprintf(path, sizeof path, "%s/metrics.jsonl", w.dir);
    w.metrics = fopen(path, "a");
    if (!w.runlog || !w.metrics) {
        st = sq_error_set(SQ_ERR_IO, "%s: cannot open the run files", w.dir);
        goto done;
    }
    const int last = w.k == w.S - 1, report = last && !w.quiet;
    if (report)
        fprintf(stderr, "stage %d/%d: units [%d, %d), %d steps of %d micro-batches, %s codec\n",
                w.k, w.S, w.ub, w.ue, cfg->train.steps, w.M,
                sq_codec_encoding_name((sq_codec_encoding_t)sq_config_codec_encoding(cfg, -1)));
    const int have_eval = sq_task_eval_size(w.task) > 0;
    double eloss = NAN, eacc = NAN, t0 = now_s();
    if (have_eval && start == 0) {
        SQ_TRY_GOTO(st, pipeline_eval(&w, 0, &eloss, &eacc), done);
        if (last)
            fprintf(w.metrics, "{\"step\":0,\"eval_loss\":%.6f,\"eval_accuracy\":%.6f}\n", eloss,
                    eacc);
        if (report) fprintf(stderr, "step 0: eval loss %.4f accuracy %.4f\n", eloss, eacc);
    }
    int64_t t = start;
    for (; t < cfg->train.steps; t++) {
        grad_msg_t gm;
        memset(&w.st, 0, sizeof w.st);
        double ts = now_s();
        SQ_TRY_GOTO(st, pipeline_step(&w, t, &gm), done);
        double step_s = now_s() - ts;
        sq_runlog_append(w.runlog, t, gm.n, gm.seeds, gm.g, gm.lr);
        fprintf(w.metrics,
                "{\"step\":%lld,\"stage\":%d,\"loss_plus\":%.9g,\"loss_minus\":%.9g,"
                "\"projected_grad\":%.9g,\"lr\":%.9g,\"step_s\":%.6f,\"compute_s\":%.6f,"
                "\"encode_s\":%.6f,\"decode_s\":%.6f,\"wait_s\":%.6f,\"bytes_raw\":%llu,"
                "\"bytes_encoded\":%llu,\"time\":%.4f}\n",
                (long long)t, w.k, gm.lplus, gm.lminus, gm.g[0], gm.lr, step_s, w.st.compute_s,
                w.st.encode_s, w.st.decode_s, w.st.wait_s, (unsigned long long)w.st.bytes_raw,
                (unsigned long long)w.st.bytes_enc, now_s() - t0);
        const int64_t done_steps = t + 1;
        int at_eval = have_eval && cfg->train.eval_every > 0 && done_steps % cfg->train.eval_every == 0;
        if (have_eval && (at_eval || done_steps == cfg->train.steps)) {
            SQ_TRY_GOTO(st, pipeline_eval(&w, done_steps, &eloss, &eacc), done);
            if (last)
                fprintf(w.metrics, "{\"step\":%lld,\"eval_loss\":%.6f,\"eval_accuracy\":%.6f}\n",
                        (long long)done_steps, eloss, eacc);
        }
        if (done_steps % cfg->train.log_every == 0 || done_steps == cfg->train.steps || at_eval) {
            if (fflush(w.runlog) || fsync(fileno(w.runlog)) || fflush(w.metrics)) {
                st = sq_error_set(SQ_ERR_IO, "%s: cannot flush the run log", w.dir);
                goto done;
            }
            if (report) {
                double rate = (double)(done_steps - start) / (now_s() - t0);
                fprintf(stderr, "step %lld/%d | loss %.4f | g %+.3e", (long long)done_steps,
                        cfg->train.steps, 0.5 * (gm.lplus + gm.lminus), gm.g[0]);
                if (have_eval) fprintf(stderr, " | eval acc %.4f", eacc);
                fprintf(stderr, " | %.2f steps/s\n", rate);
            }
        }
        if (cfg->train.snapshot_every > 0 && done_steps % cfg->train.snapshot_every == 0)
            SQ_TRY_GOTO(st, sq_run_write_snapshot(w.dir, w.model, &w.sel, done_steps), done);
    }
    SQ_TRY_GOTO(st, sq_run_write_snapshot(w.dir, w.model, &w.sel, t), done);
    if (report) fprintf(stderr, "done after %lld steps (%.1fs)\n", (long long)t, now_s() - t0);
    st = SQ_OK;
done:
    worker_close(&w);
    return st;
}
