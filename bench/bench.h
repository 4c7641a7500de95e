/* Benchmarks, reachable as `sparq bench <name>` and as standalone programs. */
#ifndef SPARQ_BENCH_H
#define SPARQ_BENCH_H

#include <stddef.h>

int sq_bench_forward_main(int argc, char **argv);
int sq_bench_memory_main(int argc, char **argv);
int sq_bench_zo_main(int argc, char **argv);
int sq_bench_probe_main(int argc, char **argv);
int sq_bench_codec_main(int argc, char **argv);
int sq_bench_codec_real_main(int argc, char **argv);
int sq_bench_comm_main(int argc, char **argv);
int sq_bench_pipeline_main(int argc, char **argv);
int sq_bench_transport_main(int argc, char **argv);
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

#endif
