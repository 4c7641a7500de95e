/* Step time of a pipelined job on 1, 2, 4 local stages and where it goes:
 * compute, encode, decode, waiting (bubble + transfer), bytes raw vs encoded.
 * Each configuration is a real `sparq launch`; the figures come from the
 * stages' metrics.jsonl (medians over the steps after the first). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench pipeline [--config job.yaml] [--stages 1,2,4] [--steps 12]\n"
               "                            [--set key=value ...]\n"
               "Runs the job with sparq launch for each stage count (even split by layers)\n"
               "and reports the median step time and its breakdown per stage.\n");
}

static double field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? atof(p + strlen(pat)) : 0.0;
}

static double median(double *v, int n)
{
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, sq_bench_cmp_double);
    return v[n / 2];
}

int sq_bench_pipeline_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"stages", required_argument, 0, 'S'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"set", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = "examples/pipeline-opt-mini.yaml", *stages = "1,2,4", *sets[32];
    int steps = 12, n_sets = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:S:n:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'S': stages = optarg; break;
        case 'n': steps = atoi(optarg); break;
        case 's':
            if (n_sets < 32) sets[n_sets++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    sq_bench_print_machine();
    printf("job %s, %d steps per configuration, medians over steps 1..%d\n\n", config, steps,
           steps - 1);
    printf("| stages | stage | step ms | compute ms | encode ms | decode ms | wait ms | "
           "MB raw/step | MB encoded/step |\n|---|---|---|---|---|---|---|---|---|\n");
    char tmp[] = "/tmp/sparq-bench-pipeline-XXXXXX";
    if (!mkdtemp(tmp)) return 1;
    for (const char *p = stages; *p;) {
        int S = atoi(p);
        char out[256], set_out[300], set_s[64], set_steps[64], set_port[64];
        snprintf(out, sizeof out, "%s/S%d", tmp, S);
        snprintf(set_out, sizeof set_out, "output=%s", out);
        snprintf(set_s, sizeof set_s, "pipeline.stages=%d", S);
        snprintf(set_steps, sizeof set_steps, "train.steps=%d", steps);
        snprintf(set_port, sizeof set_port, "pipeline.base_port=%d", 31000 + 10 * S);
        char *args[96];
        int a = 0;
        args[a++] = "sparq";
        args[a++] = "launch";
        args[a++] = (char *)config;
        const char *fixed[] = {set_out, set_s, set_steps, set_port, "train.eval_every=0",
                               "task.eval=", "pipeline.boundaries="};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            args[a++] = "--set";
            args[a++] = (char *)fixed[i];
        }
        for (int i = 0; i < n_sets; i++) {
            args[a++] = "--set";
            args[a++] = (char *)sets[i];
        }
        args[a++] = "--quiet";
        args[a] = NULL;
        pid_t pid = fork();
        if (pid == 0) {
            execv("/proc/self/exe", args);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("| %d | - | launch failed (status %d) | | | | | | |\n", S, status);
        } else {
            for (int k = 0; k < S; k++) {
                char path[400], line[2048];
                snprintf(path, sizeof path, "%s/stage-%d/metrics.jsonl", out, k);
                FILE *f = fopen(path, "r");
                double v[7][1024];
                int n = 0;
                while (f && fgets(line, sizeof line, f) && n < 1024) {
                    if (!strstr(line, "\"step_s\"") || field(line, "step") < 1) continue;
                    const char *keys[7] = {"step_s", "compute_s", "encode_s", "decode_s",
                                           "wait_s", "bytes_raw", "bytes_encoded"};
                    for (int j = 0; j < 7; j++) v[j][n] = field(line, keys[j]);
                    n++;
                }
                if (f) fclose(f);
                printf("| %d | %d | %.1f | %.1f | %.2f | %.2f | %.1f | %.2f | %.2f |\n", S, k,
                       1e3 * median(v[0], n), 1e3 * median(v[1], n), 1e3 * median(v[2], n),
                       1e3 * median(v[3], n), 1e3 * median(v[4], n), median(v[5], n) / 1e6,
                       median(v[6], n) / 1e6);
            }
        }
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return 0;
}
