/* Parked streams form a list on the server; the release wakes them from a
 * server event so that their input is processed on a fresh stack, in the
 * order they were parked. */
#include "xmpp/c2s_intake.h"

#include <event2/event.h>

#include "net/conn.h"
#include "server.h"
#include "util/log.h"
#include "xmpp/c2s.h"

static void unlink_parked(struct c2s *c)
{
	struct server *srv = c->srv;

	if (c->park_prev != NULL)
		c->park_prev->park_next = c->park_next;
	else
		srv->parked = c->park_next;
	if (c->park_next != NULL)
		c->park_next->park_prev = c->park_prev;
	else
		srv->parked_tail = c->park_prev;
	c->park_prev = c->park_next = NULL;
	c->parked = false;
}

static void wake_parked(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	/* Each read may hold intake again: the rest then stay parked. */
	while (srv->parked != NULL && srv->intake_holds == 0) {
		struct c2s *c = srv->parked;

		unlink_parked(c);
		conn_resume_read(c->conn);
		c2s_read_input(c);
	}
}

void intake_hold(struct server *srv)
{
	srv->intake_holds++;
}

void intake_release(struct server *srv)
{
	if (srv->intake_holds == 0 || --srv->intake_holds > 0 ||
	    srv->parked == NULL)
		return;
	if (srv->intake_ev == NULL)
		srv->intake_ev = event_new(srv->base, -1, 0, wake_parked, srv);
	event_active(srv->intake_ev, 0, 0);
}

void intake_backlog_check(struct server *srv, struct intake_backlog *b,
			  bool busy, size_t n, size_t bytes, size_t pause,
			  size_t hold_bytes)
{
	if (srv->shutting_down || !busy || b->holding ||
	    (n < pause && bytes < hold_bytes))
		return;
	if (!b->logged) {
		log_info("%s: the store is %zu %s behind: clients are read "
			 "again when its batch is done", b->what, n, b->unit);
		b->logged = true;
	}
	b->holding = true;
	intake_hold(srv);
}

void intake_backlog_done(struct server *srv, struct intake_backlog *b)
{
	if (b->holding) {
		b->holding = false;
		intake_release(srv);
	}
}

size_t intake_backlog_max(size_t pause, size_t min)
{
	return pause * 4 > min ? pause * 4 : min;
}

bool intake_park(struct c2s *c)
{
	struct server *srv = c->srv;

	if (srv->intake_holds == 0 || srv->shutting_down)
		return false;
	if (c->parked)
		return true;
	conn_pause_read(c->conn);
	c->parked = true;
	c->park_prev = srv->parked_tail;
	c->park_next = NULL;
	if (srv->parked_tail != NULL)
		srv->parked_tail->park_next = c;
	else
		srv->parked = c;
	srv->parked_tail = c;
	return true;
}

void intake_forget(struct c2s *c)
{
	if (c->parked)
		unlink_parked(c);
}

void intake_free(struct server *srv)
{
	if (srv->intake_ev != NULL)
		event_free(srv->intake_ev);
	srv->intake_ev = NULL;
}
