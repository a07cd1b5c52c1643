/* Slows down password guessing (issue 2, "repeated failures slow down per
 * account and per address"): each failure doubles the delay before the
 * next failure answer for that account and that address, up to a cap; the
 * count decays after a quiet period. */
#ifndef ROOST_CORE_AUTH_THROTTLE_H
#define ROOST_CORE_AUTH_THROTTLE_H

struct auth_throttle;

/* base_ms: delay after the first failure; max_ms: the cap. */
struct auth_throttle *auth_throttle_new(unsigned base_ms, unsigned max_ms);
void auth_throttle_free(struct auth_throttle *t);

/* Records a failure and returns the delay (ms) to wait before answering
 * it. account may be NULL (unknown or unparsable user). */
unsigned auth_throttle_failure(struct auth_throttle *t, const char *address,
			       const char *account);
/* A success clears the account's count (not the address's: one good
 * password must not unlock guessing at other accounts). */
void auth_throttle_success(struct auth_throttle *t, const char *account);

#endif
