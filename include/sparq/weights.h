/* sparq/weights.h — named tensors in memory-mapped model files.
 *
 * A weight file is a read-only table of named tensors whose bytes live in one
 * or more mmap()ed files: a single HF model.safetensors, a sharded set listed
 * by model.safetensors.index.json, or a llama2.c .bin (whose tensors are
 * given HF LLaMA names, see sq_llama2c_open). Nothing is copied at open time:
 * a stage touches, and so pages in, only the tensors it loads.
 */
#ifndef SPARQ_WEIGHTS_H
#define SPARQ_WEIGHTS_H

#include "sparq/tensor.h"
#include "sparq/model_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_weight_info {
    const char *name;     /* e.g. "model.layers.0.self_attn.q_proj.weight" */
    sq_dtype_t dtype;     /* F32, F16 or BF16 */
    int ndim;
    int64_t shape[SQ_MAX_DIMS];
    const void *data;     /* points into the mapping */
    size_t nbytes;
    const char *file;     /* path of the file that holds it (for messages) */
} sq_weight_info_t;

typedef struct sq_weight_file sq_weight_file_t;

/* Open safetensors weights. `path` is a .safetensors file, a
 * model.safetensors.index.json, or a directory holding either. Every header
 * is validated (size, JSON, dtypes, shapes vs byte ranges, ranges inside the
 * file and not overlapping); errors name the file and the tensor/field. */
sq_status_t sq_safetensors_open(const char *path, sq_weight_file_t **out);

/* Open a llama2.c checkpoint (.bin: 7 int32 header, then fp32 tensors).
 * Fills cfg (arch LLAMA, interleaved RoPE, eps 1e-5, theta 1e4) and exposes
 * tensors under HF LLaMA names (model.embed_tokens.weight,
 * model.layers.N.self_attn.q_proj.weight, ..., model.norm.weight, and
 * lm_head.weight when the classifier is not shared). The header is checked
 * against the file size. */
sq_status_t sq_llama2c_open(const char *path, sq_model_config_t *cfg, sq_weight_file_t **out);

void sq_weights_close(sq_weight_file_t *wf);

/* Lookup by exact name; NULL when absent. */
const sq_weight_info_t *sq_weights_find(const sq_weight_file_t *wf, const char *name);
/* Tensors in name order (lookup is a binary search over that order). */
size_t sq_weights_count(const sq_weight_file_t *wf);
const sq_weight_info_t *sq_weights_at(const sq_weight_file_t *wf, size_t i);
/* Human-readable source (the path given to open). */
const char *sq_weights_path(const sq_weight_file_t *wf);

/* Parse and validate a safetensors header held in memory: buf is the whole
 * file image (8-byte length, JSON header, data). `label` names the file in
 * messages. On success *out is a weight file whose tensor data points into
 * buf (the caller keeps buf alive). This is the fuzzing entry point. */
sq_status_t sq_safetensors_parse(const uint8_t *buf, size_t len, const char *label,
                                 sq_weight_file_t **out);

/* One tensor to write. */
typedef struct sq_weight_out {
    const char *name;
    sq_dtype_t dtype;     /* dtype in the file: F32, F16 or BF16 */
    int ndim;
    int64_t shape[SQ_MAX_DIMS];
    const float *data;    /* fp32 source, converted to dtype while writing */
} sq_weight_out_t;

/* Write a safetensors file crash-safely: to "path.tmp", fsync, rename over
 * path, fsync the folder. A reader never sees a half-written file. */
sq_status_t sq_safetensors_write(const char *path, const sq_weight_out_t *t, size_t n);

/* Largest JSON header accepted (bytes). */
#define SQ_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

#ifdef __cplusplus
}
#endif
#endif
