/* kernels/cpu/cpu_internal.h — the CPU backend's context, op entry points and
 * argument checks, shared by the files of kernels/cpu. Not a public header.
 *
 * Threading model: all parallelism is OpenMP with `num_threads(ctx->nthreads)`
 * and a static schedule, so every result is a fixed function of the thread
 * count. OpenBLAS is driven single-threaded from inside those regions (see
 * gemm.c for why), which keeps one thread pool on the machine.
 */
#ifndef SQ_KERNELS_CPU_INTERNAL_H
#define SQ_KERNELS_CPU_INTERNAL_H

#include "sparq/backend.h"
#include "sparq/tensor_check.h"

typedef struct sq_cpu_ctx {
    int nthreads; /* team size of every parallel region (fixed at create) */

    /* attention scratch: one score block [SQ_CPU_ATTN_BLOCK, max_seq] per
     * thread, each slot 64-byte aligned */
    float *attn_scratch;
    size_t attn_slot_floats; /* floats per thread slot */
    int64_t attn_max_seq;    /* largest T the scratch holds (0: none) */
} sq_cpu_ctx_t;

/* Query rows per attention block: the score block is BLOCK x T. */
#define SQ_CPU_ATTN_BLOCK 64

static inline sq_cpu_ctx_t *sq_cpu_ctx(sq_backend_t *be)
{
    return (sq_cpu_ctx_t *)be->ctx;
}

/* ---- argument checks; `op` is the op name used in messages ---- */

/* The shared checks of sparq/tensor_check.h: F32 host tensors. rows/cols of
 * -1 accept any size. */
static inline sq_status_t sq_cpu_check_mat(const char *op, const char *name, const sq_tensor_t *t,
                                           int64_t rows, int64_t cols)
{
    const sq_check_site_t at = {"cpu", op, SQ_DEVICE_CPU};
    return sq_tensor_check_mat(&at, name, t, rows, cols, SQ_DT(SQ_DTYPE_F32));
}
/* A contiguous F32 CPU vector of n elements (any ndim, numel == n). */
static inline sq_status_t sq_cpu_check_vec(const char *op, const char *name, const sq_tensor_t *t,
                                           int64_t n)
{
    const sq_check_site_t at = {"cpu", op, SQ_DEVICE_CPU};
    return sq_tensor_check_vec(&at, name, t, n, SQ_DT(SQ_DTYPE_F32));
}
static inline sq_status_t sq_cpu_check_backend(const char *op, const sq_backend_t *be)
{
    if (!be || !be->ctx) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: backend is NULL", op);
    return SQ_OK;
}
/* 1 when the memory spans of two matrices intersect. */
#define sq_cpu_overlaps sq_tensor_overlaps
/* Row pointer of a checked F32 matrix. */
static inline float *sq_cpu_row(const sq_tensor_t *t, int64_t r)
{
    return (float *)t->data + r * sq_tensor_ld(t);
}

/* ---- ops (one file per family) ---- */

sq_status_t sq_cpu_linear(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *w,
                          sq_wlayout_t layout, const sq_tensor_t *bias, int accumulate,
                          sq_tensor_t *y);
sq_status_t sq_cpu_layernorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                             const sq_tensor_t *b, float eps, sq_tensor_t *y);
sq_status_t sq_cpu_rmsnorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g, float eps,
                           sq_tensor_t *y);
sq_status_t sq_cpu_activation(sq_backend_t *be, sq_act_t act, sq_tensor_t *x);
sq_status_t sq_cpu_glu(sq_backend_t *be, sq_act_t act, const sq_tensor_t *gate,
                       const sq_tensor_t *up, sq_tensor_t *y);
sq_status_t sq_cpu_add(sq_backend_t *be, const sq_tensor_t *x, sq_tensor_t *y);
sq_status_t sq_cpu_axpby(sq_backend_t *be, float alpha, const sq_tensor_t *x, float beta,
                         sq_tensor_t *y);
sq_status_t sq_cpu_embedding(sq_backend_t *be, const sq_tensor_t *table, const int32_t *ids,
                             int64_t n, int accumulate, sq_tensor_t *y);
sq_status_t sq_cpu_rope(sq_backend_t *be, sq_rope_style_t style, sq_tensor_t *x, int n_heads,
                        int head_dim, const int32_t *pos, float theta);
sq_status_t sq_cpu_attention(sq_backend_t *be, const sq_tensor_t *q, const sq_tensor_t *k,
                             const sq_tensor_t *v, int B, int T, int n_heads, int n_kv_heads,
                             int head_dim, float scale, sq_tensor_t *out);
sq_status_t sq_cpu_cross_entropy(sq_backend_t *be, const sq_tensor_t *logits,
                                 const int32_t *targets, float *nll);

/* ---- shared numeric helpers ---- */

/* In place over p[0..n): p = exp(p - max) / sum; n >= 1.
 * Used by attention on its score rows (softmax.c). */
void sq_cpu_softmax_row(float *p, int64_t n);

#endif
