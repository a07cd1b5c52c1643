/* An account loaded in memory: its roster and its sessions. Loaded when a
 * session binds or when a stanza needs the roster (e.g. a subscription
 * request to an offline user), kept while referenced, then unloaded. The
 * roster is write-through: memory changes first, the store follows in
 * order. */
#ifndef ROOST_CORE_ACCOUNT_H
#define ROOST_CORE_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/module.h"
#include "store/store.h"

struct server;
struct session;
struct hashmap;
struct seal_unlocked;

/* One roster entry, owned by the account (strings xmalloc'd). */
struct roster_entry {
	char *jid;
	char *name;
	enum roster_sub sub;
	bool ask;
	bool pending_in;
	bool hidden;
	char **groups;
	size_t ngroups;
};

struct account {
	struct server *srv;
	char *bare;          /* "local@domain" */
	char *local, *domain;
	unsigned refs;
	bool loaded;         /* roster read from the store */
	bool exists;         /* the user exists in the store */
	struct hashmap *roster; /* contact bare JID -> struct roster_entry */
	uint64_t roster_ver;
	struct session *sessions; /* bound sessions, linked by next_in_account */
	struct account_waiter *waiters; /* callbacks waiting for the load */
	/* The user's sealed-store keyring, unlocked by a password login
	 * (DESIGN §5); NULL until then. Wiped when the account unloads,
	 * i.e. when its last session (and request) is gone. */
	struct seal_unlocked *unlocked;
	/* XEP-0313 catch-up (issue 4): set by mod_mam when a session of the
	 * account queried the archive after binding and before its initial
	 * presence; kept while the account is loaded. The client catches up
	 * by MAM, so mod_offline sends no flood to the account's sessions
	 * (as after XEP-0013). mod_mam itself removes the offline records
	 * whose stanza-ids were in a catch-up page, once that page was
	 * acknowledged (XEP-0198) or written out. */
	bool mam_catchup;
	void *mod_ctx[MODULES_MAX];  /* see module.h */
};

/* Called once the account is loaded (or failed to: account->loaded false,
 * or account->exists false for an unknown user). The callback holds a
 * reference it must drop with account_unref when done. */
typedef void account_cb(void *ctx, struct account *account);

/* Gets the account for a prepared bare JID of a local domain, loading it
 * if needed. cb runs later on the loop, never from inside this call. */
void account_get(struct server *srv, const char *bare, account_cb *cb,
		 void *ctx);
/* Like account_get for a user the caller has just found in the store (a
 * successful SASL login): an account that is not loaded yet is loaded
 * from its roster alone, without looking the user up again. */
void account_get_known(struct server *srv, const char *bare, account_cb *cb,
		       void *ctx);
void account_ref(struct account *a);
void account_unref(struct account *a);

/* Roster access (account must be loaded). */
struct roster_entry *account_roster_find(struct account *a, const char *jid);
/* Creates or returns the entry for jid (new entries: sub none, hidden
 * false, no name). Changes are not stored until account_roster_save. */
struct roster_entry *account_roster_ensure(struct account *a, const char *jid);
/* Persists `e` (bumps the version; returns the new version, which is
 * already in a->roster_ver when this returns). */
uint64_t account_roster_save(struct account *a, struct roster_entry *e);
/* Removes `jid` from the roster and the store; returns the new version. */
uint64_t account_roster_remove(struct account *a, const char *jid);

/* Iterates available sessions. */
#define account_foreach_session(a, s) \
	for (struct session *s = (a)->sessions; s != NULL; s = s->next_in_account)

#endif
