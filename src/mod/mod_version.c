/* XEP-0092 Software Version, for the server itself. */
#include <sys/utsname.h>

#include "core/module.h"
#include "server.h"
#include "xml/xml.h"

#define NS_VERSION "jabber:iq:version"

static void version_get(const struct iq_request *req)
{
	struct xml_node *q = xml_new("query", NS_VERSION);
	struct utsname u;

	xml_add_text_child(q, "name", "roost");
	xml_add_text_child(q, "version", ROOST_VERSION);
	if (uname(&u) == 0)
		xml_add_text_child(q, "os", u.sysname);
	iq_reply(req, q);
}

static const struct iq_handler version_handlers[] = {
	{ NS_VERSION, "query", IQ_SCOPE_SERVER, version_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const version_features[] = { NS_VERSION, NULL };

const struct module version_module = {
	.name = "version",
	.iq_handlers = version_handlers,
	.server_features = version_features,
};
