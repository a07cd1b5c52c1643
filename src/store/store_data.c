/* Per-user data requests (store.h): each is copied into a job that runs
 * the backend's operation on the store's worker, in order with every
 * other request, and calls back on the loop. */
#include "store/store-private.h"

#include <stdlib.h>
#include <string.h>

#include "seal/seal.h"
#include "util/arena.h"
#include "util/xalloc.h"

enum data_op {
	DATA_GET, DATA_LIST, DATA_PUT, DATA_DELETE, DATA_SPACES, DATA_SCAN
};

struct data_job {
	struct store *st;
	enum data_op op;
	store_data_cb *items_cb;
	store_done_cb *done_cb;
	void *ctx;
	struct arena *pool;    /* request copies and results */

	const char *owner, *space, *key;
	void *value;
	size_t len, max;
	int64_t stamp_us;

	int result;
	const char *error;
	struct store_data_item *items;
	size_t n;
};

static struct data_job *data_job_new(struct store *st, enum data_op op,
				     const char *owner, const char *space,
				     const char *key, void *ctx)
{
	struct data_job *job = xcalloc(1, sizeof(*job));

	job->st = st;
	job->op = op;
	job->ctx = ctx;
	job->pool = arena_new(512);
	job->owner = owner != NULL ? arena_strdup(job->pool, owner) : NULL;
	job->space = space != NULL ? arena_strdup(job->pool, space) : NULL;
	job->key = key != NULL ? arena_strdup(job->pool, key) : NULL;
	return job;
}

static void data_work(void *arg)
{
	struct data_job *job = arg;
	struct store *st = job->st;
	const struct store_backend *be = st->backend;

	switch (job->op) {
	case DATA_GET:
		job->result = be->data_get(st, job->owner, job->space, job->key,
					   job->pool, &job->items, &job->n,
					   &job->error);
		break;
	case DATA_LIST:
		job->result = be->data_list(st, job->owner, job->space,
					    job->max, job->pool, &job->items,
					    &job->n, &job->error);
		break;
	case DATA_PUT:
		job->result = be->data_put(st, job->owner, job->space,
					   job->key, job->value, job->len,
					   job->stamp_us, job->max,
					   &job->error);
		break;
	case DATA_DELETE:
		job->result = be->data_delete(st, job->owner, job->space,
					      job->key, &job->error);
		break;
	case DATA_SPACES:
		job->result = be->data_spaces(st, job->owner, job->space,
					      job->pool, &job->items, &job->n,
					      &job->error);
		break;
	case DATA_SCAN:
		job->result = be->data_scan(st, job->space, job->pool,
					    &job->items, &job->n, &job->error);
		break;
	}
}

static void data_done(void *arg)
{
	struct data_job *job = arg;

	if (job->items_cb != NULL)
		job->items_cb(job->ctx, job->result < 0 ? -1 : (int)job->n,
			      job->result < 0 ? NULL : job->items,
			      job->result < 0 ? 0 : job->n);
	else if (job->done_cb != NULL)
		job->done_cb(job->ctx, job->result, job->error);
	arena_free(job->pool);
	free(job);
}

static void data_submit(struct data_job *job)
{
	store_submit(job->st, data_work, data_done, job);
}

void store_data_get(struct store *st, const char *owner, const char *space,
		    const char *key, store_data_cb *cb, void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_GET, owner, space, key,
					    ctx);

	job->items_cb = cb;
	data_submit(job);
}

void store_data_list(struct store *st, const char *owner, const char *space,
		     size_t max, store_data_cb *cb, void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_LIST, owner, space, NULL,
					    ctx);

	job->items_cb = cb;
	job->max = max;
	data_submit(job);
}

void store_data_put(struct store *st, const char *owner, const char *space,
		    const char *key, const void *value, size_t len,
		    size_t max_items, store_done_cb *cb, void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_PUT, owner, space, key,
					    ctx);

	job->done_cb = cb;
	job->value = arena_alloc(job->pool, len + 1);
	if (len > 0)
		memcpy(job->value, value, len);
	job->len = len;
	job->max = max_items;
	job->stamp_us = seal_now_us();
	data_submit(job);
}

void store_data_delete(struct store *st, const char *owner, const char *space,
		       const char *key, store_done_cb *cb, void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_DELETE, owner, space, key,
					    ctx);

	job->done_cb = cb;
	data_submit(job);
}

void store_data_spaces(struct store *st, const char *owner,
		       const char *prefix, store_data_cb *cb, void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_SPACES, owner,
					    prefix != NULL ? prefix : "", NULL,
					    ctx);

	job->items_cb = cb;
	data_submit(job);
}

void store_data_scan(struct store *st, const char *space, store_data_cb *cb,
		     void *ctx)
{
	struct data_job *job = data_job_new(st, DATA_SCAN, NULL, space, NULL,
					    ctx);

	job->items_cb = cb;
	data_submit(job);
}
