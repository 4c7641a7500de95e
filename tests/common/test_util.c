#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

char *sq_test_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) fail_msg("%s: cannot read", path);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

void sq_test_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("%s: cannot create", path);
    const int short_write = len && fwrite(data, 1, len, f) != len;
    if (fclose(f) != 0 || short_write) fail_msg("%s: write failed", path);
}

void sq_test_write_text(const char *path, const char *text)
{
    sq_test_write_file(path, text, strlen(text));
}
