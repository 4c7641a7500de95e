/* Reference twins of the backend ops (see ref.h): the definitions, written
 * as directly as the formulas allow, in double. */
#include <math.h>

#include "ref.h"

static float *at(const sq_tensor_t *t, int64_t r, int64_t c)
{
    return (float *)t->data + r * sq_tensor_ld(t) + c;
}

void sq_linear_ref(const sq_tensor_t *x, const sq_tensor_t *w, sq_wlayout_t layout,
                   const sq_tensor_t *bias, int accumulate, sq_tensor_t *y)
{
    int64_t n = sq_tensor_rows(x), in = sq_tensor_cols(x), out = sq_tensor_cols(y);
    for (int64_t r = 0; r < n; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = bias ? ((const float *)bias->data)[o] : 0.0;
            for (int64_t i = 0; i < in; i++) {
                double wv = layout == SQ_WEIGHT_OUT_IN ? *at(w, o, i) : *at(w, i, o);
                s += (double)*at(x, r, i) * wv;
            }
            if (accumulate) s += *at(y, r, o);
            *at(y, r, o) = (float)s;
        }
}

void sq_layernorm_ref(const sq_tensor_t *x, const sq_tensor_t *g, const sq_tensor_t *b, float eps,
                      sq_tensor_t *y)
{
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    const float *gp = g->data, *bp = b ? b->data : NULL;
    for (int64_t r = 0; r < n; r++) {
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < c; j++)
            mean += *at(x, r, j);
        mean /= (double)c;
        for (int64_t j = 0; j < c; j++)
            var += (*at(x, r, j) - mean) * (*at(x, r, j) - mean);
        var /= (double)c;
        double rstd = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < c; j++)
            *at(y, r, j) = (float)((*at(x, r, j) - mean) * rstd * gp[j] + (bp ? bp[j] : 0.0));
    }
}

void sq_rmsnorm_ref(const sq_tensor_t *x, const sq_tensor_t *g, float eps, sq_tensor_t *y)
{
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    const float *gp = g->data;
    for (int64_t r = 0; r < n; r++) {
        double ss = 0.0;
        for (int64_t j = 0; j < c; j++)
            ss += (double)*at(x, r, j) * *at(x, r, j);
        double rinv = 1.0 / sqrt(ss / (double)c + eps);
        for (int64_t j = 0; j < c; j++)
            *at(y, r, j) = (float)(*at(x, r, j) * rinv * gp[j]);
    }
}

double sq_act_ref(sq_act_t act, double v)
{
    switch (act) {
    case SQ_ACT_NONE:
        return v;
    case SQ_ACT_RELU:
        return v < 0.0 ? 0.0 : v;
    case SQ_ACT_GELU_TANH:
        return 0.5 * v *
               (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    case SQ_ACT_GELU_ERF:
        return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case SQ_ACT_SILU:
        return v / (1.0 + exp(-v));
    }
    return NAN;
}

void sq_activation_ref(sq_act_t act, sq_tensor_t *x)
{
    int64_t n = sq_tensor_rows(x), c = sq_tensor_cols(x);
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < c; j++)
            *at(x, r, j) = (float)sq_act_ref(act, *at(x, r, j));
}

void sq_glu_ref(sq_act_t act, const sq_tensor_t *gate, const sq_tensor_t *up, sq_tensor_t *y)
{
    int64_t n = sq_tensor_rows(gate), c = sq_tensor_cols(gate);
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < c; j++)
            *at(y, r, j) = (float)(sq_act_ref(act, *at(gate, r, j)) * *at(up, r, j));
}

void sq_add_ref(const sq_tensor_t *x, sq_tensor_t *y)
{
    int64_t n = sq_tensor_rows(y), c = sq_tensor_cols(y);
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < c; j++)
            *at(y, r, j) = *at(y, r, j) + *at(x, r, j);
}

void sq_embedding_ref(const sq_tensor_t *table, const int32_t *ids, int64_t n, int accumulate,
                      sq_tensor_t *y)
{
    int64_t c = sq_tensor_cols(table);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++)
            *at(y, i, j) = (accumulate ? *at(y, i, j) : 0.0f) + *at(table, ids[i], j);
}

void sq_rope_ref(sq_rope_style_t style, sq_tensor_t *x, int n_heads, int head_dim,
                 const int32_t *pos, float theta)
{
    int64_t n = sq_tensor_rows(x);
    int half = head_dim / 2;
    for (int64_t r = 0; r < n; r++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                /* the fp32 angle PyTorch and llama2.c rotate by (see rope.c) */
                float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
                double a = (double)((float)pos[r] * inv_freq);
                int64_t c0 = (int64_t)h * head_dim + (style == SQ_ROPE_HALF ? i : 2 * i);
                int64_t c1 = c0 + (style == SQ_ROPE_HALF ? half : 1);
                double x0 = *at(x, r, c0), x1 = *at(x, r, c1);
                *at(x, r, c0) = (float)(x0 * cos(a) - x1 * sin(a));
                *at(x, r, c1) = (float)(x0 * sin(a) + x1 * cos(a));
            }
}

/* scale * q_i . k_j in double */
static double score(const sq_tensor_t *q, const sq_tensor_t *k, int64_t qi, int64_t kj, int h,
                    int kvh, int d, float scale)
{
    double s = 0.0;
    for (int e = 0; e < d; e++)
        s += (double)*at(q, qi, (int64_t)h * d + e) * *at(k, kj, (int64_t)kvh * d + e);
    return s * scale;
}

void sq_attention_ref(const sq_tensor_t *q, const sq_tensor_t *k, const sq_tensor_t *v, int B,
                      int T, int n_heads, int n_kv_heads, int head_dim, float scale,
                      sq_tensor_t *out)
{
    enum { CHUNK = 64 }; /* output dims accumulated at once, in a stack array */
    int group = n_heads / n_kv_heads;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < n_heads; h++) {
            int kvh = h / group;
            for (int i = 0; i < T; i++) {
                int64_t qi = (int64_t)b * T + i;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j <= i; j++)
                    mx = fmax(mx, score(q, k, qi, (int64_t)b * T + j, h, kvh, head_dim, scale));
                for (int j = 0; j <= i; j++)
                    sum += exp(score(q, k, qi, (int64_t)b * T + j, h, kvh, head_dim, scale) - mx);
                for (int d0 = 0; d0 < head_dim; d0 += CHUNK) {
                    int nd = head_dim - d0 < CHUNK ? head_dim - d0 : CHUNK;
                    double acc[CHUNK] = {0};
                    for (int j = 0; j <= i; j++) {
                        int64_t kj = (int64_t)b * T + j;
                        double p = exp(score(q, k, qi, kj, h, kvh, head_dim, scale) - mx) / sum;
                        for (int e = 0; e < nd; e++)
                            acc[e] += p * *at(v, kj, (int64_t)kvh * head_dim + d0 + e);
                    }
                    for (int e = 0; e < nd; e++)
                        *at(out, qi, (int64_t)h * head_dim + d0 + e) = (float)acc[e];
                }
            }
        }
}

void sq_cross_entropy_ref(const sq_tensor_t *logits, const int32_t *targets, float *nll)
{
    int64_t n = sq_tensor_rows(logits), vocab = sq_tensor_cols(logits);
    for (int64_t r = 0; r < n; r++) {
        if (targets[r] < 0) {
            nll[r] = 0.0f;
            continue;
        }
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < vocab; j++)
            mx = fmax(mx, *at(logits, r, j));
        for (int64_t j = 0; j < vocab; j++)
            sum += exp(*at(logits, r, j) - mx);
        nll[r] = (float)(mx + log(sum) - *at(logits, r, targets[r]));
    }
}
