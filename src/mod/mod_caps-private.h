/* What mod_caps.c (the protocol: presence, queries, stream feature) and
 * mod_caps_cache.c (verification strings, interest sets, the cache)
 * share. */
#ifndef ROOST_MOD_CAPS_PRIVATE_H
#define ROOST_MOD_CAPS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "mod/mod_caps.h"

struct hashmap;
struct xml_node;

#define NS_CAPS "http://jabber.org/protocol/caps"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

/* Bounds on one client's interests (a client makes its own hash, so
 * the cache must not let it grow without limit). */
#define CAPS_NOTIFY_MAX 256        /* node names in one set */
#define CAPS_NOTIFY_BYTES 16384    /* their bytes */
#define CAPS_CACHE_MAX 1024        /* verified hashes kept */

struct caps_notify {
	unsigned refs;
	size_t n;
	char **nodes;   /* sorted, unique */
};

/* Does the server implement this 'hash' (XEP-0115 §5.4 step 2/3)? */
bool caps_hash_supported(const char *hash);
/* The verification string (XEP-0115 §5.1) of a disco#info <query/>,
 * xmalloc'd; NULL when the answer is ill-formed (§5.4 step 3.3-3.5) or
 * the hash unknown. */
char *caps_hash_ver(const struct xml_node *query, const char *hash);
/* The "+notify" features of a disco#info <query/> as a set (refs 1). */
struct caps_notify *caps_notify_from_query(const struct xml_node *query);

/* The server-wide cache of verified hashes: key -> set. */
struct caps_notify *caps_cache_get(struct hashmap *cache, const char *key);
/* Adds (the cache takes a reference); makes room if full. */
void caps_cache_put(struct hashmap *cache, const char *key,
		    struct caps_notify *set);
void caps_cache_free(struct hashmap *cache);

#endif
