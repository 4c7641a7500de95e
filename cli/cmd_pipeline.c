/* sparq worker / sparq launch: the pipeline. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sparq/worker.h"

static void worker_usage(FILE *f)
{
    fprintf(f, "usage: sparq worker --config job.yaml [--stage K] [--set key=value ...] [--resume]\n"
               "\n"
               "Runs stage K of a pipelined ZO job (the pipeline and codec keys of job.yaml).\n"
               "Without --stage the stage comes from SLURM_PROCID, OMPI_COMM_WORLD_RANK or\n"
               "PMI_RANK, so `srun`/`mpirun -n S sparq worker --config job.yaml` start a job.\n"
               "Stages check a job token when they connect: SPARQ_JOB_TOKEN, else\n"
               "pipeline.token, else a hash of the configuration.\n");
}

int sq_cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"stage", required_argument, 0, 'k'},
                                         {"set", required_argument, 0, 's'},
                                         {"resume", no_argument, 0, 'r'},
                                         {"quiet", no_argument, 0, 'q'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = NULL, *sets[64];
    int n_sets = 0, c;
    sq_worker_opts_t o = {.stage = -1};
    while ((c = getopt_long(argc, argv, "c:k:s:rqh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'k': o.stage = atoi(optarg); break;
        case 's':
            if (n_sets < 64) sets[n_sets++] = optarg;
            break;
        case 'r': o.resume = 1; break;
        case 'q': o.quiet = 1; break;
        case 'h': worker_usage(stdout); return 0;
        default: worker_usage(stderr); return 2;
        }
    }
    if (o.stage < 0) o.stage = sq_worker_stage_from_env();
    if (!config || o.stage < 0) {
        fprintf(stderr, "sparq worker: --config and a stage (--stage or the launcher's rank "
                        "variable) are required\n");
        return 2;
    }
    sq_config_t cfg;
    sq_status_t st = sq_config_load(config, &cfg);
    for (int i = 0; st == SQ_OK && i < n_sets; i++) st = sq_config_set(&cfg, sets[i]);
    if (st == SQ_OK) st = sq_config_validate(&cfg, config);
    if (st == SQ_OK) st = sq_worker_run(&cfg, &o);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq worker: stage %d: %s: %s\n", o.stage, sq_status_string(st),
                sq_error_last());
        return 1;
    }
    return 0;
}

int sq_cmd_launch(int argc, char **argv)
{
    const char *config = NULL;
    char *extra[128];
    int n_extra = 0, resume = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sparq launch job.yaml [--set key=value ...] [--resume] [--quiet]\n"
                   "\n"
                   "Starts every stage of the job on this machine (one process each, forked\n"
                   "before any UCX call), prints their output prefixed with [stage K], and\n"
                   "exits with the first non-zero status after stopping the other stages.\n"
                   "--resume continues a stopped or killed job from its run folders.\n");
            return 0;
        } else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_extra + 2 < 128) {
            extra[n_extra++] = argv[i];
            extra[n_extra++] = argv[++i];
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
        } else if (!strcmp(argv[i], "--quiet")) {
            quiet = 1;
        } else if (argv[i][0] != '-' && !config) {
            config = argv[i];
        } else {
            fprintf(stderr, "sparq launch: unexpected argument \"%s\" (see --help)\n", argv[i]);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "sparq launch: the job file is required (see --help)\n");
        return 2;
    }
    return sq_launch(config, extra, n_extra, resume, quiet);
}
