/* The seal key file, the keys derived from it, and the credentials MAC. */
#include "seal/seal-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "util/xalloc.h"

int seal_key_load(const char *path, unsigned char key[SEAL_KEY_LEN],
		  char **error_r)
{
	unsigned char extra;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, ret = -1;

	/* O_NOFOLLOW: the checks below must be about the file we read. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		*error_r = xasprintf("%s: accessible by group or others (mode %03o); "
				     "chmod 0400 it", path,
				     (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size != SEAL_KEY_LEN) {
		*error_r = xasprintf("%s: not a seal key (%lld bytes, want %d)",
				     path, (long long)st.st_size, SEAL_KEY_LEN);
		goto out;
	}
	while (got < SEAL_KEY_LEN) {
		n = read(fd, key + got, SEAL_KEY_LEN - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	/* The size may have changed since fstat: demand EOF right here. */
	if (got != SEAL_KEY_LEN || read(fd, &extra, 1) != 0) {
		*error_r = xasprintf("%s: not a seal key (short or growing)", path);
		OPENSSL_cleanse(key, SEAL_KEY_LEN);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

int seal_keys_derive(const unsigned char seal_key[SEAL_KEY_LEN],
		     struct seal_keys *out)
{
	static const struct {
		const char *info;
		size_t off;
	} kinds[] = {
		{ "roost/v1/chain", offsetof(struct seal_keys, k_chain) },
		{ "roost/v1/tomb", offsetof(struct seal_keys, k_tomb) },
		{ "roost/v1/row", offsetof(struct seal_keys, k_row) },
		{ "roost/v1/cred", offsetof(struct seal_keys, k_cred) },
		{ "roost/v1/pepper", offsetof(struct seal_keys, k_pepper) },
	};

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		unsigned char *k = (unsigned char *)out + kinds[i].off;
		if (seal_hkdf(NULL, 0, seal_key, SEAL_KEY_LEN, kinds[i].info,
			      strlen(kinds[i].info), k) != 0)
			goto fail;
	}
	/* Same order as enum seal_mac_kind. */
	out->mac_tmpl[SEAL_MAC_CHAIN] = seal_hmac_key_new(out->k_chain);
	out->mac_tmpl[SEAL_MAC_TOMB] = seal_hmac_key_new(out->k_tomb);
	out->mac_tmpl[SEAL_MAC_ROW] = seal_hmac_key_new(out->k_row);
	out->mac_tmpl[SEAL_MAC_CRED] = seal_hmac_key_new(out->k_cred);
	for (size_t i = 0; i < 4; i++)
		if (out->mac_tmpl[i] == NULL)
			goto fail;
	return 0;
fail:
	seal_keys_clear(out);
	return -1;
}

void seal_keys_clear(struct seal_keys *keys)
{
	for (size_t i = 0; i < 4; i++)
		seal_hmac_key_free(keys->mac_tmpl[i]);
	OPENSSL_cleanse(keys, sizeof(*keys));
}

int seal_cred_mac(const struct seal_keys *keys, const char *jid,
		  enum scram_hash h, const struct scram_creds *creds,
		  unsigned char out[SEAL_KEY_LEN])
{
	struct seal_mac m;
	size_t hlen = seal_hash_len(h);

	if (seal_jid_ok(jid) != 0 || creds->salt_len > sizeof(creds->salt))
		return -1;
	if (seal_mac_begin(&m, keys, SEAL_MAC_CRED, "roost/v1/cred") != 0)
		return -1;
	seal_mac_lp_str(&m, jid);
	seal_mac_lp_str(&m, seal_hash_name(h));
	seal_mac_lp(&m, creds->salt, creds->salt_len);
	seal_mac_u64(&m, creds->iterations);
	seal_mac_lp(&m, creds->stored_key, hlen);
	seal_mac_lp(&m, creds->server_key, hlen);
	return seal_mac_end(&m, out);
}

int seal_cred_check(const struct seal_keys *keys, const char *jid,
		    enum scram_hash h, const struct scram_creds *creds,
		    const unsigned char mac[SEAL_KEY_LEN])
{
	unsigned char want[SEAL_KEY_LEN];
	int ret = -1;

	if (seal_cred_mac(keys, jid, h, creds, want) == 0 &&
	    CRYPTO_memcmp(want, mac, SEAL_KEY_LEN) == 0)
		ret = 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ret;
}
