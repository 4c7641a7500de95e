/* The first-order memory model of a pipeline stage (bench.h). */
#include "bench.h"

sq_bench_fo_mem_t sq_bench_fo_estimate(const sq_model_config_t *mc, int ub, int ue, int k, int S, int M,
                            int64_t n_params, int Bm, int T, int head_rows)
{
    const double n = (double)Bm * T, C = mc->d_model, V = mc->vocab_size;
    const double HD = (double)mc->n_heads * mc->head_dim;
    const double KD = (double)mc->n_kv_heads * mc->head_dim, F = mc->d_ff;
    double act = 0;
    for (int u = ub; u < ue; u++) {
        switch (sq_model_unit_kind(mc, u, NULL)) {
        case SQ_UNIT_ATTN:
            act += n * (2 * C + HD + 2 * KD + HD) * 2 + (double)Bm * mc->n_heads * T * T * 2;
            break;
        case SQ_UNIT_MLP_IN:
            act += n * (2 * C + (mc->glu ? 2 * F : F)) * 2;
            break;
        case SQ_UNIT_MLP_OUT:
            act += n * F * 2;
            break;
        case SQ_UNIT_HEAD:
            act += n * 2 * C * 2 + (double)head_rows * V * 4;
            break;
        default:
            break;
        }
    }
    sq_bench_fo_mem_t r;
    r.in_flight = S - k < M ? S - k : M;
    r.weights_mb = 16.0 * (double)n_params / 1048576.0;
    r.act_mb = act * r.in_flight / 1048576.0;
    return r;
}

