/* The single-process ZO trainer: steps, evaluation, run folder, resume. */
#include "sparq/trainer.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sparq/task.h"
#include "sparq/tokenizer.h"
#include "sparq/weights.h"
#include "sparq/zo_rng.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the pieces of a run ---- */

struct sq_trainer {
    sq_config_t cfg;
    sq_backend_t *be;
    sq_model_t *model;
    sq_tokenizer_t *tok;
    sq_task_t *task;
    sq_selection_t sel;
    char dir[SQ_CONFIG_PATH_MAX];
    FILE *runlog, *metrics;
    double *terms; /* loss terms of one pass over a batch */
};
typedef struct sq_trainer run_t;

static void run_close(run_t *r)
{
    if (r->runlog) fclose(r->runlog);
    if (r->metrics) fclose(r->metrics);
    free(r->terms);
    sq_selection_free(&r->sel);
    sq_task_destroy(r->task);
    sq_tokenizer_destroy(r->tok);
    sq_model_destroy(r->model);
    sq_backend_destroy(r->be);
    memset(r, 0, sizeof *r);
}

/* Model + selection (what restore and export need), optionally tokenizer + task. */
static sq_status_t run_open(run_t *r, const sq_config_t *cfg, int with_task)
{
    r->cfg = *cfg;
    /* training honours train.device; restore and export read masters on the host */
    if (with_task) SQ_TRY(sq_job_backend(cfg, 0, &r->be));
    else SQ_TRY(sq_backend_cpu_create(cfg->train.threads, &r->be));
    const char *tok_path = cfg->tokenizer[0] ? cfg->tokenizer : cfg->model;
    int max_seq = cfg->task.max_len;
    if (with_task) {
        SQ_TRY(sq_tokenizer_load(tok_path, &r->tok));
    }
    int max_batch = cfg->train.batch_size > 32 ? cfg->train.batch_size : 32;
    sq_model_load_opts_t lo = {.max_batch = max_batch,
                               .max_seq = max_seq,
                               .perturb = cfg->optimizer.perturbation == SQ_PERTURB_OUT_OF_PLACE,
                               .gemm_dtype = with_task ? sq_job_gemm_dtype(cfg) : SQ_DTYPE_F32};
    SQ_TRY(sq_model_load(cfg->model, &lo, r->be, &r->model));
    if (with_task) {
        SQ_TRY(sq_task_load(cfg, r->tok, sq_model_config(r->model)->vocab_size, &r->task));
        r->terms = malloc(sizeof *r->terms * (size_t)sq_task_max_terms(r->task));
        if (!r->terms) return sq_error_set(SQ_ERR_NOMEM, "trainer: out of memory");
    }
    SQ_TRY(sq_selection_build(cfg, r->model, &r->sel));
    if (r->sel.n_tuned_elems == 0)
        return sq_error_set(SQ_ERR_CONFIG, "select: the selection tunes no parameter of this model "
                                           "(check select.patterns / select.mask_file names)");
    return SQ_OK;
}

/* ---- snapshots ---- */

static sq_status_t load_snapshot(const char *path, sq_model_t *m)
{
    sq_weight_file_t *wf;
    SQ_TRY(sq_safetensors_open(path, &wf));
    sq_status_t st = SQ_OK;
    for (int i = 0; st == SQ_OK && i < sq_model_param_count(m); i++) {
        sq_param_t *p = sq_model_param(m, i);
        const sq_weight_info_t *info = sq_weights_find(wf, p->name);
        if (!info) continue; /* frozen parameter */
        if (info->dtype != SQ_DTYPE_F32 || (int64_t)info->nbytes != sq_tensor_numel(&p->t) * 4)
            st = sq_error_set(SQ_ERR_FORMAT, "%s: \"%s\" does not match the model's parameter",
                              path, p->name);
        else if (p->t.device != SQ_DEVICE_CPU)
            st = sq_model_param_write(m, i, info->data); /* F32 checked above */
        else
            memcpy(p->t.data, info->data, info->nbytes);
    }
    sq_weights_close(wf);
    return st;
}

/* ---- restore: snapshot + replay ---- */

static sq_status_t replay(const sq_config_t *cfg, sq_model_t *m, sq_selection_t *sel,
                          const sq_runlog_entry_t *e, int64_t from, int64_t to)
{
    for (int64_t t = from; t < to; t++) {
        if (cfg->select.mode == SQ_SELECT_MAGNITUDE && cfg->select.recompute_every > 0 && t > 0 &&
            t % cfg->select.recompute_every == 0)
            SQ_TRY(sq_selection_refresh(cfg, m, sel));
        SQ_TRY(sq_zo_apply_update(m, sel, e[t].n, e[t].seeds, e[t].g, e[t].lr,
                                  (float)cfg->optimizer.weight_decay));
    }
    return SQ_OK;
}

sq_status_t sq_run_restore(const char *run_dir, const sq_config_t *cfg, sq_model_t *m,
                           sq_selection_t *sel, int64_t *steps)
{
    char path[SQ_CONFIG_PATH_MAX + 64];
    sq_runlog_entry_t *e = NULL;
    int64_t n = 0;
    snprintf(path, sizeof path, "%s/runlog.jsonl", run_dir);
    SQ_TRY(sq_runlog_read(path, &e, &n));
    sq_status_t st = SQ_OK;
    int64_t from = sq_run_newest_snapshot(run_dir, n, path, sizeof path);
    if (from > 0) {
        st = load_snapshot(path, m);
        /* masks are a function of the weights at their last recompute */
        if (st == SQ_OK && cfg->select.mode == SQ_SELECT_MAGNITUDE && cfg->select.recompute_every) {
            /* recompute as the run did at the last multiple before the snapshot: replay from
             * there is exact only if the mask is refreshed at the same step, so fall back to a
             * full replay from the base weights when the snapshot is not on such a step */
            if (from % cfg->select.recompute_every != 0) from = -1;
            else st = sq_selection_refresh(cfg, m, sel);
        }
    }
    if (from < 0) from = 0;
    if (st == SQ_OK) st = replay(cfg, m, sel, e, from, n);
    free(e);
    if (st == SQ_OK) *steps = n;
    return st;
}

/* ---- evaluation ---- */

static sq_status_t evaluate(run_t *r, double *loss, double *acc)
{
    int n = sq_task_eval_size(r->task), ok_total = 0, cnt_total = 0;
    double lsum = 0;
    SQ_TRY(sq_model_set_perturbation(r->model, NULL));
    for (int i = 0; i < n; i += 32) {
        int k = n - i < 32 ? n - i : 32, ok, cnt;
        sq_task_batch_t b;
        double l;
        SQ_TRY(sq_task_eval_batch(r->task, i, k, &b));
        SQ_TRY(sq_model_forward(r->model, &b.batch, &b.head));
        SQ_TRY(sq_task_loss(r->task, &b, &l, &ok, &cnt));
        lsum += l * cnt;
        ok_total += ok;
        cnt_total += cnt;
    }
    *loss = cnt_total ? lsum / cnt_total : NAN;
    *acc = cnt_total && ok_total >= 0 ? (double)ok_total / cnt_total : NAN;
    return SQ_OK;
}

/* ---- one step ---- */

/* The loss of the batch at theta + scale*z(seed), forwarded in
 * pipeline.micro_batches pieces exactly as a pipeline does, so a pipelined
 * job and a single process compute the same bits. */
static sq_status_t loss_at(run_t *r, sq_task_batch_t *b, uint64_t seed, float scale, double *loss)
{
    if (r->cfg.optimizer.perturbation == SQ_PERTURB_OUT_OF_PLACE) {
        sq_perturbation_t p = {.seed = seed, .scale = scale, .tuned = r->sel.tuned,
                               .masks = (const uint8_t *const *)r->sel.masks};
        SQ_TRY(sq_model_set_perturbation(r->model, &p));
    }
    const int M = r->cfg.pipeline.micro_batches;
    int n = 0;
    for (int m = 0; m < M; m++) {
        sq_task_batch_t mb;
        SQ_TRY(sq_task_micro_batch(r->task, b, m, M, &mb));
        SQ_TRY(sq_model_forward(r->model, &mb.batch, &mb.head));
        n += sq_task_loss_terms(r->task, &mb, r->terms + n, NULL);
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += r->terms[i];
    if (!isfinite(sum)) return sq_error_set(SQ_ERR_RANGE, "task: loss is not finite");
    *loss = sum / n;
    return SQ_OK;
}

typedef sq_step_result_t step_out_t;

static sq_status_t zo_step(run_t *r, int64_t t, step_out_t *o)
{
    const sq_config_t *c = &r->cfg;
    const float eps = (float)c->optimizer.eps;
    sq_task_batch_t b;
    if (c->select.mode == SQ_SELECT_MAGNITUDE && c->select.recompute_every > 0 && t > 0 &&
        t % c->select.recompute_every == 0)
        SQ_TRY(sq_selection_refresh(c, r->model, &r->sel));
    SQ_TRY(sq_task_train_batch(r->task, c->train.seed, t, &b));
    o->n = c->optimizer.n_spsa;
    o->lplus = o->lminus = 0;
    for (int k = 0; k < o->n; k++) {
        uint64_t s = sq_zo_step_seed(c->train.seed, (uint64_t)t, (uint32_t)k);
        double lp, lm;
        if (c->optimizer.perturbation == SQ_PERTURB_OUT_OF_PLACE) {
            SQ_TRY(loss_at(r, &b, s, eps, &lp));
            SQ_TRY(loss_at(r, &b, s, -eps, &lm));
        } else { /* theta + eps z, theta - eps z, back (with rounding drift) */
            SQ_TRY(sq_zo_perturb_inplace(r->model, &r->sel, s, eps));
            SQ_TRY(loss_at(r, &b, s, eps, &lp));
            SQ_TRY(sq_zo_perturb_inplace(r->model, &r->sel, s, -2.0f * eps));
            SQ_TRY(loss_at(r, &b, s, -eps, &lm));
            SQ_TRY(sq_zo_perturb_inplace(r->model, &r->sel, s, eps));
        }
        o->seeds[k] = s;
        o->g[k] = (float)((lp - lm) / (2.0 * (double)eps));
        o->lplus += lp / o->n;
        o->lminus += lm / o->n;
    }
    SQ_TRY(sq_model_set_perturbation(r->model, NULL));
    o->lr = (float)sq_zo_lr(c, t);
    return sq_zo_apply_update(r->model, &r->sel, o->n, o->seeds, o->g, o->lr,
                              (float)c->optimizer.weight_decay);
}

static sq_status_t flush_file(FILE *f, const char *what)
{
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        return sq_error_set(SQ_ERR_IO, "%s: cannot flush: %s", what, strerror(errno));
    return SQ_OK;
}

static void fmt_eta(double s, char *buf, size_t cap)
{
    if (!isfinite(s) || s < 0) snprintf(buf, cap, "?");
    else if (s < 90) snprintf(buf, cap, "%.0fs", s);
    else if (s < 5400) snprintf(buf, cap, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, cap, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

sq_status_t sq_train_run(const sq_config_t *cfg_in, const sq_train_opts_t *opts)
{
    sq_train_opts_t o = opts ? *opts : (sq_train_opts_t){0};
    run_t r = {0};
    sq_status_t st = SQ_OK;
    sq_config_t cfg = *cfg_in;
    int64_t start = 0;
    char path[SQ_CONFIG_PATH_MAX + 64];

    if (o.resume_dir) { /* the run's own resolved config is the truth */
        snprintf(path, sizeof path, "%s/config.yaml", o.resume_dir);
        SQ_TRY(sq_config_load(path, &cfg));
        snprintf(cfg.output, sizeof cfg.output, "%s", o.resume_dir);
    }
    snprintf(r.dir, sizeof r.dir, "%s", cfg.output);
    SQ_TRY_GOTO(st, sq_run_mkdir(r.dir), done);
    SQ_TRY_GOTO(st, run_open(&r, &cfg, 1), done);

    if (o.resume_dir) {
        SQ_TRY_GOTO(st, sq_run_restore(r.dir, &cfg, r.model, &r.sel, &start), done);
        snprintf(path, sizeof path, "%s/metrics.jsonl", r.dir);
        SQ_TRY_GOTO(st, sq_jsonl_trim_steps(path, start), done);
        if (!o.quiet) fprintf(stderr, "resuming %s at step %lld\n", r.dir, (long long)start);
    } else {
        snprintf(path, sizeof path, "%s/runlog.jsonl", r.dir);
        if (access(path, F_OK) == 0) {
            st = sq_error_set(SQ_ERR_CONFIG,
                              "%s already holds a run (use --resume %s, or another output)", r.dir,
                              r.dir);
            goto done;
        }
        snprintf(path, sizeof path, "%s/config.yaml", r.dir);
        FILE *f = fopen(path, "w");
        if (!f) {
            st = sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
            goto done;
        }
        sq_config_dump(&cfg, f);
        if (fclose(f) != 0) {
            st = sq_error_set(SQ_ERR_IO, "%s: cannot write", path);
            goto done;
        }
    }
    snprintf(path, sizeof path, "%s/runlog.jsonl", r.dir);
    r.runlog = fopen(path, "a");
    snprintf(path, sizeof path, "%s/metrics.jsonl", r.dir);
    r.metrics = fopen(path, "a");
    if (!r.runlog || !r.metrics) {
        st = sq_error_set(SQ_ERR_IO, "%s: cannot open the run files", r.dir);
        goto done;
    }

    const sq_model_config_t *mc = sq_model_config(r.model);
    if (!o.quiet)
        fprintf(stderr,
                "sparq train: %s (%s, %d layers), %d train / %d eval examples, tuning %lld of "
                "%d tensors' elements, %d steps of batch %d, lr %g eps %g\n",
                cfg.model, sq_arch_name(mc->arch), mc->n_layers, sq_task_train_size(r.task),
                sq_task_eval_size(r.task), (long long)r.sel.n_tuned_elems, r.sel.n_params,
                cfg.train.steps, cfg.train.batch_size, cfg.optimizer.lr, cfg.optimizer.eps);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double eval_loss = NAN, eval_acc = NAN, t0 = now_s();
    const int have_eval = sq_task_eval_size(r.task) > 0;
    if (have_eval && start == 0) {
        SQ_TRY_GOTO(st, evaluate(&r, &eval_loss, &eval_acc), done);
        fprintf(r.metrics, "{\"step\":0,\"eval_loss\":%.6f,\"eval_accuracy\":%.6f}\n", eval_loss,
                eval_acc);
        if (!o.quiet)
            fprintf(stderr, "step 0: eval loss %.4f accuracy %.4f (before tuning)\n", eval_loss,
                    eval_acc);
    }
    int64_t t = start, done_here = 0;
    double win_loss = 0;
    int win_n = 0;
    for (; t < cfg.train.steps && !stop_requested; t++) {
        step_out_t so;
        SQ_TRY_GOTO(st, zo_step(&r, t, &so), done);
        double g_mean = 0;
        for (int k = 0; k < so.n; k++) g_mean += so.g[k] / so.n;
        sq_runlog_append(r.runlog, t, so.n, so.seeds, so.g, so.lr);
        fprintf(r.metrics,
                "{\"step\":%lld,\"seed\":\"%llu\",\"loss_plus\":%.9g,\"loss_minus\":%.9g,"
                "\"projected_grad\":%.9g,\"lr\":%.9g,\"time\":%.4f}\n",
                (long long)t, (unsigned long long)so.seeds[0], so.lplus, so.lminus, g_mean, so.lr,
                now_s() - t0);
        win_loss += 0.5 * (so.lplus + so.lminus);
        win_n++;
        done_here++;
        const int64_t steps_done = t + 1;
        int at_eval = have_eval && cfg.train.eval_every > 0 && steps_done % cfg.train.eval_every == 0;
        if (at_eval || steps_done == cfg.train.steps) {
            if (have_eval) {
                SQ_TRY_GOTO(st, evaluate(&r, &eval_loss, &eval_acc), done);
                fprintf(r.metrics, "{\"step\":%lld,\"eval_loss\":%.6f,\"eval_accuracy\":%.6f}\n",
                        (long long)steps_done, eval_loss, eval_acc);
            }
        }
        if (steps_done % cfg.train.log_every == 0 || at_eval || steps_done == cfg.train.steps) {
            SQ_TRY_GOTO(st, flush_file(r.runlog, "runlog.jsonl"), done);
            SQ_TRY_GOTO(st, flush_file(r.metrics, "metrics.jsonl"), done);
            if (!o.quiet) {
                double el = now_s() - t0, rate = done_here / el;
                char eta[32];
                fmt_eta((cfg.train.steps - steps_done) / rate, eta, sizeof eta);
                fprintf(stderr, "step %lld/%d | loss %.4f | g %+.3e | lr %.2e", (long long)steps_done,
                        cfg.train.steps, win_loss / win_n, g_mean, so.lr);
                if (have_eval) fprintf(stderr, " | eval acc %.4f", eval_acc);
                fprintf(stderr, " | %.2f steps/s | ETA %s\n", rate, eta);
            }
            win_loss = 0;
            win_n = 0;
        }
        if (cfg.train.snapshot_every > 0 && steps_done % cfg.train.snapshot_every == 0 &&
            steps_done < cfg.train.steps)
            SQ_TRY_GOTO(st, sq_run_write_snapshot(r.dir, r.model, &r.sel, steps_done), done);
        if (o.stop_after > 0 && done_here >= o.stop_after) {
            t++;
            break;
        }
    }
    SQ_TRY_GOTO(st, flush_file(r.runlog, "runlog.jsonl"), done);
    SQ_TRY_GOTO(st, flush_file(r.metrics, "metrics.jsonl"), done);
    SQ_TRY_GOTO(st, sq_run_write_snapshot(r.dir, r.model, &r.sel, t), done);
    if (!o.quiet)
        fprintf(stderr, "%s after %lld steps (%.1fs); run folder %s\n",
                stop_requested ? "stopped" : "done", (long long)t, now_s() - t0, r.dir);
done:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    run_close(&r);
    return st;
}

/* ---- the trainer as an object (benchmarks, the stage workers) ---- */

sq_status_t sq_trainer_open(const sq_config_t *cfg, sq_trainer_t **out)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r) return sq_error_set(SQ_ERR_NOMEM, "trainer: out of memory");
    sq_status_t st = run_open(r, cfg, 1);
    if (st != SQ_OK) {
        run_close(r);
        free(r);
        return st;
    }
    *out = r;
    return SQ_OK;
}

void sq_trainer_close(sq_trainer_t *tr)
{
    if (!tr) return;
    run_close(tr);
    free(tr);
}

sq_status_t sq_trainer_step(sq_trainer_t *tr, int64_t step, sq_step_result_t *out)
{
    return zo_step(tr, step, out);
}

sq_status_t sq_trainer_plain_forwards(sq_trainer_t *tr, int64_t step, int n, double *loss)
{
    sq_task_batch_t b;
    SQ_TRY(sq_model_set_perturbation(tr->model, NULL));
    SQ_TRY(sq_task_train_batch(tr->task, tr->cfg.train.seed, step, &b));
    for (int i = 0; i < n; i++) {
        SQ_TRY(sq_model_forward(tr->model, &b.batch, &b.head));
        SQ_TRY(sq_task_loss(tr->task, &b, loss, NULL, NULL));
    }
    return SQ_OK;
}

sq_status_t sq_trainer_evaluate(sq_trainer_t *tr, double *loss, double *accuracy)
{
    return evaluate(tr, loss, accuracy);
}

/* ---- export ---- */

static sq_status_t copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in) return SQ_ERR_NOT_FOUND; /* optional files: silently skipped */
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out) == 0 ? SQ_OK : sq_error_set(SQ_ERR_IO, "%s: write failed", to);
}

sq_status_t sq_run_export(const char *run_dir, const char *out_dir)
{
    sq_config_t cfg;
    char path[SQ_CONFIG_PATH_MAX + 64], to[SQ_CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    SQ_TRY(sq_config_load(path, &cfg));
    struct stat sb;
    if (stat(cfg.model, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: export writes HF folders and needs an HF model folder as the base "
                            "(llama2.c .bin checkpoints are not supported)",
                            cfg.model);
    run_t r = {0};
    int64_t steps;
    sq_status_t st = run_open(&r, &cfg, 0);
    if (st == SQ_OK) st = sq_run_restore(run_dir, &cfg, r.model, &r.sel, &steps);
    if (st == SQ_OK) st = sq_run_mkdir(out_dir);
    if (st == SQ_OK) {
        int n = sq_model_param_count(r.model);
        sq_weight_out_t *t = calloc((size_t)n + 1, sizeof *t);
        if (!t) st = sq_error_set(SQ_ERR_NOMEM, "export: out of memory");
        for (int i = 0; t && i < n; i++) {
            const sq_param_t *p = sq_model_param(r.model, i);
            t[i] = (sq_weight_out_t){.name = p->name, .dtype = SQ_DTYPE_F32, .ndim = p->t.ndim,
                                     .data = p->t.data};
            memcpy(t[i].shape, p->t.shape, sizeof t[i].shape);
        }
        snprintf(to, sizeof to, "%s/model.safetensors", out_dir);
        if (t) st = sq_safetensors_write(to, t, (size_t)n);
        free(t);
    }
    /* config.json (its torch_dtype is informational), tokenizer files */
    const char *files[] = {"config.json", "vocab.json", "merges.txt", "tokenizer.json",
                           "tokenizer_config.json"};
    for (size_t i = 0; st == SQ_OK && i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", cfg.model, files[i]);
        snprintf(to, sizeof to, "%s/%s", out_dir, files[i]);
        sq_status_t c = copy_file(path, to);
        if (c != SQ_OK && c != SQ_ERR_NOT_FOUND) st = c;
    }
    if (st == SQ_OK)
        fprintf(stderr, "exported %s (%lld steps) to %s\n", run_dir, (long long)steps, out_dir);
    run_close(&r);
    return st;
}
