/* The SASL exchange of a c2s stream (RFC 6120 §6): SCRAM-SHA-1/-256 with
 * and without -PLUS, PLAIN over TLS. Credentials are looked up through the
 * store; PLAIN's PBKDF2 and the keyring unlock of a verified login run on
 * the worker pool. Failures are delayed by the auth throttle. */
#ifndef ROOST_XMPP_C2S_SASL_H
#define ROOST_XMPP_C2S_SASL_H

#include <stdbool.h>

struct buf;
struct c2s;
struct xml_node;

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"

/* Appends <mechanisms/> (and XEP-0440 channel binding types) for the
 * stream's current security. */
void c2s_sasl_features(struct c2s *c, struct buf *out);
/* Handles <auth/>, <response/>, <abort/> in NS_SASL. */
void c2s_sasl_element(struct c2s *c, struct xml_node *el);
/* Frees the exchange state, wiping secrets. */
void c2s_sasl_free(struct c2s *c);

#endif
