/* sparq/trainer.h — MeZO-class ZO-SGD in one process, and its run folder.
 *
 * A step t: for each SPSA sample k, seed s = sq_zo_step_seed(run_seed, t, k);
 * L+ and L- are the task loss with every tuned parameter at theta +/- eps*z(s);
 * g_k = (L+ - L-) / (2 eps); then theta -= lr_t * (mean_k g_k z_k + wd*theta)
 * (no decay on vectors). The run folder holds:
 *   config.yaml         the resolved configuration (paths absolute)
 *   runlog.jsonl        one line per step: step, seeds, g, lr — the checkpoint
 *   metrics.jsonl       per step: seed, loss_plus, loss_minus, projected_grad,
 *                       lr, time; eval rows with loss and accuracy
 *   snapshot-NNNNNNNN.safetensors  tuned parameters after NNNNNNNN steps
 * Replaying runlog.jsonl onto the base weights (from the newest snapshot on)
 * reproduces the weights exactly; a kill -9 loses at most the steps since the
 * last flush (train.log_every) and never leaves a corrupt file behind.
 */
#ifndef SPARQ_TRAINER_H
#define SPARQ_TRAINER_H

#include <stdio.h>

#include "sparq/config.h"
#include "sparq/model.h"
#include "sparq/select.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Learning rate of step t under the config's schedule. */
double sq_zo_lr(const sq_config_t *cfg, int64_t step);

/* The backend train.device asks for: the CPU (train.threads), or CUDA device
 * SPARQ_CUDA_DEVICE if set, else stage mod the number of visible GPUs. */
sq_status_t sq_job_backend(const sq_config_t *cfg, int stage, sq_backend_t **out);
/* The model's GEMM operand type for the job (train.gemm bf16: SQ_DTYPE_BF16,
 * fp16: SQ_DTYPE_F16, else SQ_DTYPE_F32). */
sq_dtype_t sq_job_gemm_dtype(const sq_config_t *cfg);

/* theta -= lr * (mean_k g_k z_k + wd theta) over the selection (wd skips vectors). */
sq_status_t sq_zo_apply_update(sq_model_t *m, const sq_selection_t *sel, int n,
                               const uint64_t *seeds, const float *g, float lr, float wd);
/* theta += scale * z(seed) over the selection, in place (in-place mode). */
sq_status_t sq_zo_perturb_inplace(sq_model_t *m, const sq_selection_t *sel, uint64_t seed,
                                  float scale);

/* One entry of the run log. */
typedef struct sq_runlog_entry {
    int64_t step;
    int n;
    uint64_t seeds[SQ_MAX_SPSA];
    float g[SQ_MAX_SPSA];
    float lr;
} sq_runlog_entry_t;

/* Read a run log; a torn last line (from a kill) is dropped and the file
 * truncated to the last complete entry. Entries must be consecutive from 0. */
sq_status_t sq_runlog_read(const char *path, sq_runlog_entry_t **entries, int64_t *count);

/* Append one run-log line (the caller flushes at its cadence). */
void sq_runlog_append(FILE *f, int64_t step, int n, const uint64_t *seeds, const float *g,
                      float lr);
/* Newest dir/snapshot-N.safetensors with N <= max_step (path into buf), or -1. */
int64_t sq_run_newest_snapshot(const char *dir, int64_t max_step, char *path, size_t cap);
/* Rewrite a run-folder JSONL file (run log, metrics) keeping the complete
 * lines of steps < keep, plus eval rows of step == keep (taken before that
 * step ran). Run-log lines are consecutive from 0, so this is "the first keep
 * entries" there. A missing file is fine. */
sq_status_t sq_jsonl_trim_steps(const char *path, int64_t keep);
/* mkdir -p. */
sq_status_t sq_run_mkdir(const char *path);
/* dir/snapshot-NNNNNNNN.safetensors with the tuned parameters after `steps`
 * steps (crash-safe), keeping the two newest snapshots. */
sq_status_t sq_run_write_snapshot(const char *dir, sq_model_t *m, const sq_selection_t *sel,
                                  int64_t steps);

typedef struct sq_train_opts {
    const char *resume_dir; /* continue the run in this folder */
    int quiet;              /* no progress lines */
    int64_t stop_after;     /* >0: stop (cleanly) after this many steps in this process */
} sq_train_opts_t;

/* Train per cfg (or resume). Progress on stderr. */
sq_status_t sq_train_run(const sq_config_t *cfg, const sq_train_opts_t *opts);

/* The trainer as an object: what sq_train_run drives, for benchmarks and
 * tools that need single steps. */
typedef struct sq_trainer sq_trainer_t;

typedef struct sq_step_result {
    int n;              /* SPSA samples */
    uint64_t seeds[SQ_MAX_SPSA];
    float g[SQ_MAX_SPSA];        /* projected gradient per sample */
    double lplus, lminus; /* mean over samples */
    float lr;
} sq_step_result_t;

sq_status_t sq_trainer_open(const sq_config_t *cfg, sq_trainer_t **out);
void sq_trainer_close(sq_trainer_t *tr);
/* One ZO step t (perturbed forwards and the update). */
sq_status_t sq_trainer_step(sq_trainer_t *tr, int64_t step, sq_step_result_t *out);
/* n unperturbed forwards + loss on step t's batch (the baseline a step is compared with). */
sq_status_t sq_trainer_plain_forwards(sq_trainer_t *tr, int64_t step, int n, double *loss);
sq_status_t sq_trainer_evaluate(sq_trainer_t *tr, double *loss, double *accuracy);

/* Bring a run folder's weights into a fully loaded model: newest snapshot,
 * then the run log replayed. *steps gets the number of steps applied. */
sq_status_t sq_run_restore(const char *run_dir, const sq_config_t *cfg, sq_model_t *m,
                           sq_selection_t *sel, int64_t *steps);

/* Write a run's fine-tuned model as an HF folder (config.json +
 * model.safetensors in F32, tokenizer files copied) loadable by sparq logits. */
sq_status_t sq_run_export(const char *run_dir, const char *out_dir);

#ifdef __cplusplus
}
#endif
#endif
