#include "util/arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct arena_block {
	struct arena_block *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

/* A default arena's blocks start small and double up to GROW_MAX: a tree
 * kept for long (a session's presence, a queued stanza) should not hold a
 * kilobyte for a hundred bytes, and a big one still takes few blocks. */
#define GROW_FIRST 256
#define GROW_MAX 4096

struct arena {
	struct arena_block *head;
	size_t chunk, total;
	bool grow;
};

struct arena *arena_new(size_t chunk)
{
	struct arena *a = xcalloc(1, sizeof(*a));
	a->chunk = chunk ? chunk : GROW_FIRST;
	a->grow = chunk == 0;
	return a;
}

void *arena_alloc(struct arena *a, size_t size)
{
	const size_t align = alignof(max_align_t);
	struct arena_block *b = a->head;
	size_t off;

	if (size > ((size_t)-1) / 2)
		abort(); /* no arena holds half the address space */
	size = (size + align - 1) & ~(align - 1);
	if (b == NULL || b->size - b->used < size) {
		size_t bsize = size > a->chunk ? size : a->chunk;
		b = xmalloc(sizeof(*b) + bsize);
		b->size = bsize;
		b->used = 0;
		/* An oversized block goes second so the current block keeps
		 * serving small allocations. */
		if (size > a->chunk && a->head != NULL) {
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
			if (a->grow && a->chunk < GROW_MAX)
				a->chunk *= 2;
		}
		a->total += sizeof(*b) + bsize;
	}
	off = b->used;
	b->used += size;
	return b->data + off;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

size_t arena_size(const struct arena *a)
{
	return a->total;
}

void arena_free(struct arena *a)
{
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}
