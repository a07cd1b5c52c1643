/* The asynchronous store: each request is copied into a job that runs the
 * backend's synchronous operation on the store's worker thread; the job's
 * completion calls the caller back on the loop thread. With one worker,
 * jobs run and complete in submission order, which is what gives store.h
 * its read-after-write promise without any locking here. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util/arena.h"
#include "util/fanout.h"
#include "util/workq.h"
#include "util/xalloc.h"

enum store_op {
	STORE_OP_USER_GET,
	STORE_OP_USER_CREATE,
	STORE_OP_USER_SET_CREDS,
	STORE_OP_USER_DELETE,
	STORE_OP_USER_LIST,
	STORE_OP_ROSTER_GET,
	STORE_OP_ROSTER_PUT,
	STORE_OP_ROSTER_DELETE,
};

struct store_job {
	struct store *st;
	enum store_op op;
	union {
		store_done_cb *done;
		store_user_cb *user;
		store_list_cb *list;
		store_roster_cb *roster;
	} cb;
	void *ctx;
	/* Copies of the request's strings and the backend's results: one
	 * free when the callback has run. */
	struct arena *pool;

	/* request */
	const char *a, *b;          /* local+domain, owner+contact, domain */
	struct store_user user;     /* also the user_get result */
	struct roster_item item;

	/* result */
	int result;
	const char *error;
	const char *const *jids;
	const struct roster_item *items;
	size_t n;
	uint64_t version;
};

static const char *pool_strdup(struct arena *pool, const char *s)
{
	return s ? arena_strdup(pool, s) : NULL;
}

static struct store_job *job_new(struct store *st, enum store_op op,
				 void *ctx)
{
	struct store_job *job = xcalloc(1, sizeof(*job));

	job->st = st;
	job->op = op;
	job->ctx = ctx;
	/* Most requests hold two short strings: keep the first block small. */
	job->pool = arena_new(256);
	return job;
}

static void job_free(struct store_job *job)
{
	/* The keys derive from the password; do not leave them in freed
	 * memory. */
	OPENSSL_cleanse(job->user.creds, sizeof(job->user.creds));
	arena_free(job->pool);
	free(job);
}

static void job_work(void *arg)
{
	struct store_job *job = arg;
	struct store *st = job->st;
	const struct store_backend *be = st->backend;
	const char *error = NULL;
	int ret = -1;

	switch (job->op) {
	case STORE_OP_USER_GET:
		ret = be->user_get(st, job->a, job->b, job->pool, &job->user,
				   &error);
		break;
	case STORE_OP_USER_CREATE:
		ret = be->user_create(st, &job->user, &error);
		break;
	case STORE_OP_USER_SET_CREDS:
		ret = be->user_set_creds(st, &job->user, &error);
		break;
	case STORE_OP_USER_DELETE:
		ret = be->user_delete(st, job->a, job->b, &error);
		break;
	case STORE_OP_USER_LIST:
		ret = be->user_list(st, job->a, job->pool, &job->jids, &job->n,
				    &error);
		break;
	case STORE_OP_ROSTER_GET:
		ret = be->roster_get(st, job->a, job->pool, &job->items,
				     &job->n, &job->version, &error);
		break;
	case STORE_OP_ROSTER_PUT:
		ret = be->roster_put(st, job->a, &job->item, &job->version,
				     &error);
		break;
	case STORE_OP_ROSTER_DELETE:
		ret = be->roster_delete(st, job->a, job->b, &job->version,
					&error);
		break;
	}
	job->result = ret;
	job->error = ret < 0 ? (error ? error : "store error") : NULL;
}

static void job_done(void *arg)
{
	struct store_job *job = arg;

	/* A write whose outcome the caller does not need may pass no
	 * callback. All members of cb are function pointers. */
	if (job->cb.done == NULL)
		goto out;
	switch (job->op) {
	case STORE_OP_USER_GET:
		job->cb.user(job->ctx, job->result,
			     job->result == 1 ? &job->user : NULL);
		break;
	case STORE_OP_USER_CREATE:
	case STORE_OP_USER_SET_CREDS:
	case STORE_OP_USER_DELETE:
		job->cb.done(job->ctx, job->result, job->error);
		break;
	case STORE_OP_USER_LIST:
		if (job->result < 0)
			job->cb.list(job->ctx, job->result, NULL, 0);
		else
			job->cb.list(job->ctx, job->result, job->jids, job->n);
		break;
	case STORE_OP_ROSTER_GET:
	case STORE_OP_ROSTER_PUT:
	case STORE_OP_ROSTER_DELETE:
		if (job->result < 0)
			job->cb.roster(job->ctx, job->result, NULL, 0, 0);
		else
			job->cb.roster(job->ctx, job->result, job->items,
				       job->n, job->version);
		break;
	}
out:
	job_free(job);
}

void store_submit(struct store *st, void (*work)(void *arg),
		  void (*done)(void *arg), void *arg)
{
	workq_submit(st->wq, work, done, arg);
}

static void job_submit(struct store_job *job)
{
	workq_submit(job->st->wq, job_work, job_done, job);
}

static struct store *store_open_backend(const struct store_backend *be,
					struct event_base *base,
					const char *data_dir, char **error_r)
{
	struct store *st = be->open(data_dir, error_r);

	if (st == NULL)
		return NULL;
	st->backend = be;
	st->base = base;
	st->wq = workq_new(base, 1);
	/* Sealing a deposit batch is CPU work the store's thread need not do
	 * alone (store_archive.c); two helpers at most, beside it. */
	st->sealers = fanout_new(fanout_default_helpers(2));
	return st;
}

struct store *store_open_sqlite(struct event_base *base, const char *data_dir,
				char **error_r)
{
	return store_open_backend(&store_backend_sqlite, base, data_dir,
				  error_r);
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	/* workq_free drains first, so every callback has run before the
	 * backend goes away, and the worker has been joined. */
	workq_free(st->wq);
	st->wq = NULL;
	fanout_free(st->sealers);
	st->sealers = NULL;
	store_offline_cleanup(st);
	st->backend->close(st);
}

void store_flush(struct store *st)
{
	workq_drain(st->wq);
}

void store_wait_idle(struct store *st)
{
	workq_wait_idle(st->wq);
}

static void copy_user(struct store_job *job, const struct store_user *user)
{
	job->user.local = pool_strdup(job->pool, user->local);
	job->user.domain = pool_strdup(job->pool, user->domain);
	memcpy(job->user.creds, user->creds, sizeof(job->user.creds));
	if (user->keyring != NULL) {
		void *kr = arena_alloc(job->pool, user->keyring_len + 1);
		memcpy(kr, user->keyring, user->keyring_len);
		job->user.keyring = kr;
		job->user.keyring_len = user->keyring_len;
	}
}

void store_user_get(struct store *st, const char *local, const char *domain,
		    store_user_cb *cb, void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_USER_GET, ctx);

	job->cb.user = cb;
	job->a = pool_strdup(job->pool, local);
	job->b = pool_strdup(job->pool, domain);
	job_submit(job);
}

void store_user_create(struct store *st, const struct store_user *user,
		       store_done_cb *cb, void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_USER_CREATE, ctx);

	job->cb.done = cb;
	copy_user(job, user);
	job_submit(job);
}

void store_user_set_creds(struct store *st, const struct store_user *user,
			  store_done_cb *cb, void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_USER_SET_CREDS, ctx);

	job->cb.done = cb;
	copy_user(job, user);
	job_submit(job);
}

void store_user_delete(struct store *st, const char *local,
		       const char *domain, store_done_cb *cb, void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_USER_DELETE, ctx);

	job->cb.done = cb;
	job->a = pool_strdup(job->pool, local);
	job->b = pool_strdup(job->pool, domain);
	job_submit(job);
}

void store_user_list(struct store *st, const char *domain, store_list_cb *cb,
		     void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_USER_LIST, ctx);

	job->cb.list = cb;
	job->a = pool_strdup(job->pool, domain);
	job_submit(job);
}

void store_roster_get(struct store *st, const char *owner, store_roster_cb *cb,
		      void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_ROSTER_GET, ctx);

	job->cb.roster = cb;
	job->a = pool_strdup(job->pool, owner);
	job_submit(job);
}

void store_roster_put(struct store *st, const char *owner,
		      const struct roster_item *item, store_roster_cb *cb,
		      void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_ROSTER_PUT, ctx);
	const char **groups = NULL;

	job->cb.roster = cb;
	job->a = pool_strdup(job->pool, owner);
	job->item = *item;
	job->item.jid = pool_strdup(job->pool, item->jid);
	job->item.name = pool_strdup(job->pool, item->name);
	if (item->ngroups > 0) {
		groups = arena_alloc(job->pool,
				     item->ngroups * sizeof(*groups));
		for (size_t i = 0; i < item->ngroups; i++)
			groups[i] = arena_strdup(job->pool, item->groups[i]);
	}
	job->item.groups = groups;
	job_submit(job);
}

void store_roster_delete(struct store *st, const char *owner,
			 const char *contact, store_roster_cb *cb, void *ctx)
{
	struct store_job *job = job_new(st, STORE_OP_ROSTER_DELETE, ctx);

	job->cb.roster = cb;
	job->a = pool_strdup(job->pool, owner);
	job->b = pool_strdup(job->pool, contact);
	job_submit(job);
}
