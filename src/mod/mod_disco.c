/* XEP-0030 Service Discovery for the server and for accounts. Features
 * come from every module's registration. */
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "server.h"
#include "xml/xml.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
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

static void info_get(const struct iq_request *req)
{
	bool server = req->to->local == NULL;
	const char *node = xml_attr(req->payload, "node");
	struct xml_node *q, *id;

	if (node != NULL) {
		if (!modules_disco_node(req, node, false))
			iq_error(req, "item-not-found", NULL);
		return;
	}
	q = xml_new("query", NS_DISCO_INFO);
	id = xml_add_child(q, "identity", NULL);
	if (server) {
		xml_set_attr(id, "category", "server");
		xml_set_attr(id, "type", "im");
		xml_set_attr(id, "name", "roost");
	} else {
		xml_set_attr(id, "category", "account");
		xml_set_attr(id, "type", "registered");
	}
	modules_foreach_identity(req->srv->modules,
				 server ? IQ_SCOPE_SERVER : IQ_SCOPE_ACCOUNT,
				 add_identity, q);
	modules_foreach_feature(req->srv->modules,
				server ? IQ_SCOPE_SERVER : IQ_SCOPE_ACCOUNT,
				add_feature, q);
	iq_reply(req, q);
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
