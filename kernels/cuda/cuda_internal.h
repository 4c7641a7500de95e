/* kernels/cuda/cuda_internal.h — the CUDA backend's context, op entry points,
 * argument checks and error macros, shared by the .cu files of kernels/cuda.
 * Not a public header (C++ only: included from .cu files).
 *
 * Execution model: every op is queued on the backend's one non-blocking
 * stream and returns without waiting, except where a result lands in host
 * memory (cross_entropy's nll, to_host) or a host buffer must be consumed
 * before return (from_host). cuBLAS is bound to the same stream, so the
 * ops of one backend run in the order they were called. No op allocates
 * device memory: scratch is sized by reserve() and grows only.
 *
 * cuBLAS is not linked: sq_cublas_load() (cublas_load.cu) opens it when a
 * backend is created, and every cuBLAS call goes through sq_cublas.
 */
#ifndef SQ_KERNELS_CUDA_INTERNAL_H
#define SQ_KERNELS_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "sparq/backend.h"
#include "sparq/tensor_check.h"

/* Host staging slots for ids / positions / targets (see sq_cuda_upload_i32):
 * the host runs at most this many uploads ahead of the stream. */
#define SQ_CUDA_UPLOAD_SLOTS 4

/* cuBLAS workspace (NVIDIA's recommendation for Hopper). */
#define SQ_CUDA_CUBLAS_WORKSPACE (32u << 20)

/* Cap on the 16-bit copy of x that linear makes for F16/BF16 weights, in
 * elements; larger inputs are converted and multiplied in row chunks. */
#define SQ_CUDA_CONV_CAP ((int64_t)1 << 23)

/* Largest head_dim of attention (and rope pairs are bounded by it too). */
#define SQ_CUDA_MAX_HEAD_DIM 256
#define SQ_CUDA_ROPE_MAX_PAIRS 256 /* head_dim <= 512 */

/* The cuBLAS entry points sparq calls, typed from cublas_v2.h (GemmEx is
 * overloaded in C++: its C signature is spelled out, and cublas_load.cu
 * checks it against the header's). */
typedef struct sq_cublas_api_s {
    decltype(&cublasCreate) Create;
    decltype(&cublasDestroy) Destroy;
    decltype(&cublasSetStream) SetStream;
    decltype(&cublasSetWorkspace) SetWorkspace;
    cublasStatus_t (*GemmEx)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                             const void *, const void *, cudaDataType, int, const void *,
                             cudaDataType, int, const void *, void *, cudaDataType, int,
                             cublasComputeType_t, cublasGemmAlgo_t);
    decltype(&cublasGetStatusString) GetStatusString;
} sq_cublas_api_t;
extern sq_cublas_api_t sq_cublas; /* filled by sq_cublas_load() */

/* Load cuBLAS once per process (thread-safe); SQ_ERR_UNSUPPORTED naming the
 * library and the loader's error when it cannot be opened. */
sq_status_t sq_cublas_load(void);

typedef struct sq_cuda_ctx_s {
    int device;            /* CUDA ordinal, made current at every op */
    cudaStream_t stream;   /* non-blocking; every op is queued here */
    cublasHandle_t cublas; /* bound to stream, with the workspace below */
    void *cublas_ws;       /* [SQ_CUDA_CUBLAS_WORKSPACE] bytes */
    int tf32;              /* sq_backend_cuda_set_tf32: F32 GEMMs use TF32 */

    sq_backend_limits_t lim; /* limits of the last reserve() call */

    /* scratch from reserve(); `rows` = lim.max_rows */
    int32_t *d_i32;  /* [rows] ids / positions / targets on the device */
    float *d_nll;    /* [rows] cross_entropy result before its copy home */
    int32_t *h_stage; /* [SLOTS][rows] pinned host staging of uploads */
    cudaEvent_t stage_done[SQ_CUDA_UPLOAD_SLOTS]; /* slot's copy finished */
    int stage_next;   /* next slot to use */
    int64_t i32_cap;  /* elements of d_i32, d_nll and each staging slot */
    void *d_conv;     /* [conv_cap] 16-bit copy of x for F16/BF16 GEMMs */
    int64_t conv_cap; /* elements of d_conv */
} sq_cuda_ctx_t;

static inline sq_cuda_ctx_t *sq_cuda_ctx(sq_backend_t *be)
{
    return (sq_cuda_ctx_t *)be->ctx;
}

/* ---- error mapping (NCCL / llm.c style; every CUDA status goes through
 * these, naming the op and the call) ---- */

sq_status_t sq_cuda_error(const char *op, const char *call, cudaError_t err);
sq_status_t sq_cublas_error(const char *op, const char *call, cublasStatus_t st);

/* Return SQ_ERR_CUDA (SQ_ERR_NOMEM for allocation failures) from the
 * enclosing function when a CUDA runtime call fails. */
#define SQ_CUDA_TRY(op, call)                                                                      \
    do {                                                                                           \
        cudaError_t sq_cu_err_ = (call);                                                           \
        if (sq_cu_err_ != cudaSuccess) return sq_cuda_error((op), #call, sq_cu_err_);              \
    } while (0)

#define SQ_CUBLAS_TRY(op, call)                                                                    \
    do {                                                                                           \
        cublasStatus_t sq_cb_st_ = (call);                                                         \
        if (sq_cb_st_ != CUBLAS_STATUS_SUCCESS) return sq_cublas_error((op), #call, sq_cb_st_);    \
    } while (0)

/* After a <<<>>> launch: configuration errors are reported at once; faults
 * inside the kernel surface at the next synchronizing call. */
#define SQ_CUDA_LAUNCHED(op) SQ_CUDA_TRY((op), cudaGetLastError())

/* ---- argument checks (check.cu); `op` is "linear", "rope", ... and the
 * messages read "cuda.<op>: <arg> ..." ---- */

/* The backend is a CUDA backend; makes its device current for this thread. */
sq_status_t sq_cuda_begin(const char *op, sq_backend_t *be);
/* The shared checks of sparq/tensor_check.h, for device tensors. */
static inline sq_status_t sq_cuda_check_mat_dt(const char *op, const char *name,
                                               const sq_tensor_t *t, int64_t rows, int64_t cols,
                                               unsigned dtypes)
{
    const sq_check_site_t at = {"cuda", op, SQ_DEVICE_CUDA};
    return sq_tensor_check_mat(&at, name, t, rows, cols, dtypes);
}
static inline sq_status_t sq_cuda_check_vec_dt(const char *op, const char *name,
                                               const sq_tensor_t *t, int64_t n, unsigned dtypes)
{
    const sq_check_site_t at = {"cuda", op, SQ_DEVICE_CUDA};
    return sq_tensor_check_vec(&at, name, t, n, dtypes);
}
static inline sq_status_t sq_cuda_check_mat(const char *op, const char *name,
                                            const sq_tensor_t *t, int64_t rows, int64_t cols)
{
    return sq_cuda_check_mat_dt(op, name, t, rows, cols, SQ_DT(SQ_DTYPE_F32));
}
static inline sq_status_t sq_cuda_check_vec(const char *op, const char *name,
                                            const sq_tensor_t *t, int64_t n)
{
    return sq_cuda_check_vec_dt(op, name, t, n, SQ_DT(SQ_DTYPE_F32));
}
#define sq_cuda_overlaps sq_tensor_overlaps
/* `need` rows of host-fed scratch are reserved (SQ_ERR_INVALID_ARG if not). */
sq_status_t sq_cuda_check_rows(const char *op, const sq_cuda_ctx_t *ctx, int64_t need);

/* Copy n host int32 values into ctx->d_i32, in stream order, through a
 * pinned staging slot: `src` may be reused as soon as this returns. */
sq_status_t sq_cuda_upload_i32(sq_backend_t *be, const char *op, const int32_t *src, int64_t n);

/* ---- launch helpers ---- */

/* Grid for the 2-D row/column loops of the element-wise kernels: x covers
 * the columns, y the rows, each grid-strided past the limits. */
static inline dim3 sq_cuda_grid_2d(int64_t rows, int64_t cols, int threads)
{
    int64_t gx = (cols + threads - 1) / threads, gy = rows;
    if (gx > 65535) gx = 65535;
    if (gy > 65535) gy = 65535;
    if (gx < 1) gx = 1;
    if (gy < 1) gy = 1;
    return dim3((unsigned)gx, (unsigned)gy, 1);
}

/* ---- ops (one file per family) ---- */

sq_status_t sq_cuda_linear(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *w,
                           sq_wlayout_t layout, const sq_tensor_t *bias, int accumulate,
                           sq_tensor_t *y);
sq_status_t sq_cuda_layernorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                              const sq_tensor_t *b, float eps, sq_tensor_t *y);
sq_status_t sq_cuda_rmsnorm(sq_backend_t *be, const sq_tensor_t *x, const sq_tensor_t *g,
                            float eps, sq_tensor_t *y);
sq_status_t sq_cuda_activation(sq_backend_t *be, sq_act_t act, sq_tensor_t *x);
sq_status_t sq_cuda_glu(sq_backend_t *be, sq_act_t act, const sq_tensor_t *gate,
                        const sq_tensor_t *up, sq_tensor_t *y);
sq_status_t sq_cuda_add(sq_backend_t *be, const sq_tensor_t *x, sq_tensor_t *y);
sq_status_t sq_cuda_axpby(sq_backend_t *be, float alpha, const sq_tensor_t *x, float beta,
                          sq_tensor_t *y);
sq_status_t sq_cuda_embedding(sq_backend_t *be, const sq_tensor_t *table, const int32_t *ids,
                              int64_t n, int accumulate, sq_tensor_t *y);
sq_status_t sq_cuda_rope(sq_backend_t *be, sq_rope_style_t style, sq_tensor_t *x, int n_heads,
                         int head_dim, const int32_t *pos, float theta);
sq_status_t sq_cuda_attention(sq_backend_t *be, const sq_tensor_t *q, const sq_tensor_t *k,
                              const sq_tensor_t *v, int B, int T, int n_heads, int n_kv_heads,
                              int head_dim, float scale, sq_tensor_t *out);
sq_status_t sq_cuda_cross_entropy(sq_backend_t *be, const sq_tensor_t *logits,
                                  const int32_t *targets, float *nll);
sq_status_t sq_cuda_zo_perturb_op(sq_backend_t *be, const sq_tensor_t *src, uint64_t seed,
                                  uint64_t tensor_id, int64_t offset, float scale,
                                  const uint8_t *mask, sq_tensor_t *dst);
sq_status_t sq_cuda_zo_update_op(sq_backend_t *be, sq_tensor_t *w, int n, const uint64_t *seeds,
                                 const float *g, uint64_t tensor_id, float lr, float wd,
                                 const uint8_t *mask);

/* Lets the attention kernels use more than 48 KiB of shared memory on the
 * current device (called once per backend at create). */
sq_status_t sq_cuda_attention_setup(void);

#endif
