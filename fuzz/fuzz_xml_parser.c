/* libFuzzer target: the XMPP stream parser (src/xml/xml_parser.c) and the
 * serializer behind it.
 *
 * The first bytes steer the run: the limits, and the sizes of the chunks
 * the rest is fed in (1 byte to 4 KiB, as reads arrive from a socket).
 * Stream restarts happen the way c2s does them: from inside the stanza
 * callback (after <proceed/> or <success/>), and after an error the
 * parser is reset and fed the rest. Every stanza is serialized, parsed
 * again on a fresh parser and serialized again: both serializations must
 * agree (what roost routes must be well-formed XML meaning the same). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util/buf.h"
#include "xml/xml.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

struct run {
	struct xml_parser *p;
	int opened, stanzas, errors;
	struct xml_node *last;      /* for the round trip */
};

struct check {
	struct buf out;
	int nstanzas;
	int failed;
};

static void check_stanza(void *ctx, struct xml_node *st)
{
	struct check *c = ctx;

	c->nstanzas++;
	buf_reset(&c->out);
	xml_serialize(&c->out, st, XML_NS_CLIENT);
	xml_free(st);
}

static void check_error(void *ctx, const char *cond, const char *text)
{
	struct check *c = ctx;
	c->failed = 1;
}

static const struct xml_parser_callbacks check_cb = {
	.stanza = check_stanza,
	.error = check_error,
};

#define HDR "<stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' to='x'>"

/* Serialize, reparse, reserialize: the two texts must be equal. */
static void round_trip(const struct xml_node *st)
{
	struct buf first = BUF_INIT;
	struct check c = { .out = BUF_INIT };
	struct xml_parser *p;

	xml_serialize(&first, st, XML_NS_CLIENT);
	p = xml_parser_new(NULL, &check_cb, &c);
	xml_parser_feed(p, HDR, sizeof(HDR) - 1);
	xml_parser_feed(p, first.data, first.len);
	if (c.failed || c.nstanzas != 1 || c.out.len != first.len ||
	    memcmp(c.out.data, first.data, first.len) != 0) {
		fprintf(stderr, "round trip differs:\n%.*s\n%.*s\n",
			(int)first.len, first.data, (int)c.out.len,
			c.out.data ? c.out.data : "");
		abort();
	}
	xml_parser_free(p);
	buf_free(&first);
	buf_free(&c.out);
}

static void touch(const struct xml_node *n)
{
	/* Walk the tree as handlers do. */
	for (const struct xml_node *ch = n->children; ch; ch = ch->next) {
		if (ch->type == XML_ELEMENT) {
			(void)xml_attr(ch, "id");
			(void)xml_text(ch);
			touch(ch);
		}
	}
}

static void on_open(void *ctx, const struct xml_node *hdr, const char *ns)
{
	struct run *r = ctx;

	r->opened++;
	(void)xml_attr(hdr, "to");
	(void)xml_attr(hdr, "version");
}

static void on_stanza(void *ctx, struct xml_node *st)
{
	struct run *r = ctx;
	struct xml_node *copy;

	r->stanzas++;
	touch(st);
	round_trip(st);
	copy = xml_copy(st);
	xml_free(st);
	/* c2s restarts the stream from inside the callback. */
	if (strcmp(copy->name, "proceed") == 0 ||
	    strcmp(copy->name, "success") == 0)
		xml_parser_reset(r->p);
	xml_free(copy);
}

static void on_close(void *ctx)
{
}

static void on_error(void *ctx, const char *cond, const char *text)
{
	struct run *r = ctx;

	r->errors++;
	if (cond == NULL || text == NULL)
		abort();
}

static const struct xml_parser_callbacks callbacks = {
	.stream_open = on_open,
	.stanza = on_stanza,
	.stream_close = on_close,
	.error = on_error,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xml_parser_limits lim;
	struct run r = { 0 };
	size_t pos;

	if (size < 4)
		return 0;
	/* Small limits most of the time, so that every limit is hit. */
	lim.max_stanza_bytes = data[0] & 1 ? 0 : 64 + (size_t)data[0] * 64;
	lim.max_depth = data[1] & 1 ? 0 : 4 + data[1] % 32;
	lim.max_attrs = data[2] & 1 ? 0 : 4 + data[2] % 16;
	r.p = xml_parser_new(&lim, &callbacks, &r);
	pos = 4;
	for (unsigned step = data[3]; pos < size; step = step * 33 + 7) {
		size_t want = (step >> 3) & 1 ? 1 + step % 7 : 1 + step % 4096;
		size_t n = size - pos < want ? size - pos : want;

		if (xml_parser_feed(r.p, (const char *)data + pos, n) != 0) {
			/* A failed parser refuses input until reset. */
			if (xml_parser_feed(r.p, "<a/>", 4) != -1)
				abort();
			xml_parser_reset(r.p);
		}
		(void)xml_parser_memory(r.p);
		pos += n;
	}
	xml_parser_free(r.p);
	return 0;
}
