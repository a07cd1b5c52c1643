/* Unit tests for src/util: arena, buf, hashmap, base64, workq, fanout. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "util/arena.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/fanout.h"
#include "util/hashmap.h"
#include "util/workq.h"
#include "util/xalloc.h"

/* ---- arena ---- */

static void test_arena_alignment_and_contents(void **state)
{
	struct arena *a = arena_new(0);
	const size_t align = alignof(max_align_t);
	unsigned char *p[500];

	/* Odd sizes, each filled with its own pattern: overlapping blocks
	 * would show up as a wrong byte (and ASan sees overruns). */
	for (size_t i = 0; i < 500; i++) {
		size_t size = i % 37 + 1;
		p[i] = arena_alloc(a, size);
		assert_non_null(p[i]);
		assert_int_equal((uintptr_t)p[i] % align, 0);
		memset(p[i], (int)(i & 0xff), size);
	}
	for (size_t i = 0; i < 500; i++)
		for (size_t k = 0; k < i % 37 + 1; k++)
			assert_int_equal(p[i][k], i & 0xff);
	arena_free(a);
}

static void test_arena_large(void **state)
{
	struct arena *a = arena_new(64);
	char *small1, *big, *small2;
	size_t before;

	small1 = arena_alloc(a, 8);
	before = arena_size(a);
	/* Bigger than a chunk: gets its own block. */
	big = arena_alloc(a, 10000);
	assert_true(arena_size(a) >= before + 10000);
	memset(big, 'x', 10000);
	small2 = arena_alloc(a, 8);
	memset(small1, 'a', 8);
	memset(small2, 'b', 8);
	for (size_t i = 0; i < 10000; i++)
		assert_int_equal(big[i], 'x');
	assert_int_equal(small1[7], 'a');
	/* A large first allocation, then small ones. */
	arena_free(a);
	a = arena_new(16);
	memset(arena_alloc(a, 4096), 0, 4096);
	for (int i = 0; i < 100; i++)
		memset(arena_alloc(a, 16), 1, 16);
	arena_free(a);
	arena_free(NULL);
}

static void test_arena_strdup(void **state)
{
	struct arena *a = arena_new(0);
	char *s = arena_strdup(a, "hello");
	char *t = arena_strndup(a, "hello world", 5);
	char *e = arena_strdup(a, "");

	assert_string_equal(s, "hello");
	assert_string_equal(t, "hello");
	assert_string_equal(e, "");
	assert_ptr_not_equal(s, t);
	assert_true(arena_size(a) > 0);
	arena_free(a);
}

/* ---- buf ---- */

static void test_buf(void **state)
{
	struct buf b = BUF_INIT;
	char *s;
	size_t len;

	buf_append_str(&b, "abc");
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	buf_append(&b, "\0z", 2);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "abc\0z", 6); /* still NUL-terminated */
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	for (int i = 0; i < 1000; i++)
		buf_appendf(&b, "%d,", i);
	assert_true(b.len < b.cap);
	assert_int_equal(b.data[b.len], '\0');
	assert_int_equal(strncmp(b.data, "0,1,2,", 6), 0);
	assert_int_equal(strcmp(b.data + b.len - 4, "999,"), 0);
	s = buf_steal(&b, &len);
	assert_int_equal(len, strlen(s));
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);
	/* Stealing an empty buffer still gives a string. */
	s = buf_steal(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	buf_appendf(&b, "%s", "");
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	buf_free(&b);
	buf_free(&b);
}

/* ---- hashmap ---- */

#define NKEYS 5000

static void key_name(char *out, size_t len, int i)
{
	snprintf(out, len, "user%d@example.org", i);
}

static void test_hashmap_basic(void **state)
{
	struct hashmap *m = hashmap_new();
	int a = 1, b = 2;

	assert_null(hashmap_get(m, "x"));
	assert_null(hashmap_remove(m, "x"));
	assert_null(hashmap_put(m, "x", &a));
	assert_ptr_equal(hashmap_put(m, "x", &b), &a); /* replace */
	assert_int_equal(hashmap_count(m), 1);
	assert_ptr_equal(hashmap_get(m, "x"), &b);
	assert_null(hashmap_put(m, "", &a)); /* empty key is a key */
	assert_ptr_equal(hashmap_get(m, ""), &a);
	assert_ptr_equal(hashmap_remove(m, "x"), &b);
	assert_null(hashmap_get(m, "x"));
	assert_null(hashmap_remove(m, "x"));
	assert_int_equal(hashmap_count(m), 1);
	/* Keys are copied. */
	char key[8] = "k";
	hashmap_put(m, key, &a);
	key[0] = 'j';
	assert_ptr_equal(hashmap_get(m, "k"), &a);
	assert_null(hashmap_get(m, "j"));
	hashmap_free(m);
	hashmap_free(NULL);
}

static void test_hashmap_many(void **state)
{
	struct hashmap *m = hashmap_new();
	static int vals[NKEYS];
	char key[64];

	for (int i = 0; i < NKEYS; i++) {
		vals[i] = i;
		key_name(key, sizeof(key), i);
		assert_null(hashmap_put(m, key, &vals[i]));
	}
	assert_int_equal(hashmap_count(m), NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		key_name(key, sizeof(key), i);
		assert_ptr_equal(hashmap_get(m, key), &vals[i]);
	}
	/* Remove the odd ones; the even ones must stay reachable past the
	 * tombstones. */
	for (int i = 1; i < NKEYS; i += 2) {
		key_name(key, sizeof(key), i);
		assert_ptr_equal(hashmap_remove(m, key), &vals[i]);
	}
	assert_int_equal(hashmap_count(m), NKEYS / 2);
	for (int i = 0; i < NKEYS; i++) {
		key_name(key, sizeof(key), i);
		if (i % 2)
			assert_null(hashmap_get(m, key));
		else
			assert_ptr_equal(hashmap_get(m, key), &vals[i]);
	}
	/* Reinsert them. */
	for (int i = 1; i < NKEYS; i += 2) {
		key_name(key, sizeof(key), i);
		assert_null(hashmap_put(m, key, &vals[i]));
	}
	assert_int_equal(hashmap_count(m), NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		key_name(key, sizeof(key), i);
		assert_ptr_equal(hashmap_get(m, key), &vals[i]);
	}
	hashmap_free(m);
}

/* Insert/remove churn with a small live set: tombstones must be reclaimed,
 * or the table fills with them and a lookup probes forever. */
static void test_hashmap_tombstone_churn(void **state)
{
	struct hashmap *m = hashmap_new();
	int v = 7;
	char key[64];

	for (int round = 0; round < 20000; round++) {
		key_name(key, sizeof(key), round);
		assert_null(hashmap_put(m, key, &v));
		if (round >= 3) {
			key_name(key, sizeof(key), round - 3);
			assert_ptr_equal(hashmap_remove(m, key), &v);
		}
		assert_null(hashmap_get(m, "absent"));
	}
	assert_int_equal(hashmap_count(m), 3);
	for (int i = 20000 - 3; i < 20000; i++) {
		key_name(key, sizeof(key), i);
		assert_ptr_equal(hashmap_get(m, key), &v);
	}
	hashmap_free(m);
}

static void test_hashmap_iteration(void **state)
{
	struct hashmap *m = hashmap_new();
	static int vals[NKEYS];
	static bool seen[NKEYS];
	const char *k;
	void *val;
	size_t pos = 0, n = 0;
	char key[64];

	assert_int_equal(hashmap_next(m, &pos, &k, &val), 0);
	for (int i = 0; i < NKEYS; i++) {
		vals[i] = i;
		key_name(key, sizeof(key), i);
		hashmap_put(m, key, &vals[i]);
	}
	for (int i = 0; i < NKEYS; i += 3) {
		key_name(key, sizeof(key), i);
		hashmap_remove(m, key);
	}
	/* Every live entry exactly once, with its own key, none removed. */
	pos = 0;
	while (hashmap_next(m, &pos, &k, &val)) {
		int i = *(int *)val;
		assert_false(seen[i]);
		assert_true(i % 3 != 0);
		seen[i] = true;
		key_name(key, sizeof(key), i);
		assert_string_equal(k, key);
		n++;
	}
	assert_int_equal(n, hashmap_count(m));
	/* Removing the entry just returned is allowed. */
	pos = 0;
	n = 0;
	while (hashmap_next(m, &pos, &k, NULL)) {
		char *copy = xstrdup(k);
		assert_non_null(hashmap_remove(m, copy));
		free(copy);
		n++;
	}
	assert_int_equal(n, NKEYS - (NKEYS + 2) / 3);
	assert_int_equal(hashmap_count(m), 0);
	pos = 0;
	assert_int_equal(hashmap_next(m, &pos, NULL, NULL), 0);
	hashmap_free(m);
}

/* ---- base64 ---- */

static const struct {
	const char *plain, *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static int decode(const char *in, unsigned char **out, size_t *len)
{
	return base64_decode(in, strlen(in), out, len);
}

static void test_base64_rfc4648(void **state)
{
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		char *enc = base64_encode(rfc4648[i].plain,
					  strlen(rfc4648[i].plain));
		unsigned char *dec;
		size_t len;

		assert_string_equal(enc, rfc4648[i].b64);
		free(enc);
		assert_int_equal(decode(rfc4648[i].b64, &dec, &len), 0);
		assert_int_equal(len, strlen(rfc4648[i].plain));
		assert_memory_equal(dec, rfc4648[i].plain, len);
		assert_int_equal(dec[len], '\0');
		free(dec);
	}
}

static void test_base64_binary_roundtrip(void **state)
{
	unsigned char data[256];

	for (int i = 0; i < 256; i++)
		data[i] = (unsigned char)(255 - i);
	for (size_t n = 0; n <= sizeof(data); n++) {
		char *enc = base64_encode(data, n);
		unsigned char *dec;
		size_t len;

		assert_int_equal(strlen(enc), 4 * ((n + 2) / 3));
		assert_int_equal(decode(enc, &dec, &len), 0);
		assert_int_equal(len, n);
		assert_memory_equal(dec, data, n);
		free(dec);
		free(enc);
	}
}

static void test_base64_empty_response(void **state)
{
	unsigned char *dec;
	size_t len = 99;

	/* RFC 6120 §6.4.2: "=" is an empty response. */
	assert_int_equal(decode("=", &dec, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(dec[0], '\0');
	free(dec);
	len = 99;
	assert_int_equal(base64_decode("", 0, &dec, &len), 0);
	assert_int_equal(len, 0);
	free(dec);
}

static void test_base64_rejects(void **state)
{
	static const char *const bad[] = {
		/* characters outside the alphabet */
		"Zm9v!A==", "Zm9 v", "Zm9v\n", " Zm9v", "Zm9-", "Zm9_", "Zm9v\r\n",
		/* length not a multiple of 4 / missing padding */
		"Z", "Zg", "Zg=", "Zm8", "Zm9vY", "==", "Zg===",
		/* padding in the wrong place */
		"====", "Z===", "=Zg=", "Zg=a", "Z=g=", "Zm=v", "Zg==Zm9v",
		"Zm8=Zm9v", "=Zm9",
		/* non-canonical: bits set under the padding */
		"Zh==", "Zm9=", "Zm9vYh==", "Zm9vYmF=",
	};
	unsigned char *dec = NULL;
	size_t len = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode(bad[i], &dec, &len) != -1)
			fail_msg("base64_decode accepted '%s'", bad[i]);
	}
	/* An embedded NUL counted in len is not the end. */
	assert_int_equal(base64_decode("Zg==\0\0\0\0", 8, &dec, &len), -1);
	assert_int_equal(base64_decode("Zm\09v", 5, &dec, &len), -1);
	assert_int_equal(base64_decode("Zm9v\0AAA", 8, &dec, &len), -1);
}

/* ---- workq ---- */

#define NJOBS 200

struct job_state {
	pthread_t loop_thread;
	bool in_submit;
	unsigned done_count;
	int order[NJOBS * 2];
	unsigned nsubmitted;
	struct workq *q;
	bool resubmit;
};

struct job {
	struct job_state *st;
	int index;
	bool worked;
	pthread_t worker;
};

static void job_work(void *arg)
{
	struct job *j = arg;

	j->worker = pthread_self();
	j->worked = true;
	/* Now and then slow enough that submissions overlap completions. */
	if (j->index % 16 == 0)
		usleep(200);
}

static void job_done(void *arg)
{
	struct job *j = arg;
	struct job_state *st = j->st;

	assert_true(j->worked);
	assert_false(st->in_submit);
	assert_true(pthread_equal(pthread_self(), st->loop_thread));
	assert_false(pthread_equal(j->worker, st->loop_thread));
	st->order[st->done_count++] = j->index;
}

static void submit(struct job_state *st, struct job *j)
{
	st->in_submit = true;
	workq_submit(st->q, job_work, job_done, j);
	st->in_submit = false;
	st->nsubmitted++;
}

static struct job *make_jobs(struct job_state *st, int n)
{
	struct job *jobs = xcalloc((size_t)n, sizeof(*jobs));

	for (int i = 0; i < n; i++) {
		jobs[i].st = st;
		jobs[i].index = i;
	}
	return jobs;
}

static void test_workq_loop_in_order(void **state)
{
	struct event_base *base = event_base_new();
	struct job_state st = { .loop_thread = pthread_self() };
	struct job *jobs = make_jobs(&st, NJOBS);

	st.q = workq_new(base, 1);
	for (int i = 0; i < NJOBS; i++) {
		submit(&st, &jobs[i]);
		/* Let earlier jobs finish while we keep submitting: their
		 * completions must wait for the loop, not run in submit. */
		if (i % 50 == 0)
			usleep(2000);
	}
	assert_int_equal(st.done_count, 0);
	while (st.done_count < NJOBS)
		assert_int_not_equal(event_base_loop(base, EVLOOP_ONCE), -1);
	assert_int_equal(st.done_count, NJOBS);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(st.order[i], i);
	workq_free(st.q);
	assert_int_equal(st.done_count, NJOBS);
	event_base_free(base);
	free(jobs);
}

static void test_workq_drain_in_order(void **state)
{
	struct event_base *base = event_base_new();
	struct job_state st = { .loop_thread = pthread_self() };
	struct job *jobs = make_jobs(&st, NJOBS);

	st.q = workq_new(base, 1);
	for (int i = 0; i < NJOBS; i++)
		submit(&st, &jobs[i]);
	workq_drain(st.q);
	assert_int_equal(st.done_count, NJOBS);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(st.order[i], i);
	/* The loop may still see the wake-up; nothing runs twice. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(st.done_count, NJOBS);
	workq_free(st.q);
	event_base_free(base);
	free(jobs);
}

static void test_workq_many_threads(void **state)
{
	struct event_base *base = event_base_new();
	struct job_state st = { .loop_thread = pthread_self() };
	struct job *jobs = make_jobs(&st, NJOBS);
	bool seen[NJOBS] = { false };

	st.q = workq_new(base, 4);
	for (int i = 0; i < NJOBS; i++)
		submit(&st, &jobs[i]);
	while (st.done_count < NJOBS / 2)
		event_base_loop(base, EVLOOP_ONCE);
	workq_drain(st.q);
	assert_int_equal(st.done_count, NJOBS);
	for (int i = 0; i < NJOBS; i++) {
		assert_false(seen[st.order[i]]);
		seen[st.order[i]] = true;
	}
	workq_free(st.q);
	event_base_free(base);
	free(jobs);
}

static unsigned null_done_work;

static void count_work(void *arg)
{
	__atomic_add_fetch(&null_done_work, 1, __ATOMIC_SEQ_CST);
}

/* done may be NULL; workq_free drains what is still queued. */
static void test_workq_free_drains(void **state)
{
	struct event_base *base = event_base_new();
	struct workq *q = workq_new(base, 2);

	null_done_work = 0;
	for (int i = 0; i < 100; i++)
		workq_submit(q, count_work, NULL, NULL);
	workq_free(q);
	assert_int_equal(null_done_work, 100);
	event_base_free(base);
}

/* wait_idle: every job has run, no completion has (they wait for the
 * loop, which is what makes it safe to call from inside a handler). */
static void test_workq_wait_idle(void **state)
{
	struct event_base *base = event_base_new();
	struct job_state st = { .loop_thread = pthread_self() };
	struct job *jobs = make_jobs(&st, NJOBS);

	st.q = workq_new(base, 1);
	for (int i = 0; i < NJOBS; i++)
		submit(&st, &jobs[i]);
	workq_wait_idle(st.q);
	for (int i = 0; i < NJOBS; i++)
		assert_true(jobs[i].worked);
	assert_int_equal(st.done_count, 0);
	while (st.done_count < NJOBS)
		assert_int_not_equal(event_base_loop(base, EVLOOP_ONCE), -1);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(st.order[i], i);
	workq_wait_idle(st.q);  /* idle already: returns at once */
	workq_free(st.q);
	event_base_free(base);
	free(jobs);
}

/* A completion that submits more work: drain runs until quiet. */
static void chain_done(void *arg);

static void chain_done(void *arg)
{
	struct job *j = arg;
	struct job_state *st = j->st;

	st->order[st->done_count++] = j->index;
	if (j->index + 1 < NJOBS)
		workq_submit(st->q, job_work, chain_done, j + 1);
}

static void test_workq_drain_chained(void **state)
{
	struct event_base *base = event_base_new();
	struct job_state st = { .loop_thread = pthread_self() };
	struct job *jobs = make_jobs(&st, NJOBS);

	st.q = workq_new(base, 3);
	workq_submit(st.q, job_work, chain_done, &jobs[0]);
	workq_drain(st.q);
	assert_int_equal(st.done_count, NJOBS);
	for (int i = 0; i < NJOBS; i++)
		assert_int_equal(st.order[i], i);
	workq_free(st.q);
	event_base_free(base);
	free(jobs);
}

/* ---- fanout ---- */

struct fan_ctx {
	unsigned *hits;          /* per task: times run */
	pthread_t *ran_on;       /* per task: thread that ran it */
	unsigned slow_every;     /* tasks i % slow_every == 0 sleep a little */
};

static void fan_task(void *arg, size_t i)
{
	struct fan_ctx *c = arg;

	if (c->slow_every && i % c->slow_every == 0)
		usleep(200);
	c->hits[i]++;          /* plain write: fanout_next must publish it */
	c->ran_on[i] = pthread_self();
}

/* Every task runs exactly once and each index comes back exactly once,
 * for several rounds on one pool, with and without helpers. */
static void fan_rounds(unsigned nhelpers, bool *helped_r)
{
	struct fanout *f = fanout_new(nhelpers);
	size_t sizes[] = { 0, 1, 7, 300, 2000 };

	*helped_r = false;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		struct fan_ctx c = {
			.hits = calloc(n + 1, sizeof(unsigned)),
			.ran_on = calloc(n + 1, sizeof(pthread_t)),
			.slow_every = 5,
		};
		bool *back = calloc(n + 1, sizeof(bool));
		ssize_t i;
		size_t got = 0;

		fanout_begin(f, n, fan_task, &c);
		while ((i = fanout_next(f)) >= 0) {
			assert_true((size_t)i < n);
			assert_false(back[i]);
			back[i] = true;
			assert_int_equal(c.hits[i], 1);
			if (!pthread_equal(c.ran_on[i], pthread_self()))
				*helped_r = true;
			got++;
		}
		assert_int_equal(got, n);
		assert_int_equal(fanout_next(f), -1);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(c.hits[k], 1);
		free(back);
		free(c.hits);
		free(c.ran_on);
	}
	fanout_free(f);
}

static void test_fanout_caller_alone(void **state)
{
	bool helped;

	(void)state;
	fan_rounds(0, &helped);
	assert_false(helped);
}

static void test_fanout_with_helpers(void **state)
{
	bool helped;

	(void)state;
	fan_rounds(3, &helped);
	/* 2000 tasks, a fifth of them sleeping: helpers take some */
	assert_true(helped);
}

static void test_fanout_default_helpers(void **state)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	assert_int_equal(fanout_default_helpers(0), 0);
	assert_true(fanout_default_helpers(64) <= 64);
	assert_int_equal(fanout_default_helpers(64),
			 cpus <= 1 ? 0 : (unsigned)(cpus - 1 < 64 ? cpus - 1 : 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_alignment_and_contents),
		cmocka_unit_test(test_arena_large),
		cmocka_unit_test(test_arena_strdup),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_hashmap_basic),
		cmocka_unit_test(test_hashmap_many),
		cmocka_unit_test(test_hashmap_tombstone_churn),
		cmocka_unit_test(test_hashmap_iteration),
		cmocka_unit_test(test_base64_rfc4648),
		cmocka_unit_test(test_base64_binary_roundtrip),
		cmocka_unit_test(test_base64_empty_response),
		cmocka_unit_test(test_base64_rejects),
		cmocka_unit_test(test_workq_loop_in_order),
		cmocka_unit_test(test_workq_drain_in_order),
		cmocka_unit_test(test_workq_many_threads),
		cmocka_unit_test(test_workq_free_drains),
		cmocka_unit_test(test_workq_wait_idle),
		cmocka_unit_test(test_workq_drain_chained),
		cmocka_unit_test(test_fanout_caller_alone),
		cmocka_unit_test(test_fanout_with_helpers),
		cmocka_unit_test(test_fanout_default_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
