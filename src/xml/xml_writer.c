/* Serialization of stanza trees (see xml_writer.h).
 *
 * Elements never get a prefix except those in the streams namespace: a
 * default namespace declaration is written wherever an element's namespace
 * differs from the one in scope, which is what RFC 6120 §4.8 asks of
 * content namespaces. Stream elements (<stream:features/>,
 * <stream:error/>) keep the conventional "stream:" prefix, which the
 * stream header always declares; peers match on it more often than they
 * should. */
#include "xml/xml_writer.h"

#include <stdbool.h>
#include <string.h>

#include "util/buf.h"
#include "xml/xml.h"

#define XMLNS_NS "http://www.w3.org/2000/xmlns/"

#define APPEND_LIT(out, s) buf_append((out), (s), sizeof(s) - 1)

/* Bytes that need care: 1 means escape or drop (see xml_escape). C0
 * controls other than tab, LF and CR cannot be written in XML 1.0 at all,
 * not even as references, so they are dropped rather than letting one
 * stanza kill the receiving stream. */
#define C0_BAD \
	[0x00 ... 0x08] = 1, [0x0b] = 1, [0x0c] = 1, [0x0e ... 0x1f] = 1

static const unsigned char text_class[256] = {
	C0_BAD, ['&'] = 1, ['<'] = 1, ['>'] = 1,
	/* A literal CR would come back as LF (end-of-line handling). */
	['\r'] = 1,
};

static const unsigned char attr_class[256] = {
	C0_BAD, ['&'] = 1, ['<'] = 1, ['>'] = 1, ['\r'] = 1,
	['"'] = 1, ['\''] = 1,
	/* Attribute-value normalization would turn these into spaces. */
	['\t'] = 1, ['\n'] = 1,
};

void xml_escape(struct buf *out, const char *s, size_t len, int attr)
{
	const unsigned char *cls = attr ? attr_class : text_class;
	size_t i, start = 0;

	/* Copy runs of plain bytes in one go: most text has no specials. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!cls[c])
			continue;
		if (i > start)
			buf_append(out, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '&': APPEND_LIT(out, "&amp;"); break;
		case '<': APPEND_LIT(out, "&lt;"); break;
		case '>': APPEND_LIT(out, "&gt;"); break;
		case '"': APPEND_LIT(out, "&quot;"); break;
		case '\'': APPEND_LIT(out, "&apos;"); break;
		case '\t': APPEND_LIT(out, "&#9;"); break;
		case '\n': APPEND_LIT(out, "&#10;"); break;
		case '\r': APPEND_LIT(out, "&#13;"); break;
		default: break; /* an unwritable control character */
		}
	}
	if (len > start)
		buf_append(out, s + start, len - start);
}

static void write_attr_value(struct buf *out, const char *v)
{
	APPEND_LIT(out, "='");
	xml_escape(out, v, strlen(v), 1);
	buf_append(out, "'", 1);
}

/* The namespace attribute `a` is written in: attributes outside the
 * unqualified and xml: cases get a prefix ns1, ns2... in order of first
 * use on this element; *first_r says whether `a` is that first use (and so
 * must declare it). Quadratic, but only over the rare namespaced
 * attributes of one element, which max_attrs bounds. */
static unsigned attr_prefix(const struct xml_node *n, const struct xml_attr *a,
			    bool *first_r)
{
	const struct xml_attr *b, *c;
	unsigned k = 0;

	for (b = n->attrs; b != a; b = b->next) {
		if (b->ns == NULL || b->ns[0] == '\0' ||
		    strcmp(b->ns, XML_NS_XML) == 0 ||
		    strcmp(b->ns, XMLNS_NS) == 0)
			continue;
		for (c = n->attrs; c != b; c = c->next)
			if (c->ns != NULL && strcmp(c->ns, b->ns) == 0)
				break;
		if (c != b)
			continue; /* b's namespace was already counted */
		k++;
		if (strcmp(b->ns, a->ns) == 0) {
			*first_r = false;
			return k;
		}
	}
	*first_r = true;
	return k + 1;
}

static void write_attrs(struct buf *out, const struct xml_node *n)
{
	const struct xml_attr *a;
	unsigned k;
	bool first;

	for (a = n->attrs; a != NULL; a = a->next) {
		if (a->ns == NULL || a->ns[0] == '\0') {
			/* The writer alone decides namespace declarations. */
			if (strcmp(a->name, "xmlns") == 0)
				continue;
			buf_append(out, " ", 1);
			buf_append_str(out, a->name);
		} else if (strcmp(a->ns, XML_NS_XML) == 0) {
			APPEND_LIT(out, " xml:");
			buf_append_str(out, a->name);
		} else if (strcmp(a->ns, XMLNS_NS) == 0) {
			continue;
		} else {
			k = attr_prefix(n, a, &first);
			if (first) {
				buf_appendf(out, " xmlns:ns%u", k);
				write_attr_value(out, a->ns);
			}
			buf_appendf(out, " ns%u:", k);
			buf_append_str(out, a->name);
		}
		write_attr_value(out, a->value);
	}
}

static void write_element(struct buf *out, const struct xml_node *n,
			  const char *scope, const char *content_ns)
{
	const char *ns = n->ns != NULL ? n->ns : "";
	const struct xml_node *c;
	bool stream;

	if (strcmp(ns, XML_NS_CLIENT) == 0)
		ns = content_ns;
	stream = strcmp(ns, XML_NS_STREAM) == 0;

	buf_append(out, "<", 1);
	if (stream)
		APPEND_LIT(out, "stream:");
	buf_append_str(out, n->name);
	if (!stream && strcmp(ns, scope) != 0) {
		APPEND_LIT(out, " xmlns");
		write_attr_value(out, ns);
		scope = ns;
	}
	write_attrs(out, n);
	if (n->children == NULL) {
		APPEND_LIT(out, "/>");
		return;
	}
	buf_append(out, ">", 1);
	for (c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT)
			xml_escape(out, c->text, c->text_len, 0);
		else
			write_element(out, c, scope, content_ns);
	}
	APPEND_LIT(out, "</");
	if (stream)
		APPEND_LIT(out, "stream:");
	buf_append_str(out, n->name);
	buf_append(out, ">", 1);
}

void xml_serialize(struct buf *out, const struct xml_node *node,
		   const char *content_ns)
{
	if (content_ns == NULL)
		content_ns = XML_NS_CLIENT;
	if (node->type == XML_TEXT)
		xml_escape(out, node->text, node->text_len, 0);
	else
		write_element(out, node, content_ns, content_ns);
}

char *xml_serialize_reused(const struct xml_node *node,
			   const char *content_ns, size_t *len_r)
{
	static struct buf b = BUF_INIT;

	if (b.cap > 65536)
		buf_free(&b);
	b.len = 0;
	xml_serialize(&b, node, content_ns);
	if (b.data == NULL)
		buf_append(&b, "", 0); /* an empty text node: still a string */
	*len_r = b.len;
	return b.data;
}
