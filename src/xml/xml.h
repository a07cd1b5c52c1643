/* Stanza trees. A tree and everything in it (names, attributes, text) lives
 * in one arena owned by its root: xml_free(root) frees it all. Nodes are
 * namespace-aware: every element carries its namespace URI; prefixes are a
 * serialization detail and are not kept.
 *
 * The stream's content namespace (jabber:client on c2s, jabber:server on
 * s2s) is stored as XML_NS_CLIENT whatever the stream declared: the parser
 * maps it in, the writer maps it out (see xml_writer.h). So a stanza can be
 * routed between streams of different default namespaces unchanged. */
#ifndef ROOST_XML_XML_H
#define ROOST_XML_XML_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

#define XML_NS_CLIENT "jabber:client"
#define XML_NS_SERVER "jabber:server"
#define XML_NS_STREAM "http://etherx.jabber.org/streams"
#define XML_NS_XML "http://www.w3.org/XML/1998/namespace"

enum xml_type { XML_ELEMENT, XML_TEXT };

struct xml_attr {
	struct xml_attr *next;
	const char *ns;    /* NULL for an unqualified attribute (the usual) */
	const char *name;  /* local name */
	const char *value;
};

struct xml_node {
	enum xml_type type;
	struct xml_node *parent, *next, *children, *last_child;
	/* XML_ELEMENT */
	const char *name;  /* local name */
	const char *ns;    /* namespace URI; "" when none */
	struct xml_attr *attrs;
	/* XML_TEXT: unescaped character data, NUL-terminated */
	const char *text;
	size_t text_len;
	/* Set on the root only: the arena that owns the whole tree. */
	struct arena *arena;
};

/* A new tree whose root is <name xmlns=ns/>. */
struct xml_node *xml_new(const char *name, const char *ns);
void xml_free(struct xml_node *root);
/* The arena of the tree `node` belongs to. */
struct arena *xml_arena(const struct xml_node *node);

/* Appends a child element; ns NULL means the parent's namespace. */
struct xml_node *xml_add_child(struct xml_node *parent, const char *name,
			       const char *ns);
/* Appends text (copied); adjacent text is merged into one node. */
void xml_add_text(struct xml_node *parent, const char *text, size_t len);
/* Shorthand: adds <name>text</name> in the parent's namespace. */
struct xml_node *xml_add_text_child(struct xml_node *parent, const char *name,
				    const char *text);
/* Sets (replaces) an unqualified attribute; value NULL removes it. */
void xml_set_attr(struct xml_node *node, const char *name, const char *value);
/* Sets a namespaced attribute (e.g. XML_NS_XML, "lang"). */
void xml_set_attr_ns(struct xml_node *node, const char *ns, const char *name,
		     const char *value);

/* Value of an unqualified attribute, or NULL. */
const char *xml_attr(const struct xml_node *node, const char *name);
const char *xml_attr_ns(const struct xml_node *node, const char *ns,
			const char *name);

/* First child element matching name and ns (either NULL matches any). */
struct xml_node *xml_child(const struct xml_node *node, const char *name,
			   const char *ns);
/* Next sibling element after `prev` matching name and ns. */
struct xml_node *xml_next(const struct xml_node *prev, const char *name,
			  const char *ns);
/* First child element of any name. */
struct xml_node *xml_first_element(const struct xml_node *node);
/* Number of child elements. */
size_t xml_count_elements(const struct xml_node *node);

/* The concatenated direct text of `node`, in its tree's arena ("" if none). */
const char *xml_text(const struct xml_node *node);
/* Text of the first child element name/ns, or NULL if there is no such child. */
const char *xml_child_text(const struct xml_node *node, const char *name,
			   const char *ns);

/* A deep copy of `node` as the root of a new tree. */
struct xml_node *xml_copy(const struct xml_node *node);
/* A deep copy of `node` appended as the last child of `parent`. */
struct xml_node *xml_copy_into(struct xml_node *parent,
			       const struct xml_node *node);
/* Unlinks `node` from its parent (its memory stays in the arena). */
void xml_remove(struct xml_node *node);
/* Removes every child (elements and text). */
void xml_remove_children(struct xml_node *node);

bool xml_is(const struct xml_node *node, const char *name, const char *ns);

#endif
