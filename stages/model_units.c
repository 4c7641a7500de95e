/* The unit sequence and split candidates of a model (pure functions of the
 * config: the planner uses them without loading weights). */
#include "sparq/model.h"

#include <stdio.h>

int sq_model_unit_count(const sq_model_config_t *cfg)
{
    return 3 * cfg->n_layers + 2;
}

sq_unit_kind_t sq_model_unit_kind(const sq_model_config_t *cfg, int u, int *layer)
{
    if (u <= 0) {
        if (layer) *layer = -1;
        return SQ_UNIT_EMBED;
    }
    if (u >= 3 * cfg->n_layers + 1) {
        if (layer) *layer = -1;
        return SQ_UNIT_HEAD;
    }
    if (layer) *layer = (u - 1) / 3;
    switch ((u - 1) % 3) {
    case 0: return SQ_UNIT_ATTN;
    case 1: return SQ_UNIT_MLP_IN;
    default: return SQ_UNIT_MLP_OUT;
    }
}

int sq_model_even_cut(int n_layers, int S, int j)
{
    if (j <= 0) return 0;
    if (j >= S) return 3 * n_layers + 2;
    return 1 + 3 * (n_layers * j / S);
}

const char *sq_unit_kind_name(sq_unit_kind_t k)
{
    switch (k) {
    case SQ_UNIT_EMBED: return "embed";
    case SQ_UNIT_ATTN: return "attn";
    case SQ_UNIT_MLP_IN: return "mlp_in";
    case SQ_UNIT_MLP_OUT: return "mlp_out";
    case SQ_UNIT_HEAD: return "head";
    }
    return "?";
}

int sq_model_split_candidates(const sq_model_config_t *cfg, sq_split_candidate_t *out, int cap)
{
    int units = sq_model_unit_count(cfg), n = 0;
    for (int u = 1; u < units; u++, n++) {
        if (n >= cap) continue;
        int layer;
        sq_unit_kind_t prev = sq_model_unit_kind(cfg, u - 1, &layer);
        sq_split_candidate_t *c = &out[n];
        c->unit = u;
        c->layer = layer;
        c->n_tensors = 1;
        c->tensors[0] = "hidden";
        c->cols[0] = cfg->d_model;
        c->tensors[1] = NULL;
        c->cols[1] = 0;
        switch (prev) {
        case SQ_UNIT_EMBED: snprintf(c->name, sizeof c->name, "embed"); break;
        case SQ_UNIT_ATTN: snprintf(c->name, sizeof c->name, "L%d.attn", layer); break;
        case SQ_UNIT_MLP_IN:
            snprintf(c->name, sizeof c->name, "L%d.mlp_act", layer);
            c->n_tensors = 2;
            c->tensors[1] = "mlp_act";
            c->cols[1] = cfg->d_ff;
            break;
        case SQ_UNIT_MLP_OUT: snprintf(c->name, sizeof c->name, "L%d.out", layer); break;
        case SQ_UNIT_HEAD: break;
        }
    }
    return n;
}
