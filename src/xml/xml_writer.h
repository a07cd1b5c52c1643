/* Serialization of stanza trees. */
#ifndef ROOST_XML_XML_WRITER_H
#define ROOST_XML_XML_WRITER_H

#include <stddef.h>

struct buf;
struct xml_node;

/* Appends `node` as XML to `out`. `content_ns` is the default namespace in
 * scope where the node is written (the stream's: "jabber:client" or
 * "jabber:server"); an element in XML_NS_CLIENT is written in content_ns,
 * and xmlns="..." is emitted only where the namespace differs from the one
 * in scope. Namespaced attributes get xml: (XML_NS_XML) or a generated
 * prefix with its declaration. Text and attribute values are escaped
 * (&amp; &lt; &gt; &quot; &apos;). Empty elements are written as <x/>. */
void xml_serialize(struct buf *out, const struct xml_node *node,
		   const char *content_ns);

/* The same into a buffer kept across calls, for the event loop thread
 * only: the bytes (NUL-terminated, *len_r of them) are valid until the
 * next call, and writable so that a caller holding plaintext can wipe
 * them. Stanzas are serialized for every send; a fresh buffer grown from
 * 8 bytes cost several reallocations each. A buffer grown past 64 KiB by
 * a rare big stanza is given back at the next call. */
char *xml_serialize_reused(const struct xml_node *node,
			   const char *content_ns, size_t *len_r);

/* Escapes `len` bytes of `s` for element content (attr = 0) or an
 * attribute value in either quote style (attr = 1). */
void xml_escape(struct buf *out, const char *s, size_t len, int attr);

#endif
