/* A string-keyed hash map with open addressing. Keys are copied; values are
 * borrowed pointers. Not thread-safe: each map belongs to one thread. */
#ifndef ROOST_UTIL_HASHMAP_H
#define ROOST_UTIL_HASHMAP_H

#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(void);
/* Frees the map and its keys, not the values. */
void hashmap_free(struct hashmap *map);
void *hashmap_get(const struct hashmap *map, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *hashmap_put(struct hashmap *map, const char *key, void *value);
/* Removes; returns the value or NULL. */
void *hashmap_remove(struct hashmap *map, const char *key);
size_t hashmap_count(const struct hashmap *map);

/* Iteration: start with *pos = 0; returns 0 at the end. The map must not be
 * changed during iteration, except removing the entry just returned. */
int hashmap_next(const struct hashmap *map, size_t *pos, const char **key_r,
		 void **value_r);

#endif
