#include "core/account.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/session.h"
#include "seal/seal.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"

struct account_waiter {
	struct account_waiter *next;
	account_cb *cb;
	void *ctx;
};

static void entry_free(struct roster_entry *e)
{
	free(e->jid);
	free(e->name);
	for (size_t i = 0; i < e->ngroups; i++)
		free(e->groups[i]);
	free(e->groups);
	free(e);
}

static void account_free(struct account *a)
{
	size_t pos = 0;
	void *v;

	if (a->srv->modules != NULL)
		modules_account_free(a->srv, a);
	seal_unlocked_free(a->unlocked);
	if (a->roster != NULL) {
		while (hashmap_next(a->roster, &pos, NULL, &v))
			entry_free(v);
		hashmap_free(a->roster);
	}
	free(a->bare);
	free(a->local);
	free(a->domain);
	free(a);
}

void account_ref(struct account *a)
{
	a->refs++;
}

void account_unref(struct account *a)
{
	if (--a->refs > 0)
		return;
	/* Nothing refers to it: unload. The store has every change already
	 * queued, in order, so the next load sees them. */
	if (hashmap_get(a->srv->accounts, a->bare) == a)
		hashmap_remove(a->srv->accounts, a->bare);
	account_free(a);
}

static void run_waiters(struct account *a)
{
	struct account_waiter *w = a->waiters, *next;

	a->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->cb(w->ctx, a); /* passes the waiter's reference on */
		free(w);
	}
}

static void roster_loaded(void *ctx, int result, const struct roster_item *items,
			  size_t n, uint64_t version)
{
	struct account *a = ctx;

	if (result == 0) {
		for (size_t i = 0; i < n; i++) {
			struct roster_entry *e = account_roster_ensure(a, items[i].jid);
			e->name = items[i].name ? xstrdup(items[i].name) : NULL;
			e->sub = items[i].sub;
			e->ask = items[i].ask;
			e->pending_in = items[i].pending_in;
			e->hidden = items[i].hidden;
			e->ngroups = items[i].ngroups;
			free(e->groups);
			e->groups = xcalloc(items[i].ngroups + 1, sizeof(char *));
			for (size_t g = 0; g < items[i].ngroups; g++)
				e->groups[g] = xstrdup(items[i].groups[g]);
		}
		a->roster_ver = version;
		a->loaded = true;
	} else {
		log_error("%s: cannot load the roster", a->bare);
		hashmap_remove(a->srv->accounts, a->bare);
	}
	run_waiters(a);
	account_unref(a); /* the load's own reference */
}

static void user_loaded(void *ctx, int result, const struct store_user *u)
{
	struct account *a = ctx;

	if (result == 1) {
		a->exists = true;
		store_roster_get(a->srv->store, a->bare, roster_loaded, a);
		return;
	}
	if (result < 0)
		log_error("%s: cannot look the account up", a->bare);
	/* Unknown users are not kept: drop the table entry now so the next
	 * request looks again (the account may be created meanwhile). */
	hashmap_remove(a->srv->accounts, a->bare);
	run_waiters(a);
	account_unref(a);
}

struct deferred {
	struct account *a;
	account_cb *cb;
	void *ctx;
};

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d = arg;
	d->cb(d->ctx, d->a);
	free(d);
}

static void get(struct server *srv, const char *bare, bool known,
		account_cb *cb, void *ctx)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	struct account_waiter *w;

	if (a != NULL && a->loaded) {
		/* Callbacks never run inside the request (store.h's rule,
		 * kept here so callers need one code path). */
		struct deferred *d = xmalloc(sizeof(*d));
		d->a = a;
		d->cb = cb;
		d->ctx = ctx;
		account_ref(a);
		event_base_once(srv->base, -1, EV_TIMEOUT, deferred_cb, d, NULL);
		return;
	}
	if (a == NULL) {
		const char *at = strchr(bare, '@');
		a = xcalloc(1, sizeof(*a));
		a->srv = srv;
		a->bare = xstrdup(bare);
		a->local = at ? xstrndup(bare, (size_t)(at - bare)) : xstrdup("");
		a->domain = xstrdup(at ? at + 1 : bare);
		a->roster = hashmap_new();
		a->refs = 1; /* held by the load until it completes */
		hashmap_put(srv->accounts, bare, a);
		if (known) {
			a->exists = true;
			store_roster_get(srv->store, a->bare, roster_loaded, a);
		} else {
			store_user_get(srv->store, a->local, a->domain,
				       user_loaded, a);
		}
	}
	/* Waiters run in arrival order: a subscribe then an unsubscribe for
	 * an account being loaded must be handled in that order. */
	w = xmalloc(sizeof(*w));
	w->cb = cb;
	w->ctx = ctx;
	w->next = NULL;
	struct account_waiter **tail = &a->waiters;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = w;
	account_ref(a);
}

void account_get(struct server *srv, const char *bare, account_cb *cb, void *ctx)
{
	get(srv, bare, false, cb, ctx);
}

void account_get_known(struct server *srv, const char *bare, account_cb *cb,
		       void *ctx)
{
	/* The caller read the user's row moments ago (SASL): reading it
	 * again would cost a store round trip per login and tell nothing
	 * new, since a row deleted after authentication does not end the
	 * stream either. */
	get(srv, bare, true, cb, ctx);
}

struct roster_entry *account_roster_find(struct account *a, const char *jid)
{
	return hashmap_get(a->roster, jid);
}

struct roster_entry *account_roster_ensure(struct account *a, const char *jid)
{
	struct roster_entry *e = hashmap_get(a->roster, jid);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->jid = xstrdup(jid);
		e->groups = xcalloc(1, sizeof(char *));
		hashmap_put(a->roster, jid, e);
	}
	return e;
}

static void roster_stored(void *ctx, int result, const struct roster_item *items,
			  size_t n, uint64_t version)
{
	char *bare = ctx;

	if (result != 0)
		log_error("%s: cannot store a roster change", bare);
	free(bare);
}

uint64_t account_roster_save(struct account *a, struct roster_entry *e)
{
	struct roster_item item = {
		.jid = e->jid,
		.name = e->name,
		.sub = e->sub,
		.ask = e->ask,
		.pending_in = e->pending_in,
		.hidden = e->hidden,
		.groups = (const char **)e->groups,
		.ngroups = e->ngroups,
	};

	/* Versions handed out here run ahead of nothing: the store numbers
	 * the same changes from a server-wide sequence, so each stored
	 * version is >= the one we announced for that state. After a reload
	 * a client holding an older number gets the full roster; no number
	 * ever names two different rosters. */
	a->roster_ver++;
	store_roster_put(a->srv->store, a->bare, &item, roster_stored,
			 xstrdup(a->bare));
	return a->roster_ver;
}

uint64_t account_roster_remove(struct account *a, const char *jid)
{
	struct roster_entry *e = hashmap_remove(a->roster, jid);

	if (e != NULL)
		entry_free(e);
	a->roster_ver++;
	store_roster_delete(a->srv->store, a->bare, jid, roster_stored,
			    xstrdup(a->bare));
	return a->roster_ver;
}
