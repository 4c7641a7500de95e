/* sparq train / sparq export: single-process ZO fine-tuning and its output. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparq/trainer.h"

static void train_usage(FILE *f)
{
    fprintf(f, "usage: sparq train --config job.yaml [--set key=value ...] [--dump-config]\n"
               "       sparq train --resume RUN_DIR\n"
               "\n"
               "Zeroth-order (MeZO/SPSA) fine-tuning in one process. Progress goes to stderr;\n"
               "the run folder (output key) gets the config, the run log (the checkpoint),\n"
               "metrics.jsonl and snapshots. Ctrl-C stops after the current step and saves.\n"
               "\n"
               "  --config FILE     job configuration (YAML)\n"
               "  --set KEY=VALUE   override one key, e.g. --set optimizer.lr=1e-5\n"
               "  --resume DIR      continue a stopped or killed run to the same result\n"
               "  --dump-config     print the resolved configuration and exit\n"
               "  --stop-after N    stop cleanly after N steps (for tests and staged runs)\n"
               "  --quiet           no progress lines\n\n");
    sq_config_help(f);
}

int sq_cmd_train(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"resume", required_argument, 0, 'r'},
                                         {"dump-config", no_argument, 0, 'd'},
                                         {"stop-after", required_argument, 0, 'S'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *sets[64];
    int n_sets = 0, dump = 0, c;
    sq_train_opts_t to = {0};
    while ((c = getopt_long(argc, argv, "c:s:r:dS:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's':
            if (n_sets < 64) sets[n_sets++] = optarg;
            break;
        case 'r': to.resume_dir = optarg; break;
        case 'd': dump = 1; break;
        case 'S': to.stop_after = atoll(optarg); break;
        case 'q': to.quiet = 1; break;
        case 'h': train_usage(stdout); return 0;
        default: train_usage(stderr); return 2;
        }
    }
    if (!config == !to.resume_dir) {
        fprintf(stderr, "sparq train: give exactly one of --config or --resume\n");
        return 2;
    }
    sq_config_t cfg;
    sq_status_t st = SQ_OK;
    if (config) {
        st = sq_config_load(config, &cfg);
        for (int i = 0; st == SQ_OK && i < n_sets; i++) st = sq_config_set(&cfg, sets[i]);
        if (st == SQ_OK && n_sets) st = sq_config_validate(&cfg, "--set");
        if (st != SQ_OK) return sq_cli_fail("train", st);
        if (dump) {
            sq_config_dump(&cfg, stdout);
            return 0;
        }
    } else {
        sq_config_defaults(&cfg);
    }
    st = sq_train_run(&cfg, &to);
    return st == SQ_OK ? 0 : sq_cli_fail("train", st);
}

int sq_cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"run", required_argument, 0, 'r'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *run = NULL, *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': run = optarg; break;
        case 'o': out = optarg; break;
        case 'h':
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: sparq export --run RUN_DIR --out DIR\n"
                    "Writes the fine-tuned model (base weights + snapshot + replayed run log) as an\n"
                    "HF folder: config.json, model.safetensors (F32), tokenizer files.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!run || !out) {
        fprintf(stderr, "sparq export: --run and --out are required\n");
        return 2;
    }
    sq_status_t st = sq_run_export(run, out);
    return st == SQ_OK ? 0 : sq_cli_fail("export", st);
}
