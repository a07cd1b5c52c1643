#include "core/module.h"

#include <stdlib.h>
#include <string.h>

#include "core/jid.h"
#include "core/router.h"
#include "core/session.h"
#include "core/stanza.h"
#include "mod/modules.h"
#include "server.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

struct modules {
	const struct module *const *list;
	size_t n;
	size_t initialized;
	/* list[i]->enabled said so (or has no such callback). */
	bool on[MODULES_MAX];
	bool filter_routes;  /* some module has route_filter */
};

struct modules *modules_new(struct server *srv)
{
	struct modules *m = xcalloc(1, sizeof(*m));

	m->list = builtin_modules;
	while (m->list[m->n] != NULL)
		m->n++;
	if (m->n > MODULES_MAX) {
		log_error("%zu modules, MODULES_MAX is %d", m->n, MODULES_MAX);
		abort();
	}
	for (; m->initialized < m->n; m->initialized++) {
		const struct module *mod = m->list[m->initialized];
		if (mod->init != NULL && mod->init(srv) != 0) {
			log_error("module %s failed to start", mod->name);
			modules_free(srv, m);
			return NULL;
		}
	}
	for (size_t i = 0; i < m->n; i++) {
		m->on[i] = m->list[i]->enabled == NULL ||
			   m->list[i]->enabled(srv);
		m->filter_routes |= m->list[i]->route_filter != NULL;
	}
	return m;
}

void modules_free(struct server *srv, struct modules *m)
{
	if (m == NULL)
		return;
	while (m->initialized > 0) {
		const struct module *mod = m->list[--m->initialized];
		if (mod->deinit != NULL)
			mod->deinit(srv);
	}
	free(m);
}

const struct iq_handler *modules_find_iq(const struct modules *m,
					 const char *ns, const char *name,
					 enum iq_scope scope)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct iq_handler *h = m->list[i]->iq_handlers;
		if (!m->on[i])
			continue;
		for (; h != NULL && h->ns != NULL; h++)
			if ((h->scope & scope) && strcmp(h->ns, ns) == 0 &&
			    (h->name == NULL || strcmp(h->name, name) == 0))
				return h;
	}
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void modules_foreach_feature(const struct modules *m, enum iq_scope scope,
			     void (*fn)(const char *var, void *ctx), void *ctx)
{
	const char **vars = NULL;
	size_t n = 0, cap = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (!m->on[i])
			continue;
		const char *const *f = scope == IQ_SCOPE_SERVER
			? m->list[i]->server_features
			: m->list[i]->account_features;
		for (; f != NULL && *f != NULL; f++) {
			vars = xgrow(vars, &cap, n + 1, sizeof(*vars));
			vars[n++] = *f;
		}
	}
	if (n > 0)
		qsort(vars, n, sizeof(*vars), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (i == 0 || strcmp(vars[i], vars[i - 1]) != 0)
			fn(vars[i], ctx);
	free(vars);
}

void modules_foreach_identity(const struct modules *m, enum iq_scope scope,
			      void (*fn)(const struct disco_identity *id,
					 void *ctx),
			      void *ctx)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct disco_identity *id = scope == IQ_SCOPE_SERVER
			? m->list[i]->server_identities
			: m->list[i]->account_identities;
		if (!m->on[i])
			continue;
		for (; id != NULL && id->category != NULL; id++)
			fn(id, ctx);
	}
}

void modules_dispatch_iq(struct server *srv, struct xml_node *iq,
			 const struct jid *from, const struct jid *to,
			 struct session *session, enum iq_scope scope)
{
	struct xml_node *payload = xml_first_element(iq);
	const struct iq_handler *h;
	struct iq_request req = {
		.srv = srv,
		.iq = iq,
		.payload = payload,
		.from = from,
		.to = to,
		.session = session,
	};
	const char *type = xml_attr(iq, "type");

	req.set = type != NULL && strcmp(type, "set") == 0;
	if (payload == NULL || xml_next(payload, NULL, NULL) != NULL) {
		iq_error(&req, "bad-request", NULL);
		return;
	}
	h = modules_find_iq(srv->modules, payload->ns, payload->name, scope);
	if (h == NULL) {
		/* RFC 6120 §8.4: an unknown payload namespace. */
		iq_error(&req, "service-unavailable", NULL);
		return;
	}
	if (req.set ? h->set == NULL : h->get == NULL) {
		iq_error(&req, "bad-request", req.set ? "this is a get-only query"
						       : "this is a set-only query");
		return;
	}
	(req.set ? h->set : h->get)(&req);
}

void iq_reply(const struct iq_request *req, struct xml_node *payload)
{
	struct xml_node *res = stanza_iq_result(req->iq);

	if (payload != NULL) {
		xml_copy_into(res, payload);
		xml_free(payload);
	}
	router_route(req->srv, res);
}

void iq_error(const struct iq_request *req, const char *condition,
	      const char *text)
{
	router_bounce(req->srv, req->iq, condition, text);
}

unsigned modules_index(const struct modules *m, const struct module *mod)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->list[i] == mod)
			return (unsigned)i;
	abort();
}

bool modules_message_undelivered(struct server *srv, struct xml_node *msg,
				 const struct jid *to)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->message_undelivered != NULL &&
		    m->list[i]->message_undelivered(srv, msg, to))
			return true;
	return false;
}

bool modules_message_undelivered_after(struct server *srv,
				       const struct module *self,
				       struct xml_node *msg,
				       const struct jid *to)
{
	const struct modules *m = srv->modules;

	for (size_t i = modules_index(m, self) + 1; i < m->n; i++)
		if (m->list[i]->message_undelivered != NULL &&
		    m->list[i]->message_undelivered(srv, msg, to))
			return true;
	return false;
}

bool modules_filter_routes(const struct modules *m)
{
	return m->filter_routes;
}

bool modules_route_filter(struct server *srv, struct xml_node *stanza,
			  const struct jid *from, const struct jid *to)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->route_filter != NULL &&
		    m->list[i]->route_filter(srv, stanza, from, to))
			return true;
	return false;
}

void modules_presence_broadcast(struct server *srv, struct session *s,
				struct xml_node *pres)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->presence_broadcast != NULL)
			m->list[i]->presence_broadcast(s, pres);
}

bool modules_iq_response(struct server *srv, struct xml_node *iq,
			 const struct jid *from)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->iq_response != NULL &&
		    m->list[i]->iq_response(srv, iq, from))
			return true;
	return false;
}

void modules_preauth_features(struct server *srv, struct buf *out)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->on[i] && m->list[i]->preauth_features != NULL)
			m->list[i]->preauth_features(srv, out);
}

bool modules_preauth_iq(struct server *srv, struct c2s *c,
			struct xml_node *iq)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->on[i] && m->list[i]->preauth_iq != NULL &&
		    m->list[i]->preauth_iq(c, iq))
			return true;
	return false;
}

void modules_session_bound(struct server *srv, struct session *s)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->session_bound != NULL)
			m->list[i]->session_bound(s);
}

void modules_initial_presence(struct server *srv, struct session *s)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->initial_presence != NULL)
			m->list[i]->initial_presence(s);
}

void modules_session_end(struct server *srv, struct session *s)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->session_end != NULL)
			m->list[i]->session_end(s);
}

void modules_account_free(struct server *srv, struct account *a)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->account_free != NULL)
			m->list[i]->account_free(a);
}

bool modules_disco_node(const struct iq_request *req, const char *node,
			bool items)
{
	const struct modules *m = req->srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->disco_node != NULL &&
		    m->list[i]->disco_node(req, node, items))
			return true;
	return false;
}

void modules_message_sent(struct session *s, struct xml_node *msg)
{
	const struct modules *m = s->srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->message_sent != NULL)
			m->list[i]->message_sent(s, msg);
}

void modules_message_routed(struct server *srv, const struct xml_node *msg,
			    struct session *const *to, size_t n)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->message_routed != NULL)
			m->list[i]->message_routed(srv, msg, to, n);
}

bool modules_session_filter(struct session *s, const struct xml_node *stanza)
{
	const struct modules *m = s->srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->session_filter != NULL &&
		    m->list[i]->session_filter(s, stanza))
			return true;
	return false;
}

bool modules_stream_element(struct session *s, struct xml_node *el)
{
	const struct modules *m = s->srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->stream_element != NULL &&
		    m->list[i]->stream_element(s, el))
			return true;
	return false;
}

void modules_stream_features(struct server *srv, struct buf *out)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->stream_features != NULL)
			m->list[i]->stream_features(srv, out);
}

void modules_message_inbound(struct server *srv, struct xml_node *msg,
			     const struct jid *to)
{
	const struct modules *m = srv->modules;

	for (size_t i = 0; i < m->n; i++)
		if (m->list[i]->message_inbound != NULL)
			m->list[i]->message_inbound(srv, msg, to);
}
