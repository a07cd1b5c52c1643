#include "net/listener.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "util/log.h"
#include "util/xalloc.h"

struct listener {
	struct listener *next;
	struct evconnlistener *ev;
	bool direct_tls;
	listener_accept_fn *fn;
	void *ctx;
	char *name;
};

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd,
		      struct sockaddr *addr, int addrlen, void *arg)
{
	struct listener *l = arg;
	l->fn(l->ctx, fd, addr, addrlen, l->direct_tls);
}

static void on_accept_error(struct evconnlistener *ev, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	/* EMFILE/ENFILE: keep the listener; the next accept may succeed
	 * once connections close. */
	log_warn("accept on %s: %s", l->name, evutil_socket_error_to_string(err));
}

struct listener *listener_new(struct event_base *base, struct listener **list,
			      const char *spec, bool direct_tls,
			      listener_accept_fn *fn, void *ctx, char **error_r)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	struct listener *l;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) != 0) {
		*error_r = xasprintf("cannot parse listen address '%s'", spec);
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->direct_tls = direct_tls;
	l->fn = fn;
	l->ctx = ctx;
	l->name = xstrdup(spec);
	l->ev = evconnlistener_new_bind(base, on_accept, l,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
		1024, (struct sockaddr *)&ss, sslen);
	if (l->ev == NULL) {
		*error_r = xasprintf("cannot listen on %s: %s", spec, strerror(errno));
		free(l->name);
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->ev, on_accept_error);
	l->next = *list;
	*list = l;
	return l;
}

void listener_disable_all(struct listener *list)
{
	for (struct listener *l = list; l; l = l->next)
		evconnlistener_disable(l->ev);
}

void listener_free_all(struct listener *list)
{
	struct listener *next;

	for (struct listener *l = list; l; l = next) {
		next = l->next;
		evconnlistener_free(l->ev);
		free(l->name);
		free(l);
	}
}

const char *listener_name(const struct listener *l)
{
	return l->name;
}
