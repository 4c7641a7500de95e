/* sparq/select.h — which parameters (and which of their elements) ZO tunes.
 *
 *   all        every parameter of the stage
 *   pattern    whole tensors whose HF name matches a shell glob
 *   magnitude  Sparse MeZO: in each tensor, the `fraction` of elements with
 *              the smallest |w| (ties broken by index), recomputable
 *   mask_file  a safetensors file of masks named like the parameters (any
 *              dtype; non-zero = tuned); parameters absent from it are frozen
 */
#ifndef SPARQ_SELECT_H
#define SPARQ_SELECT_H

#include "sparq/config.h"
#include "sparq/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_selection {
    int n_params;
    uint8_t *tuned;   /* [n_params] */
    uint8_t **masks;  /* [n_params] element masks (NULL entry: whole tensor), in the
                       * backend's memory: what the ZO ops read */
    uint8_t **host_masks; /* the same masks in host memory (== masks on the CPU) */
    sq_backend_t *be;     /* owner of device masks (NULL on the CPU) */
    int64_t n_tuned_elems;
} sq_selection_t;

/* A stage may tune nothing (a pipeline stage whose layers are all frozen);
 * whether that is an error is the caller's call. */
sq_status_t sq_selection_build(const sq_config_t *cfg, sq_model_t *m, sq_selection_t *sel);
/* Recompute magnitude masks from the current weights (no-op for other modes). */
sq_status_t sq_selection_refresh(const sq_config_t *cfg, sq_model_t *m, sq_selection_t *sel);
void sq_selection_free(sq_selection_t *sel);

#ifdef __cplusplus
}
#endif
#endif
