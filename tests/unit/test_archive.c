/* The sealed message archive (store_archive.c) through the public store
 * API: a real event loop, a real SQLite file, real seal keys. Tampering
 * goes straight to the file with SQLite, as an attacker with the
 * database would. */
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

#define LOCAL "juliet"
#define DOMAIN "capulet.example"
#define JID LOCAL "@" DOMAIN
#define ROMEO "romeo@montague.example"
#define NURSE "nurse@capulet.example"
#define T0 1700000000000000LL
#define MAXPAGE 512

struct fixture {
	char dir[64];
	char *data_dir;
	struct event_base *base;
	struct store *st;
	struct seal_keys keys;
	struct seal_unlocked *u;
};

/* What a callback saw, copied out. */
struct res {
	bool called;
	int result;
	uint64_t n;
	size_t count, first_index, nwithheld, nfindings, npage;
	bool complete;
	char ids[MAXPAGE][40];
	char bodies[MAXPAGE][64];
	char first_id[40], last_id[40];
	enum store_archive_mode mode;
	size_t nalways, nnever;
	char always0[64];
};

static struct fixture *F;

static void wait_for(struct res *r)
{
	while (!r->called)
		assert_int_equal(event_base_loop(F->base, EVLOOP_ONCE), 0);
}

static void deposit_cb(void *ctx, int result, uint64_t seq)
{
	struct res *r = ctx;
	r->called = true;
	r->result = result;
	r->n = seq;
}

static void batch_cb(void *ctx, const int *results, size_t n)
{
	struct res *r = ctx;

	r->called = true;
	r->result = n > 0 ? results[0] : -9;
	r->n = n;
	assert_true(n <= MAXPAGE);
	for (size_t i = 0; i < n; i++)
		snprintf(r->ids[i], sizeof(r->ids[i]), "%d", results[i]);
}

static void count_cb(void *ctx, int result, uint64_t n)
{
	deposit_cb(ctx, result, n);
}

static void done_cb(void *ctx, int result, const char *error)
{
	deposit_cb(ctx, result, 0);
}

static void verify_cb(void *ctx, int result, const struct seal_finding *f,
		      size_t n)
{
	deposit_cb(ctx, result, n);
}

/* Opens each result and keeps its body text. */
static void query_cb(void *ctx, int result, const struct store_archive_page *p)
{
	struct res *r = ctx;

	r->called = true;
	r->result = result;
	if (result != 0)
		return;
	r->count = p->count;
	r->first_index = p->first_index;
	r->complete = p->complete;
	r->nwithheld = p->nwithheld;
	r->nfindings = p->nfindings;
	r->npage = p->n;
	snprintf(r->first_id, sizeof(r->first_id), "%s", p->first_id ? p->first_id : "");
	snprintf(r->last_id, sizeof(r->last_id), "%s", p->last_id ? p->last_id : "");
	assert_true(p->n <= MAXPAGE);
	for (size_t i = 0; i < p->n; i++) {
		unsigned char *pt;
		size_t len;
		const char *b, *e;

		snprintf(r->ids[i], sizeof(r->ids[i]), "%s", p->msgs[i].stanza_id);
		assert_int_equal(seal_record_open(F->u, JID, SEAL_STORE_ARCHIVE,
						  p->msgs[i].rec, &pt, &len), 0);
		b = strstr((char *)pt, "<body>");
		e = strstr((char *)pt, "</body>");
		assert_non_null(b);
		assert_non_null(e);
		snprintf(r->bodies[i], sizeof(r->bodies[i]), "%.*s",
			 (int)(e - b - 6), b + 6);
		xfree_secret(pt, len);
	}
}

static void prefs_cb(void *ctx, int result, const struct store_archive_prefs *p)
{
	struct res *r = ctx;

	r->called = true;
	r->result = result;
	if (result == 1) {
		r->mode = p->mode;
		r->nalways = p->nalways;
		r->nnever = p->nnever;
		snprintf(r->always0, sizeof(r->always0), "%s",
			 p->nalways ? p->always[0] : "");
	}
}

/* ---- helpers ---- */

static int deposit_full(const char *id, const char *with, bool out,
			int64_t stamp, const char *body,
			enum store_archive_mode dflt)
{
	struct res r = { 0 };
	char *msg = xasprintf("<message from='%s' to='%s'><body>%s</body></message>",
			      out ? JID : with, out ? with : JID, body);
	struct store_archive_item it = {
		.local = LOCAL, .domain = DOMAIN,
		.with = with, .stanza_id = id, .outgoing = out,
		.stamp_us = stamp, .stanza = msg, .len = strlen(msg),
	};

	store_archive_deposit(F->st, &it, 1, dflt, batch_cb, &r);
	assert_false(r.called);
	free(msg);
	wait_for(&r);
	return r.result;
}

static int deposit(const char *id, const char *with, int64_t stamp,
		   const char *body)
{
	return deposit_full(id, with, false, stamp, body, STORE_ARCHIVE_ALWAYS);
}

/* 'n' messages "m0".."m<n-1>", ids "id000".., stamps T0 + i s, every
 * third with the nurse, the others with Romeo. */
static void fill(int n)
{
	for (int i = 0; i < n; i++) {
		char id[16], body[16];
		snprintf(id, sizeof(id), "id%03d", i);
		snprintf(body, sizeof(body), "m%d", i);
		assert_int_equal(deposit(id, i % 3 == 2 ? NURSE : ROMEO,
					 T0 + i * 1000000LL, body), 0);
	}
}

static void query(const struct store_archive_query *q, struct res *r)
{
	memset(r, 0, sizeof(*r));
	store_archive_query(F->st, LOCAL, DOMAIN, q, query_cb, r);
	assert_false(r->called);
	wait_for(r);
}

static struct store_archive_query q_all(size_t max)
{
	return (struct store_archive_query){ .max = max };
}

static void exec_db(const char *sql)
{
	sqlite3 *db;
	char *path = xasprintf("%s/roost.db", F->data_dir);
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
	free(path);
}

static long long db_count(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char *path = xasprintf("%s/roost.db", F->data_dir);
	long long n;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	n = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	free(path);
	return n;
}

/* ---- fixture ---- */

/* Creates an account with a fresh keyring; returns its unlocked keys. */
static struct seal_unlocked *add_user(const char *local, const char *domain)
{
	unsigned char ck1[20], ck256[32];
	char *jid = xasprintf("%s@%s", local, domain);
	struct seal_unlocked *unlocked;
	struct seal_keyring kr;
	struct buf b = BUF_INIT;
	struct store_user u;
	struct res r = { 0 };

	assert_int_equal(RAND_bytes(ck1, 20), 1);
	assert_int_equal(RAND_bytes(ck256, 32), 1);
	assert_int_equal(seal_keyring_create(&F->keys, jid, ck1, ck256, &kr,
					     &unlocked), 0);
	seal_keyring_encode(&kr, &b);
	memset(&u, 0, sizeof(u));
	u.local = local;
	u.domain = domain;
	u.creds[SCRAM_SHA256].salt_len = 16;
	u.creds[SCRAM_SHA256].iterations = 4096;
	u.keyring = b.data;
	u.keyring_len = b.len;
	store_user_create(F->st, &u, done_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	buf_free(&b);
	free(jid);
	return unlocked;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	unsigned char seal_key[32];
	char *error = NULL;

	F = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/roost-test-archive.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->data_dir = xasprintf("%s/data", f->dir);
	f->base = event_base_new();
	f->st = store_open_sqlite(f->base, f->data_dir, &error);
	if (f->st == NULL)
		fail_msg("store_open_sqlite: %s", error);
	assert_int_equal(RAND_bytes(seal_key, 32), 1);
	assert_int_equal(seal_keys_derive(seal_key, &f->keys), 0);
	store_set_seal_keys(f->st, &f->keys);
	f->u = add_user(LOCAL, DOMAIN);
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
	event_base_free(f->base);
	seal_unlocked_free(f->u);
	seal_keys_clear(&f->keys);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->data_dir);
	free(f);
	F = NULL;
	return 0;
}

/* ---- tests ---- */

static void test_deposit_and_read_back(void **state)
{
	struct res r;
	struct store_archive_query q = q_all(100);

	fill(30);
	query(&q, &r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.count, 30);
	assert_int_equal(r.npage, 30);
	assert_true(r.complete);
	assert_int_equal(r.nwithheld, 0);
	assert_int_equal(r.nfindings, 0);
	for (int i = 0; i < 30; i++) {
		char want[16];
		snprintf(want, sizeof(want), "m%d", i);
		assert_string_equal(r.bodies[i], want);
	}
	assert_string_equal(r.first_id, "id000");
	assert_string_equal(r.last_id, "id029");

	/* The same stanza-id again is refused; nothing is added. */
	assert_int_equal(deposit("id007", ROMEO, T0, "again"), 3);
	query(&q, &r);
	assert_int_equal(r.count, 30);

	/* No such user. */
	{
		struct res d = { 0 };
		struct store_archive_item it = {
			.local = "nobody", .domain = DOMAIN,
			.with = ROMEO, .stanza_id = "x", .stanza = "<m/>", .len = 4,
		};
		store_archive_deposit(F->st, &it, 1, STORE_ARCHIVE_ALWAYS,
				      batch_cb, &d);
		wait_for(&d);
		assert_int_equal(d.result, 2);
	}
}

/* One batch, one transaction: several owners, a duplicate inside the
 * batch, a user without keyring; each item gets its own result. */
static void test_batch(void **state)
{
	struct res r = { 0 };
	const char *msg = "<message><body>b</body></message>";
	struct store_archive_item it[6];
	struct store_archive_query q = q_all(100);

	for (int i = 0; i < 6; i++)
		it[i] = (struct store_archive_item){
			.local = LOCAL, .domain = DOMAIN, .with = ROMEO,
			.stanza = msg, .len = strlen(msg), .stamp_us = T0 + i,
		};
	it[0].stanza_id = "b0";
	it[1].stanza_id = "b1";
	it[2].stanza_id = "b0";          /* the same message again */
	it[3].stanza_id = "b3";
	it[3].local = "nobody";
	it[4].stanza_id = "b4";
	it[4].with = "stranger@example.org";
	it[5].stanza_id = "b5";
	store_archive_deposit(F->st, it, 6, STORE_ARCHIVE_ALWAYS, batch_cb, &r);
	wait_for(&r);
	assert_int_equal(r.n, 6);
	assert_string_equal(r.ids[0], "0");
	assert_string_equal(r.ids[1], "0");
	assert_string_equal(r.ids[2], "3");
	assert_string_equal(r.ids[3], "2");
	assert_string_equal(r.ids[4], "0");
	assert_string_equal(r.ids[5], "0");
	query(&q, &r);
	assert_int_equal(r.count, 4);
	assert_string_equal(r.ids[3], "b5");
	/* The chain is sound: a walk finds nothing. */
	memset(&r, 0, sizeof(r));
	store_archive_verify(F->st, LOCAL, DOMAIN, verify_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	/* Under 'roster', a batch decides per item. */
	memset(&r, 0, sizeof(r));
	it[0].stanza_id = "c0";
	it[1].stanza_id = "c1";
	it[1].with = JID;
	store_archive_deposit(F->st, it, 2, STORE_ARCHIVE_ROSTER, batch_cb, &r);
	wait_for(&r);
	assert_string_equal(r.ids[0], "1");
	assert_string_equal(r.ids[1], "0");
}

/* A batch of many owners, their items interleaved: owners are sealed in
 * parallel (store_archive.c), each on its own chain, so every archive
 * must come out complete, in order and clean, and a duplicate that an
 * earlier item of the same batch made must still be caught. */
#define MANY_OWNERS 20
#define MANY_EACH 25
static void test_batch_many_owners(void **state)
{
	static char locals[MANY_OWNERS][16], ids[MANY_OWNERS * MANY_EACH][24];
	const char *msg = "<message><body>m</body></message>";
	size_t n = MANY_OWNERS * MANY_EACH + 1;
	struct store_archive_item *it = xcalloc(n, sizeof(*it));
	struct seal_unlocked *keys[MANY_OWNERS];
	struct store_archive_query q = q_all(MANY_EACH + 5);
	struct res r = { 0 };

	(void)state;
	keys[0] = NULL;
	snprintf(locals[0], sizeof(locals[0]), "%s", LOCAL);
	for (int k = 1; k < MANY_OWNERS; k++) {
		snprintf(locals[k], sizeof(locals[k]), "owner%d", k);
		keys[k] = add_user(locals[k], DOMAIN);
	}
	for (size_t i = 0; i < n - 1; i++) {
		int k = (int)(i % MANY_OWNERS);

		snprintf(ids[i], sizeof(ids[i]), "m%zu", i);
		it[i] = (struct store_archive_item){
			.local = locals[k], .domain = DOMAIN, .with = ROMEO,
			.stanza_id = ids[i], .new_id = true,
			.stanza = msg, .len = strlen(msg),
			.stamp_us = T0 + (int64_t)i,
		};
	}
	/* LOCAL's first message again, not known to be new */
	it[n - 1] = it[0];
	it[n - 1].new_id = false;
	store_archive_deposit(F->st, it, n, STORE_ARCHIVE_ALWAYS, batch_cb, &r);
	wait_for(&r);
	assert_int_equal(r.n, n);
	for (size_t i = 0; i < n - 1; i++)
		assert_string_equal(r.ids[i], "0");
	assert_string_equal(r.ids[n - 1], "3");
	for (int k = 0; k < MANY_OWNERS; k++) {
		memset(&r, 0, sizeof(r));
		store_archive_verify(F->st, locals[k], DOMAIN, verify_cb, &r);
		wait_for(&r);
		assert_int_equal(r.result, 0);
		assert_int_equal(r.n, 0); /* no findings */
	}
	query(&q, &r);
	assert_int_equal(r.count, MANY_EACH);
	for (int j = 0; j < MANY_EACH; j++) {
		char want[24];

		snprintf(want, sizeof(want), "m%d", j * MANY_OWNERS);
		assert_string_equal(r.ids[j], want);
	}
	for (int k = 1; k < MANY_OWNERS; k++)
		seal_unlocked_free(keys[k]);
	free(it);
}

static void test_paging_and_filters(void **state)
{
	struct res r;
	struct store_archive_query q;
	char last[40];
	int seen = 0;

	fill(50);
	/* Forward in pages of 7 with <after/>. */
	q = q_all(7);
	for (;;) {
		query(&q, &r);
		assert_int_equal(r.result, 0);
		assert_int_equal(r.count, 50);
		assert_int_equal(r.first_index, (size_t)seen);
		for (size_t i = 0; i < r.npage; i++) {
			char want[16];
			snprintf(want, sizeof(want), "m%d", seen++);
			assert_string_equal(r.bodies[i], want);
		}
		if (r.complete)
			break;
		snprintf(last, sizeof(last), "%s", r.ids[r.npage - 1]);
		q.rsm_after = last;
	}
	assert_int_equal(seen, 50);

	/* Backward with <before/>: the last page first. */
	q = q_all(20);
	q.rsm_before = "";
	query(&q, &r);
	assert_int_equal(r.npage, 20);
	assert_string_equal(r.bodies[0], "m30");
	assert_int_equal(r.first_index, 30);
	assert_false(r.complete);
	snprintf(last, sizeof(last), "%s", r.ids[0]);
	q.rsm_before = last;
	query(&q, &r);
	assert_string_equal(r.bodies[0], "m10");
	assert_false(r.complete);
	snprintf(last, sizeof(last), "%s", r.ids[0]);
	query(&q, &r);
	assert_int_equal(r.npage, 10);
	assert_string_equal(r.bodies[0], "m0");
	assert_true(r.complete);

	/* <index/>. */
	q = q_all(5);
	q.has_index = true;
	q.index = 48;
	query(&q, &r);
	assert_int_equal(r.npage, 2);
	assert_true(r.complete);

	/* with: every third message is the nurse's (ids 2, 5, ...). */
	q = q_all(100);
	q.with = NURSE;
	query(&q, &r);
	assert_int_equal(r.count, 16);
	assert_string_equal(r.bodies[0], "m2");
	/* start/end (inclusive), combined with with. */
	q.has_start = true;
	q.start_us = T0 + 5 * 1000000LL;
	q.has_end = true;
	q.end_us = T0 + 11 * 1000000LL;
	query(&q, &r);
	assert_int_equal(r.count, 3);
	assert_string_equal(r.bodies[0], "m5");
	assert_string_equal(r.bodies[2], "m11");
	/* after-id / before-id are exclusive bounds. */
	q = q_all(100);
	q.after_id = "id010";
	q.before_id = "id014";
	query(&q, &r);
	assert_int_equal(r.count, 3);
	assert_string_equal(r.bodies[0], "m11");
	/* ids. */
	q = q_all(100);
	q.ids = (const char *const[]){ "id004", "id040" };
	q.nids = 2;
	query(&q, &r);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.bodies[1], "m40");
	/* Unknown ids are item-not-found (3). */
	q = q_all(10);
	q.rsm_after = "nope";
	query(&q, &r);
	assert_int_equal(r.result, 3);
	q = q_all(10);
	q.before_id = "nope";
	query(&q, &r);
	assert_int_equal(r.result, 3);
	/* max 0: the count alone. */
	q = q_all(0);
	query(&q, &r);
	assert_int_equal(r.count, 50);
	assert_int_equal(r.npage, 0);
}

static void test_preferences(void **state)
{
	struct res r = { 0 };
	struct store_archive_prefs p = {
		.mode = STORE_ARCHIVE_ROSTER,
		.always = (const char *const[]){ NURSE },
		.nalways = 1,
		.never = (const char *const[]){ "tybalt@capulet.example" },
		.nnever = 1,
	};
	struct roster_item item = { .jid = ROMEO, .sub = ROSTER_SUB_BOTH };

	/* No stored preferences: the server default decides. */
	assert_int_equal(deposit_full("a1", ROMEO, false, T0, "x",
				      STORE_ARCHIVE_ROSTER), 1);
	assert_int_equal(deposit_full("a2", ROMEO, false, T0, "x",
				      STORE_ARCHIVE_NEVER), 1);
	assert_int_equal(deposit_full("a3", JID, false, T0, "x",
				      STORE_ARCHIVE_ROSTER), 0);
	store_archive_prefs_get(F->st, LOCAL, DOMAIN, prefs_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);

	/* A roster contact is archived under 'roster'. */
	memset(&r, 0, sizeof(r));
	store_roster_put(F->st, JID, &item, NULL, NULL);
	assert_int_equal(deposit_full("a4", ROMEO, false, T0, "x",
				      STORE_ARCHIVE_ROSTER), 0);

	memset(&r, 0, sizeof(r));
	store_archive_prefs_set(F->st, LOCAL, DOMAIN, &p, done_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	memset(&r, 0, sizeof(r));
	store_archive_prefs_get(F->st, LOCAL, DOMAIN, prefs_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 1);
	assert_int_equal(r.mode, STORE_ARCHIVE_ROSTER);
	assert_int_equal(r.nalways, 1);
	assert_int_equal(r.nnever, 1);
	assert_string_equal(r.always0, NURSE);
	/* The stored preferences win over the server default. */
	assert_int_equal(deposit_full("a5", NURSE, false, T0, "x",
				      STORE_ARCHIVE_NEVER), 0);
	assert_int_equal(deposit_full("a6", "tybalt@capulet.example", true, T0,
				      "x", STORE_ARCHIVE_ALWAYS), 1);
	assert_int_equal(deposit_full("a7", "friar@example.org", false, T0, "x",
				      STORE_ARCHIVE_ALWAYS), 1);

	/* An edited preferences row is ignored (logged): the default again. */
	exec_db("UPDATE archive_prefs SET mode = 'always'");
	assert_int_equal(deposit_full("a8", "friar@example.org", false, T0, "x",
				      STORE_ARCHIVE_NEVER), 1);
	memset(&r, 0, sizeof(r));
	store_archive_prefs_get(F->st, LOCAL, DOMAIN, prefs_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
}

static void test_tampering_is_withheld(void **state)
{
	struct res r;
	struct store_archive_query q = q_all(100);
	struct res v = { 0 };

	fill(12);
	/* A changed ciphertext and a changed counterpart. */
	exec_db("UPDATE archive SET ct = zeroblob(ct_len) WHERE seq = 4");
	exec_db("UPDATE archive SET with_jid = 'nurse@capulet.example'"
		" WHERE seq = 7");
	query(&q, &r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.count, 10);
	assert_int_equal(r.nwithheld, 2);
	assert_true(r.nfindings >= 2);
	for (size_t i = 0; i < r.npage; i++) {
		assert_string_not_equal(r.bodies[i], "m3");
		assert_string_not_equal(r.bodies[i], "m6");
	}
	/* The successors are untouched and delivered. */
	assert_string_equal(r.bodies[3], "m4");
	store_archive_verify(F->st, LOCAL, DOMAIN, verify_cb, &v);
	wait_for(&v);
	assert_int_equal(v.result, 1);
	assert_true(v.n >= 2);
	/* Deposits go on. */
	assert_int_equal(deposit("new", ROMEO, T0 + 100000000LL, "after"), 0);
	query(&q, &r);
	assert_int_equal(r.count, 11);
}

static void test_expire(void **state)
{
	struct res r = { 0 };
	struct store_archive_query q = q_all(100);

	fill(20);
	/* Records stamped before T0 + 8 s go: m0..m7. */
	store_archive_expire(F->st, LOCAL, DOMAIN, T0 + 8 * 1000000LL, count_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.n, 8);
	query(&q, &r);
	assert_int_equal(r.count, 12);
	assert_string_equal(r.bodies[0], "m8");
	assert_int_equal(r.nfindings, 0);
	/* Expired ids are gone for good. */
	q.rsm_after = "id003";
	query(&q, &r);
	assert_int_equal(r.result, 3);
	/* Compacted: the rows are deleted, the chain goes on. */
	assert_int_equal(deposit("later", ROMEO, T0 + 50 * 1000000LL, "late"), 0);
	memset(&r, 0, sizeof(r));
	store_archive_verify(F->st, LOCAL, DOMAIN, verify_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	/* Nothing old enough: nothing removed. */
	memset(&r, 0, sizeof(r));
	store_archive_expire(F->st, LOCAL, DOMAIN, T0, count_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.n, 0);
}

/* The archive's chain and the offline store's are independent: a
 * tampered archive leaves the offline store deliverable. */
static void offline_cb(void *ctx, int result, const struct store_offline *o)
{
	struct res *r = ctx;
	r->called = true;
	r->result = result;
	if (result == 0) {
		r->count = o->ngenuine;
		r->nwithheld = o->nwithheld;
	}
}

static void test_offline_unaffected(void **state)
{
	struct res r = { 0 };

	store_offline_deposit(F->st, LOCAL, DOMAIN, "<message/>", 10, T0, 0, 0,
			      deposit_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.n, 1);
	fill(3);
	exec_db("DELETE FROM archive WHERE seq = 2");
	memset(&r, 0, sizeof(r));
	store_offline_load(F->st, LOCAL, DOMAIN, offline_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.nwithheld, 0);
	memset(&r, 0, sizeof(r));
	store_offline_deposit(F->st, LOCAL, DOMAIN, "<message/>", 10, T0, 0, 0,
			      deposit_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.n, 2);
}

static void test_user_delete(void **state)
{
	struct res r = { 0 };
	struct store_archive_query q = q_all(10);

	fill(3);
	store_user_delete(F->st, LOCAL, DOMAIN, done_cb, &r);
	wait_for(&r);
	assert_int_equal(r.result, 0);
	query(&q, &r);
	assert_int_equal(r.result, 2);
	assert_int_equal(db_count("SELECT count(*) FROM archive"), 0);
}

/* ---- tampering after a first query ----
 *
 * The first query walks the whole archive and finds it clean; later ones
 * check only the records they return (store_archive.c). Each test changes
 * the database between the two, as an attacker with the file would while
 * roostd runs, and shows that the next page never returns the changed
 * record. */

/* 30 messages m0..m29 (seq 1..30), and a clean first page of 10. */
static void first_page(void)
{
	struct res r;
	struct store_archive_query q = q_all(10);

	fill(30);
	query(&q, &r);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.count, 30);
	assert_int_equal(r.npage, 10);
	assert_int_equal(r.nwithheld, 0);
	assert_int_equal(r.nfindings, 0);
	assert_string_equal(r.bodies[9], "m9");
}

/* The page of 10 after `after_id`. */
static void next_page(const char *after_id, struct res *r)
{
	struct store_archive_query q = q_all(10);

	q.rsm_after = after_id;
	query(&q, r);
	assert_int_equal(r->result, 0);
}

/* The bodies of a page, as "m10 m11 ...". */
static void page_bodies(const struct res *r, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < r->npage && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s",
					 i ? " " : "", r->bodies[i]);
}

static void assert_page(const struct res *r, const char *want)
{
	char got[512];

	page_bodies(r, got, sizeof(got));
	assert_string_equal(got, want);
}

static void test_ct_changed_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET ct = zeroblob(ct_len) WHERE seq = 15");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m15 m16 m17 m18 m19 m20");
	assert_int_equal(r.nwithheld, 1);
	assert_true(r.nfindings >= 1);
	assert_int_equal(r.count, 29);
	assert_int_equal(r.first_index, 10);
}

static void test_stamp_changed_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET stamp = stamp + 1 WHERE seq = 12");
	next_page("id009", &r);
	assert_page(&r, "m10 m12 m13 m14 m15 m16 m17 m18 m19 m20");
	assert_int_equal(r.nwithheld, 1);
}

/* The clear metadata is bound to its record: a changed counterpart
 * (which would let a record pass a 'with' filter it does not match) or
 * stanza-id is withheld too. */
static void test_meta_changed_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET with_jid = 'nurse@capulet.example'"
		" WHERE seq = 13");
	exec_db("UPDATE archive SET stanza_id = 'forged' WHERE seq = 17");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m13 m14 m15 m17 m18 m19 m20 m21");
	assert_int_equal(r.nwithheld, 2);
}

/* A record's chain field changed: it fails, its successor still verifies
 * (the walk recomputes the chain it was sealed over). */
static void test_chain_changed_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET chain = zeroblob(32) WHERE seq = 14");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m14 m15 m16 m17 m18 m19 m20");
	assert_int_equal(r.nwithheld, 1);
}

/* Another record's fields copied over seq 17 (a record moved): its
 * seq is under the MAC; the record after it lost the chain it was sealed
 * over and cannot be verified either. */
static void test_moved_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET (stamp, key_id, epk, nonce, ct, ct_len,"
		" chain, with_jid, stanza_id, dir, meta) = (SELECT stamp,"
		" key_id, epk, nonce, ct, ct_len, chain, with_jid, stanza_id,"
		" dir, meta FROM archive WHERE seq = 5) WHERE seq = 17");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m14 m15 m18 m19 m20 m21");
	assert_int_equal(r.nwithheld, 2);
}

/* A deleted record: its successor cannot be verified. */
static void test_deleted_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("DELETE FROM archive WHERE seq = 14");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m15 m16 m17 m18 m19 m20 m21");
	assert_int_equal(r.nwithheld, 1);
	assert_true(r.nfindings >= 2);
}

/* A second copy of a row, here of the one just after the page (which
 * the query reads to tell whether the page is the last): reported, and
 * delivered once. */
static void test_duplicated_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("INSERT INTO archive SELECT * FROM archive WHERE seq = 21");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m14 m15 m16 m17 m18 m19");
	assert_true(r.nfindings >= 1);
	next_page("id019", &r);
	assert_page(&r, "m20 m21 m22 m23 m24 m25 m26 m27 m28 m29");
}

/* A record changed outside the next page is not seen by it (each record
 * it returns is still checked); the page that reaches it withholds it. */
static void test_changed_outside_the_page(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET ct = zeroblob(ct_len) WHERE seq = 25");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m14 m15 m16 m17 m18 m19");
	assert_int_equal(r.nwithheld, 0);
	next_page("id019", &r);
	assert_page(&r, "m20 m21 m22 m23 m25 m26 m27 m28 m29");
	assert_int_equal(r.nwithheld, 1);
	assert_true(r.complete);
}

/* The newest record is checked by every query (as the walk checks the
 * head), and so is the oldest. */
static void test_head_changed_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("UPDATE archive SET ct = zeroblob(ct_len) WHERE seq = 30");
	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m14 m15 m16 m17 m18 m19");
	assert_int_equal(r.nwithheld, 1);
	assert_string_equal(r.last_id, "id028");
}

/* A row and records put back to their state before two deposits, while
 * the store runs: the in-memory anchor sees it. */
static void test_rollback_after_first_query(void **state)
{
	struct res r;

	first_page();
	exec_db("CREATE TABLE snap_a AS SELECT * FROM archive;"
		"CREATE TABLE snap_k AS SELECT * FROM keyrings;");
	assert_int_equal(deposit("id030", ROMEO, T0 + 30 * 1000000LL, "m30"), 0);
	assert_int_equal(deposit("id031", ROMEO, T0 + 31 * 1000000LL, "m31"), 0);
	next_page("id029", &r);
	assert_page(&r, "m30 m31");
	exec_db("DELETE FROM archive; INSERT INTO archive SELECT * FROM snap_a;"
		"DELETE FROM keyrings; INSERT INTO keyrings SELECT * FROM snap_k;");
	next_page("id019", &r);
	assert_page(&r, "m20 m21 m22 m23 m24 m25 m26 m27 m28 m29");
	assert_true(r.nfindings >= 1);
}

/* A valid tomb planted on seq 25 (as if the record had been wiped in
 * another history): nothing was ever removed in this one, so the walk
 * cannot tell which record is out of place and withholds them all. The
 * page path sees it only from a page next to it (docs/mam.md). */
static void test_planted_tomb(void **state)
{
	struct res r;
	unsigned char chain[32], tomb[32];
	sqlite3 *db;
	sqlite3_stmt *stmt;
	char *path = xasprintf("%s/roost.db", F->data_dir);

	first_page();
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT chain FROM archive"
					    " WHERE seq = 25", -1, &stmt, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	memcpy(chain, sqlite3_column_blob(stmt, 0), 32);
	sqlite3_finalize(stmt);
	assert_int_equal(seal_record_tomb(&F->keys, JID, SEAL_STORE_ARCHIVE, 25,
					  chain, tomb), 0);
	assert_int_equal(sqlite3_prepare_v2(db, "UPDATE archive SET ct = NULL,"
					    " tomb = ?1 WHERE seq = 25", -1,
					    &stmt, NULL), SQLITE_OK);
	sqlite3_bind_blob(stmt, 1, tomb, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(stmt), SQLITE_DONE);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	free(path);

	next_page("id009", &r);
	assert_page(&r, "m10 m11 m12 m13 m14 m15 m16 m17 m18 m19");
	next_page("id019", &r);
	assert_int_equal(r.npage, 0);
	assert_int_equal(r.nwithheld, 29);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deposit_and_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_many_owners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paging_and_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preferences, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampering_is_withheld, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_unaffected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ct_changed_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stamp_changed_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta_changed_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_changed_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moved_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicated_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_outside_the_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_head_changed_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_after_first_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_planted_tomb, setup, teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
