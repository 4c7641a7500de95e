// The CUDA backend: lifecycle, scratch, memory and host copies; the ops live
// in the other files of kernels/cuda (gemm.cu, norm.cu, elementwise.cu,
// embedding.cu, rope.cu, attention.cu, softmax.cu, zo_ops.cu).
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

// ---- scratch ----

// Frees the reserve()d scratch; the stream must be idle.
static void free_scratch(sq_cuda_ctx_t *ctx)
{
    cudaFree(ctx->d_i32);
    cudaFree(ctx->d_nll);
    cudaFreeHost(ctx->h_stage);
    cudaFree(ctx->d_conv);
    ctx->d_i32 = NULL;
    ctx->d_nll = NULL;
    ctx->h_stage = NULL;
    ctx->d_conv = NULL;
    ctx->i32_cap = 0;
    ctx->conv_cap = 0;
}

static sq_status_t cuda_reserve(sq_backend_t *be, const sq_backend_limits_t *lim)
{
    SQ_TRY(sq_cuda_begin("reserve", be));
    if (!lim) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.reserve: limits are NULL");
    if (lim->max_rows < 0 || lim->max_seq < 0 || lim->max_heads < 0 || lim->max_cols < 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.reserve: negative limit (rows %" PRId64 ", seq %" PRId64
                            ", heads %" PRId64 ", cols %" PRId64 ")",
                            lim->max_rows, lim->max_seq, lim->max_heads, lim->max_cols);
    if (lim->max_rows > INT32_MAX || lim->max_cols > INT32_MAX)
        return sq_error_set(SQ_ERR_RANGE,
                            "cuda.reserve: max_rows %" PRId64 " or max_cols %" PRId64
                            " exceeds int range",
                            lim->max_rows, lim->max_cols);
    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);

    // grows only: keep what is there unless a limit went up
    int64_t rows = lim->max_rows > ctx->i32_cap ? lim->max_rows : ctx->i32_cap;
    int64_t conv = lim->max_rows * lim->max_cols;
    if (conv > SQ_CUDA_CONV_CAP) conv = SQ_CUDA_CONV_CAP;
    if (conv < lim->max_cols) conv = lim->max_cols; // at least one full row
    if (conv < ctx->conv_cap) conv = ctx->conv_cap;
    if (rows == ctx->i32_cap && conv == ctx->conv_cap) {
        ctx->lim = *lim;
        return SQ_OK;
    }

    // allocate the new set first, so a failure leaves the old one usable
    int32_t *d_i32 = NULL, *h_stage = NULL;
    float *d_nll = NULL;
    void *d_conv = NULL;
    size_t rbytes = (size_t)(rows > 0 ? rows : 1) * sizeof(int32_t);
    const char *what = "ids";
    cudaError_t err = cudaMalloc((void **)&d_i32, rbytes);
    if (err == cudaSuccess) {
        what = "nll";
        err = cudaMalloc((void **)&d_nll, rbytes);
    }
    if (err == cudaSuccess) {
        what = "pinned host staging";
        err = cudaMallocHost((void **)&h_stage, rbytes * SQ_CUDA_UPLOAD_SLOTS);
    }
    if (err == cudaSuccess) {
        what = "16-bit x copy";
        err = cudaMalloc(&d_conv, (size_t)(conv > 0 ? conv : 1) * 2);
    }
    if (err != cudaSuccess) {
        cudaGetLastError();
        cudaFree(d_i32);
        cudaFree(d_nll);
        cudaFreeHost(h_stage);
        cudaFree(d_conv);
        return sq_error_set(err == cudaErrorMemoryAllocation ? SQ_ERR_NOMEM : SQ_ERR_CUDA,
                            "cuda.reserve: allocating the %s scratch (rows %" PRId64
                            ", conversion elements %" PRId64 "): %s",
                            what, rows, conv, cudaGetErrorString(err));
    }
    // queued ops may still read the old scratch, and the staging slots may
    // still be the source of a copy
    sq_status_t st = SQ_OK;
    cudaError_t serr = cudaStreamSynchronize(ctx->stream);
    if (serr != cudaSuccess) st = sq_cuda_error("reserve", "cudaStreamSynchronize", serr);
    free_scratch(ctx);
    ctx->d_i32 = d_i32;
    ctx->d_nll = d_nll;
    ctx->h_stage = h_stage;
    ctx->i32_cap = rows;
    ctx->d_conv = d_conv;
    ctx->conv_cap = conv;
    ctx->stage_next = 0;
    ctx->lim = *lim;
    return st;
}

sq_status_t sq_cuda_upload_i32(sq_backend_t *be, const char *op, const int32_t *src, int64_t n)
{
    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    SQ_TRY(sq_cuda_check_rows(op, ctx, n));
    if (n == 0) return SQ_OK;
    // A pinned slot is reused only once the copy that last read it is done;
    // with SQ_CUDA_UPLOAD_SLOTS slots the host may run that many uploads
    // ahead of the stream. (Copying straight from the caller's array would
    // be asynchronous, hence unsafe, if that array happened to be pinned.)
    int slot = ctx->stage_next;
    ctx->stage_next = (slot + 1) % SQ_CUDA_UPLOAD_SLOTS;
    SQ_CUDA_TRY(op, cudaEventSynchronize(ctx->stage_done[slot]));
    int32_t *h = ctx->h_stage + (size_t)slot * (size_t)ctx->i32_cap;
    memcpy(h, src, (size_t)n * sizeof(int32_t));
    SQ_CUDA_TRY(op, cudaMemcpyAsync(ctx->d_i32, h, (size_t)n * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, ctx->stream));
    SQ_CUDA_TRY(op, cudaEventRecord(ctx->stage_done[slot], ctx->stream));
    return SQ_OK;
}

// ---- memory ----

static sq_status_t cuda_alloc(sq_backend_t *be, size_t bytes, const char *what, void **out)
{
    SQ_TRY(sq_cuda_begin("alloc", be));
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.alloc: out is NULL");
    if (bytes == 0) {
        *out = NULL;
        return SQ_OK;
    }
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes); // 256-byte aligned
    if (err != cudaSuccess) {
        cudaGetLastError();
        return sq_error_set(err == cudaErrorMemoryAllocation ? SQ_ERR_NOMEM : SQ_ERR_CUDA,
                            "cuda.alloc: %zu bytes for %s: %s", bytes, what ? what : "a buffer",
                            cudaGetErrorString(err));
    }
    *out = p;
    return SQ_OK;
}

static void cuda_free(sq_backend_t *be, void *p)
{
    if (!p || sq_cuda_begin("free", be) != SQ_OK) return;
    // ops queued on our stream may still use p
    cudaStreamSynchronize(sq_cuda_ctx(be)->stream);
    cudaFree(p);
}

static sq_status_t cuda_sync(sq_backend_t *be)
{
    SQ_TRY(sq_cuda_begin("sync", be));
    SQ_CUDA_TRY("sync", cudaStreamSynchronize(sq_cuda_ctx(be)->stream));
    return SQ_OK;
}

// ---- host copies ----

// Checks for the copies, which take any dtype (ids travel as I32).
static sq_status_t check_copy(const char *op, const sq_tensor_t *t, const void *host,
                              size_t bytes)
{
    const sq_check_site_t at = {"cuda", op, SQ_DEVICE_CUDA};
    return sq_tensor_check_copy(&at, t, host, bytes);
}

// Host buffers are packed; tensors may be strided views. Waits for the copy
// (and so for every op queued before it).
static sq_status_t cuda_to_host(sq_backend_t *be, const sq_tensor_t *src, void *dst, size_t bytes)
{
    SQ_TRY(sq_cuda_begin("to_host", be));
    SQ_TRY(check_copy("to_host", src, dst, bytes));
    if (bytes == 0) return SQ_OK;
    cudaStream_t s = sq_cuda_ctx(be)->stream;
    size_t es = sq_dtype_size(src->dtype);
    int64_t rows = sq_tensor_rows(src), cols = sq_tensor_cols(src), ld = sq_tensor_ld(src);
    if (ld == cols || rows == 1)
        SQ_CUDA_TRY("to_host", cudaMemcpyAsync(dst, src->data, bytes, cudaMemcpyDeviceToHost, s));
    else
        SQ_CUDA_TRY("to_host", cudaMemcpy2DAsync(dst, (size_t)cols * es, src->data, (size_t)ld * es,
                                                 (size_t)cols * es, (size_t)rows,
                                                 cudaMemcpyDeviceToHost, s));
    SQ_CUDA_TRY("to_host", cudaStreamSynchronize(s));
    return SQ_OK;
}

// Synchronizes before returning, so the caller may reuse `src` at once
// whether it is pageable or pinned (a pinned source would otherwise still be
// in flight).
static sq_status_t cuda_from_host(sq_backend_t *be, const void *src, size_t bytes,
                                  sq_tensor_t *dst)
{
    SQ_TRY(sq_cuda_begin("from_host", be));
    SQ_TRY(check_copy("from_host", dst, src, bytes));
    if (bytes == 0) return SQ_OK;
    cudaStream_t s = sq_cuda_ctx(be)->stream;
    size_t es = sq_dtype_size(dst->dtype);
    int64_t rows = sq_tensor_rows(dst), cols = sq_tensor_cols(dst), ld = sq_tensor_ld(dst);
    if (ld == cols || rows == 1)
        SQ_CUDA_TRY("from_host",
                    cudaMemcpyAsync(dst->data, src, bytes, cudaMemcpyHostToDevice, s));
    else
        SQ_CUDA_TRY("from_host",
                    cudaMemcpy2DAsync(dst->data, (size_t)ld * es, src, (size_t)cols * es,
                                      (size_t)cols * es, (size_t)rows, cudaMemcpyHostToDevice, s));
    SQ_CUDA_TRY("from_host", cudaStreamSynchronize(s));
    return SQ_OK;
}

// ---- lifecycle ----

static void cuda_destroy(sq_backend_t *be)
{
    if (!be) return;
    sq_cuda_ctx_t *ctx = sq_cuda_ctx(be);
    if (ctx) {
        cudaSetDevice(ctx->device);
        if (ctx->stream) cudaStreamSynchronize(ctx->stream);
        free_scratch(ctx);
        if (ctx->cublas) sq_cublas.Destroy(ctx->cublas);
        cudaFree(ctx->cublas_ws);
        for (int i = 0; i < SQ_CUDA_UPLOAD_SLOTS; i++)
            if (ctx->stage_done[i]) cudaEventDestroy(ctx->stage_done[i]);
        if (ctx->stream) cudaStreamDestroy(ctx->stream);
        cudaGetLastError();
    }
    free(ctx);
    free(be);
}

static const sq_backend_ops_t cuda_ops = {
    .name = "cuda",
    .device = SQ_DEVICE_CUDA,
    .reserve = cuda_reserve,
    .linear = sq_cuda_linear,
    .layernorm = sq_cuda_layernorm,
    .rmsnorm = sq_cuda_rmsnorm,
    .activation = sq_cuda_activation,
    .glu = sq_cuda_glu,
    .add = sq_cuda_add,
    .axpby = sq_cuda_axpby,
    .embedding = sq_cuda_embedding,
    .rope = sq_cuda_rope,
    .attention = sq_cuda_attention,
    .cross_entropy = sq_cuda_cross_entropy,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .sync = cuda_sync,
    .to_host = cuda_to_host,
    .from_host = cuda_from_host,
    .zo_perturb = sq_cuda_zo_perturb_op,
    .zo_update = sq_cuda_zo_update_op,
    .destroy = cuda_destroy,
};

// Context setup after the device is current; on failure the caller's
// cuda_destroy() releases whatever was made.
static sq_status_t ctx_init(sq_cuda_ctx_t *ctx)
{
    SQ_CUDA_TRY("create", cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    for (int i = 0; i < SQ_CUDA_UPLOAD_SLOTS; i++)
        SQ_CUDA_TRY("create",
                    cudaEventCreateWithFlags(&ctx->stage_done[i], cudaEventDisableTiming));
    SQ_TRY(sq_cublas_load());
    SQ_CUBLAS_TRY("create", sq_cublas.Create(&ctx->cublas));
    // cublasSetStream resets the workspace to cuBLAS's own pool, so the
    // workspace is set after it; a fixed one keeps cuBLAS from allocating
    // inside an op
    SQ_CUBLAS_TRY("create", sq_cublas.SetStream(ctx->cublas, ctx->stream));
    SQ_CUDA_TRY("create", cudaMalloc(&ctx->cublas_ws, SQ_CUDA_CUBLAS_WORKSPACE));
    SQ_CUBLAS_TRY("create",
                  sq_cublas.SetWorkspace(ctx->cublas, ctx->cublas_ws, SQ_CUDA_CUBLAS_WORKSPACE));
    SQ_TRY(sq_cuda_attention_setup());
    return SQ_OK;
}

extern "C" sq_status_t sq_backend_cuda_create(int device, sq_backend_t **out)
{
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "cuda backend: out is NULL");
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) {
        cudaGetLastError(); // clear the "no device" error
        return sq_error_set(SQ_ERR_UNSUPPORTED, "cuda backend: no CUDA device visible (%s)",
                            err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    }
    if (device < 0 || device >= n)
        return sq_error_set(SQ_ERR_RANGE, "cuda backend: device %d out of range (%d visible)",
                            device, n);
    SQ_CUDA_TRY("create", cudaSetDevice(device));

    sq_backend_t *be = (sq_backend_t *)calloc(1, sizeof *be);
    sq_cuda_ctx_t *ctx = (sq_cuda_ctx_t *)calloc(1, sizeof *ctx);
    if (!be || !ctx) {
        free(be);
        free(ctx);
        return sq_error_set(SQ_ERR_NOMEM, "cuda backend: context allocation failed");
    }
    ctx->device = device;
    be->ops = &cuda_ops;
    be->ctx = ctx;
    sq_status_t st = ctx_init(ctx);
    if (st != SQ_OK) {
        cuda_destroy(be);
        return sq_error_push(st, "cuda backend on device %d", device);
    }
    *out = be;
    return SQ_OK;
}

// TF32 trades ~3 decimal digits of the F32 GEMMs for speed; off by default
// so results stay close to the CPU backend's (train.gemm: tf32 turns it on).
extern "C" sq_status_t sq_backend_cuda_set_tf32(sq_backend_t *be, int on)
{
    if (!be || !be->ctx || be->ops != &cuda_ops)
        return sq_error_set(SQ_ERR_INVALID_ARG, "tf32: not a CUDA backend");
    sq_cuda_ctx(be)->tf32 = on != 0;
    return SQ_OK;
}

extern "C" void *sq_backend_cuda_stream(sq_backend_t *be)
{
    if (!be || !be->ctx || be->ops != &cuda_ops) return NULL;
    return (void *)sq_cuda_ctx(be)->stream;
}
