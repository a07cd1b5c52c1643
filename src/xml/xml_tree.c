/* Stanza trees: construction, lookup, copy, removal (see xml.h).
 *
 * Everything of a tree lives in its root's arena, so nothing here frees a
 * node: removal only unlinks. Only the root carries the arena; a subtree
 * unlinked by xml_remove() has none and is a read-only view, valid until
 * its former tree is freed (copy it to keep or change it). */
#include "xml/xml.h"

#include <assert.h>
#include <string.h>

#include "util/arena.h"

static struct xml_node *node_new(struct arena *a, enum xml_type type)
{
	struct xml_node *n = arena_alloc(a, sizeof(*n));

	memset(n, 0, sizeof(*n));
	n->type = type;
	return n;
}

/* The namespaces every stanza carries point at static strings instead of
 * a copy per node: less arena, and cheaper copies of routed stanzas. */
static const char *ns_dup(struct arena *a, const char *ns)
{
	if (ns == NULL)
		return NULL;
	if (ns[0] == '\0')
		return "";
	if (strcmp(ns, XML_NS_CLIENT) == 0)
		return XML_NS_CLIENT;
	if (strcmp(ns, XML_NS_XML) == 0)
		return XML_NS_XML;
	return arena_strdup(a, ns);
}

static void link_child(struct xml_node *parent, struct xml_node *n)
{
	n->parent = parent;
	n->next = NULL;
	if (parent->last_child != NULL)
		parent->last_child->next = n;
	else
		parent->children = n;
	parent->last_child = n;
}

/* The arena to grow the tree with; a detached subtree has none. */
static struct arena *tree_arena(const struct xml_node *node)
{
	struct arena *a = xml_arena(node);

	assert(a != NULL && "changing a detached subtree");
	return a;
}

static bool matches(const struct xml_node *n, const char *name,
		    const char *ns)
{
	return n->type == XML_ELEMENT &&
	    (name == NULL || strcmp(n->name, name) == 0) &&
	    (ns == NULL || strcmp(n->ns, ns) == 0);
}

struct xml_node *xml_new(const char *name, const char *ns)
{
	struct arena *a = arena_new(0);
	struct xml_node *n = node_new(a, XML_ELEMENT);

	n->name = arena_strdup(a, name);
	n->ns = ns_dup(a, ns != NULL ? ns : "");
	n->arena = a;
	return n;
}

void xml_free(struct xml_node *root)
{
	/* Only a root owns memory: freeing an inner or detached node would
	 * free its whole tree under its owner's feet. */
	if (root == NULL || root->arena == NULL)
		return;
	arena_free(root->arena);
}

struct arena *xml_arena(const struct xml_node *node)
{
	while (node->parent != NULL)
		node = node->parent;
	return node->arena;
}

struct xml_node *xml_add_child(struct xml_node *parent, const char *name,
			       const char *ns)
{
	struct arena *a = tree_arena(parent);
	struct xml_node *n = node_new(a, XML_ELEMENT);

	n->name = arena_strdup(a, name);
	/* The parent's string is in this arena (or static): share it. */
	n->ns = ns != NULL ? ns_dup(a, ns) : parent->ns;
	link_child(parent, n);
	return n;
}

void xml_add_text(struct xml_node *parent, const char *text, size_t len)
{
	struct arena *a;
	struct xml_node *last = parent->last_child;
	char *s;

	if (len == 0)
		return;
	a = tree_arena(parent);
	if (last != NULL && last->type == XML_TEXT) {
		/* Merging copies the old text once more; the parser never
		 * merges (it buffers text itself), so this stays rare. */
		s = arena_alloc(a, last->text_len + len + 1);
		memcpy(s, last->text, last->text_len);
		memcpy(s + last->text_len, text, len);
		s[last->text_len + len] = '\0';
		last->text = s;
		last->text_len += len;
		return;
	}
	last = node_new(a, XML_TEXT);
	last->text = arena_strndup(a, text, len);
	last->text_len = len;
	link_child(parent, last);
}

struct xml_node *xml_add_text_child(struct xml_node *parent, const char *name,
				    const char *text)
{
	struct xml_node *n = xml_add_child(parent, name, NULL);

	if (text != NULL)
		xml_add_text(n, text, strlen(text));
	return n;
}

static bool attr_is(const struct xml_attr *a, const char *ns, const char *name)
{
	if (strcmp(a->name, name) != 0)
		return false;
	if (a->ns == NULL || ns == NULL)
		return a->ns == ns;
	return strcmp(a->ns, ns) == 0;
}

void xml_set_attr_ns(struct xml_node *node, const char *ns, const char *name,
		     const char *value)
{
	struct arena *a;
	struct xml_attr *at, *prev = NULL;

	if (ns != NULL && ns[0] == '\0')
		ns = NULL;
	for (at = node->attrs; at != NULL; prev = at, at = at->next) {
		if (!attr_is(at, ns, name))
			continue;
		if (value == NULL) {
			if (prev != NULL)
				prev->next = at->next;
			else
				node->attrs = at->next;
		} else {
			at->value = arena_strdup(tree_arena(node), value);
		}
		return;
	}
	if (value == NULL)
		return;
	/* Appended, so attributes are written in the order they were set. */
	a = tree_arena(node);
	at = arena_alloc(a, sizeof(*at));
	at->next = NULL;
	at->ns = ns_dup(a, ns);
	at->name = arena_strdup(a, name);
	at->value = arena_strdup(a, value);
	if (prev != NULL)
		prev->next = at;
	else
		node->attrs = at;
}

void xml_set_attr(struct xml_node *node, const char *name, const char *value)
{
	xml_set_attr_ns(node, NULL, name, value);
}

const char *xml_attr_ns(const struct xml_node *node, const char *ns,
			const char *name)
{
	const struct xml_attr *a;

	if (ns != NULL && ns[0] == '\0')
		ns = NULL;
	for (a = node->attrs; a != NULL; a = a->next)
		if (attr_is(a, ns, name))
			return a->value;
	return NULL;
}

const char *xml_attr(const struct xml_node *node, const char *name)
{
	return xml_attr_ns(node, NULL, name);
}

struct xml_node *xml_child(const struct xml_node *node, const char *name,
			   const char *ns)
{
	struct xml_node *c;

	for (c = node->children; c != NULL; c = c->next)
		if (matches(c, name, ns))
			return c;
	return NULL;
}

struct xml_node *xml_next(const struct xml_node *prev, const char *name,
			  const char *ns)
{
	struct xml_node *c;

	for (c = prev->next; c != NULL; c = c->next)
		if (matches(c, name, ns))
			return c;
	return NULL;
}

struct xml_node *xml_first_element(const struct xml_node *node)
{
	return xml_child(node, NULL, NULL);
}

size_t xml_count_elements(const struct xml_node *node)
{
	const struct xml_node *c;
	size_t n = 0;

	for (c = node->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT)
			n++;
	return n;
}

const char *xml_text(const struct xml_node *node)
{
	const struct xml_node *c, *first = NULL;
	struct arena *a;
	size_t len = 0, pieces = 0;
	char *s, *p;

	for (c = node->children; c != NULL; c = c->next) {
		if (c->type != XML_TEXT)
			continue;
		if (first == NULL)
			first = c;
		len += c->text_len;
		pieces++;
	}
	if (pieces == 0)
		return "";
	/* The common case (one text node) costs nothing. */
	a = xml_arena(node);
	if (pieces == 1 || a == NULL)
		return first->text;
	s = p = arena_alloc(a, len + 1);
	for (c = first; c != NULL; c = c->next) {
		if (c->type != XML_TEXT)
			continue;
		memcpy(p, c->text, c->text_len);
		p += c->text_len;
	}
	*p = '\0';
	return s;
}

const char *xml_child_text(const struct xml_node *node, const char *name,
			   const char *ns)
{
	const struct xml_node *c = xml_child(node, name, ns);

	return c != NULL ? xml_text(c) : NULL;
}

/* Builds the copy off to the side and links nothing into the source, so
 * copying a node into its own subtree terminates. */
static struct xml_node *copy_node(struct arena *a, const struct xml_node *src)
{
	struct xml_node *n = node_new(a, src->type);
	const struct xml_attr *sa;
	struct xml_attr **tail;
	const struct xml_node *c;

	if (src->type == XML_TEXT) {
		char *t = arena_alloc(a, src->text_len + 1);

		memcpy(t, src->text, src->text_len);
		t[src->text_len] = '\0';
		n->text = t;
		n->text_len = src->text_len;
		return n;
	}
	n->name = arena_strdup(a, src->name);
	n->ns = ns_dup(a, src->ns);
	tail = &n->attrs;
	for (sa = src->attrs; sa != NULL; sa = sa->next) {
		struct xml_attr *at = arena_alloc(a, sizeof(*at));

		at->next = NULL;
		at->ns = ns_dup(a, sa->ns);
		at->name = arena_strdup(a, sa->name);
		at->value = arena_strdup(a, sa->value);
		*tail = at;
		tail = &at->next;
	}
	for (c = src->children; c != NULL; c = c->next)
		link_child(n, copy_node(a, c));
	return n;
}

struct xml_node *xml_copy(const struct xml_node *node)
{
	struct arena *a = arena_new(0);
	struct xml_node *n = copy_node(a, node);

	n->arena = a;
	return n;
}

struct xml_node *xml_copy_into(struct xml_node *parent,
			       const struct xml_node *node)
{
	struct xml_node *n = copy_node(tree_arena(parent), node);

	link_child(parent, n);
	return n;
}

void xml_remove(struct xml_node *node)
{
	struct xml_node *parent = node->parent, *c, *prev = NULL;

	if (parent == NULL)
		return;
	for (c = parent->children; c != NULL && c != node; c = c->next)
		prev = c;
	if (c == NULL)
		return;
	if (prev != NULL)
		prev->next = node->next;
	else
		parent->children = node->next;
	if (parent->last_child == node)
		parent->last_child = prev;
	node->parent = NULL;
	node->next = NULL;
}

void xml_remove_children(struct xml_node *node)
{
	struct xml_node *c, *next;

	for (c = node->children; c != NULL; c = next) {
		next = c->next;
		c->parent = NULL;
		c->next = NULL;
	}
	node->children = node->last_child = NULL;
}

bool xml_is(const struct xml_node *node, const char *name, const char *ns)
{
	return node != NULL && matches(node, name, ns);
}
