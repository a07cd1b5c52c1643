/* XEP-0191 blocking lists. Routing asks about every stanza and cannot wait
 * for the store, so every account's list is held in memory from start-up
 * (mod_blocking_list.c); mod_blocking.c speaks the protocol and filters
 * the routes. */
#ifndef ROOST_MOD_MOD_BLOCKING_H
#define ROOST_MOD_MOD_BLOCKING_H

#include <stdbool.h>
#include <stddef.h>

struct hashmap;
struct jid;
struct server;
struct store;

/* ---- for other modules ---- */

/* The account `bare` was removed (XEP-0077, roostctl): forget its list,
 * which store_user_delete removed from the store already. */
void blocking_forget(struct server *srv, const char *bare);
/* Forgets the lists of every owner not in `keep` (bare JID -> anything):
 * accounts removed by another process (roostctl deluser). */
void blocking_forget_unless(struct server *srv, const struct hashmap *keep);

/* ---- between mod_blocking.c and mod_blocking_list.c ---- */

/* All accounts' lists, by owner (a prepared bare JID). Items are prepared
 * JIDs (full, bare, domain/resource or domain). An owner whose list is
 * empty has no entry. */
struct blocklists;
struct blocklist;

/* The space and key layout in the per-user store: one item per blocked
 * JID, keyed by the JID, with an empty value. */
#define BLOCKLIST_SPACE "blocklist"

struct blocklists *blocklists_new(void);
void blocklists_free(struct blocklists *lists);
/* Reads every account's list from the store; waits for it (start-up
 * only). Returns 0, or -1 if the store failed. */
int blocklists_load(struct blocklists *lists, struct store *st);

bool blocklists_empty(const struct blocklists *lists);
/* The owner's list, or NULL if it is empty. */
const struct blocklist *blocklists_find(const struct blocklists *lists,
					const char *owner);
/* Same, for an owner given as a parsed JID (its resource is ignored);
 * builds no string on the heap: this is the routing path. */
const struct blocklist *blocklists_find_jid(const struct blocklists *lists,
					    const struct jid *owner);
/* Adds (no-op if present) or removes (no-op if absent) one item. */
void blocklists_add(struct blocklists *lists, const char *owner,
		    const char *item);
void blocklists_remove(struct blocklists *lists, const char *owner,
		       const char *item);
/* Drops the owner's whole list. */
void blocklists_clear(struct blocklists *lists, const char *owner);
/* Clears every owner's list whose bare JID is not a key of `keep`. */
void blocklists_keep_only(struct blocklists *lists, const struct hashmap *keep);

size_t blocklist_count(const struct blocklist *bl);
bool blocklist_has(const struct blocklist *bl, const char *item);
/* Calls fn for each item, in no particular order. */
void blocklist_foreach(const struct blocklist *bl,
		       void (*fn)(const char *item, void *ctx), void *ctx);

/* Does the list block `x`? XEP-0191 §6 (XEP-0016's order): an item
 * user@domain/resource blocks only that full JID, user@domain any of its
 * resources, domain/resource only that JID, and domain the domain itself
 * and every JID at it. bl may be NULL (blocks nothing). */
bool blocklist_matches(const struct blocklist *bl, const struct jid *x);
/* The same rule for one item. */
bool blocking_item_covers(const char *item, const struct jid *x);

#endif
