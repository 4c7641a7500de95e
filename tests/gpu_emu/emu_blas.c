/* Naive CPU stand-ins for the cuBLAS / cuSPARSE calls of sparq and its
 * benchmarks, with their documented semantics (cuBLAS column-major). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "cublas_v2.h"
#include "cusparse.h"
#include "sq_emu_half.h"
struct emu_spmat { int64_t r, c, nnz; int32_t *rp, *ci; float *v; };
struct emu_dnmat { int64_t r, c, ld; float *v; cusparseOrder_t o; };
/* A handle remembers its stream: GEMMs are queued there (emu.cpp) and run
 * when the stream gets there; alpha and beta are host pointers (the default
 * pointer mode), read at the call as cuBLAS does. */
struct cublasContext { cudaStream_t s; };
cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = calloc(1, sizeof **h);
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return 0; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { h->s = s; return 0; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) { (void)h; (void)ws; (void)bytes; return 0; }
const char *cublasGetStatusString(cublasStatus_t s) { return s ? "emulated cuBLAS error" : "CUBLAS_STATUS_SUCCESS"; }
static float load_el(const void *p, cudaDataType_t t, size_t i)
{
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_16F: return sq_emu_f16_to_f32(((const uint16_t *)p)[i]);
    case CUDA_R_16BF: return sq_emu_bf16_to_f32(((const uint16_t *)p)[i]);
    default: abort();
    }
}
/* One queued GEMM: C = alpha op(A) op(B) + beta C, column-major. sgemm: the
 * benchmark's reference (double accumulation) instead of GemmEx's fp32 FMAs. */
struct gemm {
    cublasOperation_t ta, tb;
    int m, n, k, lda, ldb, ldc, sgemm;
    float al, be;
    const void *A, *B;
    cudaDataType_t at, bt;
    float *C;
};
static void run_gemm(void *arg)
{
    const struct gemm *g = arg;
    for (int j = 0; j < g->n; j++)
        for (int i = 0; i < g->m; i++) {
            float acc = 0.0f;
            double dacc = 0.0;
            for (int l = 0; l < g->k; l++) {
                const size_t ia = g->ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * g->lda
                                                       : (size_t)l + (size_t)i * g->lda;
                const size_t ib = g->tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * g->ldb
                                                       : (size_t)j + (size_t)l * g->ldb;
                const float a = load_el(g->A, g->at, ia), b = load_el(g->B, g->bt, ib);
                if (g->sgemm) dacc += (double)a * b;
                else acc = fmaf(a, b, acc);
            }
            float *cij = &g->C[(size_t)i + (size_t)j * g->ldc];
            if (g->sgemm) *cij = (float)(g->al * dacc + (g->be ? g->be * *cij : 0));
            else /* beta = 0: C is not read */
                *cij = g->be == 0.0f ? g->al * acc : g->al * acc + g->be * *cij;
        }
}
static cublasStatus_t queue_gemm(cublasHandle_t h, const struct gemm *g)
{
    struct gemm *q = malloc(sizeof *q);
    if (!q) return CUBLAS_STATUS_ALLOC_FAILED;
    *q = *g;
    sq_emu_enqueue_c(h->s, run_gemm, q);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                            int k, const void *alpha, const void *A, cudaDataType_t at, int lda,
                            const void *B, cudaDataType_t bt, int ldb, const void *beta, void *C,
                            cudaDataType_t ct, int ldc, cublasComputeType_t comp, cublasGemmAlgo_t algo)
{
    (void)algo;
    if (m < 0 || n < 0 || k < 0 || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T))
        return CUBLAS_STATUS_INVALID_VALUE;
    /* documented leading-dimension rules: lda >= rows of A as stored, etc. */
    if (lda < (ta == CUBLAS_OP_N ? (m > 1 ? m : 1) : (k > 1 ? k : 1)) ||
        ldb < (tb == CUBLAS_OP_N ? (k > 1 ? k : 1) : (n > 1 ? n : 1)) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (ct != CUDA_R_32F || (comp != CUBLAS_COMPUTE_32F && comp != CUBLAS_COMPUTE_32F_FAST_TF32) ||
        (at != bt) || (at != CUDA_R_32F && at != CUDA_R_16F && at != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    const struct gemm g = {ta, tb, m, n, k, lda, ldb, ldc, 0, *(const float *)alpha,
                           *(const float *)beta, A, B, at, bt, C};
    return queue_gemm(h, &g);
}
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc)
{
    if (ta != CUBLAS_OP_N || tb != CUBLAS_OP_N) abort();
    const struct gemm g = {ta, tb, m, n, k, lda, ldb, ldc, 1, *alpha, *beta, A, B, CUDA_R_32F,
                           CUDA_R_32F, C};
    return queue_gemm(h, &g);
}
const char *cusparseGetErrorString(cusparseStatus_t s) { return s ? "emu error" : "ok"; }
cusparseStatus_t cusparseCreate(cusparseHandle_t *h) { *h = (cusparseHandle_t)1; return 0; }
cusparseStatus_t cusparseDestroy(cusparseHandle_t h) { (void)h; return 0; }
cusparseStatus_t cusparseSetStream(cusparseHandle_t h, cudaStream_t s) { (void)h; (void)s; return 0; }
cusparseStatus_t cusparseCreateCsr(cusparseSpMatDescr_t *A, int64_t rows, int64_t cols, int64_t nnz, void *rp, void *ci, void *val,
                                   cusparseIndexType_t a, cusparseIndexType_t b, cusparseIndexBase_t base, cudaDataType t)
{
    (void)a; (void)b; (void)base; (void)t;
    struct emu_spmat *m = malloc(sizeof *m);
    *m = (struct emu_spmat){rows, cols, nnz, rp, ci, val};
    *A = m;
    return 0;
}
cusparseStatus_t cusparseCreateDnMat(cusparseDnMatDescr_t *B, int64_t rows, int64_t cols, int64_t ld, void *v, cudaDataType t, cusparseOrder_t o)
{
    (void)t;
    struct emu_dnmat *m = malloc(sizeof *m);
    *m = (struct emu_dnmat){rows, cols, ld, v, o};
    if (o != CUSPARSE_ORDER_ROW || ld < cols) return CUSPARSE_STATUS_INVALID_VALUE;
    *B = m;
    return 0;
}
cusparseStatus_t cusparseDestroySpMat(cusparseSpMatDescr_t A) { free(A); return 0; }
cusparseStatus_t cusparseDestroyDnMat(cusparseDnMatDescr_t B) { free(B); return 0; }
cusparseStatus_t cusparseSpMM_bufferSize(cusparseHandle_t h, cusparseOperation_t a, cusparseOperation_t b, const void *alpha,
                                         cusparseSpMatDescr_t A, cusparseDnMatDescr_t B, const void *beta, cusparseDnMatDescr_t C,
                                         cudaDataType t, cusparseSpMMAlg_t alg, size_t *bytes)
{
    (void)h; (void)a; (void)b; (void)alpha; (void)beta; (void)t; (void)alg;
    if (A->c != B->r || A->r != C->r || B->c != C->c) return CUSPARSE_STATUS_INVALID_VALUE;
    *bytes = 0;
    return 0;
}
/* benchmark only: synchronous, after everything queued so far */
cusparseStatus_t cusparseSpMM(cusparseHandle_t h, cusparseOperation_t a, cusparseOperation_t b, const void *alpha,
                              cusparseSpMatDescr_t A, cusparseDnMatDescr_t B, const void *beta, cusparseDnMatDescr_t C,
                              cudaDataType t, cusparseSpMMAlg_t alg, void *buf)
{
    (void)h; (void)a; (void)b; (void)t; (void)alg; (void)buf; (void)beta;
    sq_emu_sync_all();
    const float al = *(const float *)alpha;
    for (int64_t r = 0; r < A->r; r++)
        for (int64_t j = 0; j < B->c; j++) {
            double acc = 0;
            for (int32_t k = A->rp[r]; k < A->rp[r + 1]; k++) acc += (double)A->v[k] * B->v[(size_t)A->ci[k] * B->ld + j];
            C->v[(size_t)r * C->ld + j] = (float)(al * acc);
        }
    return 0;
}
