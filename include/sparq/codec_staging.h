/* sparq/codec_staging.h — device activations to host messages and back.
 *
 * Debian's UCX has no CUDA transport, so a stage on a GPU sends from host
 * memory: the GPU codec (codec_gpu.h) encodes the boundary on the device,
 * the message is copied into page-locked host memory and sealed (checksum)
 * there, and the host message goes out over the transport. The stager owns
 * that path:
 *
 *   compute stream  ..forward(i)..|          |..forward(i+1)...............
 *   codec stream                  |quantize(i)|      |pack(i)|copy D2H(i)|
 *   host   encode(i): queue, return|launch forward(i+1)|finish(i): sizes,
 *                                                      pack, wait copy, seal
 *
 * encode() queues the quantizer on the codec stream behind the compute
 * stream's work so far (an event: the host does not wait) and returns; the
 * compute stream is made to wait (again by an event) until the quantizer has
 * read the boundary, so the next forward may overwrite it. The host learns a
 * message's size in finish(), from the quantizer's flags: it waits for those
 * flags alone, then queues the layout kernels and the copy to host, which
 * overlap whatever the compute stream runs meanwhile, waits for the copies
 * and seals. So a caller that queues micro-batch i+1's forward between
 * encode(i) and finish(i) never leaves the GPU idle for the host.
 *
 * The send buffer holds the queued messages framed as one payload:
 * per message a u64 length (host byte order) and the message, messages
 * 8-byte aligned (they are multiples of 8 bytes).
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

/* Messages one payload may hold (a boundary has at most 2 tensors). */
#define SQ_CODEC_STAGER_MAX_MESSAGES 2

/* max_rows/max_elems bound one tensor; max_out bounds the framed send
 * payload and n_out (1 .. SQ_CODEC_STAGER_MAX_MESSAGES) is how many
 * messages it holds at most (one encoder workspace each); max_in bounds one
 * received message. max_out / max_in 0: this stager does not send / receive
 * and reserves nothing for it. compute_stream is the backend's stream
 * (sq_backend_cuda_stream). */
sq_status_t sq_codec_stager_create(int64_t max_rows, int64_t max_elems, size_t max_out, int n_out,
                                   size_t max_in, void *compute_stream, sq_codec_stager_t **out);
void sq_codec_stager_destroy(sq_codec_stager_t *s);

/* The page-locked host send buffer (max_out bytes). */
uint8_t *sq_codec_stager_send_buf(sq_codec_stager_t *s);

/* Queue the encoding of x (device, [rows, cols], row stride ld) as the next
 * message of the payload; returns without waiting for the device. Argument
 * errors (shape, params, a payload that cannot fit max_out at the worst
 * case) come back here; errors that depend on the data (NaN/Inf, fp16 scale
 * overflow) from finish(). */
sq_status_t sq_codec_stager_encode(sq_codec_stager_t *s, const sq_codec_params_t *p,
                                   const float *x, int64_t rows, int64_t cols, int64_t ld);
/* Lay the queued messages out in the send buffer as one framed payload, wait
 * for their copies to host and seal them (CRC32C); *len = payload bytes (0
 * when nothing was queued). After an error the queued messages are dropped. */
sq_status_t sq_codec_stager_finish(sq_codec_stager_t *s, size_t *len);

/* Decode the host message msg[0, len) into y (device), on the compute
 * stream. Every FORMAT.md check applies; returns when y is written. */
sq_status_t sq_codec_stager_decode(sq_codec_stager_t *s, const void *msg, size_t len, float *y,
                                   int64_t rows, int64_t cols, int64_t ld);

#ifdef __cplusplus
}
#endif
#endif
