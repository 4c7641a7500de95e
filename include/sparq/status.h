/* sparq/status.h — one status enum for every layer, and the error trail.
 *
 * Library code never exits: it returns an sq_status_t. The place that decides
 * an error records one human-readable line with sq_error_set() (naming the
 * file, field, stage or step concerned); callers may prepend context with
 * sq_error_push(). main() prints sq_error_last() once.
 */
#ifndef SPARQ_STATUS_H
#define SPARQ_STATUS_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sq_status {
    SQ_OK = 0,
    SQ_ERR_INVALID_ARG,  /* a caller passed something out of contract */
    SQ_ERR_IO,           /* open/read/write/mmap failed */
    SQ_ERR_FORMAT,       /* a file or message is malformed */
    SQ_ERR_UNSUPPORTED,  /* well-formed but not something sparq handles */
    SQ_ERR_NOT_FOUND,    /* a named tensor/key/file is missing */
    SQ_ERR_RANGE,        /* a value is outside its allowed range */
    SQ_ERR_NOMEM,        /* host or device allocation failed */
    SQ_ERR_CHECKSUM,     /* payload checksum mismatch */
    SQ_ERR_VERSION,      /* wire/file version not understood */
    SQ_ERR_CONFIG,       /* configuration key missing/unknown/wrong type */
    SQ_ERR_CUDA,         /* CUDA, cuBLAS or cuSPARSE call failed */
    SQ_ERR_TRANSPORT,    /* UCX / peer failure */
    SQ_ERR_INTERNAL,     /* a bug: an invariant did not hold */
    SQ_STATUS_COUNT
} sq_status_t;

/* Short constant name of a status ("invalid argument", ...). */
const char *sq_status_string(sq_status_t st);

/* Record the error message for the current thread (printf-style) and return
 * st, so that `return sq_error_set(SQ_ERR_FORMAT, "%s: ...", path);` works. */
sq_status_t sq_error_set(sq_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepend "context: " to the current message (one breadcrumb per level). */
sq_status_t sq_error_push(sq_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" when none). */
const char *sq_error_last(void);
void sq_error_clear(void);

/* Library check: propagate a non-OK status up. */
#define SQ_TRY(expr)                                                                               \
    do {                                                                                           \
        sq_status_t sq_try_st_ = (expr);                                                           \
        if (sq_try_st_ != SQ_OK) return sq_try_st_;                                                \
    } while (0)

/* Library check that jumps to a cleanup label, keeping the status in `var`. */
#define SQ_TRY_GOTO(var, expr, label)                                                              \
    do {                                                                                           \
        (var) = (expr);                                                                            \
        if ((var) != SQ_OK) goto label;                                                            \
    } while (0)

/* Tool/test check: abort with file:line and the error message. */
#define SQ_CHECK(expr)                                                                             \
    do {                                                                                           \
        sq_status_t sq_chk_st_ = (expr);                                                           \
        if (sq_chk_st_ != SQ_OK) {                                                                 \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__,                                 \
                    sq_status_string(sq_chk_st_), sq_error_last());                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
