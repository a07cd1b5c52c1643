/* WAL checkpoints on their own thread.
 *
 * A checkpoint copies the pages the log holds into the database file and
 * syncs it. Run by the writer, as SQLite's automatic checkpoint does, it
 * was a fifth of the store thread's time under a heavy archive load, and
 * the thread's fdatasync waits on top: the writer stopped writing while
 * it ran. Here a thread with its own connection runs PASSIVE checkpoints
 * (which never block the writer) whenever the log has grown by
 * CKPT_EVERY frames since its last one.
 *
 * The log file is only reused from its start when the writer begins a
 * transaction at a moment when every frame in it has been copied; with a
 * writer that never pauses, a checkpointer running beside it never gets
 * there, and the log would grow without end. So at CKPT_RESTART frames
 * the writer waits for the thread's checkpoint, copies the few frames
 * written since itself, and its next transaction starts the log over:
 * the log stays under CKPT_RESTART frames plus one transaction, as with
 * SQLite's own wal_autocheckpoint, and the writer does a small part of
 * the copying. */
#include "store/store_sqlite_checkpoint.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/xalloc.h"

/* Frames (pages) of log between the thread's checkpoints, and the size at
 * which the writer makes the log start over (128 MiB with 4 KiB pages,
 * the wal_autocheckpoint store_sqlite.c used before). */
#define CKPT_EVERY 4096
#define CKPT_RESTART 32768

struct sqlite_ckpt {
	sqlite3 *writer, *db;      /* db: the thread's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	bool requested, running, stopping;
	int done_upto;             /* log size the last checkpoint started at */
	int every, restart;        /* CKPT_EVERY, CKPT_RESTART */
	unsigned long runs;        /* checkpoints the thread ran */
};

static void *ckpt_main(void *arg)
{
	struct sqlite_ckpt *c = arg;
	int rc, nlog = 0, ncopied = 0;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->requested && !c->stopping)
			pthread_cond_wait(&c->wake, &c->lock);
		if (c->stopping)
			break;
		c->requested = false;
		c->running = true;
		pthread_mutex_unlock(&c->lock);

		rc = sqlite3_wal_checkpoint_v2(c->db, NULL,
					       SQLITE_CHECKPOINT_PASSIVE,
					       &nlog, &ncopied);
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_warn("store: sqlite: checkpoint: %s",
				 sqlite3_errmsg(c->db));

		pthread_mutex_lock(&c->lock);
		c->running = false;
		c->runs++;
		pthread_cond_broadcast(&c->idle);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* After each commit, on the writer's thread, with the log's size. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sqlite_ckpt *c = arg;

	pthread_mutex_lock(&c->lock);
	if (frames >= c->restart) {
		while (c->running || c->requested)
			pthread_cond_wait(&c->idle, &c->lock);
		pthread_mutex_unlock(&c->lock);
		/* Nobody else reads or checkpoints now: this copies every
		 * frame left, and the next transaction reuses the log. */
		if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
					      NULL, NULL) != SQLITE_OK)
			log_warn("store: sqlite: checkpoint: %s",
				 sqlite3_errmsg(db));
		pthread_mutex_lock(&c->lock);
		c->done_upto = 0;
	} else if (frames < c->done_upto) {
		c->done_upto = 0; /* the log started over */
	}
	if (frames - c->done_upto >= c->every && !c->running &&
	    !c->requested) {
		c->requested = true;
		c->done_upto = frames;
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
	return SQLITE_OK;
}

struct sqlite_ckpt *sqlite_ckpt_start(const char *path, sqlite3 *writer,
				      char **error_r)
{
	struct sqlite_ckpt *c = xcalloc(1, sizeof(*c));
	int rc;

	c->writer = writer;
	c->every = CKPT_EVERY;
	c->restart = CKPT_RESTART;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->idle, NULL);
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK ||
	    sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL", NULL, NULL,
			 NULL) != SQLITE_OK) {
		*error_r = xasprintf("%s: checkpoint connection: %s", path,
				     c->db ? sqlite3_errmsg(c->db) :
					     sqlite3_errstr(rc));
		goto fail;
	}
	/* Its own automatic checkpoint would run at its (rare) commits. */
	sqlite3_wal_autocheckpoint(c->db, 0);
	if (pthread_create(&c->thread, NULL, ckpt_main, c) != 0) {
		*error_r = xasprintf("%s: no checkpoint thread", path);
		goto fail;
	}
	sqlite3_wal_hook(writer, on_commit, c);
	return c;
fail:
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

void sqlite_ckpt_set_limits(struct sqlite_ckpt *c, int every, int restart)
{
	pthread_mutex_lock(&c->lock);
	c->every = every;
	c->restart = restart;
	pthread_mutex_unlock(&c->lock);
}

unsigned long sqlite_ckpt_runs(struct sqlite_ckpt *c)
{
	unsigned long n;

	pthread_mutex_lock(&c->lock);
	n = c->runs;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void sqlite_ckpt_stop(struct sqlite_ckpt *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	/* SQLite's own hook back, so that closing checkpoints as before. */
	sqlite3_wal_autocheckpoint(c->writer, CKPT_RESTART);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_warn("store: sqlite: checkpoint connection: close: %s",
			 sqlite3_errmsg(c->db));
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
