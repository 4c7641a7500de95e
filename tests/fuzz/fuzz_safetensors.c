/* Fuzz target: sq_safetensors_parse on arbitrary bytes. A rejected input must
 * leave no object and a message; an accepted one must describe tensors that
 * lie inside the input, sized by their shape, found again by name. Touching
 * the first and last byte of each tensor lets ASan prove the bounds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sparq/weights.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sq_weight_file_t *wf = NULL;
    sq_error_clear();
    sq_status_t st = sq_safetensors_parse(data, size, "fuzz.safetensors", &wf);
    if (st != SQ_OK) {
        FUZZ_CHECK(wf == NULL);
        FUZZ_CHECK(strncmp(sq_error_last(), "fuzz.safetensors: ", 18) == 0);
        return 0;
    }
    FUZZ_CHECK(wf != NULL);
    volatile uint8_t sink = 0;
    size_t n = sq_weights_count(wf);
    for (size_t i = 0; i < n; i++) {
        const sq_weight_info_t *t = sq_weights_at(wf, i);
        FUZZ_CHECK(t && t->name && sq_weights_find(wf, t->name) == t);
        FUZZ_CHECK(t->dtype == SQ_DTYPE_F32 || t->dtype == SQ_DTYPE_F16 ||
                   t->dtype == SQ_DTYPE_BF16);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= SQ_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0);
            FUZZ_CHECK(!__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel));
        }
        FUZZ_CHECK(numel * sq_dtype_size(t->dtype) == t->nbytes);
        if (t->nbytes == 0) continue;
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= data + 8 && t->nbytes <= size && p - data <= (ptrdiff_t)(size - t->nbytes));
        FUZZ_CHECK((uintptr_t)p % sq_dtype_size(t->dtype) == 0);
        sink ^= p[0];
        sink ^= p[t->nbytes - 1];
    }
    FUZZ_CHECK(sq_weights_at(wf, n) == NULL);
    (void)sink;
    sq_weights_close(wf);
    return 0;
}
