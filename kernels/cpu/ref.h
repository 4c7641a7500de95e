/* kernels/cpu/ref.h — plain-C reference twins of the backend ops.
 *
 * Naive loops in double, no BLAS, no threads, no vectorization tricks: they
 * exist to be obviously correct, and tests/kernels compares every CPU (and
 * later CUDA) op against them. They take already-validated arguments (the
 * same ones as the op, minus the backend), honour ld on every view, and
 * allocate nothing. Internal to sparq; not a public header.
 */
#ifndef SQ_KERNELS_CPU_REF_H
#define SQ_KERNELS_CPU_REF_H

#include "sparq/backend.h"

void sq_linear_ref(const sq_tensor_t *x, const sq_tensor_t *w, sq_wlayout_t layout,
                   const sq_tensor_t *bias, int accumulate, sq_tensor_t *y);
void sq_layernorm_ref(const sq_tensor_t *x, const sq_tensor_t *g, const sq_tensor_t *b, float eps,
                      sq_tensor_t *y);
void sq_rmsnorm_ref(const sq_tensor_t *x, const sq_tensor_t *g, float eps, sq_tensor_t *y);
/* act(v) in double: GELU_TANH = 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))),
 * GELU_ERF = 0.5 v (1 + erf(v / sqrt 2)), SILU = v / (1 + exp(-v)). */
double sq_act_ref(sq_act_t act, double v);
void sq_activation_ref(sq_act_t act, sq_tensor_t *x);
void sq_glu_ref(sq_act_t act, const sq_tensor_t *gate, const sq_tensor_t *up, sq_tensor_t *y);
void sq_add_ref(const sq_tensor_t *x, sq_tensor_t *y);
void sq_embedding_ref(const sq_tensor_t *table, const int32_t *ids, int64_t n, int accumulate,
                      sq_tensor_t *y);
void sq_rope_ref(sq_rope_style_t style, sq_tensor_t *x, int n_heads, int head_dim,
                 const int32_t *pos, float theta);
void sq_attention_ref(const sq_tensor_t *q, const sq_tensor_t *k, const sq_tensor_t *v, int B,
                      int T, int n_heads, int n_kv_heads, int head_dim, float scale,
                      sq_tensor_t *out);
void sq_cross_entropy_ref(const sq_tensor_t *logits, const int32_t *targets, float *nll);

#endif
