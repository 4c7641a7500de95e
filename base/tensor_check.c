/* Argument checks for backend ops (sparq/tensor_check.h). */
#include "sparq/tensor_check.h"

#include <inttypes.h>

static const char *device_memory(sq_device_t d)
{
    return d == SQ_DEVICE_CPU ? "host memory" : "device memory";
}

static sq_status_t check_common(const sq_check_site_t *at, const char *name, const sq_tensor_t *t,
                                unsigned dtypes)
{
    if (!t) return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s is NULL", at->be, at->op, name);
    if (t->device != at->device)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s is not in %s (device field %d)", at->be,
                            at->op, name, device_memory(at->device), (int)t->device);
    if (t->dtype < 0 || t->dtype >= SQ_DTYPE_COUNT || !(dtypes & SQ_DT(t->dtype)))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "%s.%s: %s has dtype %s, which this op does not take (%s)", at->be,
                            at->op, name,
                            t->dtype >= 0 && t->dtype < SQ_DTYPE_COUNT ? sq_dtype_name(t->dtype)
                                                                       : "(invalid)",
                            dtypes == SQ_DT(SQ_DTYPE_F32) ? "F32 only" : "F32/F16/BF16");
    if (t->ndim < 1 || t->ndim > SQ_MAX_DIMS)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s has ndim %d", at->be, at->op, name,
                            t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s has negative dim %d (%" PRId64 ")",
                                at->be, at->op, name, i, t->shape[i]);
    return SQ_OK;
}

sq_status_t sq_tensor_check_mat(const sq_check_site_t *at, const char *name, const sq_tensor_t *t,
                                int64_t rows, int64_t cols, unsigned dtypes)
{
    SQ_TRY(check_common(at, name, t, dtypes));
    if (t->ndim < 2)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s must be a 2-D [rows, cols] view",
                            at->be, at->op, name);
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    if (t->ld != 0 && t->ld < c)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "%s.%s: %s has ld %" PRId64 " smaller than its %" PRId64 " cols",
                            at->be, at->op, name, t->ld, c);
    if (rows >= 0 && r != rows)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "%s.%s: %s has %" PRId64 " rows, expected %" PRId64, at->be, at->op,
                            name, r, rows);
    if (cols >= 0 && c != cols)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "%s.%s: %s has %" PRId64 " cols, expected %" PRId64, at->be, at->op,
                            name, c, cols);
    if (r > 0 && c > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s has no data", at->be, at->op, name);
    return SQ_OK;
}

sq_status_t sq_tensor_check_vec(const sq_check_site_t *at, const char *name, const sq_tensor_t *t,
                                int64_t n, unsigned dtypes)
{
    SQ_TRY(check_common(at, name, t, dtypes));
    int64_t numel = sq_tensor_numel(t);
    if (numel != n)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "%s.%s: %s has %" PRId64 " elements, expected %" PRId64, at->be,
                            at->op, name, numel, n);
    if (t->ld != 0 && t->ld != sq_tensor_cols(t) && sq_tensor_rows(t) > 1)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s must be contiguous", at->be, at->op,
                            name);
    if (n > 0 && !t->data)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %s has no data", at->be, at->op, name);
    return SQ_OK;
}

sq_status_t sq_tensor_check_copy(const sq_check_site_t *at, const sq_tensor_t *t, const void *host,
                                 size_t bytes)
{
    const unsigned any = SQ_DT(SQ_DTYPE_COUNT) - 1u;
    SQ_TRY(check_common(at, "tensor", t, any));
    int64_t cols = sq_tensor_cols(t);
    if (t->ld != 0 && t->ld < cols)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: ld %" PRId64 " smaller than %" PRId64 " cols",
                            at->be, at->op, t->ld, cols);
    size_t want = (size_t)sq_tensor_numel(t) * sq_dtype_size(t->dtype);
    if (bytes != want)
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: %zu bytes given for a %s tensor of %zu bytes",
                            at->be, at->op, bytes, sq_dtype_name(t->dtype), want);
    if (want > 0 && (!host || !t->data))
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s.%s: NULL buffer", at->be, at->op);
    return SQ_OK;
}

/* Byte span [lo, hi) a matrix view touches; empty views span nothing. */
static void span(const sq_tensor_t *t, uintptr_t *lo, uintptr_t *hi)
{
    int64_t r = sq_tensor_rows(t), c = sq_tensor_cols(t);
    int64_t es = (int64_t)sq_dtype_size(t->dtype);
    *lo = (uintptr_t)t->data;
    *hi = *lo;
    if (r > 0 && c > 0) *hi = *lo + (uintptr_t)(((r - 1) * sq_tensor_ld(t) + c) * es);
}

int sq_tensor_overlaps(const sq_tensor_t *a, const sq_tensor_t *b)
{
    uintptr_t alo, ahi, blo, bhi;
    span(a, &alo, &ahi);
    span(b, &blo, &bhi);
    if (!(alo < bhi && blo < ahi)) return 0;
    /* Column views of one buffer (q|k|v, gate|up) interleave their spans
     * without sharing an element: with a common ld and element size their
     * columns are disjoint arcs modulo ld. */
    size_t es = sq_dtype_size(a->dtype);
    int64_t ld = sq_tensor_ld(a);
    if (es != sq_dtype_size(b->dtype) || ld != sq_tensor_ld(b) || ld <= 0 ||
        ((blo > alo ? blo - alo : alo - blo) % es) != 0)
        return 1;
    int64_t ca = sq_tensor_cols(a), cb = sq_tensor_cols(b);
    int64_t d = blo >= alo ? (int64_t)((blo - alo) / es) : -(int64_t)((alo - blo) / es);
    int64_t ab = ((d % ld) + ld) % ld, ba = (ld - ab) % ld;
    return ab < ca || ba < cb;
}
