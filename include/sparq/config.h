/* sparq/config.h — the job configuration and its declarative key table.
 *
 * One table (sq_config_keys) names every key of job.yaml with its type,
 * default, range and help. The YAML walker, the defaults, the validation,
 * unknown-key errors, `sparq train --help` and `--dump-config` all read it,
 * so a key exists in exactly one place. Errors name the file, the line and
 * the dotted key ("job.yaml:7: optimizer.lr: expected a number, got "x"").
 */
#ifndef SPARQ_CONFIG_H
#define SPARQ_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sparq/codec.h"
#include "sparq/status.h"
#include "sparq/zo_rng.h" /* SQ_MAX_SPSA */

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_CONFIG_PATH_MAX 1024
#define SQ_CONFIG_LIST_MAX 16
#define SQ_CONFIG_STR_MAX 256

typedef enum sq_task_type { SQ_TASK_CLASSIFY = 0, SQ_TASK_LM } sq_task_type_t;
typedef enum sq_lr_schedule { SQ_LR_CONSTANT = 0, SQ_LR_LINEAR, SQ_LR_COSINE } sq_lr_schedule_t;
typedef enum sq_select_mode {
    SQ_SELECT_ALL = 0,   /* every parameter */
    SQ_SELECT_PATTERN,   /* whole tensors whose names match select.patterns */
    SQ_SELECT_MAGNITUDE, /* Sparse MeZO: the smallest-|w| fraction of each tensor */
    SQ_SELECT_MASK_FILE  /* a static element mask from a safetensors file */
} sq_select_mode_t;
typedef enum sq_perturb_mode { SQ_PERTURB_OUT_OF_PLACE = 0, SQ_PERTURB_IN_PLACE } sq_perturb_mode_t;

typedef struct sq_config {
    char model[SQ_CONFIG_PATH_MAX];
    char tokenizer[SQ_CONFIG_PATH_MAX];
    char output[SQ_CONFIG_PATH_MAX];

    struct {
        sq_task_type_t type;
        char train[SQ_CONFIG_PATH_MAX];
        char eval[SQ_CONFIG_PATH_MAX];
        char template_[SQ_CONFIG_STR_MAX]; /* "{text} It was" */
        int n_labels;
        char labels[SQ_CONFIG_LIST_MAX][64];
        int max_len;     /* tokens per example (longer prompts are cut from the left) */
        int eval_limit;  /* 0: all eval examples */
        int bos_id;      /* token put before every example (-1: none) */
    } task;

    struct {
        double lr;
        double eps;
        sq_lr_schedule_t schedule;
        double weight_decay;
        int n_spsa;
        sq_perturb_mode_t perturbation;
    } optimizer;

    struct {
        sq_select_mode_t mode;
        int n_patterns;
        char patterns[SQ_CONFIG_LIST_MAX][128];
        double fraction;
        int recompute_every; /* magnitude mask: 0 = static */
        char mask_file[SQ_CONFIG_PATH_MAX];
    } select;

    struct {
        int stages;          /* pipeline stages (1 = no pipeline) */
        int n_boundaries;
        char boundaries[SQ_CONFIG_LIST_MAX][16]; /* first unit of stages 1..S-1 */
        int n_addresses;
        char addresses[SQ_CONFIG_LIST_MAX][64];  /* listen address of stages 1..S-1 */
        int base_port;       /* default addresses: 127.0.0.1:base_port+k */
        char plan[SQ_CONFIG_PATH_MAX]; /* plan file (sparq plan): stages, boundaries, codec */
        int plan_units;      /* unit count the plan was made for (0 = unchecked) */
        int micro_batches;
        char token[64];      /* job token (env SPARQ_JOB_TOKEN wins) */
    } pipeline;

    struct {
        int encoding;        /* sq_codec_encoding_t */
        int bits;
        int granularity;     /* sq_codec_granularity_t */
        int group_size;
        int scale_f16;       /* 0: fp32 scales, 1: fp16 */
        int rounding;        /* sq_codec_rounding_t */
        int lossless_f16;    /* lossless encoding: 0 fp32 (exact), 1 fp16 */
        int zo_pair;         /* 1: the -eps pass sends its difference to the +eps pass */
        int n_boundary_bits, n_boundary_encodings; /* per-boundary overrides (stage k -> k+1) */
        char boundary_bits[SQ_CONFIG_LIST_MAX][8];
        char boundary_encodings[SQ_CONFIG_LIST_MAX][16];
    } codec;

    struct {
        int steps;
        int batch_size;
        int eval_every;
        int log_every;
        int snapshot_every;
        uint64_t seed;
        int threads;
        int device;  /* 0 cpu, 1 cuda */
        int overlap; /* cuda: overlap boundary encode/copy/send with the next compute */
        int gemm;    /* cuda: SQ_GEMM_* (sq_config_gemm_names) */
    } train;
} sq_config_t;

typedef enum sq_config_type {
    SQ_CFG_STR = 0,
    SQ_CFG_PATH,   /* string, resolved relative to the config file's folder */
    SQ_CFG_INT,
    SQ_CFG_U64,
    SQ_CFG_FLOAT,
    SQ_CFG_ENUM,
    SQ_CFG_STRLIST
} sq_config_type_t;

typedef struct sq_config_key {
    const char *key;      /* dotted path: "optimizer.lr" */
    sq_config_type_t type;
    size_t offset;        /* into sq_config_t */
    size_t size;          /* bytes of the field (strings) or of one list item */
    size_t count_offset;  /* STRLIST: offset of the int item count */
    const char *def;      /* default, as YAML text ("" = empty / none) */
    double min, max;      /* numeric range (inclusive) */
    const char *const *enum_names; /* ENUM: NULL-terminated names, value = index */
    const char *help;
} sq_config_key_t;

extern const sq_config_key_t sq_config_keys[];
extern const size_t sq_config_key_count;

/* Defaults for every key. */
void sq_config_defaults(sq_config_t *cfg);
/* Parse a YAML file over the defaults and validate. */
sq_status_t sq_config_load(const char *path, sq_config_t *cfg);
/* Apply one "key=value" override (after load), e.g. from --set. */
sq_status_t sq_config_set(sq_config_t *cfg, const char *assignment);
/* Cross-key checks (labels present for classification, ...). */
sq_status_t sq_config_validate(const sq_config_t *cfg, const char *label);
/* The codec encoding (sq_codec_encoding_t) and bits of boundary k (stage k ->
 * k+1): the per-boundary override when given, else the codec section's. */
int sq_config_codec_encoding(const sq_config_t *cfg, int boundary);
int sq_config_codec_bits(const sq_config_t *cfg, int boundary);
/* 1 when boundary k uses ZO pair coding (codec.zo_pair and not lossless). */
int sq_config_codec_pair(const sq_config_t *cfg, int boundary);
/* The full codec parameters of boundary k, as the workers use them. */
sq_codec_params_t sq_config_codec_params(const sq_config_t *cfg, int boundary);
/* The parameters of one message: crossing tensor `tensor` of boundary k in
 * micro-batch `micro` of step `step` under SPSA seed `seed` — the boundary's
 * codec plus the stochastic-rounding dither (shared by the +eps and -eps
 * passes of a micro-batch) and the tag. The workers and every tool that
 * mirrors their traffic take them from here. */
sq_codec_params_t sq_config_codec_msg_params(const sq_config_t *cfg, int boundary, int tensor,
                                             int64_t step, int micro, uint64_t seed);

/* train.gemm by name: {"fp32", "tf32", "bf16", "fp16", NULL}, indexed by the
 * value; sq_config_gemm_from_name returns the value, or -1 for another name.
 * sq_config_gemm_dtype: the GEMM operand type a value gives the model
 * (sq_model_load_opts_t.gemm_dtype): F32 for fp32 and tf32. */
enum { SQ_GEMM_FP32, SQ_GEMM_TF32, SQ_GEMM_BF16, SQ_GEMM_FP16 };
extern const char *const sq_config_gemm_names[];
int sq_config_gemm_from_name(const char *name);
sq_dtype_t sq_config_gemm_dtype(int gemm);
/* Hash of everything that must agree between the stages of one job (every
 * key but file paths, which may differ per node). */
uint64_t sq_config_hash(const sq_config_t *cfg);
/* Stage k's first unit (k = S: the unit count); from pipeline.boundaries, or an
 * even split by layers when none are given. */
sq_status_t sq_config_stage_units(const sq_config_t *cfg, int n_units, int n_layers, int k,
                                  int *begin, int *end);

/* Write every key with its value as YAML. */
void sq_config_dump(const sq_config_t *cfg, FILE *f);
/* Describe every key (for --help). */
void sq_config_help(FILE *f);

#ifdef __cplusplus
}
#endif
#endif
