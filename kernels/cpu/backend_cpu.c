/* The CPU backend: lifecycle, scratch and host copies; the ops live in the
 * other files of kernels/cpu (gemm.c, norm.c, elementwise.c, embedding.c,
 * rope.c, attention.c, softmax.c). */
#include <cblas.h>
#include <inttypes.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"
#include "cpu_zo.h"

static sq_status_t cpu_reserve(sq_backend_t *be, const sq_backend_limits_t *lim)
{
    SQ_TRY(sq_cpu_check_backend("reserve", be));
    if (!lim) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.reserve: limits are NULL");
    if (lim->max_rows < 0 || lim->max_seq < 0 || lim->max_heads < 0 || lim->max_cols < 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.reserve: negative limit (rows %" PRId64 ", seq %" PRId64
                            ", heads %" PRId64 ", cols %" PRId64 ")",
                            lim->max_rows, lim->max_seq, lim->max_heads, lim->max_cols);
    if (lim->max_seq > INT32_MAX)
        return sq_error_set(SQ_ERR_RANGE, "cpu.reserve: max_seq %" PRId64 " exceeds int range",
                            lim->max_seq);
    sq_cpu_ctx_t *ctx = sq_cpu_ctx(be);
    if (lim->max_seq <= ctx->attn_max_seq) return SQ_OK; /* grows only */

    /* one score block per thread; slots padded to a cache line so threads
     * never share one */
    size_t slot = (size_t)SQ_CPU_ATTN_BLOCK * (size_t)lim->max_seq;
    slot = (slot + 15u) & ~(size_t)15u;
    size_t bytes = slot * sizeof(float) * (size_t)ctx->nthreads;
    float *p = aligned_alloc(64, bytes);
    if (!p)
        return sq_error_set(
            SQ_ERR_NOMEM, "cpu.reserve: %zu bytes of attention scratch (T=%" PRId64 ", %d threads)",
            bytes, lim->max_seq, ctx->nthreads);
    free(ctx->attn_scratch);
    ctx->attn_scratch = p;
    ctx->attn_slot_floats = slot;
    ctx->attn_max_seq = lim->max_seq;
    return SQ_OK;
}

/* Checks for the copies, which take any dtype (ids travel as I32). */
static sq_status_t check_copy(const char *op, const sq_tensor_t *t, const void *host, size_t bytes)
{
    const sq_check_site_t at = {"cpu", op, SQ_DEVICE_CPU};
    return sq_tensor_check_copy(&at, t, host, bytes);
}

/* Host buffers are packed; tensors may be strided views. */
static sq_status_t cpu_to_host(sq_backend_t *be, const sq_tensor_t *src, void *dst, size_t bytes)
{
    SQ_TRY(sq_cpu_check_backend("to_host", be));
    SQ_TRY(check_copy("to_host", src, dst, bytes));
    if (bytes == 0) return SQ_OK;
    size_t es = sq_dtype_size(src->dtype);
    int64_t rows = sq_tensor_rows(src), cols = sq_tensor_cols(src), ld = sq_tensor_ld(src);
    if (ld == cols || rows == 1) {
        memcpy(dst, src->data, bytes);
        return SQ_OK;
    }
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst + (size_t)(r * cols) * es,
               (const char *)src->data + (size_t)(r * ld) * es, (size_t)cols * es);
    return SQ_OK;
}

static sq_status_t cpu_from_host(sq_backend_t *be, const void *src, size_t bytes, sq_tensor_t *dst)
{
    SQ_TRY(sq_cpu_check_backend("from_host", be));
    SQ_TRY(check_copy("from_host", dst, src, bytes));
    if (bytes == 0) return SQ_OK;
    size_t es = sq_dtype_size(dst->dtype);
    int64_t rows = sq_tensor_rows(dst), cols = sq_tensor_cols(dst), ld = sq_tensor_ld(dst);
    if (ld == cols || rows == 1) {
        memcpy(dst->data, src, bytes);
        return SQ_OK;
    }
    for (int64_t r = 0; r < rows; r++)
        memcpy((char *)dst->data + (size_t)(r * ld) * es,
               (const char *)src + (size_t)(r * cols) * es, (size_t)cols * es);
    return SQ_OK;
}

static sq_status_t cpu_alloc(sq_backend_t *be, size_t bytes, const char *what, void **out)
{
    SQ_TRY(sq_cpu_check_backend("alloc", be));
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.alloc: out is NULL");
    void *p = aligned_alloc(64, (bytes + 63u) & ~(size_t)63u);
    if (!p && bytes)
        return sq_error_set(SQ_ERR_NOMEM, "cpu.alloc: %zu bytes for %s", bytes,
                            what ? what : "a buffer");
    *out = p;
    return SQ_OK;
}

static void cpu_free(sq_backend_t *be, void *p)
{
    (void)be;
    free(p);
}

static sq_status_t cpu_sync(sq_backend_t *be)
{
    return sq_cpu_check_backend("sync", be);
}

static void cpu_destroy(sq_backend_t *be)
{
    if (!be) return;
    sq_cpu_ctx_t *ctx = sq_cpu_ctx(be);
    if (ctx) free(ctx->attn_scratch);
    free(ctx);
    free(be);
}

static const sq_backend_ops_t cpu_ops = {
    .name = "cpu",
    .device = SQ_DEVICE_CPU,
    .reserve = cpu_reserve,
    .linear = sq_cpu_linear,
    .layernorm = sq_cpu_layernorm,
    .rmsnorm = sq_cpu_rmsnorm,
    .activation = sq_cpu_activation,
    .glu = sq_cpu_glu,
    .add = sq_cpu_add,
    .axpby = sq_cpu_axpby,
    .embedding = sq_cpu_embedding,
    .rope = sq_cpu_rope,
    .attention = sq_cpu_attention,
    .cross_entropy = sq_cpu_cross_entropy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .sync = cpu_sync,
    .to_host = cpu_to_host,
    .from_host = cpu_from_host,
    .zo_perturb = sq_cpu_zo_perturb,
    .zo_update = sq_cpu_zo_update,
    .destroy = cpu_destroy,
};

sq_status_t sq_backend_cpu_create(int nthreads, sq_backend_t **out)
{
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu backend: out is NULL");
    if (nthreads <= 0) nthreads = omp_get_max_threads();
    if (nthreads < 1) nthreads = 1;

    sq_backend_t *be = calloc(1, sizeof *be);
    sq_cpu_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return sq_error_set(SQ_ERR_NOMEM, "cpu backend: context allocation failed");
    }
    ctx->nthreads = nthreads;
    /* GEMMs are split across our OpenMP team and each piece runs OpenBLAS on
     * the calling thread: OpenBLAS's own pthread pool spinning next to the
     * OpenMP team made an alternating gemm+elementwise step 2.3x slower on 2
     * cores. This setting is process-wide. */
    openblas_set_num_threads(1);
    be->ops = &cpu_ops;
    be->ctx = ctx;
    *out = be;
    return SQ_OK;
}
