/* XEP-0352 Client State Indication. While a client says it is inactive we
 * hold back what it will not look at anyway, presence updates and
 * chat-state-only messages (the first two examples of XEP-0352 §3.2), and send
 * everything else at once. Anything we do not hold first flushes what we
 * held, so the client still sees each sender's stanzas in order; only
 * superseded ones are gone: the latest presence of a full JID, and the
 * latest chat state of a conversation, replace the older ones.
 *
 * The state belongs to the stream that announced it (§5.2: a resumed
 * stream starts active), so a session whose stream is gone or was
 * replaced gets its held stanzas flushed and nothing more held. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/account.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "server.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xmpp/c2s.h"

#define NS_CSI "urn:xmpp:csi:0"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_SID "urn:xmpp:sid:0"

/* Stanzas held per session. Past this (or past half of max_outq, counted
 * as the memory the copies take, so a flush never overruns the output
 * queue that would cut the client off), the oldest chat states go first;
 * presence is never dropped: with only presence left we flush. */
#define CSI_HELD_MAX 1000

extern const struct module csi_module;

enum csi_class { CSI_URGENT, CSI_PRESENCE, CSI_CHAT_STATE };

struct held {
	struct held *prev, *next;
	struct xml_node *st;
	char *key;          /* in csi->latest, or NULL */
	size_t cost;        /* arena_size() of st */
	bool chat_state;
};

struct csi {
	/* The stream that said <inactive/>, by id: a resumed session's new
	 * stream may well sit at the old one's address. */
	uint64_t stream_id;
	struct held *head, *tail;
	size_t n, bytes, nchat;
	struct hashmap *latest;  /* dedup key -> struct held */
	/* Sending may end the session (output queue full): session_end
	 * then finds us mid-flush, sets `ended` and leaves the freeing to
	 * the flush. */
	bool flushing, ended;
};

static void **csi_slot(struct session *s)
{
	return &s->mod_ctx[modules_index(s->srv->modules, &csi_module)];
}

/* Is the session still on the stream that went inactive? */
static bool csi_same_stream(const struct session *s, const struct csi *c)
{
	return s->stream != NULL && s->stream->id == c->stream_id;
}

/* ---- the queue ---- */

static void held_unlink(struct csi *c, struct held *h)
{
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		c->head = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	else
		c->tail = h->prev;
	if (h->key != NULL && hashmap_get(c->latest, h->key) == h)
		hashmap_remove(c->latest, h->key);
	c->n--;
	c->bytes -= h->cost;
	if (h->chat_state)
		c->nchat--;
}

static void held_free(struct held *h)
{
	xml_free(h->st);
	free(h->key);
	free(h);
}

static void csi_free(struct csi *c)
{
	struct held *h, *next;

	for (h = c->head; h != NULL; h = next) {
		next = h->next;
		held_free(h);
	}
	hashmap_free(c->latest);
	free(c);
}

/* Sends the held stanzas in order. Returns false if the session ended on
 * the way (then `s` and `c` are freed and must not be touched). */
static bool csi_flush(struct session *s, struct csi *c)
{
	c->flushing = true;
	while (c->head != NULL && !c->ended) {
		struct held *h = c->head;

		held_unlink(c, h);
		session_send_now(s, h->st);
		held_free(h);
	}
	c->flushing = false;
	if (c->ended) {
		csi_free(c);
		return false;
	}
	return true;
}

/* Back to active: flush, forget the state. Returns as csi_flush. */
static bool csi_activate(struct session *s, struct csi *c)
{
	if (!csi_flush(s, c))
		return false;
	*csi_slot(s) = NULL;
	csi_free(c);
	return true;
}

static bool csi_over(const struct session *s, const struct csi *c)
{
	return c->n > CSI_HELD_MAX || c->bytes > s->srv->cfg->max_outq / 2;
}

/* Makes room by dropping the oldest chat states; if presence alone is
 * over the limits, flushes. Returns as csi_flush. */
static bool csi_trim(struct session *s, struct csi *c)
{
	struct held *h = c->head;
	size_t dropped = 0;

	while (csi_over(s, c) && c->nchat > 0) {
		struct held *next;

		while (!h->chat_state)
			h = h->next;
		next = h->next;
		held_unlink(c, h);
		held_free(h);
		h = next;
		dropped++;
	}
	if (dropped > 0)
		log_msg(LOG_DEBUG, s->full, "csi: dropped %zu held chat states",
			dropped);
	if (csi_over(s, c)) {
		log_msg(LOG_DEBUG, s->full, "csi: %zu held stanzas, flushing",
			c->n);
		return csi_flush(s, c);
	}
	return true;
}

static void csi_hold(struct session *s, struct csi *c,
		     const struct xml_node *st, enum csi_class cls, char *key)
{
	struct held *h = xcalloc(1, sizeof(*h));
	struct held *old;

	h->st = xml_copy(st);
	h->cost = arena_size(xml_arena(h->st));
	h->chat_state = cls == CSI_CHAT_STATE;
	h->key = key;
	if (key != NULL) {
		/* Superseded: the newer one goes to the end, after whatever
		 * the same sender sent in between. */
		old = hashmap_get(c->latest, key);
		if (old != NULL) {
			held_unlink(c, old);
			held_free(old);
		}
		hashmap_put(c->latest, key, h);
	}
	h->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = h;
	else
		c->head = h;
	c->tail = h;
	c->n++;
	c->bytes += h->cost;
	if (h->chat_state)
		c->nchat++;
	csi_trim(s, c);
}

/* ---- what is held ---- */

/* A message whose only payload is a XEP-0085 chat state (a <thread/>,
 * XEP-0334 hints and XEP-0359 ids may ride along). */
static bool chat_state_only(const struct xml_node *msg)
{
	const char *type = xml_attr(msg, "type");
	bool state = false;

	if (type != NULL && strcmp(type, "error") == 0)
		return false;
	for (const struct xml_node *c = xml_first_element(msg); c != NULL;
	     c = xml_next(c, NULL, NULL)) {
		if (strcmp(c->ns, NS_CHATSTATES) == 0)
			state = true;
		else if (!xml_is(c, "thread", XML_NS_CLIENT) &&
			 strcmp(c->ns, NS_HINTS) != 0 &&
			 strcmp(c->ns, NS_SID) != 0)
			return false;
	}
	return state;
}

/* The message inside a XEP-0280 carbon from the user's own bare JID, and
 * the carbon's direction, or NULL. */
static const struct xml_node *carbon_inner(const struct session *s,
					   const struct xml_node *msg,
					   const char **direction_r)
{
	const struct xml_node *wrap = xml_first_element(msg);
	const char *from = xml_attr(msg, "from");
	const struct xml_node *fwd;

	if (wrap == NULL || xml_count_elements(msg) != 1 ||
	    strcmp(wrap->ns, NS_CARBONS) != 0 || from == NULL ||
	    strcmp(from, s->account->bare) != 0)
		return NULL;
	if (strcmp(wrap->name, "sent") != 0 &&
	    strcmp(wrap->name, "received") != 0)
		return NULL;
	fwd = xml_child(wrap, "forwarded", NS_FORWARD);
	if (fwd == NULL)
		return NULL;
	*direction_r = wrap->name;
	return xml_child(fwd, "message", XML_NS_CLIENT);
}

static const char *attr_or_empty(const struct xml_node *st, const char *name)
{
	const char *v = xml_attr(st, name);
	return v != NULL ? v : "";
}

/* Classifies `st`; for held stanzas *key_r is the (xmalloc'd) key under
 * which a newer stanza supersedes it. */
static enum csi_class csi_classify(const struct session *s,
				   const struct xml_node *st, char **key_r)
{
	const struct xml_node *inner;
	const char *type = xml_attr(st, "type");
	const char *direction;

	*key_r = NULL;
	switch (stanza_kind(st)) {
	case STANZA_PRESENCE:
		/* Availability only: subscription requests and answers,
		 * and errors, are for the user to act on. */
		if (type != NULL && strcmp(type, "unavailable") != 0)
			return CSI_URGENT;
		if (xml_attr(st, "from") != NULL)
			*key_r = xasprintf("p\x1f%s", xml_attr(st, "from"));
		return CSI_PRESENCE;
	case STANZA_MESSAGE:
		if (chat_state_only(st)) {
			*key_r = xasprintf("m\x1f%s", attr_or_empty(st, "from"));
			return CSI_CHAT_STATE;
		}
		/* A carbon of a chat state is as unimportant as the chat
		 * state; its conversation is the forwarded message's. */
		inner = carbon_inner(s, st, &direction);
		if (inner != NULL && chat_state_only(inner)) {
			*key_r = xasprintf("c\x1f%s\x1f%s\x1f%s", direction,
					   attr_or_empty(inner, "from"),
					   attr_or_empty(inner, "to"));
			return CSI_CHAT_STATE;
		}
		return CSI_URGENT;
	case STANZA_IQ:
	case STANZA_OTHER:
		break;
	}
	return CSI_URGENT;
}

/* ---- hooks ---- */

static bool csi_filter(struct session *s, const struct xml_node *st)
{
	struct csi *c = *csi_slot(s);
	enum csi_class cls;
	char *key;

	if (c == NULL)
		return false;
	if (!csi_same_stream(s, c)) {
		/* The inactive stream is gone (detached) or was replaced
		 * (resumed): nothing is held for it any more. */
		return !csi_activate(s, c);
	}
	cls = csi_classify(s, st, &key);
	if (cls == CSI_URGENT) {
		/* What we held goes first, then the caller sends `st`. If
		 * the session ended meanwhile, the stanza has nowhere to go:
		 * say we took it so the caller does not send it. */
		return !csi_flush(s, c);
	}
	csi_hold(s, c, st, cls, key);
	return true;
}

static bool csi_stream_element(struct session *s, struct xml_node *el)
{
	struct csi *c = *csi_slot(s);

	if (strcmp(el->ns, NS_CSI) != 0)
		return false;
	if (strcmp(el->name, "active") == 0) {
		if (c != NULL)
			csi_activate(s, c);
		return true;
	}
	if (strcmp(el->name, "inactive") != 0)
		return false;
	if (c != NULL && !csi_same_stream(s, c)) {
		if (!csi_activate(s, c))
			return true;
		c = NULL;
	}
	if (c == NULL && s->stream != NULL) {
		c = xcalloc(1, sizeof(*c));
		c->stream_id = s->stream->id;
		c->latest = hashmap_new();
		*csi_slot(s) = c;
	}
	return true;
}

static void csi_session_end(struct session *s)
{
	void **slot = csi_slot(s);
	struct csi *c = *slot;

	if (c == NULL)
		return;
	*slot = NULL;
	/* Held presence and chat states die with the session: they tell
	 * about a state the next session will learn afresh. */
	if (c->flushing)
		c->ended = true;
	else
		csi_free(c);
}

static void csi_stream_features(struct server *srv, struct buf *out)
{
	(void)srv;
	buf_append_str(out, "<csi xmlns='" NS_CSI "'/>");
}

const struct module csi_module = {
	.name = "csi",
	.session_filter = csi_filter,
	.stream_element = csi_stream_element,
	.session_end = csi_session_end,
	.stream_features = csi_stream_features,
};
