/* XEP-0199 XMPP Ping: the server answers for itself and, on a user's
 * behalf, for a bare JID (RFC 6121 §8.5.1). */
#include "core/module.h"

#define NS_PING "urn:xmpp:ping"

static void ping_get(const struct iq_request *req)
{
	iq_reply(req, NULL);
}

static const struct iq_handler ping_handlers[] = {
	{ NS_PING, "ping", IQ_SCOPE_SERVER | IQ_SCOPE_ACCOUNT, ping_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const ping_features[] = { NS_PING, NULL };

const struct module ping_module = {
	.name = "ping",
	.iq_handlers = ping_handlers,
	.server_features = ping_features,
};
