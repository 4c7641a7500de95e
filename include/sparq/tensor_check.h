/* sparq/tensor_check.h — argument checks for backend ops, shared by every
 * backend. Each check records one message "<be>.<op>: <name> ..." (be is
 * "cpu", "cuda") so a failing call names the backend, the op and the
 * argument without the caller adding context. Not for hot loops: one call
 * per op argument. */
#ifndef SPARQ_TENSOR_CHECK_H
#define SPARQ_TENSOR_CHECK_H

#include "sparq/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bit set of accepted dtypes. */
#define SQ_DT(d) (1u << (unsigned)(d))
#define SQ_DT_FLOATS (SQ_DT(SQ_DTYPE_F32) | SQ_DT(SQ_DTYPE_F16) | SQ_DT(SQ_DTYPE_BF16))

/* Where a check is made: backend name, op name, the device its tensors
 * must live on. */
typedef struct sq_check_site {
    const char *be, *op;
    sq_device_t device;
} sq_check_site_t;

/* A 2-D (or higher, rows flattened) view on the site's device with a dtype
 * in `dtypes` and ld >= cols; rows/cols of -1 accept any size. */
sq_status_t sq_tensor_check_mat(const sq_check_site_t *at, const char *name, const sq_tensor_t *t,
                                int64_t rows, int64_t cols, unsigned dtypes);
/* A contiguous vector of n elements (any ndim, numel == n). */
sq_status_t sq_tensor_check_vec(const sq_check_site_t *at, const char *name, const sq_tensor_t *t,
                                int64_t n, unsigned dtypes);
/* A host <-> tensor copy: any dtype, ld >= cols, bytes == numel * size. */
sq_status_t sq_tensor_check_copy(const sq_check_site_t *at, const sq_tensor_t *t, const void *host,
                                 size_t bytes);
/* 1 when two matrix views share an element (column views of one buffer
 * with a common ld, like q|k|v, do not). */
int sq_tensor_overlaps(const sq_tensor_t *a, const sq_tensor_t *b);

#ifdef __cplusplus
}
#endif
#endif
