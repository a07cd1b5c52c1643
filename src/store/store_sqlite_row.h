/* Sealed records read from SQLite result rows, for the SQLite backend's
 * files (store_sqlite.c lists the offline store and the archive,
 * store_sqlite_archive.c reads archive ranges). The columns come in the
 * tables' order: seq, stamp, key_id, epk, nonce, ct, ct_len, chain,
 * tomb, and for the archive then with_jid, stanza_id, dir, meta. */
#ifndef ROOST_STORE_STORE_SQLITE_ROW_H
#define ROOST_STORE_STORE_SQLITE_ROW_H

#include <stddef.h>

#include <sqlite3.h>

struct seal_record;
struct store_archive_row;

/* Copies a blob column of exactly `len` bytes into out; any other value
 * (NULL, another type, a hostile length) reads as zeros. */
void sqlite_column_fixed(sqlite3_stmt *stmt, int col, unsigned char *out,
			 size_t len);

/* Fills r (cleared first) from columns 0 to 8; r->ct is xmalloc'd, or
 * NULL with r->wiped set when the ciphertext was wiped. */
void sqlite_record_read(sqlite3_stmt *stmt, struct seal_record *r);

/* Fills row (cleared first) from columns 0 to 12; its strings are
 * xmalloc'd (store_archive_rows_free frees them). */
void sqlite_archive_row_read(sqlite3_stmt *stmt, struct store_archive_row *row);

#endif
