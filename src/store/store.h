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
struct seal_keyring;
struct seal_keys;
struct seal_record;
struct store;

/* Accounts are identified by (localpart, domain), both prepared. */
struct store_user {
	const char *local;
	const char *domain;
	/* Indexed by enum scram_hash. A hash whose stored row fails its
	 * integrity MAC (DESIGN §5: k_cred) comes back with salt_len 0, so
	 * it cannot be used to log in; the store logs the event. */
	struct scram_creds creds[2];
	/* The sealed-store keyring (seal_keyring_encode form), or NULL. On
	 * create it is stored with the user; on set_creds a non-NULL keyring
	 * replaces the stored one (a NULL one keeps it). */
	const void *keyring;
	size_t keyring_len;
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

/* ---- the sealed offline store (DESIGN §5) ----
 *
 * Sealing, chain upkeep and verification run on the store's worker, with
 * the seal keys given here; the loop only opens records with the user's
 * unlocked keyring. Every change to a record and to the keyring row is one
 * transaction, so a crash never looks like tampering. */

/* Borrowed; must outlive the store. Without keys the sealed requests fail
 * with -1. Call before the first such request. */
void store_set_seal_keys(struct store *st, const struct seal_keys *keys);

/* result: 0 stored (seq set), 1 over quota (count or bytes), 2 no such
 * user or no keyring, -1 error, including a keyring row that fails its
 * MAC (never sealed to: its pk may have been swapped; logged). A quota of
 * 0 means no limit. */
typedef void store_deposit_cb(void *ctx, int result, uint64_t seq);
void store_offline_deposit(struct store *st, const char *local,
			   const char *domain, const void *stanza, size_t len,
			   int64_t stamp_us, uint64_t max_count,
			   uint64_t max_bytes, store_deposit_cb *cb, void *ctx);

/* What a load found after the verification walk. */
struct store_offline {
	/* Live records the walk called genuine, oldest first; only these
	 * may be opened and delivered. Their ct points into the result. */
	const struct seal_record *genuine;
	size_t ngenuine;
	/* Records withheld: failed the walk (changed, inserted, duplicated,
	 * out of place), or authentic but in a store whose row is suspect. */
	size_t nwithheld;
	/* Sequence numbers missing (deleted records) and other findings. */
	size_t nfindings;
	/* Stamps (µs) of the oldest and newest withheld record, 0 if none:
	 * the "when" of the user's notice. */
	int64_t withheld_first, withheld_last;
	/* Live records in the row's count. */
	uint64_t live, live_bytes;
};
/* result: 0 loaded, 2 no such user or no keyring, -1 error. */
typedef void store_offline_cb(void *ctx, int result,
			      const struct store_offline *o);
void store_offline_load(struct store *st, const char *local,
			const char *domain, store_offline_cb *cb, void *ctx);

/* Removes (wipes, DESIGN §5 "Removal") the records with these seqs that
 * the walk calls genuine, then compacts. Others are left alone. result:
 * 0 done (even if some seqs were not there), -1 error. */
void store_offline_remove(struct store *st, const char *local,
			  const char *domain, const uint64_t *seqs, size_t n,
			  store_done_cb *cb, void *ctx);

/* Removes every record, genuine or not (XEP-0013 purge, or records that
 * can never be opened after an admin password reset): the chain restarts
 * at the row's authenticated head. result: 0 done, -1 error. */
void store_offline_purge(struct store *st, const char *local,
			 const char *domain, store_done_cb *cb, void *ctx);

/* The walk alone, with the seal key (roostctl verify): no record is
 * opened or changed. result: 0 clean, 1 findings (listed), 2 no keyring,
 * -1 error. The findings are valid during the callback. */
struct seal_finding;
typedef void store_verify_cb(void *ctx, int result,
			     const struct seal_finding *findings, size_t n);
void store_offline_verify(struct store *st, const char *local,
			  const char *domain, store_verify_cb *cb, void *ctx);

#endif
