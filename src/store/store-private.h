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

#include "store/store.h"

struct arena;
struct workq;

struct store {
	const struct store_backend *backend;
	struct event_base *base;
	/* One thread: requests run, and complete, in submission order. */
	struct workq *wq;
};

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
};

extern const struct store_backend store_backend_sqlite;

#endif
