/* Weight file object: ownership of mappings and names, name lookup. */
#include "weights_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

sq_status_t sq_wf_create(const char *path, sq_weight_file_t **out)
{
    sq_weight_file_t *wf = calloc(1, sizeof *wf);
    if (!wf) return sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate weight file", path);
    wf->path = strdup(path);
    wf->file = strdup(path);
    if (!wf->path || !wf->file) {
        sq_weights_close(wf);
        return sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate weight file", path);
    }
    *out = wf;
    return SQ_OK;
}

void sq_weights_close(sq_weight_file_t *wf)
{
    if (!wf) return;
    for (size_t i = 0; i < wf->n_parts; i++)
        sq_weights_close(wf->parts[i]);
    free(wf->parts);
    if (wf->map) munmap(wf->map, wf->map_len);
    free(wf->tensors);
    free(wf->names);
    free(wf->file);
    free(wf->path);
    free(wf);
}

static int cmp_info_name(const void *a, const void *b)
{
    const sq_weight_info_t *x = a, *y = b;
    return strcmp(x->name, y->name);
}

sq_status_t sq_wf_finish(sq_weight_file_t *wf)
{
    if (wf->n > 1) qsort(wf->tensors, wf->n, sizeof *wf->tensors, cmp_info_name);
    for (size_t i = 1; i < wf->n; i++) {
        const sq_weight_info_t *a = &wf->tensors[i - 1], *b = &wf->tensors[i];
        if (strcmp(a->name, b->name) != 0) continue;
        if (a->file == b->file || strcmp(a->file, b->file) == 0)
            return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\" appears twice", a->file, a->name);
        return sq_error_set(SQ_ERR_FORMAT, "%s: tensor \"%s\" is present in both %s and %s",
                            wf->path, a->name, a->file, b->file);
    }
    return SQ_OK;
}

sq_status_t sq_wf_map(sq_weight_file_t *wf, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sq_status_t st = errno == ENOENT ? SQ_ERR_NOT_FOUND : SQ_ERR_IO;
        return sq_error_set(st, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return sq_error_set(SQ_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return sq_error_set(SQ_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) { /* mmap refuses length 0; the parsers report the size */
        close(fd);
        wf->map = NULL;
        wf->map_len = 0;
        return SQ_OK;
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file referenced */
    if (p == MAP_FAILED)
        return sq_error_set(SQ_ERR_IO, "%s: mmap of %lld bytes failed: %s", path,
                            (long long)sb.st_size, strerror(e));
    wf->map = p;
    wf->map_len = (size_t)sb.st_size;
    return SQ_OK;
}

sq_status_t sq_read_text_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sq_status_t st = errno == ENOENT ? SQ_ERR_NOT_FOUND : SQ_ERR_IO;
        return sq_error_set(st, "%s: cannot open: %s", path, strerror(errno));
    }
    sq_status_t st = SQ_OK;
    char *buf = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = sq_error_set(SQ_ERR_IO, "%s: not a readable regular file", path);
        goto close_file;
    }
    if ((unsigned long long)sb.st_size > max_bytes) {
        st = sq_error_set(SQ_ERR_RANGE, "%s: %lld bytes is larger than the %zu accepted", path,
                          (long long)sb.st_size, max_bytes);
        goto close_file;
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n + 1);
    if (!buf) {
        st = sq_error_set(SQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
        goto close_file;
    }
    if (fread(buf, 1, n, f) != n) {
        st = sq_error_set(SQ_ERR_IO, "%s: short read", path);
        free(buf);
        goto close_file;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
close_file:
    fclose(f);
    return st;
}

const sq_weight_info_t *sq_weights_find(const sq_weight_file_t *wf, const char *name)
{
    if (!wf || !name || wf->n == 0) return NULL;
    sq_weight_info_t key = {.name = name};
    return bsearch(&key, wf->tensors, wf->n, sizeof *wf->tensors, cmp_info_name);
}

size_t sq_weights_count(const sq_weight_file_t *wf)
{
    return wf ? wf->n : 0;
}

const sq_weight_info_t *sq_weights_at(const sq_weight_file_t *wf, size_t i)
{
    return (wf && i < wf->n) ? &wf->tensors[i] : NULL;
}

const char *sq_weights_path(const sq_weight_file_t *wf)
{
    return wf ? wf->path : "";
}
