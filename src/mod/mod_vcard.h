/* XEP-0054 vCards as other modules use them: mod_avatar (XEP-0153 photo
 * hashes in presence, XEP-0398 conversion to and from XEP-0084). The
 * vCards themselves are mod_vcard.c's; their PHOTO is read and written by
 * mod_vcard_photo.c. */
#ifndef ROOST_MOD_VCARD_H
#define ROOST_MOD_VCARD_H

#include <stddef.h>

struct server;
struct xml_node;

#define NS_VCARD "vcard-temp"

/* The image of a vCard's <PHOTO/> (XEP-0153 §3.1). */
struct vcard_photo {
	char hash[41];   /* lowercase hex SHA-1 of the image; "" = no image */
	char *type;      /* <TYPE/> or the sniffed content type; NULL if none */
	char *b64;       /* the image in base64, whitespace removed; NULL if none */
	size_t bytes;    /* the image's size */
};

/* Reads the first <PHOTO/> of `vcard` into *photo (all xmalloc'd). A
 * PHOTO without a BINVAL that decodes (an EXTVAL, a broken encoding)
 * counts as no image: hash "". */
void vcard_photo_read(const struct xml_node *vcard, struct vcard_photo *photo);
/* Fills *photo from base64 image data (whitespace allowed, as XEP-0084
 * and XEP-0153 say) and an optional content type. Returns 0, or -1 when
 * the data does not decode (then *photo has no image). */
int vcard_photo_from_b64(const char *b64, const char *type,
			 struct vcard_photo *photo);
/* Replaces every <PHOTO/> of `vcard` with one holding photo's image
 * (none when photo has no image). */
void vcard_photo_write(struct xml_node *vcard, const struct vcard_photo *photo);
void vcard_photo_free(struct vcard_photo *photo);

/* The photo hash of owner's (a local account's bare JID) stored vCard:
 * result 0 and hash ("" = no image), or -1 on a store error. Ordered
 * after every vCard change requested before. cb runs later, except when
 * the account has too many vCard operations waiting: then at once, with
 * -1. */
typedef void vcard_hash_cb(void *ctx, int result, const char *hash);
void vcard_get_hash(struct server *srv, const char *owner, vcard_hash_cb *cb,
		    void *ctx);

/* XEP-0398 "From PEP to vCard": makes `photo` (copied; no image = remove
 * the PHOTO) the image of owner's vCard, keeping the rest of it. Nothing
 * happens when the vCard already has that image. */
void vcard_set_photo(struct server *srv, const char *owner,
		     const struct vcard_photo *photo);

#endif
