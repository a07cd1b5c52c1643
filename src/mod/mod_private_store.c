/* Serializing and re-reading the elements mod_private and mod_vcard keep
 * in the per-user data store. */
#include <stdbool.h>
#include <string.h>

#include "mod/mod_private.h"
#include "util/buf.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

/* The element is written as if it were a stanza of a jabber:client
 * stream, and read back inside such a stream. */
static const char stream_header[] =
	"<stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams'>";

char *stored_xml_serialize(const struct xml_node *el, size_t *len_r)
{
	struct buf b = BUF_INIT;

	xml_serialize(&b, el, XML_NS_CLIENT);
	return buf_steal(&b, len_r);
}

struct reparse {
	struct xml_node *got;
	unsigned n;
	bool bad;
};

static void rp_open(void *ctx, const struct xml_node *header,
		    const char *content_ns)
{
	(void)ctx;
	(void)header;
	(void)content_ns;
}

static void rp_stanza(void *ctx, struct xml_node *el)
{
	struct reparse *r = ctx;

	if (r->got != NULL)
		xml_free(r->got);
	r->got = el;
	r->n++;
}

static void rp_close(void *ctx)
{
	((struct reparse *)ctx)->bad = true;
}

static void rp_error(void *ctx, const char *condition, const char *text)
{
	(void)condition;
	(void)text;
	((struct reparse *)ctx)->bad = true;
}

struct xml_node *stored_xml_parse(const void *data, size_t len)
{
	static const struct xml_parser_callbacks cb = {
		.stream_open = rp_open,
		.stanza = rp_stanza,
		.stream_close = rp_close,
		.error = rp_error,
	};
	/* What we stored passed the configured stanza limits once; these
	 * only need to admit whatever any configuration could have let in,
	 * while still bounding a damaged row. The stream header counts
	 * against the first unit. */
	struct xml_parser_limits limits = {
		.max_stanza_bytes = len + sizeof(stream_header),
		.max_depth = 1000,
		.max_attrs = 1000,
	};
	struct reparse r = { NULL, 0, false };
	struct xml_parser *p = xml_parser_new(&limits, &cb, &r);

	if (xml_parser_feed(p, stream_header, sizeof(stream_header) - 1) != 0 ||
	    xml_parser_feed(p, data, len) != 0)
		r.bad = true;
	xml_parser_free(p);
	if (r.bad || r.n != 1) {
		if (r.got != NULL)
			xml_free(r.got);
		return NULL;
	}
	return r.got;
}
