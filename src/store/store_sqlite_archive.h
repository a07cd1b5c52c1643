/* The SQLite backend's partial reads of the archive (store-private.h:
 * archive_seqs, archive_count, archive_range, archive_seq_of): its own
 * prepared statements on the backend's connection, as
 * store_sqlite_data.c. They run in the caller's transaction. */
#ifndef ROOST_STORE_STORE_SQLITE_ARCHIVE_H
#define ROOST_STORE_STORE_SQLITE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

struct sqlite_arc;
struct store_archive_row;
struct store_archive_span;

/* Prepares the statements (the archive table must exist). NULL with
 * *error_r xmalloc'd on failure. */
struct sqlite_arc *sqlite_arc_new(sqlite3 *db, char **error_r);
void sqlite_arc_free(struct sqlite_arc *a);

/* As the backend operations of the same names in store-private.h. */
int sqlite_arc_seqs(struct sqlite_arc *a, const char *local,
		    const char *domain, const struct store_archive_span *span,
		    bool desc, size_t max, uint64_t *seqs, size_t *n_r,
		    const char **error_r);
int sqlite_arc_count(struct sqlite_arc *a, const char *local,
		     const char *domain, const struct store_archive_span *span,
		     uint64_t *n_r, const char **error_r);
int sqlite_arc_range(struct sqlite_arc *a, const char *local,
		     const char *domain, uint64_t lo, uint64_t hi,
		     struct store_archive_row **rows_r, size_t *n_r,
		     const char **error_r);
int sqlite_arc_seq_of(struct sqlite_arc *a, const char *local,
		      const char *domain, const char *stanza_id,
		      uint64_t *seq_r, const char **error_r);

#endif
