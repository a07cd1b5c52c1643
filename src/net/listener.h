/* Listening sockets. Accepted sockets go to the accept callback. */
#ifndef ROOST_NET_LISTENER_H
#define ROOST_NET_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>

struct event_base;
struct listener;

typedef void listener_accept_fn(void *ctx, int fd, struct sockaddr *addr,
				int addrlen, bool direct_tls);

/* Binds "addr:port" or "[v6]:port". Returns NULL with an xmalloc'd
 * *error_r on failure. New listeners are pushed on *list. */
struct listener *listener_new(struct event_base *base, struct listener **list,
			      const char *spec, bool direct_tls,
			      listener_accept_fn *fn, void *ctx,
			      char **error_r);
/* Stops accepting (at shutdown). */
void listener_disable_all(struct listener *list);
void listener_free_all(struct listener *list);
/* The bound address as text, e.g. "127.0.0.1:5222". */
const char *listener_name(const struct listener *l);

#endif
