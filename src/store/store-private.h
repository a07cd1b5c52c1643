/* For store backends only (Dovecot's sql-api-private.h): the vtable a
 * backend fills and the layout of struct store. Callers use store.h.
 *
 * A backend embeds struct store as the first member of its own struct
 * (struct sqlite_store { struct store api; sqlite3 *db; ... }), so one
 * pointer serves both sides. store.c owns the `base` and `wq` fields and
 * touches them only on the loop thread; the backend's fields are touched
 * only by the store's single worker thread, except in open (before the
 * worker exists) and close (after it has stopped). The workq's mutex
 * orders those hand-overs, so backends need no locking of their own. */
#ifndef ROOST_STORE_STORE_PRIVATE_H
#define ROOST_STORE_STORE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "seal/seal.h"
#include "store/store.h"

struct arena;
struct hashmap;
struct store_archive_row;
struct store_archive_span;
struct store_prefs_row;
struct seal_keys;
struct seal_record;
struct seal_sealer;
struct workq;

/* One user's entry in the archive's query cache (store_archive.c): a
 * fixed table inside struct store, so nothing is allocated or freed. */
#define STORE_ARC_SLOTS 512
struct store_arc_slot {
	unsigned char user[32];   /* keyed hash of the JID and the keyring's pk */
	int64_t used_us;
	int64_t walked_us;        /* the last clean walk, 0 none */
	unsigned char set[32];    /* keyed hash of the last result set's filters */
	uint64_t set_base, set_head, count;
	uint64_t first_seq, last_seq, first_index, n;  /* its last page */
};

struct store {
	const struct store_backend *backend;
	struct event_base *base;
	/* One thread: requests run, and complete, in submission order. */
	struct workq *wq;

	/* The sealed stores (store_offline.c). Set on the loop before the
	 * first sealed request, then used only by the worker. */
	const struct seal_keys *seal_keys;
	struct seal_sealer *sealer;
	int64_t sealer_rotated_us;
	/* Seals a deposit batch's users in parallel (worker only). */
	struct fanout *sealers;
	/* "local@domain" -> each user's last committed or verified chain
	 * state per sealed store (store_anchor_get), so that rolling a store
	 * back to an earlier genuine state is caught while the process runs
	 * (DESIGN §5). */
	struct hashmap *anchors;
	/* The archive's query cache (store_archive.c), worker only. */
	struct store_arc_slot arc_slots[STORE_ARC_SLOTS];
};

/* Runs work(arg) on the store's worker, then done(arg) on the loop, in
 * order with every other request (for request kinds that live outside
 * store.c). */
void store_submit(struct store *st, void (*work)(void *arg),
		  void (*done)(void *arg), void *arg);

/* Frees the sealing state (at close, after the worker stopped). */
void store_offline_cleanup(struct store *st);

/* Shared by the sealed stores (store_offline.c, store_archive.c); worker
 * thread only.
 *
 * keyring_read: reads and decodes the user's keyring row. Returns 1, 0
 * (no keyring) or -1. With check_mac, a row whose MAC fails is -1 (and
 * logged): it must never be sealed to or changed.
 * keyring_write: encodes and writes it (in the caller's transaction).
 * anchor_get: the user's last committed or verified chain state of
 * `store`, or NULL if this process has none yet.
 * anchor_set: records kr's chain of `store` as that state (after a
 * commit, or after a clean walk).
 * anchor_matches: false if the row's chain of `store` is not the one this
 * process last committed: the store was rolled back under us, and sealing
 * onto it would bless the old state.
 * sealer_maybe_rotate: a new ephemeral pair every few hours.
 * log_findings: one warning per finding, naming the store. */
int store_keyring_read(struct store *st, const char *local,
		       const char *domain, const char *jid, bool check_mac,
		       struct seal_keyring *kr, const char **error_r);
int store_keyring_write(struct store *st, const char *local,
			const char *domain, const struct seal_keyring *kr,
			const char **error_r);
const struct seal_chain *store_anchor_get(struct store *st, const char *jid,
					  enum seal_store store);
void store_anchor_set(struct store *st, const char *jid,
		      enum seal_store store, const struct seal_keyring *kr);
bool store_anchor_matches(struct store *st, const char *jid,
			  enum seal_store store, const struct seal_keyring *kr);
void store_sealer_maybe_rotate(struct store *st);
void store_log_findings(const char *jid, enum seal_store store,
			const struct seal_findings *f);

/* Credential MACs (DESIGN §5, k_cred), for backends: fills macs[h] for
 * every hash with credentials and returns 0, or -1 when the store has no
 * seal keys (nothing to store then). */
int store_cred_macs(const struct store *st, const struct store_user *user,
		    unsigned char macs[2][32]);
/* Clears (salt_len = 0) every hash of *user whose MAC is missing or
 * wrong, logging it; a no-op without seal keys. */
void store_cred_verify(const struct store *st, struct store_user *user,
		       const unsigned char *const macs[2]);

/* Every operation runs synchronously on the store's worker thread and
 * returns what store.h documents for it (0/1/-1). On -1, *error_r is set
 * to a static string fit for the log; the backend logs the details itself.
 * Result strings and arrays are allocated from `pool`, which the caller
 * frees once the callback has run. */
struct store_backend {
	const char *name;

	/* Runs on the opening thread. Returns the backend's struct (whose
	 * first member is struct store; `backend` is filled in), or NULL
	 * with *error_r xmalloc'd. */
	struct store *(*open)(const char *data_dir, char **error_r);
	/* Runs once the worker has stopped; frees what open returned. */
	void (*close)(struct store *st);

	int (*user_get)(struct store *st, const char *local, const char *domain,
			struct arena *pool, struct store_user *user_r,
			const char **error_r);
	int (*user_create)(struct store *st, const struct store_user *user,
			   const char **error_r);
	int (*user_set_creds)(struct store *st, const struct store_user *user,
			      const char **error_r);
	int (*user_delete)(struct store *st, const char *local,
			   const char *domain, const char **error_r);
	int (*user_list)(struct store *st, const char *domain,
			 struct arena *pool, const char *const **jids_r,
			 size_t *n_r, const char **error_r);

	int (*roster_get)(struct store *st, const char *owner,
			  struct arena *pool, const struct roster_item **items_r,
			  size_t *n_r, uint64_t *version_r, const char **error_r);
	int (*roster_put)(struct store *st, const char *owner,
			  const struct roster_item *item, uint64_t *version_r,
			  const char **error_r);
	int (*roster_delete)(struct store *st, const char *owner,
			     const char *contact, uint64_t *version_r,
			     const char **error_r);

	/* Primitives of the sealed stores; store_offline.c builds the
	 * requests of store.h from them, inside tx_begin/tx_commit. */
	int (*tx_begin)(struct store *st, bool write, const char **error_r);
	int (*tx_commit)(struct store *st, const char **error_r);
	void (*tx_rollback)(struct store *st);
	/* 1 found (*blob_r in pool), 0 none, -1 error. */
	int (*keyring_get)(struct store *st, const char *local,
			   const char *domain, struct arena *pool,
			   const void **blob_r, size_t *len_r,
			   const char **error_r);
	int (*keyring_put)(struct store *st, const char *local,
			   const char *domain, const void *blob, size_t len,
			   const char **error_r);
	/* Every record of the user, by seq; ct is xmalloc'd (NULL once
	 * wiped): free with seal_record_clear. */
	int (*offline_list)(struct store *st, const char *local,
			    const char *domain, struct seal_record **recs_r,
			    size_t *n_r, const char **error_r);
	int (*offline_insert)(struct store *st, const char *local,
			      const char *domain, const struct seal_record *rec,
			      const char **error_r);
	/* Sets ct NULL and the tomb of the record(s) at seq. */
	int (*offline_wipe)(struct store *st, const char *local,
			    const char *domain, uint64_t seq,
			    const unsigned char tomb[32], const char **error_r);
	/* Deletes every record with seq <= upto (upto UINT64_MAX: all). */
	int (*offline_delete)(struct store *st, const char *local,
			      const char *domain, uint64_t upto,
			      const char **error_r);

	/* The archive's primitives (store_archive.c drives them), as the
	 * offline ones plus the clear metadata of each record. list: every
	 * row of the user by seq; free with store_archive_rows_free. */
	int (*archive_list)(struct store *st, const char *local,
			    const char *domain, struct store_archive_row **rows_r,
			    size_t *n_r, const char **error_r);
	int (*archive_insert)(struct store *st, const char *local,
			      const char *domain,
			      const struct store_archive_row *row,
			      const char **error_r);
	int (*archive_wipe)(struct store *st, const char *local,
			    const char *domain, uint64_t seq,
			    const unsigned char tomb[32], const char **error_r);
	int (*archive_delete)(struct store *st, const char *local,
			      const char *domain, uint64_t upto,
			      const char **error_r);
	/* 1 if a row carries this stanza_id, 0 if none, -1 error. */
	int (*archive_has_id)(struct store *st, const char *local,
			      const char *domain, const char *stanza_id,
			      const char **error_r);
	/* Reads of part of an archive, for queries that verify only what
	 * they return (store_archive.c). NULL in a backend without them:
	 * every query then walks the whole archive. seqs: up to `max` seqs
	 * of the live rows in the span, ascending (descending with desc),
	 * into `seqs`, *n_r how many. count: how many live rows the span
	 * holds. range: every row, live or wiped, with lo <= seq <= hi, by
	 * seq, as archive_list. seq_of: 1 and the lowest seq of a live row
	 * carrying stanza_id, 0 if none, -1 error. */
	int (*archive_seqs)(struct store *st, const char *local,
			    const char *domain,
			    const struct store_archive_span *span, bool desc,
			    size_t max, uint64_t *seqs, size_t *n_r,
			    const char **error_r);
	int (*archive_count)(struct store *st, const char *local,
			     const char *domain,
			     const struct store_archive_span *span,
			     uint64_t *n_r, const char **error_r);
	int (*archive_range)(struct store *st, const char *local,
			     const char *domain, uint64_t lo, uint64_t hi,
			     struct store_archive_row **rows_r, size_t *n_r,
			     const char **error_r);
	int (*archive_seq_of)(struct store *st, const char *local,
			      const char *domain, const char *stanza_id,
			      uint64_t *seq_r, const char **error_r);
	/* 1 found (strings in pool), 0 none, -1 error. */
	int (*archive_prefs_get)(struct store *st, const char *local,
				 const char *domain, struct arena *pool,
				 struct store_prefs_row *row_r,
				 const char **error_r);
	int (*archive_prefs_put)(struct store *st, const char *local,
				 const char *domain,
				 const struct store_prefs_row *row,
				 const char **error_r);
	/* 1 if contact is an item of owner's roster that is not hidden, 0
	 * if not, -1 error. */
	int (*roster_has)(struct store *st, const char *owner,
			  const char *contact, const char **error_r);

	/* Account life cycle (store_account.c drives them), in the
	 * caller's transaction. user_put_creds: replaces the credentials
	 * and their MACs (0, 1 no such user, -1). user_purge: deletes the
	 * users row and every row the account owns, whether or not the
	 * users row is there (*existed_r says whether it was). */
	int (*user_put_creds)(struct store *st, const struct store_user *user,
			      const char **error_r);
	int (*user_purge)(struct store *st, const char *local,
			  const char *domain, bool *existed_r,
			  const char **error_r);

	/* Per-user data (store_data.c): as store.h says, synchronously.
	 * Items and their strings are allocated from pool. */
	int (*data_get)(struct store *st, const char *owner, const char *space,
			const char *key, struct arena *pool,
			struct store_data_item **items_r, size_t *n_r,
			const char **error_r);
	int (*data_list)(struct store *st, const char *owner,
			 const char *space, size_t max, struct arena *pool,
			 struct store_data_item **items_r, size_t *n_r,
			 const char **error_r);
	int (*data_put)(struct store *st, const char *owner, const char *space,
			const char *key, const void *value, size_t len,
			int64_t stamp_us, size_t max_items,
			const char **error_r);
	int (*data_delete)(struct store *st, const char *owner,
			   const char *space, const char *key,
			   const char **error_r);
	int (*data_spaces)(struct store *st, const char *owner,
			   const char *prefix, struct arena *pool,
			   struct store_data_item **items_r, size_t *n_r,
			   const char **error_r);
	int (*data_scan)(struct store *st, const char *space,
			 struct arena *pool, struct store_data_item **items_r,
			 size_t *n_r, const char **error_r);
};

/* One archive row: the sealed record and its clear metadata. From
 * archive_list every pointer is xmalloc'd; for archive_insert they are
 * the caller's. meta = seal_aux_mac(jid, "archive-meta", u64 seq ||
 * chain || lp(stanza_id) || lp(with) || u64 outgoing). */
struct store_archive_row {
	struct seal_record rec;
	char *with;
	char *stanza_id;
	bool outgoing;
	unsigned char meta[32];
};
void store_archive_rows_free(struct store_archive_row *rows, size_t n);

/* Live archive rows chosen by their clear columns: seq in lo .. hi, the
 * counterpart (NULL: any) and the stamp (inclusive bounds, when set). */
struct store_archive_span {
	uint64_t lo, hi;
	const char *with;
	bool has_start, has_end;
	int64_t start_us, end_us;
};

/* The preferences row: mode "roster" | "always" | "never", the lists as
 * newline-separated bare JIDs, and seal_aux_mac(jid, "archive-prefs",
 * lp(mode) || lp(always) || lp(never)). */
struct store_prefs_row {
	const char *mode, *always, *never;
	unsigned char mac[32];
};

extern const struct store_backend store_backend_sqlite;

#endif
