/* sparq/codec_gpu.h — the activation codec on a CUDA device.
 *
 * Same messages as sparq/codec.h, byte for byte (codec/FORMAT.md): a message
 * the GPU encodes decodes on the CPU and the other way round, and with
 * nearest rounding (or stochastic rounding under the same seed/stream) both
 * encoders write identical bytes. The quantizer follows the normative rules
 * of FORMAT.md operation for operation (fp32 division, rint, the scale bump).
 *
 * Division of labour with the host: the checksum is CRC32C over the whole
 * message, which a host computes at memory speed on the copy it sends
 * anyway. So the GPU encoder leaves the checksum field 0 and the sender calls
 * sq_codec_reseal() on its host copy; the receiver verifies header and
 * checksum on its host copy with sq_codec_check() before the payload goes to
 * the device, and the GPU decoder makes every remaining FORMAT.md check on
 * the device (a failed check is reported with the same status as the CPU
 * decoder's, the output then holds garbage).
 *
 * Not supported on the GPU (SQ_ERR_UNSUPPORTED, use the CPU codec): outlier
 * columns. Everything else in sq_codec_params_t is.
 *
 * Pointers named d* and x/y are device memory; stream is a cudaStream_t
 * (NULL: the legacy default stream). Each call returns once its result is
 * known to the host: encode after one small device-to-host read (the
 * non-zero count that sizes the message and picks the AUTO layout, and the
 * NaN/Inf flag), decode after reading back the check flag; the kernels that
 * write the message bytes may still be running on `stream` when encode
 * returns (order a copy after them on the same stream). Encode also comes in
 * two halves (sq_codec_gpu_encode_begin / _end) for a host that has other
 * work to queue before it needs the size. Work with one
 * workspace must stay on one stream (or be ordered by the caller): the
 * workspace's scratch is reused by the next call. Kernels run on the device
 * that was current when the workspace was created; keep it current.
 *
 * How the work is split into kernels: codec/GPU.md.
 */
#ifndef SPARQ_CODEC_GPU_H
#define SPARQ_CODEC_GPU_H

#include "sparq/codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sq_codec_gpu sq_codec_gpu_t;

/* A workspace for messages of up to max_elems elements with up to max_rows
 * rows (device scratch: max_elems bytes of codes plus max_elems / 2 bytes of
 * per-32-element counts and their scan; pinned host words for the flags).
 * Encode needs rows <= max_rows and rows * cols <= max_elems, bitmap decode
 * rows * cols <= max_elems (SQ_ERR_RANGE otherwise); other decodes need no
 * scratch. One workspace serves one stream at a time. SQ_ERR_UNSUPPORTED
 * when this build has no CUDA or no device is visible. */
sq_status_t sq_codec_gpu_create(int64_t max_rows, int64_t max_elems, sq_codec_gpu_t **out);
void sq_codec_gpu_destroy(sq_codec_gpu_t *g);

/* Quantize and encode x [rows, cols] (device, row stride ld) into dmsg
 * (device, cap bytes, 8-byte aligned). *written = message size; the checksum
 * field is 0 (see above). stats as in sq_codec_encode. Errors as
 * sq_codec_encode (params, NaN/Inf naming row and column, fp16 scale
 * overflow, cap too small; a misaligned dmsg is SQ_ERR_INVALID_ARG), plus
 * SQ_ERR_UNSUPPORTED (outliers), SQ_ERR_RANGE (a shape beyond the
 * workspace) and SQ_ERR_CUDA. Writes only [dmsg, dmsg + *written) on
 * success (on error dmsg holds garbage, like the CPU encoder's buffer). */
sq_status_t sq_codec_gpu_encode(sq_codec_gpu_t *g, const sq_codec_params_t *p, const float *x,
                                int64_t rows, int64_t cols, int64_t ld, void *dmsg, size_t cap,
                                size_t *written, sq_codec_stats_t *stats, void *stream);

/* sq_codec_gpu_encode in two halves (it is begin, then end). begin checks
 * the arguments, queues the quantizer (scales straight into dmsg) and the
 * read-back of its flags on `stream`, and returns without waiting: x is read
 * only by work queued before begin returns, so work queued after it may
 * overwrite x. end waits for those flags alone (not for the stream), picks
 * the layout, queues the kernels that write the rest of the message on the
 * same stream and returns the size, with sq_codec_gpu_encode's errors. One
 * encode in flight per workspace: begin again before end is
 * SQ_ERR_INVALID_ARG, as is end without begin. dmsg/cap/p are remembered. */
sq_status_t sq_codec_gpu_encode_begin(sq_codec_gpu_t *g, const sq_codec_params_t *p,
                                      const float *x, int64_t rows, int64_t cols, int64_t ld,
                                      void *dmsg, size_t cap, void *stream);
sq_status_t sq_codec_gpu_encode_end(sq_codec_gpu_t *g, size_t *written, sq_codec_stats_t *stats);

/* Decode the message at dmsg (device, 8-byte aligned; hdr is what
 * sq_codec_check() returned for the host copy of the same bytes) into
 * y [rows, cols] (device, row stride ld). rows/cols must equal the header's
 * (SQ_ERR_RANGE). Errors: SQ_ERR_FORMAT / SQ_ERR_RANGE for a message that
 * fails a check (with several faults the first check of FORMAT.md's table
 * that fails is named, which is not always the one the CPU decoder names
 * first), SQ_ERR_UNSUPPORTED (outliers), SQ_ERR_INVALID_ARG (a header
 * struct that does not describe a valid message), SQ_ERR_CUDA. Reads only
 * [dmsg, dmsg + hdr->total_size), writes only the rows x cols cells of y. */
sq_status_t sq_codec_gpu_decode(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                const void *dmsg, float *y, int64_t rows, int64_t cols,
                                int64_t ld, void *stream);

/* Decode a CSR message into the arrays of a zero-based CSR matrix with
 * 32-bit indices, as cuSPARSE takes them (all device memory):
 * row_ptr [rows + 1], col_idx [nnz], val [nnz] (fp32, val[k] is the value
 * sq_codec_gpu_decode would write at [r][col_idx[k]]), nnz = hdr->nnz.
 * Same checks and errors as sq_codec_gpu_decode; SQ_ERR_INVALID_ARG when the
 * message is not CSR, SQ_ERR_RANGE when rows + 1, cols or nnz exceed
 * INT32_MAX. On error the arrays hold garbage. */
sq_status_t sq_codec_gpu_decode_csr(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                    const void *dmsg, int32_t *row_ptr, int32_t *col_idx,
                                    float *val, void *stream);

#ifdef __cplusplus
}
#endif
#endif
