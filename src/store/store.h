/* The asynchronous store API: the only way to persistent state (DESIGN §1,
 * §6). Every request takes a callback that runs later on the event loop
 * thread, never from inside the request call. Requests on one store are
 * carried out in the order they were made, so a read after a write sees
 * the write. Strings passed in are copied; results handed to a callback
 * are valid only during that callback.
 *
 * Backends implement store-private.h; store.c dispatches. SQLite is the
 * default (store_sqlite.c). */
#ifndef ROOST_STORE_STORE_H
#define ROOST_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl/scram.h"

struct event_base;
struct store;

/* Accounts are identified by (localpart, domain), both prepared. */
struct store_user {
	const char *local;
	const char *domain;
	/* Indexed by enum scram_hash. */
	struct scram_creds creds[2];
};

enum roster_sub { ROSTER_SUB_NONE, ROSTER_SUB_TO, ROSTER_SUB_FROM, ROSTER_SUB_BOTH };

struct roster_item {
	const char *jid;     /* contact's prepared bare JID */
	const char *name;    /* NULL if none */
	enum roster_sub sub;
	bool ask;            /* we asked to subscribe to the contact: pending out */
	bool pending_in;     /* the contact asked to subscribe to us: pending in */
	bool hidden;         /* exists only to hold pending_in: not in roster results */
	const char **groups;
	size_t ngroups;
};

/* result: 0 success, -1 error (error is a static message for the log). */
typedef void store_done_cb(void *ctx, int result, const char *error);
/* result: 1 found, 0 no such user, -1 error. */
typedef void store_user_cb(void *ctx, int result, const struct store_user *user);
typedef void store_list_cb(void *ctx, int result, const char *const *jids,
			   size_t n);
/* version: the roster version after the operation (XEP-0237); it only
 * grows, and every change to the user's roster makes it bigger. */
typedef void store_roster_cb(void *ctx, int result,
			     const struct roster_item *items, size_t n,
			     uint64_t version);

/* Opens (creating if needed) the store in data_dir. Returns NULL with
 * *error_r set (xmalloc'd, caller frees) on failure. */
struct store *store_open_sqlite(struct event_base *base, const char *data_dir,
				char **error_r);
/* Completes every pending request (their callbacks run), then closes. */
void store_close(struct store *st);
/* Waits until every pending request has completed and run its callback. */
void store_flush(struct store *st);

void store_user_get(struct store *st, const char *local, const char *domain,
		    store_user_cb *cb, void *ctx);
/* result: 0 created, 1 already exists, -1 error. */
void store_user_create(struct store *st, const struct store_user *user,
		       store_done_cb *cb, void *ctx);
/* Replaces the credentials. result: 0 done, 1 no such user, -1 error. */
void store_user_set_creds(struct store *st, const struct store_user *user,
			  store_done_cb *cb, void *ctx);
/* Deletes the account and everything it owns (roster, and later stores).
 * result: 0 done, 1 no such user, -1 error. */
void store_user_delete(struct store *st, const char *local,
		       const char *domain, store_done_cb *cb, void *ctx);
/* Bare JIDs of all accounts, of one domain if domain != NULL, sorted. */
void store_user_list(struct store *st, const char *domain, store_list_cb *cb,
		     void *ctx);

/* The whole roster of `owner` (bare JID), hidden items included. */
void store_roster_get(struct store *st, const char *owner, store_roster_cb *cb,
		      void *ctx);
/* Inserts or replaces item->jid in owner's roster; the callback gets the
 * new version and no items. */
void store_roster_put(struct store *st, const char *owner,
		      const struct roster_item *item, store_roster_cb *cb,
		      void *ctx);
/* Removes contact from owner's roster (no error if absent); the callback
 * gets the new version. */
void store_roster_delete(struct store *st, const char *owner,
			 const char *contact, store_roster_cb *cb, void *ctx);

#endif
