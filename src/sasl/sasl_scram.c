#include "sasl/scram.h"
#include "sasl/scram-private.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/buf.h"
#include "util/xalloc.h"

#define SCRAM_NONCE_BYTES 18 /* 144 bits; 24 base64 characters, no '=' */
/* More attributes than any client sends (client-first has 4 plus its
 * extensions); beyond that the message is malformed. */
#define SCRAM_MAX_FIELDS 32

enum scram_state {
	SCRAM_ST_CLIENT_FIRST, /* waiting for client-first-message */
	SCRAM_ST_SERVER_FIRST, /* the caller looks the user up */
	SCRAM_ST_CLIENT_FINAL, /* waiting for client-final-message */
	SCRAM_ST_DONE,
	SCRAM_ST_FAILED,
};

struct scram_server {
	enum scram_hash hash;
	bool plus, plus_offered;
	enum scram_state state;
	/* The gs2 header exactly as the client sent it: c= must carry these
	 * very bytes, not a re-encoding of what we parsed. */
	char *gs2_header;
	size_t gs2_len;
	const char *cb_type; /* static string or NULL */
	char *authcid, *authzid;
	char *client_first_bare;
	size_t client_first_bare_len;
	char *nonce; /* the client's, then client's + server's */
	char *server_first;
	size_t server_first_len;
	char *server_final;
	size_t server_final_len;
	struct scram_creds creds;
	/* No such user: the exchange runs to the end on fake credentials
	 * and then fails, so that timing and messages do not tell. */
	bool unknown_user;
};

struct field {
	const char *p;
	size_t len;
};

static const char *const cb_types[] = { "tls-unique", "tls-exporter" };

size_t scram_hash_len(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? 32 : 20;
}

const char *scram_hash_name(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? "SHA-256" : "SHA-1";
}

static const EVP_MD *scram_md(enum scram_hash h)
{
	return h == SCRAM_SHA256 ? EVP_sha256() : EVP_sha1();
}

static int hmac(enum scram_hash h, const unsigned char *key, size_t key_len,
		const void *data, size_t len, unsigned char *out)
{
	unsigned int n;

	if (HMAC(scram_md(h), key, (int)key_len, data, len, out, &n) == NULL)
		return -1;
	return 0;
}

static int digest(enum scram_hash h, const void *data, size_t len,
		  unsigned char *out)
{
	return EVP_Digest(data, len, out, NULL, scram_md(h), NULL) == 1 ? 0
									: -1;
}

int scram_derive(enum scram_hash h, const char *password,
		 const unsigned char *salt, size_t salt_len, unsigned iterations,
		 struct scram_creds *out, unsigned char *client_key_r)
{
	unsigned char salted[SCRAM_MAX_HASH], client_key[SCRAM_MAX_HASH];
	unsigned char salt_copy[sizeof(out->salt)];
	size_t hlen = scram_hash_len(h), plen = strlen(password);
	int ret = -1;

	if (salt_len == 0 || salt_len > sizeof(out->salt) || iterations == 0 ||
	    iterations > INT_MAX || plen > INT_MAX)
		return -1;
	/* The salt may live in *out already (re-deriving from stored
	 * credentials). */
	memcpy(salt_copy, salt, salt_len);
	memset(out, 0, sizeof(*out));
	if (PKCS5_PBKDF2_HMAC(password, (int)plen, salt_copy, (int)salt_len,
			      (int)iterations, scram_md(h), (int)hlen,
			      salted) != 1)
		goto out;
	if (hmac(h, salted, hlen, "Client Key", 10, client_key) < 0 ||
	    digest(h, client_key, hlen, out->stored_key) < 0 ||
	    hmac(h, salted, hlen, "Server Key", 10, out->server_key) < 0)
		goto out;
	memcpy(out->salt, salt_copy, salt_len);
	out->salt_len = salt_len;
	out->iterations = iterations;
	if (client_key_r != NULL)
		memcpy(client_key_r, client_key, hlen);
	ret = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (ret < 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int scram_make_creds(enum scram_hash h, const char *password,
		     struct scram_creds *out)
{
	unsigned char salt[SCRAM_SALT_LEN];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	return scram_derive(h, password, salt, sizeof(salt),
			    SCRAM_DEFAULT_ITERATIONS, out, NULL);
}

struct scram_server *scram_server_new(enum scram_hash h, bool plus,
				      bool plus_offered)
{
	struct scram_server *s = xcalloc(1, sizeof(*s));

	s->hash = h;
	s->plus = plus;
	s->plus_offered = plus_offered;
	s->state = SCRAM_ST_CLIENT_FIRST;
	return s;
}

static void free_str(char *p)
{
	if (p != NULL)
		xfree_secret(p, strlen(p));
}

void scram_server_free(struct scram_server *s)
{
	if (s == NULL)
		return;
	/* Nothing here is a password, but the transcript and the stored
	 * key are worth not leaving around in freed memory. */
	xfree_secret(s->gs2_header, s->gs2_len);
	free_str(s->authcid);
	free_str(s->authzid);
	xfree_secret(s->client_first_bare, s->client_first_bare_len);
	free_str(s->nonce);
	xfree_secret(s->server_first, s->server_first_len);
	xfree_secret(s->server_final, s->server_final_len);
	xfree_secret(s, sizeof(*s));
}

/* Splits at ','. Returns the number of fields or -1 when there are more
 * than `max`. */
static int split(const char *msg, size_t len, struct field *f, int max)
{
	const char *p = msg, *end = msg + len;
	int n = 0;

	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		if (n == max)
			return -1;
		f[n].p = p;
		f[n].len = (size_t)((comma != NULL ? comma : end) - p);
		n++;
		if (comma == NULL)
			return n;
		p = comma + 1;
	}
}

static bool has_attr(const struct field *f, char attr)
{
	return f->len >= 2 && f->p[0] == attr && f->p[1] == '=';
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* attr-val = ALPHA "=" value, with a non-empty value (RFC 5802 §7). */
static bool attr_val_valid(const struct field *f)
{
	return f->len >= 3 && is_alpha(f->p[0]) && f->p[1] == '=';
}

/* printable = %x21-2B / %x2D-7E: no ',' and nothing outside ASCII. */
static bool nonce_valid(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return false;
	return true;
}

/* cb-name = 1*(ALPHA / DIGIT / "." / "-") */
static bool cb_name_valid(const char *p, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(is_alpha(p[i]) || (p[i] >= '0' && p[i] <= '9') ||
		      p[i] == '.' || p[i] == '-'))
			return false;
	return true;
}

/* saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed,
 * and the result must be non-empty UTF-8. */
static int saslname_decode(const char *p, size_t len, char **out_r)
{
	struct buf b = BUF_INIT;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '=') {
			buf_append(&b, &p[i], 1);
			continue;
		}
		if (len - i < 3)
			goto bad;
		if (p[i + 1] == '2' && p[i + 2] == 'C')
			buf_append(&b, ",", 1);
		else if (p[i + 1] == '3' && p[i + 2] == 'D')
			buf_append(&b, "=", 1);
		else
			goto bad;
		i += 2;
	}
	if (!sasl_utf8_valid(b.data, b.len))
		goto bad;
	*out_r = buf_steal(&b, NULL);
	return 0;
bad:
	buf_free(&b);
	return -1;
}

/* A message must be within the cap and free of NUL bytes (RFC 5802 §7
 * allows none), so the parsers below can treat it as text. */
static bool message_ok(const char *msg, size_t len)
{
	return len > 0 && len <= SCRAM_MAX_MESSAGE &&
	       memchr(msg, '\0', len) == NULL;
}

int scram_server_client_first(struct scram_server *s, const char *msg,
			      size_t len, const char **authcid_r,
			      const char **authzid_r, const char **cb_type_r,
			      const char **error_r)
{
	struct field f[SCRAM_MAX_FIELDS];
	const char *error = "malformed-request";
	char *user = NULL;
	int n;

	*authcid_r = *authzid_r = *cb_type_r = NULL;
	if (s->state != SCRAM_ST_CLIENT_FIRST || !message_ok(msg, len))
		goto bad;
	n = split(msg, len, f, SCRAM_MAX_FIELDS);
	/* gs2-cbind-flag, authzid, username, nonce [, extensions] */
	if (n < 4)
		goto bad;
	for (int i = 4; i < n; i++)
		if (!attr_val_valid(&f[i]))
			goto bad;
	if (f[0].len == 1 && (f[0].p[0] == 'n' || f[0].p[0] == 'y')) {
		/* Without "p=" there is no channel binding. A -PLUS
		 * mechanism promised one; a "y" while we offered -PLUS
		 * means someone stripped it from our features (§6). */
		if (s->plus)
			goto bad;
		if (f[0].p[0] == 'y' && s->plus_offered) {
			error = "not-authorized";
			goto bad;
		}
	} else if (has_attr(&f[0], 'p')) {
		if (!cb_name_valid(f[0].p + 2, f[0].len - 2))
			goto bad;
		if (!s->plus) {
			/* §6: binding with a non-PLUS mechanism MUST fail. */
			error = "not-authorized";
			goto bad;
		}
		for (size_t i = 0; i < sizeof(cb_types) / sizeof(*cb_types);
		     i++)
			if (strlen(cb_types[i]) == f[0].len - 2 &&
			    memcmp(cb_types[i], f[0].p + 2, f[0].len - 2) == 0)
				s->cb_type = cb_types[i];
		if (s->cb_type == NULL)
			goto bad;
	} else {
		goto bad;
	}
	if (f[1].len > 0 &&
	    (!has_attr(&f[1], 'a') ||
	     saslname_decode(f[1].p + 2, f[1].len - 2, &s->authzid) < 0))
		goto bad;
	/* A mandatory extension ("m=") we cannot know: fail (§5.1). */
	if (!has_attr(&f[2], 'n') || !has_attr(&f[3], 'r'))
		goto bad;
	if (saslname_decode(f[2].p + 2, f[2].len - 2, &user) < 0)
		goto bad;
	/* A query, not a stored string: unassigned code points are
	 * allowed, and simply match no account. */
	if (saslprep_query(user, &s->authcid) < 0)
		goto bad;
	if (s->authcid[0] == '\0')
		goto bad;
	if (!nonce_valid(f[3].p + 2, f[3].len - 2))
		goto bad;
	s->nonce = xstrndup(f[3].p + 2, f[3].len - 2);
	s->gs2_len = (size_t)(f[2].p - msg);
	s->gs2_header = xstrndup(msg, s->gs2_len);
	s->client_first_bare_len = len - s->gs2_len;
	s->client_first_bare = xstrndup(f[2].p, s->client_first_bare_len);
	free(user);
	s->state = SCRAM_ST_SERVER_FIRST;
	*authcid_r = s->authcid;
	*authzid_r = s->authzid;
	*cb_type_r = s->cb_type;
	return 0;
bad:
	free(user);
	s->state = SCRAM_ST_FAILED;
	*error_r = error;
	return -1;
}

/* Per-process key for the fake salts of unknown users. This one global
 * is written once and only read afterwards; a restart changes the fake
 * salts, which an observer could notice but cannot tie to a user. */
static CRYPTO_ONCE fake_once = CRYPTO_ONCE_STATIC_INIT;
static unsigned char fake_secret[32];
static bool fake_secret_ok;

static void fake_secret_init(void)
{
	fake_secret_ok = RAND_bytes(fake_secret, sizeof(fake_secret)) == 1;
}

/* The same user gets the same salt every time, as a real one would, and
 * a different one per hash, as scram_make_creds gives. The keys are
 * random: no proof can match them, and unknown_user fails the exchange
 * regardless. */
static int fake_creds(struct scram_server *s, struct scram_creds *c)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len;
	struct buf b = BUF_INIT;
	int ret = -1;

	if (!CRYPTO_THREAD_run_once(&fake_once, fake_secret_init) ||
	    !fake_secret_ok)
		return -1;
	buf_append_str(&b, scram_hash_name(s->hash));
	buf_append(&b, "", 1);
	buf_append_str(&b, s->authcid);
	if (HMAC(EVP_sha256(), fake_secret, sizeof(fake_secret),
		 (unsigned char *)b.data, b.len, mac, &mac_len) == NULL)
		goto out;
	memset(c, 0, sizeof(*c));
	memcpy(c->salt, mac, SCRAM_SALT_LEN);
	c->salt_len = SCRAM_SALT_LEN;
	c->iterations = SCRAM_DEFAULT_ITERATIONS;
	if (RAND_bytes(c->stored_key, sizeof(c->stored_key)) != 1 ||
	    RAND_bytes(c->server_key, sizeof(c->server_key)) != 1)
		goto out;
	ret = 0;
out:
	buf_free(&b);
	return ret;
}

int scram_server_first_with_nonce(struct scram_server *s,
				  const struct scram_creds *creds,
				  const char *server_nonce, const char **out_r,
				  size_t *out_len_r)
{
	char *salt = NULL, *nonce;
	struct buf b = BUF_INIT;

	if (s->state != SCRAM_ST_SERVER_FIRST ||
	    !nonce_valid(server_nonce, strlen(server_nonce)))
		goto bad;
	if (creds != NULL) {
		if (creds->salt_len == 0 ||
		    creds->salt_len > sizeof(creds->salt) ||
		    creds->iterations == 0)
			goto bad;
		s->creds = *creds;
	} else {
		if (fake_creds(s, &s->creds) < 0)
			goto bad;
		s->unknown_user = true;
	}
	nonce = xasprintf("%s%s", s->nonce, server_nonce);
	free(s->nonce);
	s->nonce = nonce;
	salt = base64_encode(s->creds.salt, s->creds.salt_len);
	buf_appendf(&b, "r=%s,s=%s,i=%u", s->nonce, salt, s->creds.iterations);
	free(salt);
	s->server_first = buf_steal(&b, &s->server_first_len);
	s->state = SCRAM_ST_CLIENT_FINAL;
	*out_r = s->server_first;
	if (out_len_r != NULL)
		*out_len_r = s->server_first_len;
	return 0;
bad:
	s->state = SCRAM_ST_FAILED;
	return -1;
}

int scram_server_first(struct scram_server *s, const struct scram_creds *creds,
		       const char **out_r, size_t *out_len_r)
{
	unsigned char raw[SCRAM_NONCE_BYTES];
	char *nonce;
	int ret;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		s->state = SCRAM_ST_FAILED;
		return -1;
	}
	nonce = base64_encode(raw, sizeof(raw));
	ret = scram_server_first_with_nonce(s, creds, nonce, out_r, out_len_r);
	free(nonce);
	return ret;
}

int scram_server_client_final(struct scram_server *s, const char *msg,
			      size_t len, const unsigned char *cb_data,
			      size_t cb_len, const char **out_r,
			      size_t *out_len_r, unsigned char *client_key_r,
			      const char **error_r)
{
	struct field f[SCRAM_MAX_FIELDS];
	const char *error = "malformed-request";
	unsigned char *cbind = NULL, *proof = NULL;
	size_t cbind_len = 0, proof_len = 0, hlen = scram_hash_len(s->hash);
	unsigned char sig[EVP_MAX_MD_SIZE], client_key[EVP_MAX_MD_SIZE];
	unsigned char stored_key[EVP_MAX_MD_SIZE];
	struct buf expect = BUF_INIT, auth = BUF_INIT;
	char *v = NULL;
	int n, ret = -1;

	if (s->state != SCRAM_ST_CLIENT_FINAL || !message_ok(msg, len))
		goto out;
	n = split(msg, len, f, SCRAM_MAX_FIELDS);
	/* channel-binding, nonce [, extensions], proof: the proof is
	 * always last since the AuthMessage is everything before it. */
	if (n < 3 || !has_attr(&f[0], 'c') || !has_attr(&f[1], 'r') ||
	    !has_attr(&f[n - 1], 'p'))
		goto out;
	for (int i = 2; i < n - 1; i++)
		if (!attr_val_valid(&f[i]))
			goto out;
	if (base64_decode(f[0].p + 2, f[0].len - 2, &cbind, &cbind_len) < 0 ||
	    base64_decode(f[n - 1].p + 2, f[n - 1].len - 2, &proof,
			  &proof_len) < 0 ||
	    proof_len != hlen)
		goto out;

	error = "not-authorized";
	buf_append(&expect, s->gs2_header, s->gs2_len);
	if (s->cb_type != NULL) {
		/* The caller could not get the binding data of the type the
		 * client asked for: nothing to check against. */
		if (cb_data == NULL || cb_len == 0)
			goto out;
		buf_append(&expect, cb_data, cb_len);
	}
	if (cbind_len != expect.len ||
	    CRYPTO_memcmp(cbind, expect.data, expect.len) != 0)
		goto out;
	if (f[1].len - 2 != strlen(s->nonce) ||
	    memcmp(f[1].p + 2, s->nonce, f[1].len - 2) != 0)
		goto out;

	buf_append(&auth, s->client_first_bare, s->client_first_bare_len);
	buf_append(&auth, ",", 1);
	buf_append(&auth, s->server_first, s->server_first_len);
	buf_append(&auth, ",", 1);
	buf_append(&auth, msg, (size_t)(f[n - 1].p - 1 - msg));
	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), and it
	 * is genuine when H(ClientKey) is StoredKey. */
	if (hmac(s->hash, s->creds.stored_key, hlen, auth.data, auth.len,
		 sig) < 0)
		goto out;
	for (size_t i = 0; i < hlen; i++)
		client_key[i] = proof[i] ^ sig[i];
	if (digest(s->hash, client_key, hlen, stored_key) < 0)
		goto out;
	if ((CRYPTO_memcmp(stored_key, s->creds.stored_key, hlen) != 0) |
	    s->unknown_user)
		goto out;
	if (hmac(s->hash, s->creds.server_key, hlen, auth.data, auth.len,
		 sig) < 0)
		goto out;
	v = base64_encode(sig, hlen);
	s->server_final = xasprintf("v=%s", v);
	s->server_final_len = strlen(s->server_final);
	if (client_key_r != NULL)
		memcpy(client_key_r, client_key, hlen);
	s->state = SCRAM_ST_DONE;
	*out_r = s->server_final;
	if (out_len_r != NULL)
		*out_len_r = s->server_final_len;
	ret = 0;
out:
	if (ret < 0) {
		s->state = SCRAM_ST_FAILED;
		*error_r = error;
	}
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	free(v);
	if (proof != NULL)
		xfree_secret(proof, proof_len);
	free(cbind);
	buf_free(&expect);
	if (auth.data != NULL)
		xfree_secret(auth.data, auth.cap);
	return ret;
}
