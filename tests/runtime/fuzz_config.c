/* Fuzz: arbitrary bytes as a job file and as a plan file. Loading must
 * either succeed with a configuration that validates, or fail with a
 * message; never crash, hang or read out of bounds. Round trip: a loaded
 * configuration dumped and loaded again is the same configuration (hash). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparq/config.h"

static char dir[64];

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

static void check_loaded(const char *path)
{
    sq_config_t cfg;
    sq_status_t st = sq_config_load(path, &cfg);
    if (st != SQ_OK) {
        if (!sq_error_last()[0]) abort(); /* every failure says why */
        return;
    }
    if (sq_config_validate(&cfg, path) != SQ_OK) abort();
    char dump[96];
    snprintf(dump, sizeof dump, "%s/dump.yaml", dir);
    FILE *f = fopen(dump, "w");
    if (!f) abort();
    sq_config_dump(&cfg, f);
    fclose(f);
    sq_config_t again;
    if (sq_config_load(dump, &again) != SQ_OK) {
        fprintf(stderr, "dumped config does not load: %s\n", sq_error_last());
        abort();
    }
    if (sq_config_hash(&again) != sq_config_hash(&cfg)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/sparq-fuzz-config-%d", (int)getpid());
        if (mkdtemp(strcat(dir, "-XXXXXX")) == NULL) abort();
    }
    char job[96], plan[96];
    snprintf(job, sizeof job, "%s/job.yaml", dir);
    snprintf(plan, sizeof plan, "%s/plan.yaml", dir);
    /* the input as a job file */
    write_file(job, data, size);
    check_loaded(job);
    /* the input as the plan file of a fixed job */
    write_file(plan, data, size);
    static const char fixed[] = "model: m\ntask:\n  train: t\n  labels: [a, b]\n"
                                "pipeline:\n  plan: plan.yaml\n";
    write_file(job, (const uint8_t *)fixed, sizeof fixed - 1);
    check_loaded(job);
    return 0;
}
