/* Slows down password guessing (issue 2, "repeated failures slow down per
 * account and per address"): each failure doubles the delay before the
 * next failure answer for that account and that address, up to a cap; the
 * count is forgotten after a quiet period (the window). After max_failures
 * within the window an address or account is refused outright (issue 6):
 * its attempts are answered with temporary-auth-failure without looking
 * at the password, until the window passes without a failure. */
#ifndef ROOST_CORE_AUTH_THROTTLE_H
#define ROOST_CORE_AUTH_THROTTLE_H

#include <stdbool.h>

struct auth_throttle;

/* base_ms: delay after the first failure; max_ms: the cap; max_failures:
 * failures before refusal (0 = never refuse); window_s: seconds of quiet
 * after which failures are forgotten. */
struct auth_throttle *auth_throttle_new(unsigned base_ms, unsigned max_ms,
					unsigned max_failures,
					unsigned window_s);
void auth_throttle_free(struct auth_throttle *t);

/* Records a failure and returns the delay (ms) to wait before answering
 * it. account may be NULL (unknown or unparsable user). */
unsigned auth_throttle_failure(struct auth_throttle *t, const char *address,
			       const char *account);
/* True if attempts from `address` or (when not NULL) for `account` are
 * refused now. A refused attempt is not a failure: it does not extend the
 * refusal. */
bool auth_throttle_refused(struct auth_throttle *t, const char *address,
			   const char *account);
/* A success clears the account's count (not the address's: one good
 * password must not unlock guessing at other accounts). */
void auth_throttle_success(struct auth_throttle *t, const char *account);

#endif
