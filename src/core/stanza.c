#include "core/stanza.h"

#include <string.h>

#include "xml/xml.h"
#include "xml/xml_document.h"

enum stanza_kind stanza_kind(const struct xml_node *x)
{
	if (x->type != XML_ELEMENT || strcmp(x->ns, XML_NS_CLIENT) != 0)
		return STANZA_OTHER;
	if (strcmp(x->name, "message") == 0)
		return STANZA_MESSAGE;
	if (strcmp(x->name, "presence") == 0)
		return STANZA_PRESENCE;
	if (strcmp(x->name, "iq") == 0)
		return STANZA_IQ;
	return STANZA_OTHER;
}

struct xml_node *stanza_parse_message(const void *data, size_t len)
{
	struct xml_node *st = xml_parse_document(data, len);

	if (st != NULL && stanza_kind(st) != STANZA_MESSAGE) {
		xml_free(st);
		return NULL;
	}
	return st;
}

/* RFC 6120 §8.3.3: the type each defined condition is usually sent with. */
static const struct {
	const char *condition, *type;
} error_types[] = {
	{ "bad-request", "modify" },
	{ "conflict", "cancel" },
	{ "feature-not-implemented", "cancel" },
	{ "forbidden", "auth" },
	{ "gone", "cancel" },
	{ "internal-server-error", "cancel" },
	{ "item-not-found", "cancel" },
	{ "jid-malformed", "modify" },
	{ "not-acceptable", "modify" },
	{ "not-allowed", "cancel" },
	{ "not-authorized", "auth" },
	{ "policy-violation", "modify" },
	{ "recipient-unavailable", "wait" },
	{ "redirect", "modify" },
	{ "registration-required", "auth" },
	{ "remote-server-not-found", "cancel" },
	{ "remote-server-timeout", "wait" },
	{ "resource-constraint", "wait" },
	{ "service-unavailable", "cancel" },
	{ "subscription-required", "auth" },
	{ "undefined-condition", "cancel" },
	{ "unexpected-request", "wait" },
};

const char *stanza_error_type(const char *condition)
{
	for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]); i++)
		if (strcmp(error_types[i].condition, condition) == 0)
			return error_types[i].type;
	return "cancel";
}

struct xml_node *stanza_new(const char *name, const char *from, const char *to,
			    const char *type, const char *id)
{
	struct xml_node *x = xml_new(name, XML_NS_CLIENT);

	if (from)
		xml_set_attr(x, "from", from);
	if (to)
		xml_set_attr(x, "to", to);
	if (type)
		xml_set_attr(x, "type", type);
	if (id)
		xml_set_attr(x, "id", id);
	return x;
}

bool stanza_is_error(const struct xml_node *stanza)
{
	const char *type = xml_attr(stanza, "type");
	return type != NULL && strcmp(type, "error") == 0;
}

struct xml_node *stanza_error_reply(const struct xml_node *stanza,
				    const char *condition, const char *text)
{
	const char *type = xml_attr(stanza, "type");
	struct xml_node *reply, *err;
	enum stanza_kind kind = stanza_kind(stanza);

	/* Never answer an error (RFC 6120 §8.3.1), nor an IQ result:
	 * answering those is how loops start. */
	if (type != NULL && (strcmp(type, "error") == 0 ||
			     (kind == STANZA_IQ && strcmp(type, "result") == 0)))
		return NULL;
	if (kind == STANZA_OTHER)
		return NULL;
	reply = stanza_new(stanza->name, xml_attr(stanza, "to"),
			   xml_attr(stanza, "from"), "error",
			   xml_attr(stanza, "id"));
	/* Messages keep their payload so the sender can tell which one
	 * failed; IQ payloads may be large and the id already says it. */
	if (kind == STANZA_MESSAGE)
		for (const struct xml_node *c = stanza->children; c; c = c->next)
			if (c->type == XML_ELEMENT)
				xml_copy_into(reply, c);
	err = xml_add_child(reply, "error", XML_NS_CLIENT);
	xml_set_attr(err, "type", stanza_error_type(condition));
	xml_add_child(err, condition, NS_STANZAS);
	if (text != NULL)
		xml_add_text(xml_add_child(err, "text", NS_STANZAS), text,
			     strlen(text));
	return reply;
}

struct xml_node *stanza_iq_result(const struct xml_node *iq)
{
	return stanza_new("iq", xml_attr(iq, "to"), xml_attr(iq, "from"),
			  "result", xml_attr(iq, "id"));
}

const char *stanza_error_condition(const struct xml_node *stanza)
{
	const struct xml_node *err = xml_child(stanza, "error", XML_NS_CLIENT);
	const struct xml_node *c;

	if (err == NULL)
		return NULL;
	c = xml_child(err, NULL, NS_STANZAS);
	while (c != NULL && strcmp(c->name, "text") == 0)
		c = xml_next(c, NULL, NS_STANZAS);
	return c ? c->name : NULL;
}
