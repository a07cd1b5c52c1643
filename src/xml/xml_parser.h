/* An incremental XMPP stream parser on expat (namespace mode). It resumes
 * after any partial read, builds one tree per top-level child of the stream
 * (a stanza, a <starttls/>, an <auth/>...) and enforces RFC 6120 §11.1 and
 * the configured limits. */
#ifndef ROOST_XML_XML_PARSER_H
#define ROOST_XML_XML_PARSER_H

#include <stddef.h>

struct xml_node;
struct xml_parser;

struct xml_parser_limits {
	size_t max_stanza_bytes; /* bytes of one top-level child, tags included */
	unsigned max_depth;      /* element depth inside a stanza (stanza = 1) */
	unsigned max_attrs;      /* attributes (namespace declarations included) per element */
};

struct xml_parser_callbacks {
	/* The stream header <stream:stream ...> arrived. `header` is an
	 * element named "stream" in XML_NS_STREAM with its attributes; its
	 * tree is freed after the call. `content_ns` is the default namespace
	 * the header declared ("" if none); stanzas in it are stored as
	 * XML_NS_CLIENT. A root that is not stream:stream in XML_NS_STREAM is
	 * reported through error() as invalid-namespace instead. */
	void (*stream_open)(void *ctx, const struct xml_node *header,
			    const char *content_ns);
	/* One complete top-level child. The callee owns it (xml_free). */
	void (*stanza)(void *ctx, struct xml_node *stanza);
	/* </stream:stream> arrived. */
	void (*stream_close)(void *ctx);
	/* The input broke the rules. `condition` is an RFC 6120 §4.9.3 stream
	 * error condition: "not-well-formed", "restricted-xml" (DTD, entity
	 * declaration, comment, processing instruction), "policy-violation"
	 * (a size, depth or attribute limit), "invalid-namespace",
	 * "bad-format", "unsupported-encoding". `text` is a short human
	 * explanation without any of the input in it. The parser stops;
	 * further feeds return -1 until reset. */
	void (*error)(void *ctx, const char *condition, const char *text);
};

struct xml_parser *xml_parser_new(const struct xml_parser_limits *limits,
				  const struct xml_parser_callbacks *cb,
				  void *ctx);
void xml_parser_free(struct xml_parser *p);

/* Feeds bytes. Callbacks run from inside this call. Returns 0, or -1 once
 * the parser is in the error state (error() was called, now or before).
 * A callback may call xml_parser_reset() (a stream restart after STARTTLS
 * or SASL success): the rest of the bytes of this feed are then discarded
 * (RFC 6120 §5.3.3 forbids acting on them) and the reset completes before
 * xml_parser_feed returns. A callback must not free the parser. */
int xml_parser_feed(struct xml_parser *p, const char *data, size_t len);

/* Starts a new stream: the next bytes must be a fresh stream header. */
void xml_parser_reset(struct xml_parser *p);

/* Bytes of memory the parser holds now (expat buffers, the partial tree),
 * for the idle-memory budget. Between stanzas, once a stanza has been
 * parsed, it holds no expat parser at all: a few hundred bytes. */
size_t xml_parser_memory(const struct xml_parser *p);

#endif
