/* XML elements that modules keep in the per-user data store (XEP-0049
 * private XML in mod_private.c, the XEP-0054 vCard in mod_vcard.c): the
 * stored bytes are our own serialization of an element a client sent,
 * read back with a parser of the same rules. */
#ifndef ROOST_MOD_PRIVATE_H
#define ROOST_MOD_PRIVATE_H

#include <stddef.h>

struct xml_node;

/* The element serialized (xmalloc'd, NUL-terminated; *len_r its length
 * without the NUL), namespaces declared where they differ from
 * jabber:client. */
char *stored_xml_serialize(const struct xml_node *el, size_t *len_r);

/* The one element in `data` as the root of a new tree (caller frees), or
 * NULL if the bytes are not exactly one well-formed element (a damaged
 * row; the caller logs it). */
struct xml_node *stored_xml_parse(const void *data, size_t len);

#endif
