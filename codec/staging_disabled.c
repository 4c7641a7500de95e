/* Built instead of codec/cuda/staging.c when CUDA is off. */
#include "sparq/codec_staging.h"

sq_status_t sq_codec_stager_create(int64_t max_rows, int64_t max_elems, size_t max_out, int n_out,
                                   size_t max_in, void *compute_stream, sq_codec_stager_t **out)
{
    (void)max_rows, (void)max_elems, (void)max_out, (void)n_out, (void)max_in;
    (void)compute_stream, (void)out;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "codec staging: this sparq was built without CUDA");
}

void sq_codec_stager_destroy(sq_codec_stager_t *s)
{
    (void)s;
}

uint8_t *sq_codec_stager_send_buf(sq_codec_stager_t *s)
{
    (void)s;
    return NULL;
}

sq_status_t sq_codec_stager_encode(sq_codec_stager_t *s, const sq_codec_params_t *p,
                                   const float *x, int64_t rows, int64_t cols, int64_t ld)
{
    (void)s, (void)p, (void)x, (void)rows, (void)cols, (void)ld;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "codec staging: this sparq was built without CUDA");
}

sq_status_t sq_codec_stager_finish(sq_codec_stager_t *s, size_t *len)
{
    (void)s, (void)len;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "codec staging: this sparq was built without CUDA");
}

sq_status_t sq_codec_stager_decode(sq_codec_stager_t *s, const void *msg, size_t len, float *y,
                                   int64_t rows, int64_t cols, int64_t ld)
{
    (void)s, (void)msg, (void)len, (void)y, (void)rows, (void)cols, (void)ld;
    return sq_error_set(SQ_ERR_UNSUPPORTED, "codec staging: this sparq was built without CUDA");
}
