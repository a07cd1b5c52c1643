/* SCRAM-SHA-1 / SCRAM-SHA-256 client (RFC 5802, RFC 7677), without
 * channel binding ("n,,": the client does not support it, which servers
 * that offer -PLUS accept).
 *
 * PBKDF2 is what makes SCRAM expensive, and it is the client's cost, not
 * the server's: the server stores StoredKey/ServerKey. So that the load
 * generator measures the server, SaltedPassword is cached per (hash,
 * password, salt, iterations), in memory and optionally in a file kept
 * between runs (--scram-cache). The file holds only SHA-256 digests of the
 * key and the SaltedPassword, never a password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "bench.h"

struct cache_ent {
	unsigned char key[32];
	unsigned char val[32];
	bool used;
};

struct scram_cache {
	struct cache_ent *t;
	size_t cap, n;
	unsigned misses;
	bool dirty;
};

struct scram_client {
	struct bench *b;
	bool sha256;
	char *password;
	char cfb[256];       /* client-first-message-bare */
	char nonce[64];
	unsigned char server_sig[32];
	size_t hlen;
};

static const EVP_MD *md_of(bool sha256)
{
	return sha256 ? EVP_sha256() : EVP_sha1();
}

static char *b64_encode(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out == NULL)
		abort();
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* Returns the decoded length or -1. */
static int b64_decode(const char *in, unsigned char *out, size_t cap)
{
	size_t len = strlen(in);
	int n;

	if (len % 4 != 0 || len / 4 * 3 > cap)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		n--;
	if (len > 1 && in[len - 2] == '=')
		n--;
	return n;
}

static void cache_put(struct scram_cache *c, const unsigned char *key,
		      const unsigned char *val);

static struct cache_ent *cache_slot(struct scram_cache *c,
				    const unsigned char *key)
{
	size_t i;

	memcpy(&i, key, sizeof(i));
	for (i &= c->cap - 1;; i = (i + 1) & (c->cap - 1))
		if (!c->t[i].used || memcmp(c->t[i].key, key, 32) == 0)
			return &c->t[i];
}

static void cache_grow(struct scram_cache *c)
{
	struct cache_ent *old = c->t;
	size_t oldcap = c->cap;

	c->cap = oldcap ? oldcap * 2 : 1024;
	c->t = calloc(c->cap, sizeof(*c->t));
	if (c->t == NULL)
		abort();
	c->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].used)
			cache_put(c, old[i].key, old[i].val);
	free(old);
}

static void cache_put(struct scram_cache *c, const unsigned char *key,
		      const unsigned char *val)
{
	struct cache_ent *e;

	if ((c->n + 1) * 2 > c->cap)
		cache_grow(c);
	e = cache_slot(c, key);
	if (!e->used) {
		e->used = true;
		memcpy(e->key, key, 32);
		c->n++;
	}
	memcpy(e->val, val, 32);
}

static struct scram_cache *cache_of(struct bench *b)
{
	if (b->cache == NULL) {
		b->cache = calloc(1, sizeof(*b->cache));
		if (b->cache == NULL)
			abort();
		cache_grow(b->cache);
	}
	return b->cache;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

void scram_cache_load(struct bench *b)
{
	struct scram_cache *c = cache_of(b);
	char line[256];
	FILE *f;

	if (b->o.scram_cache == NULL)
		return;
	f = fopen(b->o.scram_cache, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned char k[32], v[32];
		if (strlen(line) < 129 || line[64] != ' ' ||
		    unhex(line, k, 32) < 0 || unhex(line + 65, v, 32) < 0)
			continue;
		cache_put(c, k, v);
	}
	fclose(f);
}

void scram_cache_save(struct bench *b)
{
	struct scram_cache *c = b->cache;
	char tmp[4096];
	FILE *f;

	if (b->o.scram_cache == NULL || c == NULL || !c->dirty)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", b->o.scram_cache);
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	for (size_t i = 0; i < c->cap; i++) {
		if (!c->t[i].used)
			continue;
		for (int j = 0; j < 32; j++)
			fprintf(f, "%02x", c->t[i].key[j]);
		fputc(' ', f);
		for (int j = 0; j < 32; j++)
			fprintf(f, "%02x", c->t[i].val[j]);
		fputc('\n', f);
	}
	if (fclose(f) == 0)
		rename(tmp, b->o.scram_cache);
}

void scram_cache_free(struct bench *b)
{
	if (b->cache != NULL) {
		OPENSSL_cleanse(b->cache->t, b->cache->cap * sizeof(*b->cache->t));
		free(b->cache->t);
		free(b->cache);
		b->cache = NULL;
	}
}

unsigned scram_cache_misses(struct bench *b)
{
	return b->cache ? b->cache->misses : 0;
}

static void salted_password(struct scram_client *s, const unsigned char *salt,
			    size_t salt_len, unsigned iter, unsigned char *out)
{
	struct scram_cache *c = cache_of(s->b);
	unsigned char key[32];
	unsigned char iterbe[4] = { iter >> 24, iter >> 16, iter >> 8, iter };
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	struct cache_ent *e;

	EVP_DigestInit_ex(m, EVP_sha256(), NULL);
	EVP_DigestUpdate(m, s->sha256 ? "S256" : "S1\0\0", 4);
	EVP_DigestUpdate(m, iterbe, 4);
	EVP_DigestUpdate(m, &salt_len, sizeof(salt_len));
	EVP_DigestUpdate(m, salt, salt_len);
	EVP_DigestUpdate(m, s->password, strlen(s->password));
	EVP_DigestFinal_ex(m, key, NULL);
	EVP_MD_CTX_free(m);
	e = cache_slot(c, key);
	if (e->used) {
		memcpy(out, e->val, s->hlen);
		return;
	}
	c->misses++;
	c->dirty = true;
	unsigned char val[32] = { 0 };
	PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt,
			  (int)salt_len, (int)iter, md_of(s->sha256),
			  (int)s->hlen, val);
	cache_put(c, key, val);
	memcpy(out, val, s->hlen);
}

struct scram_client *scram_client_new(struct bench *b, bool sha256,
				      const char *user, const char *password)
{
	struct scram_client *s = calloc(1, sizeof(*s));
	unsigned char rnd[18];
	char *n;

	if (s == NULL)
		abort();
	s->b = b;
	s->sha256 = sha256;
	s->hlen = sha256 ? 32 : 20;
	s->password = strdup(password);
	RAND_bytes(rnd, sizeof(rnd));
	n = b64_encode(rnd, sizeof(rnd));   /* 24 chars, no ',' */
	snprintf(s->nonce, sizeof(s->nonce), "%s", n);
	free(n);
	/* bench user names need no SASLprep nor '=' escaping */
	snprintf(s->cfb, sizeof(s->cfb), "n=%s,r=%s", user, s->nonce);
	return s;
}

void scram_client_free(struct scram_client *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s->password, strlen(s->password));
	free(s->password);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

char *scram_client_first(struct scram_client *s)
{
	char msg[300];
	int n = snprintf(msg, sizeof(msg), "n,,%s", s->cfb);

	return b64_encode((unsigned char *)msg, (size_t)n);
}

/* Finds "k=" at the start of an attribute in a SCRAM message. */
static const char *scram_attr(const char *msg, char k, size_t *len_r)
{
	const char *p = msg;

	while (p != NULL && *p) {
		if (p[0] == k && p[1] == '=') {
			const char *e = strchr(p, ',');
			*len_r = e ? (size_t)(e - p - 2) : strlen(p + 2);
			return p + 2;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

static void hmac(const EVP_MD *md, const unsigned char *key, size_t klen,
		 const void *data, size_t dlen, unsigned char *out)
{
	unsigned int olen;

	HMAC(md, key, (int)klen, data, dlen, out, &olen);
}

char *scram_client_final(struct scram_client *s, const char *b64,
			 const char **error_r)
{
	unsigned char sfm[1024], salt[256], sp[32], ck[32], sk[32], svk[32];
	unsigned char csig[32], proof[32];
	char nonce[256], cfwp[400], am[2048], out[600];
	const char *r, *sa, *it;
	size_t rlen = 0, salen = 0, itlen = 0;
	const EVP_MD *md = md_of(s->sha256);
	int n, slen;
	unsigned iter;
	char *p64, *res;

	n = b64_decode(b64, sfm, sizeof(sfm) - 1);
	if (n <= 0) {
		*error_r = "bad base64 in challenge";
		return NULL;
	}
	sfm[n] = '\0';
	if (sfm[0] == 'm') {
		*error_r = "server requires an extension";
		return NULL;
	}
	r = scram_attr((char *)sfm, 'r', &rlen);
	sa = scram_attr((char *)sfm, 's', &salen);
	it = scram_attr((char *)sfm, 'i', &itlen);
	if (r == NULL || sa == NULL || it == NULL || rlen >= sizeof(nonce) ||
	    salen >= sizeof(am) || itlen > 9 ||
	    strncmp(r, s->nonce, strlen(s->nonce)) != 0) {
		*error_r = "malformed server-first-message";
		return NULL;
	}
	memcpy(nonce, r, rlen);
	nonce[rlen] = '\0';
	memcpy(am, sa, salen);
	am[salen] = '\0';
	slen = b64_decode(am, salt, sizeof(salt));
	iter = (unsigned)strtoul(it, NULL, 10);
	if (slen <= 0 || iter == 0 || iter > 10000000) {
		*error_r = "bad salt or iteration count";
		return NULL;
	}
	salted_password(s, salt, (size_t)slen, iter, sp);
	hmac(md, sp, s->hlen, "Client Key", 10, ck);
	hmac(md, sp, s->hlen, "Server Key", 10, svk);
	EVP_Digest(ck, s->hlen, sk, NULL, md, NULL);
	snprintf(cfwp, sizeof(cfwp), "c=biws,r=%s", nonce);
	n = snprintf(am, sizeof(am), "%s,%s,%s", s->cfb, (char *)sfm, cfwp);
	if (n <= 0 || (size_t)n >= sizeof(am)) {
		*error_r = "server-first-message too long";
		return NULL;
	}
	hmac(md, sk, s->hlen, am, (size_t)n, csig);
	for (size_t i = 0; i < s->hlen; i++)
		proof[i] = ck[i] ^ csig[i];
	hmac(md, svk, s->hlen, am, (size_t)n, s->server_sig);
	p64 = b64_encode(proof, s->hlen);
	n = snprintf(out, sizeof(out), "%s,p=%s", cfwp, p64);
	free(p64);
	res = b64_encode((unsigned char *)out, (size_t)n);
	OPENSSL_cleanse(sp, sizeof(sp));
	OPENSSL_cleanse(ck, sizeof(ck));
	return res;
}

int scram_client_verify(struct scram_client *s, const char *b64,
			const char **error_r)
{
	unsigned char msg[256], sig[64];
	char v[128];
	const char *p;
	size_t len;
	int n;

	if (b64 == NULL || *b64 == '\0' || strcmp(b64, "=") == 0) {
		*error_r = "no server signature";
		return -1;
	}
	n = b64_decode(b64, msg, sizeof(msg) - 1);
	if (n <= 0) {
		*error_r = "bad base64 in success";
		return -1;
	}
	msg[n] = '\0';
	p = scram_attr((char *)msg, 'v', &len);
	if (p == NULL || len >= sizeof(v)) {
		*error_r = "no v= in success";
		return -1;
	}
	memcpy(v, p, len);
	v[len] = '\0';
	n = b64_decode(v, sig, sizeof(sig));
	if (n != (int)s->hlen || CRYPTO_memcmp(sig, s->server_sig, s->hlen) != 0) {
		*error_r = "server signature mismatch";
		return -1;
	}
	return 0;
}
