/* Stored XML (xml_document.h). The stream parser reads an element back
 * as the one child of a synthetic stream whose header declares the
 * default namespace the serialization left implicit. */
#include "xml/xml_document.h"

#include <stdbool.h>

#include "util/buf.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

static const char header[] =
	"<stream:stream xmlns='" XML_NS_CLIENT "' "
	"xmlns:stream='" XML_NS_STREAM "'>";

char *xml_serialize_document(const struct xml_node *el, size_t *len_r)
{
	struct buf b = BUF_INIT;

	xml_serialize(&b, el, XML_NS_CLIENT);
	return buf_steal(&b, len_r);
}

struct document {
	struct xml_node *got;    /* the first element */
	unsigned n;              /* elements seen */
	bool bad;
};

static void doc_open(void *ctx, const struct xml_node *h, const char *ns)
{
	(void)ctx;
	(void)h;
	(void)ns;
}

static void doc_element(void *ctx, struct xml_node *el)
{
	struct document *d = ctx;

	if (d->n++ == 0)
		d->got = el;
	else
		xml_free(el);
}

/* A </stream:stream> in the data: not one element. */
static void doc_close(void *ctx)
{
	((struct document *)ctx)->bad = true;
}

static void doc_error(void *ctx, const char *condition, const char *text)
{
	(void)condition;
	(void)text;
	((struct document *)ctx)->bad = true;
}

struct xml_node *xml_parse_document(const void *data, size_t len)
{
	static const struct xml_parser_callbacks cb = {
		.stream_open = doc_open,
		.stanza = doc_element,
		.stream_close = doc_close,
		.error = doc_error,
	};
	/* The header counts against the first unit's size. */
	const struct xml_parser_limits limits = {
		.max_stanza_bytes = sizeof(header) + len,
		.max_depth = XML_DOCUMENT_MAX_DEPTH,
		.max_attrs = XML_DOCUMENT_MAX_ATTRS,
	};
	struct document d = { NULL, 0, false };
	struct xml_parser *p = xml_parser_new(&limits, &cb, &d);

	if (xml_parser_feed(p, header, sizeof(header) - 1) != 0 ||
	    xml_parser_feed(p, data, len) != 0)
		d.bad = true;
	xml_parser_free(p);
	if (d.bad || d.n != 1) {
		xml_free(d.got);
		return NULL;
	}
	return d.got;
}
