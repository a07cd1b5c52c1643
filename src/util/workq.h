/* A pool of worker threads for blocking work (disk, key derivation). Work
 * runs on a worker; its completion runs later on the event loop thread. */
#ifndef ROOST_UTIL_WORKQ_H
#define ROOST_UTIL_WORKQ_H

struct event_base;
struct workq;

typedef void workq_fn(void *arg);

/* nthreads >= 1. The pool registers an event on `base` to run completions. */
struct workq *workq_new(struct event_base *base, unsigned nthreads);
/* Queues work(arg) for a worker thread, then done(arg) on the loop thread.
 * done is never called from inside workq_submit. Jobs start in submission
 * order; with nthreads == 1 they also finish in that order. done may be
 * NULL. */
void workq_submit(struct workq *q, workq_fn *work, workq_fn *done, void *arg);
/* Blocks until every submitted job has run, then runs the pending
 * completions on the calling (loop) thread. Used at shutdown and by tools. */
void workq_drain(struct workq *q);
/* Blocks the calling thread until no job is queued or running, without
 * running completions (they run at the loop's next turn, as usual): for
 * back-pressure, a producer that outruns the workers waits for them
 * instead of queueing without bound. */
void workq_wait_idle(struct workq *q);
/* Drains, stops the threads and frees the pool. */
void workq_free(struct workq *q);

#endif
