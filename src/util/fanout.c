#include "util/fanout.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/xalloc.h"

struct fanout {
	pthread_mutex_t lock;
	pthread_cond_t work, done; /* helpers wait on work, the caller on done */
	fanout_fn *fn;
	void *ctx;
	size_t n;          /* tasks in this round */
	size_t claimed;    /* tasks 0..claimed-1 were taken by some thread */
	size_t returned;   /* indices handed back by fanout_next */
	/* finished, not yet returned: a ring of n slots is never full, since
	 * at most n tasks finish per round */
	size_t *ready;
	size_t ready_cap, ready_head, ready_len;
	bool stopping;
	unsigned nhelpers;
	pthread_t *threads;
};

static void ready_push(struct fanout *f, size_t i)
{
	f->ready[(f->ready_head + f->ready_len) % f->ready_cap] = i;
	f->ready_len++;
}

static size_t ready_pop(struct fanout *f)
{
	size_t i = f->ready[f->ready_head];

	f->ready_head = (f->ready_head + 1) % f->ready_cap;
	f->ready_len--;
	return i;
}

/* Runs one unclaimed task with the lock released; lock held on return. */
static size_t run_one(struct fanout *f)
{
	size_t i = f->claimed++;

	pthread_mutex_unlock(&f->lock);
	f->fn(f->ctx, i);
	pthread_mutex_lock(&f->lock);
	return i;
}

static void *helper_main(void *arg)
{
	struct fanout *f = arg;

	pthread_mutex_lock(&f->lock);
	for (;;) {
		while (f->claimed >= f->n && !f->stopping)
			pthread_cond_wait(&f->work, &f->lock);
		if (f->stopping)
			break;
		ready_push(f, run_one(f));
		pthread_cond_signal(&f->done);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

struct fanout *fanout_new(unsigned nhelpers)
{
	struct fanout *f = xcalloc(1, sizeof(*f));

	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->work, NULL);
	pthread_cond_init(&f->done, NULL);
	f->threads = xcalloc(nhelpers ? nhelpers : 1, sizeof(*f->threads));
	for (unsigned k = 0; k < nhelpers; k++) {
		if (pthread_create(&f->threads[k], NULL, helper_main, f) != 0)
			break; /* fewer helpers only means less parallelism */
		f->nhelpers++;
	}
	return f;
}

unsigned fanout_default_helpers(unsigned max)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (cpus <= 1)
		return 0;
	return (unsigned)(cpus - 1) < max ? (unsigned)(cpus - 1) : max;
}

void fanout_begin(struct fanout *f, size_t n, fanout_fn *fn, void *ctx)
{
	pthread_mutex_lock(&f->lock);
	if (n > f->ready_cap) {
		free(f->ready);
		f->ready = xcalloc(n, sizeof(*f->ready));
		f->ready_cap = n;
	}
	f->fn = fn;
	f->ctx = ctx;
	f->n = n;
	f->claimed = f->returned = 0;
	f->ready_head = f->ready_len = 0;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->lock);
}

ssize_t fanout_next(struct fanout *f)
{
	ssize_t i = -1;

	pthread_mutex_lock(&f->lock);
	while (f->returned < f->n) {
		if (f->ready_len > 0) {
			i = (ssize_t)ready_pop(f);
			break;
		}
		if (f->claimed < f->n) {
			i = (ssize_t)run_one(f);
			break;
		}
		pthread_cond_wait(&f->done, &f->lock);
	}
	if (i >= 0)
		f->returned++;
	pthread_mutex_unlock(&f->lock);
	return i;
}

void fanout_free(struct fanout *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = true;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->lock);
	for (unsigned k = 0; k < f->nhelpers; k++)
		pthread_join(f->threads[k], NULL);
	pthread_cond_destroy(&f->work);
	pthread_cond_destroy(&f->done);
	pthread_mutex_destroy(&f->lock);
	free(f->threads);
	free(f->ready);
	free(f);
}
