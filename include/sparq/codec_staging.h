/* sparq/codec_staging.h — device activations to host messages and back.
 *
 * Debian's UCX has no CUDA transport, so a stage on a GPU sends from host
 * memory: the GPU codec (codec_gpu.h) encodes the boundary on the device,
 * the message is copied into page-locked host memory and sealed (checksum)
 * there, and the host message goes out over the transport. The stager owns
 * that path:
 *
 *   compute stream  ..forward(i)..|            |..forward(i+1)..........
 *   codec stream                  |quantize,pack(i)|copy D2H(i)|
 *   host                          | sizes |launch forward(i+1)|finish: seal, send(i)
 *
 * encode() waits (on the device, through an event) for the compute stream's
 * work so far, then encodes on its own stream; it returns once the message
 * size is known. The compute stream is made to wait (again through an
 * event, the host does not block) until the encoder has read its input, so
 * the next forward may overwrite the boundary; the device-to-host copy stays
 * queued on the codec stream and overlaps whatever the host launches next.
 * finish() waits for the copies and seals the messages. With overlap off
 * (for measurements) encode() finishes before it returns.
 *
 * Receiving: decode() checks header and checksum on the host copy, copies it
 * to the device and decodes there, ordered on the compute stream.
 *
 * Without CUDA every function returns SQ_ERR_UNSUPPORTED.
 */
#ifndef SPARQ_CODEC_STAGING_H
#define SPARQ_CODEC_STAGING_H

#include "sparq/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_codec_stager sq_codec_stager_t;

/* max_rows/max_elems bound one tensor; max_out/max_in bound the host send
 * buffer and one received message (0: this stager does not send / receive,
 * and reserves nothing for it). compute_stream is the backend's stream
 * (sq_backend_cuda_stream). overlap 0 makes encode() synchronous. */
sq_status_t sq_codec_stager_create(int64_t max_rows, int64_t max_elems, size_t max_out,
                                   size_t max_in, void *compute_stream, int overlap,
                                   sq_codec_stager_t **out);
void sq_codec_stager_destroy(sq_codec_stager_t *s);

/* The page-locked host send buffer (max_out bytes). */
uint8_t *sq_codec_stager_send_buf(sq_codec_stager_t *s);

/* Encode x (device, [rows, cols], row stride ld) into the send buffer at
 * byte offset off (a multiple of 8). *written = message size. The message is
 * complete only after sq_codec_stager_finish(). */
sq_status_t sq_codec_stager_encode(sq_codec_stager_t *s, const sq_codec_params_t *p,
                                   const float *x, int64_t rows, int64_t cols, int64_t ld,
                                   size_t off, size_t *written);
/* Wait for every queued message and seal it (CRC32C). */
sq_status_t sq_codec_stager_finish(sq_codec_stager_t *s);

/* Decode the host message msg[0, len) into y (device), on the compute
 * stream. Every FORMAT.md check applies; returns when y is written. */
sq_status_t sq_codec_stager_decode(sq_codec_stager_t *s, const void *msg, size_t len, float *y,
                                   int64_t rows, int64_t cols, int64_t ld);

#ifdef __cplusplus
}
#endif
#endif
