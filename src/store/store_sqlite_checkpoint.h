/* WAL checkpoints beside the writer (store_sqlite.c). */
#ifndef ROOST_STORE_STORE_SQLITE_CHECKPOINT_H
#define ROOST_STORE_STORE_SQLITE_CHECKPOINT_H

#include <sqlite3.h>

struct sqlite_ckpt;

/* Takes over `writer`'s checkpoints: its automatic checkpoint is replaced
 * by a WAL hook, and a thread with its own connection to `path` copies
 * the log into the database while the writer goes on. Returns NULL (and
 * *error_r) if the connection or the thread cannot be made; the writer
 * then keeps SQLite's own checkpoints. */
struct sqlite_ckpt *sqlite_ckpt_start(const char *path, sqlite3 *writer,
				      char **error_r);
/* For tests: the log sizes (frames) that trigger the thread's checkpoint
 * and the writer's restart, and how many checkpoints the thread ran. */
void sqlite_ckpt_set_limits(struct sqlite_ckpt *c, int every, int restart);
unsigned long sqlite_ckpt_runs(struct sqlite_ckpt *c);
/* Stops the thread and closes its connection; the writer gets SQLite's
 * automatic checkpoints back. Before the writer is closed. */
void sqlite_ckpt_stop(struct sqlite_ckpt *c);

#endif
