/* Cost of a ZO step against the two forward passes it is made of: the
 * overhead is perturbation (forming theta +/- eps z) plus the update. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sparq/trainer.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sparq bench zo [--config job.yaml] [--set key=value ...] [--steps 20]\n"
               "Times full ZO steps (2 perturbed forwards + update) and 2 plain forwards on the\n"
               "same batches; reports the overhead of perturbation and update.\n");
}

int sq_bench_zo_main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"steps", required_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *config = "examples/sentiment-opt-mini.yaml", *sets[32];
    int n_sets = 0, steps = 20, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's':
            if (n_sets < 32) sets[n_sets++] = optarg;
            break;
        case 'n': steps = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    sq_config_t cfg;
    sq_trainer_t *tr;
    sq_status_t st = sq_config_load(config, &cfg);
    for (int i = 0; st == SQ_OK && i < n_sets; i++) st = sq_config_set(&cfg, sets[i]);
    if (st == SQ_OK) st = sq_trainer_open(&cfg, &tr);
    if (st != SQ_OK) {
        fprintf(stderr, "sparq bench zo: %s\n", sq_error_last());
        return 1;
    }
    sq_bench_print_machine();
    double *ts = malloc(sizeof *ts * (size_t)steps), *tf = malloc(sizeof *tf * (size_t)steps);
    double loss;
    sq_step_result_t r;
    SQ_CHECK(sq_trainer_plain_forwards(tr, 0, 2, &loss)); /* warm-up */
    SQ_CHECK(sq_trainer_step(tr, 0, &r));
    for (int i = 0; i < steps; i++) { /* interleaved, so drift hits both alike */
        double t0 = sq_bench_now();
        SQ_CHECK(sq_trainer_plain_forwards(tr, i + 1, 2, &loss));
        double t1 = sq_bench_now();
        SQ_CHECK(sq_trainer_step(tr, i + 1, &r));
        ts[i] = sq_bench_now() - t1;
        tf[i] = t1 - t0;
    }
    qsort(ts, (size_t)steps, sizeof *ts, sq_bench_cmp_double);
    qsort(tf, (size_t)steps, sizeof *tf, sq_bench_cmp_double);
    double s = ts[steps / 2], f = tf[steps / 2];
    printf("\nconfig %s, batch %d, selection %s, perturbation %s, %d steps (medians)\n\n", config,
           cfg.train.batch_size,
           cfg.select.mode == SQ_SELECT_ALL ? "all" : cfg.select.mode == SQ_SELECT_PATTERN ? "pattern"
                                                  : cfg.select.mode == SQ_SELECT_MAGNITUDE ? "magnitude"
                                                                                           : "mask_file",
           cfg.optimizer.perturbation == SQ_PERTURB_IN_PLACE ? "in_place" : "out_of_place", steps);
    printf("| 2 plain forwards ms | ZO step ms | overhead |\n|---|---|---|\n");
    printf("| %.2f | %.2f | %+.1f%% |\n", f * 1e3, s * 1e3, 100.0 * (s - f) / f);
    free(ts);
    free(tf);
    sq_trainer_close(tr);
    return 0;
}
