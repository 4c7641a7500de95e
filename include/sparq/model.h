/* sparq/model.h — a transformer as a sequence of units, loadable per range.
 *
 * Every supported family (OPT, GPT-2, LLaMA) is expressed as the same
 * sequence of units:
 *
 *   unit 0            EMBED      token (+ learned position) embedding -> hidden
 *   unit 1 + 3l + 0   ATTN(l)    hidden += attn(norm1(hidden))
 *   unit 1 + 3l + 1   MLP_IN(l)  mlp_act = act(up(norm2(hidden))) [* gate]
 *   unit 1 + 3l + 2   MLP_OUT(l) hidden += down(mlp_act)
 *   unit 3L + 1       HEAD       logits = lm_head(norm_f(hidden)) -> NLL
 *
 * A pipeline stage owns a contiguous range of units [unit_begin, unit_end)
 * and loads only the tensors those units read (stage 0 the embeddings, the
 * last stage the head). The boundaries between units are the split
 * candidates; the tensors that cross a boundary are the residual stream
 * `hidden` [N, C], plus `mlp_act` [N, F] after an MLP_IN unit.
 *
 * Parameters are held as fp32 masters (converted from the file's F16/BF16)
 * in one per-stage arena sized at load time, together with every activation
 * buffer the forward needs; the forward allocates nothing. The arena is the
 * backend's memory (alloc op): host memory on the CPU, device memory on a
 * GPU, where weights are converted on the host and uploaded tensor by tensor
 * and only the small index arrays (positions, gathered head rows) stay on
 * the host.
 */
#ifndef SPARQ_MODEL_H
#define SPARQ_MODEL_H

#include "sparq/backend.h"
#include "sparq/model_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_unit_kind {
    SQ_UNIT_EMBED = 0,
    SQ_UNIT_ATTN,
    SQ_UNIT_MLP_IN,
    SQ_UNIT_MLP_OUT,
    SQ_UNIT_HEAD
} sq_unit_kind_t;

/* Number of units of a model with this config: 3L + 2. */
int sq_model_unit_count(const sq_model_config_t *cfg);
/* Kind and layer of unit u (layer -1 for EMBED/HEAD). */
sq_unit_kind_t sq_model_unit_kind(const sq_model_config_t *cfg, int u, int *layer);
const char *sq_unit_kind_name(sq_unit_kind_t k);

/* A split candidate: the boundary just before unit `unit` (1 .. units-1). */
typedef struct sq_split_candidate {
    int unit;              /* first unit of the next stage */
    int layer;             /* layer the boundary sits in/after */
    char name[48];         /* "embed", "L3.attn", "L3.mlp_act", "L3.out" */
    int n_tensors;         /* 1 or 2 */
    const char *tensors[2];/* "hidden", "mlp_act" */
    int64_t cols[2];       /* C, F: values per token of each tensor */
} sq_split_candidate_t;

/* First unit of stage j when n_layers layers are split evenly into S stages:
 * 0 for j = 0, the unit count 3L + 2 for j = S, else the ATTN unit of layer
 * L*j/S (stage 0 takes the embedding, the last the head). Stages are
 * non-empty when S <= L + 1. */
int sq_model_even_cut(int n_layers, int S, int j);

/* Fill up to cap candidates; returns the count (units - 1). */
int sq_model_split_candidates(const sq_model_config_t *cfg, sq_split_candidate_t *out, int cap);

/* One parameter tensor held by a stage. */
typedef struct sq_param {
    char *name;           /* HF tensor name: the stable id ZO derives z from */
    sq_tensor_t t;        /* fp32 master, in the stage arena */
    sq_dtype_t file_dtype;/* dtype in the model file */
    int is_vector;        /* 1-D (bias or norm gain): no weight decay */
    uint64_t zo_id;       /* sq_zo_tensor_id(name): the stream z is drawn from */
} sq_param_t;

typedef struct sq_model_load_opts {
    int unit_begin;  /* first unit of this stage (default 0) */
    int unit_end;    /* one past the last unit; <= 0 means all */
    int max_batch;   /* B the arena is sized for (default 1) */
    int max_seq;     /* T the arena is sized for (default: config max_pos) */
    int head_chunk;  /* rows of logits materialised at once (default 256) */
    int perturb;     /* 1: reserve scratch for out-of-place ZO perturbation */
    /* The operand type of the linear layers' GEMMs: SQ_DTYPE_F32 (default)
     * or, on a device backend, SQ_DTYPE_BF16 / SQ_DTYPE_F16: before each
     * unit every weight matrix it reads is written into 16-bit scratch,
     * perturbed on the way when tuned (one fused pass), and the GEMM runs
     * 16 x 16 bits with fp32 accumulation (the input rounded to the same
     * type; fp16 saturates to inf past 65504). Masters, norms, biases and
     * embedding rows stay fp32. */
    sq_dtype_t gemm_dtype;
} sq_model_load_opts_t;

typedef struct sq_model sq_model_t;

/* Load a model (or one stage's unit range of it). `path` is an HF model
 * directory (config.json + safetensors), a model.safetensors.index.json, or
 * a llama2.c .bin. The backend is borrowed and must outlive the model. */
sq_status_t sq_model_load(const char *path, const sq_model_load_opts_t *opts,
                          sq_backend_t *be, sq_model_t **out);
void sq_model_destroy(sq_model_t *m);

const sq_model_config_t *sq_model_config(const sq_model_t *m);
sq_backend_t *sq_model_backend(const sq_model_t *m);
/* The path the model was loaded from. */
const char *sq_model_path(const sq_model_t *m);
void sq_model_unit_range(const sq_model_t *m, int *begin, int *end);
int sq_model_param_count(const sq_model_t *m);
sq_param_t *sq_model_param(sq_model_t *m, int i);
/* Bytes of the stage arena (parameters + activations) and its parts. */
size_t sq_model_arena_bytes(const sq_model_t *m);
size_t sq_model_param_bytes(const sq_model_t *m);

/* Copy parameter i to / from packed fp32 host memory (numel floats): how the
 * runtime reads and writes masters that may live in device memory. */
sq_status_t sq_model_param_read(sq_model_t *m, int i, float *host);
sq_status_t sq_model_param_write(sq_model_t *m, int i, const float *host);

/* Tensors crossing a boundary, as views into the stage's own buffers. */
typedef struct sq_boundary {
    int n_tensors;
    const char *names[2];
    sq_tensor_t t[2]; /* [N, C] hidden, [N, F] mlp_act */
} sq_boundary_t;

/* Boundary arithmetic against a contiguous buffer holding every tensor of
 * bd in order, row by row (sq_boundary_numel floats). Host memory only: on a
 * device the runtime does the same with the backend's axpby. The ZO pair coding uses
 * it: the -eps pass of a micro-batch sends x- - x+ and the receiver adds its
 * decoded x+ back, so both passes carry the same quantization error. */
int64_t sq_boundary_numel(const sq_boundary_t *bd);
void sq_boundary_save(const sq_boundary_t *bd, float *buf);       /* buf = x */
void sq_boundary_load(const sq_boundary_t *bd, const float *buf); /* x = buf */
void sq_boundary_diff(const sq_boundary_t *bd, float *buf);       /* buf = x - buf */
void sq_boundary_add(const sq_boundary_t *bd, const float *buf);  /* x += buf */
/* Both ends of the pair coding for a pass of sign +1 / -1 (0, or buf NULL:
 * unpaired). Sender, before encoding: +1 keeps x+ in buf; -1 turns buf into
 * x- - x+ and returns 1: encode the tensors from buf (contiguous, in order).
 * Receiver, after decoding into bd: +1 keeps x^+ in buf; -1 adds it. */
int sq_boundary_pair_send(const sq_boundary_t *bd, int sign, float *buf);
void sq_boundary_pair_recv(const sq_boundary_t *bd, int sign, float *buf);

/* Views of the buffers the stage reads its input from (its first unit's
 * boundary; n_tensors == 0 for the first stage) and writes its output to
 * (n_tensors == 0 for the last stage), for a batch of B x T tokens. The
 * runtime decodes into the former and encodes from the latter. */
sq_status_t sq_model_input_boundary(sq_model_t *m, int B, int T, sq_boundary_t *out);
sq_status_t sq_model_output_boundary(sq_model_t *m, int B, int T, sq_boundary_t *out);

/* What the HEAD unit reports. All arrays are caller-owned host memory with
 * one entry per evaluated row; NULL pointers are skipped. Only the rows
 * listed in `rows` are evaluated (all N rows when rows == NULL): a task that
 * scores one position per sequence pays for B rows of the vocabulary GEMM,
 * not B*T. */
typedef struct sq_head_out {
    const int32_t *rows;     /* [n_rows] row indices into the batch, or NULL */
    int n_rows;
    float *nll;              /* [n] -log p(target of the row), 0 where target < 0 */
    int32_t *argmax;         /* [n] */
    const int32_t *logit_index; /* [n_logit_index] vocab ids to report */
    int n_logit_index;
    float *logits;           /* [n, n_logit_index] raw logits */
    float *logprobs;         /* [n, n_logit_index] log-softmax values */
} sq_head_out_t;

typedef struct sq_batch {
    int B, T;
    const int32_t *tokens;   /* [B*T]; read by EMBED */
    const int32_t *targets;  /* [B*T]; read by HEAD, -1 = not scored */
} sq_batch_t;

/* Run this stage's units on the batch. Input activations must already be in
 * the input boundary buffers (unless the stage starts at EMBED); outputs are
 * left in the output boundary buffers, or reported in `head` when the stage
 * ends with HEAD (head may be NULL otherwise). */
sq_status_t sq_model_forward(sq_model_t *m, const sq_batch_t *batch, sq_head_out_t *head);

/* Out-of-place ZO perturbation. While set, every tuned parameter a unit
 * reads is formed as theta + scale * z(seed, zo_id) [* mask] in the stage's
 * scratch just before the unit runs (embedding tables: only the rows looked
 * up); theta itself is never written, so the +eps and -eps passes of
 * different micro-batches can run on one copy of the weights. Needs a model
 * loaded with opts.perturb = 1. The arrays are borrowed. */
typedef struct sq_perturbation {
    uint64_t seed;
    float scale;              /* +eps or -eps */
    const uint8_t *tuned;     /* [param_count]: 1 = perturb */
    const uint8_t *const *masks; /* [param_count]: element mask or NULL (all) */
} sq_perturbation_t;

/* p == NULL switches perturbation off. */
sq_status_t sq_model_set_perturbation(sq_model_t *m, const sq_perturbation_t *p);

/* Run only units [u0, u1) of the stage's range; activations carry over
 * between calls, so calling unit by unit equals one sq_model_forward. */
sq_status_t sq_model_forward_units(sq_model_t *m, const sq_batch_t *batch, int u0, int u1,
                                   sq_head_out_t *head);
/* The tensors crossing the boundary just before `unit` (views into the
 * stage's buffers, valid after the units before it ran). */
sq_status_t sq_model_boundary(sq_model_t *m, int unit, int B, int T, sq_boundary_t *out);

/* FLOPs of one forward of this stage's units over B x T tokens (GEMMs and
 * attention, multiply-add = 2), for utilization figures. */
double sq_model_forward_flops(const sq_model_t *m, int B, int T);

#ifdef __cplusplus
}
#endif
#endif
