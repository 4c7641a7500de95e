/* stages-internal: the weight file object shared by the safetensors and
 * llama2.c loaders (weights.h is the public face). */
#ifndef SPARQ_STAGES_WEIGHTS_INTERNAL_H
#define SPARQ_STAGES_WEIGHTS_INTERNAL_H

#include "sparq/weights.h"

struct sq_weight_file {
    char *path;                /* what the caller passed to open (or the parse label) */
    char *file;                /* the file this object maps; tensors' .file points here */
    sq_weight_info_t *tensors; /* [n], sorted by name once finished (bsearch lookup) */
    size_t n;
    char *names; /* one block holding the names of this file's tensors */
    void *map;   /* read-only mapping owned by this object, or NULL */
    size_t map_len;
    sq_weight_file_t **parts; /* shards owned by a sharded (index.json) file */
    size_t n_parts;
};

/* Empty weight file named `path` (file = path). */
sq_status_t sq_wf_create(const char *path, sq_weight_file_t **out);

/* Sort the table by name and reject duplicate names (message names both
 * files). Must be called before the object is handed to a caller. */
sq_status_t sq_wf_finish(sq_weight_file_t *wf);

/* mmap `path` read-only into wf->map (the whole file; a zero-byte file maps
 * to nothing and map_len 0). */
sq_status_t sq_wf_map(sq_weight_file_t *wf, const char *path);

/* Read a whole small (text) file into a NUL-terminated malloc'd buffer;
 * files larger than max_bytes are refused. */
sq_status_t sq_read_text_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* Names under which a loader's source spells each checked config field, so
 * range errors name "num_key_value_heads" (HF) or "n_kv_heads" (llama2.c). */
typedef struct sq_cfg_keys {
    const char *vocab_size, *d_model, *n_layers, *n_heads, *n_kv_heads, *head_dim, *d_ff, *max_pos,
        *norm_eps, *rope_theta;
} sq_cfg_keys_t;

/* sq_model_config_validate with messages using `keys`. */
sq_status_t sq_model_config_validate_named(const sq_model_config_t *cfg, const char *label,
                                           const sq_cfg_keys_t *keys);

#endif
