/* The XMPP stream parser (see xml_parser.h): expat in namespace mode,
 * building one arena tree per top-level child of <stream:stream/>.
 *
 * Feeding. Expat reports a start tag only once it has all of it; given a
 * partial tag it keeps the bytes in a buffer it never shrinks and rescans
 * the whole tag on each later call, so a peer trickling a long tag one
 * byte per read costs O(n^2) and parks a big buffer on an idle connection.
 * A small lexer (lex()) therefore follows the input (text, tag, quoted
 * value, CDATA, markup) and a tag still open at the end of a feed is held
 * back here until its '>' arrives: expat only ever sees whole tags, and
 * text and CDATA, which it reports as they come, go straight through.
 * Expat's own answer to this (reparse deferral, 2.6 and Debian's 2.5
 * backports) would sit on a complete stanza until more bytes arrive, which
 * an interactive stream cannot afford; it is turned off.
 *
 * Idle streams. Expat holds about 10 KiB per parser (name pools, hash
 * tables, buffers), and its tables keep every distinct element and
 * attribute name the stream ever used. Between stanzas a stream needs
 * none of it: what the next stanza depends on is the root's namespace
 * declarations. So once a feed has completed a stanza and left nothing
 * pending, expat is freed; the next feed makes a new one and replays a
 * header tag carrying those declarations (`replay`) before the real
 * bytes. An idle connection then holds no expat state at all, and a
 * stream's name tables are as big as one stanza's. Whitespace keepalives
 * are counted without making a parser.
 *
 * Size accounting. `mark` is the absolute offset where the current unit
 * began: the stream start (prolog and header), the gap after a stanza, or
 * the current stanza's start tag. Bytes received past it, parsed or held,
 * count against max_stanza_bytes, so an oversized stanza is refused once
 * it passes the cap however it is cut into reads.
 *
 * A limit of 0 means no limit. */
#include "xml/xml_parser.h"

#include <expat.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_writer.h"

/* Expat joins namespace URI and local name with this. It cannot occur in
 * XML 1.0 text, not even as a character reference, so splitting on it is
 * unambiguous (a ' ' or ':' could be part of a URI). */
#define NS_SEP '\x01'
#define NS_SEP_STR "\x01"

/* Expat's footprint outside the buffers we account for ourselves: parser
 * struct, name pools, namespace bindings and a small input buffer,
 * measured at about 10 KiB for a namespace-mode parser once the stream
 * header is in (3 KiB before). Whole tags only (see above) keep its input
 * buffer from growing with the stanzas. */
#define EXPAT_BYTES 10240
/* Scratch buffers bigger than this are given back after use so that one
 * large stanza does not weigh on an idle connection forever. */
#define SCRATCH_KEEP 4096
/* Most stanzas fit one block. */
#define STANZA_CHUNK 1024

/* The usual stream headers' replay tags, shared instead of copied. */
static const char *const common_replays[] = {
	"<stream:stream xmlns='jabber:client' "
	    "xmlns:stream='" XML_NS_STREAM "'>",
	"<stream:stream xmlns:stream='" XML_NS_STREAM "' "
	    "xmlns='jabber:client'>",
};

/* Declared weak so that roost builds against expat headers without it;
 * the library of the running system may still have it (see the top). */
XML_Bool XML_SetReparseDeferralEnabled(XML_Parser, XML_Bool)
	__attribute__((weak));

enum lex {
	LEX_TEXT,	/* character data */
	LEX_LT,		/* just after '<' */
	LEX_TAG,	/* inside a start or end tag */
	LEX_SQ,		/* inside a '...' attribute value */
	LEX_DQ,		/* inside a "..." attribute value */
	LEX_BANG,	/* just after "<!" */
	LEX_MARKUP,	/* comment, PI, XML or DOCTYPE declaration */
	LEX_CDATA,	/* inside a CDATA section */
	LEX_CDATA_B1,	/* ... after "]" */
	LEX_CDATA_B2,	/* ... after "]]" */
};

/* States in which expat cannot report anything until the token ends. */
#define LEX_IN_TOKEN(s) ((s) >= LEX_LT && (s) <= LEX_MARKUP)

struct xml_parser {
	XML_Parser xp;		/* NULL while idle (see the top) */
	struct xml_parser_limits lim;
	struct xml_parser_callbacks cb;
	void *ctx;

	/* The stanza being built. Text is gathered in `text` and becomes one
	 * node when the next tag arrives, however many pieces expat gave. */
	struct arena *arena;
	struct xml_node *stanza, *cur;
	struct buf text;

	char *content_ns;	/* default namespace of the header, or NULL */
	size_t content_ns_len;
	unsigned depth;		/* open elements, <stream:stream> included */
	unsigned nsdecls;	/* declarations on the element about to start */

	uint64_t in_total;	/* bytes received since the stream started */
	uint64_t mark;		/* start of the current unit (see the top) */
	uint64_t fed;		/* bytes of in_total expat has been given or
				 * that were skipped as idle whitespace */
	int64_t xp_base;	/* stream offset of expat's byte 0 */

	/* The root's namespace declarations as attributes, gathered while
	 * the header is parsed, then the tag replayed into a new expat
	 * parser. NULL replay: this stream keeps its parser. */
	struct buf decls;
	const char *replay;
	size_t replay_len;
	bool replay_owned;	/* else one of common_replays */
	bool replaying;
	bool stanza_done;	/* a stanza completed since expat was made */

	struct buf hold;	/* an unfinished tag kept from expat */
	enum lex lex;
	uint64_t token_start;	/* offset of the '<' of the current token */

	bool in_parse;		/* inside XML_Parse: callbacks may run */
	bool failed;
	bool reset_pending;	/* reset asked from a callback */
};

static bool stopped(const struct xml_parser *p)
{
	return p->failed || p->reset_pending;
}

static void drop_stanza(struct xml_parser *p)
{
	arena_free(p->arena);
	p->arena = NULL;
	p->stanza = p->cur = NULL;
	buf_reset(&p->text);
}

static void trim(struct buf *b)
{
	if (b->cap > SCRATCH_KEEP)
		buf_free(b);
	else
		buf_reset(b);
}

static void fail(struct xml_parser *p, const char *condition, const char *text)
{
	if (p->failed)
		return;
	p->failed = true;
	/* Expat may still deliver an event or two after this (the end of an
	 * empty element): every handler checks stopped() first. */
	if (p->in_parse && !p->reset_pending)
		XML_StopParser(p->xp, XML_FALSE);
	drop_stanza(p);
	if (p->cb.error != NULL)
		p->cb.error(p->ctx, condition, text);
}

/* Stream offset of the event being reported. */
static uint64_t event_start(const struct xml_parser *p)
{
	return (uint64_t)((int64_t)XML_GetCurrentByteIndex(p->xp) + p->xp_base);
}

/* Offset just past the event being reported. */
static uint64_t event_end(const struct xml_parser *p)
{
	return event_start(p) + (uint64_t)XML_GetCurrentByteCount(p->xp);
}

static bool too_big(const struct xml_parser *p, uint64_t end)
{
	return p->lim.max_stanza_bytes != 0 &&
	    end - p->mark > p->lim.max_stanza_bytes;
}

static void fail_too_big(struct xml_parser *p)
{
	fail(p, "policy-violation", "stanza too large");
}

/* Maps an expat name ("uri" NS_SEP "local", or "local") to a namespace
 * and a local name in arena `a`. `parent_ns` is shared when equal: it is
 * the usual case and saves a copy per element. */
static const char *split_name(struct xml_parser *p, struct arena *a,
			      const char *raw, const char *parent_ns,
			      const char **ns_r)
{
	const char *sep = strchr(raw, NS_SEP);
	size_t len;

	if (sep == NULL) {
		*ns_r = "";
		return arena_strdup(a, raw);
	}
	len = (size_t)(sep - raw);
	if (p->content_ns_len != 0 && len == p->content_ns_len &&
	    memcmp(raw, p->content_ns, len) == 0)
		*ns_r = XML_NS_CLIENT;
	else if (parent_ns != NULL && strncmp(parent_ns, raw, len) == 0 &&
		 parent_ns[len] == '\0')
		*ns_r = parent_ns;
	else
		*ns_r = arena_strndup(a, raw, len);
	return arena_strdup(a, sep + 1);
}

static struct xml_node *build_element(struct xml_parser *p, struct arena *a,
				      const char *name, const char **atts,
				      const char *parent_ns)
{
	struct xml_node *n = arena_alloc(a, sizeof(*n));
	struct xml_attr **tail = &n->attrs;
	const char *sep;
	size_t i;

	memset(n, 0, sizeof(*n));
	n->type = XML_ELEMENT;
	n->name = split_name(p, a, name, parent_ns, &n->ns);
	for (i = 0; atts[i] != NULL; i += 2) {
		struct xml_attr *at = arena_alloc(a, sizeof(*at));

		/* Namespace declarations are not attributes in expat's
		 * namespace mode; a prefixed attribute comes as
		 * "uri" NS_SEP "local" (xml:lang as XML_NS_XML "lang"). */
		at->next = NULL;
		sep = strchr(atts[i], NS_SEP);
		if (sep == NULL) {
			at->ns = NULL;
			at->name = arena_strdup(a, atts[i]);
		} else {
			size_t len = (size_t)(sep - atts[i]);

			if (len == sizeof(XML_NS_XML) - 1 &&
			    memcmp(atts[i], XML_NS_XML, len) == 0)
				at->ns = XML_NS_XML;
			else
				at->ns = arena_strndup(a, atts[i], len);
			at->name = arena_strdup(a, sep + 1);
		}
		at->value = arena_strdup(a, atts[i + 1]);
		*tail = at;
		tail = &at->next;
	}
	return n;
}

static void link_child(struct xml_node *parent, struct xml_node *n)
{
	n->parent = parent;
	if (parent->last_child != NULL)
		parent->last_child->next = n;
	else
		parent->children = n;
	parent->last_child = n;
}

static void flush_text(struct xml_parser *p)
{
	struct xml_node *t;

	if (p->text.len == 0 || p->cur == NULL)
		return;
	t = arena_alloc(p->arena, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->type = XML_TEXT;
	t->text = arena_strndup(p->arena, p->text.data, p->text.len);
	t->text_len = p->text.len;
	link_child(p->cur, t);
	buf_reset(&p->text);
}

static void drop_replay(struct xml_parser *p)
{
	if (p->replay_owned)
		free((char *)p->replay);
	p->replay = NULL;
	p->replay_len = 0;
	p->replay_owned = false;
	buf_free(&p->decls);
}

/* Builds the tag that a later expat parser replays: the root's name as
 * the peer wrote it (the end tag must match it) and its namespace
 * declarations. Without the input context the stream keeps its parser. */
static void save_replay(struct xml_parser *p)
{
	struct buf b = BUF_INIT;
	const char *in;
	int off, size, n = 1;

	in = XML_GetInputContext(p->xp, &off, &size);
	if (in == NULL || off < 0 || off >= size || in[off] != '<') {
		buf_free(&p->decls);
		return;
	}
	while (off + n < size && strchr(" \t\r\n/>", in[off + n]) == NULL)
		n++;
	buf_append(&b, in + off, (size_t)n);
	if (p->decls.len > 0)
		buf_append(&b, p->decls.data, p->decls.len);
	buf_append(&b, ">", 1);
	buf_free(&p->decls);
	for (size_t i = 0; i < sizeof(common_replays) / sizeof(*common_replays); i++)
		if (strcmp(b.data, common_replays[i]) == 0) {
			p->replay = common_replays[i];
			p->replay_len = b.len;
			buf_free(&b);
			return;
		}
	p->replay_len = b.len;
	p->replay = buf_steal(&b, NULL);
	p->replay_owned = true;
}

static void stream_start(struct xml_parser *p, const char *name,
			 const char **atts)
{
	struct arena *a;
	struct xml_node *hdr;

	if (strcmp(name, XML_NS_STREAM NS_SEP_STR "stream") != 0) {
		fail(p, "invalid-namespace", "the root is not <stream:stream/>");
		return;
	}
	p->depth = 1;
	p->mark = event_end(p);
	save_replay(p);
	a = arena_new(0);
	hdr = build_element(p, a, name, atts, NULL);
	hdr->arena = a;
	if (p->cb.stream_open != NULL)
		p->cb.stream_open(p->ctx, hdr,
		    p->content_ns != NULL ? p->content_ns : "");
	arena_free(a);
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
			     const XML_Char **atts)
{
	struct xml_parser *p = ud;
	unsigned nattrs = p->nsdecls;
	struct xml_node *n;
	size_t i;

	p->nsdecls = 0;
	if (stopped(p))
		return;
	if (p->replaying) {
		/* The stream's header again: its checks were done. */
		p->depth = 1;
		return;
	}
	for (i = 0; atts[i] != NULL; i += 2)
		nattrs++;
	if (p->lim.max_attrs != 0 && nattrs > p->lim.max_attrs) {
		fail(p, "policy-violation", "too many attributes");
		return;
	}
	if (p->depth == 1)
		p->mark = event_start(p);
	if (too_big(p, event_end(p))) {
		fail_too_big(p);
		return;
	}
	if (p->depth == 0) {
		stream_start(p, name, atts);
		return;
	}
	/* The element about to open sits at stanza depth p->depth. */
	if (p->lim.max_depth != 0 && p->depth > p->lim.max_depth) {
		fail(p, "policy-violation", "elements nested too deep");
		return;
	}
	if (p->depth == 1) {
		p->arena = arena_new(STANZA_CHUNK);
		n = build_element(p, p->arena, name, atts, NULL);
		n->arena = p->arena;
		p->stanza = n;
	} else {
		flush_text(p);
		n = build_element(p, p->arena, name, atts, p->cur->ns);
		link_child(p->cur, n);
	}
	p->cur = n;
	p->depth++;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xml_parser *p = ud;
	struct xml_node *stanza;

	if (stopped(p))
		return;
	if (p->depth == 1) {
		p->depth = 0;
		if (p->cb.stream_close != NULL)
			p->cb.stream_close(p->ctx);
		return;
	}
	if (too_big(p, event_end(p))) {
		fail_too_big(p);
		return;
	}
	flush_text(p);
	p->cur = p->cur->parent;
	if (--p->depth > 1)
		return;

	/* A whole stanza: it is the callee's from here on. */
	stanza = p->stanza;
	p->stanza = NULL;
	p->arena = NULL;
	p->mark = event_end(p);
	p->stanza_done = true;
	trim(&p->text);
	if (p->cb.stanza != NULL)
		p->cb.stanza(p->ctx, stanza);
	else
		xml_free(stanza);
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xml_parser *p = ud;
	int i;

	if (stopped(p))
		return;
	if (p->depth <= 1) {
		/* Between stanzas only whitespace (keepalives) may appear.
		 * Text there is bad-format rather than not-well-formed: the
		 * XML is fine, XMPP's use of it is not (RFC 6120 §4.9.3.1). */
		for (i = 0; i < len; i++) {
			if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' &&
			    s[i] != '\r') {
				fail(p, "bad-format", "text between stanzas");
				return;
			}
		}
		p->mark = event_end(p);
		return;
	}
	if (too_big(p, event_end(p))) {
		fail_too_big(p);
		return;
	}
	buf_append(&p->text, s, (size_t)len);
}

static void XMLCALL on_nsdecl(void *ud, const XML_Char *prefix,
			      const XML_Char *uri)
{
	struct xml_parser *p = ud;

	if (stopped(p))
		return;
	p->nsdecls++;
	if (p->depth != 0 || p->replaying)
		return;
	if (uri == NULL)
		uri = "";
	if (prefix == NULL) {
		free(p->content_ns);
		p->content_ns = xstrdup(uri);
		p->content_ns_len = strlen(p->content_ns);
		buf_append_str(&p->decls, " xmlns='");
	} else {
		buf_append_str(&p->decls, " xmlns:");
		buf_append_str(&p->decls, prefix);
		buf_append_str(&p->decls, "='");
	}
	xml_escape(&p->decls, uri, strlen(uri), 1);
	buf_append(&p->decls, "'", 1);
}

static void XMLCALL on_xmldecl(void *ud, const XML_Char *version,
			       const XML_Char *encoding, int standalone)
{
	struct xml_parser *p = ud;

	/* The parser was created for UTF-8, which overrides what the
	 * declaration says; RFC 6120 §11.6 wants anything else refused. */
	if (!stopped(p) && encoding != NULL && strcasecmp(encoding, "UTF-8") != 0)
		fail(p, "unsupported-encoding", "only UTF-8 is supported");
}

static void restricted(struct xml_parser *p, const char *text)
{
	if (!stopped(p))
		fail(p, "restricted-xml", text);
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
	restricted(ud, "comment");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target,
			  const XML_Char *data)
{
	restricted(ud, "processing instruction");
}

/* Called before any of the internal subset is read, so entity expansion
 * attacks (billion laughs) never start. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name,
			       const XML_Char *sysid, const XML_Char *pubid,
			       int has_internal_subset)
{
	restricted(ud, "DTD");
}

static void XMLCALL on_entitydecl(void *ud, const XML_Char *name,
				  int is_param, const XML_Char *value,
				  int value_len, const XML_Char *base,
				  const XML_Char *sysid, const XML_Char *pubid,
				  const XML_Char *notation)
{
	restricted(ud, "entity declaration");
}

static void XMLCALL on_unparsed(void *ud, const XML_Char *name,
				const XML_Char *base, const XML_Char *sysid,
				const XML_Char *pubid, const XML_Char *notation)
{
	restricted(ud, "unparsed entity");
}

static void XMLCALL on_notation(void *ud, const XML_Char *name,
				const XML_Char *base, const XML_Char *sysid,
				const XML_Char *pubid)
{
	restricted(ud, "notation declaration");
}

static int XMLCALL on_extent(XML_Parser xp, const XML_Char *context,
			     const XML_Char *base, const XML_Char *sysid,
			     const XML_Char *pubid)
{
	restricted(XML_GetUserData(xp), "external entity");
	return XML_STATUS_ERROR;
}

static void parser_setup(struct xml_parser *p)
{
	XML_Parser xp = p->xp;

	XML_SetUserData(xp, p);
	XML_SetElementHandler(xp, on_start, on_end);
	XML_SetCharacterDataHandler(xp, on_text);
	XML_SetStartNamespaceDeclHandler(xp, on_nsdecl);
	XML_SetXmlDeclHandler(xp, on_xmldecl);
	XML_SetCommentHandler(xp, on_comment);
	XML_SetProcessingInstructionHandler(xp, on_pi);
	XML_SetStartDoctypeDeclHandler(xp, on_doctype);
	XML_SetEntityDeclHandler(xp, on_entitydecl);
	XML_SetUnparsedEntityDeclHandler(xp, on_unparsed);
	XML_SetNotationDeclHandler(xp, on_notation);
	XML_SetExternalEntityRefHandler(xp, on_extent);
	XML_SetParamEntityParsing(xp, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_SetReparseDeferralEnabled != NULL)
		XML_SetReparseDeferralEnabled(xp, XML_FALSE);
}

static XML_Parser expat_new(void)
{
	XML_Parser xp = XML_ParserCreateNS("UTF-8", NS_SEP);

	/* Expat returns NULL only when malloc does (STYLE rule 5). */
	if (xp == NULL) {
		log_error("out of memory creating an XML parser");
		abort();
	}
	return xp;
}

struct xml_parser *xml_parser_new(const struct xml_parser_limits *limits,
				  const struct xml_parser_callbacks *cb,
				  void *ctx)
{
	struct xml_parser *p = xcalloc(1, sizeof(*p));

	if (limits != NULL)
		p->lim = *limits;
	if (cb != NULL)
		p->cb = *cb;
	p->ctx = ctx;
	return p;
}

void xml_parser_free(struct xml_parser *p)
{
	if (p == NULL)
		return;
	drop_stanza(p);
	XML_ParserFree(p->xp);
	free(p->content_ns);
	drop_replay(p);
	buf_free(&p->text);
	buf_free(&p->hold);
	free(p);
}

static void do_reset(struct xml_parser *p)
{
	drop_stanza(p);
	if (p->xp != NULL) {
		if (XML_ParserReset(p->xp, "UTF-8")) {
			/* Reset clears every handler. */
			parser_setup(p);
			p->xp_base = 0;
			p->stanza_done = false;
		} else {
			XML_ParserFree(p->xp);
			p->xp = NULL;
		}
	}
	drop_replay(p);
	free(p->content_ns);
	p->content_ns = NULL;
	p->content_ns_len = 0;
	trim(&p->text);
	buf_free(&p->hold);
	p->depth = 0;
	p->nsdecls = 0;
	p->in_total = 0;
	p->mark = 0;
	p->fed = 0;
	p->lex = LEX_TEXT;
	p->token_start = 0;
	p->failed = false;
	p->reset_pending = false;
}

void xml_parser_reset(struct xml_parser *p)
{
	if (p->in_parse) {
		/* Expat cannot be reset under its own feet: stop it, and
		 * xml_parser_feed() completes the reset on its way out. */
		if (!stopped(p))
			XML_StopParser(p->xp, XML_FALSE);
		p->reset_pending = true;
		return;
	}
	do_reset(p);
}

/* Runs the lexer over `len` bytes at absolute offset `base`. With
 * `to_token_end`, stops just after the current token ends. Returns the
 * bytes scanned. Only tags need to be exact (a '>' in a quoted value does
 * not end one); for anything else erring towards "ended" merely feeds
 * expat a partial token. A '<' inside a tag cannot be XML: the tag is
 * taken as ended so that expat gets to see the '<' and report it. */
static size_t lex(struct xml_parser *p, const char *data, size_t len,
		  uint64_t base, bool to_token_end)
{
	enum lex s = p->lex;
	const char *q;
	size_t i = 0;

	while (i < len) {
		char c = data[i];

		switch (s) {
		case LEX_TEXT:
			q = memchr(data + i, '<', len - i);
			if (q == NULL) {
				i = len;
				continue;
			}
			i = (size_t)(q - data);
			s = LEX_LT;
			p->token_start = base + i;
			break;
		case LEX_LT:
			if (c == '!') {
				s = LEX_BANG;
				break;
			}
			if (c == '?') {
				s = LEX_MARKUP;
				break;
			}
			s = LEX_TAG;
			continue; /* c belongs to the tag */
		case LEX_TAG:
			if (c == '>')
				s = LEX_TEXT;
			else if (c == '\'')
				s = LEX_SQ;
			else if (c == '"')
				s = LEX_DQ;
			else if (c == '<')
				s = LEX_TEXT; /* not well-formed: see below */
			break;
		case LEX_SQ:
		case LEX_DQ:
			if (c == (s == LEX_SQ ? '\'' : '"'))
				s = LEX_TAG;
			else if (c == '<')
				s = LEX_TEXT; /* ditto */
			break;
		case LEX_BANG:
			s = c == '[' ? LEX_CDATA : c == '>' ? LEX_TEXT :
			    LEX_MARKUP;
			break;
		case LEX_MARKUP:
			if (c == '>')
				s = LEX_TEXT;
			break;
		case LEX_CDATA:
			q = memchr(data + i, ']', len - i);
			if (q == NULL) {
				i = len;
				continue;
			}
			i = (size_t)(q - data);
			s = LEX_CDATA_B1;
			break;
		case LEX_CDATA_B1:
			s = c == ']' ? LEX_CDATA_B2 : LEX_CDATA;
			break;
		case LEX_CDATA_B2:
			if (c == '>')
				s = LEX_TEXT;
			else if (c != ']')
				s = LEX_CDATA;
			break;
		}
		i++;
		if (to_token_end && !LEX_IN_TOKEN(s))
			break;
	}
	p->lex = s;
	return i;
}

static void expat_failed(struct xml_parser *p)
{
	enum XML_Error code = XML_GetErrorCode(p->xp);
	const char *cond;

	switch (code) {
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		cond = "unsupported-encoding";
		break;
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_ASYNC_ENTITY:
		cond = "restricted-xml";
		break;
	default:
		cond = "not-well-formed";
		break;
	}
	fail(p, cond, XML_ErrorString(code));
}

static int run_expat(struct xml_parser *p, const char *data, size_t len)
{
	while (len > 0) {
		int n = len > INT_MAX / 2 ? INT_MAX / 2 : (int)len;
		enum XML_Status st;

		p->in_parse = true;
		st = XML_Parse(p->xp, data, n, XML_FALSE);
		p->in_parse = false;
		if (stopped(p))
			return -1;
		if (st != XML_STATUS_OK) {
			expat_failed(p);
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A new expat parser for the stream at offset p->fed: inside the stream
 * it first gets the replayed header, which leaves it at depth 1 with the
 * root's namespaces in scope and counts for no bytes of the stream. */
static int expat_make(struct xml_parser *p)
{
	int rc;

	p->xp = expat_new();
	parser_setup(p);
	p->stanza_done = false;
	p->xp_base = (int64_t)p->fed;
	if (p->depth == 0)
		return 0;
	p->xp_base -= (int64_t)p->replay_len;
	p->depth = 0;
	p->replaying = true;
	rc = run_expat(p, p->replay, p->replay_len);
	p->replaying = false;
	return rc;
}

/* Frees expat if the stream is between stanzas with nothing pending:
 * every byte given to expat was reported (so it holds no partial token),
 * nothing is held back here, and no stanza is being built. Not before a
 * first stanza, so that a header fed on its own (a stream restart, or a
 * module parsing one stored stanza) is not parsed twice. */
static void maybe_idle(struct xml_parser *p)
{
	if (p->xp == NULL || p->failed || p->replay == NULL ||
	    p->depth != 1 || !p->stanza_done || p->arena != NULL ||
	    p->hold.len != 0 || p->lex != LEX_TEXT || p->mark != p->fed)
		return;
	XML_ParserFree(p->xp);
	p->xp = NULL;
	buf_free(&p->text);
	buf_free(&p->hold);
}

/* True if `data` is only whitespace (a keepalive between stanzas). */
static bool all_space(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' &&
		    data[i] != '\r')
			return false;
	return true;
}

/* Hands bytes to expat, making a parser first if the stream was idle.
 * Returns -1 once parsing stopped (an error, or a reset asked by a
 * callback), else 0. */
static int parse(struct xml_parser *p, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (p->xp == NULL && expat_make(p) != 0)
		return -1;
	p->fed += len;
	return run_expat(p, data, len);
}

int xml_parser_feed(struct xml_parser *p, const char *data, size_t len)
{
	uint64_t base = p->in_total;
	size_t off = 0, cut;

	if (p->failed)
		return -1;
	if (len == 0)
		return 0;
	p->in_total += len;
	if (p->xp == NULL && p->depth == 1 && p->hold.len == 0 &&
	    p->lex == LEX_TEXT && all_space(data, len)) {
		p->fed = p->mark = p->in_total;
		return 0;
	}

	if (p->hold.len > 0) {
		/* Finish the held tag first. */
		off = lex(p, data, len, base, true);
		if (LEX_IN_TOKEN(p->lex)) {
			if (too_big(p, p->in_total))
				fail_too_big(p);
			else
				buf_append(&p->hold, data, len);
			goto out;
		}
		buf_append(&p->hold, data, off);
		if (parse(p, p->hold.data, p->hold.len) < 0)
			goto out;
		trim(&p->hold);
	}

	lex(p, data + off, len - off, base + off, false);
	cut = len;
	if (LEX_IN_TOKEN(p->lex))
		cut = (size_t)(p->token_start - base);
	if (parse(p, data + off, cut - off) < 0)
		goto out;
	if (too_big(p, p->in_total)) {
		fail_too_big(p);
		goto out;
	}
	if (cut < len)
		buf_append(&p->hold, data + cut, len - cut);
out:
	if (p->reset_pending) {
		/* RFC 6120 §5.3.3: nothing after the stanza that restarted
		 * the stream may be acted on, so the rest goes. */
		do_reset(p);
	}
	maybe_idle(p);
	return p->failed ? -1 : 0;
}

size_t xml_parser_memory(const struct xml_parser *p)
{
	return sizeof(*p) + (p->xp != NULL ? EXPAT_BYTES : 0) +
	    (p->arena != NULL ? arena_size(p->arena) : 0) +
	    p->text.cap + p->hold.cap + p->content_ns_len + p->decls.cap +
	    (p->replay_owned ? p->replay_len + 1 : 0);
}
