/* PEP node configuration (XEP-0060 §8.2, §16.4.3): the defaults XEP-0163
 * §5 asks for, the data forms of configure/create/default requests and
 * of publish-options (§7.1.5), and the stored form of a node.
 *
 * One table names every field we implement; a field outside it is an
 * error, as §7.1.5 asks for publish-options ("MUST reject the
 * publication upon encountering unknown fields") and §8.2.4 allows for
 * configuration ("cannot be processed"). Fields whose only value we
 * support (node_type leaf, publish_model publishers, purge_offline
 * false) are listed so that a client asking for exactly that is not
 * refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/module.h"
#include "mod/mod_pep-private.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_document.h"

#define NS_STORED "urn:xmpp:roost:pep-node:0"

enum field_id {
	F_ACCESS,
	F_DELIVER_NOTIFICATIONS,
	F_DELIVER_PAYLOADS,
	F_DESCRIPTION,
	F_MAX_ITEMS,
	F_NODE_TYPE,
	F_NOTIFICATION_TYPE,
	F_NOTIFY_CONFIG,
	F_NOTIFY_DELETE,
	F_NOTIFY_RETRACT,
	F_PERSIST_ITEMS,
	F_PUBLISH_MODEL,
	F_PURGE_OFFLINE,
	F_ROSTER_GROUPS,
	F_SEND_LAST,
	F_TITLE,
	F_TYPE,
	F_COUNT
};

static const char *const access_options[] = {
	"open", "presence", "roster", "whitelist", NULL
};
static const char *const send_last_options[] = {
	"never", "on_sub", "on_sub_and_presence", NULL
};
static const char *const notification_options[] = {
	"normal", "headline", NULL
};
static const char *const leaf_options[] = { "leaf", NULL };
static const char *const publishers_options[] = { "publishers", NULL };

struct field {
	const char *var;
	const char *type;   /* XEP-0004 field type */
	const char *label;
	const char *const *options;
};

/* Indexed by enum field_id, sorted by var as forms list them. */
static const struct field fields[F_COUNT] = {
	[F_ACCESS] = { "pubsub#access_model", "list-single",
		"Who may subscribe and retrieve items", access_options },
	[F_DELIVER_NOTIFICATIONS] = { "pubsub#deliver_notifications",
		"boolean", "Whether to deliver event notifications", NULL },
	[F_DELIVER_PAYLOADS] = { "pubsub#deliver_payloads", "boolean",
		"Whether to deliver payloads with event notifications", NULL },
	[F_DESCRIPTION] = { "pubsub#description", "text-single",
		"A description of the node", NULL },
	[F_MAX_ITEMS] = { "pubsub#max_items", "text-single",
		"Max # of items to persist. `max` for no specific limit "
		"other than a server imposed maximum.", NULL },
	[F_NODE_TYPE] = { "pubsub#node_type", "list-single",
		"Whether the node is a leaf (default)", leaf_options },
	[F_NOTIFICATION_TYPE] = { "pubsub#notification_type", "list-single",
		"Specify the delivery style for notifications",
		notification_options },
	[F_NOTIFY_CONFIG] = { "pubsub#notify_config", "boolean",
		"Notify subscribers when the node configuration changes", NULL },
	[F_NOTIFY_DELETE] = { "pubsub#notify_delete", "boolean",
		"Notify subscribers when the node is deleted", NULL },
	[F_NOTIFY_RETRACT] = { "pubsub#notify_retract", "boolean",
		"Notify subscribers when items are removed from the node", NULL },
	[F_PERSIST_ITEMS] = { "pubsub#persist_items", "boolean",
		"Persist items to storage", NULL },
	[F_PUBLISH_MODEL] = { "pubsub#publish_model", "list-single",
		"Specify the publisher model", publishers_options },
	[F_PURGE_OFFLINE] = { "pubsub#purge_offline", "boolean",
		"Purge all items when the relevant publisher goes offline?",
		NULL },
	[F_ROSTER_GROUPS] = { "pubsub#roster_groups_allowed", "list-multi",
		"Roster groups allowed to subscribe", NULL },
	[F_SEND_LAST] = { "pubsub#send_last_published_item", "list-single",
		"When to send the last published item", send_last_options },
	[F_TITLE] = { "pubsub#title", "text-single",
		"A friendly name for the node", NULL },
	[F_TYPE] = { "pubsub#type", "text-single",
		"The semantic type information of data in the node, usually "
		"specified by the namespace of the payload (if any)", NULL },
};

/* ---- values ---- */

void pep_config_default(struct pep_config *c)
{
	/* XEP-0163 §5: presence access, notifications with payloads, the
	 * last item on presence; one item (XEP-0384 §5.3.2: storing more
	 * "is not the default with XEP-0163"). */
	memset(c, 0, sizeof(*c));
	c->access = PEP_ACCESS_PRESENCE;
	c->max_items = 1;
	c->persist_items = true;
	c->deliver_notifications = true;
	c->deliver_payloads = true;
	c->notify_retract = true;
	c->notify_delete = true;
	c->send_last = PEP_SEND_ON_SUB_AND_PRESENCE;
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void pep_config_copy(struct pep_config *dst, const struct pep_config *src)
{
	*dst = *src;
	dst->title = dup_or_null(src->title);
	dst->description = dup_or_null(src->description);
	dst->type = dup_or_null(src->type);
	dst->groups = xcalloc(src->ngroups + 1, sizeof(char *));
	for (size_t i = 0; i < src->ngroups; i++)
		dst->groups[i] = xstrdup(src->groups[i]);
}

static void free_groups(struct pep_config *c)
{
	for (size_t i = 0; i < c->ngroups; i++)
		free(c->groups[i]);
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
}

void pep_config_free(struct pep_config *c)
{
	free(c->title);
	free(c->description);
	free(c->type);
	free_groups(c);
	memset(c, 0, sizeof(*c));
}

unsigned pep_config_max_items(const struct pep_config *c, unsigned limit)
{
	return c->max_items == 0 || c->max_items > limit ? limit : c->max_items;
}

const char *pep_access_name(enum pep_access a)
{
	return access_options[a];
}

static int option_index(const char *const *options, const char *v)
{
	for (int i = 0; options[i] != NULL; i++)
		if (strcmp(options[i], v) == 0)
			return i;
	return -1;
}

/* XEP-0004 §3.3 boolean. */
static int parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
		*out = true;
	else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

/* "max" (0) or 1..limit. */
static int parse_max_items(const char *v, unsigned limit, unsigned *out)
{
	char *end;
	unsigned long n;

	if (strcmp(v, "max") == 0) {
		*out = 0;
		return 0;
	}
	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || errno != 0 || n == 0 || n > limit)
		return -1;
	*out = (unsigned)n;
	return 0;
}

/* ---- submitted forms ---- */

static const char *first_value(const struct xml_node *field)
{
	const struct xml_node *v = xml_child(field, "value", NS_XDATA);
	return v != NULL ? xml_text(v) : NULL;
}

static int set_text(char **dst, const struct xml_node *field)
{
	const char *v = first_value(field);

	if (v != NULL && strlen(v) > PEP_TEXT_MAX)
		return -1;
	free(*dst);
	*dst = v != NULL && *v != '\0' ? xstrdup(v) : NULL;
	return 0;
}

static int set_groups(struct pep_config *c, const struct xml_node *field)
{
	size_t n = 0;
	const struct xml_node *v;

	for (v = xml_child(field, "value", NS_XDATA); v != NULL;
	     v = xml_next(v, "value", NS_XDATA))
		if (++n > PEP_GROUPS_MAX || strlen(xml_text(v)) > PEP_TEXT_MAX)
			return -1;
	free_groups(c);
	c->groups = xcalloc(n + 1, sizeof(char *));
	for (v = xml_child(field, "value", NS_XDATA); v != NULL;
	     v = xml_next(v, "value", NS_XDATA))
		c->groups[c->ngroups++] = xstrdup(xml_text(v));
	return 0;
}

/* Applies one field; -1 if its value is not one we accept. */
static int apply_field(struct pep_config *c, enum field_id id,
		       const struct xml_node *field, unsigned limit,
		       struct pep_error *err)
{
	const char *v = first_value(field);
	bool b;
	int i;

	switch (id) {
	case F_DESCRIPTION:
		return set_text(&c->description, field);
	case F_TITLE:
		return set_text(&c->title, field);
	case F_TYPE:
		return set_text(&c->type, field);
	case F_ROSTER_GROUPS:
		return set_groups(c, field);
	default:
		break;
	}
	if (v == NULL)
		return -1;
	switch (id) {
	case F_ACCESS:
		if (strcmp(v, "authorize") == 0) {
			err->app = "unsupported-access-model";
			return -1;
		}
		if ((i = option_index(access_options, v)) < 0)
			return -1;
		c->access = (enum pep_access)i;
		return 0;
	case F_DELIVER_NOTIFICATIONS:
		return parse_bool(v, &c->deliver_notifications);
	case F_DELIVER_PAYLOADS:
		return parse_bool(v, &c->deliver_payloads);
	case F_MAX_ITEMS:
		return parse_max_items(v, limit, &c->max_items);
	case F_NODE_TYPE:
		return option_index(leaf_options, v) < 0 ? -1 : 0;
	case F_NOTIFICATION_TYPE:
		if ((i = option_index(notification_options, v)) < 0)
			return -1;
		c->type_normal = i == 0;
		return 0;
	case F_NOTIFY_CONFIG:
		return parse_bool(v, &c->notify_config);
	case F_NOTIFY_DELETE:
		return parse_bool(v, &c->notify_delete);
	case F_NOTIFY_RETRACT:
		return parse_bool(v, &c->notify_retract);
	case F_PERSIST_ITEMS:
		return parse_bool(v, &c->persist_items);
	case F_PUBLISH_MODEL:
		return option_index(publishers_options, v) < 0 ? -1 : 0;
	case F_PURGE_OFFLINE:
		return parse_bool(v, &b) != 0 || b ? -1 : 0;
	case F_SEND_LAST:
		if ((i = option_index(send_last_options, v)) < 0)
			return -1;
		c->send_last = (enum pep_send_last)i;
		return 0;
	default:
		return -1;
	}
}

static int field_lookup(const char *var)
{
	for (int i = 0; i < F_COUNT; i++)
		if (strcmp(fields[i].var, var) == 0)
			return i;
	return -1;
}

int pep_config_apply_form(struct pep_config *c, const struct xml_node *x,
			  const char *form_type, unsigned limit,
			  pep_fields *set_r, struct pep_error *err)
{
	const struct xml_node *f;
	const char *type = xml_attr(x, "type");
	bool typed = false;
	pep_fields set = 0;

	pep_error_set(err, "not-acceptable", NULL, NULL);
	if (!xml_is(x, "x", NS_XDATA) || type == NULL ||
	    strcmp(type, "submit") != 0) {
		pep_error_set(err, "bad-request", NULL,
			      "expected a submitted data form");
		return -1;
	}
	for (f = xml_child(x, "field", NS_XDATA); f != NULL;
	     f = xml_next(f, "field", NS_XDATA)) {
		const char *var = xml_attr(f, "var");
		int id;

		if (var == NULL)
			continue;
		if (strcmp(var, "FORM_TYPE") == 0) {
			const char *v = first_value(f);
			if (v == NULL || strcmp(v, form_type) != 0) {
				pep_error_set(err, "bad-request", NULL,
					      "wrong FORM_TYPE");
				return -1;
			}
			typed = true;
			continue;
		}
		id = field_lookup(var);
		if (id < 0) {
			snprintf(err->text, sizeof(err->text),
				 "unsupported field %.200s", var);
			return -1;
		}
		if (apply_field(c, (enum field_id)id, f, limit, err) != 0) {
			snprintf(err->text, sizeof(err->text),
				 "unsupported value for %s%s", var,
				 id == F_MAX_ITEMS ? " (1 to the server's "
				 "limit, or max)" : "");
			return -1;
		}
		set |= (pep_fields)1 << id;
	}
	if (!typed) {
		pep_error_set(err, "bad-request", NULL,
			      "the form has no FORM_TYPE");
		return -1;
	}
	*set_r = set;
	return 0;
}

/* ---- preconditions ---- */

static bool text_equal(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	       (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool has_group(const struct pep_config *c, const char *g)
{
	for (size_t i = 0; i < c->ngroups; i++)
		if (strcmp(c->groups[i], g) == 0)
			return true;
	return false;
}

static bool groups_equal(const struct pep_config *a, const struct pep_config *b)
{
	for (size_t i = 0; i < a->ngroups; i++)
		if (!has_group(b, a->groups[i]))
			return false;
	for (size_t i = 0; i < b->ngroups; i++)
		if (!has_group(a, b->groups[i]))
			return false;
	return true;
}

static bool field_meets(enum field_id id, const struct pep_config *n,
			const struct pep_config *w, unsigned limit)
{
	switch (id) {
	case F_ACCESS:
		return n->access == w->access;
	case F_DELIVER_NOTIFICATIONS:
		return n->deliver_notifications == w->deliver_notifications;
	case F_DELIVER_PAYLOADS:
		return n->deliver_payloads == w->deliver_payloads;
	case F_DESCRIPTION:
		return text_equal(n->description, w->description);
	case F_MAX_ITEMS:
		return pep_config_max_items(n, limit) ==
		       pep_config_max_items(w, limit);
	case F_NOTIFICATION_TYPE:
		return n->type_normal == w->type_normal;
	case F_NOTIFY_CONFIG:
		return n->notify_config == w->notify_config;
	case F_NOTIFY_DELETE:
		return n->notify_delete == w->notify_delete;
	case F_NOTIFY_RETRACT:
		return n->notify_retract == w->notify_retract;
	case F_PERSIST_ITEMS:
		return n->persist_items == w->persist_items;
	case F_ROSTER_GROUPS:
		return groups_equal(n, w);
	case F_SEND_LAST:
		return n->send_last == w->send_last;
	case F_TITLE:
		return text_equal(n->title, w->title);
	case F_TYPE:
		return text_equal(n->type, w->type);
	case F_NODE_TYPE:
	case F_PUBLISH_MODEL:
	case F_PURGE_OFFLINE:
	case F_COUNT:
		break;
	}
	/* Fields with one possible value: the form was refused otherwise. */
	return true;
}

bool pep_config_meets(const struct pep_config *node,
		      const struct pep_config *want, pep_fields set,
		      unsigned limit)
{
	for (int i = 0; i < F_COUNT; i++)
		if ((set & ((pep_fields)1 << i)) &&
		    !field_meets((enum field_id)i, node, want, limit))
			return false;
	return true;
}

/* ---- the configuration form ---- */

static void add_value(struct xml_node *field, const char *v)
{
	xml_add_text_child(field, "value", v);
}

static void add_bool(struct xml_node *field, bool v)
{
	add_value(field, v ? "1" : "0");
}

struct xml_node *pep_config_form(const struct pep_config *c, const char *type)
{
	struct xml_node *x = xml_new("x", NS_XDATA);
	struct xml_node *f;
	char num[16];

	xml_set_attr(x, "type", type);
	f = xml_add_child(x, "field", NULL);
	xml_set_attr(f, "var", "FORM_TYPE");
	xml_set_attr(f, "type", "hidden");
	add_value(f, NS_PUBSUB_NODE_CONFIG);
	for (int i = 0; i < F_COUNT; i++) {
		const struct field *d = &fields[i];

		f = xml_add_child(x, "field", NULL);
		xml_set_attr(f, "var", d->var);
		xml_set_attr(f, "type", d->type);
		xml_set_attr(f, "label", d->label);
		for (const char *const *o = d->options; o != NULL && *o; o++)
			add_value(xml_add_child(f, "option", NULL), *o);
		switch ((enum field_id)i) {
		case F_ACCESS:
			add_value(f, access_options[c->access]);
			break;
		case F_DELIVER_NOTIFICATIONS:
			add_bool(f, c->deliver_notifications);
			break;
		case F_DELIVER_PAYLOADS:
			add_bool(f, c->deliver_payloads);
			break;
		case F_DESCRIPTION:
			if (c->description != NULL)
				add_value(f, c->description);
			break;
		case F_MAX_ITEMS:
			if (c->max_items == 0) {
				add_value(f, "max");
			} else {
				snprintf(num, sizeof(num), "%u", c->max_items);
				add_value(f, num);
			}
			break;
		case F_NODE_TYPE:
			add_value(f, "leaf");
			break;
		case F_NOTIFICATION_TYPE:
			add_value(f, c->type_normal ? "normal" : "headline");
			break;
		case F_NOTIFY_CONFIG:
			add_bool(f, c->notify_config);
			break;
		case F_NOTIFY_DELETE:
			add_bool(f, c->notify_delete);
			break;
		case F_NOTIFY_RETRACT:
			add_bool(f, c->notify_retract);
			break;
		case F_PERSIST_ITEMS:
			add_bool(f, c->persist_items);
			break;
		case F_PUBLISH_MODEL:
			add_value(f, "publishers");
			break;
		case F_PURGE_OFFLINE:
			add_bool(f, false);
			break;
		case F_ROSTER_GROUPS:
			for (size_t g = 0; g < c->ngroups; g++)
				add_value(f, c->groups[g]);
			break;
		case F_SEND_LAST:
			add_value(f, send_last_options[c->send_last]);
			break;
		case F_TITLE:
			if (c->title != NULL)
				add_value(f, c->title);
			break;
		case F_TYPE:
			if (c->type != NULL)
				add_value(f, c->type);
			break;
		case F_COUNT:
			break;
		}
	}
	return x;
}

/* ---- stored nodes ---- */

static void attr_bool(struct xml_node *n, const char *name, bool v)
{
	xml_set_attr(n, name, v ? "1" : "0");
}

char *pep_node_serialize(const struct pep_node *n, size_t *len_r)
{
	const struct pep_config *c = &n->cfg;
	struct xml_node *x = xml_new("node", NS_STORED);
	char num[16];
	char *out;

	xml_set_attr(x, "access", access_options[c->access]);
	snprintf(num, sizeof(num), "%u", c->max_items);
	xml_set_attr(x, "max-items", num);
	attr_bool(x, "persist", c->persist_items);
	attr_bool(x, "notify", c->deliver_notifications);
	attr_bool(x, "payloads", c->deliver_payloads);
	attr_bool(x, "notify-retract", c->notify_retract);
	attr_bool(x, "notify-delete", c->notify_delete);
	attr_bool(x, "notify-config", c->notify_config);
	attr_bool(x, "type-normal", c->type_normal);
	xml_set_attr(x, "send-last", send_last_options[c->send_last]);
	if (c->title != NULL)
		xml_add_text_child(x, "title", c->title);
	if (c->description != NULL)
		xml_add_text_child(x, "description", c->description);
	if (c->type != NULL)
		xml_add_text_child(x, "type", c->type);
	for (size_t i = 0; i < c->ngroups; i++)
		xml_add_text_child(x, "group", c->groups[i]);
	for (size_t i = 0; i < n->nsubs; i++)
		xml_add_text_child(x, "sub", n->subs[i]);
	out = xml_serialize_document(x, len_r);
	xml_free(x);
	return out;
}

static bool stored_bool(const struct xml_node *x, const char *name, bool dflt)
{
	const char *v = xml_attr(x, name);
	bool b;

	return v != NULL && parse_bool(v, &b) == 0 ? b : dflt;
}

static char *stored_text(const struct xml_node *x, const char *name)
{
	const char *v = xml_child_text(x, name, NS_STORED);
	return v != NULL ? xstrdup(v) : NULL;
}

static char **stored_list(const struct xml_node *x, const char *name,
			  size_t *n_r)
{
	size_t n = 0;
	char **list;
	const struct xml_node *c;

	for (c = xml_child(x, name, NS_STORED); c != NULL;
	     c = xml_next(c, name, NS_STORED))
		n++;
	list = xcalloc(n + 1, sizeof(char *));
	n = 0;
	for (c = xml_child(x, name, NS_STORED); c != NULL;
	     c = xml_next(c, name, NS_STORED))
		list[n++] = xstrdup(xml_text(c));
	*n_r = n;
	return list;
}

struct pep_node *pep_node_parse(const char *name, const char *data,
				size_t len)
{
	struct xml_node *x = xml_parse_document(data, len);
	struct pep_node *n;
	struct pep_config *c;
	const char *v;
	int i;

	if (x == NULL || !xml_is(x, "node", NS_STORED)) {
		xml_free(x);
		return NULL;
	}
	n = xcalloc(1, sizeof(*n));
	n->name = xstrdup(name);
	c = &n->cfg;
	pep_config_default(c);
	if ((v = xml_attr(x, "access")) != NULL &&
	    (i = option_index(access_options, v)) >= 0)
		c->access = (enum pep_access)i;
	if ((v = xml_attr(x, "max-items")) != NULL)
		c->max_items = (unsigned)strtoul(v, NULL, 10);
	c->persist_items = stored_bool(x, "persist", c->persist_items);
	c->deliver_notifications = stored_bool(x, "notify",
					       c->deliver_notifications);
	c->deliver_payloads = stored_bool(x, "payloads", c->deliver_payloads);
	c->notify_retract = stored_bool(x, "notify-retract", c->notify_retract);
	c->notify_delete = stored_bool(x, "notify-delete", c->notify_delete);
	c->notify_config = stored_bool(x, "notify-config", c->notify_config);
	c->type_normal = stored_bool(x, "type-normal", c->type_normal);
	if ((v = xml_attr(x, "send-last")) != NULL &&
	    (i = option_index(send_last_options, v)) >= 0)
		c->send_last = (enum pep_send_last)i;
	c->title = stored_text(x, "title");
	c->description = stored_text(x, "description");
	c->type = stored_text(x, "type");
	c->groups = stored_list(x, "group", &c->ngroups);
	n->subs = stored_list(x, "sub", &n->nsubs);
	xml_free(x);
	return n;
}
