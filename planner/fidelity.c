/* Gradient fidelity per split candidate: does the codec change the ZO
 * gradient estimate? For the same steps and seeds as a run, the projected
 * gradient g = (L+ - L-) / 2eps is computed with exact transport and with the
 * job's codec at one candidate (every crossing tensor encoded and decoded in
 * both the +eps and the -eps pass), for every candidate and bit width.
 *
 * With ZO pair coding (codec.zo_pair) the -eps pass sends x- - x+ and the
 * receiver adds its decoded x+, exactly as the workers do; the mean size of
 * those difference messages is recorded too, since it is what the -eps pass
 * really sends (zero upstream of every tuned parameter).
 *
 * Per candidate u and micro-batch: the units before u run once per sign, the
 * boundary is saved, and for each bit width the codec's version of it runs
 * through the rest of the model to the loss; a unit reads nothing but the
 * tensors crossing the boundary before it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner_internal.h"
#include "sparq/zo_rng.h"

enum { NB = SQ_PLAN_N_BITS };

typedef struct fid_bufs {
    float *diff;         /* scratch: x- - x+ (pair coding) */
    float *plus_exact;   /* x+ of the micro-batch (pair coding) */
    float *plus_hat[NB]; /* decoded x+ per bit width (pair coding) */
} fid_bufs_t;

static double terms_sum(sq_plan_ctx_t *c, sq_task_batch_t *mb, int *n)
{
    const int k = sq_task_loss_terms(c->task, mb, c->terms, NULL);
    double s = 0;
    for (int i = 0; i < k; i++) s += c->terms[i];
    if (n) *n += k;
    return s;
}

/* Encode + decode the boundary with q in place; with pair coding the -eps
 * pass sends x- - x+ instead, and gets x^+ + decode(that). Adds the message
 * bytes to *bytes. */
static sq_status_t transport(sq_plan_ctx_t *c, const sq_boundary_t *bd, const sq_codec_params_t *q,
                             int pair, int sign, fid_bufs_t *fb, int b, double *bytes)
{
    sq_plan_codec_sum_t s = {0};
    if (pair && sign < 0) {
        /* the sender's side, from a copy of x+ (the other bit widths need it) */
        float *d = fb->diff;
        memcpy(d, fb->plus_exact, sizeof(float) * (size_t)sq_boundary_numel(bd));
        sq_boundary_pair_send(bd, sign, d); /* d = x- - x+ */
        sq_boundary_t dv = *bd;
        int64_t off = 0;
        for (int k = 0; k < bd->n_tensors; k++) {
            const int64_t rows = sq_tensor_rows(&bd->t[k]), cols = sq_tensor_cols(&bd->t[k]);
            dv.t[k] = sq_tensor_2d(d + off, SQ_DTYPE_F32, rows, cols);
            off += rows * cols;
        }
        SQ_TRY(sq_plan_codec_boundary(c, &dv, q, 1, &s)); /* d := decode(encode(d)) */
        sq_boundary_load(bd, d);
    } else {
        SQ_TRY(sq_plan_codec_boundary(c, bd, q, 1, &s));
    }
    if (pair) sq_boundary_pair_recv(bd, sign, fb->plus_hat[b]); /* the receiver's side */
    *bytes += s.bytes;
    return SQ_OK;
}

static sq_status_t set_sign(sq_plan_ctx_t *c, uint64_t seed, int sign)
{
    sq_perturbation_t pert = {.seed = seed, .scale = (float)(sign * c->cfg.optimizer.eps),
                              .tuned = c->sel.tuned, .masks = (const uint8_t *const *)c->sel.masks};
    return sq_model_set_perturbation(c->model, &pert);
}

/* Loss sums of micro-batch mb with the codec at every candidate and bit
 * width: sum[s * W + u * NB + b] for s = 0 (+eps), 1 (-eps); message bytes
 * likewise. Per candidate the +eps pass runs first, as in the pipeline. */
static sq_status_t candidate_losses(sq_plan_ctx_t *c, sq_task_batch_t *mb, uint64_t seed, int pair,
                                    const sq_codec_params_t *job, fid_bufs_t *fb, double *sum,
                                    double *bytes)
{
    const int U = c->n_units, B = mb->batch.B, T = mb->batch.T, W = U * NB;
    for (int u = 1; u < U; u++)
        for (int s = 0; s < 2; s++) {
            const int sign = s ? -1 : 1;
            /* the prefix, exact (a unit range starts from its input boundary only) */
            SQ_TRY(set_sign(c, seed, sign));
            SQ_TRY(sq_model_forward_units(c->model, &mb->batch, 0, u, NULL));
            sq_boundary_t bd;
            SQ_TRY(sq_model_boundary(c->model, u, B, T, &bd));
            sq_boundary_save(&bd, c->save);
            if (pair && sign > 0) sq_boundary_save(&bd, fb->plus_exact);
            for (int b = 0; b < NB; b++) {
                sq_codec_params_t q = *job;
                q.bits = sq_plan_bits[b];
                sq_boundary_load(&bd, c->save);
                SQ_TRY(transport(c, &bd, &q, pair, sign, fb, b, &bytes[s * W + u * NB + b]));
                SQ_TRY(sq_model_forward_units(c->model, &mb->batch, u, U, &mb->head));
                sum[s * W + u * NB + b] += terms_sum(c, mb, NULL);
            }
        }
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
    const int U = c->n_units, M = c->cfg.pipeline.micro_batches, W = U * NB;
    const int pair = c->cfg.codec.zo_pair && p->codec.encoding != SQ_CODEC_LOSSLESS;
    const double eps = c->cfg.optimizer.eps;
    /* boundary buffers: the largest crossing (hidden + mlp_act) of one micro-batch */
    const size_t bnd = (size_t)c->B * c->T * (size_t)(c->mcfg->d_model + c->mcfg->d_ff);
    fid_bufs_t fb = {0};
    double *g = calloc((size_t)(W + 1) * steps, sizeof *g); /* g[w * steps + t]; w = W: exact */
    double *sum = malloc(sizeof *sum * (size_t)W * 2), *bytes = calloc((size_t)W * 2, sizeof *bytes);
    int ok = g && sum && bytes;
    if (ok) {
        fb.diff = malloc(sizeof(float) * bnd);
        fb.plus_exact = malloc(sizeof(float) * bnd);
        ok = fb.diff && fb.plus_exact;
        for (int b = 0; ok && b < NB; b++) ok = (fb.plus_hat[b] = malloc(sizeof(float) * bnd)) != NULL;
    }
    sq_status_t st = ok ? SQ_OK : sq_error_set(SQ_ERR_NOMEM, "planner: out of memory");
    for (int t = 0; st == SQ_OK && t < steps; t++) {
        sq_task_batch_t full;
        st = sq_task_train_batch(c->task, c->cfg.train.seed, t, &full);
        const uint64_t seed = sq_zo_step_seed(c->cfg.train.seed, (uint64_t)t, 0);
        memset(sum, 0, sizeof *sum * (size_t)W * 2);
        double exact[2] = {0, 0};
        int count[2] = {0, 0};
        for (int m = 0; st == SQ_OK && m < M; m++) {
            sq_task_batch_t mb;
            st = sq_task_micro_batch(c->task, &full, m, M, &mb);
            for (int s = 0; st == SQ_OK && s < 2; s++) { /* exact transport */
                st = set_sign(c, seed, s ? -1 : 1);
                if (st == SQ_OK)
                    st = sq_model_forward_units(c->model, &mb.batch, 0, U, &mb.head);
                if (st == SQ_OK) exact[s] += terms_sum(c, &mb, &count[s]);
            }
            if (st == SQ_OK) st = candidate_losses(c, &mb, seed, pair, &p->codec, &fb, sum, bytes);
        }
        for (int w = 0; st == SQ_OK && w < W; w++)
            g[(size_t)w * steps + t] = (sum[w] / count[0] - sum[W + w] / count[1]) / (2 * eps);
        g[(size_t)W * steps + t] = (exact[0] / count[0] - exact[1] / count[1]) / (2 * eps);
        if (st == SQ_OK && !quiet)
            fprintf(stderr, "sparq plan: gradient fidelity: step %d/%d\n", t + 1, steps);
    }
    if (st == SQ_OK) st = sq_model_set_perturbation(c->model, NULL);
    for (int u = 1; st == SQ_OK && u < U; u++)
        for (int b = 0; b < NB; b++) {
            sq_plan_cand_t *pc = &p->cands[u - 1];
            const double *ge = g + (size_t)W * steps, *gc = g + (size_t)(u * NB + b) * steps;
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
            /* what the -eps messages weigh against the +eps ones */
            const double plus = bytes[u * NB + b], minus = bytes[W + u * NB + b];
            pc->minus_ratio[b] = plus > 0 ? minus / plus : 1.0;
        }
    free(g), free(sum), free(bytes);
    free(fb.diff), free(fb.plus_exact);
    for (int b = 0; b < NB; b++) free(fb.plus_hat[b]);
    return st;
}
