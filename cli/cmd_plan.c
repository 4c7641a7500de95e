/* sparq plan: profile a model and choose its pipeline stage boundaries. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "sparq/planner.h"

static void plan_usage(FILE *f)
{
    fprintf(f,
            "usage: sparq plan --config job.yaml [options]\n"
            "\n"
            "Profiles the job's model on calibration data (per unit: forward and update time,\n"
            "memory; per split candidate: density after quantization and encoded bytes per\n"
            "token for every layout and 8/4/2 bits, codec time, gradient fidelity), then\n"
            "chooses the stage boundaries: the slowest stage's step time (compute + codec +\n"
            "link) is minimised within the memory cap, and among partitions within --slack of\n"
            "that optimum the one sending the fewest bytes wins. Writes a plan file that\n"
            "`sparq launch`/`sparq worker` take as --set pipeline.plan=FILE, and a report.\n"
            "\n"
            "  --config FILE        job configuration (model, task, codec, batch, micro-batches)\n"
            "  --set KEY=VALUE      override a job key first (e.g. codec.bits=4)\n"
            "  --stages S           stages (default: pipeline.stages of the job, at least 2)\n"
            "  --link-gbps G        link bandwidth between stages, Gbit/s (default 10; 0: ignore)\n"
            "  --mem-cap-mb M       memory per stage, MB (default: no cap)\n"
            "  --slack X            accept a slowest stage up to (1+X) x optimal for fewer bytes\n"
            "                       (default 0.05)\n"
            "  --balance-only       ignore codec and link: balance compute only (the baseline;\n"
            "                       --min-fidelity and the fidelity check do not apply)\n"
            "  --calib FILE         calibration text (default: the job's training batches)\n"
            "  --calib-batches N    micro-batches the densities are measured on (default 4)\n"
            "  --reps N             timing repetitions, median (default 5)\n"
            "  --fidelity-steps N   steps of the gradient-fidelity check (default 16; 0: skip)\n"
            "  --min-fidelity R     per boundary, send the fewest-bytes bit width (8/4/2) whose\n"
            "                       gradient correlation is >= R (default: the job's codec.bits)\n"
            "  -o, --out FILE       plan file to write (default plan.yaml)\n"
            "  --report DIR         write DIR/plan.md, DIR/plan.svg and DIR/profile.csv\n"
            "                       (default: the Markdown report goes to stdout)\n"
            "  --quiet              no progress lines\n");
}

static sq_status_t write_report_dir(const char *dir, const sq_plan_profile_t *p,
                                    const sq_plan_t *plan, const sq_plan_t *base)
{
    char path[1100];
    if (mkdir(dir, 0777) && errno != EEXIST)
        return sq_error_set(SQ_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/plan.md", dir);
    FILE *f = fopen(path, "w");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    sq_plan_write_report(p, plan, base, f);
    fprintf(f, "\n![density and bytes per token along the depth](plan.svg)\n");
    if (fclose(f)) return sq_error_set(SQ_ERR_IO, "%s: write failed", path);
    snprintf(path, sizeof path, "%s/profile.csv", dir);
    f = fopen(path, "w");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    sq_plan_write_csv(p, f);
    if (fclose(f)) return sq_error_set(SQ_ERR_IO, "%s: write failed", path);
    snprintf(path, sizeof path, "%s/plan.svg", dir);
    return sq_plan_write_svg(p, plan, base, path);
}

static int parse_double(const char *opt, const char *s, double lo, double *out)
{
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || *e || errno || !(v >= lo)) {
        fprintf(stderr, "sparq plan: %s: \"%s\" is not a number >= %g\n", opt, s, lo);
        return 0;
    }
    *out = v;
    return 1;
}

int sq_cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},     {"set", required_argument, 0, 's'},
        {"stages", required_argument, 0, 'S'},     {"link-gbps", required_argument, 0, 'l'},
        {"mem-cap-mb", required_argument, 0, 'm'}, {"slack", required_argument, 0, 'x'},
        {"balance-only", no_argument, 0, 'b'},     {"calib", required_argument, 0, 'C'},
        {"calib-batches", required_argument, 0, 'n'}, {"reps", required_argument, 0, 'r'},
        {"fidelity-steps", required_argument, 0, 'f'}, {"out", required_argument, 0, 'o'},
        {"report", required_argument, 0, 'R'},     {"quiet", no_argument, 0, 'q'},
        {"min-fidelity", required_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    const char *config = NULL, *sets[64], *out = "plan.yaml", *report = NULL;
    int n_sets = 0, stages = 0, c;
    double link_gbps = 10, mem_mb = 0, slack = 0.05, min_fid = 0, v;
    sq_plan_profile_opts_t po = {.calib_batches = 4, .reps = 5, .fid_steps = 16};
    int balance_only = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's':
            if (n_sets < 64) sets[n_sets++] = optarg;
            break;
        case 'S':
            if (!parse_double("--stages", optarg, 1, &v)) return 2;
            stages = (int)v;
            break;
        case 'l':
            if (!parse_double("--link-gbps", optarg, 0, &link_gbps)) return 2;
            break;
        case 'm':
            if (!parse_double("--mem-cap-mb", optarg, 0, &mem_mb)) return 2;
            break;
        case 'x':
            if (!parse_double("--slack", optarg, 0, &slack)) return 2;
            break;
        case 'b': balance_only = 1; break;
        case 'C': po.calib_text = optarg; break;
        case 'n':
            if (!parse_double("--calib-batches", optarg, 1, &v)) return 2;
            po.calib_batches = (int)v;
            break;
        case 'r':
            if (!parse_double("--reps", optarg, 1, &v)) return 2;
            po.reps = (int)v;
            break;
        case 'f':
            if (!parse_double("--fidelity-steps", optarg, 0, &v)) return 2;
            po.fid_steps = (int)v;
            break;
        case 'F':
            if (!parse_double("--min-fidelity", optarg, -1, &min_fid) || min_fid > 1) {
                fprintf(stderr, "sparq plan: --min-fidelity: a correlation in (0, 1]\n");
                return 2;
            }
            break;
        case 'o': out = optarg; break;
        case 'R': report = optarg; break;
        case 'q': po.quiet = 1; break;
        case 'h': plan_usage(stdout); return 0;
        default: plan_usage(stderr); return 2;
        }
    }
    if (!config || optind < argc) {
        fprintf(stderr, "sparq plan: %s (see --help)\n",
                config ? "unexpected argument" : "--config is required");
        return 2;
    }
    sq_config_t cfg;
    sq_status_t st = sq_config_load(config, &cfg);
    for (int i = 0; st == SQ_OK && i < n_sets; i++) st = sq_config_set(&cfg, sets[i]);
    if (st == SQ_OK) st = sq_config_validate(&cfg, config);
    if (st != SQ_OK) return sq_cli_fail("plan", st);
    if (stages <= 0) stages = cfg.pipeline.stages > 1 ? cfg.pipeline.stages : 2;
    if (balance_only) { /* the baseline ignores the codec: no fidelity, the job's bits */
        po.fid_steps = 0;
        min_fid = 0;
    }
    if (min_fid > 0 && po.fid_steps < 2) {
        fprintf(stderr, "sparq plan: --min-fidelity needs --fidelity-steps >= 2\n");
        return 2;
    }

    sq_plan_profile_t *prof = NULL;
    st = sq_plan_profile(&cfg, &po, &prof);
    if (st != SQ_OK) return sq_cli_fail("plan", st);
    if (min_fid > 0) {
        int unmet = sq_plan_choose_bits(prof, min_fid);
        if (unmet)
            fprintf(stderr, "sparq plan: warning: at %d of %d candidates no bit width reaches "
                            "gradient correlation %.3f; those send 8-bit\n",
                    unmet, prof->n_units - 1, min_fid);
    }
    sq_plan_opts_t o = {.stages = stages, .link_bytes_per_s = link_gbps * 1e9 / 8,
                        .mem_cap_bytes = mem_mb * 1e6, .slack = slack,
                        .balance_only = balance_only};
    sq_plan_opts_t ob = o;
    ob.balance_only = 1;
    sq_plan_t plan, base;
    st = sq_plan_solve(prof, &o, &plan);
    if (st == SQ_OK && !balance_only) st = sq_plan_solve(prof, &ob, &base);
    if (st == SQ_OK) st = sq_plan_write_yaml(prof, &plan, out);
    const sq_plan_t *bp = balance_only ? NULL : &base;
    if (st == SQ_OK && report) st = write_report_dir(report, prof, &plan, bp);
    if (st == SQ_OK && !report) sq_plan_write_report(prof, &plan, bp, stdout);
    if (st == SQ_OK) {
        fprintf(stderr, "sparq plan: wrote %s: boundaries [", out);
        for (int s = 1; s < plan.stages; s++)
            fprintf(stderr, "%s%s", s > 1 ? ", " : "", prof->cands[plan.st[s].begin - 1].cand.name);
        fprintf(stderr, "], %.1f bytes/token crossing, predicted step %.2f ms",
                plan.bytes_per_token, plan.step_s * 1e3);
        if (bp)
            fprintf(stderr, " (balance only: %.1f bytes/token, %.2f ms)", base.bytes_per_token,
                    base.step_s * 1e3);
        fprintf(stderr, "%s%s\n", report ? "; report in " : "", report ? report : "");
    }
    sq_plan_profile_free(prof);
    return st == SQ_OK ? 0 : sq_cli_fail("plan", st);
}
