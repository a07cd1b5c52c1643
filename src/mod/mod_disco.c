/* XEP-0030 Service Discovery for the server and for accounts. Features
 * come from every module's registration. */
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "mod/mod_disco.h"
#include "server.h"
#include "xml/xml.h"

#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

static void add_feature(const char *var, void *ctx)
{
	struct xml_node *q = ctx;
	xml_set_attr(xml_add_child(q, "feature", NULL), "var", var);
}

static void add_identity(const struct disco_identity *d, void *ctx)
{
	struct xml_node *id = xml_add_child(ctx, "identity", NULL);

	xml_set_attr(id, "category", d->category);
	xml_set_attr(id, "type", d->type);
	if (d->name != NULL)
		xml_set_attr(id, "name", d->name);
}

struct xml_node *disco_info_query(struct server *srv, bool server)
{
	static const struct disco_identity own[2] = {
		{ "server", "im", "roost" },
		{ "account", "registered", NULL },
	};
	enum iq_scope scope = server ? IQ_SCOPE_SERVER : IQ_SCOPE_ACCOUNT;
	struct xml_node *q = xml_new("query", NS_DISCO_INFO);

	add_identity(&own[server ? 0 : 1], q);
	modules_foreach_identity(srv->modules, scope, add_identity, q);
	modules_foreach_feature(srv->modules, scope, add_feature, q);
	return q;
}

static void info_get(const struct iq_request *req)
{
	bool server = req->to->local == NULL;
	const char *node = xml_attr(req->payload, "node");

	if (node != NULL) {
		if (!modules_disco_node(req, node, false))
			iq_error(req, "item-not-found", NULL);
		return;
	}
	iq_reply(req, disco_info_query(req->srv, server));
}

static void items_get(const struct iq_request *req)
{
	const char *node = xml_attr(req->payload, "node");

	if (node != NULL) {
		if (!modules_disco_node(req, node, true))
			iq_error(req, "item-not-found", NULL);
		return;
	}
	/* An account's items are its PEP nodes (XEP-0163 §7.2): a module
	 * that has them answers. No components yet: else an empty list. */
	if (req->to->local != NULL && modules_disco_node(req, NULL, true))
		return;
	iq_reply(req, xml_new("query", NS_DISCO_ITEMS));
}

static const struct iq_handler disco_handlers[] = {
	{ NS_DISCO_INFO, "query", IQ_SCOPE_SERVER | IQ_SCOPE_ACCOUNT, info_get, NULL },
	{ NS_DISCO_ITEMS, "query", IQ_SCOPE_SERVER | IQ_SCOPE_ACCOUNT, items_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const disco_features[] = { NS_DISCO_INFO, NS_DISCO_ITEMS, NULL };

const struct module disco_module = {
	.name = "disco",
	.iq_handlers = disco_handlers,
	.server_features = disco_features,
	.account_features = disco_features,
};
