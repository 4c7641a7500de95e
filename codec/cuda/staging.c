/* Device boundary <-> page-locked host message (sparq/codec_staging.h). */
#include "sparq/codec_staging.h"

#include <cuda_runtime_api.h>
#include <stdlib.h>
#include <string.h>

#include "sparq/codec_gpu.h"

struct sq_codec_stager {
    sq_codec_gpu_t *enc[SQ_CODEC_STAGER_MAX_MESSAGES]; /* one per queued message */
    sq_codec_gpu_t *dec;
    int n_out;
    cudaStream_t codec, compute;
    cudaEvent_t produced, consumed;
    uint8_t *host_out; /* page-locked, max_out bytes: the framed payload */
    uint8_t *dev_out;  /* device messages, each at its worst-case place */
    uint8_t *dev_in;   /* one received message */
    size_t max_out, max_in;
    int n_pending;
    size_t dev_next; /* where the next queued message's frame starts in dev_out */
    size_t pend_dev[SQ_CODEC_STAGER_MAX_MESSAGES]; /* its message's offset in dev_out */
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
    for (int i = 0; i < SQ_CODEC_STAGER_MAX_MESSAGES; i++)
        sq_codec_gpu_destroy(s->enc[i]);
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
    for (int i = 0; i < s->n_out; i++)
        SQ_TRY(sq_codec_gpu_create(max_rows, max_elems, &s->enc[i]));
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

sq_status_t sq_codec_stager_create(int64_t max_rows, int64_t max_elems, size_t max_out, int n_out,
                                   size_t max_in, void *compute_stream, sq_codec_stager_t **out)
{
    if (!out) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: out is NULL");
    if (max_out && (n_out < 1 || n_out > SQ_CODEC_STAGER_MAX_MESSAGES))
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: %d messages per payload (1 .. %d)",
                            n_out, SQ_CODEC_STAGER_MAX_MESSAGES);
    sq_codec_stager_t *s = calloc(1, sizeof *s);
    if (!s) return sq_error_set(SQ_ERR_NOMEM, "codec staging: out of host memory");
    s->compute = (cudaStream_t)compute_stream;
    s->n_out = max_out ? n_out : 0;
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

sq_status_t sq_codec_stager_encode(sq_codec_stager_t *s, const sq_codec_params_t *p, const float *x,
                                   int64_t rows, int64_t cols, int64_t ld)
{
    if (!s || !p) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: NULL argument");
    if (!s->max_out)
        return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: created without a send buffer");
    if (s->n_pending == s->n_out)
        return sq_error_set(SQ_ERR_INVALID_ARG,
                            "codec staging: %d messages queued, the most a payload holds "
                            "(finish first)",
                            s->n_pending);
    SQ_TRY(sq_codec_params_check(p, rows, cols));
    /* each message at its worst-case place on the device: the sizes are
     * known only at finish() */
    const size_t worst = sq_codec_max_size(p, rows, cols);
    const size_t at = s->dev_next + 8;
    if (worst > s->max_out || at > s->max_out - worst)
        return sq_error_set(SQ_ERR_RANGE,
                            "codec staging: message %d of up to %zu bytes does not fit the "
                            "%zu-byte send buffer after %zu bytes",
                            s->n_pending, worst, s->max_out, s->dev_next);
    /* the encoder reads what the compute stream wrote so far */
    STAGE_TRY(cudaEventRecord(s->produced, s->compute), "record");
    STAGE_TRY(cudaStreamWaitEvent(s->codec, s->produced, 0), "wait");
    SQ_TRY(sq_codec_gpu_encode_begin(s->enc[s->n_pending], p, x, rows, cols, ld, s->dev_out + at,
                                     worst, s->codec));
    /* ... and the compute stream may overwrite x once the quantizer is through */
    STAGE_TRY(cudaEventRecord(s->consumed, s->codec), "record");
    STAGE_TRY(cudaStreamWaitEvent(s->compute, s->consumed, 0), "wait");
    s->pend_dev[s->n_pending++] = at;
    s->dev_next = at + ((worst + 7) & ~(size_t)7);
    return SQ_OK;
}

/* Sizes, layout kernels and copies of the queued messages; the payload's
 * length in *len. */
static sq_status_t lay_out(sq_codec_stager_t *s, int *done, size_t *len)
{
    size_t off = 0;
    for (*done = 0; *done < s->n_pending;) {
        size_t n = 0;
        const int i = (*done)++;
        SQ_TRY(sq_codec_gpu_encode_end(s->enc[i], &n, NULL));
        if (off + 8 + n > s->max_out)
            return sq_error_set(SQ_ERR_INTERNAL, "codec staging: payload overruns the send buffer");
        const uint64_t n64 = n;
        memcpy(s->host_out + off, &n64, 8);
        STAGE_TRY(cudaMemcpyAsync(s->host_out + off + 8, s->dev_out + s->pend_dev[i], n,
                                  cudaMemcpyDeviceToHost, s->codec),
                  "copy to host");
        off += 8 + n;
    }
    STAGE_TRY(cudaStreamSynchronize(s->codec), "codec stream");
    for (size_t o = 0; o < off;) {
        uint64_t n;
        memcpy(&n, s->host_out + o, 8);
        SQ_TRY(sq_codec_reseal(s->host_out + o + 8, (size_t)n));
        o += 8 + (size_t)n;
    }
    *len = off;
    return SQ_OK;
}

sq_status_t sq_codec_stager_finish(sq_codec_stager_t *s, size_t *len)
{
    if (!s || !len) return sq_error_set(SQ_ERR_INVALID_ARG, "codec staging: NULL argument");
    *len = 0;
    int done = 0;
    sq_status_t st = lay_out(s, &done, len);
    if (st != SQ_OK) { /* drop the rest: their workspaces are free for the next payload */
        for (size_t n; done < s->n_pending; done++)
            (void)sq_codec_gpu_encode_end(s->enc[done], &n, NULL);
        cudaStreamSynchronize(s->codec);
        *len = 0;
    }
    s->n_pending = 0;
    s->dev_next = 0;
    return st;
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
