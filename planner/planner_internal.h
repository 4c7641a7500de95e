/* Shared between the planner's files: the profiling context. */
#ifndef SPARQ_PLANNER_INTERNAL_H
#define SPARQ_PLANNER_INTERNAL_H

#include "sparq/planner.h"
#include "sparq/select.h"
#include "sparq/task.h"
#include "sparq/tokenizer.h"

typedef struct sq_plan_ctx {
    sq_config_t cfg;
    sq_backend_t *be;
    sq_tokenizer_t *tok;
    sq_task_t *task;
    sq_model_t *model;          /* the whole model, perturbation scratch reserved */
    const sq_model_config_t *mcfg;
    sq_selection_t sel;
    int n_units;
    int B, T;                   /* one micro-batch */
    int n_calib;                /* calibration micro-batches */
    int32_t *calib_tokens;      /* text windows [n_calib * B * T], or NULL: task batches */
    double *terms;              /* task loss terms */
    void *msg;                  /* one codec message */
    size_t msg_cap;
    float *save;                /* a boundary's exact values while the codec's are used */
} sq_plan_ctx_t;

typedef struct sq_plan_codec_sum {
    double bytes, nnz, values, enc_s, dec_s;
    double size[SQ_PLAN_N_LAYOUTS];
} sq_plan_codec_sum_t;

sq_status_t sq_plan_ctx_open(sq_plan_ctx_t *c, const sq_config_t *cfg,
                             const sq_plan_profile_opts_t *o);
void sq_plan_ctx_close(sq_plan_ctx_t *c);
sq_status_t sq_plan_calib_batch(sq_plan_ctx_t *c, int i, sq_task_batch_t *out);
sq_status_t sq_plan_codec_boundary(sq_plan_ctx_t *c, const sq_boundary_t *bd,
                                   const sq_codec_params_t *q, int apply, sq_plan_codec_sum_t *s);
sq_status_t sq_plan_measure_fidelity(sq_plan_ctx_t *c, int steps, int quiet, sq_plan_profile_t *p);

double sq_plan_now(void);
double sq_plan_median(double *v, int n);
void sq_plan_unit_name(const sq_model_config_t *cfg, int u, char *buf, size_t cap);

#endif
