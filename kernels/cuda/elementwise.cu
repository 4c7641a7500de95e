// activation, glu, add and axpby: element-wise over 2-D views, with the
// grid's x covering columns and y covering rows (cuda_internal.h). The
// activation formulas are those of kernels/cpu/vmath.h, with CUDA's expf and
// erfcf (both within 2 ulp) standing in for the CPU's vectorised ones.
#include "cuda_internal.h"

namespace {

constexpr int kThreads = 256;

template <int ACT>
__device__ __forceinline__ float act_apply(float v)
{
    if (ACT == SQ_ACT_RELU) return v < 0.0f ? 0.0f : v; // keeps NaN, as torch.relu
    if (ACT == SQ_ACT_GELU_TANH) {
        // 0.5 v (1 + tanh(u)) = v * sigmoid(2u): no cancellation for v < 0
        const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        return v / (1.0f + expf(-2.0f * u));
    }
    if (ACT == SQ_ACT_GELU_ERF) return 0.5f * v * erfcf(-0.70710678118654752f * v);
    if (ACT == SQ_ACT_SILU) return v / (1.0f + expf(-v));
    return v; // SQ_ACT_NONE
}

// out = act(in) (* mul). out may alias in or mul element for element: each
// element is read and written by one thread only.
template <int ACT, bool MUL>
__global__ void act_kernel(const float *in, int64_t ldi, const float *mul, int64_t ldm, float *out,
                           int64_t ldo, int64_t rows, int64_t cols)
{
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < cols;
             j += (int64_t)gridDim.x * blockDim.x) {
            float v = act_apply<ACT>(in[r * ldi + j]);
            if (MUL) v *= mul[r * ldm + j];
            out[r * ldo + j] = v;
        }
}

// Explicitly rounded ops, never contracted into an fma: the result is the
// CPU's alpha*x + beta*y bit for bit, which the runtime's pair coding across
// devices relies on; with alpha = beta = 1 it is exactly y + x (add).
__global__ void axpby_kernel(float alpha, const float *x, int64_t ldx, float beta, float *y,
                             int64_t ldy, int64_t rows, int64_t cols)
{
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < cols;
             j += (int64_t)gridDim.x * blockDim.x) {
            const float ax = __fmul_rn(alpha, x[r * ldx + j]);
            // beta == 0: y is not read (it may hold garbage or NaN)
            y[r * ldy + j] = beta == 0.0f ? ax : __fadd_rn(ax, __fmul_rn(beta, y[r * ldy + j]));
        }
}

int act_valid(sq_act_t act)
{
    return act == SQ_ACT_NONE || act == SQ_ACT_RELU || act == SQ_ACT_GELU_TANH ||
           act == SQ_ACT_GELU_ERF || act == SQ_ACT_SILU;
}

template <bool MUL>
void launch_act(sq_act_t act, dim3 grid, cudaStream_t s, const float *in, int64_t ldi,
                const float *mul, int64_t ldm, float *out, int64_t ldo, int64_t rows,
                int64_t cols)
{
    switch (act) {
    case SQ_ACT_NONE:
        act_kernel<SQ_ACT_NONE, MUL><<<grid, kThreads, 0, s>>>(in, ldi, mul, ldm, out, ldo, rows,
                                                               cols);
        break;
    case SQ_ACT_RELU:
        act_kernel<SQ_ACT_RELU, MUL><<<grid, kThreads, 0, s>>>(in, ldi, mul, ldm, out, ldo, rows,
                                                               cols);
        break;
    case SQ_ACT_GELU_TANH:
        act_kernel<SQ_ACT_GELU_TANH, MUL><<<grid, kThreads, 0, s>>>(in, ldi, mul, ldm, out, ldo,
                                                                    rows, cols);
        break;
    case SQ_ACT_GELU_ERF:
        act_kernel<SQ_ACT_GELU_ERF, MUL><<<grid, kThreads, 0, s>>>(in, ldi, mul, ldm, out, ldo,
                                                                   rows, cols);
        break;
    case SQ_ACT_SILU:
        act_kernel<SQ_ACT_SILU, MUL><<<grid, kThreads, 0, s>>>(in, ldi, mul, ldm, out, ldo, rows,
                                                               cols);
        break;
    }
}

} // namespace

sq_status_t sq_cuda_activation(sq_backend_t *be, sq_act_t act, sq_tensor_t *x)
{
    SQ_TRY(sq_cuda_begin("activation", be));
    if (!act_valid(act))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.activation: unknown activation %d",
                            (int)act);
    SQ_TRY(sq_cuda_check_mat("activation", "x", x, -1, -1));
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    if (act == SQ_ACT_NONE || n == 0 || c == 0) return SQ_OK;
    float *p = (float *)x->data;
    int64_t ld = sq_tensor_ld(x);
    launch_act<false>(act, sq_cuda_grid_2d(n, c, kThreads), sq_cuda_ctx(be)->stream, p, ld, NULL,
                      0, p, ld, n, c);
    SQ_CUDA_LAUNCHED("activation");
    return SQ_OK;
}

sq_status_t sq_cuda_glu(sq_backend_t *be, sq_act_t act, const sq_tensor_t *gate,
                        const sq_tensor_t *up, sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin("glu", be));
    if (!act_valid(act))
        return sq_error_set(SQ_ERR_INVALID_ARG, "cuda.glu: unknown activation %d", (int)act);
    SQ_TRY(sq_cuda_check_mat("glu", "gate", gate, -1, -1));
    int64_t n = sq_tensor_rows(gate), c = sq_tensor_cols(gate);
    SQ_TRY(sq_cuda_check_mat("glu", "up", up, n, c));
    SQ_TRY(sq_cuda_check_mat("glu", "y", y, n, c));
    // element-for-element aliasing is fine; a shifted overlap is not
    if ((sq_cuda_overlaps(y, gate) &&
         (y->data != gate->data || sq_tensor_ld(y) != sq_tensor_ld(gate))) ||
        (sq_cuda_overlaps(y, up) && (y->data != up->data || sq_tensor_ld(y) != sq_tensor_ld(up))))
        return sq_error_set(
            SQ_ERR_INVALID_ARG,
            "cuda.glu: y partially overlaps gate or up (only y == gate/up is allowed)");
    if (n == 0 || c == 0) return SQ_OK;
    launch_act<true>(act, sq_cuda_grid_2d(n, c, kThreads), sq_cuda_ctx(be)->stream,
                     (const float *)gate->data, sq_tensor_ld(gate), (const float *)up->data,
                     sq_tensor_ld(up), (float *)y->data, sq_tensor_ld(y), n, c);
    SQ_CUDA_LAUNCHED("glu");
    return SQ_OK;
}

namespace {

sq_status_t axpby_op(const char *op, sq_backend_t *be, float alpha, const sq_tensor_t *x,
                     float beta, sq_tensor_t *y)
{
    SQ_TRY(sq_cuda_begin(op, be));
    SQ_TRY(sq_cuda_check_mat(op, "y", y, -1, -1));
    int64_t n = sq_tensor_rows(y), c = sq_tensor_cols(y);
    SQ_TRY(sq_cuda_check_mat(op, "x", x, n, c));
    if (sq_cuda_overlaps(y, x) && (y->data != x->data || sq_tensor_ld(y) != sq_tensor_ld(x)))
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "cuda.%s: y partially overlaps x (only y == x is allowed)", op);
    if (n == 0 || c == 0) return SQ_OK;
    axpby_kernel<<<sq_cuda_grid_2d(n, c, kThreads), kThreads, 0, sq_cuda_ctx(be)->stream>>>(
        alpha, (const float *)x->data, sq_tensor_ld(x), beta, (float *)y->data, sq_tensor_ld(y),
        n, c);
    SQ_CUDA_LAUNCHED(op);
    return SQ_OK;
}

} // namespace

sq_status_t sq_cuda_add(sq_backend_t *be, const sq_tensor_t *x, sq_tensor_t *y)
{
    return axpby_op("add", be, 1.0f, x, 1.0f, y);
}

sq_status_t sq_cuda_axpby(sq_backend_t *be, float alpha, const sq_tensor_t *x, float beta,
                          sq_tensor_t *y)
{
    return axpby_op("axpby", be, alpha, x, beta, y);
}
