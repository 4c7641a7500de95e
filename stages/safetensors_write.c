/* Crash-safe safetensors writer (snapshots, export). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sparq/weights.h"

static sq_status_t write_all(int fd, const void *buf, size_t n, const char *path)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return sq_error_set(SQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return SQ_OK;
}

static sq_status_t fsync_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    int fd = open(dirname(tmp), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return sq_error_set(SQ_ERR_IO, "%s: cannot open its folder to sync", path);
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? SQ_OK : sq_error_set(SQ_ERR_IO, "%s: folder fsync failed", path);
}

sq_status_t sq_safetensors_write(const char *path, const sq_weight_out_t *t, size_t n)
{
    sq_status_t st = SQ_OK;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cJSON *hdr = cJSON_CreateObject();
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= t[i].shape[d];
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t[i].shape[d]));
        }
        uint64_t bytes = (uint64_t)numel * sq_dtype_size(t[i].dtype);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)));
        cJSON_AddStringToObject(e, "dtype", sq_dtype_name(t[i].dtype));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToObject(e, "data_offsets", offs);
        cJSON_AddItemToObject(hdr, t[i].name, e);
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    if (!json) return sq_error_set(SQ_ERR_NOMEM, "%s: cannot build the header", path);
    size_t jl = strlen(json), padded = (jl + 7) & ~(size_t)7; /* keep data 8-byte aligned */
    char *h = malloc(padded);
    if (!h) {
        free(json);
        return sq_error_set(SQ_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(h, json, jl);
    memset(h + jl, ' ', padded - jl);
    free(json);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(h);
        return sq_error_set(SQ_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    uint8_t len8[8];
    for (int b = 0; b < 8; b++) len8[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    SQ_TRY_GOTO(st, write_all(fd, len8, 8, tmp), fail);
    SQ_TRY_GOTO(st, write_all(fd, h, padded, tmp), fail);
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= t[i].shape[d];
        size_t es = sq_dtype_size(t[i].dtype);
        enum { CHUNK = 1 << 16 };
        uint8_t buf[CHUNK * 4];
        for (int64_t e0 = 0; e0 < numel; e0 += CHUNK) {
            int64_t k = numel - e0 < CHUNK ? numel - e0 : CHUNK;
            SQ_TRY_GOTO(st, sq_convert_from_f32(t[i].data + e0, buf, t[i].dtype, k), fail);
            SQ_TRY_GOTO(st, write_all(fd, buf, (size_t)k * es, tmp), fail);
        }
    }
    if (fsync(fd) != 0) {
        st = sq_error_set(SQ_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    free(h);
    if (rename(tmp, path) != 0) {
        st = sq_error_set(SQ_ERR_IO, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return st;
    }
    return fsync_dir(path);
fail:
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(h);
    return st;
}
