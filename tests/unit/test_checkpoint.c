/* WAL checkpoints on their own thread (store_sqlite_checkpoint.c), on a
 * real SQLite file: the thread copies the log while the writer goes on,
 * and the log still starts over, so it stays bounded. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store_sqlite_checkpoint.h"
#include "util/xalloc.h"

#define EVERY 16
#define RESTART 128
#define PAGE 4096
#define WAL_HEADER 32
#define FRAME (PAGE + 24)

static char dir[64], path[96], wal[112];

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

static long file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static sqlite3 *open_writer(void)
{
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "/tmp/roost-test-ckpt.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	exec(db, "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;"
		 "PRAGMA synchronous = NORMAL;"
		 "CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)");
	return db;
}

/* Transactions of about one page each, 20 times the restart size. */
static void write_pages(sqlite3 *db, int n)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t (v) VALUES "
					    "(randomblob(3000))", -1, &st,
					    NULL), SQLITE_OK);
	for (int i = 0; i < n; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
}

static void cleanup(sqlite3 *db)
{
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	unlink(path);
	unlink(wal);
	{
		char shm[112];

		snprintf(shm, sizeof(shm), "%s-shm", path);
		unlink(shm);
	}
	rmdir(dir);
}

static void test_log_bounded_and_copied_beside(void **state)
{
	sqlite3 *db = open_writer();
	char *error = NULL;
	struct sqlite_ckpt *c = sqlite_ckpt_start(path, db, &error);
	sqlite3 *reader;
	sqlite3_stmt *st;

	(void)state;
	assert_non_null(c);
	sqlite_ckpt_set_limits(c, EVERY, RESTART);
	write_pages(db, 20 * RESTART);
	/* The thread ran (the writer alone would leave runs at 0) ... */
	assert_true(sqlite_ckpt_runs(c) > 0);
	/* ... and the log was reused: without the restart it would hold
	 * every page written (over 2 500 frames). */
	assert_true(file_size(wal) <= WAL_HEADER + (long)(RESTART + 8) * FRAME);
	/* Everything committed is there for another connection. */
	assert_int_equal(sqlite3_open(path, &reader), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(reader, "SELECT count(*) FROM t",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 20 * RESTART);
	sqlite3_finalize(st);
	sqlite3_close(reader);
	sqlite_ckpt_stop(c);
	cleanup(db);
}

/* Stopped, the writer has SQLite's automatic checkpoints back. */
static void test_stop_gives_back_autocheckpoint(void **state)
{
	sqlite3 *db = open_writer();
	char *error = NULL;
	struct sqlite_ckpt *c = sqlite_ckpt_start(path, db, &error);

	(void)state;
	assert_non_null(c);
	sqlite_ckpt_stop(c);
	exec(db, "PRAGMA wal_autocheckpoint = 64");
	write_pages(db, 40 * 64);
	assert_true(file_size(wal) <= WAL_HEADER + (long)(64 + 8) * FRAME);
	cleanup(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_bounded_and_copied_beside),
		cmocka_unit_test(test_stop_gives_back_autocheckpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
