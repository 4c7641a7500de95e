/* sparq/model_config.h — architecture-level description of a model.
 *
 * Filled from HF config.json (sq_model_config_load_hf) or from a llama2.c
 * header (sq_llama2c_open). Everything the forward needs to know about a
 * family lives here as data, so the stage code has no per-checkpoint cases.
 */
#ifndef SPARQ_MODEL_CONFIG_H
#define SPARQ_MODEL_CONFIG_H

#include "sparq/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_arch {
    SQ_ARCH_OPT = 0,  /* OPT: pre-LN, ReLU, learned positions (offset 2)  */
    SQ_ARCH_GPT2,     /* GPT-2: pre-LN, GELU, learned positions, Conv1D   */
    SQ_ARCH_LLAMA     /* LLaMA/Mistral/Qwen2: RMSNorm, RoPE, SwiGLU, GQA  */
} sq_arch_t;

typedef enum sq_norm {
    SQ_NORM_LAYER = 0,
    SQ_NORM_RMS
} sq_norm_t;

typedef struct sq_model_config {
    sq_arch_t arch;
    char model_type[32];  /* as in config.json ("opt", "gpt2", "llama", "mistral", "qwen2") */
    int vocab_size;       /* V */
    int d_model;          /* C */
    int n_layers;         /* L */
    int n_heads;          /* H */
    int n_kv_heads;       /* K (== H without GQA) */
    int head_dim;         /* D */
    int d_ff;             /* F */
    int max_pos;          /* longest sequence supported */
    float norm_eps;
    sq_norm_t norm;
    sq_act_t act;         /* MLP activation (gate activation when glu) */
    int glu;              /* 1: gated MLP act(gate)*up (LLaMA) */
    int learned_pos;      /* 1: learned absolute position table */
    int pos_offset;       /* row of position 0 in that table (OPT: 2) */
    int rope;             /* 1: rotary embeddings */
    sq_rope_style_t rope_style;
    float rope_theta;
    int tie_embeddings;   /* lm head shares the token embedding */
    int qkv_bias;         /* q/k/v projections have biases */
    int out_bias;         /* attention output projection has a bias */
    int mlp_bias;         /* MLP projections have biases */
    int norm_bias;        /* norms have a bias (LayerNorm) */
    sq_dtype_t dtype;     /* storage dtype of the weights on disk */
} sq_model_config_t;

/* Parse HF config.json. Supported model_type: opt (pre-LN, no projection),
 * gpt2, llama, mistral (sliding window ignored: correct while T <= window),
 * qwen2. Errors name the file and the key: missing keys, wrong JSON types,
 * values out of range (e.g. n_heads not dividing hidden_size), unsupported
 * variants (OPT post-LN / word_embed_proj_dim != hidden_size, rope_scaling). */
sq_status_t sq_model_config_load_hf(const char *config_json_path, sq_model_config_t *cfg);

/* Consistency checks shared by every loader (dims positive, divisibility,
 * GQA ratio, ...). `label` names the source in messages. */
sq_status_t sq_model_config_validate(const sq_model_config_t *cfg, const char *label);

const char *sq_arch_name(sq_arch_t arch);

#ifdef __cplusplus
}
#endif
#endif
