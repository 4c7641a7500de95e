/* Argument checks shared by the CPU ops. Each check records one message of
 * the form "cpu.<op>: <arg> ..." so a failing call names the op and the
 * argument without the caller adding context. */
#include <inttypes.h>
#include <stdint.h>

#include "cpu_internal.h"

static sq_status_t check_common(const char *op, const char *name, const sq_tensor_t *t)
{
    if (!t) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s is NULL", op, name);
    if (t->device != SQ_DEVICE_CPU)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s is not in host memory", op, name);
    if (t->dtype != SQ_DTYPE_F32)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.%s: %s is %s; the CPU backend computes in F32 only "
                            "(convert weights to F32 at load)",
                            op, name, sq_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > SQ_MAX_DIMS)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s has ndim %d", op, name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s has negative dim %d (%" PRId64 ")",
                                op, name, i, t->shape[i]);
    return SQ_OK;
}

sq_status_t sq_cpu_check_mat(const char *op, const char *name, const sq_tensor_t *t, int64_t rows,
                             int64_t cols)
{
    SQ_TRY(check_common(op, name, t));
    if (t->ndim < 2)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s must be a 2-D [rows, cols] view", op,
                            name);
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    if (t->ld != 0 && t->ld < c)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.%s: %s has ld %" PRId64 " smaller than its %" PRId64 " cols", op,
                            name, t->ld, c);
    if (rows >= 0 && r != rows)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.%s: %s has %" PRId64 " rows, expected %" PRId64, op, name, r,
                            rows);
    if (cols >= 0 && c != cols)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.%s: %s has %" PRId64 " cols, expected %" PRId64, op, name, c,
                            cols);
    if (r > 0 && c > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s has no data", op, name);
    return SQ_OK;
}

sq_status_t sq_cpu_check_vec(const char *op, const char *name, const sq_tensor_t *t, int64_t n)
{
    SQ_TRY(check_common(op, name, t));
    int64_t numel = sq_tensor_numel(t);
    if (numel != n)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.%s: %s has %" PRId64 " elements, expected %" PRId64, op, name,
                            numel, n);
    if (t->ld != 0 && t->ld != sq_tensor_cols(t) && sq_tensor_rows(t) > 1)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s must be contiguous", op, name);
    if (n > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: %s has no data", op, name);
    return SQ_OK;
}

sq_status_t sq_cpu_check_backend(const char *op, const sq_backend_t *be)
{
    if (!be || !be->ctx) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: backend is NULL", op);
    return SQ_OK;
}

/* Byte span [lo, hi) a matrix view touches; empty views span nothing. */
static void span(const sq_tensor_t *t, uintptr_t *lo, uintptr_t *hi)
{
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    *lo = (uintptr_t)t->data;
    *hi = *lo;
    if (r > 0 && c > 0)
        *hi = *lo + (uintptr_t)(((r - 1) * sq_tensor_ld(t) + c) * (int64_t)sizeof(float));
}

int sq_cpu_overlaps(const sq_tensor_t *a, const sq_tensor_t *b)
{
    uintptr_t alo, ahi, blo, bhi;
    span(a, &alo, &ahi);
    span(b, &blo, &bhi);
    if (!(alo < bhi && blo < ahi)) return 0;
    /* Column views of one buffer (q|k|v, gate|up) interleave their spans
     * without sharing an element: with a common ld their columns are
     * disjoint arcs modulo ld. */
    int64_t ld = sq_tensor_ld(a);
    if (ld != sq_tensor_ld(b) || (alo - blo) % sizeof(float) != 0) return 1;
    int64_t ca = sq_tensor_cols(a), cb = sq_tensor_cols(b);
    int64_t d = (int64_t)(blo - alo) / (int64_t)sizeof(float); /* b's start minus a's, mod ld */
    int64_t ab = ((d % ld) + ld) % ld, ba = (ld - ab) % ld;
    return ab < ca || ba < cb;
}
