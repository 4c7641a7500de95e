/* stages-internal: parameter slots and the model object. */
#ifndef SPARQ_STAGES_MODEL_INTERNAL_H
#define SPARQ_STAGES_MODEL_INTERNAL_H

#include "sparq/model.h"
#include "sparq/weights.h"

typedef enum sq_slot {
    /* model-level */
    SQ_SLOT_EMBED = 0,
    SQ_SLOT_POS,
    SQ_SLOT_NORMF_W,
    SQ_SLOT_NORMF_B,
    SQ_SLOT_HEAD,
    /* per layer */
    SQ_SLOT_LN1_W,
    SQ_SLOT_LN1_B,
    SQ_SLOT_Q_W,
    SQ_SLOT_Q_B,
    SQ_SLOT_K_W,
    SQ_SLOT_K_B,
    SQ_SLOT_V_W,
    SQ_SLOT_V_B,
    SQ_SLOT_QKV_W, /* fused q|k|v (GPT-2 c_attn) */
    SQ_SLOT_QKV_B,
    SQ_SLOT_O_W,
    SQ_SLOT_O_B,
    SQ_SLOT_LN2_W,
    SQ_SLOT_LN2_B,
    SQ_SLOT_UP_W,
    SQ_SLOT_UP_B,
    SQ_SLOT_GATE_W,
    SQ_SLOT_GATE_B,
    SQ_SLOT_DOWN_W,
    SQ_SLOT_DOWN_B,
    SQ_SLOT_COUNT
} sq_slot_t;

#define SQ_SLOT_FIRST_LAYER SQ_SLOT_LN1_W
#define SQ_LAYER_SLOTS (SQ_SLOT_COUNT - SQ_SLOT_FIRST_LAYER)

/* HF name of a slot into buf; 0 when the family/config has no such tensor. */
int sq_model_slot_name(const sq_model_config_t *cfg, const char *prefix, sq_slot_t s, int layer,
                       char *buf, size_t cap);
/* Expected shape (as stored in the file); returns ndim. */
int sq_model_slot_shape(const sq_model_config_t *cfg, sq_slot_t s, int64_t shape[2]);
sq_wlayout_t sq_model_wlayout(const sq_model_config_t *cfg);
/* The fp32 master of a slot, NULL when the stage has no such tensor. */
const sq_tensor_t *sq_model_slot_tensor(const sq_model_t *m, sq_slot_t s, int layer);
/* Parameter index of a slot, -1 when absent. */
int sq_model_slot_index(const sq_model_t *m, sq_slot_t s, int layer);
/* Slots a unit reads. */
const sq_slot_t *sq_model_unit_slots(sq_unit_kind_t k, int *n);

struct sq_model {
    sq_model_config_t cfg;
    char path[1024];
    sq_backend_t *be;
    int unit_begin, unit_end;
    int max_rows, max_seq, head_chunk;

    sq_arena_t arena;      /* parameters, activations, scratch: backend (device) memory */
    int on_device;         /* the backend's memory is not host memory */
    int32_t *host_ints;    /* on a device: pos, pos_ids, head_rows, head_tgt live here */
    float *logits_host;    /* on a device: [head_chunk, V] host copy for head_reduce */
    size_t param_bytes;

    int n_params;
    sq_param_t *params;
    /* slot -> param index (-1 absent); layer slots indexed [layer][slot] */
    int global_slot[SQ_SLOT_FIRST_LAYER];
    int *layer_slot; /* [L][SQ_LAYER_SLOTS] */

    /* activations, sized for max_rows = max_batch * max_seq */
    float *h;      /* [N, C] residual stream */
    float *x;      /* [N, C] normed input of a sublayer */
    float *qkv;    /* [N, (H+2K)*D] */
    float *att;    /* [N, H*D] */
    float *a;      /* [N, F] MLP activation */
    float *up;     /* [N, F] up projection (gated MLP) */
    float *logits; /* [head_chunk, V] */
    float *head_in;   /* [head_chunk, C] rows gathered for the head */
    int32_t *head_rows;   /* [head_chunk] */
    int32_t *head_tgt;    /* [head_chunk] targets of the gathered rows */
    int32_t *pos;  /* [N] position of each row */

    /* out-of-place perturbation */
    int perturb_active;
    int perturb_reserved;  /* opts.perturb: scratch holds fp32 perturbed copies */
    sq_dtype_t gemm_dtype; /* opts.gemm_dtype; F16/BF16: matrices reach GEMMs as 16-bit scratch */
    sq_perturbation_t pert;
    float *scratch;        /* [scratch_floats] perturbed (or 16-bit) copies of one unit's params */
    int64_t scratch_floats;
    sq_tensor_t *eff;      /* [n_params] what the forward reads: theta or its perturbed copy */
    int32_t *pos_ids; /* [N] row of the position table */
};

/* A contiguous F32 view of stage memory, tagged with the backend's device. */
static inline sq_tensor_t sq_model_f32(const sq_model_t *m, float *p, int64_t rows, int64_t cols)
{
    sq_tensor_t t = sq_tensor_2d(p, SQ_DTYPE_F32, rows, cols);
    t.device = m->be->ops->device;
    return t;
}

/* Scratch floats one parameter's copy takes while its unit runs (forward.c
 * materialize; sized in sq_model_load): a 16-bit copy of a matrix when the
 * GEMMs run in bf16/fp16, else an fp32 perturbed copy when perturbation is
 * reserved, else none. The embed unit makes no copies. */
static inline int64_t sq_model_copy_floats(const sq_model_t *m, int64_t numel, int is_vector)
{
    if (m->gemm_dtype != SQ_DTYPE_F32 && !is_vector)
        return (int64_t)(sq_arena_footprint((size_t)numel * 2) / 4);
    if (m->perturb_reserved) return (int64_t)(sq_arena_footprint((size_t)numel * 4) / 4);
    return 0;
}

#endif
