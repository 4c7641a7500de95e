/* Naive CPU stand-ins for the cuBLAS / cuSPARSE calls of the benchmark, with
 * their documented semantics (cuBLAS column-major). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cublas_v2.h"
#include "cusparse.h"
struct emu_spmat { int64_t r, c, nnz; int32_t *rp, *ci; float *v; };
struct emu_dnmat { int64_t r, c, ld; float *v; cusparseOrder_t o; };
cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (cublasHandle_t)1; return 0; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { (void)h; return 0; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { (void)h; (void)s; return 0; }
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb,
                           const float *beta, float *C, int ldc)
{
    (void)h;
    if (ta != CUBLAS_OP_N || tb != CUBLAS_OP_N) abort();
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double acc = 0;
            for (int l = 0; l < k; l++) acc += (double)A[i + (size_t)l * lda] * B[l + (size_t)j * ldb];
            C[i + (size_t)j * ldc] = (float)(*alpha * acc + (*beta ? *beta * C[i + (size_t)j * ldc] : 0));
        }
    return 0;
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
cusparseStatus_t cusparseSpMM(cusparseHandle_t h, cusparseOperation_t a, cusparseOperation_t b, const void *alpha,
                              cusparseSpMatDescr_t A, cusparseDnMatDescr_t B, const void *beta, cusparseDnMatDescr_t C,
                              cudaDataType t, cusparseSpMMAlg_t alg, void *buf)
{
    (void)h; (void)a; (void)b; (void)t; (void)alg; (void)buf; (void)beta;
    const float al = *(const float *)alpha;
    for (int64_t r = 0; r < A->r; r++)
        for (int64_t j = 0; j < B->c; j++) {
            double acc = 0;
            for (int32_t k = A->rp[r]; k < A->rp[r + 1]; k++) acc += (double)A->v[k] * B->v[(size_t)A->ci[k] * B->ld + j];
            C->v[(size_t)r * C->ld + j] = (float)(al * acc);
        }
    return 0;
}
struct CUevent_st { double t; };
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = malloc(sizeof **e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { (void)s; e->t = now(); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { (void)e; return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) { *ms = (float)((b->t - a->t) * 1e3); return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int dev) { (void)dev; strcpy(p->name, "host emulation"); p->multiProcessorCount = 2; return cudaSuccess; }
