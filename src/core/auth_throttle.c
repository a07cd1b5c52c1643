#include "core/auth_throttle.h"

#include <stdlib.h>
#include <time.h>

#include "util/hashmap.h"
#include "util/xalloc.h"

/* Entries are swept when the tables grow past this, to bound memory under
 * a flood of distinct addresses or names. */
#define SWEEP_AT 10000

struct strike {
	unsigned count;
	time_t last;
};

struct auth_throttle {
	unsigned base_ms, max_ms;
	unsigned max_failures;
	time_t window;
	struct hashmap *by_address, *by_account;
};

struct auth_throttle *auth_throttle_new(unsigned base_ms, unsigned max_ms,
					unsigned max_failures,
					unsigned window_s)
{
	struct auth_throttle *t = xcalloc(1, sizeof(*t));

	t->base_ms = base_ms;
	t->max_ms = max_ms;
	t->max_failures = max_failures;
	t->window = (time_t)window_s;
	t->by_address = hashmap_new();
	t->by_account = hashmap_new();
	return t;
}

static void free_all(struct hashmap *m)
{
	size_t pos = 0;
	void *v;

	while (hashmap_next(m, &pos, NULL, &v))
		free(v);
	hashmap_free(m);
}

void auth_throttle_free(struct auth_throttle *t)
{
	if (t == NULL)
		return;
	free_all(t->by_address);
	free_all(t->by_account);
	free(t);
}

static void sweep(struct hashmap *m, time_t now, time_t window)
{
	size_t pos = 0;
	const char *key;
	void *v;

	while (hashmap_next(m, &pos, &key, &v)) {
		struct strike *s = v;
		if (now - s->last > window) {
			hashmap_remove(m, key);
			free(s);
		}
	}
}

static unsigned strike(struct hashmap *m, const char *key, time_t now,
		       time_t window)
{
	struct strike *s = hashmap_get(m, key);

	if (s == NULL) {
		if (hashmap_count(m) >= SWEEP_AT)
			sweep(m, now, window);
		s = xcalloc(1, sizeof(*s));
		hashmap_put(m, key, s);
	} else if (now - s->last > window) {
		s->count = 0;
	}
	s->count++;
	s->last = now;
	return s->count;
}

unsigned auth_throttle_failure(struct auth_throttle *t, const char *address,
			       const char *account)
{
	time_t now = time(NULL);
	unsigned n = strike(t->by_address, address, now, t->window);
	unsigned long long delay = t->base_ms;

	if (account != NULL) {
		unsigned m = strike(t->by_account, account, now, t->window);
		if (m > n)
			n = m;
	}
	for (unsigned i = 1; i < n && delay < t->max_ms; i++)
		delay *= 2;
	return delay > t->max_ms ? t->max_ms : (unsigned)delay;
}

static bool over(const struct auth_throttle *t, struct hashmap *m,
		 const char *key, time_t now)
{
	const struct strike *s = hashmap_get(m, key);

	return s != NULL && now - s->last <= t->window &&
	       s->count >= t->max_failures;
}

bool auth_throttle_refused(struct auth_throttle *t, const char *address,
			   const char *account)
{
	time_t now = time(NULL);

	if (t->max_failures == 0)
		return false;
	return over(t, t->by_address, address, now) ||
	       (account != NULL && over(t, t->by_account, account, now));
}

void auth_throttle_success(struct auth_throttle *t, const char *account)
{
	free(hashmap_remove(t->by_account, account));
}
