/* Planner step 3: the plan file, the Markdown report and the CSV. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "planner_internal.h"

static const char *layout_names[SQ_PLAN_N_LAYOUTS] = {"dense", "bitmap", "csr", "auto"};

static void stage_names(const sq_plan_profile_t *p, const sq_plan_stage_t *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s .. %s", p->units[s->begin].name, p->units[s->end - 1].name);
}

sq_status_t sq_plan_write_yaml(const sq_plan_profile_t *p, const sq_plan_t *plan, const char *path)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "# sparq plan for %s (%d units), %d stages%s\n", p->model, p->n_units,
            plan->stages, plan->balance_only ? ", balance only (sparsity ignored)" : "");
    fprintf(f, "# use it with: sparq launch job.yaml --set pipeline.plan=%s\n", path);
    fprintf(f, "# predicted per step: %.2f ms (slowest stage %.2f ms + pipeline fill/drain), "
               "compute imbalance %.1f%%, %.1f encoded bytes/token crossing (fp16 dense: %.1f)\n",
            plan->step_s * 1e3, plan->bottleneck_s * 1e3, 100 * plan->imbalance,
            plan->bytes_per_token, plan->fp16_bytes_per_token);
    for (int s = 0; s < plan->stages; s++) {
        const sq_plan_stage_t *st = &plan->st[s];
        char names[128];
        stage_names(p, st, names, sizeof names);
        fprintf(f, "#   stage %d: units [%d, %d) %s: %.2f ms (compute %.2f, codec %.2f, link %.2f), "
                   "%.1f MB\n",
                s, st->begin, st->end, names, st->time_s * 1e3, st->compute_s * 1e3,
                st->codec_s * 1e3, st->transfer_s * 1e3, st->mem_bytes / 1e6);
    }
    fprintf(f, "pipeline:\n  stages: %d\n  boundaries: [", plan->stages);
    for (int s = 1; s < plan->stages; s++) fprintf(f, "%s%d", s > 1 ? ", " : "", plan->st[s].begin);
    fprintf(f, "]\n  plan_units: %d\n", p->n_units);
    if (plan->stages > 1) {
        fprintf(f, "codec:\n  boundary_bits: [");
        for (int s = 1; s < plan->stages; s++)
            fprintf(f, "%s%d", s > 1 ? ", " : "",
                    plan->balance_only ? p->codec.bits
                                       : sq_plan_bits[p->cands[plan->st[s].begin - 1].use]);
        fprintf(f, "]\n");
    }
    if (fflush(f) || fsync(fileno(f)) || fclose(f)) {
        unlink(tmp);
        return sq_error_set(SQ_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path)) return sq_error_set(SQ_ERR_IO, "%s: %s", path, strerror(errno));
    return SQ_OK;
}

static int is_cut(const sq_plan_t *plan, int unit)
{
    for (int s = 1; plan && s < plan->stages; s++)
        if (plan->st[s].begin == unit) return 1;
    return 0;
}

static void write_stages(const sq_plan_profile_t *p, const sq_plan_t *plan, FILE *f)
{
    fprintf(f, "| stage | units | first .. last | compute ms | codec ms | link ms | step ms | "
               "memory MB | sends bytes/token |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int s = 0; s < plan->stages; s++) {
        const sq_plan_stage_t *st = &plan->st[s];
        char names[128];
        stage_names(p, st, names, sizeof names);
        fprintf(f, "| %d | [%d, %d) | %s | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |\n", s,
                st->begin, st->end, names, st->compute_s * 1e3, st->codec_s * 1e3,
                st->transfer_s * 1e3, st->time_s * 1e3, st->mem_bytes / 1e6,
                st->out_bytes_per_token);
    }
    fprintf(f, "\nslowest stage %.2f ms per step (compute only: %.2f ms, imbalance %.1f%% over the "
               "mean); predicted step with pipeline fill and drain %.2f ms; %.1f encoded bytes per "
               "token cross the boundaries (dense fp16: %.1f, %.1f%%)\n\n",
            plan->bottleneck_s * 1e3, plan->compute_bottleneck_s * 1e3, 100 * plan->imbalance,
            plan->step_s * 1e3,
            plan->bytes_per_token, plan->fp16_bytes_per_token,
            plan->fp16_bytes_per_token > 0 ? 100 * plan->bytes_per_token / plan->fp16_bytes_per_token
                                           : 0.0);
}

void sq_plan_write_report(const sq_plan_profile_t *p, const sq_plan_t *plan,
                          const sq_plan_t *baseline, FILE *f)
{
    const sq_plan_opts_t *o = &plan->opts;
    fprintf(f, "# sparq plan: %s, %d stages\n\n", p->model, plan->stages);
    char link[48] = "ignored", cap[48] = "none";
    if (o->link_bytes_per_s > 0) snprintf(link, sizeof link, "%.3g Gbit/s", o->link_bytes_per_s * 8 / 1e9);
    if (o->mem_cap_bytes > 0) snprintf(cap, sizeof cap, "%.0f MB per stage", o->mem_cap_bytes / 1e6);
    fprintf(f, "Calibration: %s; micro-batch %d x %d tokens; %d forwards per step. Codec: %d-bit, "
               "%s, %s scales. Link: %s. Memory cap: %s. Slack: %.0f%%.\n\n",
            p->calib, p->B, p->T, p->fwd_per_step, p->codec.bits,
            sq_codec_encoding_name(p->codec.encoding),
            p->codec.granularity == SQ_CODEC_PER_ROW ? "per-token" : "per-group", link, cap,
            100 * o->slack);
    fprintf(f, "## The plan%s\n\n", plan->balance_only ? " (balance only)" : "");
    write_stages(p, plan, f);
    if (baseline) {
        fprintf(f, "## Baseline: %s\n\n", baseline->balance_only ? "balance only (sparsity ignored)"
                                                               : "other plan");
        write_stages(p, baseline, f);
        fprintf(f, "Plan vs baseline: %.1f vs %.1f encoded bytes/token (%.0f%%); slowest stage "
                   "compute %.2f vs %.2f ms (%+.1f%%); predicted step %.2f vs %.2f ms.\n\n",
                plan->bytes_per_token, baseline->bytes_per_token,
                baseline->bytes_per_token > 0
                    ? 100 * plan->bytes_per_token / baseline->bytes_per_token
                    : 0.0,
                plan->compute_bottleneck_s * 1e3, baseline->compute_bottleneck_s * 1e3,
                100 * (plan->compute_bottleneck_s / baseline->compute_bottleneck_s - 1),
                plan->step_s * 1e3, baseline->step_s * 1e3);
    }
    fprintf(f, "## Units\n\n| unit | name | fwd ms / micro-batch | update ms / step | params MB | "
               "activations MB |\n|---|---|---|---|---|---|\n");
    for (int u = 0; u < p->n_units; u++) {
        const sq_plan_unit_t *pu = &p->units[u];
        fprintf(f, "| %d | %s | %.3f | %.3f | %.2f | %.2f |\n", u, pu->name, pu->fwd_s * 1e3,
                pu->update_s * 1e3, pu->param_bytes / 1e6, pu->act_bytes / 1e6);
    }
    const int has_fid = p->n_units > 1 && p->cands[0].fid_steps > 0;
    fprintf(f, "\n## Split candidates\n\nBytes per token with the job's codec (%s layout, %s "
               "rounding) at 8/4/2 bits; `cut` marks the plan's boundaries (`base`: the "
               "baseline's); `sends` is the bit width the plan uses there%s.\n\n"
               "| before unit | candidate | tensors | exact zeros | density 8/4/2-bit | fp16 B/tok "
               "| B/tok 8 / 4 / 2 | %% of fp16 8 / 4 / 2 | rel. RMS err 8 / 4 / 2 | enc+dec ms 8-bit |"
               "%s sends |\n|---|---|---|---|---|---|---|---|---|---|%s---|\n",
            sq_codec_encoding_name(p->codec.encoding),
            p->codec.rounding == SQ_CODEC_ROUND_NEAREST ? "nearest" : "stochastic",
            p->min_fidelity > 0 ? " (the fewest bytes with gradient correlation >= min-fidelity)"
                                : "",
            has_fid ? " g corr 8 / 4 / 2 | g rel. err 8 / 4 / 2 | -eps msg / +eps msg 8 / 4 / 2 |"
                    : "",
            has_fid ? "---|---|---|" : "");
    if (p->zo_pair)
        fprintf(f, "ZO pair coding is on: the -eps pass sends x- - x+, so the bytes per token are "
                   "the mean of the two messages%s.\n\n",
                has_fid ? " (the -eps/+eps ratio measured on the fidelity steps)"
                        : " (unmeasured: the -eps message is assumed as large as the +eps one)");
    for (int i = 0; i < p->n_units - 1; i++) {
        const sq_plan_cand_t *c = &p->cands[i];
        const double h = c->fp16_bytes_per_token;
        fprintf(f, "| %d | %s%s%s | %s%s%s | %.1f%% | %.1f / %.1f / %.1f%% | %.0f | %.1f / %.1f / %.1f "
                   "| %.1f / %.1f / %.1f%% | %.4f / %.3f / %.3f | %.3f |",
                c->cand.unit, c->cand.name, is_cut(plan, c->cand.unit) ? " **cut**" : "",
                is_cut(baseline, c->cand.unit) ? " base" : "", c->cand.tensors[0],
                c->cand.n_tensors > 1 ? "+" : "", c->cand.n_tensors > 1 ? c->cand.tensors[1] : "",
                100 * c->zero_frac, 100 * c->density[0], 100 * c->density[1], 100 * c->density[2], h,
                c->codec_bytes[0], c->codec_bytes[1], c->codec_bytes[2], 100 * c->codec_bytes[0] / h,
                100 * c->codec_bytes[1] / h, 100 * c->codec_bytes[2] / h, c->rel_rms_err[0],
                c->rel_rms_err[1], c->rel_rms_err[2], (c->enc_s[0] + c->dec_s[0]) * 1e3);
        if (has_fid)
            fprintf(f, " %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %.2f / %.2f / %.2f |",
                    c->fid_corr[0], c->fid_corr[1], c->fid_corr[2], c->fid_rel_err[0],
                    c->fid_rel_err[1], c->fid_rel_err[2], c->minus_ratio[0], c->minus_ratio[1],
                    c->minus_ratio[2]);
        fprintf(f, " %d |\n", sq_plan_bits[c->use]);
    }
    if (has_fid)
        fprintf(f, "\nGradient fidelity: projected gradients g = (L+ - L-)/2eps of %d steps (the "
                   "job's seeds and batches) with the codec at that one candidate vs exact "
                   "transport: correlation over the steps, and ||g_codec - g_exact|| / "
                   "||g_exact||.\n",
                p->cands[0].fid_steps);
}

void sq_plan_write_csv(const sq_plan_profile_t *p, FILE *f)
{
    fprintf(f, "unit,candidate,tensors,exact_zero_frac,fp16_bytes_per_token,fp32_bytes_per_token");
    for (int b = 0; b < SQ_PLAN_N_BITS; b++) {
        fprintf(f, ",density_%d", sq_plan_bits[b]);
        for (int l = 0; l < SQ_PLAN_N_LAYOUTS; l++)
            fprintf(f, ",bytes_per_token_%d_%s", sq_plan_bits[b], layout_names[l]);
    }
    for (int b = 0; b < SQ_PLAN_N_BITS; b++)
        fprintf(f, ",codec_bytes_per_token_%d,rel_rms_err_%d,enc_ms_%d,dec_ms_%d,fid_corr_%d,"
                   "fid_rel_err_%d,fid_sign_%d",
                sq_plan_bits[b], sq_plan_bits[b], sq_plan_bits[b], sq_plan_bits[b],
                sq_plan_bits[b], sq_plan_bits[b], sq_plan_bits[b]);
    fprintf(f, ",fid_steps,plan_bits\n");
    for (int i = 0; i < p->n_units - 1; i++) {
        const sq_plan_cand_t *c = &p->cands[i];
        fprintf(f, "%d,%s,%s%s%s,%.6f,%.3f,%.3f", c->cand.unit, c->cand.name, c->cand.tensors[0],
                c->cand.n_tensors > 1 ? "+" : "", c->cand.n_tensors > 1 ? c->cand.tensors[1] : "",
                c->zero_frac, c->fp16_bytes_per_token, c->fp32_bytes_per_token);
        for (int b = 0; b < SQ_PLAN_N_BITS; b++) {
            fprintf(f, ",%.6f", c->density[b]);
            for (int l = 0; l < SQ_PLAN_N_LAYOUTS; l++) fprintf(f, ",%.3f", c->bytes_per_token[b][l]);
        }
        for (int b = 0; b < SQ_PLAN_N_BITS; b++)
            fprintf(f, ",%.3f,%.6f,%.4f,%.4f,%.6f,%.6f,%.4f", c->codec_bytes[b], c->rel_rms_err[b],
                    c->enc_s[b] * 1e3, c->dec_s[b] * 1e3, c->fid_corr[b], c->fid_rel_err[b],
                    c->fid_sign[b]);
        fprintf(f, ",%d,%d\n", c->fid_steps, sq_plan_bits[c->use]);
    }
}
