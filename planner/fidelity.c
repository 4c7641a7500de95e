/* Gradient fidelity per split candidate: does the codec change the ZO
 * gradient estimate? For the same steps and seeds as a run, the projected
 * gradient g = (L+ - L-) / 2eps is computed with exact transport and with the
 * job's codec applied at one candidate (encode + decode of every crossing
 * tensor, in both the +eps and the -eps pass), for every candidate.
 *
 * The exact forward runs unit by unit; at each boundary its tensors are saved,
 * replaced by their decoded codec version, the rest of the model runs to the
 * loss, and the exact values are put back before the exact chain goes on: a
 * unit reads nothing but the tensors crossing the boundary before it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner_internal.h"
#include "sparq/zo_rng.h"

static void boundary_copy(const sq_boundary_t *bd, float *buf, int to_buf)
{
    int64_t off = 0;
    for (int k = 0; k < bd->n_tensors; k++) {
        const size_t n = (size_t)sq_tensor_numel(&bd->t[k]);
        if (to_buf) memcpy(buf + off, bd->t[k].data, n * sizeof(float));
        else memcpy(bd->t[k].data, buf + off, n * sizeof(float));
        off += (int64_t)n;
    }
}

static double terms_sum(sq_plan_ctx_t *c, sq_task_batch_t *mb, int *n)
{
    const int k = sq_task_loss_terms(c->task, mb, c->terms, NULL);
    double s = 0;
    for (int i = 0; i < k; i++) s += c->terms[i];
    *n += k;
    return s;
}

/* Loss sums of one micro-batch at the current perturbation: sum[u * NB + b]
 * with the codec at candidate u (u = 1 .. U-1) at bit width b, sum[0] with
 * exact transport. */
static sq_status_t micro_batch_losses(sq_plan_ctx_t *c, sq_task_batch_t *mb,
                                      const sq_codec_params_t *job, double *sum, int *count)
{
    enum { NB = SQ_PLAN_N_BITS };
    const int U = c->n_units, B = mb->batch.B, T = mb->batch.T;
    for (int u = 1; u < U; u++) {
        SQ_TRY(sq_model_forward_units(c->model, &mb->batch, u - 1, u, NULL));
        sq_boundary_t bd;
        SQ_TRY(sq_model_boundary(c->model, u, B, T, &bd));
        boundary_copy(&bd, c->save, 1);
        for (int b = 0; b < NB; b++) {
            sq_codec_params_t q = *job;
            q.bits = sq_plan_bits[b];
            sq_plan_codec_sum_t s = {0};
            SQ_TRY(sq_plan_codec_boundary(c, &bd, &q, 1, &s));
            SQ_TRY(sq_model_forward_units(c->model, &mb->batch, u, U, &mb->head));
            int n = 0;
            sum[u * NB + b] += terms_sum(c, mb, &n);
            boundary_copy(&bd, c->save, 0);
        }
    }
    SQ_TRY(sq_model_forward_units(c->model, &mb->batch, U - 1, U, &mb->head));
    sum[0] += terms_sum(c, mb, count);
    return SQ_OK;
}

static double pearson(const double *x, const double *y, int n)
{
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

sq_status_t sq_plan_measure_fidelity(sq_plan_ctx_t *c, int steps, int quiet, sq_plan_profile_t *p)
{
    const int U = c->n_units, M = c->cfg.pipeline.micro_batches;
    const double eps = c->cfg.optimizer.eps;
    const int NB = SQ_PLAN_N_BITS, W = U * NB; /* slots u * NB + b; slot 0: exact */
    double *g = calloc((size_t)W * (size_t)steps, sizeof *g); /* g[slot * steps + t] */
    double *sum = malloc(sizeof *sum * (size_t)W * 2);
    if (!g || !sum) {
        free(g), free(sum);
        return sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    }
    sq_status_t st = SQ_OK;
    for (int t = 0; st == SQ_OK && t < steps; t++) {
        sq_task_batch_t full;
        st = sq_task_train_batch(c->task, c->cfg.train.seed, t, &full);
        const uint64_t seed = sq_zo_step_seed(c->cfg.train.seed, (uint64_t)t, 0);
        memset(sum, 0, sizeof *sum * (size_t)W * 2);
        int count[2] = {0, 0};
        for (int s = 0; st == SQ_OK && s < 2; s++) {
            sq_perturbation_t pert = {.seed = seed, .scale = (float)(s ? -eps : eps),
                                      .tuned = c->sel.tuned,
                                      .masks = (const uint8_t *const *)c->sel.masks};
            st = sq_model_set_perturbation(c->model, &pert);
            for (int m = 0; st == SQ_OK && m < M; m++) {
                sq_task_batch_t mb;
                st = sq_task_micro_batch(c->task, &full, m, M, &mb);
                if (st == SQ_OK) st = micro_batch_losses(c, &mb, &p->codec, sum + s * W, &count[s]);
            }
        }
        for (int w = 0; st == SQ_OK && w < W; w++)
            g[(size_t)w * steps + t] = (sum[w] / count[0] - sum[W + w] / count[1]) / (2 * eps);
        if (st == SQ_OK && !quiet)
            fprintf(stderr, "sparq plan: gradient fidelity: step %d/%d\n", t + 1, steps);
    }
    st = st == SQ_OK ? sq_model_set_perturbation(c->model, NULL) : st;
    for (int u = 1; st == SQ_OK && u < U; u++)
        for (int b = 0; b < NB; b++) {
            sq_plan_cand_t *pc = &p->cands[u - 1];
            const double *ge = g, *gc = g + (size_t)(u * NB + b) * steps;
            double d2 = 0, e2 = 0;
            int same = 0;
            for (int t = 0; t < steps; t++) {
                d2 += (gc[t] - ge[t]) * (gc[t] - ge[t]);
                e2 += ge[t] * ge[t];
                same += (gc[t] > 0) == (ge[t] > 0);
            }
            pc->fid_steps = steps;
            pc->fid_corr[b] = pearson(gc, ge, steps);
            pc->fid_rel_err[b] = e2 > 0 ? sqrt(d2 / e2) : NAN;
            pc->fid_sign[b] = (double)same / steps;
        }
    free(g);
    free(sum);
    return st;
}
