/* A bump allocator: many small allocations, freed all at once. Each stanza
 * tree lives in one arena and is freed when the stanza is done. */
#ifndef ROOST_UTIL_ARENA_H
#define ROOST_UTIL_ARENA_H

#include <stddef.h>

struct arena;

/* chunk: size of each block taken from malloc; 0 = blocks that start at
 * 256 bytes and double up to 4 KiB. */
struct arena *arena_new(size_t chunk);
/* Never returns NULL; memory is aligned for any type. */
void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* Bytes handed out plus per-block overhead: what this arena costs. */
size_t arena_size(const struct arena *a);
void arena_free(struct arena *a);

#endif
