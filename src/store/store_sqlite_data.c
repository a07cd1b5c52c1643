/* Per-user data on SQLite: one table, user_data (owner, space, key) ->
 * (value, stamp, ord), where ord is a per-space counter bumped on every
 * write so that "oldest write first" and "keep the newest N" are index
 * scans. */
#include "store/store_sqlite_data.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/arena.h"
#include "util/log.h"
#include "util/xalloc.h"

enum data_stmt {
	DS_BEGIN,
	DS_COMMIT,
	DS_ROLLBACK,
	DS_GET,
	DS_LIST,
	DS_LIST_NEWEST,
	DS_NEXT_ORD,
	DS_PUT,
	DS_TRIM,
	DS_DELETE_KEY,
	DS_DELETE_SPACE,
	DS_SPACES,
	DS_DELETE_OWNER,
	DS_SCAN,
	DS_COUNT
};

static const char *const ds_sql[DS_COUNT] = {
	[DS_BEGIN] = "BEGIN IMMEDIATE",
	[DS_COMMIT] = "COMMIT",
	[DS_ROLLBACK] = "ROLLBACK",
	[DS_GET] =
		"SELECT space, key, value, stamp FROM user_data"
		" WHERE owner = ?1 AND space = ?2 AND key = ?3",
	[DS_LIST] =
		"SELECT space, key, value, stamp FROM user_data"
		" WHERE owner = ?1 AND space = ?2 ORDER BY ord",
	/* The newest ?3, still returned oldest first. */
	[DS_LIST_NEWEST] =
		"SELECT space, key, value, stamp FROM ("
		" SELECT space, key, value, stamp, ord FROM user_data"
		" WHERE owner = ?1 AND space = ?2 ORDER BY ord DESC LIMIT ?3)"
		" ORDER BY ord",
	[DS_NEXT_ORD] =
		"SELECT COALESCE(MAX(ord), 0) + 1 FROM user_data"
		" WHERE owner = ?1 AND space = ?2",
	[DS_PUT] =
		"INSERT INTO user_data (owner, space, key, value, stamp, ord)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (owner, space, key) DO UPDATE SET"
		" value = excluded.value, stamp = excluded.stamp,"
		" ord = excluded.ord",
	/* Everything older than the ?3 newest. */
	[DS_TRIM] =
		"DELETE FROM user_data WHERE owner = ?1 AND space = ?2"
		" AND ord <= (SELECT ord FROM user_data"
		"  WHERE owner = ?1 AND space = ?2"
		"  ORDER BY ord DESC LIMIT 1 OFFSET ?3)",
	[DS_DELETE_KEY] =
		"DELETE FROM user_data WHERE owner = ?1 AND space = ?2"
		" AND key = ?3",
	[DS_DELETE_SPACE] =
		"DELETE FROM user_data WHERE owner = ?1 AND space = ?2",
	/* substr() rather than LIKE: a prefix may hold % or _. */
	[DS_SPACES] =
		"SELECT space, COUNT(*), MAX(stamp) FROM user_data"
		" WHERE owner = ?1 AND substr(space, 1, length(?2)) = ?2"
		" GROUP BY space ORDER BY space",
	[DS_DELETE_OWNER] = "DELETE FROM user_data WHERE owner = ?1",
	/* The owner comes last: collect() reads columns 0-3 alike. */
	[DS_SCAN] =
		"SELECT space, key, value, stamp, owner FROM user_data"
		" WHERE space = ?1 ORDER BY owner, ord",
};

struct sqlite_data {
	sqlite3 *db;
	sqlite3_stmt *stmts[DS_COUNT];
};

struct sqlite_data *sqlite_data_new(sqlite3 *db, char **error_r)
{
	struct sqlite_data *d = xcalloc(1, sizeof(*d));

	d->db = db;
	for (int i = 0; i < DS_COUNT; i++) {
		if (sqlite3_prepare_v3(db, ds_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT,
				       &d->stmts[i], NULL) != SQLITE_OK) {
			*error_r = xasprintf("sqlite: preparing \"%s\": %s",
					     ds_sql[i], sqlite3_errmsg(db));
			sqlite_data_free(d);
			return NULL;
		}
	}
	return d;
}

void sqlite_data_free(struct sqlite_data *d)
{
	if (d == NULL)
		return;
	for (int i = 0; i < DS_COUNT; i++)
		sqlite3_finalize(d->stmts[i]);
	free(d);
}

static int data_error(struct sqlite_data *d, int rc, enum data_stmt id,
		      const char **error_r)
{
	log_warn("store: sqlite: %s: %s", ds_sql[id], sqlite3_errmsg(d->db));
	*error_r = sqlite3_errstr(rc);
	return -1;
}

/* Binds the statement's text parameters in order (NULLs end the list
 * early only for statements that take fewer). */
static sqlite3_stmt *bind3(struct sqlite_data *d, enum data_stmt id,
			   const char *a, const char *b, const char *c)
{
	sqlite3_stmt *stmt = d->stmts[id];

	/* SQLITE_STATIC: the job's copies outlive the statement's use. */
	if (a != NULL)
		sqlite3_bind_text(stmt, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(stmt, 2, b, -1, SQLITE_STATIC);
	if (c != NULL)
		sqlite3_bind_text(stmt, 3, c, -1, SQLITE_STATIC);
	return stmt;
}

static int exec_done(struct sqlite_data *d, enum data_stmt id,
		     const char **error_r)
{
	sqlite3_stmt *stmt = d->stmts[id];
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE)
		return data_error(d, rc, id, error_r);
	return 0;
}

static const char *column_text(sqlite3_stmt *stmt, int col,
			       struct arena *pool)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return t == NULL ? NULL : arena_strdup(pool, (const char *)t);
}

/* Steps a SELECT of (space, key|count, value|stamp...) rows into items. */
static int collect(struct sqlite_data *d, enum data_stmt id, bool spaces,
		   struct arena *pool, struct store_data_item **items_r,
		   size_t *n_r, const char **error_r)
{
	sqlite3_stmt *stmt = d->stmts[id];
	struct store_data_item *items = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct store_data_item *it;

		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			items = xrealloc(items, cap * sizeof(*items));
		}
		it = &items[n++];
		memset(it, 0, sizeof(*it));
		it->space = column_text(stmt, 0, pool);
		if (spaces) {
			it->len = (size_t)sqlite3_column_int64(stmt, 1);
			it->stamp_us = sqlite3_column_int64(stmt, 2);
			continue;
		}
		it->key = column_text(stmt, 1, pool);
		it->len = (size_t)sqlite3_column_bytes(stmt, 2);
		char *v = arena_alloc(pool, it->len + 1);
		if (it->len > 0)
			memcpy(v, sqlite3_column_blob(stmt, 2), it->len);
		v[it->len] = '\0';
		it->value = v;
		it->stamp_us = sqlite3_column_int64(stmt, 3);
		if (id == DS_SCAN)
			it->owner = column_text(stmt, 4, pool);
	}
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE) {
		free(items);
		return data_error(d, rc, id, error_r);
	}
	/* The results live in the pool; the array too. */
	*items_r = NULL;
	if (n > 0) {
		*items_r = arena_alloc(pool, n * sizeof(*items));
		memcpy(*items_r, items, n * sizeof(*items));
	}
	free(items);
	*n_r = n;
	return (int)n;
}

int sqlite_data_get(struct sqlite_data *d, const char *owner,
		    const char *space, const char *key, struct arena *pool,
		    struct store_data_item **items_r, size_t *n_r,
		    const char **error_r)
{
	bind3(d, DS_GET, owner, space, key);
	return collect(d, DS_GET, false, pool, items_r, n_r, error_r);
}

int sqlite_data_list(struct sqlite_data *d, const char *owner,
		     const char *space, size_t max, struct arena *pool,
		     struct store_data_item **items_r, size_t *n_r,
		     const char **error_r)
{
	enum data_stmt id = max > 0 ? DS_LIST_NEWEST : DS_LIST;
	sqlite3_stmt *stmt = bind3(d, id, owner, space, NULL);

	if (max > 0)
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)max);
	return collect(d, id, false, pool, items_r, n_r, error_r);
}

static int next_ord(struct sqlite_data *d, const char *owner,
		    const char *space, sqlite3_int64 *ord_r,
		    const char **error_r)
{
	sqlite3_stmt *stmt = bind3(d, DS_NEXT_ORD, owner, space, NULL);
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		*ord_r = sqlite3_column_int64(stmt, 0);
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_ROW)
		return data_error(d, rc, DS_NEXT_ORD, error_r);
	return 0;
}

int sqlite_data_put(struct sqlite_data *d, const char *owner,
		    const char *space, const char *key, const void *value,
		    size_t len, int64_t stamp_us, size_t max_items,
		    const char **error_r)
{
	sqlite3_int64 ord;
	sqlite3_stmt *stmt;

	if (exec_done(d, DS_BEGIN, error_r) < 0)
		return -1;
	if (next_ord(d, owner, space, &ord, error_r) < 0)
		goto rollback;
	stmt = bind3(d, DS_PUT, owner, space, key);
	sqlite3_bind_blob(stmt, 4, len > 0 ? value : "", (int)len,
			  SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, stamp_us);
	sqlite3_bind_int64(stmt, 6, ord);
	if (exec_done(d, DS_PUT, error_r) < 0)
		goto rollback;
	if (max_items > 0) {
		stmt = bind3(d, DS_TRIM, owner, space, NULL);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)max_items);
		if (exec_done(d, DS_TRIM, error_r) < 0)
			goto rollback;
	}
	if (exec_done(d, DS_COMMIT, error_r) < 0)
		goto rollback;
	return 0;
rollback:
	if (!sqlite3_get_autocommit(d->db)) {
		const char *ignored;
		(void)exec_done(d, DS_ROLLBACK, &ignored);
	}
	return -1;
}

int sqlite_data_delete(struct sqlite_data *d, const char *owner,
		       const char *space, const char *key,
		       const char **error_r)
{
	enum data_stmt id = key != NULL ? DS_DELETE_KEY : DS_DELETE_SPACE;

	bind3(d, id, owner, space, key);
	if (exec_done(d, id, error_r) < 0)
		return -1;
	return sqlite3_changes(d->db) > 0 ? 0 : 1;
}

int sqlite_data_spaces(struct sqlite_data *d, const char *owner,
		       const char *prefix, struct arena *pool,
		       struct store_data_item **items_r, size_t *n_r,
		       const char **error_r)
{
	bind3(d, DS_SPACES, owner, prefix != NULL ? prefix : "", NULL);
	return collect(d, DS_SPACES, true, pool, items_r, n_r, error_r);
}

int sqlite_data_delete_owner(struct sqlite_data *d, const char *owner,
			     const char **error_r)
{
	bind3(d, DS_DELETE_OWNER, owner, NULL, NULL);
	return exec_done(d, DS_DELETE_OWNER, error_r);
}

int sqlite_data_scan(struct sqlite_data *d, const char *space,
		     struct arena *pool, struct store_data_item **items_r,
		     size_t *n_r, const char **error_r)
{
	bind3(d, DS_SCAN, space, NULL, NULL);
	return collect(d, DS_SCAN, false, pool, items_r, n_r, error_r);
}
