/* Per-stage arena: one allocation, sized from a table at load time. */
#include "sparq/tensor.h"

#include <stdlib.h>
#include <string.h>

sq_status_t sq_arena_create(size_t size, sq_arena_t *arena)
{
    size = sq_arena_footprint(size ? size : 64);
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0)
        return sq_error_set(SQ_ERR_NOMEM, "arena: cannot reserve %zu bytes", size);
    *arena = (sq_arena_t){.base = p, .size = size};
    return SQ_OK;
}

void sq_arena_destroy(sq_arena_t *arena)
{
    if (!arena) return;
    free(arena->base);
    memset(arena, 0, sizeof *arena);
}

sq_status_t sq_arena_alloc(sq_arena_t *arena, size_t bytes, const char *what, void **out)
{
    size_t need = sq_arena_footprint(bytes);
    if (need > arena->size - arena->used)
        return sq_error_set(SQ_ERR_NOMEM,
                            "arena: %s needs %zu bytes but only %zu of %zu are left (sizing bug)",
                            what ? what : "allocation", need, arena->size - arena->used,
                            arena->size);
    *out = arena->base + arena->used;
    arena->used += need;
    if (arena->used > arena->peak) arena->peak = arena->used;
    return SQ_OK;
}

void sq_arena_reset(sq_arena_t *arena, size_t mark)
{
    if (mark <= arena->used) arena->used = mark;
}
