/* Per-address connection limits (see addr_limit.h).
 *
 * Memory. An address has an entry while it holds connections or while its
 * bucket is refilling (at most burst / rate seconds after its last
 * attempt). Entries that are neither are swept when the table has doubled
 * since the last sweep, so the cost is amortised O(1) per connection and
 * the table stays within twice the live set, whatever an attacker with
 * many addresses does. */
#include "net/addr_limit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"
#include "util/xalloc.h"

#define SWEEP_MIN 4096

struct addr_entry {
	unsigned conns;
	uint64_t tokens;   /* thousandths of a connection */
	uint64_t last_ms;  /* when tokens was last brought up to date */
};

struct addr_limit {
	unsigned max_conns, rate, burst;
	struct hashmap *map;
	size_t sweep_at;
};

struct addr_limit *addr_limit_new(unsigned max_conns, unsigned rate,
				  unsigned burst)
{
	struct addr_limit *l = xcalloc(1, sizeof(*l));

	l->max_conns = max_conns;
	l->rate = rate;
	l->burst = burst < rate ? rate : burst;
	l->map = hashmap_new();
	l->sweep_at = SWEEP_MIN;
	return l;
}

void addr_limit_free(struct addr_limit *l)
{
	size_t pos = 0;
	void *v;

	if (l == NULL)
		return;
	while (hashmap_next(l->map, &pos, NULL, &v))
		free(v);
	hashmap_free(l->map);
	free(l);
}

void addr_limit_key(const struct sockaddr *sa, char key[ADDR_KEY_MAX])
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, key, ADDR_KEY_MAX);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		struct in6_addr net = in6->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(&net)) {
			inet_ntop(AF_INET, &net.s6_addr[12], key, ADDR_KEY_MAX);
			return;
		}
		memset(&net.s6_addr[8], 0, 8);
		inet_ntop(AF_INET6, &net, ip, sizeof(ip));
		snprintf(key, ADDR_KEY_MAX, "%s/64", ip);
	} else {
		snprintf(key, ADDR_KEY_MAX, "unix");
	}
}

static uint64_t cap_of(const struct addr_limit *l)
{
	return (uint64_t)l->burst * 1000;
}

static void refill(const struct addr_limit *l, struct addr_entry *e,
		   uint64_t now_ms)
{
	uint64_t cap = cap_of(l);

	if (now_ms > e->last_ms) {
		/* rate per second is rate thousandths per millisecond */
		uint64_t add = (now_ms - e->last_ms) * l->rate;
		e->tokens = add >= cap - e->tokens ? cap : e->tokens + add;
	}
	e->last_ms = now_ms;
}

static bool idle(const struct addr_limit *l, struct addr_entry *e,
		 uint64_t now_ms)
{
	if (e->conns > 0)
		return false;
	if (l->rate == 0)
		return true;
	refill(l, e, now_ms);
	return e->tokens == cap_of(l);
}

static void sweep(struct addr_limit *l, uint64_t now_ms)
{
	size_t pos = 0;
	const char *key;
	void *v;

	while (hashmap_next(l->map, &pos, &key, &v)) {
		if (idle(l, v, now_ms)) {
			hashmap_remove(l->map, key);
			free(v);
		}
	}
	l->sweep_at = 2 * hashmap_count(l->map);
	if (l->sweep_at < SWEEP_MIN)
		l->sweep_at = SWEEP_MIN;
}

int addr_limit_admit(struct addr_limit *l, const char *key, uint64_t now_ms,
		     const char **why_r)
{
	struct addr_entry *e;

	if (l->max_conns == 0 && l->rate == 0)
		return 0;
	e = hashmap_get(l->map, key);
	if (e == NULL) {
		if (hashmap_count(l->map) >= l->sweep_at)
			sweep(l, now_ms);
		e = xcalloc(1, sizeof(*e));
		e->tokens = cap_of(l);
		e->last_ms = now_ms;
		hashmap_put(l->map, key, e);
	}
	if (l->rate != 0) {
		refill(l, e, now_ms);
		if (e->tokens < 1000) {
			*why_r = "too many new connections from your address";
			return -1;
		}
		e->tokens -= 1000;
	}
	if (l->max_conns != 0 && e->conns >= l->max_conns) {
		*why_r = "too many connections from your address";
		return -1;
	}
	e->conns++;
	return 0;
}

void addr_limit_release(struct addr_limit *l, const char *key)
{
	struct addr_entry *e;

	if (l->max_conns == 0 && l->rate == 0)
		return;
	e = hashmap_get(l->map, key);
	if (e == NULL || e->conns == 0)
		return;
	e->conns--;
	if (e->conns == 0 && l->rate == 0) {
		hashmap_remove(l->map, key);
		free(e);
	}
}

size_t addr_limit_tracked(const struct addr_limit *l)
{
	return hashmap_count(l->map);
}
