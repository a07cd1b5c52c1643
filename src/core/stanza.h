/* Small helpers on stanza trees: kinds, replies and stanza errors
 * (RFC 6120 §8.3). */
#ifndef ROOST_CORE_STANZA_H
#define ROOST_CORE_STANZA_H

#include <stdbool.h>
#include <stddef.h>

struct xml_node;

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

enum stanza_kind { STANZA_MESSAGE, STANZA_PRESENCE, STANZA_IQ, STANZA_OTHER };

/* Kind of a top-level element in XML_NS_CLIENT; STANZA_OTHER otherwise. */
enum stanza_kind stanza_kind(const struct xml_node *x);

/* A message the offline store or the archive kept (serialized by
 * xml_serialize()) as a tree again, which the caller frees; NULL unless
 * data[0 .. len) is exactly one <message/>. */
struct xml_node *stanza_parse_message(const void *data, size_t len);

/* The error type RFC 6120 §8.3.3 gives a condition ("cancel", "modify",
 * "auth", "wait"). */
const char *stanza_error_type(const char *condition);

/* A new stanza tree <name from to type id/>; NULL arguments are omitted. */
struct xml_node *stanza_new(const char *name, const char *from, const char *to,
			    const char *type, const char *id);

/* An error reply to `stanza`: same name and id, from/to swapped, type
 * "error", the original children kept (RFC 6120 §8.3.1 allows it; we keep
 * them for messages, drop them for IQs), plus <error type=..><condition/>
 * [<text/>]</error>. Returns NULL when `stanza` is itself an error or an
 * IQ result: errors are never answered with errors. */
struct xml_node *stanza_error_reply(const struct xml_node *stanza,
				    const char *condition, const char *text);

/* <iq type='result'> answering `iq` (from/to swapped, same id), empty. */
struct xml_node *stanza_iq_result(const struct xml_node *iq);

/* The condition name of an error stanza, or NULL. */
const char *stanza_error_condition(const struct xml_node *stanza);

bool stanza_is_error(const struct xml_node *stanza);

#endif
