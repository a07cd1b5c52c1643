/* XEP-0191: every account's blocking list in memory, and the JID matching
 * rules. A list is a set of prepared JID strings; a JID is looked up by
 * the (at most three) forms an item could take to block it, so a check
 * costs three hash lookups whatever the list's size. */
#include "mod/mod_blocking.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jid.h"
#include "store/store.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"

struct blocklist {
	struct hashmap *items;  /* item -> the list itself (any non-NULL) */
};

struct blocklists {
	struct hashmap *owners; /* bare JID -> struct blocklist */
};

/* Room for any JID: three parts of at most JID_PART_MAX bytes, '@', '/'
 * and the NUL. */
#define JID_BUF (3 * JID_PART_MAX + 3)

struct blocklists *blocklists_new(void)
{
	struct blocklists *lists = xcalloc(1, sizeof(*lists));

	lists->owners = hashmap_new();
	return lists;
}

static void blocklist_free(struct blocklist *bl)
{
	hashmap_free(bl->items);
	free(bl);
}

void blocklists_free(struct blocklists *lists)
{
	size_t pos = 0;
	const char *key;
	void *value;

	if (lists == NULL)
		return;
	while (hashmap_next(lists->owners, &pos, &key, &value))
		blocklist_free(value);
	hashmap_free(lists->owners);
	free(lists);
}

bool blocklists_empty(const struct blocklists *lists)
{
	return hashmap_count(lists->owners) == 0;
}

const struct blocklist *blocklists_find(const struct blocklists *lists,
					const char *owner)
{
	return hashmap_get(lists->owners, owner);
}

const struct blocklist *blocklists_find_jid(const struct blocklists *lists,
					    const struct jid *owner)
{
	char buf[JID_BUF];

	if (owner->local == NULL)
		return NULL;
	snprintf(buf, sizeof(buf), "%s@%s", owner->local, owner->domain);
	return hashmap_get(lists->owners, buf);
}

void blocklists_add(struct blocklists *lists, const char *owner,
		    const char *item)
{
	struct blocklist *bl = hashmap_get(lists->owners, owner);

	if (bl == NULL) {
		bl = xcalloc(1, sizeof(*bl));
		bl->items = hashmap_new();
		hashmap_put(lists->owners, owner, bl);
	}
	hashmap_put(bl->items, item, bl);
}

void blocklists_remove(struct blocklists *lists, const char *owner,
		       const char *item)
{
	struct blocklist *bl = hashmap_get(lists->owners, owner);

	if (bl == NULL)
		return;
	hashmap_remove(bl->items, item);
	if (hashmap_count(bl->items) == 0)
		blocklists_clear(lists, owner);
}

void blocklists_clear(struct blocklists *lists, const char *owner)
{
	struct blocklist *bl = hashmap_remove(lists->owners, owner);

	if (bl != NULL)
		blocklist_free(bl);
}

void blocklists_keep_only(struct blocklists *lists, const struct hashmap *keep)
{
	size_t pos = 0, n = 0;
	char **drop = xcalloc(hashmap_count(lists->owners) + 1, sizeof(*drop));
	const char *key;

	/* Collected first: clearing removes from the map being walked. */
	while (hashmap_next(lists->owners, &pos, &key, NULL))
		if (hashmap_get(keep, key) == NULL)
			drop[n++] = xstrdup(key);
	for (size_t i = 0; i < n; i++) {
		blocklists_clear(lists, drop[i]);
		free(drop[i]);
	}
	free(drop);
}

size_t blocklist_count(const struct blocklist *bl)
{
	return bl != NULL ? hashmap_count(bl->items) : 0;
}

bool blocklist_has(const struct blocklist *bl, const char *item)
{
	return bl != NULL && hashmap_get(bl->items, item) != NULL;
}

void blocklist_foreach(const struct blocklist *bl,
		       void (*fn)(const char *item, void *ctx), void *ctx)
{
	size_t pos = 0;
	const char *key;
	void *value;

	if (bl == NULL)
		return;
	while (hashmap_next(bl->items, &pos, &key, &value))
		fn(key, ctx);
}

/* Calls has(form, set) for each form of x an item may take to block it:
 * the full JID, the bare JID, the domain (a domain/resource item is the
 * full form of a JID without localpart). */
static bool any_form(const struct jid *x,
		     bool (*has)(const char *form, const void *set),
		     const void *set)
{
	char buf[JID_BUF];

	if (x->resource != NULL) {
		snprintf(buf, sizeof(buf), "%s%s%s/%s",
			 x->local != NULL ? x->local : "",
			 x->local != NULL ? "@" : "", x->domain, x->resource);
		if (has(buf, set))
			return true;
	}
	if (x->local != NULL) {
		snprintf(buf, sizeof(buf), "%s@%s", x->local, x->domain);
		if (has(buf, set))
			return true;
	}
	return has(x->domain, set);
}

static bool in_list(const char *form, const void *set)
{
	return hashmap_get(((const struct blocklist *)set)->items, form) !=
	       NULL;
}

static bool is_item(const char *form, const void *set)
{
	return strcmp(form, set) == 0;
}

bool blocklist_matches(const struct blocklist *bl, const struct jid *x)
{
	return bl != NULL && any_form(x, in_list, bl);
}

bool blocking_item_covers(const char *item, const struct jid *x)
{
	return any_form(x, is_item, item);
}

/* ---- loading ---- */

struct load {
	struct blocklists *lists;
	int result;
};

static void load_done(void *ctx, int result,
		      const struct store_data_item *items, size_t n)
{
	struct load *l = ctx;

	l->result = result < 0 ? -1 : 0;
	for (size_t i = 0; i < n; i++)
		if (items[i].owner != NULL && items[i].key != NULL)
			blocklists_add(l->lists, items[i].owner, items[i].key);
	if (result >= 0)
		log_info("blocking: %zu blocked JIDs of %zu accounts loaded", n,
			 hashmap_count(l->lists->owners));
}

int blocklists_load(struct blocklists *lists, struct store *st)
{
	struct load l = { .lists = lists, .result = -1 };

	store_data_scan(st, BLOCKLIST_SPACE, load_done, &l);
	store_flush(st);
	return l.result;
}
