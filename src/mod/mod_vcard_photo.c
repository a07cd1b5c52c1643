/* The <PHOTO/> of a vCard (XEP-0153 §3.1, §5): its image, the SHA-1 that
 * names it in presence (XEP-0153) and in PEP item ids (XEP-0084), and its
 * content type. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mod/mod_vcard.h"
#include "util/base64.h"
#include "util/xalloc.h"
#include "xml/xml.h"

static const char hex[] = "0123456789abcdef";

/* XEP-0153 §5: "any whitespace characters ... MUST be ignored"; XEP-0084
 * §4.1: line feeds "MUST be accepted". util/base64 is strict (SASL needs
 * it), so whitespace goes first. */
static char *strip_space(const char *s)
{
	size_t n = strlen(s), j = 0;
	char *out = xmalloc(n + 1);

	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			out[j++] = s[i];
	out[j] = '\0';
	return out;
}

/* XEP-0153 §6: the data decides, not <TYPE/>. The formats clients use
 * for avatars; anything else keeps the type it was given. */
static const char *sniff_type(const unsigned char *d, size_t n)
{
	if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0)
		return "image/png";
	if (n >= 3 && memcmp(d, "\xff\xd8\xff", 3) == 0)
		return "image/jpeg";
	if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
		return "image/gif";
	if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
		return "image/webp";
	return NULL;
}

void vcard_photo_free(struct vcard_photo *photo)
{
	free(photo->type);
	free(photo->b64);
	memset(photo, 0, sizeof(*photo));
}

int vcard_photo_from_b64(const char *b64, const char *type,
			 struct vcard_photo *photo)
{
	unsigned char md[20], *data;
	const char *sniffed;
	char *clean = strip_space(b64);
	size_t len;

	memset(photo, 0, sizeof(*photo));
	if (clean[0] == '\0' ||
	    base64_decode(clean, strlen(clean), &data, &len) != 0) {
		free(clean);
		return -1;
	}
	if (len == 0) {
		free(data);
		free(clean);
		return -1;
	}
	EVP_Digest(data, len, md, NULL, EVP_sha1(), NULL);
	for (size_t i = 0; i < sizeof(md); i++) {
		photo->hash[2 * i] = hex[md[i] >> 4];
		photo->hash[2 * i + 1] = hex[md[i] & 15];
	}
	photo->hash[40] = '\0';
	sniffed = sniff_type(data, len);
	if (sniffed != NULL)
		photo->type = xstrdup(sniffed);
	else if (type != NULL && type[0] != '\0')
		photo->type = xstrdup(type);
	photo->b64 = clean;
	photo->bytes = len;
	free(data);
	return 0;
}

void vcard_photo_read(const struct xml_node *vcard, struct vcard_photo *photo)
{
	const struct xml_node *p = xml_child(vcard, "PHOTO", NS_VCARD);
	const char *binval;

	memset(photo, 0, sizeof(*photo));
	if (p == NULL)
		return;
	binval = xml_child_text(p, "BINVAL", NS_VCARD);
	if (binval != NULL)
		(void)vcard_photo_from_b64(binval,
					   xml_child_text(p, "TYPE", NS_VCARD),
					   photo);
}

void vcard_photo_write(struct xml_node *vcard, const struct vcard_photo *photo)
{
	struct xml_node *p;

	while ((p = xml_child(vcard, "PHOTO", NS_VCARD)) != NULL)
		xml_remove(p);
	if (photo->hash[0] == '\0')
		return;
	p = xml_add_child(vcard, "PHOTO", NS_VCARD);
	if (photo->type != NULL)
		xml_add_text_child(p, "TYPE", photo->type);
	xml_add_text_child(p, "BINVAL", photo->b64);
}
