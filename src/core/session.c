#include "core/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "core/account.h"
#include "core/presence.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xmpp/c2s.h"
#include "xmpp/c2s_sm.h"

static char *generate_resource(void)
{
	unsigned char rnd[8];
	char hex[17];

	RAND_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return xasprintf("roost-%s", hex);
}

struct session *session_bind(struct server *srv, struct c2s *stream,
			     struct account *account, const char *resource)
{
	struct session *s = xcalloc(1, sizeof(*s));
	struct session *old;
	char *res = resource ? xstrdup(resource) : NULL;

	/* A generated resource that happens to be in use is drawn again. */
	for (;;) {
		if (res == NULL)
			res = generate_resource();
		char *full = xasprintf("%s/%s", account->bare, res);
		old = hashmap_get(srv->sessions, full);
		if (old == NULL || resource != NULL) {
			s->full = full;
			break;
		}
		free(full);
		free(res);
		res = NULL;
	}
	if (old != NULL) {
		/* RFC 6120 §7.7.2.2: the newer session wins; the older
		 * one's stream ends with <conflict/>. */
		struct c2s *old_stream = old->stream;

		log_msg(LOG_INFO, old->full, "replaced by a new session");
		/* Detach first: the stream error may close the stream at
		 * once, and its close path must not end (free) the session
		 * under us. */
		if (old_stream != NULL) {
			old_stream->session = NULL;
			c2s_drop_drained(old_stream);
			old->stream = NULL;
		}
		session_end(old);
		if (old_stream != NULL)
			c2s_stream_error(old_stream, "conflict",
					 "replaced by a new connection");
	}
	s->srv = srv;
	s->account = account;
	account_ref(account);
	s->stream = stream;
	s->jid.local = xstrdup(account->local);
	s->jid.domain = xstrdup(account->domain);
	s->jid.resource = res;
	s->next_in_account = account->sessions;
	account->sessions = s;
	hashmap_put(srv->sessions, s->full, s);
	return s;
}

void session_end(struct session *s)
{
	struct account *a = s->account;

	modules_session_end(s->srv, s);
	if (hashmap_get(s->srv->sessions, s->full) == s)
		hashmap_remove(s->srv->sessions, s->full);
	presence_session_end(s);
	for (struct session **p = &a->sessions; *p; p = &(*p)->next_in_account)
		if (*p == s) {
			*p = s->next_in_account;
			break;
		}
	if (s->stream != NULL)
		s->stream->session = NULL;
	/* Out of the table now: unacknowledged messages route elsewhere. */
	sm_session_end(s);
	if (s->presence != NULL)
		xml_free(s->presence);
	if (s->directed != NULL)
		hashmap_free(s->directed);
	jid_free(&s->jid);
	free(s->full);
	free(s);
	account_unref(a);
}

struct session *session_find(struct server *srv, const char *full_jid)
{
	return hashmap_get(srv->sessions, full_jid);
}

void session_send(struct session *s, const struct xml_node *stanza)
{
	if (modules_session_filter(s, stanza))
		return;
	session_send_now(s, stanza);
}

static void deliver(struct session *s, const struct xml_node *stanza,
		    bool stored)
{
	/* With stream management every stanza is queued until acked; a
	 * detached session only queues. */
	if (!sm_stanza_out(s, stanza, stored) && s->stream != NULL)
		c2s_send_unqueued(s->stream, stanza);
}

void session_send_now(struct session *s, const struct xml_node *stanza)
{
	deliver(s, stanza, false);
}

void session_send_stored(struct session *s, const struct xml_node *stanza)
{
	deliver(s, stanza, true);
}

void session_when_drained(struct session *s, void (*fn)(void *ctx), void *ctx)
{
	if (sm_when_acked(s, fn, ctx))
		return;
	if (s->stream != NULL)
		c2s_when_drained(s->stream, fn, ctx);
}
