/* Per-address connection limits: how many connections one address holds at
 * once, and how fast it may open new ones (a token bucket). An "address"
 * is an IPv4 address or an IPv6 /64: one IPv6 host usually holds a whole
 * /64, so counting /128s would limit nothing. Knows nothing of XMPP. */
#ifndef ROOST_NET_ADDR_LIMIT_H
#define ROOST_NET_ADDR_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

/* "a.b.c.d", "2001:db8:1:2::/64", "unix" and a NUL. */
#define ADDR_KEY_MAX 56

struct addr_limit;

/* max_conns: connections at once per address (0 = no limit); rate: new
 * connections per second per address (0 = no limit); burst: the bucket
 * (at least rate). */
struct addr_limit *addr_limit_new(unsigned max_conns, unsigned rate,
				  unsigned burst);
void addr_limit_free(struct addr_limit *l);

/* The key `sa` is counted under. */
void addr_limit_key(const struct sockaddr *sa, char key[ADDR_KEY_MAX]);

/* A new connection from the address `key` at `now_ms` (a monotonic clock).
 * Returns 0 when it may go on (it is then counted: call addr_limit_release
 * once it closes), or -1 with a static reason in *why_r (not counted). A
 * refused attempt still takes a token, so hammering does not pay. */
int addr_limit_admit(struct addr_limit *l, const char *key, uint64_t now_ms,
		     const char **why_r);
/* A connection admitted under `key` closed. */
void addr_limit_release(struct addr_limit *l, const char *key);

/* Addresses tracked now (for tests and the memory budget). */
size_t addr_limit_tracked(const struct addr_limit *l);

#endif
