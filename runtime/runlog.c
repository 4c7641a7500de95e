/* The run log: one JSON line per step, the checkpoint of a ZO run. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparq/trainer.h"

static int parse_entry(const char *line, sq_runlog_entry_t *e)
{
    cJSON *j = cJSON_Parse(line);
    if (!j) return 0;
    const cJSON *step = cJSON_GetObjectItem(j, "step"), *seeds = cJSON_GetObjectItem(j, "seeds");
    const cJSON *g = cJSON_GetObjectItem(j, "g"), *lr = cJSON_GetObjectItem(j, "lr");
    int ok = cJSON_IsNumber(step) && cJSON_IsArray(seeds) && cJSON_IsArray(g) &&
             cJSON_IsNumber(lr) && cJSON_GetArraySize(seeds) == cJSON_GetArraySize(g) &&
             cJSON_GetArraySize(g) >= 1 && cJSON_GetArraySize(g) <= 64;
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
