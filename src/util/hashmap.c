#include "util/hashmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* Deleted slots keep a tombstone so that probe chains stay intact. */
static char tombstone;

struct slot {
	char *key;
	void *value;
	uint64_t hash;
};

/* A map starts without slots and drops them when it empties: many maps
 * (a roster, directed presences) stay empty for most of their owner's
 * life, which may be long (an idle connection). */
#define MIN_CAP 16

struct hashmap {
	struct slot *slots;      /* NULL while cap is 0 */
	size_t cap, count, used; /* used = count + tombstones */
};

static uint64_t hash_str(const char *s)
{
	/* FNV-1a, then a final mix: keys are JIDs chosen by remote users, so
	 * spread them well; the table also caps its load factor. */
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

struct hashmap *hashmap_new(void)
{
	return xcalloc(1, sizeof(struct hashmap));
}

void hashmap_free(struct hashmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != &tombstone)
			free(m->slots[i].key);
	free(m->slots);
	free(m);
}

static struct slot *find(const struct hashmap *m, const char *key, uint64_t h)
{
	size_t mask = m->cap - 1;

	if (m->cap == 0)
		return NULL;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct slot *s = &m->slots[i];
		if (s->key == NULL)
			return NULL;
		if (s->key != &tombstone && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
}

static void rehash(struct hashmap *m, size_t cap)
{
	struct slot *old = m->slots;
	size_t oldcap = m->cap;

	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->used = m->count;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == NULL || old[i].key == &tombstone)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (m->slots[j].key != NULL)
			j = (j + 1) & (cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
	struct slot *s = find(m, key, hash_str(key));
	return s ? s->value : NULL;
}

void *hashmap_put(struct hashmap *m, const char *key, void *value)
{
	uint64_t h = hash_str(key);
	struct slot *s = find(m, key, h);
	void *prev;

	if (s != NULL) {
		prev = s->value;
		s->value = value;
		return prev;
	}
	if (m->cap == 0)
		rehash(m, MIN_CAP);
	else if ((m->used + 1) * 4 > m->cap * 3)
		rehash(m, m->count * 2 + 1 > m->cap / 2 ? m->cap * 2 : m->cap);
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		s = &m->slots[i];
		if (s->key == NULL || s->key == &tombstone) {
			if (s->key == NULL)
				m->used++;
			s->key = xstrdup(key);
			s->value = value;
			s->hash = h;
			m->count++;
			return NULL;
		}
	}
}

void *hashmap_remove(struct hashmap *m, const char *key)
{
	struct slot *s = find(m, key, hash_str(key));
	void *v;

	if (s == NULL)
		return NULL;
	v = s->value;
	free(s->key);
	s->key = &tombstone;
	s->value = NULL;
	if (--m->count == 0) {
		free(m->slots);
		m->slots = NULL;
		m->cap = m->used = 0;
	}
	return v;
}

size_t hashmap_count(const struct hashmap *m)
{
	return m->count;
}

int hashmap_next(const struct hashmap *m, size_t *pos, const char **key_r,
		 void **value_r)
{
	for (; *pos < m->cap; (*pos)++) {
		struct slot *s = &m->slots[*pos];
		if (s->key != NULL && s->key != &tombstone) {
			if (key_r)
				*key_r = s->key;
			if (value_r)
				*value_r = s->value;
			(*pos)++;
			return 1;
		}
	}
	return 0;
}
