/* The keyring row's binary form. The database is hostile input (threat
 * A1): decode checks every length against what is left, accepts exactly
 * one encoding per keyring, and never trusts a count before bounding it. */
#include "seal/seal-private.h"

#include <string.h>

#include "util/buf.h"

static const unsigned char magic[3] = { 'R', 'K', 'R' };

void seal_keyring_encode(const struct seal_keyring *kr, struct buf *out)
{
	unsigned char v = (unsigned char)kr->version;
	unsigned char flags = 0;
	uint32_t n = kr->nretired <= SEAL_MAX_RETIRED ? kr->nretired : 0;

	buf_append(out, magic, sizeof(magic));
	buf_append(out, &v, 1);
	/* No JID: the row's key names the user, and the MAC binds the JID,
	 * so a row moved to another user fails. Keeping it out means no
	 * account name other than the row owner's sits in the row. */
	buf_append(out, kr->pk, SEAL_KEY_LEN);
	seal_put_u32(out, kr->key_id);
	for (int h = 0; h < SEAL_NHASH; h++)
		if (kr->has_wrap[h])
			flags |= (unsigned char)(1u << h);
	buf_append(out, &flags, 1);
	for (int h = 0; h < SEAL_NHASH; h++)
		if (kr->has_wrap[h])
			buf_append(out, kr->wrap[h], SEAL_WRAP_LEN);
	seal_put_u32(out, n);
	for (uint32_t i = 0; i < n; i++)
		seal_put_u32(out, kr->retired_ids[i]);
	if (n > 0)
		for (int h = 0; h < SEAL_NHASH; h++)
			if (kr->has_wrap[h])
				buf_append(out, kr->retired_wrap[h],
					   SEAL_NONCE_LEN + (size_t)SEAL_KEY_LEN * n +
					   SEAL_TAG_LEN);
	for (int st = 0; st < SEAL_NSTORES; st++) {
		const struct seal_chain *c = &kr->chains[st];
		seal_put_u64(out, c->base_seq);
		buf_append(out, c->base_chain, SEAL_KEY_LEN);
		seal_put_u64(out, c->head_seq);
		buf_append(out, c->head_chain, SEAL_KEY_LEN);
		seal_put_u64(out, c->live);
		seal_put_u64(out, c->live_bytes);
	}
	buf_append(out, kr->mac, SEAL_KEY_LEN);
}

struct reader {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *take(struct reader *r, size_t n)
{
	const unsigned char *p = r->p;

	if (n > r->left)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

static int take_copy(struct reader *r, void *dst, size_t n)
{
	const unsigned char *p = take(r, n);

	if (p == NULL)
		return -1;
	memcpy(dst, p, n);
	return 0;
}

static int take_u32(struct reader *r, uint32_t *v)
{
	const unsigned char *p = take(r, 4);

	if (p == NULL)
		return -1;
	*v = seal_get32(p);
	return 0;
}

static int take_u64(struct reader *r, uint64_t *v)
{
	const unsigned char *p = take(r, 8);

	if (p == NULL)
		return -1;
	*v = seal_get64(p);
	return 0;
}

static int decode(struct reader *r, const char *jid, struct seal_keyring *kr)
{
	const unsigned char *p;
	uint32_t jlen, n;
	unsigned char flags;

	if ((p = take(r, sizeof(magic) + 1)) == NULL ||
	    memcmp(p, magic, sizeof(magic)) != 0 || p[3] != SEAL_KEYRING_VERSION)
		return -1;
	kr->version = p[3];
	jlen = jid != NULL ? (uint32_t)strnlen(jid, SEAL_JID_MAX + 1) : 0;
	if (jlen == 0 || jlen > SEAL_JID_MAX)
		return -1;
	memcpy(kr->jid, jid, jlen);
	kr->jid[jlen] = '\0';
	if (take_copy(r, kr->pk, SEAL_KEY_LEN) != 0 ||
	    take_u32(r, &kr->key_id) != 0 || take_copy(r, &flags, 1) != 0)
		return -1;
	if (flags == 0 || (flags & ~((1u << SEAL_NHASH) - 1)) != 0)
		return -1;
	for (int h = 0; h < SEAL_NHASH; h++) {
		kr->has_wrap[h] = (flags >> h) & 1;
		if (kr->has_wrap[h] && take_copy(r, kr->wrap[h], SEAL_WRAP_LEN) != 0)
			return -1;
	}
	if (take_u32(r, &n) != 0 || n > SEAL_MAX_RETIRED)
		return -1;
	kr->nretired = n;
	for (uint32_t i = 0; i < n; i++)
		if (take_u32(r, &kr->retired_ids[i]) != 0)
			return -1;
	if (n > 0)
		for (int h = 0; h < SEAL_NHASH; h++)
			if (kr->has_wrap[h] &&
			    take_copy(r, kr->retired_wrap[h],
				      SEAL_NONCE_LEN + (size_t)SEAL_KEY_LEN * n +
				      SEAL_TAG_LEN) != 0)
				return -1;
	for (int st = 0; st < SEAL_NSTORES; st++) {
		struct seal_chain *c = &kr->chains[st];
		if (take_u64(r, &c->base_seq) != 0 ||
		    take_copy(r, c->base_chain, SEAL_KEY_LEN) != 0 ||
		    take_u64(r, &c->head_seq) != 0 ||
		    take_copy(r, c->head_chain, SEAL_KEY_LEN) != 0 ||
		    take_u64(r, &c->live) != 0 ||
		    take_u64(r, &c->live_bytes) != 0)
			return -1;
	}
	if (take_copy(r, kr->mac, SEAL_KEY_LEN) != 0)
		return -1;
	/* Trailing bytes would make two encodings of one keyring. Values
	 * (base > head, say) are the row MAC's and the walk's business. */
	if (r->left != 0)
		return -1;
	return 0;
}

int seal_keyring_decode(const void *data, size_t len, const char *jid,
			struct seal_keyring *out)
{
	struct reader r = { data, len };

	memset(out, 0, sizeof(*out));
	if (data == NULL || decode(&r, jid, out) != 0) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	return 0;
}
