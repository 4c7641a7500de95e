/* Status strings and the per-thread error trail. */
#include "sparq/status.h"

#include <stdarg.h>
#include <string.h>

#define SQ_ERROR_MSG_MAX 1024

static _Thread_local char sq_error_msg[SQ_ERROR_MSG_MAX];

static const char *const sq_status_names[SQ_STATUS_COUNT] = {
    [SQ_OK] = "ok",
    [SQ_ERR_INVALID_ARG] = "invalid argument",
    [SQ_ERR_IO] = "I/O error",
    [SQ_ERR_FORMAT] = "bad format",
    [SQ_ERR_UNSUPPORTED] = "unsupported",
    [SQ_ERR_NOT_FOUND] = "not found",
    [SQ_ERR_RANGE] = "out of range",
    [SQ_ERR_NOMEM] = "out of memory",
    [SQ_ERR_CHECKSUM] = "checksum mismatch",
    [SQ_ERR_VERSION] = "version mismatch",
    [SQ_ERR_CONFIG] = "configuration error",
    [SQ_ERR_CUDA] = "CUDA error",
    [SQ_ERR_TRANSPORT] = "transport error",
    [SQ_ERR_INTERNAL] = "internal error",
};

const char *sq_status_string(sq_status_t st)
{
    if ((unsigned)st >= SQ_STATUS_COUNT) return "unknown status";
    return sq_status_names[st];
}

sq_status_t sq_error_set(sq_status_t st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sq_error_msg, sizeof sq_error_msg, fmt, ap);
    va_end(ap);
    return st;
}

sq_status_t sq_error_push(sq_status_t st, const char *fmt, ...)
{
    char prefix[SQ_ERROR_MSG_MAX];
    char old[SQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, sq_error_msg, sizeof old);
    if (old[0])
        snprintf(sq_error_msg, sizeof sq_error_msg, "%s: %s", prefix, old);
    else
        snprintf(sq_error_msg, sizeof sq_error_msg, "%s", prefix);
    return st;
}

const char *sq_error_last(void)
{
    return sq_error_msg;
}

void sq_error_clear(void)
{
    sq_error_msg[0] = '\0';
}
