/* XEP-0280 Message Carbons v2: every carbons-enabled resource of an
 * account sees both sides of its conversations, as <sent/> and
 * <received/> copies wrapped in XEP-0297 <forwarded/>.
 *
 * Which messages are copied follows §6.1 of the XEP; where it leaves a
 * choice, the comments on carbons_eligible() say what we chose. The copies
 * go out with session_send(), so XEP-0352 may hold them like any other
 * stanza. */
#include <stdlib.h>
#include <string.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/session.h"
#include "core/stanza.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_RECEIPTS "urn:xmpp:receipts"
#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_MARKERS "urn:xmpp:chat-markers:0"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_CONFERENCE "jabber:x:conference"

extern const struct module carbons_module;

/* The session's slot holds this address while carbons are enabled: one
 * flag needs no allocation and nothing to free at session end. */
static char enabled_mark;

static void **carbons_slot(struct session *s)
{
	return &s->mod_ctx[modules_index(s->srv->modules, &carbons_module)];
}

static bool carbons_enabled(struct session *s)
{
	return *carbons_slot(s) == &enabled_mark;
}

/* ---- enable / disable (§4, §5, §10.1) ---- */

static void carbons_set(const struct iq_request *req)
{
	struct session *s = req->session;

	/* Only a session of this server may switch its own carbons: the
	 * request comes without 'to' (stamped with the user's bare JID) or
	 * addressed to that bare JID. Another user's bare JID is not ours
	 * to change (§5.1: not-allowed). */
	if (s == NULL || req->to->resource != NULL ||
	    !jid_bare_equal(&s->jid, req->to)) {
		iq_error(req, "not-allowed", NULL);
		return;
	}
	/* §10.1: repeating enable or disable is not an error. */
	*carbons_slot(s) = strcmp(req->payload->name, "enable") == 0
		? (void *)&enabled_mark : NULL;
	iq_reply(req, NULL);
}

/* ---- eligibility (§6.1) ---- */

static bool type_is(const char *type, const char *want)
{
	return strcmp(type, want) == 0;
}

/* Payloads "typically used in IM" (§6.1 rule 3): receipts, chat states,
 * chat markers, as direct children of the message. */
static bool has_im_payload(const struct xml_node *msg)
{
	return xml_child(msg, NULL, NS_RECEIPTS) != NULL ||
	       xml_child(msg, NULL, NS_CHATSTATES) != NULL ||
	       xml_child(msg, NULL, NS_MARKERS) != NULL;
}

/* Is `msg` copied? `sent`: the user's own session sent it (else it is
 * being delivered to the user).
 *
 * Choices where the XEP leaves room:
 * - <private/> or the XEP-0334 <no-copy/> hint alone each suppress copies
 *   (§9 asks for both; either one states the sender's wish).
 * - A message that already carries <sent/> or <received/> is never copied
 *   again, whoever it claims to come from: a carbon is not a
 *   conversation, and a forged one must not be laundered into a genuine
 *   one from the user's bare JID (§11 and the CVEs it cites).
 * - type='error' is copied when it echoes an eligible payload (a body, or
 *   an IM payload), which is how RFC 6120 §8.3.1 bounces usually look;
 *   we do not track which messages were sent, so an error without the
 *   original payload is not copied. For the same reason we do not
 *   advertise urn:xmpp:carbons:rules:0.
 * - MUC: groupchat is never copied; invitations (XEP-0249 and mediated)
 *   are; a message carrying <x xmlns='muc#user'/> that is delivered to
 *   the user is a MUC PM the room already replicates to every joined
 *   client, so it is not copied, while an outgoing PM is (as any chat). */
static bool carbons_eligible(const struct xml_node *msg, bool sent)
{
	const char *type = xml_attr(msg, "type");
	const struct xml_node *muc;

	if (type == NULL)
		type = "normal";
	if (xml_child(msg, "private", NS_CARBONS) != NULL ||
	    xml_child(msg, "no-copy", NS_HINTS) != NULL)
		return false;
	if (xml_child(msg, "sent", NS_CARBONS) != NULL ||
	    xml_child(msg, "received", NS_CARBONS) != NULL)
		return false;
	if (type_is(type, "groupchat"))
		return false;
	muc = xml_child(msg, "x", NS_MUC_USER);
	if (muc != NULL) {
		if (xml_child(muc, "invite", NS_MUC_USER) != NULL)
			return true;
		if (!sent)
			return false;
	}
	if (xml_child(msg, "x", NS_CONFERENCE) != NULL)
		return true;
	if (type_is(type, "chat"))
		return true;
	if (type_is(type, "normal") || type_is(type, "error")) {
		if (xml_child(msg, "body", XML_NS_CLIENT) != NULL)
			return true;
	}
	return has_im_payload(msg);
}

/* ---- copies (§7, §8) ---- */

/* <message from=bare type=...><sent|received><forwarded>msg</forwarded>
 * </...></message>; 'to' is set per recipient. */
static struct xml_node *carbons_wrap(const struct xml_node *msg,
				     const char *bare, const char *direction)
{
	struct xml_node *copy = stanza_new("message", bare, NULL,
					   xml_attr(msg, "type"), NULL);
	struct xml_node *fwd;

	fwd = xml_add_child(xml_add_child(copy, direction, NS_CARBONS),
			    "forwarded", NS_FORWARD);
	xml_copy_into(fwd, msg);
	return copy;
}

/* Sends `msg` wrapped as `direction` to every carbons-enabled session of
 * `a` except those in skip[] and the one bound to `skip_full` (may be
 * NULL). Sending may end a session whose output queue overflows, taking
 * it out of the list we walk (and freeing it), so we collect the full
 * JIDs first and look each one up again before sending. */
static void carbons_send(struct account *a, const struct xml_node *msg,
			 const char *direction, struct session *const *skip,
			 size_t nskip, const char *skip_full)
{
	struct xml_node *copy = NULL;
	char **targets = NULL;
	size_t n = 0, cap = 0;

	account_foreach_session(a, o) {
		bool skipped = !carbons_enabled(o);

		for (size_t i = 0; i < nskip && !skipped; i++)
			skipped = skip[i] == o;
		if (!skipped && skip_full != NULL)
			skipped = strcmp(o->full, skip_full) == 0;
		if (skipped)
			continue;
		targets = xgrow(targets, &cap, n + 1, sizeof(*targets));
		targets[n++] = xstrdup(o->full);
	}
	if (n > 0)
		copy = carbons_wrap(msg, a->bare, direction);
	for (size_t i = 0; i < n; i++) {
		struct session *o = session_find(a->srv, targets[i]);

		if (o != NULL && o->account == a && carbons_enabled(o)) {
			xml_set_attr(copy, "to", o->full);
			session_send(o, copy);
		}
		free(targets[i]);
	}
	free(targets);
	if (copy != NULL)
		xml_free(copy);
}

/* True if the bare JID of `jid` (a prepared JID string) is `bare`. */
static bool jid_has_bare(const char *jid, const char *bare)
{
	size_t len = strlen(bare);

	return jid != NULL && strncmp(jid, bare, len) == 0 &&
	       (jid[len] == '\0' || jid[len] == '/');
}

/* §8: copies of what a session sends go to the account's other
 * carbons-enabled resources, whether or not the sender has carbons on.
 * A message to the user's own account is left to the received side
 * (carbons_routed): the resources that did not get it see it once, as a
 * <received/> copy, not twice. */
static void carbons_message_sent(struct session *s, struct xml_node *msg)
{
	struct account *a = s->account;

	if (jid_has_bare(xml_attr(msg, "to"), a->bare))
		return;
	if (!carbons_eligible(msg, true))
		return;
	carbons_send(a, msg, "sent", &s, 1, NULL);
}

/* §7: a message delivered to some resources of a local account is copied
 * to its other carbons-enabled resources. When no resource took it
 * (n == 0) it went to the offline store and will be delivered from there;
 * copies now would show it twice. The sessions in to[] are only compared,
 * never dereferenced: the account is found by the message's 'to'. */
static void carbons_routed(struct server *srv, const struct xml_node *msg,
			   struct session *const *to, size_t n)
{
	const char *from = xml_attr(msg, "from");
	struct account *a;
	char *bare;

	if (n == 0 || !carbons_eligible(msg, false))
		return;
	bare = jid_normalize_bare(xml_attr(msg, "to"));
	if (bare == NULL)
		return;
	a = hashmap_get(srv->accounts, bare);
	free(bare);
	if (a == NULL || a->sessions == NULL)
		return;
	/* A message from one of the user's resources to the account: its
	 * sender does not need a copy of what it wrote. */
	carbons_send(a, msg, "received", to, n,
		     jid_has_bare(from, a->bare) ? from : NULL);
}

static const struct iq_handler carbons_handlers[] = {
	{ NS_CARBONS, "enable", IQ_SCOPE_ACCOUNT, NULL, carbons_set },
	{ NS_CARBONS, "disable", IQ_SCOPE_ACCOUNT, NULL, carbons_set },
	{ NULL, NULL, 0, NULL, NULL },
};

/* §3: the server advertises the feature. */
static const char *const carbons_features[] = { NS_CARBONS, NULL };

const struct module carbons_module = {
	.name = "carbons",
	.iq_handlers = carbons_handlers,
	.server_features = carbons_features,
	.message_sent = carbons_message_sent,
	.message_routed = carbons_routed,
};
