/* Private to mod_mam.c (stanza-ids, archiving, the offline catch-up)
 * and mod_mam_query.c (queries, metadata, preferences): XEP-0313 message
 * archive management. Not for other modules: they see the archive through
 * store.h and account->mam_catchup. */
#ifndef ROOST_MOD_MOD_MAM_H
#define ROOST_MOD_MOD_MAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct account;
struct catchup_batch;
struct catchup_token;
struct iq_request;
struct module;
struct server;
struct session;
struct xml_node;

#define NS_MAM "urn:xmpp:mam:2"
#define NS_MAM_EXT "urn:xmpp:mam:2#extended"
#define NS_SID "urn:xmpp:sid:0"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_RSM "http://jabber.org/protocol/rsm"
#define NS_XDATA "jabber:x:data"
#define NS_HINTS "urn:xmpp:hints"
#define NS_XDATA_VALIDATE "http://jabber.org/protocol/xdata-validate"

extern const struct module mam_module;

/* A session's state (its mod_ctx slot). */
struct mam_session {
	struct session *s;
	size_t notified_withheld;   /* the count the last notice named */
	struct catchup_batch *batches; /* pages not yet drained, oldest first */
	uint64_t next_batch;
	struct catchup_token *tokens;
};

/* ---- mod_mam.c ---- */

bool mam_enabled(const struct server *srv);
/* "roster" | "always" | "never" (anything else: roster) and back. */
enum store_archive_mode mam_mode_of(const char *s);
const char *mam_mode_name(enum store_archive_mode m);
/* Made at first use. */
struct mam_session *mam_session_ctx(struct session *s);
/* Every deposit waiting for its batch goes to the store now: call before
 * any request that reads the archive (store requests run in order). */
void mam_flush_before_read(struct server *srv);
/* Retention, at most once a day per loaded account. */
void mam_maybe_expire(struct account *a);
/* Remembers the stanza-ids of a page sent to a session catching up
 * before its initial presence; once the client has it for certain, the
 * offline records that carry them are removed as delivered. */
void mam_catchup_page(struct session *s, const char *const *ids, size_t n);

/* ---- mod_mam_query.c: the IQ handlers ---- */

void mam_form_get(const struct iq_request *req);
void mam_query_set(const struct iq_request *req);
void mam_metadata_get(const struct iq_request *req);
void mam_prefs_get(const struct iq_request *req);
void mam_prefs_set(const struct iq_request *req);

#endif
