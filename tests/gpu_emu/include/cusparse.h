#pragma once
#include <stdint.h>
#include "cuda_runtime_api.h"
#include "library_types.h"
#ifdef __cplusplus
extern "C" {
#endif
typedef enum { CUSPARSE_STATUS_SUCCESS = 0, CUSPARSE_STATUS_INVALID_VALUE = 3 } cusparseStatus_t;
typedef enum { CUSPARSE_OPERATION_NON_TRANSPOSE = 0 } cusparseOperation_t;
typedef enum { CUSPARSE_INDEX_32I = 2 } cusparseIndexType_t;
typedef enum { CUSPARSE_INDEX_BASE_ZERO = 0 } cusparseIndexBase_t;
typedef enum { CUSPARSE_ORDER_COL = 1, CUSPARSE_ORDER_ROW = 2 } cusparseOrder_t;
typedef enum { CUSPARSE_SPMM_ALG_DEFAULT = 0 } cusparseSpMMAlg_t;
typedef struct cusparseContext *cusparseHandle_t;
typedef struct emu_spmat *cusparseSpMatDescr_t;
typedef struct emu_dnmat *cusparseDnMatDescr_t;
const char *cusparseGetErrorString(cusparseStatus_t s);
cusparseStatus_t cusparseCreate(cusparseHandle_t *h);
cusparseStatus_t cusparseDestroy(cusparseHandle_t h);
cusparseStatus_t cusparseSetStream(cusparseHandle_t h, cudaStream_t s);
cusparseStatus_t cusparseCreateCsr(cusparseSpMatDescr_t *A, int64_t rows, int64_t cols, int64_t nnz, void *rp, void *ci, void *val,
                                   cusparseIndexType_t a, cusparseIndexType_t b, cusparseIndexBase_t base, cudaDataType t);
cusparseStatus_t cusparseCreateDnMat(cusparseDnMatDescr_t *B, int64_t rows, int64_t cols, int64_t ld, void *v, cudaDataType t, cusparseOrder_t o);
cusparseStatus_t cusparseDestroySpMat(cusparseSpMatDescr_t A);
cusparseStatus_t cusparseDestroyDnMat(cusparseDnMatDescr_t B);
cusparseStatus_t cusparseSpMM_bufferSize(cusparseHandle_t h, cusparseOperation_t a, cusparseOperation_t b, const void *alpha,
                                         cusparseSpMatDescr_t A, cusparseDnMatDescr_t B, const void *beta, cusparseDnMatDescr_t C,
                                         cudaDataType t, cusparseSpMMAlg_t alg, size_t *bytes);
cusparseStatus_t cusparseSpMM(cusparseHandle_t h, cusparseOperation_t a, cusparseOperation_t b, const void *alpha,
                              cusparseSpMatDescr_t A, cusparseDnMatDescr_t B, const void *beta, cusparseDnMatDescr_t C,
                              cudaDataType t, cusparseSpMMAlg_t alg, void *buf);
#ifdef __cplusplus
}
#endif
