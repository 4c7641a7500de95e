/* sparq — zeroth-order fine-tuning in pipeline model parallelism. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../bench/bench.h"
#include "sparq/status.h"

static const sq_cli_cmd_t commands[] = {
    {"logits", "run a model on token ids and print argmax, next-token NLL and logits as JSON",
     sq_cmd_logits},
    {"train", "zeroth-order fine-tuning in one process (MeZO/SPSA), with resume", sq_cmd_train},
    {"launch", "run every stage of a pipelined ZO job on this machine", sq_cmd_launch},
    {"worker", "run one stage of a pipelined ZO job (srun/mpirun friendly)", sq_cmd_worker},
    {"plan", "profile the model and choose pipeline stage boundaries (writes a plan file)",
     sq_cmd_plan},
    {"export", "write a run's fine-tuned model as an HF folder", sq_cmd_export},
    {"tokenize", "GPT-2 BPE tokenization of JSONL text", sq_cmd_tokenize},
    {"bench", "benchmarks: forward, memory, codec, codec-real, zo", sq_bench_main},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'sparq <command> --help' describes a command's options.\n");
}

int sq_cli_fail(const char *cmd, int status)
{
    fprintf(stderr, "sparq %s: %s: %s\n", cmd, sq_status_string((sq_status_t)status),
            sq_error_last());
    return 1;
}

int sq_cli_parse_ids(const char *opt, const char *s, int32_t **out)
{
    int cap = 16, n = 0;
    int32_t *ids = malloc(sizeof *ids * (size_t)cap);
    const char *p = s;
    while (ids && *p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "sparq: %s: expected comma-separated non-negative integers, got \"%s\"\n",
                    opt, s);
            free(ids);
            return -1;
        }
        if (n == cap) {
            int32_t *grown = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
            if (!grown) break;
            ids = grown;
        }
        ids[n++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!ids || n == 0) {
        fprintf(stderr, "sparq: %s: no ids given\n", opt);
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("sparq 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sparq: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
