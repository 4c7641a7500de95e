/* safetensors reader: header validation, single files, sharded index.json.
 *
 * Layout of a file: u64 little-endian header length n, n bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}), then the data section that the offsets are
 * relative to. Every field of the header is untrusted: the parser is the
 * fuzzing entry point and must reject, never read past, a bad file.
 */
#include "weights_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Integers in JSON arrive as doubles; past 2^53 they are no longer exact. */
#define SQ_JSON_MAX_EXACT 9007199254740992.0

/* An index.json is a name -> file map; 64 MiB is orders beyond any real one. */
#define SQ_INDEX_MAX_BYTES (64u * 1024u * 1024u)

typedef struct st_dtype {
    const char *name;
    int sq; /* sq_dtype_t, or -1 when sparq does not read it */
} st_dtype_t;

/* Every dtype the safetensors format defines, so that a real but unsupported
 * dtype is reported as such and anything else as a malformed header. */
static const st_dtype_t st_dtypes[] = {
    {"F32", SQ_DTYPE_F32},
    {"F16", SQ_DTYPE_F16},
    {"BF16", SQ_DTYPE_BF16},
    {"F64", -1},
    {"I64", -1},
    {"I32", -1},
    {"I16", -1},
    {"I8", -1},
    {"U64", -1},
    {"U32", -1},
    {"U16", -1},
    {"U8", -1},
    {"BOOL", -1},
    {"F8_E4M3", -1},
    {"F8_E5M2", -1},
    {"F8_E8M0", -1},
    {"F6_E2M3", -1},
    {"F6_E3M2", -1},
    {"F4", -1},
    {"C64", -1},
};

/* "a string", "an array", ... for messages. */
static const char *json_type_name(const cJSON *j)
{
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    return "an invalid value";
}

/* A JSON number that is an exact non-negative integer (<= 2^53). */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j)) return 0;
    double v = j->valuedouble;
    if (!(v >= 0.0 && v <= SQ_JSON_MAX_EXACT)) return 0;
    uint64_t u = (uint64_t)v;
    if ((double)u != v) return 0;
    *out = u;
    return 1;
}

static void format_shape(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

typedef struct st_range {
    uint64_t begin, end;
    size_t idx; /* into the tensor table, for messages */
} st_range_t;

static int cmp_range(const void *a, const void *b)
{
    const st_range_t *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static sq_status_t check_metadata(const char *label, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return sq_error_set(SQ_ERR_FORMAT, "%s: \"__metadata__\" is %s, not an object", label,
                            json_type_name(meta));
    const cJSON *m;
    cJSON_ArrayForEach(m, meta)
    {
        if (!cJSON_IsString(m))
            return sq_error_set(SQ_ERR_FORMAT,
                                "%s: \"__metadata__\" entry \"%s\" is %s, not a string", label,
                                m->string ? m->string : "", json_type_name(m));
    }
    return SQ_OK;
}

/* Validate one header entry and fill *ti (name not set). data/data_size: the
 * data section. */
static sq_status_t parse_entry(const char *label, const cJSON *e, const uint8_t *data,
                               uint64_t data_size, sq_weight_info_t *ti, st_range_t *range)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": entry is %s, not an object", label,
                            name, json_type_name(e));

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!jd)
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", label, name);
    if (!cJSON_IsString(jd))
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" is %s, not a string",
                            label, name, json_type_name(jd));
    const st_dtype_t *dt = NULL;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, jd->valuestring) == 0) dt = &st_dtypes[i];
    if (!dt)
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": unknown dtype \"%s\"", label, name,
                            jd->valuestring);
    if (dt->sq < 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: tensor \"%s\": dtype %s is not supported (sparq reads F32, F16 "
                            "and BF16)",
                            label, name, dt->name);
    ti->dtype = (sq_dtype_t)dt->sq;
    size_t esize = sq_dtype_size(ti->dtype);

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!js)
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", label, name);
    if (!cJSON_IsArray(js))
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" is %s, not an array",
                            label, name, json_type_name(js));
    int ndim = cJSON_GetArraySize(js);
    if (ndim > SQ_MAX_DIMS)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: tensor \"%s\": shape has %d dimensions, at most %d supported",
                            label, name, ndim, SQ_MAX_DIMS);
    uint64_t numel = 1;
    int d = 0;
    const cJSON *jdim;
    cJSON_ArrayForEach(jdim, js)
    {
        uint64_t v;
        if (!json_uint(jdim, &v)) {
            if (cJSON_IsNumber(jdim))
                return sq_error_set(SQ_ERR_FORMAT,
                                    "%s: tensor \"%s\": shape[%d] is %g, not a non-negative "
                                    "integer",
                                    label, name, d, jdim->valuedouble);
            return sq_error_set(SQ_ERR_FORMAT,
                                "%s: tensor \"%s\": shape[%d] is %s, not an "
                                "integer",
                                label, name, d, json_type_name(jdim));
        }
        if (v > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, v, &numel) ||
            numel > (uint64_t)INT64_MAX)
            return sq_error_set(SQ_ERR_FORMAT,
                                "%s: tensor \"%s\": element count of the shape "
                                "overflows",
                                label, name);
        ti->shape[d++] = (int64_t)v;
    }
    ti->ndim = ndim;
    uint64_t need;
    if (__builtin_mul_overflow(numel, (uint64_t)esize, &need))
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": byte size of the shape overflows",
                            label, name);

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!jo)
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", label,
                            name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: tensor \"%s\": \"data_offsets\" must be an array [begin, end]",
                            label, name);
    uint64_t begin, end;
    if (!json_uint(jo->child, &begin) || !json_uint(jo->child->next, &end))
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: tensor \"%s\": data_offsets must be non-negative integers", label,
                            name);
    if (begin > end)
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: tensor \"%s\": data_offsets [%llu, %llu] end "
                            "before they begin",
                            label, name, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_size)
        return sq_error_set(SQ_ERR_RANGE,
                            "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the %llu-byte "
                            "data section",
                            label, name, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)data_size);
    if (end - begin != need) {
        char sh[128];
        format_shape(ti->shape, ndim, sh, sizeof sh);
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes but "
                            "shape %s %s needs %llu",
                            label, name, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)(end - begin), sh, dt->name,
                            (unsigned long long)need);
    }
    /* Consumers read elements in place (as uint16_t/float), which needs them
     * aligned; the reference writers order tensors so that they are. */
    if (need && ((uintptr_t)(data + begin)) % esize != 0)
        return sq_error_set(SQ_ERR_UNSUPPORTED,
                            "%s: tensor \"%s\": data at offset %llu is not aligned to its "
                            "%zu-byte %s elements",
                            label, name, (unsigned long long)begin, esize, dt->name);

    ti->data = data + begin;
    ti->nbytes = (size_t)need;
    range->begin = begin;
    range->end = end;
    return SQ_OK;
}

/* Parse buf[0, len) into wf (whose ->file is the label). */
static sq_status_t parse_into(sq_weight_file_t *wf, const uint8_t *buf, size_t len)
{
    const char *label = wf->file;
    if (len < 8)
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: file is %zu bytes, too short for the 8-byte header length", label,
                            len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | buf[i];
    if (hlen == 0) return sq_error_set(SQ_ERR_FORMAT, "%s: header length is 0", label);
    if (hlen > SQ_SAFETENSORS_MAX_HEADER)
        return sq_error_set(SQ_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte maximum",
                            label, (unsigned long long)hlen, SQ_SAFETENSORS_MAX_HEADER);
    if (hlen > len - 8)
        return sq_error_set(SQ_ERR_FORMAT,
                            "%s: header length %llu exceeds the %zu bytes that follow it "
                            "(truncated file?)",
                            label, (unsigned long long)hlen, len - 8);
    const char *hdr = (const char *)buf + 8;
    const uint8_t *data = buf + 8 + hlen;
    uint64_t data_size = len - 8 - hlen;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = (end && end >= hdr && end <= hdr + hlen) ? (size_t)(end - hdr) : 0;
        return sq_error_set(SQ_ERR_FORMAT, "%s: header is not valid JSON (at byte %zu of %llu)",
                            label, at, (unsigned long long)hlen);
    }
    sq_status_t st = SQ_OK;
    st_range_t *ranges = NULL;
    /* Writers may pad the header with spaces; anything else after the object
     * means the length and the JSON disagree. */
    for (const char *p = end; p < hdr + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = sq_error_set(SQ_ERR_FORMAT,
                              "%s: unexpected bytes after the JSON header at "
                              "byte %zu of %llu",
                              label, (size_t)(p - hdr), (unsigned long long)hlen);
            goto free_json;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: header is %s, not a JSON object", label,
                          json_type_name(root));
        goto free_json;
    }

    size_t n = 0, name_bytes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (strcmp(e->string, "__metadata__") == 0) {
            SQ_TRY_GOTO(st, check_metadata(label, e), free_json);
            continue;
        }
        n++;
        name_bytes += strlen(e->string) + 1;
    }
    if (n) {
        wf->tensors = calloc(n, sizeof *wf->tensors);
        wf->names = malloc(name_bytes);
        ranges = malloc(n * sizeof *ranges);
        if (!wf->tensors || !wf->names || !ranges) {
            st = sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate a table of %zu tensors", label, n);
            goto free_ranges;
        }
    }
    char *np = wf->names;
    cJSON_ArrayForEach(e, root)
    {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        sq_weight_info_t *ti = &wf->tensors[wf->n];
        SQ_TRY_GOTO(st, parse_entry(label, e, data, data_size, ti, &ranges[wf->n]), free_ranges);
        size_t l = strlen(e->string) + 1;
        memcpy(np, e->string, l);
        ti->name = np;
        ti->file = wf->file;
        ranges[wf->n].idx = wf->n;
        np += l;
        wf->n++;
    }

    if (n > 1) qsort(ranges, n, sizeof *ranges, cmp_range);
    size_t prev = SIZE_MAX; /* the non-empty range reaching furthest so far */
    for (size_t i = 0; i < n; i++) {
        if (ranges[i].begin == ranges[i].end) continue; /* empty tensors own no bytes */
        if (prev != SIZE_MAX && ranges[i].begin < ranges[prev].end) {
            const st_range_t *a = &ranges[prev], *b = &ranges[i];
            st = sq_error_set(SQ_ERR_FORMAT,
                              "%s: tensors \"%s\" [%llu, %llu] and \"%s\" [%llu, %llu] overlap",
                              label, wf->tensors[a->idx].name, (unsigned long long)a->begin,
                              (unsigned long long)a->end, wf->tensors[b->idx].name,
                              (unsigned long long)b->begin, (unsigned long long)b->end);
            goto free_ranges;
        }
        if (prev == SIZE_MAX || ranges[i].end > ranges[prev].end) prev = i;
    }
    st = sq_wf_finish(wf);

free_ranges:
    free(ranges);
free_json:
    cJSON_Delete(root);
    return st;
}

sq_status_t sq_safetensors_parse(const uint8_t *buf, size_t len, const char *label,
                                 sq_weight_file_t **out)
{
    if (!label) label = "<safetensors>";
    if (!out || (!buf && len))
        return sq_error_set(SQ_ERR_INVALID_ARG, "%s: sq_safetensors_parse needs buf and out",
                            label);
    sq_weight_file_t *wf;
    SQ_TRY(sq_wf_create(label, &wf));
    sq_status_t st = parse_into(wf, buf, len);
    if (st != SQ_OK) {
        sq_weights_close(wf);
        return st;
    }
    *out = wf;
    return SQ_OK;
}

/* Map and parse one .safetensors file; `given` is what the caller named. */
static sq_status_t open_single(const char *file, const char *given, sq_weight_file_t **out)
{
    sq_weight_file_t *wf;
    SQ_TRY(sq_wf_create(file, &wf));
    sq_status_t st = SQ_OK;
    if (strcmp(given, file) != 0) {
        free(wf->path);
        wf->path = strdup(given);
        if (!wf->path) {
            st = sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", file);
            goto close_wf;
        }
    }
    SQ_TRY_GOTO(st, sq_wf_map(wf, file), close_wf);
    static const uint8_t empty[1];
    SQ_TRY_GOTO(st, parse_into(wf, wf->map ? wf->map : empty, wf->map_len), close_wf);
    *out = wf;
    return SQ_OK;
close_wf:
    sq_weights_close(wf);
    return st;
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Directory part of a path ("." when it has none). */
static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static sq_status_t open_index(const char *index, const char *given, sq_weight_file_t **out)
{
    char *text = NULL;
    size_t tlen = 0;
    SQ_TRY(sq_read_text_file(index, SQ_INDEX_MAX_BYTES, &text, &tlen));
    sq_status_t st = SQ_OK;
    sq_weight_file_t *wf = NULL;
    const char **shards = NULL; /* distinct shard names, pointing into the JSON */
    size_t *shard_of = NULL;    /* weight_map entry -> shard index */
    char *dir = NULL, *shard_path = NULL;

    cJSON *root = cJSON_ParseWithLength(text, tlen);
    if (!root) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: not valid JSON", index);
        goto free_text;
    }
    const cJSON *map =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!map) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: missing \"weight_map\"", index);
        goto free_json;
    }
    if (!cJSON_IsObject(map)) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: \"weight_map\" is %s, not an object", index,
                          json_type_name(map));
        goto free_json;
    }
    size_t n_entries = (size_t)cJSON_GetArraySize(map);
    if (n_entries == 0) {
        st = sq_error_set(SQ_ERR_FORMAT, "%s: \"weight_map\" is empty", index);
        goto free_json;
    }
    shards = calloc(n_entries, sizeof *shards);
    shard_of = calloc(n_entries, sizeof *shard_of);
    dir = path_dir(index);
    SQ_TRY_GOTO(st, sq_wf_create(given, &wf), free_json);
    free(wf->file);
    wf->file = strdup(index);
    if (!shards || !shard_of || !dir || !wf->file) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", index);
        goto free_json;
    }

    size_t n_shards = 0, k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, map)
    {
        if (!cJSON_IsString(e) || e->valuestring[0] == '\0' || e->valuestring[0] == '/') {
            st = sq_error_set(SQ_ERR_FORMAT,
                              "%s: weight_map[\"%s\"] must be a shard file name relative to the "
                              "index",
                              index, e->string);
            goto free_json;
        }
        size_t s = 0;
        while (s < n_shards && strcmp(shards[s], e->valuestring) != 0)
            s++;
        if (s == n_shards) shards[n_shards++] = e->valuestring;
        shard_of[k++] = s;
    }

    wf->parts = calloc(n_shards, sizeof *wf->parts);
    if (!wf->parts) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", index);
        goto free_json;
    }
    size_t total = 0;
    for (size_t s = 0; s < n_shards; s++) {
        shard_path = path_join(dir, shards[s]);
        if (!shard_path) {
            st = sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", index);
            goto free_json;
        }
        st = open_single(shard_path, shard_path, &wf->parts[s]);
        if (st != SQ_OK) {
            sq_error_push(st, "%s: shard \"%s\"", index, shards[s]);
            goto free_json;
        }
        wf->n_parts++;
        total += wf->parts[s]->n;
        free(shard_path);
        shard_path = NULL;
    }

    /* The merged table points at the shards' names and mappings. */
    wf->tensors = calloc(total ? total : 1, sizeof *wf->tensors);
    if (!wf->tensors) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate %zu tensors", index, total);
        goto free_json;
    }
    for (size_t s = 0; s < n_shards; s++) {
        memcpy(wf->tensors + wf->n, wf->parts[s]->tensors, wf->parts[s]->n * sizeof *wf->tensors);
        wf->n += wf->parts[s]->n;
    }
    SQ_TRY_GOTO(st, sq_wf_finish(wf), free_json);

    k = 0;
    cJSON_ArrayForEach(e, map)
    {
        const sq_weight_file_t *part = wf->parts[shard_of[k++]];
        if (!sq_weights_find(part, e->string)) {
            st = sq_error_set(SQ_ERR_NOT_FOUND,
                              "%s: weight_map puts tensor \"%s\" in %s, which does not hold it",
                              index, e->string, part->file);
            goto free_json;
        }
    }

free_json:
    cJSON_Delete(root);
free_text:
    free(shard_path);
    free(dir);
    free(shard_of);
    free(shards);
    free(text);
    if (st != SQ_OK) {
        sq_weights_close(wf);
        return st;
    }
    *out = wf;
    return SQ_OK;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int is_regular(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

sq_status_t sq_safetensors_open(const char *path, sq_weight_file_t **out)
{
    if (!path || !out)
        return sq_error_set(SQ_ERR_INVALID_ARG, "sq_safetensors_open needs a path and out");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        sq_status_t st = errno == ENOENT ? SQ_ERR_NOT_FOUND : SQ_ERR_IO;
        return sq_error_set(st, "%s: %s", path, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (ends_with(path, ".json")) return open_index(path, path, out);
        return open_single(path, path, out);
    }

    static const char *const candidates[] = {"model.safetensors", "model.safetensors.index.json"};
    for (size_t i = 0; i < 2; i++) {
        char *p = path_join(path, candidates[i]);
        if (!p) return sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", path);
        int found = is_regular(p);
        sq_status_t st = SQ_OK;
        if (found) st = i == 0 ? open_single(p, path, out) : open_index(p, path, out);
        free(p);
        if (found) return st;
    }
    return sq_error_set(SQ_ERR_NOT_FOUND,
                        "%s: directory holds neither model.safetensors nor "
                        "model.safetensors.index.json",
                        path);
}
