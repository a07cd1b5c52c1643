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
/* Waits until no request is queued or running, WITHOUT running any
 * callback (they run at the loop's next turn): back-pressure for a
 * producer that outruns the store, safe to call from inside any handler.
 * It blocks the loop for as long as the queued work takes. */
void store_wait_idle(struct store *st);

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

/* ---- account life cycle (store_account.c) ----
 *
 * Password change and account removal, which must see the keyring row
 * and the in-memory state of the sealed stores as one. */

/* What a rewrap function is handed. */
enum store_keyring_state {
	STORE_KEYRING_NONE,  /* the user has no keyring row */
	STORE_KEYRING_OK,    /* decoded, MAC checked, and its chains are the
			      * ones this process last committed (if any) */
	STORE_KEYRING_BAD,   /* corrupt, failing its MAC, or rolled back
			      * under this process (logged) */
};
/* Runs on the store's worker inside the transaction, with the current
 * row in *kr (only meaningful when state is OK). Sets *kr to the row to
 * write and returns 0, or returns -1 to change nothing. */
typedef int store_rewrap_fn(void *arg, enum store_keyring_state state,
			    struct seal_keyring *kr);

/* Replaces the credentials (user->keyring is ignored) and rewrites the
 * keyring row through `rewrap`, in ONE transaction that reads the row:
 * its chains move with every deposit and delivery, so a row read before
 * and written back later would put them back, which the sealed stores
 * rightly take for a rollback (DESIGN §5). `arg` must stay valid until
 * the callback. result: 0 done, 1 no such user, 2 rewrap refused
 * (nothing changed), -1 error. */
void store_user_set_password(struct store *st, const struct store_user *user,
			     store_rewrap_fn *rewrap, void *arg,
			     store_done_cb *cb, void *ctx);

/* Deletes the account and everything it owns, as store_user_delete, but
 * whether or not the users row is still there, so that a second call
 * sweeps up what requests queued in between wrote for it. Then forgets
 * what this process remembers of the user's sealed stores (chain
 * anchors, the sealer's last seqs), so that an account made again under
 * the same name starts afresh. result: 0 the account was there, 1 it
 * was not (its rows are gone all the same), -1 error. */
void store_user_purge(struct store *st, const char *local,
		      const char *domain, store_done_cb *cb, void *ctx);

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

/* One message for the offline store of local@domain. */
struct store_offline_item {
	const char *local, *domain;
	const void *stanza;     /* serialized message, sealed whole */
	size_t len;
	int64_t stamp_us;
	uint64_t max_count, max_bytes;  /* the recipient's quotas, 0 = none */
};
/* Deposits a batch of messages, in order, in ONE transaction (a commit
 * per message costs more than sealing and inserting it). A recipient's
 * messages take consecutive seqs in the order given, each chained to the
 * one before, and each quota is checked against the store as the items
 * before it in the batch left it. results[i], seqs[i] for items[i]: the
 * result as store_deposit_cb's, the seq when it is 0. An unusable
 * recipient (keyring row failing its MAC, a store rolled back under this
 * process, sealing refused; logged) fails with -1 for its own items
 * only; a database error makes every item -1 with nothing stored. The
 * arrays are valid during the callback. */
typedef void store_offline_batch_cb(void *ctx, const int *results,
				    const uint64_t *seqs, size_t n);
void store_offline_deposit_batch(struct store *st,
				 const struct store_offline_item *items,
				 size_t n, store_offline_batch_cb *cb,
				 void *ctx);

/* What a load found after the verification walk. */
struct store_offline {
	/* Live records the walk called genuine, oldest first; only these
	 * may be opened and delivered. Their ct points into the result. */
	const struct seal_record *genuine;
	size_t ngenuine;
	/* Records withheld: failed the walk (changed, inserted, duplicated,
	 * out of place), or authentic but in a store whose row is suspect. */
	size_t nwithheld;
	/* All findings of the walk, and how many sequence numbers have no
	 * record at all (deleted). */
	size_t nfindings;
	size_t nmissing;
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

/* ---- the sealed message archive (XEP-0313; DESIGN §5) ----
 *
 * The same construction as the offline store, on the keyring's archive
 * chain (SEAL_STORE_ARCHIVE): every record is the whole stanza sealed to
 * the user's pk. Beside each record, in the clear because filtering needs
 * them (DESIGN allows it), sit the counterpart's bare JID, the stanza-id
 * (XEP-0359) and the direction, under a MAC bound to the record
 * (seal_aux_mac "archive-meta"): a record whose clear metadata was edited
 * is withheld like a changed record.
 *
 * Verification cost: a query walks the user's whole archive (reading
 * every row, two HMACs per record) the first time after start, at most
 * every few minutes after, and whenever anything is amiss; otherwise it
 * reads and checks only the records it returns, each against the row
 * before it, which gives the same verdict for them (store_archive.c,
 * seal_verify_link). So paging costs O(page), not O(archive), per page.
 * Findings about records no page returns wait for the next walk. */

/* Archive preferences (XEP-0441, urn:xmpp:mam:2 <prefs/>). */
enum store_archive_mode {
	STORE_ARCHIVE_ROSTER,   /* only contacts in the user's roster */
	STORE_ARCHIVE_ALWAYS,
	STORE_ARCHIVE_NEVER,
};

struct store_archive_prefs {
	enum store_archive_mode mode;  /* the user's default */
	const char *const *always;     /* bare JIDs always archived */
	size_t nalways;
	const char *const *never;      /* bare JIDs never archived */
	size_t nnever;
};

/* One message to archive, in the archive of local@domain. */
struct store_archive_item {
	const char *local, *domain;  /* the archive's owner */
	const char *with;       /* counterpart's bare JID */
	const char *stanza_id;  /* XEP-0359 id, unique in this archive */
	bool outgoing;          /* sent by the archive's owner */
	/* stanza_id was made for this message just now, so no record can
	 * carry it yet: the duplicate check (an index lookup, a tenth of a
	 * deposit) is skipped. False for a message that may have been
	 * archived before (rerouted, or anything not known to be new). */
	bool new_id;
	int64_t stamp_us;
	const void *stanza;     /* serialized message, sealed whole */
	size_t len;
};

/* Deposits a batch of messages, in order, in ONE transaction (a commit
 * per message would cost more than everything else together: SQLite
 * writes whole pages to its log). Each goes into its owner's archive if
 * the owner's preferences (or, when the owner has none, `dflt`) say so;
 * the roster mode looks the counterpart up in the stored roster, which
 * is written through in order, so the decision sees every roster change
 * requested before the batch. The owner's own bare JID counts as in the
 * roster. results[i], for items[i]: 0 stored, 1 not archived by
 * preference, 2 no such user or no keyring, 3 a record with this
 * stanza_id is already there (the server never stores one message twice
 * in one archive), -1 error: a keyring row that fails its MAC or a
 * rolled-back archive (that owner's items only; logged), or a database
 * error (then every item is -1 and nothing was stored). `results` is
 * valid during the callback. */
typedef void store_archive_batch_cb(void *ctx, const int *results, size_t n);
void store_archive_deposit(struct store *st,
			   const struct store_archive_item *items, size_t n,
			   enum store_archive_mode dflt,
			   store_archive_batch_cb *cb, void *ctx);

/* The same, for a caller that collects items one at a time (mod_mam):
 * each item's strings are copied once, into the batch, and its stanza is
 * taken over, so nothing is copied again at submission. add copies the
 * item's strings and takes `stanza` (xmalloc'd, it->len bytes; freed
 * with xfree_secret by the store); it->stanza is ignored. submit hands
 * the batch to the store (as store_archive_deposit) and frees it
 * afterwards; discard frees a batch never submitted. */
struct store_archive_batch;
struct store_archive_batch *store_archive_batch_new(void);
void store_archive_batch_add(struct store_archive_batch *b,
			     const struct store_archive_item *it,
			     void *stanza);
size_t store_archive_batch_count(const struct store_archive_batch *b);
void store_archive_batch_submit(struct store *st,
				struct store_archive_batch *b,
				enum store_archive_mode dflt,
				store_archive_batch_cb *cb, void *ctx);
void store_archive_batch_discard(struct store_archive_batch *b);

/* A query (XEP-0313 form fields and XEP-0059 set). NULL strings and
 * absent bounds mean "no filter". Ids are stanza-ids. */
struct store_archive_query {
	const char *with;          /* bare JID: matched against the stored
				    * counterpart (a full JID's resource is
				    * the caller's to check after opening) */
	bool has_start, has_end;
	int64_t start_us, end_us;  /* inclusive */
	const char *after_id;      /* form: only records after this one */
	const char *before_id;     /* form: only records before this one */
	const char *const *ids;    /* form 'ids': only these */
	size_t nids;
	size_t max;                /* page size (the caller caps it) */
	const char *rsm_after;     /* RSM <after/> */
	const char *rsm_before;    /* RSM <before/>: "" = the last page */
	bool has_index;            /* RSM <index/> */
	size_t index;
};

/* One result; rec opens with seal_record_open(u, jid, SEAL_STORE_ARCHIVE,
 * rec, ...). Only records the walk called genuine, whose metadata MAC
 * holds, are ever returned. */
struct store_archive_msg {
	const struct seal_record *rec;
	const char *stanza_id;
	const char *with;
	bool outgoing;
};

struct store_archive_page {
	const struct store_archive_msg *msgs;  /* the page, oldest first */
	size_t n;
	/* Records matching the filters: the genuine ones after a walk;
	 * otherwise by the clear metadata (XEP-0059 lets it be
	 * approximate), which still counts a record changed since the last
	 * walk. */
	size_t count;
	size_t first_index;  /* position of msgs[0] among them */
	/* The page reaches the end of the result set in the direction of
	 * paging (the start, when paging back with RSM <before/>). */
	bool complete;
	/* The whole archive's oldest and newest genuine record (XEP-0313
	 * metadata), NULL ids when it has none. */
	const char *first_id, *last_id;
	int64_t first_stamp, last_stamp;
	/* Records withheld (failed the walk or their metadata MAC, or in a
	 * store whose row is suspect), in the whole archive, with the
	 * stamps of the oldest and newest; and the walk's findings. A query
	 * that checked only its page found none (else it walks), and the
	 * last walk found none (else every query walks). */
	size_t nwithheld;
	int64_t withheld_first, withheld_last;
	size_t nfindings;
};

/* result: 0 done, 2 no such user or no keyring, 3 an id named in
 * after_id, before_id, ids, rsm_after or rsm_before is not in the archive
 * (XEP-0313: item-not-found), -1 error. */
typedef void store_archive_cb(void *ctx, int result,
			      const struct store_archive_page *page);
void store_archive_query(struct store *st, const char *local,
			 const char *domain,
			 const struct store_archive_query *q,
			 store_archive_cb *cb, void *ctx);

/* Retention: wipes the oldest genuine records stamped before cutoff_us,
 * in seq order, stopping at the first record that is newer or not
 * genuine (XEP-0313: deletions take the oldest, never leave holes),
 * then compacts. result: 0 done (n = records removed), 2 no keyring, -1
 * error. */
typedef void store_count_cb(void *ctx, int result, uint64_t n);
void store_archive_expire(struct store *st, const char *local,
			  const char *domain, int64_t cutoff_us,
			  store_count_cb *cb, void *ctx);

/* The walk alone (roostctl verify), as store_offline_verify. */
void store_archive_verify(struct store *st, const char *local,
			  const char *domain, store_verify_cb *cb, void *ctx);

/* Preferences. get: result 1 found (*prefs valid during the callback),
 * 0 none stored (or a stored row that fails its MAC: logged, and the
 * caller then uses the server default), -1 error. set: 0 or -1. */
typedef void store_archive_prefs_cb(void *ctx, int result,
				    const struct store_archive_prefs *prefs);
void store_archive_prefs_get(struct store *st, const char *local,
			     const char *domain, store_archive_prefs_cb *cb,
			     void *ctx);
void store_archive_prefs_set(struct store *st, const char *local,
			     const char *domain,
			     const struct store_archive_prefs *prefs,
			     store_done_cb *cb, void *ctx);

/* ---- per-user data (store_data.c) ----
 *
 * Small documents modules keep for an account (PEP nodes and items,
 * XEP-0049 private XML, the vCard, the blocking list), in named spaces
 * ("pep/<node>", "private", ...). In a space each item has a key, a value
 * (serialized XML or any bytes) and the time of its last write; items are
 * ordered by their last write. Owners are prepared bare JIDs. Unlike the
 * offline store and the archive this data is not sealed: most of it is
 * published to contacts anyway, and the server must read it without the
 * user's password (SECURITY.md says so). store_user_delete removes it. */
struct store_data_item {
	const char *owner;     /* set in store_data_scan results only */
	const char *space;
	const char *key;       /* NULL in store_data_spaces results */
	const void *value;     /* NUL-terminated (not counted in len) */
	size_t len;            /* in store_data_spaces: the item count */
	int64_t stamp_us;      /* last write */
};
/* result: n items found (>= 0; get: 0 or 1), -1 error. */
typedef void store_data_cb(void *ctx, int result,
			   const struct store_data_item *items, size_t n);

void store_data_get(struct store *st, const char *owner, const char *space,
		    const char *key, store_data_cb *cb, void *ctx);
/* The space's items, oldest write first; with max > 0 only the newest
 * max of them. */
void store_data_list(struct store *st, const char *owner, const char *space,
		     size_t max, store_data_cb *cb, void *ctx);
/* Writes (inserts or replaces) the item, which becomes the newest; then,
 * with max_items > 0, removes the oldest items beyond max_items. result:
 * 0 done, -1 error. */
void store_data_put(struct store *st, const char *owner, const char *space,
		    const char *key, const void *value, size_t len,
		    size_t max_items, store_done_cb *cb, void *ctx);
/* Removes the item, or with key NULL every item of the space. result: 0
 * removed, 1 nothing was there, -1 error. */
void store_data_delete(struct store *st, const char *owner, const char *space,
		       const char *key, store_done_cb *cb, void *ctx);
/* The owner's spaces whose name starts with prefix ("" = all), sorted by
 * name, one item each: space set, key NULL, len = its item count,
 * stamp_us = its newest write. */
void store_data_spaces(struct store *st, const char *owner,
		       const char *prefix, store_data_cb *cb, void *ctx);
/* Every item of `space` of every owner, by owner, each owner's oldest
 * write first, with `owner` set: for a module that must hold some data
 * of all accounts in memory (the XEP-0191 blocking lists, which routing
 * consults synchronously). Reads the whole table: for start-up. */
void store_data_scan(struct store *st, const char *space, store_data_cb *cb,
		     void *ctx);

#endif
