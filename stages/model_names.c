/* Where each family keeps its tensors: HF names and shapes per slot. This
 * table is the only per-family knowledge outside the config. */
#include "model_internal.h"

#include <stdio.h>
#include <string.h>

/* Name templates; %d is the layer. NULL: the family has no such tensor. */
static const char *const opt_names[SQ_SLOT_COUNT] = {
    [SQ_SLOT_EMBED] = "model.decoder.embed_tokens.weight",
    [SQ_SLOT_POS] = "model.decoder.embed_positions.weight",
    [SQ_SLOT_NORMF_W] = "model.decoder.final_layer_norm.weight",
    [SQ_SLOT_NORMF_B] = "model.decoder.final_layer_norm.bias",
    [SQ_SLOT_HEAD] = "lm_head.weight",
    [SQ_SLOT_LN1_W] = "model.decoder.layers.%d.self_attn_layer_norm.weight",
    [SQ_SLOT_LN1_B] = "model.decoder.layers.%d.self_attn_layer_norm.bias",
    [SQ_SLOT_Q_W] = "model.decoder.layers.%d.self_attn.q_proj.weight",
    [SQ_SLOT_Q_B] = "model.decoder.layers.%d.self_attn.q_proj.bias",
    [SQ_SLOT_K_W] = "model.decoder.layers.%d.self_attn.k_proj.weight",
    [SQ_SLOT_K_B] = "model.decoder.layers.%d.self_attn.k_proj.bias",
    [SQ_SLOT_V_W] = "model.decoder.layers.%d.self_attn.v_proj.weight",
    [SQ_SLOT_V_B] = "model.decoder.layers.%d.self_attn.v_proj.bias",
    [SQ_SLOT_O_W] = "model.decoder.layers.%d.self_attn.out_proj.weight",
    [SQ_SLOT_O_B] = "model.decoder.layers.%d.self_attn.out_proj.bias",
    [SQ_SLOT_LN2_W] = "model.decoder.layers.%d.final_layer_norm.weight",
    [SQ_SLOT_LN2_B] = "model.decoder.layers.%d.final_layer_norm.bias",
    [SQ_SLOT_UP_W] = "model.decoder.layers.%d.fc1.weight",
    [SQ_SLOT_UP_B] = "model.decoder.layers.%d.fc1.bias",
    [SQ_SLOT_DOWN_W] = "model.decoder.layers.%d.fc2.weight",
    [SQ_SLOT_DOWN_B] = "model.decoder.layers.%d.fc2.bias",
};

/* GPT-2 names without the optional "transformer." prefix. */
static const char *const gpt2_names[SQ_SLOT_COUNT] = {
    [SQ_SLOT_EMBED] = "wte.weight",
    [SQ_SLOT_POS] = "wpe.weight",
    [SQ_SLOT_NORMF_W] = "ln_f.weight",
    [SQ_SLOT_NORMF_B] = "ln_f.bias",
    [SQ_SLOT_HEAD] = "lm_head.weight",
    [SQ_SLOT_LN1_W] = "h.%d.ln_1.weight",
    [SQ_SLOT_LN1_B] = "h.%d.ln_1.bias",
    [SQ_SLOT_QKV_W] = "h.%d.attn.c_attn.weight",
    [SQ_SLOT_QKV_B] = "h.%d.attn.c_attn.bias",
    [SQ_SLOT_O_W] = "h.%d.attn.c_proj.weight",
    [SQ_SLOT_O_B] = "h.%d.attn.c_proj.bias",
    [SQ_SLOT_LN2_W] = "h.%d.ln_2.weight",
    [SQ_SLOT_LN2_B] = "h.%d.ln_2.bias",
    [SQ_SLOT_UP_W] = "h.%d.mlp.c_fc.weight",
    [SQ_SLOT_UP_B] = "h.%d.mlp.c_fc.bias",
    [SQ_SLOT_DOWN_W] = "h.%d.mlp.c_proj.weight",
    [SQ_SLOT_DOWN_B] = "h.%d.mlp.c_proj.bias",
};

static const char *const llama_names[SQ_SLOT_COUNT] = {
    [SQ_SLOT_EMBED] = "model.embed_tokens.weight",
    [SQ_SLOT_NORMF_W] = "model.norm.weight",
    [SQ_SLOT_HEAD] = "lm_head.weight",
    [SQ_SLOT_LN1_W] = "model.layers.%d.input_layernorm.weight",
    [SQ_SLOT_Q_W] = "model.layers.%d.self_attn.q_proj.weight",
    [SQ_SLOT_Q_B] = "model.layers.%d.self_attn.q_proj.bias",
    [SQ_SLOT_K_W] = "model.layers.%d.self_attn.k_proj.weight",
    [SQ_SLOT_K_B] = "model.layers.%d.self_attn.k_proj.bias",
    [SQ_SLOT_V_W] = "model.layers.%d.self_attn.v_proj.weight",
    [SQ_SLOT_V_B] = "model.layers.%d.self_attn.v_proj.bias",
    [SQ_SLOT_O_W] = "model.layers.%d.self_attn.o_proj.weight",
    [SQ_SLOT_O_B] = "model.layers.%d.self_attn.o_proj.bias",
    [SQ_SLOT_LN2_W] = "model.layers.%d.post_attention_layernorm.weight",
    [SQ_SLOT_UP_W] = "model.layers.%d.mlp.up_proj.weight",
    [SQ_SLOT_UP_B] = "model.layers.%d.mlp.up_proj.bias",
    [SQ_SLOT_GATE_W] = "model.layers.%d.mlp.gate_proj.weight",
    [SQ_SLOT_GATE_B] = "model.layers.%d.mlp.gate_proj.bias",
    [SQ_SLOT_DOWN_W] = "model.layers.%d.mlp.down_proj.weight",
    [SQ_SLOT_DOWN_B] = "model.layers.%d.mlp.down_proj.bias",
};

sq_wlayout_t sq_model_wlayout(const sq_model_config_t *cfg)
{
    return cfg->arch == SQ_ARCH_GPT2 ? SQ_WEIGHT_IN_OUT : SQ_WEIGHT_OUT_IN;
}

/* Does this config have the slot at all? (biases and gates are optional) */
static int slot_present(const sq_model_config_t *cfg, sq_slot_t s)
{
    switch (s) {
    case SQ_SLOT_POS: return cfg->learned_pos;
    case SQ_SLOT_NORMF_B:
    case SQ_SLOT_LN1_B:
    case SQ_SLOT_LN2_B: return cfg->norm_bias;
    case SQ_SLOT_Q_B:
    case SQ_SLOT_K_B:
    case SQ_SLOT_V_B:
    case SQ_SLOT_QKV_B: return cfg->qkv_bias;
    case SQ_SLOT_O_B: return cfg->out_bias;
    case SQ_SLOT_UP_B:
    case SQ_SLOT_DOWN_B: return cfg->mlp_bias;
    case SQ_SLOT_GATE_W: return cfg->glu;
    case SQ_SLOT_GATE_B: return cfg->glu && cfg->mlp_bias;
    default: return 1;
    }
}

int sq_model_slot_name(const sq_model_config_t *cfg, const char *prefix, sq_slot_t s, int layer,
                       char *buf, size_t cap)
{
    const char *const *table = cfg->arch == SQ_ARCH_OPT    ? opt_names
                               : cfg->arch == SQ_ARCH_GPT2 ? gpt2_names
                                                           : llama_names;
    if (!slot_present(cfg, s)) return 0;
    if (s == SQ_SLOT_HEAD && cfg->tie_embeddings) s = SQ_SLOT_EMBED;
    const char *tmpl = table[s];
    if (!tmpl) return 0;
    char inner[160];
    snprintf(inner, sizeof inner, tmpl, layer);
    /* the GPT-2 prefix applies to transformer tensors, not to lm_head */
    snprintf(buf, cap, "%s%s", (s == SQ_SLOT_HEAD) ? "" : prefix, inner);
    return 1;
}

int sq_model_slot_shape(const sq_model_config_t *cfg, sq_slot_t s, int64_t shape[2])
{
    const int64_t C = cfg->d_model, F = cfg->d_ff, V = cfg->vocab_size;
    const int64_t HD = (int64_t)cfg->n_heads * cfg->head_dim;
    const int64_t KD = (int64_t)cfg->n_kv_heads * cfg->head_dim;
    const int in_out = sq_model_wlayout(cfg) == SQ_WEIGHT_IN_OUT;
#define SQ_MAT(out_, in_)                                                                          \
    do {                                                                                           \
        shape[0] = in_out ? (in_) : (out_);                                                        \
        shape[1] = in_out ? (out_) : (in_);                                                        \
        return 2;                                                                                  \
    } while (0)
    switch (s) {
    case SQ_SLOT_EMBED:
    case SQ_SLOT_HEAD: shape[0] = V; shape[1] = C; return 2;
    case SQ_SLOT_POS: shape[0] = cfg->max_pos + cfg->pos_offset; shape[1] = C; return 2;
    case SQ_SLOT_NORMF_W:
    case SQ_SLOT_NORMF_B:
    case SQ_SLOT_LN1_W:
    case SQ_SLOT_LN1_B:
    case SQ_SLOT_LN2_W:
    case SQ_SLOT_LN2_B:
    case SQ_SLOT_O_B:
    case SQ_SLOT_DOWN_B: shape[0] = C; return 1;
    case SQ_SLOT_Q_B: shape[0] = HD; return 1;
    case SQ_SLOT_K_B:
    case SQ_SLOT_V_B: shape[0] = KD; return 1;
    case SQ_SLOT_QKV_B: shape[0] = HD + 2 * KD; return 1;
    case SQ_SLOT_UP_B:
    case SQ_SLOT_GATE_B: shape[0] = F; return 1;
    case SQ_SLOT_Q_W: SQ_MAT(HD, C);
    case SQ_SLOT_K_W:
    case SQ_SLOT_V_W: SQ_MAT(KD, C);
    case SQ_SLOT_QKV_W: SQ_MAT(HD + 2 * KD, C);
    case SQ_SLOT_O_W: SQ_MAT(C, HD);
    case SQ_SLOT_UP_W:
    case SQ_SLOT_GATE_W: SQ_MAT(F, C);
    case SQ_SLOT_DOWN_W: SQ_MAT(C, F);
    default: return 0;
    }
#undef SQ_MAT
}
