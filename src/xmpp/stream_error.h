/* Stream errors (RFC 6120 §4.9). */
#ifndef ROOST_XMPP_STREAM_ERROR_H
#define ROOST_XMPP_STREAM_ERROR_H

struct buf;

#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"

/* Appends <stream:error><condition/>[<text/>]</stream:error> followed by
 * </stream:stream>. `condition` must be one of RFC 6120 §4.9.3's; an
 * unknown one is sent as undefined-condition. */
void stream_error_append(struct buf *out, const char *condition,
			 const char *text);

#endif
