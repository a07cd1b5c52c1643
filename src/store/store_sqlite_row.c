/* Sealed records read from SQLite result rows (store_sqlite_row.h). */
#include "store/store_sqlite_row.h"

#include <string.h>

#include "seal/seal.h"
#include "store/store-private.h"
#include "util/xalloc.h"

/* A fixed-size column that is not exactly `len` bytes (a hostile edit)
 * reads as zeros: the walk then condemns the record instead of the
 * process trusting a short buffer. */
void sqlite_column_fixed(sqlite3_stmt *stmt, int col, unsigned char *out,
			 size_t len)
{
	memset(out, 0, len);
	if (sqlite3_column_type(stmt, col) == SQLITE_BLOB &&
	    (size_t)sqlite3_column_bytes(stmt, col) == len)
		memcpy(out, sqlite3_column_blob(stmt, col), len);
}

static char *column_strdup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return xstrdup(t != NULL ? (const char *)t : "");
}

void sqlite_record_read(sqlite3_stmt *stmt, struct seal_record *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = (uint64_t)sqlite3_column_int64(stmt, 0);
	r->stamp = sqlite3_column_int64(stmt, 1);
	r->key_id = (uint32_t)sqlite3_column_int64(stmt, 2);
	sqlite_column_fixed(stmt, 3, r->epk, sizeof(r->epk));
	sqlite_column_fixed(stmt, 4, r->nonce, sizeof(r->nonce));
	if (sqlite3_column_type(stmt, 5) == SQLITE_NULL) {
		/* Wiped: ct_len still says how long the message was. */
		r->wiped = true;
		r->ct_len = (size_t)sqlite3_column_int64(stmt, 6);
	} else {
		int len = sqlite3_column_bytes(stmt, 5);
		r->ct = xmalloc((size_t)len + 1);
		if (len > 0)
			memcpy(r->ct, sqlite3_column_blob(stmt, 5), (size_t)len);
		r->ct_len = (size_t)len;
	}
	sqlite_column_fixed(stmt, 7, r->chain, sizeof(r->chain));
	sqlite_column_fixed(stmt, 8, r->tomb, sizeof(r->tomb));
}

void sqlite_archive_row_read(sqlite3_stmt *stmt, struct store_archive_row *row)
{
	memset(row, 0, sizeof(*row));
	sqlite_record_read(stmt, &row->rec);
	row->with = column_strdup(stmt, 9);
	row->stanza_id = column_strdup(stmt, 10);
	row->outgoing = sqlite3_column_int64(stmt, 11) != 0;
	sqlite_column_fixed(stmt, 12, row->meta, sizeof(row->meta));
}
