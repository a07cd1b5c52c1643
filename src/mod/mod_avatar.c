/* XEP-0153 vCard-based avatars, kept by the server (XEP-0398 §4), and
 * XEP-0398 conversion between the vCard's PHOTO and XEP-0084 avatars in
 * PEP.
 *
 * Presence: every available presence of a local user carries
 * <x xmlns='vcard-temp:x:update'><photo>SHA-1</photo></x> for the image
 * of the stored vCard, whatever the client put there, except an empty
 * <photo/>, which XEP-0398 §4 says to leave alone. Broadcast presence gets
 * it in the presence_broadcast hook, directed presence (XEP-0398: "MUST
 * also be injected into directed presences such as MUC joins") in the
 * routing filter. The hash is kept per loaded account; it is read from
 * the vCard store when a resource binds (before the client may send
 * presence), and when it changes the account's available resources
 * re-broadcast their presence so that contacts learn the new hash.
 *
 * Conversion: a new image in a vCard set by the user is published to
 * urn:xmpp:avatar:data and urn:xmpp:avatar:metadata (§3.2); a publish to
 * the metadata node, by a client or by us, becomes the vCard's PHOTO
 * (§3.1) if the data node is open (§6: the vCard is public). Each
 * direction does nothing when the other side already has that image,
 * which is what stops the two from feeding each other. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/account.h"
#include "core/jid.h"
#include "core/module.h"
#include "core/presence.h"
#include "core/session.h"
#include "mod/mod_avatar.h"
#include "mod/mod_pep.h"
#include "mod/mod_vcard.h"
#include "server.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_UPDATE "vcard-temp:x:update"
#define NS_AVATAR_DATA "urn:xmpp:avatar:data"
#define NS_AVATAR_META "urn:xmpp:avatar:metadata"
#define NS_CONVERSION "urn:xmpp:pep-vcard-conversion:0"

extern const struct module avatar_module;

/* Per loaded account: the photo hash of its vCard, once known. */
struct av_account {
	char hash[41];   /* "" = no image */
	bool known;
	bool loading;
};

static struct av_account *av_ctx(struct account *a)
{
	void **p = &a->mod_ctx[modules_index(a->srv->modules, &avatar_module)];

	if (*p == NULL)
		*p = xcalloc(1, sizeof(struct av_account));
	return *p;
}

/* ---- the hash in presence ---- */

/* A session's slot marks where the <photo/> of its stored presence came
 * from. client_empty_mark: the client's own empty <photo/>, which §4
 * leaves alone, so it is never refreshed either. NULL: the hash is ours
 * (or the client's and right), refreshed when the image changes. Our
 * empty <photo/> (no image) looks the same as the client's once stored,
 * hence the mark. refresh_mark: refresh_presences is re-sending a
 * presence it built, which the hook must not take for the client's. */
static char client_empty_mark, refresh_mark;

static void **session_mark(struct session *s)
{
	return &s->mod_ctx[modules_index(s->srv->modules, &avatar_module)];
}

/* The text of pres's <photo/>: "" for an empty one, NULL if there is no
 * <x/> or no <photo/>. */
static const char *photo_text(const struct xml_node *pres)
{
	const struct xml_node *x = xml_child(pres, "x", NS_UPDATE);
	const struct xml_node *photo;

	photo = x != NULL ? xml_child(x, "photo", NS_UPDATE) : NULL;
	return photo != NULL ? xml_text(photo) : NULL;
}

/* Makes pres carry exactly `hash` (an empty <photo/> for ""). */
static void put_hash(struct xml_node *pres, const char *hash)
{
	struct xml_node *x = xml_child(pres, "x", NS_UPDATE);
	struct xml_node *photo;

	if (x == NULL)
		x = xml_add_child(pres, "x", NS_UPDATE);
	photo = xml_child(x, "photo", NS_UPDATE);
	if (photo == NULL)
		photo = xml_add_child(x, "photo", NS_UPDATE);
	else
		xml_remove_children(photo);
	if (hash[0] != '\0')
		xml_add_text(photo, hash, strlen(hash));
}

/* Puts `hash` into a client's available presence as XEP-0398 §4 says. No
 * <x/>, or an empty one: "MUST be overwritten". An empty <photo/> says
 * the client has no image to show: left alone. A hash other than the
 * vCard's is stale ("MAY be overwritten"): contacts would fetch a vCard
 * that does not match it. XEP-0153 §3.1 allows either case of hex
 * digits. */
static void inject(struct xml_node *pres, const char *hash)
{
	const char *have = photo_text(pres);

	if (have != NULL && (have[0] == '\0' || strcasecmp(have, hash) == 0))
		return;
	put_hash(pres, hash);
}

static bool is_available(const struct xml_node *pres)
{
	return xml_is(pres, "presence", XML_NS_CLIENT) &&
	       xml_attr(pres, "type") == NULL;
}

/* Whether contacts must see s's presence again for `hash`: they see a
 * wrong image, or none where there is one. A presence without a hash
 * while there is no image misleads nobody: sending it again only to add
 * an empty <photo/> would double presence traffic. */
static bool worth_resending(struct session *s, const char *hash)
{
	const char *have = photo_text(s->presence);

	if (*session_mark(s) == &client_empty_mark)
		return false;
	if (have == NULL)
		return hash[0] != '\0';
	return strcasecmp(have, hash) != 0;
}

/* Sends again the presence of each available resource of the account
 * whose presence lacks the current hash (see worth_resending). Sending
 * may end a session (an overflowing output queue), and with the last
 * one the account, so the resources are collected first and looked up
 * again one by one, and the hash is copied. */
static void refresh_presences(struct account *a)
{
	struct server *srv = a->srv;
	char **full = NULL, hash[41];
	size_t n = 0, cap = 0;

	memcpy(hash, av_ctx(a)->hash, sizeof(hash));

	account_foreach_session(a, s) {
		if (!s->available || s->presence == NULL)
			continue;
		full = xgrow(full, &cap, n + 1, sizeof(*full));
		full[n++] = xstrdup(s->full);
	}
	for (size_t i = 0; i < n; i++) {
		struct session *s = session_find(srv, full[i]);
		struct xml_node *pres;

		free(full[i]);
		if (s == NULL || !s->available || s->presence == NULL ||
		    !worth_resending(s, hash))
			continue;
		pres = xml_copy(s->presence);
		put_hash(pres, hash);
		*session_mark(s) = &refresh_mark;
		presence_from_session(s, pres);
	}
	free(full);
}

struct hash_load {
	struct server *srv;
	char *owner;
};

static void hash_loaded(void *ctx, int result, const char *hash)
{
	struct hash_load *l = ctx;
	struct account *a = hashmap_get(l->srv->accounts, l->owner);

	if (a != NULL) {
		struct av_account *av = av_ctx(a);

		av->loading = false;
		/* A write accepted meanwhile announced a newer hash. */
		if (result == 0 && !av->known) {
			snprintf(av->hash, sizeof(av->hash), "%s", hash);
			av->known = true;
			refresh_presences(a);
		}
	}
	free(l->owner);
	free(l);
}

static void load_hash(struct account *a)
{
	struct av_account *av = av_ctx(a);
	struct hash_load *l;

	if (av->known || av->loading)
		return;
	av->loading = true;
	l = xcalloc(1, sizeof(*l));
	l->srv = a->srv;
	l->owner = xstrdup(a->bare);
	vcard_get_hash(a->srv, a->bare, hash_loaded, l);
}

/* Reading starts at bind, so the hash is normally known by the time the
 * client, which must wait for the bind result, sends its first presence.
 * Should the store be slower than that (a busy worker), the presence
 * goes out without the hash (the hook cannot wait) and
 * refresh_presences sends it again once the hash is known. */
static void avatar_session_bound(struct session *s)
{
	load_hash(s->account);
}

/* A hash not known yet is still being read (since bind), or was
 * forgotten after a failed vCard write or read: then it is read now. */
static void avatar_presence_broadcast(struct session *s, struct xml_node *pres)
{
	struct av_account *av = av_ctx(s->account);
	void **mark = session_mark(s);
	const char *have;

	if (*mark == &refresh_mark) {
		*mark = NULL;
	} else {
		have = photo_text(pres);
		*mark = have != NULL && have[0] == '\0' ? &client_empty_mark
						        : NULL;
	}
	if (!av->known) {
		load_hash(s->account);
		return;
	}
	inject(pres, av->hash);
}

/* Directed available presence from a local session. Broadcast copies
 * pass here too, already holding the hash (inject changes nothing). */
static bool avatar_route_filter(struct server *srv, struct xml_node *stanza,
				const struct jid *from, const struct jid *to)
{
	struct session *s;
	struct av_account *av;

	(void)to;
	if (!is_available(stanza) || from->resource == NULL ||
	    from->local == NULL)
		return false;
	s = session_find(srv, xml_attr(stanza, "from"));
	if (s == NULL || s->account == NULL)
		return false;
	av = av_ctx(s->account);
	if (av->known)
		inject(stanza, av->hash);
	else
		load_hash(s->account);
	return false;
}

void avatar_photo_changed(struct server *srv, const char *owner,
			  const char *hash)
{
	struct account *a = hashmap_get(srv->accounts, owner);
	struct av_account *av;

	if (a == NULL)
		return;
	av = av_ctx(a);
	if (hash == NULL) {
		av->known = false;
		return;
	}
	if (av->known && strcmp(av->hash, hash) == 0)
		return;
	snprintf(av->hash, sizeof(av->hash), "%s", hash);
	av->known = true;
	refresh_presences(a);
}

/* ---- XEP-0398 §3.2: vCard to PEP ---- */

/* vCards are world-readable (XEP-0054 §6), so the avatar nodes we
 * create are open, as Prosody makes them; one item each is all
 * XEP-0084 needs. */
static const struct pep_publish_options open_options = {
	.access_model = "open",
	.max_items = 1,
	.persist_items = 1,
};

/* Our own metadata publishes come back through the PEP listener. Taken
 * for a client's, a late one would copy an image the vCard no longer has
 * back into it (the vCard changed again meanwhile). So each publish of
 * ours is counted under "owner\nimage hash" until its echo is seen, or
 * until it fails (then there is no echo). */
static struct hashmap *echoes(struct server *srv)
{
	void **slot = &srv->mod_ctx[modules_index(srv->modules, &avatar_module)];

	if (*slot == NULL)
		*slot = hashmap_new();
	return *slot;
}

static void echo_add(struct server *srv, const char *owner, const char *hash,
		     int delta)
{
	char *key = xasprintf("%s\n%s", owner, hash);
	uintptr_t n = (uintptr_t)hashmap_get(echoes(srv), key) + delta;

	if (n == 0)
		hashmap_remove(echoes(srv), key);
	else
		hashmap_put(echoes(srv), key, (void *)n);
	free(key);
}

/* True (and one echo fewer) if owner's publish of `hash` was ours. */
static bool echo_take(struct server *srv, const char *owner, const char *hash)
{
	char *key = xasprintf("%s\n%s", owner, hash);
	bool ours = hashmap_get(echoes(srv), key) != NULL;

	free(key);
	if (ours)
		echo_add(srv, owner, hash, -1);
	return ours;
}

struct to_pep {
	struct server *srv;
	char *owner;
	struct vcard_photo photo;
	bool meta;       /* the data item is published; now the metadata */
	bool retried;    /* without options: the node has its own */
};

static void to_pep_free(struct to_pep *t)
{
	free(t->owner);
	vcard_photo_free(&t->photo);
	free(t);
}

static void to_pep_step(struct to_pep *t, const struct pep_publish_options *o);

static void to_pep_done(void *ctx, int result)
{
	struct to_pep *t = ctx;

	if (t->meta && result != 0)
		echo_add(t->srv, t->owner, t->photo.hash, -1);
	if (result == 1 && !t->retried) {
		/* The node exists with another configuration (the user
		 * chose, e.g., presence access): publish under it. */
		t->retried = true;
		to_pep_step(t, NULL);
		return;
	}
	if (result != 0) {
		log_warn("avatar: %s: publishing the vCard photo to %s failed",
			 t->owner, t->meta ? NS_AVATAR_META : NS_AVATAR_DATA);
		to_pep_free(t);
		return;
	}
	if (!t->meta && t->photo.hash[0] != '\0') {
		t->meta = true;
		t->retried = false;
		to_pep_step(t, &open_options);
		return;
	}
	to_pep_free(t);
}

static void to_pep_step(struct to_pep *t, const struct pep_publish_options *o)
{
	struct xml_node *payload;
	const char *node, *id;

	if (!t->meta) {
		/* §3.2: the data first, under the image's SHA-1. */
		payload = xml_new("data", NS_AVATAR_DATA);
		xml_add_text(payload, t->photo.b64, strlen(t->photo.b64));
		node = NS_AVATAR_DATA;
		id = t->photo.hash;
	} else {
		payload = xml_new("metadata", NS_AVATAR_META);
		node = NS_AVATAR_META;
		id = NULL;
		if (t->photo.hash[0] != '\0') {
			struct xml_node *info = xml_add_child(payload, "info", NULL);
			char bytes[24];

			snprintf(bytes, sizeof(bytes), "%zu", t->photo.bytes);
			xml_set_attr(info, "bytes", bytes);
			xml_set_attr(info, "id", t->photo.hash);
			/* XEP-0084 requires a type; PNG is the one every
			 * client must support. */
			xml_set_attr(info, "type", t->photo.type ? t->photo.type
								 : "image/png");
			id = t->photo.hash;
		}
	}
	if (t->meta)
		echo_add(t->srv, t->owner, t->photo.hash, 1);
	pep_publish(t->srv, t->owner, node, id, payload, o, to_pep_done, t);
	xml_free(payload);
}

void avatar_vcard_stored(struct server *srv, const char *owner,
			 const char *old_hash, const struct vcard_photo *photo)
{
	struct to_pep *t;

	if (strcmp(old_hash, photo->hash) == 0)
		return;
	t = xcalloc(1, sizeof(*t));
	t->srv = srv;
	t->owner = xstrdup(owner);
	memcpy(t->photo.hash, photo->hash, sizeof(t->photo.hash));
	t->photo.type = photo->type ? xstrdup(photo->type) : NULL;
	t->photo.b64 = photo->b64 ? xstrdup(photo->b64) : NULL;
	t->photo.bytes = photo->bytes;
	/* A vCard without an image: XEP-0084 §3.5 "disabling" is an empty
	 * <metadata/>. */
	t->meta = photo->hash[0] == '\0';
	to_pep_step(t, &open_options);
}

/* ---- XEP-0398 §3.1: PEP to vCard ---- */

struct from_pep {
	struct server *srv;
	char *owner;
	char *id;
	char *type;
};

static void from_pep_free(struct from_pep *f)
{
	free(f->owner);
	free(f->id);
	free(f->type);
	free(f);
}

static void data_got(void *ctx, int result, struct xml_node *const *items,
		     size_t n)
{
	struct from_pep *f = ctx;
	const struct xml_node *data;
	struct vcard_photo photo;

	data = result > 0 ? xml_child(items[n - 1], "data", NS_AVATAR_DATA)
			  : NULL;
	if (data == NULL) {
		log_info("avatar: %s: no avatar data item %s to copy to the "
			 "vCard", f->owner, f->id);
		goto out;
	}
	if (vcard_photo_from_b64(xml_text(data), f->type, &photo) != 0) {
		log_info("avatar: %s: avatar data %s is not base64", f->owner,
			 f->id);
		goto out;
	}
	/* §3.1: "SHOULD verify that the SHA-1 hash of the image matches
	 * the id": contacts would cache it under the wrong name. */
	if (strcasecmp(photo.hash, f->id) != 0)
		log_info("avatar: %s: avatar data %s does not match its id",
			 f->owner, f->id);
	else
		vcard_set_photo(f->srv, f->owner, &photo);
	vcard_photo_free(&photo);
out:
	from_pep_free(f);
}

/* XEP-0398 §6: a server that copies on publication "SHOULD perform
 * conversion only if the access model of the 'urn:xmpp:avatar:data' node
 * has been set to 'open'". The vCard is readable by anyone (XEP-0054
 * §6): copying an avatar meant for contacts would publish it to the
 * world. The vCard then keeps the image it had. */
static void data_access(void *ctx, const char *access_model)
{
	struct from_pep *f = ctx;

	if (access_model == NULL || strcmp(access_model, "open") != 0) {
		log_info("avatar: %s: avatar data node is %s: avatar %s not "
			 "copied to the vCard", f->owner,
			 access_model != NULL ? access_model : "missing", f->id);
		from_pep_free(f);
		return;
	}
	pep_items(f->srv, f->owner, NS_AVATAR_DATA, f->id, data_got, f);
}

/* The image a metadata item names: its first <info/> with an id and
 * without a url (§3.1). NULL with *empty_r true for an empty <metadata/>
 * (XEP-0084 §3.5: no avatar); NULL and false when it names nothing we
 * can copy (only URLs, or no metadata at all). */
static const struct xml_node *meta_info(const struct xml_node *item,
					bool *empty_r)
{
	const struct xml_node *meta = xml_child(item, "metadata", NS_AVATAR_META);
	const struct xml_node *info;

	*empty_r = meta != NULL && xml_first_element(meta) == NULL;
	if (meta == NULL)
		return NULL;
	for (info = xml_child(meta, "info", NS_AVATAR_META); info != NULL;
	     info = xml_next(info, "info", NS_AVATAR_META))
		if (xml_attr(info, "url") == NULL && xml_attr(info, "id") != NULL &&
		    xml_attr(info, "id")[0] != '\0')
			return info;
	return NULL;
}

/* The metadata item now current (NULL: none) becomes the vCard's image. */
static void meta_current(struct server *srv, const char *owner,
			 const struct xml_node *item)
{
	bool empty = true;
	const struct xml_node *info = item != NULL ? meta_info(item, &empty) : NULL;
	const char *id;
	struct account *a;
	struct from_pep *f;

	if (info == NULL) {
		struct vcard_photo none;

		if (!empty)
			return;
		memset(&none, 0, sizeof(none));
		vcard_set_photo(srv, owner, &none);
		return;
	}
	id = xml_attr(info, "id");
	/* The vCard has it already. */
	a = hashmap_get(srv->accounts, owner);
	if (a != NULL && av_ctx(a)->known && strcasecmp(av_ctx(a)->hash, id) == 0)
		return;
	f = xcalloc(1, sizeof(*f));
	f->srv = srv;
	f->owner = xstrdup(owner);
	f->id = xstrdup(id);
	if (xml_attr(info, "type") != NULL)
		f->type = xstrdup(xml_attr(info, "type"));
	pep_node_access(srv, owner, NS_AVATAR_DATA, data_access, f);
}

struct meta_fetch {
	struct server *srv;
	char *owner;
};

static void meta_got(void *ctx, int result, struct xml_node *const *items,
		     size_t n)
{
	struct meta_fetch *m = ctx;

	if (result >= 0)
		meta_current(m->srv, m->owner, n > 0 ? items[n - 1] : NULL);
	free(m->owner);
	free(m);
}

static void on_metadata(struct server *srv, const char *owner,
			const char *node, const struct xml_node *item)
{
	struct meta_fetch *m;

	(void)node;
	if (item != NULL) {
		bool empty;
		const struct xml_node *info = meta_info(item, &empty);

		if (info == NULL && !empty)
			return;
		if (echo_take(srv, owner, info ? xml_attr(info, "id") : ""))
			return;
		meta_current(srv, owner, item);
		return;
	}
	/* A retraction or the node's deletion: what is left decides. */
	m = xcalloc(1, sizeof(*m));
	m->srv = srv;
	m->owner = xstrdup(owner);
	pep_items(srv, owner, NS_AVATAR_META, NULL, meta_got, m);
}

/* ---- module ---- */

static int avatar_init(struct server *srv)
{
	(void)srv;
	pep_listen(NS_AVATAR_META, on_metadata);
	return 0;
}

/* After the store closed; a publish that never reported back leaves
 * its count (nothing to free in it). */
static void avatar_deinit(struct server *srv)
{
	void **slot;

	if (srv->modules == NULL)
		return;
	slot = &srv->mod_ctx[modules_index(srv->modules, &avatar_module)];
	hashmap_free(*slot);
	*slot = NULL;
}

static void avatar_account_free(struct account *a)
{
	void **p = &a->mod_ctx[modules_index(a->srv->modules, &avatar_module)];

	free(*p);
	*p = NULL;
}

/* XEP-0398 §2: on the account. */
static const char *const avatar_account_features[] = { NS_CONVERSION, NULL };

const struct module avatar_module = {
	.name = "avatar",
	.init = avatar_init,
	.deinit = avatar_deinit,
	.account_features = avatar_account_features,
	.session_bound = avatar_session_bound,
	.presence_broadcast = avatar_presence_broadcast,
	.route_filter = avatar_route_filter,
	.account_free = avatar_account_free,
};
