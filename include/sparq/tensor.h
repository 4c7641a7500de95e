/* sparq/tensor.h — tensor views, dtypes and the per-stage arena.
 *
 * Glossary of dimension letters used in shape comments across sparq:
 *   B batch (sequences), T tokens per sequence, N = B*T rows, C model width,
 *   F MLP width, H query heads, K key/value heads (GQA), D head dim,
 *   V vocabulary, L layers.
 *
 * An sq_tensor_t is a non-owning view: memory belongs to an arena or to a
 * mapped file. Tensors are row-major; `ld` is the distance in elements
 * between consecutive rows of the last two dimensions (== shape[ndim-1] for
 * a contiguous tensor, larger for a column slice of a wider buffer).
 */
#ifndef SPARQ_TENSOR_H
#define SPARQ_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SQ_MAX_DIMS 4

typedef enum sq_dtype {
    SQ_DTYPE_F32 = 0,
    SQ_DTYPE_F16,
    SQ_DTYPE_BF16,
    SQ_DTYPE_I8,
    SQ_DTYPE_I32,
    SQ_DTYPE_COUNT
} sq_dtype_t;

typedef enum sq_device {
    SQ_DEVICE_CPU = 0,
    SQ_DEVICE_CUDA
} sq_device_t;

typedef struct sq_tensor {
    void *data;
    sq_dtype_t dtype;
    sq_device_t device;
    int ndim;
    int64_t shape[SQ_MAX_DIMS];
    int64_t ld; /* elements between rows; 0 means contiguous (shape[ndim-1]) */
} sq_tensor_t;

size_t sq_dtype_size(sq_dtype_t dt);
const char *sq_dtype_name(sq_dtype_t dt);

/* Number of elements (product of shape). */
int64_t sq_tensor_numel(const sq_tensor_t *t);
/* Rows = product of all dims but the last; cols = last dim. */
int64_t sq_tensor_rows(const sq_tensor_t *t);
int64_t sq_tensor_cols(const sq_tensor_t *t);
/* Row stride in elements (ld, or cols when ld == 0). */
int64_t sq_tensor_ld(const sq_tensor_t *t);

/* A contiguous 1-D/2-D view helper. */
sq_tensor_t sq_tensor_2d(void *data, sq_dtype_t dt, int64_t rows, int64_t cols);
sq_tensor_t sq_tensor_1d(void *data, sq_dtype_t dt, int64_t n);
/* Rows [r0, r0+n) of a 2-D tensor. */
sq_tensor_t sq_tensor_rows_view(const sq_tensor_t *t, int64_t r0, int64_t n);
/* Columns [c0, c0+n) of a 2-D tensor (keeps ld). */
sq_tensor_t sq_tensor_cols_view(const sq_tensor_t *t, int64_t c0, int64_t n);

/* Scalar conversions (round-to-nearest-even for narrowing). */
float sq_f16_to_f32(uint16_t h);
uint16_t sq_f32_to_f16(float f);
float sq_bf16_to_f32(uint16_t h);
uint16_t sq_f32_to_bf16(float f);

/* Convert n elements of src (F32/F16/BF16) to fp32 dst. */
sq_status_t sq_convert_to_f32(const void *src, sq_dtype_t src_dt, float *dst, int64_t n);
/* Convert n fp32 elements to dst dtype (F32/F16/BF16). */
sq_status_t sq_convert_from_f32(const float *src, void *dst, sq_dtype_t dst_dt, int64_t n);

/* ---- arena: one allocation sized at load time, bump-allocated after ---- */

typedef struct sq_arena {
    uint8_t *base;
    size_t size; /* bytes reserved */
    size_t used; /* bytes handed out */
    size_t peak; /* high-water mark of used */
} sq_arena_t;

/* Reserve `size` bytes (host memory, 64-byte aligned). */
sq_status_t sq_arena_create(size_t size, sq_arena_t *arena);
void sq_arena_destroy(sq_arena_t *arena);
/* Hand out `bytes` aligned to 64; SQ_ERR_NOMEM (with message naming `what`)
 * when the arena is exhausted. */
sq_status_t sq_arena_alloc(sq_arena_t *arena, size_t bytes, const char *what, void **out);
/* Rewind to a mark taken earlier with arena->used (scratch reuse). */
void sq_arena_reset(sq_arena_t *arena, size_t mark);

/* Bytes a 64-byte-aligned allocation of `bytes` takes in an arena. */
static inline size_t sq_arena_footprint(size_t bytes)
{
    return (bytes + 63u) & ~(size_t)63u;
}

#ifdef __cplusplus
}
#endif
#endif
