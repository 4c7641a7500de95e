/* activation, glu, add and axpby: row-parallel, vectorized element loops. The
 * activation switch sits outside the element loops so each loop is a single
 * straight-line body gcc can vectorize (vmath.h). */
#include "cpu_internal.h"
#include "vmath.h"

/* Elements below which threads cost more than they save. */
#define SQ_ELEM_PAR_MIN 32768

static int act_valid(sq_act_t act)
{
    return act == SQ_ACT_NONE || act == SQ_ACT_RELU || act == SQ_ACT_GELU_TANH ||
           act == SQ_ACT_GELU_ERF || act == SQ_ACT_SILU;
}

/* out[j] = f(in[j]) * mul[j], or f(in[j]) without mul; two loops so that
 * neither carries a branch on mul. */
#define SQ_ACT_LOOP(F)                                                                             \
    do {                                                                                           \
        if (mul) {                                                                                 \
            _Pragma("omp simd") for (int64_t j = 0; j < n; j++) out[j] = F(in[j]) * mul[j];        \
        } else {                                                                                   \
            _Pragma("omp simd") for (int64_t j = 0; j < n; j++) out[j] = F(in[j]);                 \
        }                                                                                          \
    } while (0)

static inline float identity(float v)
{
    return v;
}

/* `v < 0 ? 0 : v` keeps NaN, as torch.relu does */
static inline float relu(float v)
{
    return v < 0.0f ? 0.0f : v;
}

/* out = act(in) (* mul); out may alias in or mul element for element. */
static void act_row(sq_act_t act, const float *in, const float *mul, float *out, int64_t n)
{
    switch (act) {
    case SQ_ACT_NONE:
        SQ_ACT_LOOP(identity);
        return;
    case SQ_ACT_RELU:
        SQ_ACT_LOOP(relu);
        return;
    case SQ_ACT_GELU_TANH:
        SQ_ACT_LOOP(sq_vgelu_tanhf);
        return;
    case SQ_ACT_GELU_ERF:
        SQ_ACT_LOOP(sq_vgelu_erff);
        return;
    case SQ_ACT_SILU:
        SQ_ACT_LOOP(sq_vsiluf);
        return;
    }
}

sq_status_t sq_cpu_activation(sq_backend_t *be, sq_act_t act, sq_tensor_t *x)
{
    SQ_TRY(sq_cpu_check_backend("activation", be));
    if (!act_valid(act))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.activation: unknown activation %d", (int)act);
    SQ_TRY(sq_cpu_check_mat("activation", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    if (act == SQ_ACT_NONE || n == 0 || c == 0) return SQ_OK;
    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_ELEM_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        float *xr = sq_cpu_row(x, r);
        act_row(act, xr, NULL, xr, c);
    }
    return SQ_OK;
}

sq_status_t sq_cpu_glu(sq_backend_t *be, sq_act_t act, const sq_tensor_t *gate,
                       const sq_tensor_t *up, sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend("glu", be));
    if (!act_valid(act))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cpu.glu: unknown activation %d", (int)act);
    SQ_TRY(sq_cpu_check_mat("glu", "gate", gate, -1, -1));
    int64_t n = sq_tensor_rows(gate), c = sq_tensor_cols(gate);
    SQ_TRY(sq_cpu_check_mat("glu", "up", up, n, c));
    SQ_TRY(sq_cpu_check_mat("glu", "y", y, n, c));
    /* element-for-element aliasing is fine; a shifted overlap is not */
    if ((sq_cpu_overlaps(y, gate) &&
         (y->data != gate->data || sq_tensor_ld(y) != sq_tensor_ld(gate))) ||
        (sq_cpu_overlaps(y, up) && (y->data != up->data || sq_tensor_ld(y) != sq_tensor_ld(up))))
        return sq_error_set(
            SQ_ERR_INVALID_ARG,
            "cpu.glu: y partially overlaps gate or up (only y == gate/up is allowed)");
    if (n == 0 || c == 0) return SQ_OK;
    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_ELEM_PAR_MIN)
    for (int64_t r = 0; r < n; r++)
        act_row(act, sq_cpu_row(gate, r), sq_cpu_row(up, r), sq_cpu_row(y, r), c);
    return SQ_OK;
}

/* y = alpha * x + beta * y row by row; `op` names the calling op. With
 * alpha = beta = 1 this is exactly y + x (multiplying by 1 is exact). */
static sq_status_t axpby_rows(const char *op, sq_backend_t *be, float alpha, const sq_tensor_t *x,
                              float beta, sq_tensor_t *y)
{
    SQ_TRY(sq_cpu_check_backend(op, be));
    SQ_TRY(sq_cpu_check_mat(op, "y", y, -1, -1));
    int64_t n = sq_tensor_rows(y), c = sq_tensor_cols(y);
    SQ_TRY(sq_cpu_check_mat(op, "x", x, n, c));
    if (n == 0 || c == 0) return SQ_OK;
    int nt = sq_cpu_ctx(be)->nthreads;
#pragma omp parallel for num_threads(nt) schedule(static) if (n * c >= SQ_ELEM_PAR_MIN)
    for (int64_t r = 0; r < n; r++) {
        const float *xr = sq_cpu_row(x, r);
        float *yr = sq_cpu_row(y, r);
        if (beta == 0.0f) { /* y is not read */
#pragma omp simd
            for (int64_t j = 0; j < c; j++) yr[j] = alpha * xr[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < c; j++) yr[j] = alpha * xr[j] + beta * yr[j];
        }
    }
    return SQ_OK;
}

sq_status_t sq_cpu_add(sq_backend_t *be, const sq_tensor_t *x, sq_tensor_t *y)
{
    return axpby_rows("add", be, 1.0f, x, 1.0f, y);
}

sq_status_t sq_cpu_axpby(sq_backend_t *be, float alpha, const sq_tensor_t *x, float beta,
                         sq_tensor_t *y)
{
    return axpby_rows("axpby", be, alpha, x, beta, y);
}
