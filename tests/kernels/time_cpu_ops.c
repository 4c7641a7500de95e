/* Ad-hoc timing of the CPU backend's ops at the shapes of one OPT-style
 * forward: B x T tokens, width C, MLP width F, vocabulary V, H heads.
 * Not a test and not a benchmark suite (bench/ owns those): a quick table of
 * per-op times and GFLOP/s next to the machine's large-sgemm rate.
 *
 *   time_cpu_ops [nthreads] [B T C F V H]   (defaults: all cores, 16 128 192 768 50272 3)
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sparq/backend.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(size_t n, float lo, float hi)
{
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    uint32_t s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(s >> 8) * 0x1p-24f;
    }
    return p;
}

/* one untimed warm-up call, then the best of `reps` */
#define TIME(label, flops, reps, call)                                                             \
    do {                                                                                           \
        SQ_CHECK(call);                                                                            \
        double best_ = 1e30;                                                                       \
        for (int r_ = 0; r_ < (reps); r_++) {                                                      \
            double t0_ = now();                                                                    \
            SQ_CHECK(call);                                                                        \
            double dt_ = now() - t0_;                                                              \
            if (dt_ < best_) best_ = dt_;                                                          \
        }                                                                                          \
        double f_ = (flops);                                                                       \
        printf("%-34s %10.3f ms", label, best_ * 1e3);                                             \
        if (f_ > 0) printf("  %8.1f GFLOP/s", f_ / best_ * 1e-9);                                  \
        printf("\n");                                                                              \
        total_ms += best_ * 1e3;                                                                   \
    } while (0)

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 0;
    int B = 16, T = 128, C = 192, F = 768, V = 50272, H = 3;
    if (argc > 7) {
        B = atoi(argv[2]), T = atoi(argv[3]), C = atoi(argv[4]), F = atoi(argv[5]),
        V = atoi(argv[6]), H = atoi(argv[7]);
    }
    int D = C / H;
    int64_t N = (int64_t)B * T;
    sq_backend_t *be;
    SQ_CHECK(sq_backend_cpu_create(nt, &be));
    sq_backend_limits_t lim = {.max_rows = N, .max_seq = T, .max_heads = H, .max_cols = V};
    SQ_CHECK(be->ops->reserve(be, &lim));
    const sq_backend_ops_t *op = be->ops;
    printf("B=%d T=%d (N=%lld) C=%d F=%d V=%d H=%d D=%d, %d threads (omp max %d)\n", B, T,
           (long long)N, C, F, V, H, D, nt > 0 ? nt : omp_get_max_threads(), omp_get_max_threads());
    double total_ms = 0;

    /* the machine's sgemm rate through the same path */
    {
        int S = 2048;
        float *a = rnd((size_t)S * S, -1, 1), *b = rnd((size_t)S * S, -1, 1),
              *c = rnd((size_t)S * S, -1, 1);
        sq_tensor_t ta = sq_tensor_2d(a, SQ_DTYPE_F32, S, S),
                    tb = sq_tensor_2d(b, SQ_DTYPE_F32, S, S),
                    tc = sq_tensor_2d(c, SQ_DTYPE_F32, S, S);
        TIME("sgemm 2048^3 (reference rate)", 2.0 * S * S * S, 3,
             op->linear(be, &ta, &tb, SQ_WEIGHT_IN_OUT, NULL, 0, &tc));
        free(a), free(b), free(c);
    }
    total_ms = 0;

    float *tok = rnd((size_t)V * C, -1, 1), *pos_tab = rnd((size_t)(T + 2) * C, -1, 1);
    float *x = rnd((size_t)N * C, -1, 1), *h = rnd((size_t)N * C, -1, 1);
    float *qkv = rnd((size_t)N * 3 * C, -1, 1), *att = rnd((size_t)N * C, -1, 1);
    float *f1 = rnd((size_t)N * F, -1, 1), *f2 = rnd((size_t)N * 2 * F, -1, 1);
    float *wqkv = rnd((size_t)3 * C * C, -0.1f, 0.1f), *wo = rnd((size_t)C * C, -0.1f, 0.1f);
    float *w1 = rnd((size_t)F * C, -0.1f, 0.1f), *w2 = rnd((size_t)C * F, -0.1f, 0.1f);
    float *g = rnd((size_t)F * 2, 0.5f, 1.5f), *bias = rnd((size_t)3 * F, -0.1f, 0.1f);
    float *logits = rnd((size_t)N * V, -5, 5), *nll = rnd((size_t)N, 0, 0);
    int32_t *ids = malloc((size_t)N * 4), *pos = malloc((size_t)N * 4),
            *tgt = malloc((size_t)N * 4);
    for (int64_t i = 0; i < N; i++) {
        ids[i] = (int32_t)((i * 7919) % V);
        pos[i] = (int32_t)(i % T) + 2;
        tgt[i] = (int32_t)((i * 104729) % V);
    }
    sq_tensor_t t_tok = sq_tensor_2d(tok, SQ_DTYPE_F32, V, C);
    sq_tensor_t t_pos = sq_tensor_2d(pos_tab, SQ_DTYPE_F32, T + 2, C);
    sq_tensor_t t_x = sq_tensor_2d(x, SQ_DTYPE_F32, N, C),
                t_h = sq_tensor_2d(h, SQ_DTYPE_F32, N, C);
    sq_tensor_t t_qkv = sq_tensor_2d(qkv, SQ_DTYPE_F32, N, 3 * C);
    sq_tensor_t t_q = sq_tensor_cols_view(&t_qkv, 0, C), t_k = sq_tensor_cols_view(&t_qkv, C, C),
                t_v = sq_tensor_cols_view(&t_qkv, 2 * C, C);
    sq_tensor_t t_att = sq_tensor_2d(att, SQ_DTYPE_F32, N, C);
    sq_tensor_t t_f1 = sq_tensor_2d(f1, SQ_DTYPE_F32, N, F);
    sq_tensor_t t_f2 = sq_tensor_2d(f2, SQ_DTYPE_F32, N, 2 * F);
    sq_tensor_t t_gate = sq_tensor_cols_view(&t_f2, 0, F), t_up = sq_tensor_cols_view(&t_f2, F, F);
    sq_tensor_t t_wqkv = sq_tensor_2d(wqkv, SQ_DTYPE_F32, 3 * C, C);
    sq_tensor_t t_wo = sq_tensor_2d(wo, SQ_DTYPE_F32, C, C);
    sq_tensor_t t_w1 = sq_tensor_2d(w1, SQ_DTYPE_F32, F, C),
                t_w2 = sq_tensor_2d(w2, SQ_DTYPE_F32, C, F);
    sq_tensor_t t_g = sq_tensor_1d(g, SQ_DTYPE_F32, C), t_b = sq_tensor_1d(bias, SQ_DTYPE_F32, C);
    sq_tensor_t t_b3 = sq_tensor_1d(bias, SQ_DTYPE_F32, 3 * C),
                t_bf = sq_tensor_1d(bias, SQ_DTYPE_F32, F);
    sq_tensor_t t_logits = sq_tensor_2d(logits, SQ_DTYPE_F32, N, V);
    double n = (double)N;
    double attn_flops = 0; /* what the blocked kernel computes: 2 gemms per block */
    for (int i0 = 0; i0 < T; i0 += 64) {
        int m = T - i0 < 64 ? T - i0 : 64;
        attn_flops += 2.0 * 2.0 * m * (i0 + m) * D;
    }
    attn_flops *= (double)B * H;

    printf("-- one block (x L) --\n");
    double block_ms0 = total_ms;
    TIME("layernorm [N,C]", 0, 10, op->layernorm(be, &t_x, &t_g, &t_b, 1e-5f, &t_h));
    TIME("linear qkv [N,C]x[3C,C]+b", 2 * n * C * 3 * C, 10,
         op->linear(be, &t_h, &t_wqkv, SQ_WEIGHT_OUT_IN, &t_b3, 0, &t_qkv));
    TIME("attention (causal)", attn_flops, 10,
         op->attention(be, &t_q, &t_k, &t_v, B, T, H, H, D, 0.125f, &t_att));
    TIME("linear out [N,C]x[C,C]+b", 2 * n * C * C, 10,
         op->linear(be, &t_att, &t_wo, SQ_WEIGHT_OUT_IN, &t_b, 0, &t_h));
    TIME("add [N,C]", 0, 10, op->add(be, &t_h, &t_x));
    TIME("layernorm [N,C]", 0, 10, op->layernorm(be, &t_x, &t_g, &t_b, 1e-5f, &t_h));
    TIME("linear fc1 [N,C]x[F,C]+b", 2 * n * C * F, 10,
         op->linear(be, &t_h, &t_w1, SQ_WEIGHT_OUT_IN, &t_bf, 0, &t_f1));
    TIME("activation relu [N,F]", 0, 10, op->activation(be, SQ_ACT_RELU, &t_f1));
    TIME("linear fc2 [N,F]x[C,F]+b", 2 * n * C * F, 10,
         op->linear(be, &t_f1, &t_w2, SQ_WEIGHT_OUT_IN, &t_b, 0, &t_h));
    TIME("add [N,C]", 0, 10, op->add(be, &t_h, &t_x));
    double block_ms = total_ms - block_ms0;

    printf("-- once per forward --\n");
    double once_ms0 = total_ms;
    TIME("embedding tokens [V,C]", 0, 10, op->embedding(be, &t_tok, ids, N, 0, &t_x));
    TIME("embedding positions (acc)", 0, 10, op->embedding(be, &t_pos, pos, N, 1, &t_x));
    TIME("layernorm final [N,C]", 0, 10, op->layernorm(be, &t_x, &t_g, &t_b, 1e-5f, &t_h));
    TIME("linear lm_head [N,C]x[V,C]", 2 * n * C * V, 3,
         op->linear(be, &t_h, &t_tok, SQ_WEIGHT_OUT_IN, NULL, 0, &t_logits));
    TIME("cross_entropy [N,V]", 0, 3, op->cross_entropy(be, &t_logits, tgt, nll));
    double once_ms = total_ms - once_ms0;

    printf("-- other ops at these shapes --\n");
    TIME("activation gelu_tanh [N,F]", 0, 10, op->activation(be, SQ_ACT_GELU_TANH, &t_f1));
    TIME("activation gelu_erf [N,F]", 0, 10, op->activation(be, SQ_ACT_GELU_ERF, &t_f1));
    TIME("glu silu [N,F] (y = gate)", 0, 10, op->glu(be, SQ_ACT_SILU, &t_gate, &t_up, &t_gate));
    TIME("rmsnorm [N,C]", 0, 10, op->rmsnorm(be, &t_x, &t_g, 1e-6f, &t_h));
    TIME("rope half on q [N,C]", 0, 10, op->rope(be, SQ_ROPE_HALF, &t_q, H, D, pos, 1e4f));
    TIME("rope interleaved on q [N,C]", 0, 10,
         op->rope(be, SQ_ROPE_INTERLEAVED, &t_q, H, D, pos, 1e4f));

    double block_flops = 2 * n * C * 3 * C + attn_flops + 2 * n * C * C + 4 * n * C * F;
    double once_flops = 2 * n * C * V;
    printf("-- forward totals (GFLOP counts only GEMM/attention work) --\n");
    static const int layers[] = {2, 4, 6, 12};
    for (int li = 0; li < 4; li++) {
        int L = layers[li];
        double ms = once_ms + L * block_ms, gf = (once_flops + L * block_flops) * 1e-9;
        printf("L=%2d: %8.1f ms, %6.1f GFLOP -> %6.1f GFLOP/s\n", L, ms, gf, gf / ms * 1e3);
    }
    float *bufs[] = {tok, pos_tab, x, h, qkv, att, f1, f2, wqkv, wo, w1, w2, g, bias, logits, nll};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(ids), free(pos), free(tgt);
    sq_backend_destroy(be);
    return 0;
}
