/* Unit tests for src/xml: trees, the stream parser, the serializer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_document.h"
#include "xml/xml_parser.h"
#include "xml/xml_writer.h"

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define SMILE "\xE2\x98\xBA" /* U+263A */

#define HDR_NS \
	"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
#define HDR "<stream:stream " HDR_NS ">"

static const char realistic[] =
	"<?xml version='1.0' encoding='UTF-8'?>"
	"<stream:stream xmlns='jabber:client'"
	" xmlns:stream='http://etherx.jabber.org/streams'"
	" to='example.com' version='1.0' xml:lang='en'>\n  "
	"<stream:features>"
	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
	"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
	"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
	"</mechanisms></stream:features>\n"
	"<message from='juliet@example.com/balcony' to='romeo@example.net'"
	" type=\"chat\" id='m1' xml:lang='fr'>"
	"<body>Tom &amp; Jerry &lt;3 &#x263A; &#9786; "
	"<![CDATA[<raw> & ]]]]>tail</body>"
	"<x xmlns='jabber:x:oob' note='a &amp; b &lt; c &#x263A; &quot;q&quot; &apos;'>"
	"<url>http://x/?a=1&amp;b=2</url></x>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"<html xmlns='http://jabber.org/protocol/xhtml-im'>"
	"<body xmlns='http://www.w3.org/1999/xhtml'>"
	"<p style='font-weight:bold'>hi <em>there</em>\r\n!</p></body></html>"
	"</message> \t\r\n "
	"<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"
	"<presence/>"
	"</stream:stream>";

static const char realistic_message[] =
	"<message from='juliet@example.com/balcony' to='romeo@example.net'"
	" type='chat' id='m1' xml:lang='fr'>"
	"<body>Tom &amp; Jerry &lt;3 " SMILE " " SMILE " &lt;raw&gt; &amp; ]]tail</body>"
	"<x xmlns='jabber:x:oob' note='a &amp; b &lt; c " SMILE " &quot;q&quot; &apos;'>"
	"<url>http://x/?a=1&amp;b=2</url></x>"
	"<active xmlns='http://jabber.org/protocol/chatstates'/>"
	"<html xmlns='http://jabber.org/protocol/xhtml-im'>"
	"<body xmlns='http://www.w3.org/1999/xhtml'>"
	"<p style='font-weight:bold'>hi <em>there</em>\n!</p></body></html>"
	"</message>";

static const char realistic_features[] =
	"<stream:features>"
	"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
	"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
	"<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>"
	"</mechanisms></stream:features>";

/* ---- a recording parser client ---- */

#define MAX_KEEP 16

struct events {
	struct xml_parser *parser;
	struct buf log; /* a transcript of every callback */
	int opens, stanzas, closes, errors;
	const char *cond;
	char content_ns[64];
	char hdr_to[64], hdr_lang[16];
	struct xml_node *keep[MAX_KEEP];
	int nkeep;
	int reset_on_stanza; /* reset from inside the nth stanza callback */
	int reset_on_error;
};

static void ev_open(void *ctx, const struct xml_node *hdr, const char *ns)
{
	struct events *ev = ctx;
	const char *to = xml_attr(hdr, "to");
	const char *lang = xml_attr_ns(hdr, XML_NS_XML, "lang");

	assert_true(xml_is(hdr, "stream", XML_NS_STREAM));
	ev->opens++;
	snprintf(ev->content_ns, sizeof(ev->content_ns), "%s", ns);
	snprintf(ev->hdr_to, sizeof(ev->hdr_to), "%s", to ? to : "-");
	snprintf(ev->hdr_lang, sizeof(ev->hdr_lang), "%s", lang ? lang : "-");
	buf_appendf(&ev->log, "open ns=%s to=%s lang=%s version=%s\n", ns,
	    ev->hdr_to, ev->hdr_lang,
	    xml_attr(hdr, "version") ? xml_attr(hdr, "version") : "-");
}

static void ev_stanza(void *ctx, struct xml_node *st)
{
	struct events *ev = ctx;

	ev->stanzas++;
	buf_append_str(&ev->log, "stanza ");
	xml_serialize(&ev->log, st, ev->content_ns[0] ? ev->content_ns :
	    XML_NS_CLIENT);
	buf_append_str(&ev->log, "\n");
	if (ev->nkeep < MAX_KEEP)
		ev->keep[ev->nkeep++] = st;
	else
		xml_free(st);
	if (ev->reset_on_stanza == ev->stanzas)
		xml_parser_reset(ev->parser);
}

static void ev_close(void *ctx)
{
	struct events *ev = ctx;

	ev->closes++;
	buf_append_str(&ev->log, "close\n");
}

static void ev_error(void *ctx, const char *cond, const char *text)
{
	struct events *ev = ctx;

	assert_non_null(text);
	ev->errors++;
	ev->cond = cond;
	buf_appendf(&ev->log, "error %s\n", cond);
	if (ev->reset_on_error)
		xml_parser_reset(ev->parser);
}

static const struct xml_parser_callbacks ev_cb = {
	ev_open, ev_stanza, ev_close, ev_error,
};

static const struct xml_parser_limits big_limits = { 1 << 20, 64, 64 };

static void ev_init(struct events *ev, const struct xml_parser_limits *lim)
{
	memset(ev, 0, sizeof(*ev));
	ev->parser = xml_parser_new(lim ? lim : &big_limits, &ev_cb, ev);
}

static void ev_done(struct events *ev)
{
	for (int i = 0; i < ev->nkeep; i++)
		xml_free(ev->keep[i]);
	ev->nkeep = 0;
	xml_parser_free(ev->parser);
	ev->parser = NULL;
	buf_free(&ev->log);
}

/* Feeds `len` bytes in pieces of `step` (0: one piece); stops at the first
 * error and returns the last result. */
static int feed_steps(struct events *ev, const char *s, size_t len, size_t step)
{
	int rc = 0;

	if (step == 0)
		step = len ? len : 1;
	for (size_t i = 0; i < len; i += step) {
		size_t n = len - i < step ? len - i : step;

		rc = xml_parser_feed(ev->parser, s + i, n);
		if (rc < 0)
			break;
	}
	return rc;
}

static int feed_str(struct events *ev, const char *s, size_t step)
{
	return feed_steps(ev, s, strlen(s), step);
}

/* Runs a whole input through a fresh parser; returns the transcript. */
static char *transcript(const struct xml_parser_limits *lim, const char *s,
			size_t len, size_t step)
{
	struct events ev;
	char *t;

	ev_init(&ev, lim);
	feed_steps(&ev, s, len, step);
	t = buf_steal(&ev.log, NULL);
	ev_done(&ev);
	return t;
}

static const char *ser(struct buf *b, const struct xml_node *n,
		       const char *content_ns)
{
	buf_reset(b);
	xml_serialize(b, n, content_ns);
	return b->data;
}

/* Expects `in` to end in error `cond` after `stanzas` stanzas, whether
 * fed in one piece or one byte at a time. */
static void expect_error(const struct xml_parser_limits *lim, const char *in,
			 const char *cond, int stanzas)
{
	static const size_t steps[] = { 0, 1 };

	for (size_t i = 0; i < 2; i++) {
		struct events ev;

		ev_init(&ev, lim);
		assert_int_equal(feed_str(&ev, in, steps[i]), -1);
		assert_int_equal(ev.errors, 1);
		assert_string_equal(ev.cond, cond);
		assert_int_equal(ev.stanzas, stanzas);
		/* The error state sticks, silently. */
		assert_int_equal(xml_parser_feed(ev.parser, " ", 1), -1);
		assert_int_equal(ev.errors, 1);
		ev_done(&ev);
	}
}

/* ---- parsing a realistic stream ---- */

static void test_parse_realistic(void **state)
{
	struct events ev;
	struct buf b = BUF_INIT;
	struct xml_node *feat, *msg, *x, *html, *iq;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, realistic, 0), 0);
	assert_int_equal(ev.errors, 0);
	assert_int_equal(ev.opens, 1);
	assert_int_equal(ev.closes, 1);
	assert_int_equal(ev.stanzas, 4);
	assert_string_equal(ev.content_ns, "jabber:client");
	assert_string_equal(ev.hdr_to, "example.com");
	assert_string_equal(ev.hdr_lang, "en");

	feat = ev.keep[0];
	assert_true(xml_is(feat, "features", XML_NS_STREAM));
	assert_non_null(xml_child(xml_child(feat, "starttls", NS_TLS),
	    "required", NS_TLS));
	assert_string_equal(ser(&b, feat, "jabber:client"), realistic_features);

	msg = ev.keep[1];
	assert_true(xml_is(msg, "message", XML_NS_CLIENT));
	assert_null(msg->parent);
	assert_non_null(msg->arena);
	assert_string_equal(xml_attr(msg, "type"), "chat");
	assert_string_equal(xml_attr_ns(msg, XML_NS_XML, "lang"), "fr");
	assert_null(xml_attr(msg, "lang"));
	assert_string_equal(xml_child_text(msg, "body", XML_NS_CLIENT),
	    "Tom & Jerry <3 " SMILE " " SMILE " <raw> & ]]tail");
	x = xml_child(msg, "x", "jabber:x:oob");
	assert_non_null(x);
	assert_string_equal(xml_attr(x, "note"),
	    "a & b < c " SMILE " \"q\" '");
	assert_string_equal(xml_child_text(x, "url", "jabber:x:oob"),
	    "http://x/?a=1&b=2");
	html = xml_child(msg, "html", "http://jabber.org/protocol/xhtml-im");
	assert_non_null(xml_child(html, "body", "http://www.w3.org/1999/xhtml"));
	assert_null(xml_child(html, "body", XML_NS_CLIENT));
	assert_int_equal(xml_count_elements(msg), 4);
	assert_string_equal(ser(&b, msg, "jabber:client"), realistic_message);

	iq = ev.keep[2];
	assert_string_equal(ser(&b, iq, "jabber:client"),
	    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
	assert_string_equal(ser(&b, ev.keep[3], "jabber:client"), "<presence/>");
	buf_free(&b);
	ev_done(&ev);
}

/* The same events, stanza for stanza, however the input is cut. */
static void test_parse_any_chunking(void **state)
{
	static const size_t steps[] = { 1, 2, 3, 5, 7, 13, 64, 1000 };
	char *whole = transcript(NULL, realistic, strlen(realistic), 0);

	assert_non_null(strstr(whole, realistic_message));
	assert_null(strstr(whole, "error"));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *t = transcript(NULL, realistic, strlen(realistic), steps[i]);

		assert_string_equal(t, whole);
		free(t);
	}
	free(whole);
}

/* Serialized stanzas parse back to the same stanzas. */
static void test_round_trip(void **state)
{
	struct events ev;
	struct buf again = BUF_INIT;
	char *first, *second;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, realistic, 0), 0);
	first = xstrdup(ev.log.data);
	buf_append_str(&again, HDR);
	for (int i = 0; i < ev.nkeep; i++)
		xml_serialize(&again, ev.keep[i], "jabber:client");
	buf_append_str(&again, "</stream:stream>");
	ev_done(&ev);

	ev_init(&ev, NULL);
	assert_int_equal(feed_steps(&ev, again.data, again.len, 1), 0);
	second = ev.log.data;
	/* Only the header line differs. */
	assert_string_equal(strchr(first, '\n'), strchr(second, '\n'));
	free(first);
	buf_free(&again);
	ev_done(&ev);
}

static void test_keepalive_and_close(void **state)
{
	for (size_t step = 0; step < 2; step++) {
		struct events ev;

		ev_init(&ev, NULL);
		assert_int_equal(feed_str(&ev, HDR " \n \t ", step), 0);
		assert_int_equal(feed_str(&ev, "<presence/>", step), 0);
		assert_int_equal(feed_str(&ev, " ", step), 0);
		assert_int_equal(ev.closes, 0);
		assert_int_equal(feed_str(&ev, "</stream:stream>", step), 0);
		assert_int_equal(ev.stanzas, 1);
		assert_int_equal(ev.closes, 1);
		assert_int_equal(ev.errors, 0);
		assert_string_equal(ev.hdr_lang, "-");
		/* Nothing may follow the end of the stream. */
		assert_int_equal(feed_str(&ev, "<presence/>", step), -1);
		assert_string_equal(ev.cond, "not-well-formed");
		ev_done(&ev);
	}
}

/* A stanza is delivered as soon as its last byte is in, whatever came
 * before: expat's reparse deferral would sit on this one (its last piece
 * is smaller than the partial reference it was stuck on). */
static void test_no_stall(void **state)
{
	struct events ev;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, HDR "<m>", 0), 0);
	assert_int_equal(feed_str(&ev, "&#x0263", 0), 0);
	assert_int_equal(feed_str(&ev, "A;</m>", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	assert_string_equal(xml_text(ev.keep[0]), SMILE);
	/* Nor does a long tag trickled in hold anything up. */
	assert_int_equal(feed_str(&ev, "<presence to='", 0), 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(xml_parser_feed(ev.parser, "a", 1), 0);
	assert_int_equal(feed_str(&ev, "'/", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	assert_int_equal(feed_str(&ev, ">", 0), 0);
	assert_int_equal(ev.stanzas, 2);
	assert_int_equal(strlen(xml_attr(ev.keep[1], "to")), 5000);
	ev_done(&ev);
}

/* A 200 KB tag trickled in one byte per read: each byte must cost O(1),
 * not a rescan of the tag so far (that would be 2*10^10 steps here). */
static void test_trickled_tag_is_linear(void **state)
{
	struct xml_parser_limits lim = { 256 * 1024, 16, 16 };
	struct events ev;
	clock_t t0;

	ev_init(&ev, &lim);
	assert_int_equal(feed_str(&ev, HDR "<message to='", 0), 0);
	t0 = clock();
	for (int i = 0; i < 200 * 1024; i++)
		assert_int_equal(xml_parser_feed(ev.parser, "a", 1), 0);
	assert_int_equal(feed_str(&ev, "'/>", 1), 0);
	assert_int_equal(ev.stanzas, 1);
	/* Some 100 ms under ASan; the quadratic way takes many seconds. */
	assert_true(clock() - t0 < 2 * CLOCKS_PER_SEC);
	ev_done(&ev);
}

static void test_bad_format_text(void **state)
{
	expect_error(NULL, HDR "<presence/>  hello <presence/>", "bad-format", 1);
	expect_error(NULL, HDR "&amp;", "bad-format", 0);
	expect_error(NULL, HDR "<![CDATA[x]]>", "bad-format", 0);
}

/* ---- namespaces across stream types ---- */

static const char s2s_in[] =
	"<stream:stream xmlns='jabber:server'"
	" xmlns:stream='http://etherx.jabber.org/streams'"
	" xmlns:db='jabber:server:dialback' from='a.example' to='b.example'"
	" version='1.0'>"
	"<message from='x@a.example' to='y@b.example' type='chat'>"
	"<body>hi</body>"
	"<forwarded xmlns='urn:xmpp:forward:0'>"
	"<message xmlns='jabber:server' from='z@a.example'><body>in</body>"
	"<nons xmlns=''><deep/></nons></message>"
	"<delay xmlns='urn:xmpp:delay' stamp='2024'/>"
	"<after/></forwarded>"
	"<thread>t1</thread></message>"
	"<db:verify from='a.example' to='b.example' id='i1'>key</db:verify>";

static const char *const s2s_stanza_fmt =
	"<message from='x@a.example' to='y@b.example' type='chat'>"
	"<body>hi</body>"
	"<forwarded xmlns='urn:xmpp:forward:0'>"
	"<message xmlns='%s' from='z@a.example'><body>in</body>"
	"<nons xmlns=''><deep/></nons></message>"
	"<delay xmlns='urn:xmpp:delay' stamp='2024'/>"
	"<after/></forwarded>"
	"<thread>t1</thread></message>";

static void test_server_to_client(void **state)
{
	struct events ev;
	struct buf b = BUF_INIT;
	char want[1024];
	struct xml_node *msg, *inner;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, s2s_in, 0), 0);
	assert_int_equal(ev.errors, 0);
	assert_string_equal(ev.content_ns, "jabber:server");
	assert_int_equal(ev.stanzas, 2);
	msg = ev.keep[0];
	/* Mapped in: the stream's content namespace is jabber:client. */
	assert_true(xml_is(msg, "message", XML_NS_CLIENT));
	inner = xml_child(xml_child(msg, "forwarded", "urn:xmpp:forward:0"),
	    "message", XML_NS_CLIENT);
	assert_non_null(inner);
	assert_string_equal(xml_child(inner, "nons", NULL)->ns, "");
	assert_string_equal(xml_child(xml_child(inner, "nons", NULL), "deep",
	    NULL)->ns, "");
	assert_true(xml_is(ev.keep[1], "verify", "jabber:server:dialback"));

	snprintf(want, sizeof(want), s2s_stanza_fmt, "jabber:client");
	assert_string_equal(ser(&b, msg, "jabber:client"), want);
	snprintf(want, sizeof(want), s2s_stanza_fmt, "jabber:server");
	assert_string_equal(ser(&b, msg, "jabber:server"), want);
	assert_string_equal(ser(&b, ev.keep[1], "jabber:client"),
	    "<verify xmlns='jabber:server:dialback' from='a.example'"
	    " to='b.example' id='i1'>key</verify>");
	buf_free(&b);
	ev_done(&ev);
}

static void test_client_to_server(void **state)
{
	struct events ev;
	struct buf b = BUF_INIT;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, HDR "<iq type='set' id='1'>"
	    "<query xmlns='jabber:iq:roster'><item jid='a@b'><group>G</group>"
	    "</item></query><x xmlns='jabber:server'/></iq>", 1), 0);
	assert_int_equal(ev.stanzas, 1);
	/* A literal jabber:server child of a c2s stanza is not the content
	 * namespace there and stays what it is: on s2s it needs no xmlns. */
	assert_string_equal(ser(&b, ev.keep[0], "jabber:server"),
	    "<iq type='set' id='1'><query xmlns='jabber:iq:roster'>"
	    "<item jid='a@b'><group>G</group></item></query><x/></iq>");
	assert_string_equal(ser(&b, ev.keep[0], "jabber:client"),
	    "<iq type='set' id='1'><query xmlns='jabber:iq:roster'>"
	    "<item jid='a@b'><group>G</group></item></query>"
	    "<x xmlns='jabber:server'/></iq>");
	buf_free(&b);
	ev_done(&ev);
}

static void test_stream_without_default_ns(void **state)
{
	struct events ev;
	struct buf b = BUF_INIT;

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, "<stream:stream xmlns:stream="
	    "'http://etherx.jabber.org/streams'><message><body>x</body>"
	    "</message>", 0), 0);
	assert_int_equal(ev.opens, 1);
	assert_string_equal(ev.content_ns, "");
	assert_true(xml_is(ev.keep[0], "message", ""));
	assert_string_equal(ser(&b, ev.keep[0], "jabber:client"),
	    "<message xmlns=''><body>x</body></message>");
	buf_free(&b);
	ev_done(&ev);
}

static void test_namespaced_attrs(void **state)
{
	struct events ev;
	struct buf b = BUF_INIT, in = BUF_INIT;
	struct xml_node *n;
	const char *want =
	    "<message xml:lang='de'><x xmlns='urn:x'"
	    " xmlns:ns1='urn:a' ns1:one='1' plain='p'"
	    " xmlns:ns2='urn:b' ns2:two='2' ns1:three='3'/></message>";

	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, HDR "<message xml:lang='de'>"
	    "<x xmlns='urn:x' xmlns:a='urn:a' xmlns:b='urn:b' a:one='1'"
	    " plain='p' b:two='2' a:three='3'/></message>", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	n = xml_child(ev.keep[0], "x", "urn:x");
	assert_string_equal(xml_attr_ns(n, "urn:a", "one"), "1");
	assert_string_equal(xml_attr_ns(n, "urn:b", "two"), "2");
	assert_null(xml_attr(n, "one"));
	assert_string_equal(xml_attr(n, "plain"), "p");
	assert_string_equal(ser(&b, ev.keep[0], "jabber:client"), want);
	ev_done(&ev);

	/* And the generated prefixes parse back to the same tree. */
	buf_append_str(&in, HDR);
	buf_append_str(&in, want);
	ev_init(&ev, NULL);
	assert_int_equal(feed_steps(&ev, in.data, in.len, 1), 0);
	assert_string_equal(ser(&b, ev.keep[0], "jabber:client"), want);
	ev_done(&ev);
	buf_free(&in);
	buf_free(&b);
}

/* ---- the serializer ---- */

static void test_escape(void **state)
{
	struct buf b = BUF_INIT;
	const char in[] = "a&b<c>d\"e'f\r\tg\nh\x01i\x1fj" SMILE;

	xml_escape(&b, in, sizeof(in) - 1, 0);
	assert_string_equal(b.data,
	    "a&amp;b&lt;c&gt;d\"e'f&#13;\tg\nhij" SMILE);
	buf_reset(&b);
	xml_escape(&b, in, sizeof(in) - 1, 1);
	assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#13;&#9;g"
	    "&#10;hij" SMILE);
	buf_reset(&b);
	xml_escape(&b, "plain", 5, 1);
	assert_string_equal(b.data, "plain");
	buf_reset(&b);
	xml_escape(&b, "&&", 2, 0);
	assert_string_equal(b.data, "&amp;&amp;");
	buf_free(&b);
}

/* The reused buffer gives each stanza alone: after a big one (given back
 * at the next call) and after a longer one, nothing of the last stays. */
static void test_serialize_reused(void **state)
{
	struct xml_node *big = xml_new("message", XML_NS_CLIENT);
	struct xml_node *small = xml_new("presence", XML_NS_CLIENT);
	char *body = malloc(100001);
	char *s;
	size_t len;

	(void)state;
	memset(body, 'x', 100000);
	body[100000] = '\0';
	xml_add_text_child(big, "body", body);
	s = xml_serialize_reused(big, XML_NS_CLIENT, &len);
	assert_int_equal(len, strlen("<message><body></body></message>") + 100000);
	assert_int_equal(strlen(s), len);
	s = xml_serialize_reused(small, XML_NS_CLIENT, &len);
	assert_string_equal(s, "<presence/>");
	assert_int_equal(len, strlen("<presence/>"));
	xml_set_attr(small, "type", "unavailable");
	s = xml_serialize_reused(small, XML_NS_CLIENT, &len);
	assert_string_equal(s, "<presence type='unavailable'/>");
	xml_free(big);
	xml_free(small);
	free(body);
}

static void test_serialize_built_tree(void **state)
{
	struct buf b = BUF_INIT;
	struct xml_node *iq = xml_new("iq", XML_NS_CLIENT), *q, *err;
	const char *want =
	    "<iq type='result' id='a&apos;b&lt;'>"
	    "<query xmlns='jabber:iq:version'><name>roost &amp; co</name>"
	    "<version>1 &lt; 2 ]]&gt;</version><os/></query>"
	    "<empty xmlns=''/><x xmlns='urn:x' xml:lang='en'>"
	    "<y xmlns='jabber:client'/></x></iq>";

	xml_set_attr(iq, "type", "result");
	xml_set_attr(iq, "id", "a'b<");
	q = xml_add_child(iq, "query", "jabber:iq:version");
	xml_add_text_child(q, "name", "roost & co");
	xml_add_text_child(q, "version", "1 < 2 ]]>");
	xml_add_text_child(q, "os", NULL);
	xml_add_child(iq, "empty", "");
	q = xml_add_child(iq, "x", "urn:x");
	xml_set_attr_ns(q, XML_NS_XML, "lang", "en");
	xml_add_child(q, "y", XML_NS_CLIENT);

	assert_string_equal(ser(&b, iq, "jabber:client"), want);
	assert_string_equal(ser(&b, iq, NULL), want);
	assert_string_equal(ser(&b, iq, "jabber:server"),
	    "<iq type='result' id='a&apos;b&lt;'>"
	    "<query xmlns='jabber:iq:version'><name>roost &amp; co</name>"
	    "<version>1 &lt; 2 ]]&gt;</version><os/></query>"
	    "<empty xmlns=''/><x xmlns='urn:x' xml:lang='en'>"
	    "<y xmlns='jabber:server'/></x></iq>");
	/* A subtree written alone starts in the stream's scope. */
	assert_string_equal(ser(&b, xml_child(iq, "query", NULL), "jabber:client"),
	    "<query xmlns='jabber:iq:version'><name>roost &amp; co</name>"
	    "<version>1 &lt; 2 ]]&gt;</version><os/></query>");
	assert_string_equal(ser(&b, xml_child(xml_child(iq, "query", NULL),
	    "name", NULL)->children, "jabber:client"), "roost &amp; co");
	xml_free(iq);

	err = xml_new("error", XML_NS_STREAM);
	xml_add_child(err, "not-well-formed",
	    "urn:ietf:params:xml:ns:xmpp-streams");
	assert_string_equal(ser(&b, err, "jabber:client"),
	    "<stream:error><not-well-formed"
	    " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
	xml_free(err);

	/* An "xmlns" attribute would fight the writer's declarations. */
	err = xml_new("a", "urn:a");
	xml_set_attr(err, "xmlns", "urn:evil");
	xml_add_text(err, "t\x02", 2);
	assert_string_equal(ser(&b, err, "jabber:client"),
	    "<a xmlns='urn:a'>t</a>");
	xml_free(err);
	buf_free(&b);
}

/* ---- RFC 6120 §11.1 ---- */

static void test_restricted_xml(void **state)
{
	expect_error(NULL,
	    "<?xml version='1.0'?><!DOCTYPE lolz ["
	    "<!ENTITY lol 'lol'>"
	    "<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
	    "<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
	    "<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
	    "]><stream:stream " HDR_NS "><message>&lol3;</message>",
	    "restricted-xml", 0);
	expect_error(NULL, "<!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM"
	    " 'file:///etc/passwd'>]>" HDR "<message>&xxe;</message>",
	    "restricted-xml", 0);
	expect_error(NULL, "<!DOCTYPE stream:stream SYSTEM 'http://x/y.dtd'>"
	    HDR, "restricted-xml", 0);
	expect_error(NULL, "<!-- hello -->" HDR, "restricted-xml", 0);
	expect_error(NULL, HDR "<presence/><!-- x -->", "restricted-xml", 1);
	expect_error(NULL, HDR "<message><body>a<!-- x -->b</body></message>",
	    "restricted-xml", 0);
	expect_error(NULL, "<?xml-stylesheet href='x'?>" HDR,
	    "restricted-xml", 0);
	expect_error(NULL, HDR "<message><?php evil() ?></message>",
	    "restricted-xml", 0);
	/* Outside a DTD an entity declaration is merely not XML. */
	expect_error(NULL, HDR "<!ENTITY x 'y'>", "not-well-formed", 0);
	/* Undeclared entities do not get expanded either. */
	expect_error(NULL, HDR "<message>&xxe;</message>", "not-well-formed", 0);
}

static void test_not_well_formed(void **state)
{
	expect_error(NULL, HDR "<message><body>x</message>", "not-well-formed", 0);
	expect_error(NULL, HDR "<presence/></message>", "not-well-formed", 1);
	expect_error(NULL, HDR "<message to='a' to='b'/>", "not-well-formed", 0);
	expect_error(NULL, HDR "<message a='<'/>", "not-well-formed", 0);
	expect_error(NULL, HDR "<foo:bar/>", "not-well-formed", 0);
	expect_error(NULL, HDR "<message><body>\xC3\x28</body></message>",
	    "not-well-formed", 0);
	expect_error(NULL, HDR "<message><body>\xFF</body></message>",
	    "not-well-formed", 0);
	expect_error(NULL, HDR "<message><body>\xC0\xAF</body></message>",
	    "not-well-formed", 0);
	expect_error(NULL, HDR "<message><body>\xED\xA0\x80</body></message>",
	    "not-well-formed", 0);
	expect_error(NULL, HDR "<message to='\xE2\x98'/>", "not-well-formed", 0);
	expect_error(NULL, HDR "<message>&#1;</message>", "not-well-formed", 0);
	expect_error(NULL, HDR "<presence/><?xml version='1.0'?>",
	    "not-well-formed", 1);
	expect_error(NULL, "<?xml version='1.0' encoding='ISO-8859-1'?>" HDR,
	    "unsupported-encoding", 0);
}

static void test_invalid_namespace(void **state)
{
	struct events ev;

	expect_error(NULL, "<stream:stream xmlns='jabber:client'"
	    " xmlns:stream='http://etherx.jabber.org/stream'>",
	    "invalid-namespace", 0);
	expect_error(NULL, "<stream xmlns='jabber:client'>",
	    "invalid-namespace", 0);
	expect_error(NULL, "<message xmlns='jabber:client'/>",
	    "invalid-namespace", 0);

	/* The prefix itself does not matter. */
	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, "<s:stream xmlns:s="
	    "'http://etherx.jabber.org/streams' xmlns='jabber:client'>", 1), 0);
	assert_int_equal(ev.opens, 1);
	ev_done(&ev);
}

/* ---- limits ---- */

static void test_stanza_size_exact(void **state)
{
	/* Longer than the header, which counts against the cap too. */
	static const char stanza[] =
	    "<message to='a@b' id='0123456789abcdef'><body>0123456789"
	    " 0123456789 0123456789 &amp; &#x263A;</body></message>";
	struct xml_parser_limits lim = { sizeof(stanza) - 1, 16, 16 };
	char in[512];

	snprintf(in, sizeof(in), "%s %s%s", HDR, stanza, stanza);
	for (size_t step = 0; step < 2; step++) {
		struct events ev;

		ev_init(&ev, &lim);
		assert_int_equal(feed_str(&ev, in, step), 0);
		assert_int_equal(ev.stanzas, 2);
		assert_int_equal(ev.errors, 0);
		ev_done(&ev);
	}
	lim.max_stanza_bytes--;
	expect_error(&lim, in, "policy-violation", 0);
}

/* A huge stanza cut into small reads is refused once it passes the cap,
 * with no more than about the cap held in memory. */
static void feed_until_refused(const char *start, const char *filler)
{
	struct xml_parser_limits lim = { 1000, 16, 16 };
	struct events ev;
	char piece[100];
	size_t fed = 0, mem = 0;
	int rc = 0;

	memset(piece, filler[0], sizeof(piece));
	ev_init(&ev, &lim);
	assert_int_equal(feed_str(&ev, HDR, 0), 0);
	assert_int_equal(feed_str(&ev, start, 0), 0);
	while (fed < 10 * 1024 * 1024) {
		rc = xml_parser_feed(ev.parser, piece, sizeof(piece));
		if (rc < 0)
			break;
		fed += sizeof(piece);
		if (xml_parser_memory(ev.parser) > mem)
			mem = xml_parser_memory(ev.parser);
	}
	assert_int_equal(rc, -1);
	assert_string_equal(ev.cond, "policy-violation");
	assert_true(fed <= 1000);
	assert_true(mem < 32 * 1024);
	assert_int_equal(ev.stanzas, 0);
	ev_done(&ev);
}

static void test_stanza_size_cap(void **state)
{
	feed_until_refused("<message><body>", "a");   /* text */
	feed_until_refused("<message to='", "a");     /* held tag */
	feed_until_refused("<message><a", "b");       /* a long name */
	feed_until_refused("<message><![CDATA[", "c");
	feed_until_refused("<!--", "x");              /* held markup */
}

static void test_stanza_size_cap_whitespace_ok(void **state)
{
	struct xml_parser_limits lim = { 100, 16, 16 };
	struct events ev;

	/* Keepalives add up to no stanza. */
	ev_init(&ev, &lim);
	assert_int_equal(feed_str(&ev, HDR, 0), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(xml_parser_feed(ev.parser, " ", 1), 0);
	assert_int_equal(feed_str(&ev, "<presence/>", 1), 0);
	assert_int_equal(ev.stanzas, 1);
	ev_done(&ev);
}

static void test_stanza_size_one_chunk(void **state)
{
	struct xml_parser_limits lim = { 4096, 16, 16 };
	struct buf in = BUF_INIT;
	struct events ev;

	buf_append_str(&in, HDR "<message><body>");
	for (int i = 0; i < 100000; i++)
		buf_append(&in, "0123456789", 10);
	buf_append_str(&in, "</body></message>");
	ev_init(&ev, &lim);
	assert_int_equal(feed_steps(&ev, in.data, in.len, 0), -1);
	assert_string_equal(ev.cond, "policy-violation");
	ev_done(&ev);

	/* A header bigger than the cap is refused too. */
	buf_reset(&in);
	buf_append_str(&in, "<stream:stream " HDR_NS " to='");
	for (int i = 0; i < 1000; i++)
		buf_append(&in, "0123456789", 10);
	buf_append_str(&in, "'>");
	ev_init(&ev, &lim);
	assert_int_equal(feed_steps(&ev, in.data, in.len, 0), -1);
	assert_string_equal(ev.cond, "policy-violation");
	assert_int_equal(ev.opens, 0);
	ev_done(&ev);
	buf_free(&in);
}

static void test_depth_cap(void **state)
{
	struct xml_parser_limits lim = { 10000, 3, 16 };
	struct events ev;

	ev_init(&ev, &lim);
	assert_int_equal(feed_str(&ev, HDR "<message><a><b/></a></message>", 1), 0);
	assert_int_equal(ev.stanzas, 1);
	ev_done(&ev);
	expect_error(&lim, HDR "<message><a><b><c/></b></a></message>",
	    "policy-violation", 0);
	expect_error(&lim, HDR "<presence/><a><b><c><d><e><f>",
	    "policy-violation", 1);
}

static void test_attr_cap(void **state)
{
	struct xml_parser_limits lim = { 10000, 16, 3 };
	struct events ev;

	ev_init(&ev, &lim);
	assert_int_equal(feed_str(&ev, HDR "<message a='1' b='2' c='3'>"
	    "<x xmlns='urn:x' d='4' xml:lang='en'/></message>", 1), 0);
	assert_int_equal(ev.stanzas, 1);
	ev_done(&ev);
	expect_error(&lim, HDR "<message a='1' b='2' c='3' d='4'/>",
	    "policy-violation", 0);
	/* Namespace declarations count. */
	expect_error(&lim, HDR "<message a='1' xmlns:x='urn:x' xmlns:y='urn:y'"
	    " xmlns='jabber:client'/>", "policy-violation", 0);
	expect_error(&lim, HDR "<message><x a='1' xml:lang='a' b='2' c='3'/>"
	    "</message>", "policy-violation", 0);
	/* So does the header's own. */
	expect_error(&lim, "<stream:stream " HDR_NS " to='a' from='b'>",
	    "policy-violation", 0);
}

/* ---- reset ---- */

static void test_reset_in_callback(void **state)
{
	struct events ev;

	ev_init(&ev, NULL);
	ev.reset_on_stanza = 1;
	/* After <starttls/> the server restarts the stream: the bytes behind
	 * it in the same read (even a tag held half-read) must be ignored. */
	assert_int_equal(feed_str(&ev, HDR "<starttls xmlns='" NS_TLS "'/>"
	    "<message><body>injected</body></message><iq type='g", 0), 0);
	assert_int_equal(ev.opens, 1);
	assert_int_equal(ev.stanzas, 1);
	assert_int_equal(ev.errors, 0);
	assert_true(xml_is(ev.keep[0], "starttls", NS_TLS));
	/* The next bytes start a new stream, with a new XML declaration. */
	assert_int_equal(feed_str(&ev, "<?xml version='1.0'?><stream:stream"
	    " xmlns='jabber:server' xmlns:stream="
	    "'http://etherx.jabber.org/streams'><presence/>", 1), 0);
	assert_int_equal(ev.opens, 2);
	assert_string_equal(ev.content_ns, "jabber:server");
	assert_int_equal(ev.stanzas, 2);
	assert_true(xml_is(ev.keep[1], "presence", XML_NS_CLIENT));
	assert_null(strstr(ev.log.data, "injected"));
	assert_int_equal(ev.errors, 0);
	ev_done(&ev);

	/* Reset within a held tag being completed. */
	ev_init(&ev, NULL);
	ev.reset_on_stanza = 1;
	assert_int_equal(feed_str(&ev, HDR "<auth mech='PLAIN", 0), 0);
	assert_int_equal(feed_str(&ev, "'/><presence/>", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	assert_int_equal(feed_str(&ev, HDR "<presence/>", 0), 0);
	assert_int_equal(ev.opens, 2);
	assert_int_equal(ev.stanzas, 2);
	ev_done(&ev);
}

static void test_reset_outside_callback(void **state)
{
	struct events ev;

	ev_init(&ev, NULL);
	/* A half-built stanza is dropped (ASan sees any leak). */
	assert_int_equal(feed_str(&ev, HDR "<message><body>abc<x a='", 0), 0);
	xml_parser_reset(ev.parser);
	assert_int_equal(feed_str(&ev, HDR "<presence/>", 1), 0);
	assert_int_equal(ev.opens, 2);
	assert_int_equal(ev.stanzas, 1);

	/* The error state lasts until a reset. */
	assert_int_equal(feed_str(&ev, "<a></b>", 0), -1);
	assert_int_equal(xml_parser_feed(ev.parser, "<presence/>", 11), -1);
	xml_parser_reset(ev.parser);
	assert_int_equal(feed_str(&ev, HDR "<presence/>", 0), 0);
	assert_int_equal(ev.opens, 3);
	assert_int_equal(ev.stanzas, 2);
	ev_done(&ev);

	/* A reset from the error callback starts over too. */
	ev_init(&ev, NULL);
	ev.reset_on_error = 1;
	assert_int_equal(feed_str(&ev, HDR "<a></b><presence/>", 0), 0);
	assert_int_equal(ev.errors, 1);
	assert_int_equal(ev.stanzas, 0);
	assert_int_equal(feed_str(&ev, HDR "<presence/>", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	ev_done(&ev);
}

static void test_memory(void **state)
{
	struct events ev;
	size_t idle, busy;
	char text[2000];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	ev_init(&ev, NULL);
	assert_int_equal(feed_str(&ev, HDR, 0), 0);
	idle = xml_parser_memory(ev.parser);
	assert_true(idle > 0);
	assert_int_equal(feed_str(&ev, "<message><body>", 0), 0);
	assert_int_equal(feed_str(&ev, text, 0), 0);
	busy = xml_parser_memory(ev.parser);
	assert_true(busy >= idle + sizeof(text) - 1);
	assert_int_equal(feed_str(&ev, "</body></message>", 0), 0);
	assert_int_equal(ev.stanzas, 1);
	assert_true(xml_parser_memory(ev.parser) < busy);
	ev_done(&ev);
}

/* Random damage to a real stream: never a crash (ASan watches), and the
 * same events whether fed whole, byte by byte or in random pieces. */
static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void test_fuzz_consistency(void **state)
{
	static const char junk[] = "<>/'\"&;!?[]-=:x \x01\xff\xc3\xe2\x80";
	const size_t len = sizeof(realistic) - 1;
	struct xml_parser_limits lim = { 1 << 20, 6, 8 };
	char *buf = xmalloc(len * 2);
	uint32_t seed = 2463534242u;

	for (int round = 0; round < 400; round++) {
		size_t n = len, pos;
		char *whole, *t;

		memcpy(buf, realistic, len);
		for (uint32_t k = rnd(&seed) % 3 + 1; k > 0; k--) {
			pos = rnd(&seed) % n;
			switch (rnd(&seed) % 3) {
			case 0:
				buf[pos] = junk[rnd(&seed) % (sizeof(junk) - 1)];
				break;
			case 1:
				memmove(buf + pos, buf + pos + 1, n - pos - 1);
				n--;
				break;
			default: { /* repeat a slice */
				size_t sl = rnd(&seed) % 40 + 1;

				if (pos + sl > n || n + sl > len * 2)
					break;
				memmove(buf + pos + sl, buf + pos, n - pos);
				n += sl;
				break;
			}
			}
		}
		whole = transcript(&lim, buf, n, 0);
		t = transcript(&lim, buf, n, 1);
		assert_string_equal(t, whole);
		free(t);
		t = transcript(&lim, buf, n, rnd(&seed) % 50 + 2);
		assert_string_equal(t, whole);
		free(t);
		free(whole);
	}
	free(buf);
}

/* ---- tree helpers ---- */

static void test_tree_build_and_lookup(void **state)
{
	struct xml_node *m = xml_new("message", XML_NS_CLIENT), *b, *c, *x;

	assert_non_null(xml_arena(m));
	assert_ptr_equal(xml_arena(m), m->arena);
	assert_string_equal(m->ns, XML_NS_CLIENT);
	b = xml_add_text_child(m, "body", "hello");
	assert_ptr_equal(xml_arena(b), m->arena);
	assert_null(b->arena);
	assert_string_equal(b->ns, XML_NS_CLIENT);
	x = xml_add_child(m, "x", "urn:x");
	c = xml_add_child(x, "item", NULL);
	assert_string_equal(c->ns, "urn:x");
	xml_add_child(m, "x", "urn:y");
	xml_add_child(m, "body", "urn:other");

	assert_ptr_equal(xml_child(m, "body", NULL), b);
	assert_ptr_equal(xml_child(m, "body", XML_NS_CLIENT), b);
	assert_ptr_equal(xml_child(m, NULL, "urn:x"), x);
	assert_null(xml_child(m, "nope", NULL));
	assert_ptr_equal(xml_first_element(m), b);
	assert_true(xml_is(xml_next(x, "x", NULL), "x", "urn:y"));
	assert_null(xml_next(x, "x", "urn:x"));
	assert_true(xml_is(xml_next(b, "body", NULL), "body", "urn:other"));
	assert_int_equal(xml_count_elements(m), 4);
	assert_string_equal(xml_child_text(m, "body", NULL), "hello");
	assert_null(xml_child_text(m, "nope", NULL));
	assert_string_equal(xml_child_text(m, "x", NULL), "");
	assert_false(xml_is(NULL, "x", NULL));
	assert_false(xml_is(b->children, NULL, NULL));

	/* Adjacent text merges; text around an element concatenates. */
	xml_add_text(b, " wor", 4);
	xml_add_text(b, "ld", 2);
	assert_ptr_equal(b->children, b->last_child);
	assert_int_equal(b->children->text_len, 11);
	xml_add_child(b, "br", NULL);
	xml_add_text(b, "!", 1);
	assert_string_equal(xml_text(b), "hello world!");
	assert_int_equal(xml_count_elements(b), 1);
	xml_free(m);
	xml_free(NULL);
}

static void test_tree_attrs(void **state)
{
	struct xml_node *n = xml_new("iq", NULL);
	struct buf b = BUF_INIT;

	assert_string_equal(n->ns, "");
	xml_set_attr(n, "type", "get");
	xml_set_attr(n, "id", "1");
	xml_set_attr(n, "to", "a@b");
	xml_set_attr_ns(n, XML_NS_XML, "lang", "en");
	assert_string_equal(xml_attr(n, "type"), "get");
	assert_null(xml_attr(n, "lang"));
	assert_string_equal(xml_attr_ns(n, XML_NS_XML, "lang"), "en");
	assert_string_equal(xml_attr_ns(n, "", "id"), "1");
	xml_set_attr(n, "type", "set"); /* replaced in place */
	xml_set_attr(n, "id", NULL);    /* removed */
	xml_set_attr(n, "nope", NULL);
	xml_set_attr_ns(n, XML_NS_XML, "lang", "fr");
	assert_null(xml_attr(n, "id"));
	assert_string_equal(ser(&b, n, "jabber:client"),
	    "<iq xmlns='' type='set' to='a@b' xml:lang='fr'/>");
	xml_set_attr(n, "type", NULL);  /* the first */
	xml_set_attr_ns(n, XML_NS_XML, "lang", NULL);  /* the last */
	assert_string_equal(ser(&b, n, "jabber:client"),
	    "<iq xmlns='' to='a@b'/>");
	xml_set_attr(n, "to", NULL);
	assert_null(n->attrs);
	xml_free(n);
	buf_free(&b);
}

static void test_tree_copy(void **state)
{
	struct xml_node *m = xml_new("message", XML_NS_CLIENT), *cp, *x, *in;
	struct buf b1 = BUF_INIT, b2 = BUF_INIT;

	xml_set_attr(m, "to", "a@b");
	xml_set_attr_ns(m, "urn:attr", "k", "v");
	xml_add_text_child(m, "body", "hi & bye");
	x = xml_add_child(m, "x", "urn:x");
	xml_add_text(x, "t", 1);
	xml_add_child(x, "y", "");

	cp = xml_copy(m);
	assert_non_null(cp->arena);
	assert_ptr_not_equal(cp->arena, m->arena);
	assert_null(cp->parent);
	ser(&b1, m, "jabber:client");
	ser(&b2, cp, "jabber:client");
	assert_string_equal(b1.data, b2.data);

	/* The copy lives on alone. */
	xml_free(m);
	assert_string_equal(ser(&b1, cp, "jabber:server"), "<message to='a@b'"
	    " xmlns:ns1='urn:attr' ns1:k='v'><body>hi &amp; bye</body>"
	    "<x xmlns='urn:x'>t<y xmlns=''/></x></message>");

	/* copy_into: into another tree, and into its own subtree. */
	m = xml_new("iq", XML_NS_CLIENT);
	in = xml_copy_into(m, xml_child(cp, "x", NULL));
	assert_ptr_equal(in->parent, m);
	assert_null(in->arena);
	assert_string_equal(ser(&b1, m, "jabber:client"),
	    "<iq><x xmlns='urn:x'>t<y xmlns=''/></x></iq>");
	x = xml_child(cp, "x", NULL);
	xml_copy_into(xml_child(x, "y", NULL), cp);
	assert_string_equal(ser(&b1, cp, "jabber:client"), "<message to='a@b'"
	    " xmlns:ns1='urn:attr' ns1:k='v'><body>hi &amp; bye</body>"
	    "<x xmlns='urn:x'>t<y xmlns=''><message xmlns='jabber:client'"
	    " to='a@b' xmlns:ns1='urn:attr' ns1:k='v'><body>hi &amp; bye</body>"
	    "<x xmlns='urn:x'>t<y xmlns=''/></x></message></y></x></message>");
	xml_free(cp);
	xml_free(m);
	buf_free(&b1);
	buf_free(&b2);
}

static void test_tree_remove(void **state)
{
	struct xml_node *m = xml_new("m", "urn:m"), *a, *b, *c;
	struct buf out = BUF_INIT;

	a = xml_add_child(m, "a", NULL);
	b = xml_add_child(m, "b", NULL);
	c = xml_add_child(m, "c", NULL);
	xml_remove(b);
	assert_null(b->parent);
	assert_null(b->next);
	assert_ptr_equal(a->next, c);
	xml_remove(b); /* already out: nothing */
	xml_remove(c);
	assert_ptr_equal(m->last_child, a);
	assert_null(a->next);
	xml_add_child(m, "d", NULL);
	assert_string_equal(ser(&out, m, "jabber:client"),
	    "<m xmlns='urn:m'><a/><d/></m>");
	xml_remove(a);
	assert_true(xml_is(m->children, "d", NULL));
	/* A removed subtree can still be read and copied back. */
	xml_copy_into(m, b);
	assert_string_equal(ser(&out, m, "jabber:client"),
	    "<m xmlns='urn:m'><d/><b/></m>");
	xml_free(b); /* not a root: must not free anything */
	xml_add_text(m, "x", 1);
	xml_remove_children(m);
	assert_null(m->children);
	assert_null(m->last_child);
	assert_int_equal(xml_count_elements(m), 0);
	assert_string_equal(xml_text(m), "");
	assert_string_equal(ser(&out, m, "jabber:client"), "<m xmlns='urn:m'/>");
	xml_free(m);
	buf_free(&out);
}

/* ---- stored elements (xml_document.h) ---- */

/* n elements nested in one another, each with `attrs` attributes. */
static char *nested(unsigned n, unsigned attrs, size_t *len_r)
{
	struct buf b = BUF_INIT;

	for (unsigned i = 0; i < n; i++) {
		buf_append_str(&b, "<e");
		for (unsigned k = 0; k < attrs; k++)
			buf_appendf(&b, " a%u='%u'", k, k);
		buf_append_str(&b, ">");
	}
	for (unsigned i = 0; i < n; i++)
		buf_append_str(&b, "</e>");
	return buf_steal(&b, len_r);
}

static void expect_document(const char *data, size_t len, bool ok)
{
	struct xml_node *el = xml_parse_document(data, len);

	if (ok)
		assert_non_null(el);
	else
		assert_null(el);
	xml_free(el);
}

static void test_document_round_trip(void **state)
{
	static const char two[] = "<exodus xmlns='exodus:prefs' v='2'>"
	    "<nick>a &amp; b</nick></exodus><junk/>";
	struct xml_node *el;
	char *stored;
	size_t len;

	/* A stored stanza comes back as it was: namespaces, escapes, UTF-8
	 * and attributes, byte for byte once serialized again. */
	el = xml_parse_document(realistic_message, strlen(realistic_message));
	assert_non_null(el);
	assert_true(xml_is(el, "message", XML_NS_CLIENT));
	assert_string_equal(xml_attr(el, "id"), "m1");
	stored = xml_serialize_document(el, &len);
	assert_int_equal(len, strlen(realistic_message));
	assert_string_equal(stored, realistic_message);
	free(stored);
	xml_free(el);

	/* Any element, not only stanzas, in its own namespace. Only `len`
	 * bytes are read: what follows them is not looked at. */
	el = xml_parse_document(two, strlen(two) - strlen("<junk/>"));
	assert_non_null(el);
	assert_true(xml_is(el, "exodus", "exodus:prefs"));
	assert_string_equal(xml_child_text(el, "nick", "exodus:prefs"), "a & b");
	stored = xml_serialize_document(el, NULL);
	assert_string_equal(stored, "<exodus xmlns='exodus:prefs' v='2'>"
	    "<nick>a &amp; b</nick></exodus>");
	free(stored);
	xml_free(el);
}

static void test_document_damaged(void **state)
{
	static const char *const bad[] = {
		"",                                 /* nothing */
		"   ",
		"just text",
		"<a/><b/>",                         /* two elements */
		"<a/>text",
		"<a><b></a>",                       /* not well-formed */
		"<a>",                              /* cut short */
		"<a/></stream:stream>",             /* ends the stream */
		"<!-- c --><a/>",                   /* restricted XML */
		"<?pi x?><a/>",
		"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
		"<p:a/>",                           /* unbound prefix */
	};
	char *doc;
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		expect_document(bad[i], strlen(bad[i]), false);
	/* A NUL inside the length is not the end of the data. */
	expect_document("<a/>\0<b/>", 9, false);

	/* Depth and attributes are bounded, exactly at the limits. */
	doc = nested(XML_DOCUMENT_MAX_DEPTH, 0, &len);
	expect_document(doc, len, true);
	free(doc);
	doc = nested(XML_DOCUMENT_MAX_DEPTH + 1, 0, &len);
	expect_document(doc, len, false);
	free(doc);
	doc = nested(1, XML_DOCUMENT_MAX_ATTRS, &len);
	expect_document(doc, len, true);
	free(doc);
	doc = nested(1, XML_DOCUMENT_MAX_ATTRS + 1, &len);
	expect_document(doc, len, false);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_realistic),
		cmocka_unit_test(test_parse_any_chunking),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_keepalive_and_close),
		cmocka_unit_test(test_no_stall),
		cmocka_unit_test(test_trickled_tag_is_linear),
		cmocka_unit_test(test_bad_format_text),
		cmocka_unit_test(test_server_to_client),
		cmocka_unit_test(test_client_to_server),
		cmocka_unit_test(test_stream_without_default_ns),
		cmocka_unit_test(test_namespaced_attrs),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_serialize_built_tree),
		cmocka_unit_test(test_serialize_reused),
		cmocka_unit_test(test_restricted_xml),
		cmocka_unit_test(test_not_well_formed),
		cmocka_unit_test(test_invalid_namespace),
		cmocka_unit_test(test_stanza_size_exact),
		cmocka_unit_test(test_stanza_size_cap),
		cmocka_unit_test(test_stanza_size_cap_whitespace_ok),
		cmocka_unit_test(test_stanza_size_one_chunk),
		cmocka_unit_test(test_depth_cap),
		cmocka_unit_test(test_attr_cap),
		cmocka_unit_test(test_reset_in_callback),
		cmocka_unit_test(test_reset_outside_callback),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_fuzz_consistency),
		cmocka_unit_test(test_tree_build_and_lookup),
		cmocka_unit_test(test_tree_attrs),
		cmocka_unit_test(test_tree_copy),
		cmocka_unit_test(test_tree_remove),
		cmocka_unit_test(test_document_round_trip),
		cmocka_unit_test(test_document_damaged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
