/* The run log: one JSON line per step, the checkpoint of a ZO run. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparq/trainer.h"
#include "sparq/weights.h"

static int parse_entry(const char *line, sq_runlog_entry_t *e)
{
    cJSON *j = cJSON_Parse(line);
    if (!j) return 0;
    const cJSON *step = cJSON_GetObjectItem(j, "step"), *seeds = cJSON_GetObjectItem(j, "seeds");
    const cJSON *g = cJSON_GetObjectItem(j, "g"), *lr = cJSON_GetObjectItem(j, "lr");
    int ok = cJSON_IsNumber(step) && cJSON_IsArray(seeds) && cJSON_IsArray(g) &&
             cJSON_IsNumber(lr) && cJSON_GetArraySize(seeds) == cJSON_GetArraySize(g) &&
             cJSON_GetArraySize(g) >= 1 && cJSON_GetArraySize(g) <= SQ_MAX_SPSA;
    if (ok) {
        e->step = (int64_t)step->valuedouble;
        e->n = cJSON_GetArraySize(g);
        e->lr = (float)lr->valuedouble;
        for (int k = 0; ok && k < e->n; k++) {
            const cJSON *s = cJSON_GetArrayItem(seeds, k), *gk = cJSON_GetArrayItem(g, k);
            ok = cJSON_IsString(s) && cJSON_IsNumber(gk);
            if (ok) {
                e->seeds[k] = strtoull(s->valuestring, NULL, 10);
                e->g[k] = (float)gk->valuedouble; /* written with %.9g: exact */
            }
        }
    }
    cJSON_Delete(j);
    return ok;
}

sq_status_t sq_runlog_read(const char *path, sq_runlog_entry_t **entries, int64_t *count)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return sq_error_set(SQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int64_t cap = 1024, n = 0;
    sq_runlog_entry_t *e = malloc(sizeof *e * (size_t)cap);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    long good_end = 0;
    sq_status_t st = e ? SQ_OK : sq_error_set(SQ_ERR_NOMEM, "runlog: out of memory");
    while (st == SQ_OK && (len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] != '\n') break; /* torn last line */
        if (n == cap) {
            sq_runlog_entry_t *g2 = realloc(e, sizeof *e * (size_t)(cap *= 2));
            if (!g2) {
                st = sq_error_set(SQ_ERR_NOMEM, "runlog: out of memory");
                break;
            }
            e = g2;
        }
        if (!parse_entry(line, &e[n])) {
            /* only the last line may be damaged (a write cut by a kill) */
            int c = fgetc(f);
            if (c != EOF) {
                st = sq_error_set(SQ_ERR_FORMAT, "%s:%lld: damaged entry in the middle of the log",
                                  path, (long long)n + 1);
            }
            break;
        }
        if (e[n].step != n) {
            st = sq_error_set(SQ_ERR_FORMAT, "%s:%lld: step %lld where %lld was expected", path,
                              (long long)n + 1, (long long)e[n].step, (long long)n);
            break;
        }
        n++;
        good_end = ftell(f);
    }
    free(line);
    if (st == SQ_OK) {
        fflush(f);
        if (ftruncate(fileno(f), good_end) != 0)
            st = sq_error_set(SQ_ERR_IO, "%s: cannot drop the torn tail: %s", path,
                              strerror(errno));
    }
    fclose(f);
    if (st != SQ_OK) {
        free(e);
        return st;
    }
    *entries = e;
    *count = n;
    return SQ_OK;
}

/* ---- the run folder ---- */

void sq_runlog_append(FILE *f, int64_t step, int n, const uint64_t *seeds, const float *g,
                      float lr)
{
    fprintf(f, "{\"step\":%lld,\"seeds\":[", (long long)step);
    for (int k = 0; k < n; k++) fprintf(f, "%s\"%llu\"", k ? "," : "", (unsigned long long)seeds[k]);
    fprintf(f, "],\"g\":[");
    for (int k = 0; k < n; k++) fprintf(f, "%s%.9g", k ? "," : "", g[k]); /* %.9g: exact float */
    fprintf(f, "],\"lr\":%.9g}\n", lr);
}

sq_status_t sq_run_mkdir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        mkdir(tmp, 0755);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return sq_error_set(SQ_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return SQ_OK;
}

int64_t sq_run_newest_snapshot(const char *dir, int64_t max_step, char *path, size_t cap)
{
    DIR *d = opendir(dir);
    int64_t best = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long long s;
        char tail[32];
        if (sscanf(e->d_name, "snapshot-%lld.%31s", &s, tail) == 2 &&
            !strcmp(tail, "safetensors") && s <= max_step && s > best)
            best = s;
    }
    if (d) closedir(d);
    if (best >= 0) snprintf(path, cap, "%s/snapshot-%08lld.safetensors", dir, (long long)best);
    return best;
}

sq_status_t sq_run_write_snapshot(const char *dir, sq_model_t *m, const sq_selection_t *sel,
                                  int64_t steps)
{
    int n = 0;
    sq_status_t st = SQ_OK;
    sq_weight_out_t *t = calloc((size_t)sel->n_params + 1, sizeof *t);
    float **host = calloc((size_t)sel->n_params + 1, sizeof *host); /* device masters' copies */
    if (!t || !host) st = sq_error_set(SQ_ERR_NOMEM, "snapshot: out of memory");
    for (int i = 0; st == SQ_OK && i < sel->n_params; i++) {
        if (!sel->tuned[i]) continue;
        const sq_param_t *p = sq_model_param(m, i);
        const void *data = p->t.data;
        if (p->t.device != SQ_DEVICE_CPU) {
            if (!(host[i] = malloc(sizeof(float) * (size_t)sq_tensor_numel(&p->t)))) {
                st = sq_error_set(SQ_ERR_NOMEM, "snapshot: out of memory for %s", p->name);
                break;
            }
            st = sq_model_param_read(m, i, host[i]);
            data = host[i];
        }
        t[n] = (sq_weight_out_t){.name = p->name, .dtype = SQ_DTYPE_F32, .ndim = p->t.ndim,
                                 .data = data};
        memcpy(t[n].shape, p->t.shape, sizeof t[n].shape);
        n++;
    }
    char path[4096 + 64];
    snprintf(path, sizeof path, "%s/snapshot-%08lld.safetensors", dir, (long long)steps);
    if (st == SQ_OK) st = sq_safetensors_write(path, t, (size_t)n);
    for (int i = 0; host && i < sel->n_params; i++) free(host[i]);
    free(host);
    free(t);
    if (st != SQ_OK) return st;
    /* keep the two newest */
    char old[4096 + 64];
    int64_t prev = sq_run_newest_snapshot(dir, steps - 1, old, sizeof old);
    if (prev >= 0) {
        char older[4096 + 64];
        if (sq_run_newest_snapshot(dir, prev - 1, older, sizeof older) >= 0) unlink(older);
    }
    return SQ_OK;
}

sq_status_t sq_jsonl_trim_steps(const char *path, int64_t keep)
{
    FILE *in = fopen(path, "r");
    if (!in) return SQ_OK;
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        return sq_error_set(SQ_ERR_IO, "%s: cannot write", tmp);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        long long s;
        if (line[len - 1] != '\n' || sscanf(line, "{\"step\":%lld", &s) != 1) continue;
        if (s < keep || (s == keep && strstr(line, "\"eval_"))) fputs(line, out);
    }
    free(line);
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, path) != 0)
        return sq_error_set(SQ_ERR_IO, "%s: cannot replace %s", tmp, path);
    return SQ_OK;
}
