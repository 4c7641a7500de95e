/* Planner step 2: choose the stage boundaries.
 *
 * Stages are contiguous unit ranges. The slowest stage sets the pipeline's
 * step time, so the objective is min over partitions of max over stages of
 * time(stage) (see planner.h for the stage-time model), every stage within
 * the memory cap. Solved exactly: the optimum is one of the O(U^2) interval
 * costs; a binary search over them, each probe a feasibility DP over
 * (stages, end unit), finds it in O(S U^2 log U). A last DP then picks,
 * among the partitions whose stages all stay within (1 + slack) x that
 * optimum, the one sending the fewest bytes per token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner_internal.h"

typedef struct costs {
    int U;
    double *pre_fwd, *pre_upd, *pre_param; /* prefix sums [U + 1] */
    double *act_max;                       /* [U * U]: max act_bytes over [a, b) at a*U + b-1 */
    double F, tokens, link;
    int balance_only;
    int job_bits; /* >= 0: every boundary sends this bit width (index), not the candidate's `use` */
} costs_t;

static int bits_at(const costs_t *k, const sq_plan_cand_t *c)
{
    return k->job_bits >= 0 ? k->job_bits : c->use;
}

/* Bytes per token the plan sends at the boundary before unit u (0 < u < U):
 * the job's codec, or dense fp16 for balance-only (sparsity ignored). */
static double boundary_bytes(const sq_plan_profile_t *p, const costs_t *k, int u)
{
    const sq_plan_cand_t *c = &p->cands[u - 1];
    return k->balance_only ? c->fp16_bytes_per_token : c->codec_bytes[bits_at(k, c)];
}

static void stage_figures(const sq_plan_profile_t *p, const costs_t *k, int a, int b,
                          sq_plan_stage_t *s)
{
    const int U = k->U;
    memset(s, 0, sizeof *s);
    s->begin = a;
    s->end = b;
    s->update_s = k->pre_upd[b] - k->pre_upd[a];
    s->compute_s = k->F * (k->pre_fwd[b] - k->pre_fwd[a]) + s->update_s;
    if (!k->balance_only) {
        const sq_plan_cand_t *in = a > 0 ? &p->cands[a - 1] : NULL;
        const sq_plan_cand_t *out = b < U ? &p->cands[b - 1] : NULL;
        if (in) s->codec_s += k->F * in->dec_s[bits_at(k, in)];
        if (out) s->codec_s += k->F * out->enc_s[bits_at(k, out)];
        if (out) s->out_bytes_per_token = out->codec_bytes[bits_at(k, out)];
        if (out && k->link > 0) s->transfer_s = k->F * k->tokens * s->out_bytes_per_token / k->link;
    }
    s->time_s = s->compute_s + s->codec_s + s->transfer_s;
    s->mem_bytes = (k->pre_param[b] - k->pre_param[a]) + k->act_max[(size_t)a * U + b - 1];
}

static double stage_time(const sq_plan_profile_t *p, const costs_t *k, int a, int b, double cap)
{
    sq_plan_stage_t s;
    stage_figures(p, k, a, b, &s);
    return cap > 0 && s.mem_bytes > cap ? INFINITY : s.time_s;
}

static sq_status_t costs_init(const sq_plan_profile_t *p, const sq_plan_opts_t *o, costs_t *k)
{
    const int U = p->n_units;
    memset(k, 0, sizeof *k);
    k->U = U;
    k->F = p->fwd_per_step;
    k->tokens = p->tokens_per_micro;
    k->link = o->link_bytes_per_s;
    k->balance_only = o->balance_only;
    k->job_bits = -1;
    k->pre_fwd = calloc((size_t)U + 1, sizeof(double));
    k->pre_upd = calloc((size_t)U + 1, sizeof(double));
    k->pre_param = calloc((size_t)U + 1, sizeof(double));
    k->act_max = malloc(sizeof(double) * (size_t)U * U);
    if (!k->pre_fwd || !k->pre_upd || !k->pre_param || !k->act_max)
        return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    for (int u = 0; u < U; u++) {
        k->pre_fwd[u + 1] = k->pre_fwd[u] + p->units[u].fwd_s;
        k->pre_upd[u + 1] = k->pre_upd[u] + p->units[u].update_s;
        k->pre_param[u + 1] = k->pre_param[u] + (double)p->units[u].param_bytes;
    }
    for (int a = 0; a < U; a++) {
        double m = 0;
        for (int b = a; b < U; b++) {
            if ((double)p->units[b].act_bytes > m) m = (double)p->units[b].act_bytes;
            k->act_max[(size_t)a * U + b] = m;
        }
    }
    return SQ_OK;
}

static void costs_free(costs_t *k)
{
    free(k->pre_fwd);
    free(k->pre_upd);
    free(k->pre_param);
    free(k->act_max);
}

/* Fewest bytes per token over partitions of [0, U) into S stages whose times
 * are all <= limit; cuts filled when feasible. Returns INFINITY when none. */
static double min_bytes_partition(const sq_plan_profile_t *p, const costs_t *k, int S,
                                  double limit, double cap, int *cuts)
{
    const int U = k->U;
    double *f = malloc(sizeof(double) * (size_t)(S + 1) * (U + 1));
    int *from = malloc(sizeof(int) * (size_t)(S + 1) * (U + 1));
    if (!f || !from) {
        free(f), free(from);
        return INFINITY;
    }
#define F_(s, j) f[(size_t)(s) * (U + 1) + (j)]
#define FROM(s, j) from[(size_t)(s) * (U + 1) + (j)]
    for (int s = 0; s <= S; s++)
        for (int j = 0; j <= U; j++) F_(s, j) = INFINITY;
    F_(0, 0) = 0;
    for (int s = 1; s <= S; s++)
        for (int j = s; j <= U - (S - s); j++)
            for (int i = s - 1; i < j; i++) {
                if (!isfinite(F_(s - 1, i))) continue;
                if (stage_time(p, k, i, j, cap) > limit) continue;
                const double v = F_(s - 1, i) + (i > 0 ? boundary_bytes(p, k, i) : 0.0);
                if (v < F_(s, j)) {
                    F_(s, j) = v;
                    FROM(s, j) = i;
                }
            }
    const double best = F_(S, U);
    if (isfinite(best)) {
        cuts[S] = U;
        for (int s = S; s > 0; s--) cuts[s - 1] = FROM(s, cuts[s]);
    }
#undef F_
#undef FROM
    free(f);
    free(from);
    return best;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void sq_plan_evaluate(const sq_plan_profile_t *p, const sq_plan_opts_t *opts, const int *cuts,
                      sq_plan_t *out)
{
    costs_t k;
    memset(out, 0, sizeof *out);
    out->opts = *opts;
    out->balance_only = opts->balance_only;
    out->stages = opts->stages;
    if (costs_init(p, opts, &k) != SQ_OK) {
        costs_free(&k);
        return;
    }
    /* report what the plan really sends; the balance-only baseline sends the job's
     * codec.bits everywhere (it knows nothing of per-boundary choices) */
    k.balance_only = 0;
    for (int b = 0; opts->balance_only && b < SQ_PLAN_N_BITS; b++)
        if (sq_plan_bits[b] == p->codec.bits) k.job_bits = b;
    double sum_compute = 0, max_fwd = 0, max_upd = 0;
    for (int s = 0; s < opts->stages; s++) {
        sq_plan_stage_t *st = &out->st[s];
        stage_figures(p, &k, cuts[s], cuts[s + 1], st);
        const double per_fwd = (st->time_s - st->update_s) / k.F;
        if (per_fwd > max_fwd) max_fwd = per_fwd;
        if (st->update_s > max_upd) max_upd = st->update_s;
        if (st->time_s > out->bottleneck_s) out->bottleneck_s = st->time_s;
        if (st->compute_s > out->compute_bottleneck_s) out->compute_bottleneck_s = st->compute_s;
        sum_compute += st->compute_s;
        if (s + 1 < opts->stages) {
            out->bytes_per_token += st->out_bytes_per_token;
            out->fp16_bytes_per_token += p->cands[cuts[s + 1] - 1].fp16_bytes_per_token;
        }
    }
    out->imbalance = out->compute_bottleneck_s / (sum_compute / opts->stages) - 1.0;
    out->step_s = (k.F + opts->stages - 1) * max_fwd + max_upd;
    costs_free(&k);
}

sq_status_t sq_plan_solve(const sq_plan_profile_t *p, const sq_plan_opts_t *opts, sq_plan_t *out)
{
    const int U = p->n_units, S = opts->stages;
    if (S < 1 || S > SQ_PLAN_MAX_STAGES || S > U)
        return sq_error_set(SQ_ERR_INVALID_ARG, "plan: %d stages for a model of %d units (1 .. %d)",
                            S, U, U < SQ_PLAN_MAX_STAGES ? U : SQ_PLAN_MAX_STAGES);
    costs_t k;
    sq_status_t st = costs_init(p, opts, &k);
    double *cand = st == SQ_OK ? malloc(sizeof(double) * (size_t)U * (U + 1) / 2 + sizeof(double))
                               : NULL;
    if (st == SQ_OK && !cand) st = sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    int cuts[SQ_PLAN_MAX_STAGES + 1];
    if (st == SQ_OK) {
        size_t n = 0;
        for (int a = 0; a < U; a++)
            for (int b = a + 1; b <= U; b++) {
                double t = stage_time(p, &k, a, b, opts->mem_cap_bytes);
                if (isfinite(t)) cand[n++] = t;
            }
        qsort(cand, n, sizeof *cand, cmp_double);
        /* smallest interval cost at which S stages are feasible */
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (isfinite(min_bytes_partition(p, &k, S, cand[mid], opts->mem_cap_bytes, cuts)))
                hi = mid;
            else lo = mid + 1;
        }
        if (lo == n) {
            st = sq_error_set(SQ_ERR_RANGE, "plan: no partition into %d stages fits the memory cap "
                                            "of %.1f MB per stage",
                              S, opts->mem_cap_bytes / 1e6);
        } else {
            const double slack = opts->balance_only ? 0.0 : opts->slack;
            double limit = cand[lo] * (1.0 + (slack > 0 ? slack : 0.0));
            if (!isfinite(min_bytes_partition(p, &k, S, limit, opts->mem_cap_bytes, cuts)))
                st = sq_error_set(SQ_ERR_INTERNAL, "plan: the optimum became infeasible");
        }
    }
    free(cand);
    costs_free(&k);
    if (st == SQ_OK) sq_plan_evaluate(p, opts, cuts, out);
    return st;
}
