#include "util/workq.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xalloc.h"

struct job {
	struct job *next;
	workq_fn *work, *done;
	void *arg;
};

struct jobq {
	struct job *head, *tail;
};

struct workq {
	pthread_mutex_t lock;
	pthread_cond_t more_work, all_done;
	struct jobq todo, finished;
	unsigned pending; /* submitted, not yet finished */
	int stopping;
	unsigned nthreads;
	pthread_t *threads;
	int efd;
	struct event *ev;
};

static void jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *jobq_take_all(struct jobq *q)
{
	struct job *j = q->head;
	q->head = q->tail = NULL;
	return j;
}

static void *worker_main(void *arg)
{
	struct workq *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct job *j;
		while (q->todo.head == NULL && !q->stopping)
			pthread_cond_wait(&q->more_work, &q->lock);
		if (q->todo.head == NULL)
			break;
		j = q->todo.head;
		q->todo.head = j->next;
		if (q->todo.head == NULL)
			q->todo.tail = NULL;
		pthread_mutex_unlock(&q->lock);

		if (j->work)
			j->work(j->arg);

		pthread_mutex_lock(&q->lock);
		jobq_push(&q->finished, j);
		q->pending--;
		if (q->pending == 0)
			pthread_cond_broadcast(&q->all_done);
		uint64_t one = 1;
		if (write(q->efd, &one, sizeof(one)) < 0) {
			/* The counter cannot overflow in practice; the
			 * completion is still queued and runs on the
			 * next wake-up. */
		}
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void run_completions(struct workq *q)
{
	struct job *j, *next;

	pthread_mutex_lock(&q->lock);
	j = jobq_take_all(&q->finished);
	pthread_mutex_unlock(&q->lock);
	for (; j != NULL; j = next) {
		next = j->next;
		if (j->done)
			j->done(j->arg);
		free(j);
	}
}

static void on_wakeup(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: another wake-up already drained it. */
	}
	run_completions(arg);
}

struct workq *workq_new(struct event_base *base, unsigned nthreads)
{
	struct workq *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->more_work, NULL);
	pthread_cond_init(&q->all_done, NULL);
	q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->efd < 0) {
		log_error("eventfd: cannot create the worker wake-up");
		abort();
	}
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, on_wakeup, q);
	event_add(q->ev, NULL);
	q->nthreads = nthreads ? nthreads : 1;
	q->threads = xcalloc(q->nthreads, sizeof(*q->threads));
	for (unsigned i = 0; i < q->nthreads; i++)
		if (pthread_create(&q->threads[i], NULL, worker_main, q) != 0) {
			log_error("pthread_create failed");
			abort();
		}
	return q;
}

void workq_submit(struct workq *q, workq_fn *work, workq_fn *done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&q->lock);
	jobq_push(&q->todo, j);
	q->pending++;
	pthread_cond_signal(&q->more_work);
	pthread_mutex_unlock(&q->lock);
}

void workq_drain(struct workq *q)
{
	/* A completion may submit more work, so loop until quiet. */
	for (;;) {
		pthread_mutex_lock(&q->lock);
		while (q->pending > 0)
			pthread_cond_wait(&q->all_done, &q->lock);
		int more = q->finished.head != NULL;
		pthread_mutex_unlock(&q->lock);
		if (!more)
			break;
		run_completions(q);
	}
}

void workq_wait_idle(struct workq *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->pending > 0)
		pthread_cond_wait(&q->all_done, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void workq_free(struct workq *q)
{
	if (q == NULL)
		return;
	workq_drain(q);
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_broadcast(&q->more_work);
	pthread_mutex_unlock(&q->lock);
	for (unsigned i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	event_free(q->ev);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->more_work);
	pthread_cond_destroy(&q->all_done);
	free(q->threads);
	free(q);
}
