/* HF config.json -> sq_model_config_t, and the checks every loader shares.
 *
 * Each family maps its own key names onto the config; the range checks are
 * written once (sq_model_config_validate_named) and report the key name of the family the
 * value came from, so a user sees "num_key_value_heads" rather than a field
 * of our struct.
 */
#include "weights_internal.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_CFG_MAX_DIM (1 << 24)
#define SQ_CONFIG_MAX_BYTES (16u * 1024u * 1024u)

static const sq_cfg_keys_t sq_field_keys = {
    .vocab_size = "vocab_size",
    .d_model = "d_model",
    .n_layers = "n_layers",
    .n_heads = "n_heads",
    .n_kv_heads = "n_kv_heads",
    .head_dim = "head_dim",
    .d_ff = "d_ff",
    .max_pos = "max_pos",
    .norm_eps = "norm_eps",
    .rope_theta = "rope_theta",
};

const char *sq_arch_name(sq_arch_t arch)
{
    switch (arch) {
    case SQ_ARCH_OPT:
        return "opt";
    case SQ_ARCH_GPT2:
        return "gpt2";
    case SQ_ARCH_LLAMA:
        return "llama";
    }
    return "unknown";
}

static sq_status_t check_dim(const char *label, const char *key, int v)
{
    if (v < 1 || v > SQ_CFG_MAX_DIM)
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %d is outside [1, %d]", label, key, v,
                            SQ_CFG_MAX_DIM);
    return SQ_OK;
}

sq_status_t sq_model_config_validate_named(const sq_model_config_t *c, const char *label,
                                           const sq_cfg_keys_t *k)
{
    if ((unsigned)c->arch > SQ_ARCH_LLAMA)
        return sq_error_set(SQ_ERR_RANGE, "%s: arch %d is not a known architecture", label,
                            (int)c->arch);
    SQ_TRY(check_dim(label, k->vocab_size, c->vocab_size));
    SQ_TRY(check_dim(label, k->d_model, c->d_model));
    SQ_TRY(check_dim(label, k->n_layers, c->n_layers));
    SQ_TRY(check_dim(label, k->n_heads, c->n_heads));
    SQ_TRY(check_dim(label, k->n_kv_heads, c->n_kv_heads));
    SQ_TRY(check_dim(label, k->head_dim, c->head_dim));
    SQ_TRY(check_dim(label, k->d_ff, c->d_ff));
    SQ_TRY(check_dim(label, k->max_pos, c->max_pos));
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %d does not divide %s = %d", label,
                            k->n_kv_heads, c->n_kv_heads, k->n_heads, c->n_heads);
    /* LLaMA-family configs may set head_dim freely (q_proj is [H*D, C]);
     * the others split the model width between the heads. */
    if (c->arch != SQ_ARCH_LLAMA && (int64_t)c->n_heads * c->head_dim != c->d_model)
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %d does not divide %s = %d", label, k->n_heads,
                            c->n_heads, k->d_model, c->d_model);
    if (!(c->norm_eps > 0.0f && c->norm_eps < 1.0f))
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %g is outside (0, 1)", label, k->norm_eps,
                            (double)c->norm_eps);
    if ((unsigned)c->norm > SQ_NORM_RMS)
        return sq_error_set(SQ_ERR_RANGE, "%s: norm %d is not a known norm", label, (int)c->norm);
    if ((unsigned)c->act > SQ_ACT_SILU || (c->glu && c->act == SQ_ACT_NONE))
        return sq_error_set(SQ_ERR_RANGE, "%s: activation %d is not valid here", label,
                            (int)c->act);
    if (c->learned_pos && (c->pos_offset < 0 || c->pos_offset > SQ_CFG_MAX_DIM))
        return sq_error_set(SQ_ERR_RANGE, "%s: position offset %d is out of range", label,
                            c->pos_offset);
    if (c->rope) {
        if (c->head_dim % 2 != 0)
            return sq_error_set(SQ_ERR_RANGE, "%s: %s = %d must be even for rotary embeddings",
                                label, k->head_dim, c->head_dim);
        if (!(c->rope_theta > 0.0f && isfinite(c->rope_theta)))
            return sq_error_set(SQ_ERR_RANGE, "%s: %s = %g must be positive", label, k->rope_theta,
                                (double)c->rope_theta);
        if ((unsigned)c->rope_style > SQ_ROPE_INTERLEAVED)
            return sq_error_set(SQ_ERR_RANGE, "%s: rope style %d is not known", label,
                                (int)c->rope_style);
    }
    if (c->dtype != SQ_DTYPE_F32 && c->dtype != SQ_DTYPE_F16 && c->dtype != SQ_DTYPE_BF16)
        return sq_error_set(SQ_ERR_RANGE, "%s: weight dtype %d is not F32/F16/BF16", label,
                            (int)c->dtype);
    return SQ_OK;
}

sq_status_t sq_model_config_validate(const sq_model_config_t *cfg, const char *label)
{
    if (!label) label = "model config";
    if (!cfg) return sq_error_set(SQ_ERR_INVALID_ARG, "%s: no config", label);
    return sq_model_config_validate_named(cfg, label, &sq_field_keys);
}

/* ---- typed access to config.json keys ---- */

typedef struct hf {
    const char *path;
    const cJSON *root;
} hf_t;

static const char *json_kind(const cJSON *j)
{
    if (cJSON_IsObject(j)) return "object";
    if (cJSON_IsArray(j)) return "array";
    if (cJSON_IsString(j)) return "string";
    if (cJSON_IsNumber(j)) return "number";
    if (cJSON_IsBool(j)) return "boolean";
    return "null";
}

/* The item for key, or NULL when absent or JSON null (which HF writes for
 * "use the default"). A required key that is missing is an error. */
static sq_status_t hf_get(const hf_t *h, const char *key, int required, const cJSON **out)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(h->root, key);
    *out = NULL;
    if (j && cJSON_IsNull(j)) j = NULL;
    if (!j && required)
        return sq_error_set(SQ_ERR_CONFIG, "%s: missing required key \"%s\"", h->path, key);
    *out = j;
    return SQ_OK;
}

static sq_status_t hf_int(const hf_t *h, const char *key, int required, int dflt, int *out)
{
    const cJSON *j;
    SQ_TRY(hf_get(h, key, required, &j));
    if (!j) {
        *out = dflt;
        return SQ_OK;
    }
    if (!cJSON_IsNumber(j))
        return sq_error_set(SQ_ERR_CONFIG, "%s: key \"%s\" must be an integer, not a %s", h->path,
                            key, json_kind(j));
    double v = j->valuedouble;
    if (v != floor(v))
        return sq_error_set(SQ_ERR_CONFIG, "%s: key \"%s\" must be an integer, not %g", h->path,
                            key, v);
    if (!(v >= -2147483648.0 && v <= 2147483647.0))
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %g is out of range", h->path, key, v);
    *out = (int)v;
    return SQ_OK;
}

static sq_status_t hf_float(const hf_t *h, const char *key, int required, float dflt, float *out)
{
    const cJSON *j;
    SQ_TRY(hf_get(h, key, required, &j));
    if (!j) {
        *out = dflt;
        return SQ_OK;
    }
    if (!cJSON_IsNumber(j))
        return sq_error_set(SQ_ERR_CONFIG, "%s: key \"%s\" must be a number, not a %s", h->path,
                            key, json_kind(j));
    double v = j->valuedouble;
    if (!(fabs(v) <= FLT_MAX))
        return sq_error_set(SQ_ERR_RANGE, "%s: %s = %g does not fit a float", h->path, key, v);
    *out = (float)v;
    return SQ_OK;
}

static sq_status_t hf_bool(const hf_t *h, const char *key, int dflt, int *out)
{
    const cJSON *j;
    SQ_TRY(hf_get(h, key, 0, &j));
    if (!j) {
        *out = dflt;
        return SQ_OK;
    }
    if (!cJSON_IsBool(j))
        return sq_error_set(SQ_ERR_CONFIG, "%s: key \"%s\" must be true or false, not a %s",
                            h->path, key, json_kind(j));
    *out = cJSON_IsTrue(j);
    return SQ_OK;
}

static sq_status_t hf_string(const hf_t *h, const char *key, int required, const char *dflt,
                             const char **out)
{
    const cJSON *j;
    SQ_TRY(hf_get(h, key, required, &j));
    if (!j) {
        *out = dflt;
        return SQ_OK;
    }
    if (!cJSON_IsString(j))
        return sq_error_set(SQ_ERR_CONFIG, "%s: key \"%s\" must be a string, not a %s", h->path,
                            key, json_kind(j));
    *out = j->valuestring;
    return SQ_OK;
}

/* ---- families ---- */

/* Per-head width when the config does not give one; 0 (reported by the
 * range checks under the right key) when either side is not positive. */
static int split_heads(int d_model, int n_heads)
{
    return (d_model > 0 && n_heads > 0) ? d_model / n_heads : 0;
}

static sq_status_t load_opt(const hf_t *h, sq_model_config_t *c)
{
    static const sq_cfg_keys_t keys = {
        .vocab_size = "vocab_size",
        .d_model = "hidden_size",
        .n_layers = "num_hidden_layers",
        .n_heads = "num_attention_heads",
        .n_kv_heads = "num_attention_heads",
        .head_dim = "hidden_size / num_attention_heads",
        .d_ff = "ffn_dim",
        .max_pos = "max_position_embeddings",
        .norm_eps = "layer norm eps",
        .rope_theta = "rope_theta",
    };
    int pre_ln, proj_dim, affine, bias;
    const char *act;
    c->arch = SQ_ARCH_OPT;
    SQ_TRY(hf_int(h, "hidden_size", 1, 0, &c->d_model));
    SQ_TRY(hf_int(h, "ffn_dim", 1, 0, &c->d_ff));
    SQ_TRY(hf_int(h, "num_attention_heads", 1, 0, &c->n_heads));
    SQ_TRY(hf_int(h, "num_hidden_layers", 1, 0, &c->n_layers));
    SQ_TRY(hf_int(h, "max_position_embeddings", 1, 0, &c->max_pos));
    SQ_TRY(hf_int(h, "vocab_size", 1, 0, &c->vocab_size));
    SQ_TRY(hf_string(h, "activation_function", 0, "relu", &act));
    SQ_TRY(hf_bool(h, "do_layer_norm_before", 1, &pre_ln));
    SQ_TRY(hf_int(h, "word_embed_proj_dim", 0, c->d_model, &proj_dim));
    SQ_TRY(hf_bool(h, "enable_bias", 1, &bias));
    SQ_TRY(hf_bool(h, "layer_norm_elementwise_affine", 1, &affine));
    SQ_TRY(hf_bool(h, "tie_word_embeddings", 1, &c->tie_embeddings));

    if (!pre_ln)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: do_layer_norm_before = false: post-LN OPT (opt-350m) is not "
                            "supported",
                            h->path);
    if (proj_dim != c->d_model)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: word_embed_proj_dim = %d differs from hidden_size = %d: OPT with "
                            "embedding projections (opt-350m) is not supported",
                            h->path, proj_dim, c->d_model);
    if (!affine)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: layer_norm_elementwise_affine = false is not supported", h->path);
    if (strcmp(act, "relu") == 0)
        c->act = SQ_ACT_RELU;
    else if (strcmp(act, "gelu") == 0)
        c->act = SQ_ACT_GELU_ERF;
    else
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: activation_function \"%s\" is not supported for opt (relu, gelu)",
                            h->path, act);

    c->n_kv_heads = c->n_heads;
    c->head_dim = split_heads(c->d_model, c->n_heads);
    c->norm = SQ_NORM_LAYER;
    c->norm_eps = 1e-5f;
    c->learned_pos = 1;
    c->pos_offset = 2; /* OPTLearnedPositionalEmbedding reserves two rows */
    c->qkv_bias = c->out_bias = c->mlp_bias = bias;
    c->norm_bias = 1;
    return sq_model_config_validate_named(c, h->path, &keys);
}

static sq_status_t load_gpt2(const hf_t *h, sq_model_config_t *c)
{
    static const sq_cfg_keys_t keys = {
        .vocab_size = "vocab_size",
        .d_model = "n_embd",
        .n_layers = "n_layer",
        .n_heads = "n_head",
        .n_kv_heads = "n_head",
        .head_dim = "n_embd / n_head",
        .d_ff = "n_inner",
        .max_pos = "n_positions",
        .norm_eps = "layer_norm_epsilon",
        .rope_theta = "rope_theta",
    };
    const char *act;
    int inv_layer_scale, scale_weights;
    c->arch = SQ_ARCH_GPT2;
    SQ_TRY(hf_int(h, "n_embd", 1, 0, &c->d_model));
    SQ_TRY(hf_int(h, "n_head", 1, 0, &c->n_heads));
    SQ_TRY(hf_int(h, "n_layer", 1, 0, &c->n_layers));
    SQ_TRY(hf_int(h, "n_positions", 1, 0, &c->max_pos));
    SQ_TRY(hf_int(h, "vocab_size", 1, 0, &c->vocab_size));
    /* null n_inner means 4 * n_embd; an absurd n_embd is reported by name below */
    int d_ff_default = (c->d_model > 0 && c->d_model <= SQ_CFG_MAX_DIM) ? 4 * c->d_model : 0;
    SQ_TRY(hf_int(h, "n_inner", 0, d_ff_default, &c->d_ff));
    SQ_TRY(hf_string(h, "activation_function", 0, "gelu_new", &act));
    SQ_TRY(hf_float(h, "layer_norm_epsilon", 0, 1e-5f, &c->norm_eps));
    SQ_TRY(hf_bool(h, "tie_word_embeddings", 1, &c->tie_embeddings));
    SQ_TRY(hf_bool(h, "scale_attn_by_inverse_layer_idx", 0, &inv_layer_scale));
    SQ_TRY(hf_bool(h, "scale_attn_weights", 1, &scale_weights));

    if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0)
        c->act = SQ_ACT_GELU_TANH;
    else if (strcmp(act, "gelu") == 0)
        c->act = SQ_ACT_GELU_ERF;
    else if (strcmp(act, "relu") == 0)
        c->act = SQ_ACT_RELU;
    else
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: activation_function \"%s\" is not supported for gpt2 (gelu_new, "
                            "gelu_pytorch_tanh, gelu, relu)",
                            h->path, act);
    if (inv_layer_scale || !scale_weights)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: attention scaling other than 1/sqrt(head_dim) "
                            "(scale_attn_by_inverse_layer_idx / scale_attn_weights) is not "
                            "supported",
                            h->path);

    c->n_kv_heads = c->n_heads;
    c->head_dim = split_heads(c->d_model, c->n_heads);
    c->norm = SQ_NORM_LAYER;
    c->learned_pos = 1;
    c->pos_offset = 0;
    c->qkv_bias = c->out_bias = c->mlp_bias = c->norm_bias = 1;
    return sq_model_config_validate_named(c, h->path, &keys);
}

/* llama, mistral, qwen2: the same block with different bias defaults.
 * mistral's sliding_window (and qwen2's) is ignored: attention is full
 * causal, which is exact while sequences are no longer than the window. */
static sq_status_t load_llama(const hf_t *h, sq_model_config_t *c)
{
    static const sq_cfg_keys_t keys = {
        .vocab_size = "vocab_size",
        .d_model = "hidden_size",
        .n_layers = "num_hidden_layers",
        .n_heads = "num_attention_heads",
        .n_kv_heads = "num_key_value_heads",
        .head_dim = "head_dim",
        .d_ff = "intermediate_size",
        .max_pos = "max_position_embeddings",
        .norm_eps = "rms_norm_eps",
        .rope_theta = "rope_theta",
    };
    const char *act;
    const cJSON *scaling;
    int has_head_dim;
    c->arch = SQ_ARCH_LLAMA;
    SQ_TRY(hf_int(h, "hidden_size", 1, 0, &c->d_model));
    SQ_TRY(hf_int(h, "intermediate_size", 1, 0, &c->d_ff));
    SQ_TRY(hf_int(h, "num_attention_heads", 1, 0, &c->n_heads));
    SQ_TRY(hf_int(h, "num_key_value_heads", 0, c->n_heads, &c->n_kv_heads));
    SQ_TRY(hf_int(h, "num_hidden_layers", 1, 0, &c->n_layers));
    SQ_TRY(hf_int(h, "max_position_embeddings", 1, 0, &c->max_pos));
    SQ_TRY(hf_int(h, "vocab_size", 1, 0, &c->vocab_size));
    SQ_TRY(hf_float(h, "rms_norm_eps", 0, 1e-6f, &c->norm_eps));
    SQ_TRY(hf_float(h, "rope_theta", 0, 10000.0f, &c->rope_theta));
    SQ_TRY(hf_string(h, "hidden_act", 0, "silu", &act));
    SQ_TRY(hf_bool(h, "tie_word_embeddings", 0, &c->tie_embeddings));
    SQ_TRY(hf_int(h, "head_dim", 0, -1, &c->head_dim));
    SQ_TRY(hf_get(h, "rope_scaling", 0, &scaling));

    if (strcmp(act, "silu") != 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: hidden_act \"%s\" is not supported for %s (silu)", h->path, act,
                            c->model_type);
    if (scaling)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: rope_scaling is set: scaled RoPE is not supported", h->path);
    has_head_dim = c->head_dim != -1;
    if (!has_head_dim) {
        if (c->n_heads > 0 && c->d_model > 0 && c->d_model % c->n_heads != 0)
            return sq_error_set(SQ_ERR_RANGE,
                                "%s: num_attention_heads = %d does not divide hidden_size = %d",
                                h->path, c->n_heads, c->d_model);
        c->head_dim = split_heads(c->d_model, c->n_heads);
    }

    if (strcmp(c->model_type, "qwen2") == 0) {
        c->qkv_bias = 1;
        c->out_bias = 0;
        c->mlp_bias = 0;
    } else {
        int attn_bias, mlp_bias;
        SQ_TRY(hf_bool(h, "attention_bias", 0, &attn_bias));
        SQ_TRY(hf_bool(h, "mlp_bias", 0, &mlp_bias));
        c->qkv_bias = c->out_bias = attn_bias;
        c->mlp_bias = mlp_bias;
    }
    c->norm = SQ_NORM_RMS;
    c->norm_bias = 0;
    c->act = SQ_ACT_SILU;
    c->glu = 1;
    c->rope = 1;
    c->rope_style = SQ_ROPE_HALF;
    return sq_model_config_validate_named(c, h->path, &keys);
}

typedef struct family {
    const char *model_type;
    sq_status_t (*load)(const hf_t *h, sq_model_config_t *c);
} family_t;

static const family_t sq_families[] = {
    {"opt", load_opt},       {"gpt2", load_gpt2},   {"llama", load_llama},
    {"mistral", load_llama}, {"qwen2", load_llama},
};

static sq_status_t load_dtype(const hf_t *h, sq_dtype_t *out)
{
    const char *key = "torch_dtype";
    const cJSON *j;
    SQ_TRY(hf_get(h, key, 0, &j));
    if (!j) { /* newer transformers write "dtype" */
        key = "dtype";
        SQ_TRY(hf_get(h, key, 0, &j));
    }
    const char *s;
    SQ_TRY(hf_string(h, key, 0, "float32", &s));
    if (strcmp(s, "float32") == 0 || strcmp(s, "float") == 0)
        *out = SQ_DTYPE_F32;
    else if (strcmp(s, "float16") == 0 || strcmp(s, "half") == 0)
        *out = SQ_DTYPE_F16;
    else if (strcmp(s, "bfloat16") == 0)
        *out = SQ_DTYPE_BF16;
    else
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: %s \"%s\" is not supported (float32, float16, bfloat16)", h->path,
                            key, s);
    return SQ_OK;
}

sq_status_t sq_model_config_load_hf(const char *config_json_path, sq_model_config_t *cfg)
{
    if (!config_json_path || !cfg)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_model_config_load_hf needs a path and cfg");
    char *text;
    size_t len;
    SQ_TRY(sq_read_text_file(config_json_path, SQ_CONFIG_MAX_BYTES, &text, &len));
    sq_status_t st = SQ_OK;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: not valid JSON", config_json_path);
        goto free_text;
    }
    if (!cJSON_IsObject(root)) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: not a JSON object", config_json_path);
        goto free_json;
    }
    hf_t h = {config_json_path, root};
    sq_model_config_t c;
    memset(&c, 0, sizeof c);
    const char *type;
    SQ_TRY_GOTO(st, hf_string(&h, "model_type", 1, NULL, &type), free_json);
    const family_t *fam = NULL;
    for (size_t i = 0; i < sizeof sq_families / sizeof sq_families[0]; i++)
        if (strcmp(sq_families[i].model_type, type) == 0) fam = &sq_families[i];
    if (!fam) {
        st = sq_error_set(SQ_ERR_UNSUPPORTED,
                          "%s: model_type \"%s\" is not supported (supported: opt, gpt2, llama, "
                          "mistral, qwen2)",
                          config_json_path, type);
        goto free_json;
    }
    snprintf(c.model_type, sizeof c.model_type, "%s", fam->model_type);
    SQ_TRY_GOTO(st, load_dtype(&h, &c.dtype), free_json);
    SQ_TRY_GOTO(st, fam->load(&h, &c), free_json);
    *cfg = c;

free_json:
    cJSON_Delete(root);
free_text:
    free(text);
    return st;
}
