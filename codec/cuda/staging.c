/* Device boundary <-> page-locked host message (sparq/codec_staging.h). */
#include "sparq/codec_staging.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>

#include "sparq/codec_gpu.h"

#define SQ_STAGER_MAX_PENDING 8

struct sq_codec_stager {
    sq_codec_gpu_t *enc, *dec; /* one workspace per stream */
    cudaStream_t codec, compute;
    cudaEvent_t produced, consumed;
    int overlap;
    uint8_t *host_out; /* page-locked, max_out bytes */
    uint8_t *dev_out;  /* device mirror of host_out */
    uint8_t *dev_in;   /* one received message */
    size_t max_out, max_in;
    int n_pending;
    size_t pend_off[SQ_STAGER_MAX_PENDING], pend_len[SQ_STAGER_MAX_PENDING];
};

static sq_status_t cuda_fail(const char *what, cudaError_t e)
{
    return sq_error_set(SQ_ERR_CUDA, "codec staging: %s: %s", what, cudaGetErrorString(e));
}

#define STAGE_TRY(call, what)                                                                      \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return cuda_fail((what), e_);                                       \
    } while (0)

void sq_codec_stager_destroy(sq_codec_stager_t *s)
{
    if (!s) return;
    if (s->codec) cudaStreamSynchronize(s->codec);
    sq_codec_gpu_destroy(s->enc);
    sq_codec_gpu_destroy(s->dec);
    if (s->produced) cudaEventDestroy(s->produced);
    if (s->consumed) cudaEventDestroy(s->consumed);
    if (s->codec) cudaStreamDestroy(s->codec);
    cudaFreeHost(s->host_out);
    cudaFree(s->dev_out);
    cudaFree(s->dev_in);
    free(s);
}

static sq_status_t stager_init(sq_codec_stager_t *s, int64_t max_rows, int64_t max_elems)
{
    /* a stage that only sends (receives) needs no decoder (encoder) */
    if (s->max_out) SQ_TRY(sq_codec_gpu_create(max_rows, max_elems, &s->enc));
    if (s->max_in) SQ_TRY(sq_codec_gpu_create(max_rows, max_elems, &s->dec));
    STAGE_TRY(cudaStreamCreateWithFlags(&s->codec, cudaStreamNonBlocking), "codec stream");
    STAGE_TRY(cudaEventCreateWithFlags(&s->produced, cudaEventDisableTiming), "event");
    STAGE_TRY(cudaEventCreateWithFlags(&s->consumed, cudaEventDisableTiming), "event");
    if (s->max_out) {
        if (cudaMallocHost((void **)&s->host_out, s->max_out) != cudaSuccess ||
            cudaMalloc((void **)&s->dev_out, s->max_out) != cudaSuccess)
            return sq_error_set(SQ_ERR_NOMEM,
                                "codec staging: %zu bytes of page-locked and device memory for "
                                "outgoing messages",
                                s->max_out);
    }
    if (s->max_in && cudaMalloc((void **)&s->dev_in, s->max_in) != cudaSuccess)
        return sq_error_set(SQ_ERR_NOMEM,
                            "codec staging: %zu bytes of device memory for incoming messages",
                            s->max_in);
    return SQ_OK;
}

sq_status_t sq_codec_stager_create(int64_t max_rows, int64_t max_elems, size_t max_out,
                                   size_t max_in, void *compute_stream, int overlap,
                                   sq_codec_stager_t **out)
{
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: out is NULL");
    sq_codec_stager_t *s = calloc(1, sizeof *s);
    if (!s) return sq_error_set(SQ_ERR_NOMEM, "codec staging: out of host memory");
    s->compute = (cudaStream_t)compute_stream;
    s->overlap = overlap;
    s->max_out = max_out;
    s->max_in = max_in;
    sq_status_t st = stager_init(s, max_rows, max_elems);
    if (st != SQ_OK) {
        sq_codec_stager_destroy(s);
        return st;
    }
    *out = s;
    return SQ_OK;
}

uint8_t *sq_codec_stager_send_buf(sq_codec_stager_t *s)
{
    return s ? s->host_out : NULL;
}

sq_status_t sq_codec_stager_encode(sq_codec_stager_t *s, const sq_codec_params_t *p,
                                   const float *x, int64_t rows, int64_t cols, int64_t ld,
                                   size_t off, size_t *written)
{
    if (!s || !written) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: NULL argument");
    if (!s->enc)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: created without a send buffer");
    if (off % 8 || off > s->max_out)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec staging: offset %zu is not 8-aligned inside the %zu-byte buffer",
                            off, s->max_out);
    if (s->n_pending == SQ_STAGER_MAX_PENDING)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: %d messages pending, finish first",
                            s->n_pending);
    /* the encoder reads what the compute stream wrote so far */
    STAGE_TRY(cudaEventRecord(s->produced, s->compute), "record");
    STAGE_TRY(cudaStreamWaitEvent(s->codec, s->produced, 0), "wait");
    size_t n = 0;
    SQ_TRY(sq_codec_gpu_encode(s->enc, p, x, rows, cols, ld, s->dev_out + off, s->max_out - off,
                               &n, NULL, s->codec));
    /* ... and the compute stream may overwrite x once the encoder is through */
    STAGE_TRY(cudaEventRecord(s->consumed, s->codec), "record");
    STAGE_TRY(cudaStreamWaitEvent(s->compute, s->consumed, 0), "wait");
    STAGE_TRY(cudaMemcpyAsync(s->host_out + off, s->dev_out + off, n, cudaMemcpyDeviceToHost,
                              s->codec),
              "copy to host");
    s->pend_off[s->n_pending] = off;
    s->pend_len[s->n_pending] = n;
    s->n_pending++;
    *written = n;
    return s->overlap ? SQ_OK : sq_codec_stager_finish(s);
}

sq_status_t sq_codec_stager_finish(sq_codec_stager_t *s)
{
    if (!s) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: NULL stager");
    if (!s->n_pending) return SQ_OK;
    STAGE_TRY(cudaStreamSynchronize(s->codec), "codec stream");
    for (int i = 0; i < s->n_pending; i++)
        SQ_TRY(sq_codec_reseal(s->host_out + s->pend_off[i], s->pend_len[i]));
    s->n_pending = 0;
    return SQ_OK;
}

sq_status_t sq_codec_stager_decode(sq_codec_stager_t *s, const void *msg, size_t len, float *y,
                                   int64_t rows, int64_t cols, int64_t ld)
{
    if (!s || !msg || !y) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: NULL argument");
    if (!s->dec)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: created without a receive buffer");
    sq_codec_header_t h;
    SQ_TRY(sq_codec_check(msg, len, &h));
    if (h.total_size > s->max_in)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec staging: a %zu-byte message exceeds the %zu bytes reserved",
                            h.total_size, s->max_in);
    STAGE_TRY(cudaMemcpyAsync(s->dev_in, msg, h.total_size, cudaMemcpyHostToDevice, s->compute),
              "copy to device");
    return sq_codec_gpu_decode(s->dec, &h, s->dev_in, y, rows, cols, ld, s->compute);
}
