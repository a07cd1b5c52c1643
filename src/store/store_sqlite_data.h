/* The SQLite backend's per-user data (store.h "per-user data"): its own
 * prepared statements on the backend's connection, so the generic store
 * grows without touching the account, roster and sealed-store code. */
#ifndef ROOST_STORE_STORE_SQLITE_DATA_H
#define ROOST_STORE_STORE_SQLITE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct arena;
struct sqlite_data;
struct store_data_item;

/* Prepares the statements (the user_data table must exist). NULL with
 * *error_r xmalloc'd on failure. */
struct sqlite_data *sqlite_data_new(sqlite3 *db, char **error_r);
void sqlite_data_free(struct sqlite_data *d);

/* As store-private.h's data_* operations. get/list/put/delete/spaces run
 * in their own transaction when none is open (put: one write
 * transaction for the write and the trim). */
int sqlite_data_get(struct sqlite_data *d, const char *owner,
		    const char *space, const char *key, struct arena *pool,
		    struct store_data_item **items_r, size_t *n_r,
		    const char **error_r);
int sqlite_data_list(struct sqlite_data *d, const char *owner,
		     const char *space, size_t max, struct arena *pool,
		     struct store_data_item **items_r, size_t *n_r,
		     const char **error_r);
int sqlite_data_put(struct sqlite_data *d, const char *owner,
		    const char *space, const char *key, const void *value,
		    size_t len, int64_t stamp_us, size_t max_items,
		    const char **error_r);
int sqlite_data_delete(struct sqlite_data *d, const char *owner,
		       const char *space, const char *key,
		       const char **error_r);
int sqlite_data_spaces(struct sqlite_data *d, const char *owner,
		       const char *prefix, struct arena *pool,
		       struct store_data_item **items_r, size_t *n_r,
		       const char **error_r);
int sqlite_data_scan(struct sqlite_data *d, const char *space,
		     struct arena *pool, struct store_data_item **items_r,
		     size_t *n_r, const char **error_r);
/* Every item of owner, inside the caller's transaction (account
 * removal). */
int sqlite_data_delete_owner(struct sqlite_data *d, const char *owner,
			     const char **error_r);

#endif
