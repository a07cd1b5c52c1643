/* Fan-out: a thread runs n independent tasks on a few helper threads and
 * takes their results back one at a time, in the order they finish, so it
 * can use each result (write it to disk, say) while the others are still
 * being computed. The calling thread helps: when no result is ready and a
 * task is still unclaimed it runs that task itself, so the same code works
 * with no helper at all and never waits on an idle helper.
 *
 * One caller at a time per pool (the pool is not a general work queue):
 * fanout_begin, then fanout_next until it returns -1. */
#ifndef ROOST_UTIL_FANOUT_H
#define ROOST_UTIL_FANOUT_H

#include <stddef.h>
#include <sys/types.h>

struct fanout;

/* Runs task i (0 <= i < n) of the current round. Any thread. */
typedef void fanout_fn(void *ctx, size_t i);

/* nhelpers may be 0 (everything then runs on the caller). */
struct fanout *fanout_new(unsigned nhelpers);
/* Helper threads the host can use beside the caller: online CPUs - 1,
 * between 0 and max. */
unsigned fanout_default_helpers(unsigned max);
/* Starts a round of n tasks. The previous round must be finished. */
void fanout_begin(struct fanout *f, size_t n, fanout_fn *fn, void *ctx);
/* The index of a finished task not returned before, blocking (or running
 * a task) until one is; -1 once all n were returned. Every memory write
 * the task made is visible to the caller when its index is returned. */
ssize_t fanout_next(struct fanout *f);
/* Stops the helpers and frees the pool (no round may be running). */
void fanout_free(struct fanout *f);

#endif
