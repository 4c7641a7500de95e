/* Zeroth-order kernels: out-of-place perturbation and the ZO-SGD update.
 * z is regenerated from (seed, tensor id, element index), never stored. */
#include <string.h>

#include "cpu_zo.h"
#include "zo_normals.h"

/* Work is split at groups of 16 Philox blocks (64 elements) aligned to the
 * tensor's element index, so results never depend on the thread count or on
 * where a slice starts. */
#define SQ_ZO_GROUP (4 * SQ_ZO_LANES)

static sq_status_t check_vec(const char *op, const sq_tensor_t *t)
{
    if (!t || !t->data || t->dtype != SQ_DTYPE_F32 || t->device != SQ_DEVICE_CPU)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: expected a CPU F32 tensor", op);
    if (t->ndim > 1 && t->ld && t->ld != sq_tensor_cols(t))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.%s: the tensor must be contiguous", op);
    return SQ_OK;
}

sq_status_t sq_cpu_zo_perturb(sq_backend_t *be, const sq_tensor_t *src, uint64_t seed,
                              uint64_t tensor_id, int64_t offset, float scale,
                              const uint8_t *mask, sq_tensor_t *dst)
{
    (void)be;
    SQ_TRY(check_vec("zo_perturb", src));
    SQ_TRY(check_vec("zo_perturb", dst));
    const int64_t n = sq_tensor_numel(src);
    if (sq_tensor_numel(dst) != n || offset < 0)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cpu.zo_perturb: %lld elements into %lld (offset %lld)", (long long)n,
                            (long long)sq_tensor_numel(dst), (long long)offset);
    const float *s = src->data;
    float *d = dst->data;
    const int64_t g0 = offset / SQ_ZO_GROUP, g1 = (offset + n + SQ_ZO_GROUP - 1) / SQ_ZO_GROUP;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t g = g0; g < g1; g++) {
        float z[SQ_ZO_GROUP];
        sq_zo_normals16(seed, tensor_id, (uint64_t)g * SQ_ZO_LANES, z);
        int64_t e0 = g * SQ_ZO_GROUP - offset; /* slice index of z[0] */
        int j0 = e0 < 0 ? (int)-e0 : 0;
        int j1 = e0 + SQ_ZO_GROUP > n ? (int)(n - e0) : SQ_ZO_GROUP;
        if (mask) {
            for (int j = j0; j < j1; j++)
                d[e0 + j] = SQ_FMA(scale, mask[e0 + j] ? z[j] : 0.0f, s[e0 + j]);
        } else {
            for (int j = j0; j < j1; j++) d[e0 + j] = SQ_FMA(scale, z[j], s[e0 + j]);
        }
    }
    return SQ_OK;
}

sq_status_t sq_cpu_zo_update(sq_backend_t *be, sq_tensor_t *w, int n, const uint64_t *seeds,
                             const float *g, uint64_t tensor_id, float lr, float wd,
                             const uint8_t *mask)
{
    (void)be;
    SQ_TRY(check_vec("zo_update", w));
    if (n <= 0 || n > 1024 || !seeds || !g)
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.zo_update: %d SPSA samples", n);
    const int64_t numel = sq_tensor_numel(w);
    float *p = w->data;
    const float inv_n = 1.0f / (float)n;
#pragma omp parallel for schedule(static) if (numel > 65536)
    for (int64_t grp = 0; grp < (numel + SQ_ZO_GROUP - 1) / SQ_ZO_GROUP; grp++) {
        float acc[SQ_ZO_GROUP] = {0}, z[SQ_ZO_GROUP];
        for (int k = 0; k < n; k++) {
            sq_zo_normals16(seeds[k], tensor_id, (uint64_t)grp * SQ_ZO_LANES, z);
            for (int j = 0; j < SQ_ZO_GROUP; j++) acc[j] = SQ_FMA(g[k], z[j], acc[j]);
        }
        int64_t e0 = grp * SQ_ZO_GROUP;
        int j1 = e0 + SQ_ZO_GROUP > numel ? (int)(numel - e0) : SQ_ZO_GROUP;
        for (int j = 0; j < j1; j++) {
            float gz = (mask && !mask[e0 + j]) ? 0.0f : SQ_FMUL(acc[j], inv_n);
            float step = SQ_FMA(wd, p[e0 + j], gz);
            p[e0 + j] = SQ_FSUB(p[e0 + j], SQ_FMUL(lr, step));
        }
    }
    return SQ_OK;
}
