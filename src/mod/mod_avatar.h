/* What mod_vcard tells mod_avatar (XEP-0153, XEP-0398) about vCard
 * changes. */
#ifndef ROOST_MOD_AVATAR_H
#define ROOST_MOD_AVATAR_H

struct server;
struct vcard_photo;

/* A vCard write for owner (a local account's bare JID) whose photo hash
 * is `hash` ("" = no image) was accepted: it is queued for the store, and
 * what is read afterwards will see it. Presence from now on carries the
 * new hash; the account's available resources re-broadcast theirs when
 * it changes. hash NULL: a write failed, the hash is unknown again (it is
 * read from the store at the next presence). */
void avatar_photo_changed(struct server *srv, const char *owner,
			  const char *hash);

/* A vCard that the account's own client set is stored; `old_hash` is the
 * photo hash of the vCard it replaced. XEP-0398 "From vCard to PEP": a
 * new image is published to the account's XEP-0084 nodes. */
void avatar_vcard_stored(struct server *srv, const char *owner,
			 const char *old_hash, const struct vcard_photo *photo);

#endif
