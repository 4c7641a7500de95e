/* Built instead of codec/cuda when CUDA is off: the GPU codec's entry points
 * report that this build has none (callers fall back to the CPU codec). */
#include "sparq/codec_gpu.h"

static sq_status_t sq_codec_gpu_off(void)
{
    return sq_error_set(SQ_ERR_UNSUPPORTED, "this sparq was built without CUDA (SPARQ_CUDA=OFF "
                                            "or no nvcc at configure time): no GPU codec");
}

sq_status_t sq_codec_gpu_create(int64_t max_rows, int64_t max_elems, sq_codec_gpu_t **out)
{
    (void)max_rows;
    (void)max_elems;
    (void)out;
    return sq_codec_gpu_off();
}

void sq_codec_gpu_destroy(sq_codec_gpu_t *g)
{
    (void)g;
}

sq_status_t sq_codec_gpu_encode(sq_codec_gpu_t *g, const sq_codec_params_t *p, const float *x,
                                int64_t rows, int64_t cols, int64_t ld, void *dmsg, size_t cap,
                                size_t *written, sq_codec_stats_t *stats, void *stream)
{
    (void)g, (void)p, (void)x, (void)rows, (void)cols, (void)ld, (void)dmsg, (void)cap;
    (void)written, (void)stats, (void)stream;
    return sq_codec_gpu_off();
}

sq_status_t sq_codec_gpu_encode_begin(sq_codec_gpu_t *g, const sq_codec_params_t *p,
                                      const float *x, int64_t rows, int64_t cols, int64_t ld,
                                      void *dmsg, size_t cap, void *stream)
{
    (void)g, (void)p, (void)x, (void)rows, (void)cols, (void)ld, (void)dmsg, (void)cap;
    (void)stream;
    return sq_codec_gpu_off();
}

sq_status_t sq_codec_gpu_encode_end(sq_codec_gpu_t *g, size_t *written, sq_codec_stats_t *stats)
{
    (void)g, (void)written, (void)stats;
    return sq_codec_gpu_off();
}

sq_status_t sq_codec_gpu_decode(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                const void *dmsg, float *y, int64_t rows, int64_t cols,
                                int64_t ld, void *stream)
{
    (void)g, (void)hdr, (void)dmsg, (void)y, (void)rows, (void)cols, (void)ld, (void)stream;
    return sq_codec_gpu_off();
}

sq_status_t sq_codec_gpu_decode_csr(sq_codec_gpu_t *g, const sq_codec_header_t *hdr,
                                    const void *dmsg, int32_t *row_ptr, int32_t *col_idx,
                                    float *val, void *stream)
{
    (void)g, (void)hdr, (void)dmsg, (void)row_ptr, (void)col_idx, (void)val, (void)stream;
    return sq_codec_gpu_off();
}
