/* sparq/planner.h — where to cut the model into pipeline stages.
 *
 * SparQ's third idea: put the stage boundaries where the quantized
 * activations are sparse, so the bytes that cross are few, while keeping
 * the stages balanced. The planner works offline, in three steps:
 *
 *   profile   run the model on calibration data (the job's task batches, or
 *             windows of a text file) and measure, per unit, the forward
 *             time (perturbed, as a ZO forward runs), the ZO update time and
 *             the memory a stage holding it needs; per split candidate, the
 *             crossing tensors' density after quantization and encoded bytes
 *             per token for every layout and bit width, and the codec's
 *             encode/decode time. Optionally the gradient fidelity: the
 *             projected gradient with the codec at that candidate vs exact
 *             transport, for the same seeds.
 *   solve     dynamic programming over contiguous partitions into S stages:
 *             minimise the slowest stage's step time (compute + encode +
 *             decode + transfer at the link bandwidth), each stage within
 *             the memory cap; among partitions within `slack` of that
 *             optimum, the fewest bytes crossing. "Balance only" ignores
 *             the codec and the link (the baseline to compare with).
 *   write     a plan file (a YAML fragment of the job config, used with
 *             pipeline.plan), and a report: Markdown tables and an SVG plot
 *             of density and bytes per token along the depth.
 *
 * Step-time model of stage [a, b), per optimizer step with n SPSA samples
 * and M micro-batches (F = 2nM forwards):
 *   F * (sum fwd(u) + dec(a) + enc(b) + bytes(b) / link) + sum update(u)
 * The slowest stage bounds the throughput and is what the search minimises;
 * the predicted step adds the pipeline's fill and drain:
 *   (F + S - 1) * max_k per-forward time(k) + max_k update(k).
 */
#ifndef SPARQ_PLANNER_H
#define SPARQ_PLANNER_H

#include <stdio.h>

#include "sparq/config.h"
#include "sparq/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_PLAN_MAX_STAGES 64
#define SQ_PLAN_N_BITS 3 /* 8, 4, 2 */

/* Layouts reported per candidate: dense, bitmap, CSR, and the smallest. */
enum { SQ_PLAN_DENSE = 0, SQ_PLAN_BITMAP, SQ_PLAN_CSR, SQ_PLAN_AUTO, SQ_PLAN_N_LAYOUTS };

extern const int sq_plan_bits[SQ_PLAN_N_BITS];

/* One unit (a block of the model: embed, attn, mlp_in, mlp_out, head). */
typedef struct sq_plan_unit {
    char name[48];       /* "embed", "L3.attn", ..., "head" */
    double fwd_s;        /* median seconds of one (perturbed) forward of one micro-batch */
    double update_s;     /* seconds of the ZO update of its tuned parameters */
    size_t param_bytes;  /* parameters a stage holding this unit loads */
    size_t act_bytes;    /* activation/scratch bytes of a stage made of this unit alone */
    int64_t n_params;    /* parameter elements */
} sq_plan_unit_t;

/* One split candidate: the boundary before unit `cand.unit`. Arrays indexed
 * [b] are per bit width sq_plan_bits[b]. */
typedef struct sq_plan_cand {
    sq_split_candidate_t cand;
    double zero_frac;    /* exact zeros among the crossing values */
    double density[SQ_PLAN_N_BITS];                       /* non-zero codes / values */
    double bytes_per_token[SQ_PLAN_N_BITS][SQ_PLAN_N_LAYOUTS]; /* per layout, per-token scales */
    double fp16_bytes_per_token, fp32_bytes_per_token;
    /* the job's codec (its layout, scales, rounding) at each bit width */
    double codec_bytes[SQ_PLAN_N_BITS]; /* message bytes per token and forward (mean of the
                                           +eps and -eps messages) */
    double enc_s[SQ_PLAN_N_BITS], dec_s[SQ_PLAN_N_BITS]; /* one micro-batch, all tensors */
    double rel_rms_err[SQ_PLAN_N_BITS];                 /* ||x - x^|| / ||x|| */
    /* gradient fidelity (fid_steps == 0: not measured) */
    int fid_steps;
    double fid_corr[SQ_PLAN_N_BITS];    /* Pearson correlation of g_codec with g_exact */
    double fid_rel_err[SQ_PLAN_N_BITS]; /* ||g_codec - g_exact|| / ||g_exact|| */
    double fid_sign[SQ_PLAN_N_BITS];    /* fraction of steps whose signs agree */
    double minus_ratio[SQ_PLAN_N_BITS]; /* bytes of the -eps message / the +eps one (pair
                                           coding sends x- - x+; 1 without it or unmeasured) */
    int use;             /* the bit width (index) a plan sends at this candidate */
} sq_plan_cand_t;

typedef struct sq_plan_profile {
    char model[512];
    char calib[512];     /* what the profile ran on */
    int n_units;
    sq_plan_unit_t *units;   /* [n_units] */
    sq_plan_cand_t *cands;   /* [n_units - 1]: cands[i] is the boundary before unit i + 1 */
    int B, T;                /* one micro-batch (T: the longest sequence) */
    double tokens_per_micro; /* mean B x T of the calibration micro-batches (padding included) */
    int fwd_per_step;        /* 2 * n_spsa * micro_batches */
    sq_codec_params_t codec; /* the job's codec (per-boundary overrides ignored) */
    double min_fidelity;     /* > 0: bits chosen per candidate by sq_plan_choose_bits */
    int zo_pair;             /* the job uses ZO pair coding (codec.zo_pair) */
    int tied_embeddings;
} sq_plan_profile_t;

typedef struct sq_plan_profile_opts {
    const char *calib_text;  /* text file for calibration windows, or NULL: the task's batches */
    int calib_batches;       /* micro-batches the densities are measured on (default 4) */
    int reps;                /* timing repetitions, median taken (default 5) */
    int fid_steps;           /* steps of the gradient-fidelity measurement (0 = skip) */
    int quiet;               /* no progress lines on stderr */
} sq_plan_profile_opts_t;

/* Profile the job's model with the job's task/codec/selection. Every
 * candidate starts with `use` = the job's codec.bits. */
sq_status_t sq_plan_profile(const sq_config_t *cfg, const sq_plan_profile_opts_t *opts,
                            sq_plan_profile_t **out);
void sq_plan_profile_free(sq_plan_profile_t *p);

/* Per candidate, the fewest-bytes bit width whose gradient correlation is at
 * least min_corr (8-bit when none is). Needs the fidelity measured. Returns
 * how many candidates had no bit width meeting it. */
int sq_plan_choose_bits(sq_plan_profile_t *p, double min_corr);

/* What a plan sends at candidate c: bytes per token and codec seconds. */
static inline double sq_plan_cand_bytes(const sq_plan_cand_t *c) { return c->codec_bytes[c->use]; }

typedef struct sq_plan_opts {
    int stages;
    double link_bytes_per_s; /* <= 0: transfer ignored */
    double mem_cap_bytes;    /* per stage; <= 0: no cap */
    double slack;            /* accept stages up to (1 + slack) x the optimum for fewer bytes */
    int balance_only;        /* ignore codec and link: compute (+ update) balance only */
} sq_plan_opts_t;

typedef struct sq_plan_stage {
    int begin, end;          /* units [begin, end) */
    double compute_s;        /* per step: forwards + update */
    double update_s;         /* per step: the update alone (part of compute_s) */
    double codec_s;          /* per step: decode of the input + encode of the output */
    double transfer_s;       /* per step: output bytes / link */
    double time_s;           /* the sum: the stage's step time in the model */
    double mem_bytes;
    double out_bytes_per_token; /* encoded bytes per token sent to the next stage */
} sq_plan_stage_t;

typedef struct sq_plan {
    int stages;
    sq_plan_stage_t st[SQ_PLAN_MAX_STAGES];
    double bottleneck_s;     /* the slowest stage's time_s (the throughput bound) */
    double step_s;           /* predicted step: (F + S - 1) forwards of the slowest stage's
                                per-forward time (pipeline fill and drain) + the update */
    double compute_bottleneck_s; /* the slowest stage's compute_s */
    double imbalance;        /* slowest compute / mean compute - 1 */
    double bytes_per_token;  /* sum over boundaries (job codec) */
    double fp16_bytes_per_token; /* the same boundaries, dense fp16 */
    int balance_only;
    sq_plan_opts_t opts;
} sq_plan_t;

/* Best partition under the cost model (see the header comment). */
sq_status_t sq_plan_solve(const sq_plan_profile_t *p, const sq_plan_opts_t *opts, sq_plan_t *out);
/* Fill a plan's per-stage figures for given cuts (cuts[0] = 0, cuts[S] = n_units). */
void sq_plan_evaluate(const sq_plan_profile_t *p, const sq_plan_opts_t *opts, const int *cuts,
                      sq_plan_t *out);

/* The plan file: pipeline.stages/boundaries/plan_units and the per-boundary
 * codec, with the predicted figures as comments. */
sq_status_t sq_plan_write_yaml(const sq_plan_profile_t *p, const sq_plan_t *plan,
                               const char *path);
/* Markdown report: per-unit and per-candidate tables, the plan's stages, and
 * the comparison with `baseline` (may be NULL). */
void sq_plan_write_report(const sq_plan_profile_t *p, const sq_plan_t *plan,
                          const sq_plan_t *baseline, FILE *f);
/* SVG plot along the depth: density after quantization and encoded bytes per
 * token at every candidate, fp16 for reference, the plan's boundaries as solid
 * lines and the baseline's as dashed ones. */
sq_status_t sq_plan_write_svg(const sq_plan_profile_t *p, const sq_plan_t *plan,
                              const sq_plan_t *baseline, const char *path);
/* Profile rows as CSV (every bit width and layout). */
void sq_plan_write_csv(const sq_plan_profile_t *p, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
