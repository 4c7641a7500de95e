/* Benchmarks, reachable as `sparq bench <name>` and as standalone programs. */
#ifndef SPARQ_BENCH_H
#define SPARQ_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "sparq/model.h"

int sq_bench_forward_main(int argc, char **argv);
int sq_bench_memory_main(int argc, char **argv);
int sq_bench_zo_main(int argc, char **argv);
int sq_bench_probe_main(int argc, char **argv);
int sq_bench_codec_main(int argc, char **argv);
int sq_bench_codec_real_main(int argc, char **argv);
int sq_bench_comm_main(int argc, char **argv);
int sq_bench_pipeline_main(int argc, char **argv);
int sq_bench_transport_main(int argc, char **argv);
int sq_bench_gpu_main(int argc, char **argv);
/* `sparq bench <name> ...` (argv[0] == "bench"). */
int sq_bench_main(int argc, char **argv);

/* Shared helpers (bench_common.c). The sgemm peak is the best of OpenBLAS's own
 * threading and OpenMP row blocks over single-threaded sgemm. */
double sq_bench_now(void);                 /* monotonic seconds */
void sq_bench_print_machine(void);         /* CPU model, cores, date: tables say where they ran */
double sq_bench_sgemm_peak(int threads, int n, int reps); /* best GFLOP/s of an n^3 sgemm */
long sq_bench_peak_rss_kb(void);           /* VmHWM of this process */
long sq_bench_rss_kb(void);                /* VmRSS of this process */
int sq_bench_cmp_double(const void *a, const void *b);
/* splitmix64: the benchmarks' deterministic data generator. */
uint64_t sq_bench_splitmix64(uint64_t *state);

/* First-order (backprop) memory of a pipeline stage, mixed-precision Adam:
 *
 *   weights state = 16 B/param: fp16 weight 2 + fp16 grad 2 + fp32 master 4
 *                   + Adam m 4 + v 4
 *   activations   = in_flight * sum over the stage's units, per micro-batch
 *                   of b sequences of T tokens (n = b*T), fp16 (2 B) unless noted:
 *     ATTN    n * (2C + HD + 2KD + HD) * 2  + b*H*T*T * 2
 *             (norm1 input, norm1 output = QKV input, Q, K, V, attention
 *              output = out-proj input; softmax probabilities)
 *     MLP_IN  n * (2C + F') * 2    (norm2 input, norm2 output = up input,
 *                                   pre-activation; F' = F, gated: 2F)
 *     MLP_OUT n * F * 2            (activation = down-proj input)
 *     HEAD    n * 2C * 2 + rows * V * 4   (final-norm input and output;
 *                                   fp32 logits of the scored rows)
 *     EMBED   0                    (token ids only)
 *   with HD = heads * head_dim, KD = kv_heads * head_dim. Per layer this is
 *   Korthikanti et al.'s 34sbh + 5as^2b without the dropout masks:
 *   32sbh + 2as^2b bytes when F = 4C and KD = HD = C.
 *   in_flight: 1F1B, stage k of S holds the activations of S - k
 *   micro-batches (no more than the step has).
 * Working buffers of the backward, the framework and the process itself
 * are not counted: the estimate is a lower bound. */
typedef struct sq_bench_fo_mem {
    double weights_mb, act_mb; /* act_mb: all micro-batches in flight */
    int in_flight;
} sq_bench_fo_mem_t;

sq_bench_fo_mem_t sq_bench_fo_estimate(const sq_model_config_t *mc, int ub, int ue, int k, int S,
                                       int M, int64_t n_params, int Bm, int T, int head_rows);

#endif
