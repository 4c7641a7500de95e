/* CPU zeroth-order ops (zo.c); wired into the CPU backend vtable. */
#ifndef SPARQ_KERNELS_CPU_ZO_H
#define SPARQ_KERNELS_CPU_ZO_H

#include "sparq/backend.h"

sq_status_t sq_cpu_zo_perturb(sq_backend_t *be, const sq_tensor_t *src, uint64_t seed,
                              uint64_t tensor_id, int64_t offset, float scale,
                              const uint8_t *mask, sq_tensor_t *dst);
sq_status_t sq_cpu_zo_update(sq_backend_t *be, sq_tensor_t *w, int n, const uint64_t *seeds,
                             const float *g, uint64_t tensor_id, float lr, float wd,
                             const uint8_t *mask);

#endif
