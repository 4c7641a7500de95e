/* ZO kernels on the GPU: the same z(seed, tensor_id, i) and the same
 * arithmetic, operation for operation, as kernels/cpu/zo.c, so a stage on a
 * GPU and a stage on a CPU (or a GPU replaying a CPU's run log) compute the
 * same bits. The CUDA backend's zo_perturb / zo_update ops call these.
 *
 * Pointers are device memory, except seeds and g (host arrays, passed to the
 * kernel by value). stream is a cudaStream_t (NULL: the default stream). The
 * calls are asynchronous; launch errors come back as SQ_ERR_CUDA. */
#ifndef SPARQ_KERNELS_CUDA_ZO_H
#define SPARQ_KERNELS_CUDA_ZO_H

#include <stdint.h>

#include "sparq/status.h"
#include "sparq/tensor.h" /* sq_dtype_t */
#include "sparq/zo_rng.h" /* SQ_MAX_SPSA */

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i] = src[i] + scale * z(seed, tensor_id, offset + i) * mask[i], i < n;
 * dst may alias src; mask may be NULL (every element). */
sq_status_t sq_cuda_zo_perturb(const float *src, float *dst, int64_t n, uint64_t seed,
                               uint64_t tensor_id, int64_t offset, float scale,
                               const uint8_t *mask, void *stream);

/* The same, rounded once (to nearest even) into dst of dst_dtype: BF16
 * (__nv_bfloat16[n]) or F16 (__half[n]) — the perturbed weight formed
 * directly as a 16-bit GEMM operand, one pass instead of an fp32 copy and a
 * conversion — or F32. scale 0 converts src without drawing normals. */
sq_status_t sq_cuda_zo_perturb_cast(const float *src, void *dst, sq_dtype_t dst_dtype, int64_t n,
                                    uint64_t seed, uint64_t tensor_id, int64_t offset, float scale,
                                    const uint8_t *mask, void *stream);

/* w[i] -= lr * (sum_k g[k] z(seeds[k], tensor_id, i) * mask[i] / n + wd * w[i]),
 * accumulated over k ascending with fused multiply-adds, as on the CPU. */
sq_status_t sq_cuda_zo_update(float *w, int64_t numel, int n, const uint64_t *seeds,
                              const float *g, uint64_t tensor_id, float lr, float wd,
                              const uint8_t *mask, void *stream);

#ifdef __cplusplus
}
#endif
#endif
