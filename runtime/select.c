/* Parameter selection for ZO: whole tensors by name, magnitude masks, files. */
#include "sparq/select.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/weights.h"

void sq_selection_free(sq_selection_t *sel)
{
    if (!sel) return;
    if (sel->be) { /* device copies */
        for (int i = 0; sel->masks && i < sel->n_params; i++) sel->be->ops->free(sel->be, sel->masks[i]);
        free(sel->masks);
        sel->masks = sel->host_masks;
    }
    for (int i = 0; sel->masks && i < sel->n_params; i++) free(sel->masks[i]);
    free(sel->masks);
    free(sel->tuned);
    memset(sel, 0, sizeof *sel);
}

typedef struct mag {
    float a;
    int64_t i;
} mag_t;

static int cmp_mag(const void *x, const void *y)
{
    const mag_t *a = x, *b = y;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* mask = the k smallest |w| (exactly k = round(fraction * n), at least 1) */
static sq_status_t magnitude_mask(sq_model_t *m, int idx, double fraction, uint8_t *mask)
{
    const sq_param_t *p = sq_model_param(m, idx);
    const int64_t n = sq_tensor_numel(&p->t);
    int64_t k = (int64_t)llround(fraction * (double)n);
    if (k < 1) k = 1;
    mag_t *v = malloc(sizeof *v * (size_t)n);
    float *copy = NULL;
    if (p->t.device != SQ_DEVICE_CPU && !(copy = malloc(sizeof(float) * (size_t)n))) {
        free(v);
        v = NULL;
    }
    if (!v) return sq_error_set(SQ_ERR_NOMEM, "select: out of memory for %s", p->name);
    if (copy) {
        sq_status_t st = sq_model_param_read(m, idx, copy);
        if (st != SQ_OK) {
            free(v);
            free(copy);
            return st;
        }
    }
    const float *w = copy ? copy : p->t.data;
    for (int64_t i = 0; i < n; i++) v[i] = (mag_t){fabsf(w[i]), i};
    free(copy);
    qsort(v, (size_t)n, sizeof *v, cmp_mag);
    memset(mask, 0, (size_t)n);
    for (int64_t i = 0; i < k; i++) mask[v[i].i] = 1;
    free(v);
    return SQ_OK;
}

static sq_status_t mask_from_file(const sq_weight_file_t *wf, const sq_param_t *p, uint8_t *mask,
                                  int64_t *count)
{
    const sq_weight_info_t *info = sq_weights_find(wf, p->name);
    const int64_t n = sq_tensor_numel(&p->t);
    int64_t numel = 1;
    for (int d = 0; d < info->ndim; d++) numel *= info->shape[d];
    if (numel != n)
        return sq_error_set(SQ_ERR_FORMAT, "%s: mask \"%s\" has %lld elements, the parameter %lld",
                            info->file, p->name, (long long)numel, (long long)n);
    float *tmp = malloc(sizeof(float) * (size_t)n);
    if (!tmp) return sq_error_set(SQ_ERR_NOMEM, "select: out of memory");
    sq_status_t st = sq_convert_to_f32(info->data, info->dtype, tmp, n);
    *count = 0;
    for (int64_t i = 0; st == SQ_OK && i < n; i++) {
        mask[i] = tmp[i] != 0.0f;
        *count += mask[i];
    }
    free(tmp);
    return st;
}

sq_status_t sq_selection_refresh(const sq_config_t *cfg, sq_model_t *m, sq_selection_t *sel)
{
    if (cfg->select.mode != SQ_SELECT_MAGNITUDE) return SQ_OK;
    sel->n_tuned_elems = 0;
    uint8_t **host = sel->be ? sel->host_masks : sel->masks;
    for (int i = 0; i < sel->n_params; i++) {
        sq_param_t *p = sq_model_param(m, i);
        SQ_TRY(magnitude_mask(m, i, cfg->select.fraction, host[i]));
        int64_t n = sq_tensor_numel(&p->t);
        for (int64_t e = 0; e < n; e++) sel->n_tuned_elems += host[i][e];
        if (sel->be) {
            sq_tensor_t d = sq_tensor_1d(sel->masks[i], SQ_DTYPE_I8, n);
            d.device = p->t.device;
            SQ_TRY(sel->be->ops->from_host(sel->be, host[i], (size_t)n, &d));
        }
    }
    return SQ_OK;
}

/* On a device backend the ZO ops read device copies of the masks. */
static sq_status_t upload_masks(sq_model_t *m, sq_selection_t *sel)
{
    sq_backend_t *be = sq_model_backend(m);
    if (be->ops->device == SQ_DEVICE_CPU) return SQ_OK;
    uint8_t **dev = calloc((size_t)sel->n_params + 1, sizeof *dev);
    if (!dev) return sq_error_set(SQ_ERR_NOMEM, "select: out of memory");
    sel->host_masks = sel->masks;
    sel->masks = dev;
    sel->be = be;
    for (int i = 0; i < sel->n_params; i++) {
        if (!sel->host_masks[i]) continue;
        const sq_param_t *p = sq_model_param(m, i);
        const int64_t n = sq_tensor_numel(&p->t);
        SQ_TRY(be->ops->alloc(be, (size_t)n, p->name, (void **)&dev[i]));
        sq_tensor_t d = sq_tensor_1d(dev[i], SQ_DTYPE_I8, n);
        d.device = p->t.device;
        SQ_TRY(be->ops->from_host(be, sel->host_masks[i], (size_t)n, &d));
    }
    return SQ_OK;
}

sq_status_t sq_selection_build(const sq_config_t *cfg, sq_model_t *m, sq_selection_t *sel)
{
    sq_status_t st = SQ_OK;
    sq_weight_file_t *wf = NULL;
    memset(sel, 0, sizeof *sel);
    sel->n_params = sq_model_param_count(m);
    sel->tuned = calloc((size_t)sel->n_params + 1, 1);
    sel->masks = calloc((size_t)sel->n_params + 1, sizeof *sel->masks);
    if (!sel->tuned || !sel->masks) {
        st = sq_error_set(SQ_ERR_NOMEM, "select: out of memory");
        goto fail;
    }
    if (cfg->select.mode == SQ_SELECT_MASK_FILE)
        SQ_TRY_GOTO(st, sq_safetensors_open(cfg->select.mask_file, &wf), fail);
    for (int i = 0; i < sel->n_params; i++) {
        sq_param_t *p = sq_model_param(m, i);
        int64_t n = sq_tensor_numel(&p->t);
        switch (cfg->select.mode) {
        case SQ_SELECT_ALL: sel->tuned[i] = 1; sel->n_tuned_elems += n; break;
        case SQ_SELECT_PATTERN:
            for (int k = 0; k < cfg->select.n_patterns; k++)
                if (fnmatch(cfg->select.patterns[k], p->name, 0) == 0) sel->tuned[i] = 1;
            if (sel->tuned[i]) sel->n_tuned_elems += n;
            break;
        case SQ_SELECT_MAGNITUDE:
            sel->tuned[i] = 1;
            if (!(sel->masks[i] = malloc((size_t)n))) {
                st = sq_error_set(SQ_ERR_NOMEM, "select: out of memory");
                goto fail;
            }
            break;
        case SQ_SELECT_MASK_FILE:
            if (!sq_weights_find(wf, p->name)) break;
            if (!(sel->masks[i] = malloc((size_t)n))) {
                st = sq_error_set(SQ_ERR_NOMEM, "select: out of memory");
                goto fail;
            }
            int64_t cnt;
            SQ_TRY_GOTO(st, mask_from_file(wf, p, sel->masks[i], &cnt), fail);
            sel->tuned[i] = cnt > 0;
            sel->n_tuned_elems += cnt;
            break;
        }
    }
    SQ_TRY_GOTO(st, upload_masks(m, sel), fail);
    SQ_TRY_GOTO(st, sq_selection_refresh(cfg, m, sel), fail);
    sq_weights_close(wf);
    return SQ_OK;
fail:
    sq_weights_close(wf);
    sq_selection_free(sel);
    return st;
}
