/* XML elements kept in a store (a stanza, a PEP payload, private XML, a
 * vCard): serialized with XML_NS_CLIENT as the default namespace, as if
 * they were stanzas of a jabber:client stream, and parsed back into a
 * tree with the stream parser's rules. */
#ifndef ROOST_XML_XML_DOCUMENT_H
#define ROOST_XML_XML_DOCUMENT_H

#include <stddef.h>

struct xml_node;

/* el serialized (xmalloc'd, NUL-terminated; *len_r, unless NULL, its
 * length without the NUL), namespaces declared where they differ from
 * XML_NS_CLIENT. */
char *xml_serialize_document(const struct xml_node *el, size_t *len_r);

/* The element in data[0 .. len) as a new tree (the caller xml_free()s
 * it), or NULL unless those bytes are exactly one well-formed element,
 * within XML_DOCUMENT_MAX_DEPTH levels and XML_DOCUMENT_MAX_ATTRS
 * attributes per element. Unprefixed elements are in XML_NS_CLIENT. */
struct xml_node *xml_parse_document(const void *data, size_t len);

/* What was stored passed the limits configured when it arrived, whatever
 * they were then; these only bound a damaged row. */
#define XML_DOCUMENT_MAX_DEPTH 1000
#define XML_DOCUMENT_MAX_ATTRS 1000

#endif
