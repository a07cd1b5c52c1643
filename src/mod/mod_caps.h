/* What mod_caps (XEP-0115 entity capabilities) tells other modules: the
 * notification interests of a local session's client, i.e. the PEP
 * nodes whose "<node>+notify" feature its disco#info lists (XEP-0163
 * §4.2, XEP-0060 §9.2). They are known once the client's caps hash is
 * in the server-wide cache or its disco#info answer arrived (and, for a
 * hash we implement, verified). */
#ifndef ROOST_MOD_CAPS_H
#define ROOST_MOD_CAPS_H

#include <stdbool.h>

struct session;

/* A set of node names (the "+notify" features, suffix removed). */
struct caps_notify;

bool caps_notify_has(const struct caps_notify *set, const char *node);
/* Sets are shared and counted: keep one past the calls below with ref,
 * let it go with unref (NULL is fine for both). */
struct caps_notify *caps_notify_ref(const struct caps_notify *set);
void caps_notify_unref(struct caps_notify *set);

/* The session's interests, NULL while unknown (or without caps). Valid
 * until the session's next broadcast presence or its end. */
const struct caps_notify *caps_session_notify(struct session *s);

/* Whether the session asked for notifications of `node`. */
bool caps_wants_notify(struct session *s, const char *node);

/* Called when a session's interests become known or change (`before`:
 * what they were, NULL if unknown; valid during the call). The session
 * may not be available yet: this runs from the presence_broadcast hook
 * when the caps were cached, or later when the disco#info answer comes.
 * At most 4 listeners, registered from a module's init. */
typedef void caps_listener_fn(struct session *s,
			      const struct caps_notify *before);
void caps_listen(caps_listener_fn *fn);

#endif
