/* Small file helpers shared by the cmocka tests (linked into every test by
 * sq_add_test). Failures are cmocka failures naming the path. */
#ifndef SPARQ_TEST_UTIL_H
#define SPARQ_TEST_UTIL_H

#include <stddef.h>

/* The whole file, NUL-terminated (len may be NULL); NULL when it cannot be
 * opened, so a test can check for absence. */
char *sq_test_read_all(const char *path, size_t *len);
/* Write exactly len bytes (create or truncate). */
void sq_test_write_file(const char *path, const void *data, size_t len);
/* Write a C string. */
void sq_test_write_text(const char *path, const char *text);

#endif
