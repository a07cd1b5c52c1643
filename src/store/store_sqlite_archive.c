/* Partial reads of the archive on SQLite, for queries that verify only
 * the records they return (store_archive.c). Every statement walks the
 * archive_user index (local, domain, seq) over a seq range, or
 * archive_sid for a stanza-id; the counterpart and stamp filters are
 * checked on the rows in that range (they have no index: it would slow
 * every deposit down). Optional filters are written `(?x IS NULL OR ...)`
 * and open bounds are the extreme values, so that one prepared statement
 * serves every query shape. */
#include "store/store_sqlite_archive.h"

#include <stdlib.h>
#include <string.h>

#include "seal/seal.h"
#include "store/store-private.h"
#include "store/store_sqlite_row.h"
#include "util/log.h"
#include "util/xalloc.h"

enum arc_stmt { AS_SEQS, AS_SEQS_DESC, AS_COUNT, AS_RANGE, AS_SEQ_OF, AS_NSTMTS };

#define SPAN_WHERE \
	" WHERE local = ?1 AND domain = ?2 AND seq BETWEEN ?3 AND ?4" \
	" AND ct IS NOT NULL AND (?5 IS NULL OR with_jid = ?5)" \
	" AND stamp BETWEEN ?6 AND ?7"

static const char *const as_sql[AS_NSTMTS] = {
	[AS_SEQS] = "SELECT seq FROM archive" SPAN_WHERE
		" ORDER BY seq LIMIT ?8",
	[AS_SEQS_DESC] = "SELECT seq FROM archive" SPAN_WHERE
		" ORDER BY seq DESC LIMIT ?8",
	[AS_COUNT] = "SELECT count(*) FROM archive" SPAN_WHERE,
	[AS_RANGE] =
		"SELECT seq, stamp, key_id, epk, nonce, ct, ct_len, chain, tomb,"
		" with_jid, stanza_id, dir, meta"
		" FROM archive WHERE local = ?1 AND domain = ?2"
		" AND seq BETWEEN ?3 AND ?4 ORDER BY seq, rowid",
	/* "+seq": ordering by the bare column makes SQLite scan the user's
	 * rows in archive_user order instead of looking the id up in
	 * archive_sid (there is normally one row to sort). */
	[AS_SEQ_OF] =
		"SELECT seq FROM archive WHERE local = ?1 AND domain = ?2"
		" AND stanza_id = ?3 AND ct IS NOT NULL ORDER BY +seq LIMIT 1",
};

struct sqlite_arc {
	sqlite3 *db;
	sqlite3_stmt *stmts[AS_NSTMTS];
};

struct sqlite_arc *sqlite_arc_new(sqlite3 *db, char **error_r)
{
	struct sqlite_arc *a = xcalloc(1, sizeof(*a));

	a->db = db;
	for (int i = 0; i < AS_NSTMTS; i++) {
		if (sqlite3_prepare_v3(db, as_sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT,
				       &a->stmts[i], NULL) != SQLITE_OK) {
			*error_r = xasprintf("sqlite: preparing \"%s\": %s",
					     as_sql[i], sqlite3_errmsg(db));
			sqlite_arc_free(a);
			return NULL;
		}
	}
	return a;
}

void sqlite_arc_free(struct sqlite_arc *a)
{
	if (a == NULL)
		return;
	for (int i = 0; i < AS_NSTMTS; i++)
		sqlite3_finalize(a->stmts[i]);
	free(a);
}

/* Ends a statement's use; on an error logs it and returns -1. */
static int finish(struct sqlite_arc *a, enum arc_stmt id, int rc,
		  const char **error_r)
{
	sqlite3_reset(a->stmts[id]);
	sqlite3_clear_bindings(a->stmts[id]);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	log_warn("store: sqlite: %s: %s", as_sql[id], sqlite3_errmsg(a->db));
	*error_r = sqlite3_errstr(rc);
	return -1;
}

/* seqs are u64 but SQLite integers are signed: no seq is above INT64_MAX
 * (they count deposits from 1), so a bound above it means "no bound". */
static sqlite3_int64 seq_bound(uint64_t v)
{
	return v > INT64_MAX ? INT64_MAX : (sqlite3_int64)v;
}

static sqlite3_stmt *bind_user(struct sqlite_arc *a, enum arc_stmt id,
			       const char *local, const char *domain,
			       uint64_t lo, uint64_t hi)
{
	sqlite3_stmt *stmt = a->stmts[id];

	/* SQLITE_STATIC: the request's strings outlive the statement's use. */
	sqlite3_bind_text(stmt, 1, local, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, seq_bound(lo));
	sqlite3_bind_int64(stmt, 4, seq_bound(hi));
	return stmt;
}

static sqlite3_stmt *bind_span(struct sqlite_arc *a, enum arc_stmt id,
			       const char *local, const char *domain,
			       const struct store_archive_span *span)
{
	sqlite3_stmt *stmt = bind_user(a, id, local, domain, span->lo, span->hi);

	if (span->with != NULL)
		sqlite3_bind_text(stmt, 5, span->with, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 5);
	sqlite3_bind_int64(stmt, 6, span->has_start ? span->start_us : INT64_MIN);
	sqlite3_bind_int64(stmt, 7, span->has_end ? span->end_us : INT64_MAX);
	return stmt;
}

int sqlite_arc_seqs(struct sqlite_arc *a, const char *local,
		    const char *domain, const struct store_archive_span *span,
		    bool desc, size_t max, uint64_t *seqs, size_t *n_r,
		    const char **error_r)
{
	enum arc_stmt id = desc ? AS_SEQS_DESC : AS_SEQS;
	sqlite3_stmt *stmt = bind_span(a, id, local, domain, span);
	size_t n = 0;
	int rc = SQLITE_DONE;

	sqlite3_bind_int64(stmt, 8, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		seqs[n++] = (uint64_t)sqlite3_column_int64(stmt, 0);
	*n_r = n;
	return finish(a, id, rc, error_r);
}

int sqlite_arc_count(struct sqlite_arc *a, const char *local,
		     const char *domain, const struct store_archive_span *span,
		     uint64_t *n_r, const char **error_r)
{
	sqlite3_stmt *stmt = bind_span(a, AS_COUNT, local, domain, span);
	int rc = sqlite3_step(stmt);

	*n_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
	return finish(a, AS_COUNT, rc, error_r);
}

int sqlite_arc_range(struct sqlite_arc *a, const char *local,
		     const char *domain, uint64_t lo, uint64_t hi,
		     struct store_archive_row **rows_r, size_t *n_r,
		     const char **error_r)
{
	sqlite3_stmt *stmt = bind_user(a, AS_RANGE, local, domain, lo, hi);
	struct store_archive_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		rows = xgrow(rows, &cap, n + 1, sizeof(*rows));
		sqlite_archive_row_read(stmt, &rows[n++]);
	}
	if (finish(a, AS_RANGE, rc, error_r) < 0) {
		store_archive_rows_free(rows, n);
		return -1;
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

int sqlite_arc_seq_of(struct sqlite_arc *a, const char *local,
		      const char *domain, const char *stanza_id,
		      uint64_t *seq_r, const char **error_r)
{
	sqlite3_stmt *stmt = a->stmts[AS_SEQ_OF];
	int rc;

	sqlite3_bind_text(stmt, 1, local, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, domain, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, stanza_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	*seq_r = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(stmt, 0) : 0;
	if (finish(a, AS_SEQ_OF, rc, error_r) < 0)
		return -1;
	return rc == SQLITE_ROW ? 1 : 0;
}
