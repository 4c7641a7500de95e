/* `sparq bench <name>` dispatch. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct bench_entry {
    const char *name, *summary;
    int (*main)(int argc, char **argv);
} bench_entry_t;

static const bench_entry_t benches[] = {
    {"forward", "forward tokens/s and FLOP utilization vs sgemm peak", sq_bench_forward_main},
    {"memory", "peak RSS of one stage's layer range vs the whole model", sq_bench_memory_main},
    {"codec", "codec compression and encode/decode GB/s over a density sweep", sq_bench_codec_main},
    {"codec-real", "codec on a model's real activations at every split candidate",
     sq_bench_codec_real_main},
    {"comm", "bytes crossing each stage boundary of a job vs first-order and fp16 ZO",
     sq_bench_comm_main},
    {"probe", "first-order linear probes on a classification job's frozen features",
     sq_bench_probe_main},
    {"pipeline", "step time and its breakdown on 1, 2, 4 local stages", sq_bench_pipeline_main},
    {"transport", "activation-message bandwidth vs ucx_perftest ucp_am_bw", sq_bench_transport_main},
    {"zo", "time of a ZO step vs the two forward passes it contains", sq_bench_zo_main},
    {"gpu", "GPU forward MFU, device memory per stage, two-stage step with overlap on/off",
     sq_bench_gpu_main},
};

int sq_bench_main(int argc, char **argv)
{
    const size_t n = sizeof benches / sizeof benches[0];
    if (argc >= 2)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(argv[1], benches[i].name)) return benches[i].main(argc - 1, argv + 1);
    FILE *f = (argc >= 2 && strcmp(argv[1], "--help") && strcmp(argv[1], "-h")) ? stderr : stdout;
    if (f == stderr) fprintf(stderr, "sparq bench: unknown benchmark \"%s\"\n", argv[1]);
    fprintf(f, "usage: sparq bench <name> [options]   (sparq bench <name> --help)\n\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
    return f == stderr || argc < 2 ? 2 : 0;
}
