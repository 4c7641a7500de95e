/* sparq/backend.h — the compute interface every model op goes through.
 *
 * A backend is a vtable plus its context. Models call only these ops, so the
 * same stage code runs on the CPU backend (kernels/cpu, OpenBLAS + OpenMP) and
 * on the CUDA backend (kernels/cuda). Activations are fp32 on the CPU backend;
 * weights may be F32 (the CPU loader converts F16/BF16 to fp32 masters).
 *
 * Conventions: x/y are 2-D [N, cols] row-major views (ld honoured); ops never
 * allocate — scratch is reserved once with sq_backend_reserve() at load time.
 * Every op validates shapes/dtypes and returns SQ_ERR_INVALID_ARG with a
 * message naming the op and the mismatch.
 */
#ifndef SPARQ_BACKEND_H
#define SPARQ_BACKEND_H

#include "sparq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_act {
    SQ_ACT_NONE = 0,
    SQ_ACT_RELU,
    SQ_ACT_GELU_TANH, /* GPT-2 "gelu_new" */
    SQ_ACT_GELU_ERF,  /* exact GELU */
    SQ_ACT_SILU
} sq_act_t;

typedef enum sq_rope_style {
    SQ_ROPE_HALF = 0,    /* HF rotate_half: pairs (i, i + D/2) */
    SQ_ROPE_INTERLEAVED  /* llama2.c / Meta: pairs (2i, 2i + 1) */
} sq_rope_style_t;

/* Layout of a linear weight. */
typedef enum sq_wlayout {
    SQ_WEIGHT_OUT_IN = 0, /* W[out, in]  (torch.nn.Linear, llama2.c) */
    SQ_WEIGHT_IN_OUT      /* W[in, out]  (GPT-2 Conv1D)              */
} sq_wlayout_t;

/* Sizes the model will ask for; the backend reserves its scratch from them. */
typedef struct sq_backend_limits {
    int64_t max_rows;   /* N = B*T rows in one forward */
    int64_t max_seq;    /* T */
    int64_t max_heads;  /* H */
    int64_t max_cols;   /* widest row any op sees (e.g. V for log-softmax) */
} sq_backend_limits_t;

typedef struct sq_backend sq_backend_t;

typedef struct sq_backend_ops {
    const char *name; /* "cpu", "cuda" */
    sq_device_t device;

    /* Reserve scratch for the given limits (idempotent; grows only). */
    sq_status_t (*reserve)(sq_backend_t *be, const sq_backend_limits_t *lim);

    /* y[N,out] = x[N,in] · W (+ bias[out]); W laid out per `layout`.
     * If accumulate != 0: y += x·W (+bias) instead of overwrite. */
    sq_status_t (*linear)(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *w,
                          sq_wlayout_t layout, const sq_tensor_t *bias, int accumulate,
                          sq_tensor_t *y);

    /* y = (x - mean)/sqrt(var + eps) * g + b, per row. b may be NULL. */
    sq_status_t (*layernorm)(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                             const sq_tensor_t *b, float eps, sq_tensor_t *y);
    /* y = x / sqrt(mean(x^2) + eps) * g, per row. */
    sq_status_t (*rmsnorm)(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                           float eps, sq_tensor_t *y);

    /* x = act(x) in place. */
    sq_status_t (*activation)(sq_backend_t *be, sq_act_t act, sq_tensor_t *x);
    /* y = act(gate) * up (SwiGLU when act == SILU). y may alias gate. */
    sq_status_t (*glu)(sq_backend_t *be, sq_act_t act, const sq_tensor_t *gate,
                       const sq_tensor_t *up, sq_tensor_t *y);
    /* y += x (same shape). */
    sq_status_t (*add)(sq_backend_t *be, const sq_tensor_t *x, sq_tensor_t *y);
    /* y = alpha * x + beta * y (same shape); beta == 0 overwrites y without
     * reading it. The runtime's ZO pair coding on device boundaries uses it
     * (copy: 1, 0; x - y: 1, -1; x + y: 1, 1). */
    sq_status_t (*axpby)(sq_backend_t *be, float alpha, const sq_tensor_t *x, float beta,
                         sq_tensor_t *y);

    /* y[i,:] (+)= table[ids[i],:] for i < n; ids are checked against
     * table rows (SQ_ERR_RANGE naming the bad id). */
    sq_status_t (*embedding)(sq_backend_t *be, const sq_tensor_t *table, const int32_t *ids,
                             int64_t n, int accumulate, sq_tensor_t *y);

    /* Rotary embedding in place on x[N, n_heads*D]; pos[N] is the position of
     * each row. Frequencies theta^(-2i/D). */
    sq_status_t (*rope)(sq_backend_t *be, sq_rope_style_t style, sq_tensor_t *x, int n_heads,
                        int head_dim, const int32_t *pos, float theta);

    /* Causal self-attention over B sequences of T rows each (N = B*T):
     * q[N, H*D], k[N, K*D], v[N, K*D] (views, ld honoured), out[N, H*D].
     * Query head h reads kv head h / (H/K) (GQA). scores scaled by `scale`. */
    sq_status_t (*attention)(sq_backend_t *be, const sq_tensor_t *q, const sq_tensor_t *k,
                             const sq_tensor_t *v, int B, int T, int n_heads, int n_kv_heads,
                             int head_dim, float scale, sq_tensor_t *out);

    /* Per-row negative log-likelihood: nll[i] = logsumexp(logits[i,:]) -
     * logits[i, target[i]]; rows with target < 0 give 0 and are not counted.
     * nll is host memory [N]. */
    sq_status_t (*cross_entropy)(sq_backend_t *be, const sq_tensor_t *logits,
                                 const int32_t *targets, float *nll);

    /* Memory of this backend's device (host memory for the CPU backend,
     * 256-byte aligned device memory for CUDA). Stage arenas come from here;
     * free(NULL) is a no-op. */
    sq_status_t (*alloc)(sq_backend_t *be, size_t bytes, const char *what, void **out);
    void (*free)(sq_backend_t *be, void *p);
    /* Wait until every op queued so far has finished (CUDA ops are
     * asynchronous on the backend's stream; CPU ops are done on return). */
    sq_status_t (*sync)(sq_backend_t *be);

    /* Copies between host memory and tensors of this backend's device. */
    sq_status_t (*to_host)(sq_backend_t *be, const sq_tensor_t *src, void *dst, size_t bytes);
    sq_status_t (*from_host)(sq_backend_t *be, const void *src, size_t bytes, sq_tensor_t *dst);

    /* ---- zeroth-order optimisation (zo_rng.h defines z) ----
     * dst[i] = src[i] + scale * z(seed, tensor_id, offset + i) * mask[i], for
     * the n elements of contiguous 1-D views; dst may alias src. mask is
     * optional (NULL: every element; else 0/1 bytes, one per element).
     * Device backends also take a BF16 or F16 dst: the sum is rounded once
     * into the 16-bit GEMM operand; scale 0 then only converts. */
    sq_status_t (*zo_perturb)(sq_backend_t *be, const sq_tensor_t *src, uint64_t seed,
                              uint64_t tensor_id, int64_t offset, float scale,
                              const uint8_t *mask, sq_tensor_t *dst);
    /* The ZO-SGD update of one tensor, with n SPSA samples:
     * w[i] -= lr * ( sum_k g[k] * z(seeds[k], tensor_id, i) * mask[i] / n + wd * w[i] ).
     * The accumulation order is fixed (k ascending) so every stage and
     * device computes the same bits. */
    sq_status_t (*zo_update)(sq_backend_t *be, sq_tensor_t *w, int n, const uint64_t *seeds,
                             const float *g, uint64_t tensor_id, float lr, float wd,
                             const uint8_t *mask);

    void (*destroy)(sq_backend_t *be);
} sq_backend_ops_t;

struct sq_backend {
    const sq_backend_ops_t *ops;
    void *ctx;
};

/* CPU backend: OpenBLAS sgemm + OpenMP loops. nthreads <= 0: library default. */
sq_status_t sq_backend_cpu_create(int nthreads, sq_backend_t **out);

/* CUDA backend (issue 7); returns SQ_ERR_UNSUPPORTED when built without CUDA
 * or when no device is present. */
sq_status_t sq_backend_cuda_create(int device, sq_backend_t **out);
/* 1 when this build has CUDA and a device is visible, else 0. */
int sq_cuda_available(void);
/* Number of visible CUDA devices (0 without CUDA). */
int sq_cuda_device_count(void);
/* Free and total memory of the current CUDA device (cudaMemGetInfo). */
sq_status_t sq_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);
/* One line on stdout naming device N: name, SMs, memory, HBM bandwidth. */
void sq_cuda_print_device(int device);
/* The cudaStream_t every op of a CUDA backend is queued on (NULL for other
 * backends): the GPU codec and the runtime's copies order themselves
 * against the forward with it. */
void *sq_backend_cuda_stream(sq_backend_t *be);
/* on = 1: F32 x F32 GEMMs of a CUDA backend use TF32 tensor cores (about 3
 * decimal digits fewer, ~7x the fp32 rate on Hopper); 0 (the default): fp32.
 * SQ_ERR_INVALID_ARG for other backends. */
sq_status_t sq_backend_cuda_set_tf32(sq_backend_t *be, int on);

static inline void sq_backend_destroy(sq_backend_t *be)
{
    if (be) be->ops->destroy(be);
}

#ifdef __cplusplus
}
#endif
#endif
