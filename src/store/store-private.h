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

#include "store/store.h"

struct arena;
struct hashmap;
struct seal_keys;
struct seal_record;
struct seal_sealer;
struct workq;

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
	/* "local@domain" -> struct seal_anchor: each user's last committed
	 * or verified row state, so that rolling a store back to an earlier
	 * genuine state is caught while the process runs (DESIGN §5). */
	struct hashmap *anchors;
};

/* Runs work(arg) on the store's worker, then done(arg) on the loop, in
 * order with every other request (for request kinds that live outside
 * store.c). */
void store_submit(struct store *st, void (*work)(void *arg),
		  void (*done)(void *arg), void *arg);

/* Frees the sealing state (at close, after the worker stopped). */
void store_offline_cleanup(struct store *st);

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
};

extern const struct store_backend store_backend_sqlite;

#endif
