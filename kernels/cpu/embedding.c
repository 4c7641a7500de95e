/* embedding: y[i,:] (+)= table[ids[i],:]. One op serves token tables and
 * learned position tables (accumulate = 1 adds positions onto tokens). */
#include <inttypes.h>
#include <string.h>

#include "cpu_internal.h"

#define SQ_EMB_PAR_MIN 32768

sq_status_t sq_cpu_embedding(sq_backend_t *be, const sq_tensor_t *table, const int32_t *ids,
                             int64_t n, int accumulate, sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend("embedding", be));
    SQ_TRY(sq_cpu_check_mat("embedding", "table", table, -1, -1));
    int64_t vocab = sq_tensor_rows(table), c = sq_tensor_cols(table);
    SQ_TRY(sq_cpu_check_mat("embedding", "y", y, -1, c));
    if (n < 0 || n > sq_tensor_rows(y))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.embedding: n = %" PRId64 " but y has %" PRId64 " rows", n,
                            sq_tensor_rows(y));
    if (n > 0 && !ids) return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.embedding: ids is NULL");
    if (sq_cpu_overlaps(y, table))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.embedding: y overlaps the table");
    /* all ids first, so a bad batch leaves y untouched */
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return sq_error_set(SQ_ERR_RANGE,
                                "cpu.embedding: ids[%" PRId64 "] = %" PRId32
                                " is outside the table's %" PRId64 " rows",
                                i, ids[i], vocab);
    if (c == 0) return SQ_OK;

    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_EMB_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *tr = sq_cpu_row(table, ids[i]);
        float *yr = sq_cpu_row(y, i);
        if (accumulate) {
#pragma omp simd
            for (int64_t j = 0; j < c; j++)
                yr[j] += tr[j];
        } else {
            memcpy(yr, tr, (size_t)c * sizeof(float));
        }
    }
    return SQ_OK;
}
