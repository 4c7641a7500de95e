/* The job configuration: one key table, a libyaml walker over it. */
#include "sparq/config.h"
#include "sparq/model.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define OFF(field) offsetof(sq_config_t, field)
#define SZ(field) sizeof(((sq_config_t *)0)->field)
#define ITEM(field) sizeof(((sq_config_t *)0)->field[0])

static const char *const task_types[] = {"classification", "lm", NULL};
static const char *const schedules[] = {"constant", "linear", "cosine", NULL};
static const char *const select_modes[] = {"all", "pattern", "magnitude", "mask_file", NULL};
static const char *const perturb_modes[] = {"out_of_place", "in_place", NULL};
/* same order as sq_codec_encoding_t / granularity / rounding */
static const char *const codec_encodings[] = {"dense", "bitmap", "csr", "lossless", "auto", NULL};
static const char *const codec_granularities[] = {"row", "group", NULL};
static const char *const codec_roundings[] = {"nearest", "stochastic", NULL};
static const char *const scale_dtypes[] = {"f32", "f16", NULL};
static const char *const booleans[] = {"false", "true", NULL};
static const char *const devices[] = {"cpu", "cuda", NULL};
const char *const sq_config_gemm_names[] = {"fp32", "tf32", "bf16", "fp16", NULL}; /* train.gemm */

#define BIG 1e18
const sq_config_key_t sq_config_keys[] = {
    {"model", SQ_CFG_PATH, OFF(model), SZ(model), 0, "", 0, 0, NULL,
     "HF model directory, model.safetensors.index.json, or llama2.c .bin"},
    {"tokenizer", SQ_CFG_PATH, OFF(tokenizer), SZ(tokenizer), 0, "", 0, 0, NULL,
     "folder with vocab.json + merges.txt, or tokenizer.json (default: the model folder)"},
    {"output", SQ_CFG_PATH, OFF(output), SZ(output), 0, "runs/default", 0, 0, NULL,
     "run folder: config copy, run log (the checkpoint), metrics.jsonl, snapshots"},
    {"task.type", SQ_CFG_ENUM, OFF(task.type), 0, 0, "classification", 0, 0, task_types,
     "classification (prompt + label words, MeZO style) or lm (next-token loss on a text file)"},
    {"task.train", SQ_CFG_PATH, OFF(task.train), SZ(task.train), 0, "", 0, 0, NULL,
     "training data: JSONL {\"text\",\"label\"} (classification) or a text file (lm)"},
    {"task.eval", SQ_CFG_PATH, OFF(task.eval), SZ(task.eval), 0, "", 0, 0, NULL,
     "evaluation data, same format (optional)"},
    {"task.template", SQ_CFG_STR, OFF(task.template_), SZ(task.template_), 0, "{text} It was", 0,
     0, NULL, "prompt template; {text} is replaced by the example's text"},
    {"task.labels", SQ_CFG_STRLIST, OFF(task.labels), ITEM(task.labels), OFF(task.n_labels), "",
     0, 0, NULL, "label words in label order, e.g. [\" terrible\", \" great\"]"},
    {"task.max_len", SQ_CFG_INT, OFF(task.max_len), 0, 0, "64", 2, 1 << 20, NULL,
     "tokens per example (classification: prompt cut from the left; lm: window length)"},
    {"task.eval_limit", SQ_CFG_INT, OFF(task.eval_limit), 0, 0, "0", 0, 1 << 30, NULL,
     "evaluate on the first N eval examples (0 = all)"},
    {"task.bos_id", SQ_CFG_INT, OFF(task.bos_id), 0, 0, "-1", -1, 1 << 30, NULL,
     "token id put before every example, e.g. 2 for OPT's </s> (-1 = none)"},
    {"optimizer.lr", SQ_CFG_FLOAT, OFF(optimizer.lr), 0, 0, "1e-6", 0, 1e3, NULL,
     "learning rate"},
    {"optimizer.eps", SQ_CFG_FLOAT, OFF(optimizer.eps), 0, 0, "1e-3", 1e-12, 1e3, NULL,
     "perturbation scale epsilon"},
    {"optimizer.schedule", SQ_CFG_ENUM, OFF(optimizer.schedule), 0, 0, "constant", 0, 0,
     schedules, "learning-rate schedule over train.steps"},
    {"optimizer.weight_decay", SQ_CFG_FLOAT, OFF(optimizer.weight_decay), 0, 0, "0", 0, 1e3, NULL,
     "decoupled weight decay (not applied to biases and norms)"},
    {"optimizer.n_spsa", SQ_CFG_INT, OFF(optimizer.n_spsa), 0, 0, "1", 1, SQ_MAX_SPSA, NULL,
     "SPSA samples (seeds) averaged per step"},
    {"optimizer.perturbation", SQ_CFG_ENUM, OFF(optimizer.perturbation), 0, 0, "out_of_place", 0,
     0, perturb_modes, "out_of_place (theta written only by the update) or in_place"},
    {"select.mode", SQ_CFG_ENUM, OFF(select.mode), 0, 0, "all", 0, 0, select_modes,
     "which parameters are tuned"},
    {"select.patterns", SQ_CFG_STRLIST, OFF(select.patterns), ITEM(select.patterns),
     OFF(select.n_patterns), "", 0, 0, NULL,
     "pattern mode: shell globs over tensor names, e.g. [\"*.bias\", \"*layers.5.*\"]"},
    {"select.fraction", SQ_CFG_FLOAT, OFF(select.fraction), 0, 0, "0.01", 1e-9, 1, NULL,
     "magnitude mode: fraction of each weight matrix tuned (smallest |w|)"},
    {"select.recompute_every", SQ_CFG_INT, OFF(select.recompute_every), 0, 0, "0", 0, 1 << 30,
     NULL, "magnitude mode: recompute the mask every N steps (0 = static)"},
    {"select.mask_file", SQ_CFG_PATH, OFF(select.mask_file), SZ(select.mask_file), 0, "", 0, 0,
     NULL, "mask_file mode: safetensors of U8/F32 masks named like the parameters"},
    {"pipeline.stages", SQ_CFG_INT, OFF(pipeline.stages), 0, 0, "1", 1, SQ_CONFIG_LIST_MAX, NULL,
     "pipeline stages, one worker process each (sparq launch / sparq worker)"},
    {"pipeline.boundaries", SQ_CFG_STRLIST, OFF(pipeline.boundaries), ITEM(pipeline.boundaries),
     OFF(pipeline.n_boundaries), "", 0, 0, NULL,
     "first unit of stages 1..S-1 (units: 0 embed, 1+3l attn, 2+3l mlp_in, 3+3l mlp_out, "
     "3L+1 head); empty: even split by layers"},
    {"pipeline.addresses", SQ_CFG_STRLIST, OFF(pipeline.addresses), ITEM(pipeline.addresses),
     OFF(pipeline.n_addresses), "", 0, 0, NULL,
     "listen address host:port of stages 1..S-1 (stage k-1 connects to stage k)"},
    {"pipeline.base_port", SQ_CFG_INT, OFF(pipeline.base_port), 0, 0, "29500", 1024, 65000, NULL,
     "without addresses: stage k listens on 127.0.0.1:base_port+k"},
    {"pipeline.plan", SQ_CFG_PATH, OFF(pipeline.plan), SZ(pipeline.plan), 0, "", 0, 0, NULL,
     "plan file from `sparq plan`: sets pipeline.stages/boundaries and the per-boundary codec "
     "(give it or pipeline.boundaries, not both)"},
    {"pipeline.plan_units", SQ_CFG_INT, OFF(pipeline.plan_units), 0, 0, "0", 0, 1 << 20, NULL,
     "units of the model the boundaries were planned for (written by sparq plan; 0 = unchecked)"},
    {"pipeline.micro_batches", SQ_CFG_INT, OFF(pipeline.micro_batches), 0, 0, "1", 1, 1024, NULL,
     "micro-batches per step (must divide train.batch_size); 2x as many forwards in flight"},
    {"pipeline.token", SQ_CFG_STR, OFF(pipeline.token), SZ(pipeline.token), 0, "", 0, 0, NULL,
     "job token that stages check when they connect (env SPARQ_JOB_TOKEN wins; sparq launch "
     "makes a random one)"},
    {"codec.encoding", SQ_CFG_ENUM, OFF(codec.encoding), 0, 0, "auto", 0, 0, codec_encodings,
     "activation encoding between stages (lossless: no quantization, see codec.lossless_dtype)"},
    {"codec.lossless_dtype", SQ_CFG_ENUM, OFF(codec.lossless_f16), 0, 0, "f32", 0, 0, scale_dtypes,
     "lossless encoding: f32 (bit-exact) or f16 (the dense fp16 baseline)"},
    {"codec.bits", SQ_CFG_INT, OFF(codec.bits), 0, 0, "8", 2, 8, NULL, "code bits: 8, 4 or 2"},
    {"codec.granularity", SQ_CFG_ENUM, OFF(codec.granularity), 0, 0, "row", 0, 0,
     codec_granularities, "one scale per token (row) or per group of columns"},
    {"codec.group_size", SQ_CFG_INT, OFF(codec.group_size), 0, 0, "64", 1, 1 << 16, NULL,
     "columns per scale in group mode (power of two dividing the width)"},
    {"codec.scale_dtype", SQ_CFG_ENUM, OFF(codec.scale_f16), 0, 0, "f32", 0, 0, scale_dtypes,
     "scale precision on the wire"},
    {"codec.rounding", SQ_CFG_ENUM, OFF(codec.rounding), 0, 0, "nearest", 0, 0, codec_roundings,
     "stochastic: dither shared by the +eps and -eps passes of a micro-batch"},
    {"codec.zo_pair", SQ_CFG_ENUM, OFF(codec.zo_pair), 0, 0, "true", 0, 0, booleans,
     "ZO pair coding: the -eps pass of a micro-batch sends x- - x+ (quantized on its own "
     "scale) and the receiver adds its decoded x+, so both passes carry the same quantization "
     "error and the projected gradient keeps its precision (not for lossless)"},
    {"codec.boundary_bits", SQ_CFG_STRLIST, OFF(codec.boundary_bits), ITEM(codec.boundary_bits),
     OFF(codec.n_boundary_bits), "", 0, 0, NULL,
     "per boundary (stage k -> k+1): code bits overriding codec.bits, e.g. [8, 4]"},
    {"codec.boundary_encodings", SQ_CFG_STRLIST, OFF(codec.boundary_encodings),
     ITEM(codec.boundary_encodings), OFF(codec.n_boundary_encodings), "", 0, 0, NULL,
     "per boundary: encoding overriding codec.encoding, e.g. [lossless, auto]"},
    {"train.steps", SQ_CFG_INT, OFF(train.steps), 0, 0, "1000", 0, 1 << 30, NULL,
     "optimizer steps"},
    {"train.batch_size", SQ_CFG_INT, OFF(train.batch_size), 0, 0, "16", 1, 1 << 16, NULL,
     "examples per step"},
    {"train.eval_every", SQ_CFG_INT, OFF(train.eval_every), 0, 0, "100", 0, 1 << 30, NULL,
     "evaluate every N steps (0 = only at the start and the end)"},
    {"train.log_every", SQ_CFG_INT, OFF(train.log_every), 0, 0, "10", 1, 1 << 30, NULL,
     "progress line and run-log flush every N steps"},
    {"train.snapshot_every", SQ_CFG_INT, OFF(train.snapshot_every), 0, 0, "500", 0, 1 << 30,
     NULL, "full snapshot of tuned parameters every N steps (0 = only at the end)"},
    {"train.seed", SQ_CFG_U64, OFF(train.seed), 0, 0, "0", 0, BIG, NULL,
     "run seed: step seeds and data order derive from it"},
    {"train.threads", SQ_CFG_INT, OFF(train.threads), 0, 0, "0", 0, 1024, NULL,
     "CPU threads (0 = all cores)"},
    {"train.device", SQ_CFG_ENUM, OFF(train.device), 0, 0, "cpu", 0, 0, devices,
     "where stage workers compute: cpu, or cuda (stage k on GPU k mod the GPU count, or "
     "SPARQ_CUDA_DEVICE)"},
    {"train.overlap", SQ_CFG_ENUM, OFF(train.overlap), 0, 0, "true", 0, 0, booleans,
     "cuda: overlap a micro-batch's activation encode, copy and send with the next compute"},
    {"train.gemm", SQ_CFG_ENUM, OFF(train.gemm), 0, 0, "fp32", 0, 0, sq_config_gemm_names,
     "cuda: the linear layers' GEMM math: fp32, tf32 (fp32 operands on TF32 tensor cores), "
     "bf16 or fp16 (weights cast, perturbed on the way, into 16-bit operands; fp32 "
     "accumulation)"},
};
const size_t sq_config_key_count = sizeof sq_config_keys / sizeof sq_config_keys[0];

static void print_value(const sq_config_t *cfg, const sq_config_key_t *k, FILE *f);

static const sq_config_key_t *find_key(const char *key)
{
    for (size_t i = 0; i < sq_config_key_count; i++)
        if (!strcmp(sq_config_keys[i].key, key)) return &sq_config_keys[i];
    return NULL;
}

static int is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (size_t i = 0; i < sq_config_key_count; i++)
        if (!strncmp(sq_config_keys[i].key, prefix, n) && sq_config_keys[i].key[n] == '.') return 1;
    return 0;
}

/* where = "file:line" for messages */
static sq_status_t set_scalar(sq_config_t *cfg, const sq_config_key_t *k, const char *v,
                              const char *where, const char *base_dir)
{
    char *p = (char *)cfg + k->offset, *end;
    switch (k->type) {
    case SQ_CFG_STR:
    case SQ_CFG_PATH: {
        int rel = k->type == SQ_CFG_PATH && v[0] && v[0] != '/' && base_dir && base_dir[0];
        int n = rel ? snprintf(p, k->size, "%s/%s", base_dir, v) : snprintf(p, k->size, "%s", v);
        if (n < 0 || (size_t)n >= k->size)
            return sq_error_set(SQ_ERR_CONFIG, "%s: %s: value longer than %zu characters", where,
                                k->key, k->size - 1);
        /* absolute where the file exists, so a run folder's config works from anywhere */
        char real[PATH_MAX];
        if (k->type == SQ_CFG_PATH && p[0] && realpath(p, real) && strlen(real) < k->size)
            snprintf(p, k->size, "%s", real);
        return SQ_OK;
    }
    case SQ_CFG_INT:
    case SQ_CFG_U64:
    case SQ_CFG_FLOAT: {
        errno = 0;
        double d = strtod(v, &end);
        if (!v[0] || *end || errno == ERANGE || !isfinite(d))
            return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected a number, got \"%s\"", where,
                                k->key, v);
        if (k->type != SQ_CFG_FLOAT && d != floor(d))
            return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected an integer, got \"%s\"", where,
                                k->key, v);
        if (d < k->min || d > k->max)
            return sq_error_set(SQ_ERR_RANGE, "%s: %s: %s is outside [%g, %g]", where, k->key, v,
                                k->min, k->max);
        if (k->type == SQ_CFG_INT) *(int *)p = (int)d;
        else if (k->type == SQ_CFG_U64) *(uint64_t *)p = strtoull(v, NULL, 10);
        else *(double *)p = d;
        return SQ_OK;
    }
    case SQ_CFG_ENUM:
        for (int i = 0; k->enum_names[i]; i++)
            if (!strcmp(k->enum_names[i], v)) {
                *(int *)p = i;
                return SQ_OK;
            }
        {
            char opts[256] = "";
            size_t n = 0;
            for (int i = 0; k->enum_names[i]; i++)
                n += (size_t)snprintf(opts + n, sizeof opts - n, "%s%s", i ? ", " : "",
                                      k->enum_names[i]);
            return sq_error_set(SQ_ERR_CONFIG, "%s: %s: \"%s\" is not one of: %s", where, k->key,
                                v, opts);
        }
    case SQ_CFG_STRLIST: break;
    }
    return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected a list", where, k->key);
}

static sq_status_t set_list_item(sq_config_t *cfg, const sq_config_key_t *k, int idx, const char *v,
                                 const char *where)
{
    int *count = (int *)((char *)cfg + k->count_offset);
    if (idx >= SQ_CONFIG_LIST_MAX)
        return sq_error_set(SQ_ERR_CONFIG, "%s: %s: more than %d items", where, k->key,
                            SQ_CONFIG_LIST_MAX);
    char *item = (char *)cfg + k->offset + (size_t)idx * k->size;
    if ((size_t)snprintf(item, k->size, "%s", v) >= k->size)
        return sq_error_set(SQ_ERR_CONFIG, "%s: %s[%d]: longer than %zu characters", where, k->key,
                            idx, k->size - 1);
    *count = idx + 1;
    return SQ_OK;
}

void sq_config_defaults(sq_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < sq_config_key_count; i++) {
        const sq_config_key_t *k = &sq_config_keys[i];
        if (k->type == SQ_CFG_STRLIST || !k->def[0]) continue;
        SQ_CHECK(set_scalar(cfg, k, k->def, "default", NULL)); /* the table is ours: a bug if bad */
    }
}

typedef struct walk {
    yaml_document_t *doc;
    const char *file;
    const char *base_dir;
    sq_config_t *cfg;
    int plan_only; /* a plan file: only the keys sparq plan writes */
} walk_t;

/* The keys a plan file may set: where the stages split and how each boundary
 * is encoded. Everything else belongs to the job. */
static int plan_key(const char *key)
{
    return !strcmp(key, "pipeline.stages") || !strcmp(key, "pipeline.boundaries") ||
           !strcmp(key, "pipeline.plan_units") || !strncmp(key, "codec.", 6);
}

static sq_status_t walk_map(walk_t *w, yaml_node_t *map, const char *prefix)
{
    char where[SQ_CONFIG_PATH_MAX + 32];
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, pr->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, pr->value);
        snprintf(where, sizeof where, "%s:%lu", w->file, (unsigned long)kn->start_mark.line + 1);
        if (kn->type != YAML_SCALAR_NODE)
            return sq_error_set(SQ_ERR_CONFIG, "%s: keys must be plain words", where);
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "",
                 (const char *)kn->data.scalar.value);
        const sq_config_key_t *k = find_key(key);
        if (k && w->plan_only && !plan_key(key))
            return sq_error_set(SQ_ERR_CONFIG, "%s: \"%s\" cannot be set by a plan file (only "
                                               "pipeline.stages/boundaries/plan_units and codec.*)",
                                where, key);
        if (!k) {
            if (is_section(key)) {
                if (vn->type != YAML_MAPPING_NODE)
                    return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected a mapping of keys", where,
                                        key);
                SQ_TRY(walk_map(w, vn, key));
                continue;
            }
            return sq_error_set(SQ_ERR_CONFIG, "%s: unknown key \"%s\" (sparq train --help lists "
                                               "the keys)",
                                where, key);
        }
        if (k->type == SQ_CFG_STRLIST) {
            if (vn->type != YAML_SEQUENCE_NODE)
                return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected a list, e.g. [a, b]", where,
                                    key);
            int idx = 0;
            *(int *)((char *)w->cfg + k->count_offset) = 0;
            for (yaml_node_item_t *it = vn->data.sequence.items.start;
                 it < vn->data.sequence.items.top; it++, idx++) {
                yaml_node_t *in = yaml_document_get_node(w->doc, *it);
                if (in->type != YAML_SCALAR_NODE)
                    return sq_error_set(SQ_ERR_CONFIG, "%s: %s[%d]: expected a string", where, key,
                                        idx);
                SQ_TRY(set_list_item(w->cfg, k, idx, (const char *)in->data.scalar.value, where));
            }
            continue;
        }
        if (vn->type != YAML_SCALAR_NODE)
            return sq_error_set(SQ_ERR_CONFIG, "%s: %s: expected a single value, not a %s", where,
                                key, vn->type == YAML_MAPPING_NODE ? "mapping" : "list");
        SQ_TRY(set_scalar(w->cfg, k, (const char *)vn->data.scalar.value, where, w->base_dir));
    }
    return SQ_OK;
}

/* Walk one YAML file's keys over cfg. */
static sq_status_t parse_file(const char *path, sq_config_t *cfg, int plan_only)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t parser;
    yaml_document_t doc;
    sq_status_t st = SQ_OK;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        st = sq_error_set(SQ_ERR_CONFIG, "%s:%lu: YAML error: %s", path,
                          (unsigned long)parser.problem_mark.line + 1,
                          parser.problem ? parser.problem : "malformed");
        yaml_parser_delete(&parser);
        fclose(f);
        return st;
    }
    char base_dir[SQ_CONFIG_PATH_MAX];
    snprintf(base_dir, sizeof base_dir, "%s", path);
    char *slash = strrchr(base_dir, '/');
    if (slash) *slash = 0;
    else snprintf(base_dir, sizeof base_dir, ".");
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        st = sq_error_set(SQ_ERR_CONFIG, "%s: empty configuration", path);
    } else if (root->type != YAML_MAPPING_NODE) {
        st = sq_error_set(SQ_ERR_CONFIG, "%s:1: the configuration must be a mapping of keys", path);
    } else {
        walk_t w = {.doc = &doc, .file = path, .base_dir = base_dir, .cfg = cfg,
                    .plan_only = plan_only};
        st = walk_map(&w, root, "");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return st;
}

/* pipeline.plan: the plan file's keys replace the job's stages, boundaries
 * and per-boundary codec lists. */
static sq_status_t apply_plan(sq_config_t *cfg)
{
    cfg->pipeline.n_boundaries = 0;
    cfg->codec.n_boundary_bits = 0;
    cfg->codec.n_boundary_encodings = 0;
    SQ_TRY(parse_file(cfg->pipeline.plan, cfg, 1));
    if (cfg->pipeline.stages > 1 && cfg->pipeline.n_boundaries != cfg->pipeline.stages - 1)
        return sq_error_set(SQ_ERR_CONFIG, "%s: pipeline.boundaries: %d entries for %d stages",
                            cfg->pipeline.plan, cfg->pipeline.n_boundaries, cfg->pipeline.stages);
    return SQ_OK;
}

sq_status_t sq_config_load(const char *path, sq_config_t *cfg)
{
    sq_config_defaults(cfg);
    SQ_TRY(parse_file(path, cfg, 0));
    if (cfg->pipeline.plan[0]) {
        if (cfg->pipeline.n_boundaries)
            return sq_error_set(SQ_ERR_CONFIG, "%s: pipeline.plan and pipeline.boundaries are both "
                                               "given: keep one",
                                path);
        SQ_TRY(apply_plan(cfg));
    }
    return sq_config_validate(cfg, path);
}

sq_status_t sq_config_set(sq_config_t *cfg, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    char key[256];
    if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof key)
        return sq_error_set(SQ_ERR_CONFIG, "--set %s: expected key=value", assignment);
    memcpy(key, assignment, (size_t)(eq - assignment));
    key[eq - assignment] = 0;
    const sq_config_key_t *k = find_key(key);
    if (!k) return sq_error_set(SQ_ERR_CONFIG, "--set: unknown key \"%s\"", key);
    if (k->type == SQ_CFG_STRLIST) { /* comma-separated */
        *(int *)((char *)cfg + k->count_offset) = 0;
        const char *p = eq + 1;
        for (int i = 0; *p; i++) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            char item[256];
            snprintf(item, sizeof item, "%.*s", (int)n, p);
            SQ_TRY(set_list_item(cfg, k, i, item, "--set"));
            p += n + (c ? 1 : 0);
        }
        return SQ_OK;
    }
    SQ_TRY(set_scalar(cfg, k, eq + 1, "--set", NULL));
    return !strcmp(k->key, "pipeline.plan") && cfg->pipeline.plan[0] ? apply_plan(cfg) : SQ_OK;
}

sq_status_t sq_config_validate(const sq_config_t *cfg, const char *label)
{
    if (!cfg->model[0]) return sq_error_set(SQ_ERR_CONFIG, "%s: model: required", label);
    if (!cfg->task.train[0]) return sq_error_set(SQ_ERR_CONFIG, "%s: task.train: required", label);
    if (cfg->task.type == SQ_TASK_CLASSIFY) {
        if (cfg->task.n_labels < 2)
            return sq_error_set(SQ_ERR_CONFIG,
                                "%s: task.labels: classification needs at least 2 label words",
                                label);
        if (!strstr(cfg->task.template_, "{text}"))
            return sq_error_set(SQ_ERR_CONFIG, "%s: task.template: must contain {text}", label);
    }
    if (cfg->train.batch_size % cfg->pipeline.micro_batches != 0)
        return sq_error_set(SQ_ERR_CONFIG,
                            "%s: pipeline.micro_batches: %d does not divide train.batch_size %d",
                            label, cfg->pipeline.micro_batches, cfg->train.batch_size);
    if (cfg->pipeline.n_boundaries && cfg->pipeline.n_boundaries != cfg->pipeline.stages - 1)
        return sq_error_set(SQ_ERR_CONFIG,
                            "%s: pipeline.boundaries: %d given, %d stages need %d", label,
                            cfg->pipeline.n_boundaries, cfg->pipeline.stages,
                            cfg->pipeline.stages - 1);
    if (cfg->pipeline.n_addresses && cfg->pipeline.n_addresses < cfg->pipeline.stages - 1)
        return sq_error_set(SQ_ERR_CONFIG,
                            "%s: pipeline.addresses: %d given, stages 1..%d need one each", label,
                            cfg->pipeline.n_addresses, cfg->pipeline.stages - 1);
    for (int i = 0; i < cfg->codec.n_boundary_bits; i++) {
        int b = atoi(cfg->codec.boundary_bits[i]);
        if (b != 8 && b != 4 && b != 2)
            return sq_error_set(SQ_ERR_CONFIG, "%s: codec.boundary_bits[%d]: \"%s\" is not 8, 4 or 2",
                                label, i, cfg->codec.boundary_bits[i]);
    }
    for (int i = 0; i < cfg->codec.n_boundary_encodings; i++) {
        int ok = 0;
        for (int e = 0; codec_encodings[e]; e++)
            ok |= !strcmp(codec_encodings[e], cfg->codec.boundary_encodings[i]);
        if (!ok)
            return sq_error_set(SQ_ERR_CONFIG,
                                "%s: codec.boundary_encodings[%d]: \"%s\" is not one of dense, "
                                "bitmap, csr, lossless, auto",
                                label, i, cfg->codec.boundary_encodings[i]);
    }
    if ((cfg->codec.n_boundary_bits && cfg->codec.n_boundary_bits != cfg->pipeline.stages - 1) ||
        (cfg->codec.n_boundary_encodings &&
         cfg->codec.n_boundary_encodings != cfg->pipeline.stages - 1))
        return sq_error_set(SQ_ERR_CONFIG, "%s: codec.boundary_*: give one entry per boundary (%d)",
                            label, cfg->pipeline.stages - 1);
    if (cfg->codec.bits != 8 && cfg->codec.bits != 4 && cfg->codec.bits != 2)
        return sq_error_set(SQ_ERR_CONFIG, "%s: codec.bits: %d is not 8, 4 or 2", label,
                            cfg->codec.bits);
    if (cfg->select.mode == SQ_SELECT_PATTERN && cfg->select.n_patterns == 0)
        return sq_error_set(SQ_ERR_CONFIG, "%s: select.patterns: pattern mode needs patterns",
                            label);
    if (cfg->select.mode == SQ_SELECT_MASK_FILE && !cfg->select.mask_file[0])
        return sq_error_set(SQ_ERR_CONFIG, "%s: select.mask_file: mask_file mode needs a file",
                            label);
    return SQ_OK;
}

int sq_config_codec_encoding(const sq_config_t *cfg, int boundary)
{
    if (boundary >= 0 && boundary < cfg->codec.n_boundary_encodings)
        for (int e = 0; codec_encodings[e]; e++)
            if (!strcmp(codec_encodings[e], cfg->codec.boundary_encodings[boundary])) return e;
    return cfg->codec.encoding;
}

int sq_config_codec_bits(const sq_config_t *cfg, int boundary)
{
    if (boundary >= 0 && boundary < cfg->codec.n_boundary_bits)
        return atoi(cfg->codec.boundary_bits[boundary]);
    return cfg->codec.bits;
}

int sq_config_codec_pair(const sq_config_t *cfg, int boundary)
{
    return cfg->codec.zo_pair && sq_config_codec_encoding(cfg, boundary) != SQ_CODEC_LOSSLESS;
}

sq_codec_params_t sq_config_codec_params(const sq_config_t *cfg, int boundary)
{
    sq_codec_params_t p = sq_codec_params_default();
    p.encoding = (sq_codec_encoding_t)sq_config_codec_encoding(cfg, boundary);
    p.bits = sq_config_codec_bits(cfg, boundary);
    p.granularity = (sq_codec_granularity_t)cfg->codec.granularity;
    p.group_size = (uint32_t)cfg->codec.group_size;
    p.scale_dtype = cfg->codec.scale_f16 ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
    p.rounding = (sq_codec_rounding_t)cfg->codec.rounding;
    p.lossless_dtype = cfg->codec.lossless_f16 ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
    return p;
}

sq_codec_params_t sq_config_codec_msg_params(const sq_config_t *cfg, int boundary, int tensor,
                                             int64_t step, int micro, uint64_t seed)
{
    sq_codec_params_t p = sq_config_codec_params(cfg, boundary);
    p.seed = seed ^ ((uint64_t)micro * 0x9e3779b97f4a7c15ull);
    p.stream = (uint64_t)boundary * 2 + (uint64_t)tensor;
    p.tag = (uint64_t)step;
    return p;
}

int sq_config_gemm_from_name(const char *name)
{
    for (int i = 0; sq_config_gemm_names[i]; i++)
        if (!strcmp(name, sq_config_gemm_names[i])) return i;
    return -1;
}

sq_dtype_t sq_config_gemm_dtype(int gemm)
{
    return gemm == SQ_GEMM_BF16 ? SQ_DTYPE_BF16 : gemm == SQ_GEMM_FP16 ? SQ_DTYPE_F16 : SQ_DTYPE_F32;
}

uint64_t sq_config_hash(const sq_config_t *cfg)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sq_config_key_count; i++) {
        const sq_config_key_t *k = &sq_config_keys[i];
        if (k->type == SQ_CFG_PATH || !strcmp(k->key, "pipeline.token") ||
            !strcmp(k->key, "pipeline.addresses") || !strcmp(k->key, "pipeline.base_port") ||
            !strcmp(k->key, "train.device") || !strcmp(k->key, "train.overlap") ||
            !strcmp(k->key, "train.gemm"))
            continue;
        char buf[4096];
        FILE *f = fmemopen(buf, sizeof buf, "w");
        if (!f) continue;
        fprintf(f, "%s=", k->key);
        print_value(cfg, k, f);
        long n = ftell(f);
        fclose(f);
        for (long j = 0; j < n && j < (long)sizeof buf; j++) {
            h ^= (unsigned char)buf[j];
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

sq_status_t sq_config_stage_units(const sq_config_t *cfg, int n_units, int n_layers, int k,
                                  int *begin, int *end)
{
    const int S = cfg->pipeline.stages;
    if (k < 0 || k >= S) return sq_error_set(SQ_ERR_RANGE, "stage %d outside [0, %d)", k, S);
    int cuts[SQ_CONFIG_LIST_MAX + 1];
    if (cfg->pipeline.plan_units && cfg->pipeline.plan_units != n_units)
        return sq_error_set(SQ_ERR_CONFIG, "%s: the plan was made for a model of %d units; this "
                                           "model has %d (run sparq plan for it)",
                            cfg->pipeline.plan[0] ? cfg->pipeline.plan : "pipeline.plan_units",
                            cfg->pipeline.plan_units, n_units);
    cuts[0] = 0;
    cuts[S] = n_units;
    for (int j = 1; j < S; j++) {
        if (cfg->pipeline.n_boundaries) {
            char *e;
            long v = strtol(cfg->pipeline.boundaries[j - 1], &e, 10);
            if (*e || v <= 0 || v >= n_units)
                return sq_error_set(SQ_ERR_CONFIG,
                                    "pipeline.boundaries[%d]: \"%s\" is not a unit in [1, %d)",
                                    j - 1, cfg->pipeline.boundaries[j - 1], n_units);
            cuts[j] = (int)v;
        } else { /* even split by layers */
            if (S > n_layers + 1)
                return sq_error_set(SQ_ERR_CONFIG, "pipeline.stages: %d stages for %d layers need "
                                                   "pipeline.boundaries",
                                    S, n_layers);
            cuts[j] = sq_model_even_cut(n_layers, S, j);
        }
        if (cuts[j] <= cuts[j - 1])
            return sq_error_set(SQ_ERR_CONFIG,
                                "pipeline.boundaries: stage %d would be empty (units must increase)",
                                j - 1);
    }
    if (cuts[S] <= cuts[S - 1])
        return sq_error_set(SQ_ERR_CONFIG, "pipeline.boundaries: the last stage would be empty");
    *begin = cuts[k];
    *end = cuts[k + 1];
    return SQ_OK;
}

/* A YAML double-quoted scalar that reads back as s: \, " and control bytes
 * escaped (a label word or template may hold any of them). */
static void print_quoted(const char *s, FILE *f)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f) fprintf(f, "\\x%02x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

static void print_value(const sq_config_t *cfg, const sq_config_key_t *k, FILE *f)
{
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case SQ_CFG_STR:
    case SQ_CFG_PATH: print_quoted(p, f); break;
    case SQ_CFG_INT: fprintf(f, "%d", *(const int *)p); break;
    case SQ_CFG_U64: fprintf(f, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case SQ_CFG_FLOAT: fprintf(f, "%.17g", *(const double *)p); break;
    case SQ_CFG_ENUM: fprintf(f, "%s", k->enum_names[*(const int *)p]); break;
    case SQ_CFG_STRLIST: {
        int n = *(const int *)((const char *)cfg + k->count_offset);
        fputc('[', f);
        for (int i = 0; i < n; i++) {
            if (i) fprintf(f, ", ");
            print_quoted(p + (size_t)i * k->size, f);
        }
        fputc(']', f);
        break;
    }
    }
}

void sq_config_dump(const sq_config_t *cfg, FILE *f)
{
    char section[64] = "";
    for (size_t i = 0; i < sq_config_key_count; i++) {
        const sq_config_key_t *k = &sq_config_keys[i];
        const char *dot = strchr(k->key, '.');
        if (dot) {
            if (strncmp(section, k->key, (size_t)(dot - k->key)) ||
                section[dot - k->key] != 0) {
                snprintf(section, sizeof section, "%.*s", (int)(dot - k->key), k->key);
                fprintf(f, "%s:\n", section);
            }
            if (!strcmp(k->key, "pipeline.plan")) { /* already applied: the keys below hold it */
                if (cfg->pipeline.plan[0]) fprintf(f, "  # plan: %s (applied)\n", cfg->pipeline.plan);
                continue;
            }
            fprintf(f, "  %s: ", dot + 1);
        } else {
            section[0] = 0;
            fprintf(f, "%s: ", k->key);
        }
        print_value(cfg, k, f);
        fputc('\n', f);
    }
}

void sq_config_help(FILE *f)
{
    fprintf(f, "job.yaml keys (dotted = nested mapping; relative paths are relative to the "
               "config file):\n");
    for (size_t i = 0; i < sq_config_key_count; i++) {
        const sq_config_key_t *k = &sq_config_keys[i];
        fprintf(f, "  %-26s %s", k->key, k->help);
        if (k->def[0]) fprintf(f, " [default: %s]", k->def);
        fputc('\n', f);
    }
}
