/* The store through its public asynchronous API, with a real event loop and
 * a real SQLite file in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "seal/seal.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Recipients of the offline-store tests, each with a keyring. */
#define NRCPT 3

struct fixture {
	char dir[64];
	char *data_dir;
	struct event_base *base;
	struct store *st;
	/* offline tests only */
	struct seal_keys keys;
	struct seal_unlocked *u[NRCPT];
};

/* Set around every request call: a callback that sees it set was called
 * from inside the request. */
static bool in_request;

#define MAX_ITEMS 16

struct item_copy {
	char jid[64];
	char name[64];
	bool has_name;
	enum roster_sub sub;
	bool ask, pending_in, hidden;
	char groups[128]; /* comma-joined, in the order given */
};

struct res {
	bool called;
	int result;
	const char *error;
	struct store_user user;
	char local[64], domain[64];
	char jids[MAX_ITEMS][64];
	size_t n;
	struct item_copy items[MAX_ITEMS];
	uint64_t version;
	int seq; /* order in which the callback ran */
};

static int callback_seq;

static void wait_for(struct fixture *f, struct res *r)
{
	while (!r->called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
}

static void mark(struct res *r, int result)
{
	assert_false(in_request);
	assert_false(r->called);
	r->called = true;
	r->result = result;
	r->seq = callback_seq++;
}

static void done_cb(void *ctx, int result, const char *error)
{
	struct res *r = ctx;

	mark(r, result);
	r->error = error;
	if (result < 0)
		assert_non_null(error);
}

static void user_cb(void *ctx, int result, const struct store_user *user)
{
	struct res *r = ctx;

	mark(r, result);
	if (result == 1) {
		assert_non_null(user);
		r->user = *user;
		snprintf(r->local, sizeof(r->local), "%s", user->local);
		snprintf(r->domain, sizeof(r->domain), "%s", user->domain);
		r->user.local = r->local;
		r->user.domain = r->domain;
	}
}

static void list_cb(void *ctx, int result, const char *const *jids, size_t n)
{
	struct res *r = ctx;

	mark(r, result);
	r->n = n;
	for (size_t i = 0; i < n && i < MAX_ITEMS; i++)
		snprintf(r->jids[i], sizeof(r->jids[i]), "%s", jids[i]);
}

static void roster_cb(void *ctx, int result, const struct roster_item *items,
		      size_t n, uint64_t version)
{
	struct res *r = ctx;

	mark(r, result);
	assert_true(n <= MAX_ITEMS);
	r->n = n;
	r->version = version;
	for (size_t i = 0; i < n; i++) {
		struct item_copy *c = &r->items[i];
		size_t len = 0;

		snprintf(c->jid, sizeof(c->jid), "%s", items[i].jid);
		c->has_name = items[i].name != NULL;
		snprintf(c->name, sizeof(c->name), "%s",
			 items[i].name ? items[i].name : "");
		c->sub = items[i].sub;
		c->ask = items[i].ask;
		c->pending_in = items[i].pending_in;
		c->hidden = items[i].hidden;
		c->groups[0] = '\0';
		for (size_t g = 0; g < items[i].ngroups; g++)
			len += (size_t)snprintf(c->groups + len,
						sizeof(c->groups) - len, "%s%s",
						g ? "," : "", items[i].groups[g]);
	}
}

/* ---- request wrappers: each asserts the callback did not run yet ---- */

static void make_user(struct store_user *u, const char *local,
		      const char *domain, unsigned char seed)
{
	memset(u, 0, sizeof(*u));
	u->local = local;
	u->domain = domain;
	for (int h = 0; h < 2; h++) {
		struct scram_creds *c = &u->creds[h];
		size_t klen = h == SCRAM_SHA1 ? 20 : 32;

		c->salt_len = 16;
		memset(c->salt, seed + h, c->salt_len);
		c->iterations = 4096 + seed;
		memset(c->stored_key, seed + 10 + h, klen);
		memset(c->server_key, seed + 20 + h, klen);
	}
}

static void assert_creds_equal(const struct store_user *a,
			       const struct store_user *b)
{
	for (int h = 0; h < 2; h++) {
		size_t klen = h == SCRAM_SHA1 ? 20 : 32;

		assert_int_equal(a->creds[h].salt_len, b->creds[h].salt_len);
		assert_memory_equal(a->creds[h].salt, b->creds[h].salt,
				    a->creds[h].salt_len);
		assert_int_equal(a->creds[h].iterations, b->creds[h].iterations);
		assert_memory_equal(a->creds[h].stored_key,
				    b->creds[h].stored_key, klen);
		assert_memory_equal(a->creds[h].server_key,
				    b->creds[h].server_key, klen);
	}
}

static int create_user(struct fixture *f, const struct store_user *u)
{
	struct res r = { 0 };

	in_request = true;
	store_user_create(f->st, u, done_cb, &r);
	in_request = false;
	assert_false(r.called);
	wait_for(f, &r);
	return r.result;
}

static int get_user(struct fixture *f, const char *local, const char *domain,
		    struct res *r)
{
	memset(r, 0, sizeof(*r));
	in_request = true;
	store_user_get(f->st, local, domain, user_cb, r);
	in_request = false;
	assert_false(r->called);
	wait_for(f, r);
	return r->result;
}

static int delete_user(struct fixture *f, const char *local,
		       const char *domain)
{
	struct res r = { 0 };

	in_request = true;
	store_user_delete(f->st, local, domain, done_cb, &r);
	in_request = false;
	assert_false(r.called);
	wait_for(f, &r);
	return r.result;
}

static void list_users(struct fixture *f, const char *domain, struct res *r)
{
	memset(r, 0, sizeof(*r));
	in_request = true;
	store_user_list(f->st, domain, list_cb, r);
	in_request = false;
	assert_false(r->called);
	wait_for(f, r);
	assert_int_equal(r->result, 0);
}

static void roster_get(struct fixture *f, const char *owner, struct res *r)
{
	memset(r, 0, sizeof(*r));
	in_request = true;
	store_roster_get(f->st, owner, roster_cb, r);
	in_request = false;
	assert_false(r->called);
	wait_for(f, r);
	assert_int_equal(r->result, 0);
}

static uint64_t roster_put(struct fixture *f, const char *owner,
			   const struct roster_item *item)
{
	struct res r = { 0 };

	in_request = true;
	store_roster_put(f->st, owner, item, roster_cb, &r);
	in_request = false;
	assert_false(r.called);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.n, 0);
	return r.version;
}

static uint64_t roster_delete(struct fixture *f, const char *owner,
			      const char *contact)
{
	struct res r = { 0 };

	in_request = true;
	store_roster_delete(f->st, owner, contact, roster_cb, &r);
	in_request = false;
	assert_false(r.called);
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	return r.version;
}

/* ---- fixture ---- */

static void open_store(struct fixture *f)
{
	char *error = NULL;

	f->st = store_open_sqlite(f->base, f->data_dir, &error);
	if (f->st == NULL)
		fail_msg("store_open_sqlite: %s", error);
	assert_null(error);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/roost-test-store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* A directory that does not exist yet: the store creates it. */
	f->data_dir = xasprintf("%s/data/db", f->dir);
	f->base = event_base_new();
	assert_non_null(f->base);
	open_store(f);
	*state = f;
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	for (int i = 0; i < NRCPT; i++)
		seal_unlocked_free(f->u[i]);
	seal_keys_clear(&f->keys);
	event_base_free(f->base);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->data_dir);
	free(f);
	return 0;
}

/* ---- tests ---- */

static void test_user_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct store_user u, u2;
	struct res r;

	make_user(&u, "alice", "example.org", 1);
	assert_int_equal(get_user(f, "alice", "example.org", &r), 0);
	assert_int_equal(create_user(f, &u), 0);
	assert_int_equal(get_user(f, "alice", "example.org", &r), 1);
	assert_string_equal(r.user.local, "alice");
	assert_string_equal(r.user.domain, "example.org");
	assert_creds_equal(&r.user, &u);

	/* Duplicate: reported, and the first credentials stay. */
	make_user(&u2, "alice", "example.org", 2);
	assert_int_equal(create_user(f, &u2), 1);
	assert_int_equal(get_user(f, "alice", "example.org", &r), 1);
	assert_creds_equal(&r.user, &u);

	/* Same localpart on another domain is another account. */
	make_user(&u2, "alice", "example.net", 3);
	assert_int_equal(create_user(f, &u2), 0);
	assert_int_equal(get_user(f, "alice", "example.net", &r), 1);
	assert_creds_equal(&r.user, &u2);
	assert_int_equal(get_user(f, "bob", "example.org", &r), 0);

	assert_int_equal(delete_user(f, "alice", "example.org"), 0);
	assert_int_equal(get_user(f, "alice", "example.org", &r), 0);
	assert_int_equal(delete_user(f, "alice", "example.org"), 1);
	assert_int_equal(get_user(f, "alice", "example.net", &r), 1);
}

static void test_user_set_creds(void **state)
{
	struct fixture *f = *state;
	struct store_user u, u2;
	struct res r = { 0 };

	make_user(&u, "bob", "example.org", 5);
	assert_int_equal(create_user(f, &u), 0);
	make_user(&u2, "bob", "example.org", 9);
	u2.creds[SCRAM_SHA1].salt_len = 40;
	memset(u2.creds[SCRAM_SHA1].salt, 0x77, 40);
	in_request = true;
	store_user_set_creds(f->st, &u2, done_cb, &r);
	in_request = false;
	wait_for(f, &r);
	assert_int_equal(r.result, 0);
	assert_int_equal(get_user(f, "bob", "example.org", &r), 1);
	assert_creds_equal(&r.user, &u2);

	make_user(&u2, "nobody", "example.org", 9);
	memset(&r, 0, sizeof(r));
	store_user_set_creds(f->st, &u2, done_cb, &r);
	wait_for(f, &r);
	assert_int_equal(r.result, 1);
	assert_int_equal(get_user(f, "nobody", "example.org", &r), 0);
}

static void test_user_without_one_hash(void **state)
{
	struct fixture *f = *state;
	struct store_user u;
	struct res r;

	make_user(&u, "legacy", "example.org", 4);
	memset(&u.creds[SCRAM_SHA1], 0, sizeof(u.creds[SCRAM_SHA1]));
	assert_int_equal(create_user(f, &u), 0);
	assert_int_equal(get_user(f, "legacy", "example.org", &r), 1);
	assert_int_equal(r.user.creds[SCRAM_SHA1].salt_len, 0);
	assert_int_equal(r.user.creds[SCRAM_SHA1].iterations, 0);
	assert_creds_equal(&r.user, &u);
}

static void test_user_list(void **state)
{
	struct fixture *f = *state;
	static const char *const locals[] = { "zed", "a", "a.b", "mike" };
	struct store_user u;
	struct res r;

	list_users(f, NULL, &r);
	assert_int_equal(r.n, 0);
	for (size_t i = 0; i < 4; i++) {
		make_user(&u, locals[i], "b.example", (unsigned char)i);
		assert_int_equal(create_user(f, &u), 0);
	}
	make_user(&u, "carol", "a.example", 7);
	assert_int_equal(create_user(f, &u), 0);

	/* Sorted as JID strings: '.' sorts before '@'. */
	list_users(f, NULL, &r);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.jids[0], "a.b@b.example");
	assert_string_equal(r.jids[1], "a@b.example");
	assert_string_equal(r.jids[2], "carol@a.example");
	assert_string_equal(r.jids[3], "mike@b.example");
	assert_string_equal(r.jids[4], "zed@b.example");

	list_users(f, "a.example", &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.jids[0], "carol@a.example");
	list_users(f, "b.example", &r);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.jids[0], "a.b@b.example");
	assert_string_equal(r.jids[3], "zed@b.example");
	list_users(f, "nowhere.example", &r);
	assert_int_equal(r.n, 0);
}

static void test_roster_put_get(void **state)
{
	struct fixture *f = *state;
	const char *groups[] = { "Friends", "Work", "Friends" };
	struct roster_item it = { 0 };
	uint64_t v0, v1, v2, v3;
	struct res r;

	roster_get(f, "alice@example.org", &r);
	assert_int_equal(r.n, 0);
	v0 = r.version;
	assert_int_equal(v0, 0);

	it.jid = "carol@example.net";
	it.name = "Carol";
	it.sub = ROSTER_SUB_BOTH;
	it.groups = groups;
	it.ngroups = 3; /* the repeat is stored once */
	v1 = roster_put(f, "alice@example.org", &it);
	assert_true(v1 > v0);

	memset(&it, 0, sizeof(it));
	it.jid = "bob@example.org";
	it.sub = ROSTER_SUB_TO;
	it.ask = true;
	v2 = roster_put(f, "alice@example.org", &it);
	assert_true(v2 > v1);

	memset(&it, 0, sizeof(it));
	it.jid = "mallory@evil.example";
	it.sub = ROSTER_SUB_NONE;
	it.pending_in = true;
	it.hidden = true;
	v3 = roster_put(f, "alice@example.org", &it);
	assert_true(v3 > v2);

	roster_get(f, "alice@example.org", &r);
	assert_int_equal(r.version, v3);
	assert_int_equal(r.n, 3);
	/* Sorted by contact; hidden items included. */
	assert_string_equal(r.items[0].jid, "bob@example.org");
	assert_false(r.items[0].has_name);
	assert_int_equal(r.items[0].sub, ROSTER_SUB_TO);
	assert_true(r.items[0].ask);
	assert_false(r.items[0].pending_in);
	assert_false(r.items[0].hidden);
	assert_string_equal(r.items[0].groups, "");

	assert_string_equal(r.items[1].jid, "carol@example.net");
	assert_true(r.items[1].has_name);
	assert_string_equal(r.items[1].name, "Carol");
	assert_int_equal(r.items[1].sub, ROSTER_SUB_BOTH);
	assert_false(r.items[1].ask);
	assert_string_equal(r.items[1].groups, "Friends,Work");

	assert_string_equal(r.items[2].jid, "mallory@evil.example");
	assert_int_equal(r.items[2].sub, ROSTER_SUB_NONE);
	assert_true(r.items[2].pending_in);
	assert_true(r.items[2].hidden);

	/* Another owner's roster is separate. */
	roster_get(f, "bob@example.org", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.version, 0);
}

static void test_roster_replace_and_delete(void **state)
{
	struct fixture *f = *state;
	const char *g1[] = { "A", "B" }, *g2[] = { "C" };
	struct roster_item it = { 0 };
	uint64_t v1, v2, v3, v4;
	struct res r;

	it.jid = "dave@example.org";
	it.name = "Dave";
	it.groups = g1;
	it.ngroups = 2;
	v1 = roster_put(f, "alice@example.org", &it);

	/* Replacing changes every field and the whole group set. */
	it.name = NULL;
	it.sub = ROSTER_SUB_FROM;
	it.groups = g2;
	it.ngroups = 1;
	v2 = roster_put(f, "alice@example.org", &it);
	assert_true(v2 > v1);
	roster_get(f, "alice@example.org", &r);
	assert_int_equal(r.n, 1);
	assert_false(r.items[0].has_name);
	assert_int_equal(r.items[0].sub, ROSTER_SUB_FROM);
	assert_string_equal(r.items[0].groups, "C");

	v3 = roster_delete(f, "alice@example.org", "dave@example.org");
	assert_true(v3 > v2);
	roster_get(f, "alice@example.org", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.version, v3);

	/* Absent: no error, nothing changed, so the version stays. */
	v4 = roster_delete(f, "alice@example.org", "dave@example.org");
	assert_int_equal(v4, v3);

	/* Put back without groups: the old ones are gone. */
	it.groups = NULL;
	it.ngroups = 0;
	assert_true(roster_put(f, "alice@example.org", &it) > v3);
	roster_get(f, "alice@example.org", &r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.items[0].groups, "");
}

static void test_user_delete_removes_roster(void **state)
{
	struct fixture *f = *state;
	const char *g[] = { "G" };
	struct roster_item it = { 0 };
	struct store_user u;
	uint64_t v;
	struct res r;

	make_user(&u, "erin", "example.org", 3);
	assert_int_equal(create_user(f, &u), 0);
	it.jid = "frank@example.org";
	it.groups = g;
	it.ngroups = 1;
	roster_put(f, "erin@example.org", &it);
	v = roster_put(f, "erin@example.org", &it);
	/* Erin on someone else's roster stays: that is their data. */
	it.jid = "erin@example.org";
	roster_put(f, "frank@example.org", &it);

	assert_int_equal(delete_user(f, "erin", "example.org"), 0);
	roster_get(f, "erin@example.org", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.version, 0);
	roster_get(f, "frank@example.org", &r);
	assert_int_equal(r.n, 1);

	/* A re-created account never repeats a version a client of the old
	 * one may hold. */
	assert_int_equal(create_user(f, &u), 0);
	it.jid = "frank@example.org";
	assert_true(roster_put(f, "erin@example.org", &it) > v);
}

static void test_ordering(void **state)
{
	struct fixture *f = *state;
	struct roster_item it = { 0 };
	struct store_user u;
	struct res put = { 0 }, get = { 0 }, create = { 0 }, uget = { 0 },
		   del = { 0 }, uget2 = { 0 };

	/* Requests made back to back without running the loop: each read
	 * sees the writes made before it, and callbacks run in order. */
	it.jid = "grace@example.org";
	make_user(&u, "heidi", "example.org", 8);
	in_request = true;
	store_roster_put(f->st, "heidi@example.org", &it, roster_cb, &put);
	store_roster_get(f->st, "heidi@example.org", roster_cb, &get);
	store_user_create(f->st, &u, done_cb, &create);
	store_user_get(f->st, "heidi", "example.org", user_cb, &uget);
	store_user_delete(f->st, "heidi", "example.org", done_cb, &del);
	store_user_get(f->st, "heidi", "example.org", user_cb, &uget2);
	in_request = false;
	assert_false(put.called || get.called || create.called ||
		     uget.called || del.called || uget2.called);
	wait_for(f, &uget2);
	assert_true(put.called && get.called && create.called && uget.called &&
		    del.called);

	assert_true(put.seq < get.seq);
	assert_true(get.seq < create.seq);
	assert_true(create.seq < uget.seq);
	assert_true(uget.seq < del.seq);
	assert_true(del.seq < uget2.seq);
	assert_int_equal(get.n, 1);
	assert_int_equal(get.version, put.version);
	assert_int_equal(create.result, 0);
	assert_int_equal(uget.result, 1);
	assert_int_equal(del.result, 0);
	assert_int_equal(uget2.result, 0);
}

static void test_flush(void **state)
{
	struct fixture *f = *state;
	struct res r[32];
	struct store_user u;
	char local[16];

	memset(r, 0, sizeof(r));
	for (int i = 0; i < 32; i++) {
		snprintf(local, sizeof(local), "u%02d", i);
		make_user(&u, local, "example.org", (unsigned char)i);
		store_user_create(f->st, &u, done_cb, &r[i]);
	}
	/* A write nobody waits for may omit the callback. */
	make_user(&u, "quiet", "example.org", 1);
	store_user_create(f->st, &u, NULL, NULL);
	store_flush(f->st);
	for (int i = 0; i < 32; i++) {
		assert_true(r[i].called);
		assert_int_equal(r[i].result, 0);
		if (i > 0)
			assert_true(r[i - 1].seq < r[i].seq);
	}
	list_users(f, "example.org", &r[0]);
	assert_int_equal(r[0].n, 33);
}

static void test_reopen(void **state)
{
	struct fixture *f = *state;
	const char *g[] = { "Family" };
	struct roster_item it = { 0 };
	struct store_user u;
	struct stat sb;
	char *path;
	uint64_t v;
	struct res r;

	make_user(&u, "ivan", "example.org", 6);
	assert_int_equal(create_user(f, &u), 0);
	it.jid = "judy@example.org";
	it.name = "Judy";
	it.sub = ROSTER_SUB_BOTH;
	it.groups = g;
	it.ngroups = 1;
	v = roster_put(f, "ivan@example.org", &it);

	/* store_close completes what is pending before closing. */
	memset(&r, 0, sizeof(r));
	store_user_delete(f->st, "nobody", "example.org", done_cb, &r);
	store_close(f->st);
	assert_true(r.called);
	assert_int_equal(r.result, 1);

	open_store(f);
	assert_int_equal(get_user(f, "ivan", "example.org", &r), 1);
	assert_creds_equal(&r.user, &u);
	roster_get(f, "ivan@example.org", &r);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.version, v);
	assert_string_equal(r.items[0].name, "Judy");
	assert_string_equal(r.items[0].groups, "Family");
	assert_true(roster_put(f, "ivan@example.org", &it) > v);

	/* Private: directory 0700 (it was created), database 0600. */
	assert_int_equal(stat(f->data_dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	path = xasprintf("%s/roost.db", f->data_dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	free(path);
}

static void test_two_stores_one_file(void **state)
{
	struct fixture *f = *state;
	struct store *main_st = f->st, *other;
	struct res r, a[40], b[40];
	struct store_user u;
	char *error = NULL;
	char local[16];

	/* roostctl and roostd on the same data directory. */
	other = store_open_sqlite(f->base, f->data_dir, &error);
	assert_non_null(other);
	make_user(&u, "kim", "example.org", 2);
	f->st = other;
	assert_int_equal(create_user(f, &u), 0);
	f->st = main_st;
	assert_int_equal(get_user(f, "kim", "example.org", &r), 1);
	assert_int_equal(create_user(f, &u), 1);
	assert_int_equal(delete_user(f, "kim", "example.org"), 0);
	f->st = other;
	assert_int_equal(get_user(f, "kim", "example.org", &r), 0);
	f->st = main_st;

	/* Both writing at once: the busy timeout makes one wait for the
	 * other's write lock instead of failing. */
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 40; i++) {
		snprintf(local, sizeof(local), "a%02d", i);
		make_user(&u, local, "example.org", 1);
		store_user_create(main_st, &u, done_cb, &a[i]);
		snprintf(local, sizeof(local), "b%02d", i);
		make_user(&u, local, "example.org", 2);
		store_user_create(other, &u, done_cb, &b[i]);
	}
	store_flush(main_st);
	store_flush(other);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(a[i].result, 0);
		assert_int_equal(b[i].result, 0);
	}
	list_users(f, NULL, &r);
	assert_int_equal(r.n, 80);
	store_close(other);
}

static int keep_version(void *arg, int ncols, char **values, char **names)
{
	*(int *)arg = atoi(values[0]);
	return 0;
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	char *path, *sql, *error = NULL;
	int version = 0;
	sqlite3 *db;

	store_close(f->st);
	f->st = NULL;
	path = xasprintf("%s/roost.db", f->data_dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version", keep_version,
				      &version, NULL), SQLITE_OK);
	assert_true(version > 0);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL,
				      NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_null(store_open_sqlite(f->base, f->data_dir, &error));
	assert_non_null(error);
	assert_non_null(strstr(error, "999"));
	free(error);

	/* Set it back so the teardown can close a real store. */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql = xasprintf("PRAGMA user_version = %d", version);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
	sqlite3_close(db);
	free(path);
	open_store(f);
}

static void test_open_error(void **state)
{
	struct fixture *f = *state;
	char *path, *error = NULL;
	FILE *fp;

	/* A data directory that is a file. */
	path = xasprintf("%s/plainfile", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_null(store_open_sqlite(f->base, path, &error));
	assert_non_null(error);
	free(error);
	free(path);
}

/* ---- the offline store: deposits in batches ---- */

static const char *const rcpt[NRCPT] = { "alice", "bob", "carol" };
#define RDOMAIN "example.net"

/* A store with seal keys and three recipients with keyrings. */
static int setup_offline(void **state)
{
	struct fixture *f;
	unsigned char seal_key[32], ck1[20], ck256[32];

	setup(state);
	f = *state;
	assert_int_equal(RAND_bytes(seal_key, 32), 1);
	assert_int_equal(seal_keys_derive(seal_key, &f->keys), 0);
	store_set_seal_keys(f->st, &f->keys);
	for (int i = 0; i < NRCPT; i++) {
		char jid[64];
		struct seal_keyring kr;
		struct buf b = BUF_INIT;
		struct store_user u;

		snprintf(jid, sizeof(jid), "%s@" RDOMAIN, rcpt[i]);
		assert_int_equal(RAND_bytes(ck1, 20), 1);
		assert_int_equal(RAND_bytes(ck256, 32), 1);
		assert_int_equal(seal_keyring_create(&f->keys, jid, ck1, ck256,
						     &kr, &f->u[i]), 0);
		seal_keyring_encode(&kr, &b);
		make_user(&u, rcpt[i], RDOMAIN, (unsigned char)i);
		u.keyring = b.data;
		u.keyring_len = b.len;
		assert_int_equal(create_user(f, &u), 0);
		buf_free(&b);
	}
	return 0;
}

#define MAX_BATCH 16

struct batch_res {
	bool called;
	size_t n;
	int results[MAX_BATCH];
	uint64_t seqs[MAX_BATCH];
};

static void batch_cb(void *ctx, const int *results, const uint64_t *seqs,
		     size_t n)
{
	struct batch_res *r = ctx;

	assert_false(in_request);
	assert_false(r->called);
	assert_true(n <= MAX_BATCH);
	r->called = true;
	r->n = n;
	memcpy(r->results, results, n * sizeof(*results));
	memcpy(r->seqs, seqs, n * sizeof(*seqs));
}

/* One message per item: to rcpt[who[i]] (or "nobody" for -1), body
 * bodies[i], quotas as given. */
static void deposit_batch(struct fixture *f, const int *who,
			  const char *const *bodies, size_t n,
			  uint64_t max_count, uint64_t max_bytes,
			  struct batch_res *r)
{
	struct store_offline_item it[MAX_BATCH];
	char *msgs[MAX_BATCH];

	assert_true(n <= MAX_BATCH);
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		msgs[i] = xasprintf("<message><body>%s</body></message>",
				    bodies[i]);
		it[i] = (struct store_offline_item){
			.local = who[i] < 0 ? "nobody" : rcpt[who[i]],
			.domain = RDOMAIN,
			.stanza = msgs[i], .len = strlen(msgs[i]),
			.stamp_us = 1700000000000000LL + (int64_t)i,
			.max_count = max_count, .max_bytes = max_bytes,
		};
	}
	in_request = true;
	store_offline_deposit_batch(f->st, it, n, batch_cb, r);
	in_request = false;
	for (size_t i = 0; i < n; i++)
		free(msgs[i]);
	while (!r->called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	assert_int_equal(r->n, n);
}

/* What a load of one recipient's store delivered: the bodies of the
 * genuine records, oldest first. */
struct load_res {
	bool called;
	int result;
	size_t n, nwithheld, nfindings;
	uint64_t seqs[MAX_BATCH];
	char bodies[MAX_BATCH][32];
	struct seal_unlocked *u;
	const char *jid;
};

static void load_cb(void *ctx, int result, const struct store_offline *o)
{
	struct load_res *r = ctx;

	r->called = true;
	r->result = result;
	if (result != 0)
		return;
	assert_true(o->ngenuine <= MAX_BATCH);
	r->n = o->ngenuine;
	r->nwithheld = o->nwithheld;
	r->nfindings = o->nfindings;
	for (size_t i = 0; i < o->ngenuine; i++) {
		unsigned char *pt;
		size_t len;
		const char *b, *e;

		r->seqs[i] = o->genuine[i].seq;
		assert_int_equal(seal_record_open(r->u, r->jid, SEAL_STORE_OFFLINE,
						  &o->genuine[i], &pt, &len), 0);
		b = strstr((char *)pt, "<body>");
		e = strstr((char *)pt, "</body>");
		assert_non_null(b);
		assert_non_null(e);
		snprintf(r->bodies[i], sizeof(r->bodies[i]), "%.*s",
			 (int)(e - b - 6), b + 6);
		xfree_secret(pt, len);
	}
}

static void load(struct fixture *f, int who, struct load_res *r)
{
	char *jid = xasprintf("%s@" RDOMAIN, rcpt[who]);

	memset(r, 0, sizeof(*r));
	r->u = f->u[who];
	r->jid = jid;
	store_offline_load(f->st, rcpt[who], RDOMAIN, load_cb, r);
	while (!r->called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	r->jid = NULL;
	free(jid);
}

static void verify_cb(void *ctx, int result, const struct seal_finding *fi,
		      size_t n)
{
	struct res *r = ctx;

	mark(r, result);
	r->n = n;
}

/* roostctl verify's walk: 0 clean. */
static int verify(struct fixture *f, int who)
{
	struct res r = { 0 };

	store_offline_verify(f->st, rcpt[who], RDOMAIN, verify_cb, &r);
	wait_for(f, &r);
	return r.result;
}

static void exec_db(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	char *path = xasprintf("%s/roost.db", f->data_dir);
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
	free(path);
}

/* Several recipients, several messages each, interleaved, in one batch:
 * each recipient's messages take consecutive seqs in order, chained (a
 * walk finds nothing), and the next batch goes on from there. */
static void test_offline_batch_order(void **state)
{
	struct fixture *f = *state;
	static const int who[] = { 0, 1, 0, 2, -1, 1, 0 };
	static const char *const bodies[] = {
		"a1", "b1", "a2", "c1", "lost", "b2", "a3",
	};
	static const int want_res[] = { 0, 0, 0, 0, 2, 0, 0 };
	static const uint64_t want_seq[] = { 1, 1, 2, 1, 0, 2, 3 };
	struct batch_res r;
	struct load_res l;

	deposit_batch(f, who, bodies, 7, 0, 0, &r);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(r.results[i], want_res[i]);
		assert_int_equal(r.seqs[i], want_seq[i]);
	}
	load(f, 0, &l);
	assert_int_equal(l.result, 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.bodies[0], "a1");
	assert_string_equal(l.bodies[1], "a2");
	assert_string_equal(l.bodies[2], "a3");
	assert_int_equal(l.nfindings, 0);
	load(f, 1, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.bodies[1], "b2");
	load(f, 2, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.bodies[0], "c1");

	/* The chain goes on across batches, and across a restart (the
	 * walk then starts from the rows alone). */
	deposit_batch(f, (const int[]){ 2, 0 }, (const char *const[]){ "c2", "a4" },
		      2, 0, 0, &r);
	assert_int_equal(r.seqs[0], 2);
	assert_int_equal(r.seqs[1], 4);
	store_close(f->st);
	open_store(f);
	store_set_seal_keys(f->st, &f->keys);
	for (int i = 0; i < NRCPT; i++)
		assert_int_equal(verify(f, i), 0);
	load(f, 0, &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.bodies[3], "a4");
	assert_int_equal(l.seqs[3], 4);
}

/* Quotas are checked per message, in order, against what the batch has
 * stored so far: the count stops the fourth message to alice, the bytes
 * stop a big one and still let a small one after it through. */
static void test_offline_batch_quota(void **state)
{
	struct fixture *f = *state;
	char big[200];
	struct batch_res r;
	struct load_res l;
	static const int who[] = { 0, 1, 0, 0, 1, 0, 1 };

	deposit_batch(f, who, (const char *const[]){
			      "a1", "b1", "a2", "a3", "b2", "a4", "b3" },
		      7, 3, 0, &r);
	for (int i = 0; i < 7; i++)
		assert_int_equal(r.results[i], i == 5 ? 1 : 0);
	assert_int_equal(r.seqs[5], 0);
	assert_int_equal(r.seqs[6], 3);
	load(f, 0, &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.bodies[2], "a3");

	/* carol: "<message><body>" "</body></message>" is 32 bytes, plus
	 * 16 of tag: a 20-byte body makes 68, a 150-byte one 198. */
	memset(big, 'x', 150);
	big[150] = '\0';
	deposit_batch(f, (const int[]){ 2, 2, 2, 2 },
		      (const char *const[]){ "c1xxxxxxxxxxxxxxxxxx", big,
					     "c3xxxxxxxxxxxxxxxxxx", big },
		      4, 0, 200, &r);
	assert_int_equal(r.results[0], 0);
	assert_int_equal(r.results[1], 1);
	assert_int_equal(r.results[2], 0);
	assert_int_equal(r.results[3], 1);
	assert_int_equal(r.seqs[2], 2);
	load(f, 2, &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.bodies[1], "c3xxxxxxxxxxxxxxxxxx");
	assert_int_equal(verify(f, 2), 0);
}

/* Flips one bit of the last byte (the MAC's) of local's keyring row. */
static void flip_keyring_mac(struct fixture *f, const char *local)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char *path = xasprintf("%s/roost.db", f->data_dir);
	unsigned char blob[4096];
	int len;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM keyrings"
					    " WHERE local = ?1", -1, &stmt,
					    NULL), SQLITE_OK);
	sqlite3_bind_text(stmt, 1, local, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	len = sqlite3_column_bytes(stmt, 0);
	assert_true(len > 0 && (size_t)len <= sizeof(blob));
	memcpy(blob, sqlite3_column_blob(stmt, 0), (size_t)len);
	sqlite3_finalize(stmt);
	blob[len - 1] ^= 1;
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE keyrings SET blob = ?1"
					    " WHERE local = ?2", -1, &stmt,
					    NULL), SQLITE_OK);
	sqlite3_bind_blob(stmt, 1, blob, len, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, local, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	free(path);
}

/* bob's keyring row fails its MAC: his messages fail (-1), the others
 * of the same batch are stored. */
static void test_offline_batch_bad_keyring(void **state)
{
	struct fixture *f = *state;
	struct batch_res r;
	struct load_res l;
	static const int who[] = { 0, 1, 2, 1, 0 };

	flip_keyring_mac(f, "bob");
	deposit_batch(f, who, (const char *const[]){ "a1", "b1", "c1", "b2", "a2" },
		      5, 0, 0, &r);
	assert_int_equal(r.results[0], 0);
	assert_int_equal(r.results[1], -1);
	assert_int_equal(r.results[2], 0);
	assert_int_equal(r.results[3], -1);
	assert_int_equal(r.results[4], 0);
	assert_int_equal(r.seqs[0], 1);
	assert_int_equal(r.seqs[1], 0);
	assert_int_equal(r.seqs[3], 0);
	assert_int_equal(r.seqs[4], 2);
	load(f, 2, &l);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.bodies[0], "c1");
	assert_int_equal(verify(f, 0), 0);
	assert_int_equal(verify(f, 2), 0);
	/* Put right, bob's store takes messages again, from seq 1. */
	flip_keyring_mac(f, "bob");
	deposit_batch(f, (const int[]){ 1 }, (const char *const[]){ "b3" }, 1,
		      0, 0, &r);
	assert_int_equal(r.results[0], 0);
	assert_int_equal(r.seqs[0], 1);
}

/* A database error in the middle of a batch (an insert for carol fails):
 * every item fails and nothing of it stays, not even what was inserted
 * for alice and bob before; the seqs are used again afterwards, on a
 * chain a walk finds sound. */
static void test_offline_batch_db_error(void **state)
{
	struct fixture *f = *state;
	struct batch_res r;
	struct load_res l;
	static const int who[] = { 0, 1, 2, 0 };
	static const char *const bodies[] = { "a1", "b1", "c1", "a2" };

	deposit_batch(f, (const int[]){ 0 }, (const char *const[]){ "a0" }, 1,
		      0, 0, &r);
	assert_int_equal(r.results[0], 0);
	exec_db(f, "CREATE TRIGGER fail_carol BEFORE INSERT ON offline"
		   " WHEN NEW.local = 'carol'"
		   " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
	deposit_batch(f, who, bodies, 4, 0, 0, &r);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.results[i], -1);
		assert_int_equal(r.seqs[i], 0);
	}
	load(f, 0, &l);
	assert_int_equal(l.n, 1);
	load(f, 1, &l);
	assert_int_equal(l.n, 0);

	exec_db(f, "DROP TRIGGER fail_carol");
	deposit_batch(f, who, bodies, 4, 0, 0, &r);
	assert_int_equal(r.seqs[0], 2);
	assert_int_equal(r.seqs[1], 1);
	assert_int_equal(r.seqs[2], 1);
	assert_int_equal(r.seqs[3], 3);
	load(f, 0, &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.bodies[0], "a0");
	assert_string_equal(l.bodies[2], "a2");
	for (int i = 0; i < NRCPT; i++)
		assert_int_equal(verify(f, i), 0);
}

/* alice's store is put back to an earlier genuine state while the
 * process runs: it takes nothing more (sealing onto it would bless the
 * old state); bob's deposits in the same batch go on. */
static void test_offline_batch_rolled_back(void **state)
{
	struct fixture *f = *state;
	struct batch_res r;

	deposit_batch(f, (const int[]){ 0 }, (const char *const[]){ "a1" }, 1,
		      0, 0, &r);
	exec_db(f, "CREATE TABLE saved AS SELECT blob FROM keyrings"
		   " WHERE local = 'alice'");
	deposit_batch(f, (const int[]){ 0 }, (const char *const[]){ "a2" }, 1,
		      0, 0, &r);
	exec_db(f, "DELETE FROM offline WHERE local = 'alice' AND seq = 2;"
		   "UPDATE keyrings SET blob = (SELECT blob FROM saved)"
		   " WHERE local = 'alice'");
	deposit_batch(f, (const int[]){ 0, 1 }, (const char *const[]){ "a3", "b1" },
		      2, 0, 0, &r);
	assert_int_equal(r.results[0], -1);
	assert_int_equal(r.results[1], 0);
	assert_int_equal(r.seqs[1], 1);
}

/* The single-message request is a batch of one. */
static void single_cb(void *ctx, int result, uint64_t seq)
{
	struct batch_res *r = ctx;

	r->called = true;
	r->n = 1;
	r->results[0] = result;
	r->seqs[0] = seq;
}

static void test_offline_single_then_batch(void **state)
{
	struct fixture *f = *state;
	struct batch_res r = { 0 };

	store_offline_deposit(f->st, "alice", RDOMAIN, "<message/>", 10,
			      1700000000000000LL, 1, 0, single_cb, &r);
	while (!r.called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	assert_int_equal(r.results[0], 0);
	assert_int_equal(r.seqs[0], 1);
	memset(&r, 0, sizeof(r));
	store_offline_deposit(f->st, "alice", RDOMAIN, "<message/>", 10,
			      1700000000000000LL, 1, 0, single_cb, &r);
	while (!r.called)
		assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	assert_int_equal(r.results[0], 1);
	deposit_batch(f, (const int[]){ 0 }, (const char *const[]){ "a2" }, 1,
		      0, 0, &r);
	assert_int_equal(r.seqs[0], 2);
	assert_int_equal(verify(f, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_user_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_set_creds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_without_one_hash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roster_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roster_replace_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_delete_removes_roster, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ordering, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_stores_one_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_batch_order, setup_offline, teardown),
		cmocka_unit_test_setup_teardown(test_offline_batch_quota, setup_offline, teardown),
		cmocka_unit_test_setup_teardown(test_offline_batch_bad_keyring, setup_offline, teardown),
		cmocka_unit_test_setup_teardown(test_offline_batch_db_error, setup_offline, teardown),
		cmocka_unit_test_setup_teardown(test_offline_batch_rolled_back, setup_offline, teardown),
		cmocka_unit_test_setup_teardown(test_offline_single_then_batch, setup_offline, teardown),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
