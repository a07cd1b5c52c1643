/* Per-user data (store_data_*) through the public asynchronous API, on a
 * real SQLite file: ordering by last write, the newest-N trim, deletes,
 * space listing, and removal with the account. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "store/store.h"
#include "util/xalloc.h"

struct fixture {
	char dir[64];
	struct event_base *base;
	struct store *st;
};

#define MAX 16

struct res {
	bool called;
	int result;
	size_t n;
	char keys[MAX][64];
	char values[MAX][128];
	size_t lens[MAX];
};

static void wait_for(struct fixture *f, struct res *r)
{
	while (!r->called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
}

static void items_cb(void *ctx, int result,
		     const struct store_data_item *items, size_t n)
{
	struct res *r = ctx;

	r->called = true;
	r->result = result;
	r->n = n;
	assert_true(n <= MAX);
	for (size_t i = 0; i < n; i++) {
		snprintf(r->keys[i], sizeof(r->keys[i]), "%s",
			 items[i].key != NULL ? items[i].key : items[i].space);
		if (items[i].key != NULL)
			snprintf(r->values[i], sizeof(r->values[i]), "%s",
				 (const char *)items[i].value);
		r->lens[i] = items[i].len;
	}
}

static void done_cb(void *ctx, int result, const char *error)
{
	struct res *r = ctx;

	(void)error;
	r->called = true;
	r->result = result;
}

static int put(struct fixture *f, const char *owner, const char *space,
	       const char *key, const char *value, size_t max)
{
	struct res r = { 0 };

	store_data_put(f->st, owner, space, key, value, strlen(value), max,
		       done_cb, &r);
	wait_for(f, &r);
	return r.result;
}

static void list(struct fixture *f, const char *owner, const char *space,
		 size_t max, struct res *r)
{
	memset(r, 0, sizeof(*r));
	store_data_list(f->st, owner, space, max, items_cb, r);
	wait_for(f, r);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL, *data_dir;

	snprintf(f->dir, sizeof(f->dir), "/tmp/roost-test-data.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	data_dir = xasprintf("%s/db", f->dir);
	f->base = event_base_new();
	f->st = store_open_sqlite(f->base, data_dir, &error);
	assert_null(error);
	assert_non_null(f->st);
	free(data_dir);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	event_base_free(f->base);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void test_order_and_replace(void **state)
{
	struct fixture *f = *state;
	struct res r;

	assert_int_equal(put(f, "a@x", "pep/n", "1", "<one/>", 0), 0);
	assert_int_equal(put(f, "a@x", "pep/n", "2", "<two/>", 0), 0);
	assert_int_equal(put(f, "a@x", "pep/n", "3", "<three/>", 0), 0);
	/* Rewriting 1 makes it the newest. */
	assert_int_equal(put(f, "a@x", "pep/n", "1", "<uno/>", 0), 0);
	list(f, "a@x", "pep/n", 0, &r);
	assert_int_equal(r.result, 3);
	assert_string_equal(r.keys[0], "2");
	assert_string_equal(r.keys[1], "3");
	assert_string_equal(r.keys[2], "1");
	assert_string_equal(r.values[2], "<uno/>");
	assert_int_equal(r.lens[2], 6);
	/* The newest two, oldest first. */
	list(f, "a@x", "pep/n", 2, &r);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.keys[0], "3");
	assert_string_equal(r.keys[1], "1");
	/* Other owners and spaces are separate. */
	list(f, "b@x", "pep/n", 0, &r);
	assert_int_equal(r.result, 0);
	list(f, "a@x", "pep/m", 0, &r);
	assert_int_equal(r.result, 0);
}

static void test_get_and_trim(void **state)
{
	struct fixture *f = *state;
	struct res r = { 0 };

	for (int i = 0; i < 5; i++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(put(f, "a@x", "s", key, key, 3), 0);
	}
	list(f, "a@x", "s", 0, &r);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.keys[0], "k2");
	assert_string_equal(r.keys[2], "k4");

	memset(&r, 0, sizeof(r));
	store_data_get(f->st, "a@x", "s", "k3", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 1);
	assert_string_equal(r.values[0], "k3");
	memset(&r, 0, sizeof(r));
	store_data_get(f->st, "a@x", "s", "k0", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
}

static void test_delete_and_spaces(void **state)
{
	struct fixture *f = *state;
	struct res r = { 0 };

	put(f, "a@x", "pep/a", "1", "x", 0);
	put(f, "a@x", "pep/a", "2", "y", 0);
	put(f, "a@x", "pep/b%", "1", "z", 0);
	put(f, "a@x", "private", "k", "w", 0);

	store_data_spaces(f->st, "a@x", "pep/", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 2);
	assert_string_equal(r.keys[0], "pep/a");
	assert_int_equal(r.lens[0], 2);
	assert_string_equal(r.keys[1], "pep/b%");
	/* A LIKE-special character in the prefix is taken literally. */
	memset(&r, 0, sizeof(r));
	store_data_spaces(f->st, "a@x", "pep/b%", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 1);
	memset(&r, 0, sizeof(r));
	store_data_spaces(f->st, "a@x", "pep_", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);

	memset(&r, 0, sizeof(r));
	store_data_delete(f->st, "a@x", "pep/a", "1", done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	memset(&r, 0, sizeof(r));
	store_data_delete(f->st, "a@x", "pep/a", "1", done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 1);
	memset(&r, 0, sizeof(r));
	store_data_delete(f->st, "a@x", "pep/b%", NULL, done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	memset(&r, 0, sizeof(r));
	store_data_spaces(f->st, "a@x", "", items_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 2);
	assert_string_equal(r.keys[0], "pep/a");
	assert_string_equal(r.keys[1], "private");
}

static void test_removed_with_account(void **state)
{
	struct fixture *f = *state;
	struct store_user u = { .local = "a", .domain = "x" };
	struct res r = { 0 };

	store_user_create(f->st, &u, done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	put(f, "a@x", "vcard", "", "<vCard/>", 0);
	put(f, "b@x", "vcard", "", "<vCard/>", 0);
	memset(&r, 0, sizeof(r));
	store_user_delete(f->st, "a", "x", done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	list(f, "a@x", "vcard", 0, &r);
	assert_int_equal(r.result, 0);
	list(f, "b@x", "vcard", 0, &r);
	assert_int_equal(r.result, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_replace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_and_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_spaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_with_account, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
