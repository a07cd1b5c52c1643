/* XEP-0115 §5: verification strings, and what we keep of a client's
 * capabilities: the node names of its "+notify" features (XEP-0163
 * §4.2), in sets shared by every session that announced the same
 * verified hash. */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "mod/mod_caps-private.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/xalloc.h"
#include "xml/xml.h"

#define NS_XDATA "jabber:x:data"
#define NOTIFY_SUFFIX "+notify"

/* ---- interest sets ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool caps_notify_has(const struct caps_notify *set, const char *node)
{
	return set != NULL && set->n > 0 &&
	       bsearch(&node, set->nodes, set->n, sizeof(char *),
		       cmp_str) != NULL;
}

struct caps_notify *caps_notify_ref(const struct caps_notify *set)
{
	struct caps_notify *s = (struct caps_notify *)set;

	if (s != NULL)
		s->refs++;
	return s;
}

void caps_notify_unref(struct caps_notify *set)
{
	if (set == NULL || --set->refs > 0)
		return;
	for (size_t i = 0; i < set->n; i++)
		free(set->nodes[i]);
	free(set->nodes);
	free(set);
}

struct caps_notify *caps_notify_from_query(const struct xml_node *query)
{
	struct caps_notify *set = xcalloc(1, sizeof(*set));
	const size_t suffix = strlen(NOTIFY_SUFFIX);
	size_t cap = 0, bytes = 0, kept = 0;
	const struct xml_node *f;

	set->refs = 1;
	for (f = xml_child(query, "feature", NS_DISCO_INFO); f != NULL;
	     f = xml_next(f, "feature", NS_DISCO_INFO)) {
		const char *var = xml_attr(f, "var");
		size_t len = var != NULL ? strlen(var) : 0;

		if (len <= suffix ||
		    strcmp(var + len - suffix, NOTIFY_SUFFIX) != 0)
			continue;
		/* Past the bounds the rest is ignored: a client does not
		 * need hundreds of event types. */
		if (set->n == CAPS_NOTIFY_MAX ||
		    bytes + len > CAPS_NOTIFY_BYTES)
			break;
		set->nodes = xgrow(set->nodes, &cap, set->n + 1,
				   sizeof(char *));
		set->nodes[set->n++] = xstrndup(var, len - suffix);
		bytes += len;
	}
	if (set->n > 1)
		qsort(set->nodes, set->n, sizeof(char *), cmp_str);
	for (size_t i = 0; i < set->n; i++) {
		if (kept > 0 && strcmp(set->nodes[kept - 1], set->nodes[i]) == 0)
			free(set->nodes[i]);
		else
			set->nodes[kept++] = set->nodes[i];
	}
	set->n = kept;
	return set;
}

/* ---- the verification string (§5.1) ---- */

static const EVP_MD *hash_md(const char *hash)
{
	/* IANA Hash Function Textual Names, as XEP-0115 §5.1 uses them. */
	if (strcmp(hash, "sha-1") == 0)
		return EVP_sha1();
	if (strcmp(hash, "sha-224") == 0)
		return EVP_sha224();
	if (strcmp(hash, "sha-256") == 0)
		return EVP_sha256();
	if (strcmp(hash, "sha-384") == 0)
		return EVP_sha384();
	if (strcmp(hash, "sha-512") == 0)
		return EVP_sha512();
	return NULL;
}

bool caps_hash_supported(const char *hash)
{
	return hash_md(hash) != NULL;
}

struct strs {
	char **v;
	size_t n, cap;
};

static void strs_add(struct strs *s, char *str)
{
	s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(char *));
	s->v[s->n++] = str;
}

static void strs_free(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* Sorts; false if two are equal. */
static bool strs_sort_unique(struct strs *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(char *), cmp_str);
	for (size_t i = 1; i < s->n; i++)
		if (strcmp(s->v[i - 1], s->v[i]) == 0)
			return false;
	return true;
}

static void append_lt(struct buf *b, const char *s)
{
	buf_append_str(b, s);
	buf_append(b, "<", 1);
}

static const struct xml_node *form_type_field(const struct xml_node *x)
{
	const struct xml_node *f;

	for (f = xml_child(x, "field", NS_XDATA); f != NULL;
	     f = xml_next(f, "field", NS_XDATA)) {
		const char *var = xml_attr(f, "var");
		if (var != NULL && strcmp(var, "FORM_TYPE") == 0)
			return f;
	}
	return NULL;
}

/* The FORM_TYPE of an extended form (§5.4 step 3.5, 3.6): NULL when the
 * form is to be ignored; *bad when it makes the answer ill-formed. */
static const char *form_type(const struct xml_node *x, bool *bad)
{
	const struct xml_node *f = form_type_field(x), *v;
	const char *type, *value = NULL;

	if (f == NULL)
		return NULL;
	type = xml_attr(f, "type");
	if (type == NULL || strcmp(type, "hidden") != 0)
		return NULL;
	for (v = xml_child(f, "value", NS_XDATA); v != NULL;
	     v = xml_next(v, "value", NS_XDATA)) {
		if (value != NULL && strcmp(value, xml_text(v)) != 0)
			*bad = true;
		value = xml_text(v);
	}
	return value;
}

struct field_str {
	const char *var;
	char *str;      /* "var<value<value<" */
};

static int cmp_field(const void *a, const void *b)
{
	return strcmp(((const struct field_str *)a)->var,
		      ((const struct field_str *)b)->var);
}

/* One form's part of S: FORM_TYPE, then its fields sorted by var, each
 * with its values sorted. */
static void form_string(const struct xml_node *x, const char *type,
			struct buf *out)
{
	struct field_str *fields = NULL;
	size_t n = 0, cap = 0;
	const struct xml_node *f, *v;

	for (f = xml_child(x, "field", NS_XDATA); f != NULL;
	     f = xml_next(f, "field", NS_XDATA)) {
		const char *var = xml_attr(f, "var");
		struct strs values = { 0 };
		struct buf b = BUF_INIT;

		if (var == NULL || strcmp(var, "FORM_TYPE") == 0)
			continue;
		for (v = xml_child(f, "value", NS_XDATA); v != NULL;
		     v = xml_next(v, "value", NS_XDATA))
			strs_add(&values, xstrdup(xml_text(v)));
		if (values.n > 1)
			qsort(values.v, values.n, sizeof(char *), cmp_str);
		append_lt(&b, var);
		for (size_t i = 0; i < values.n; i++)
			append_lt(&b, values.v[i]);
		strs_free(&values);
		fields = xgrow(fields, &cap, n + 1, sizeof(*fields));
		fields[n].var = var;
		fields[n++].str = buf_steal(&b, NULL);
	}
	if (n > 1)
		qsort(fields, n, sizeof(*fields), cmp_field);
	append_lt(out, type);
	for (size_t i = 0; i < n; i++) {
		buf_append_str(out, fields[i].str);
		free(fields[i].str);
	}
	free(fields);
}

struct form {
	const char *type;
	const struct xml_node *x;
};

static int cmp_form(const void *a, const void *b)
{
	return strcmp(((const struct form *)a)->type,
		      ((const struct form *)b)->type);
}

char *caps_hash_ver(const struct xml_node *query, const char *hash)
{
	const EVP_MD *md = hash_md(hash);
	struct strs ids = { 0 }, features = { 0 };
	struct form *forms = NULL;
	size_t nforms = 0, cap = 0;
	const struct xml_node *el;
	struct buf s = BUF_INIT;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen;
	bool bad = false;
	char *ver = NULL;

	if (md == NULL)
		return NULL;
	for (el = xml_child(query, "identity", NS_DISCO_INFO); el != NULL;
	     el = xml_next(el, "identity", NS_DISCO_INFO)) {
		const char *cat = xml_attr(el, "category");
		const char *type = xml_attr(el, "type");
		const char *lang = xml_attr_ns(el, XML_NS_XML, "lang");
		const char *name = xml_attr(el, "name");

		if (cat == NULL || type == NULL) {
			bad = true;
			break;
		}
		strs_add(&ids, xasprintf("%s/%s/%s/%s", cat, type,
					 lang ? lang : "", name ? name : ""));
	}
	for (el = xml_child(query, "feature", NS_DISCO_INFO); el != NULL;
	     el = xml_next(el, "feature", NS_DISCO_INFO)) {
		const char *var = xml_attr(el, "var");

		if (var == NULL) {
			bad = true;
			break;
		}
		strs_add(&features, xstrdup(var));
	}
	for (el = xml_child(query, "x", NS_XDATA); el != NULL && !bad;
	     el = xml_next(el, "x", NS_XDATA)) {
		const char *type = form_type(el, &bad);

		if (type == NULL)
			continue;
		forms = xgrow(forms, &cap, nforms + 1, sizeof(*forms));
		forms[nforms].type = type;
		forms[nforms++].x = el;
	}
	if (bad || !strs_sort_unique(&ids) || !strs_sort_unique(&features))
		goto out;
	if (nforms > 1)
		qsort(forms, nforms, sizeof(*forms), cmp_form);
	for (size_t i = 1; i < nforms; i++)
		if (strcmp(forms[i - 1].type, forms[i].type) == 0)
			goto out;

	for (size_t i = 0; i < ids.n; i++)
		append_lt(&s, ids.v[i]);
	for (size_t i = 0; i < features.n; i++)
		append_lt(&s, features.v[i]);
	for (size_t i = 0; i < nforms; i++)
		form_string(forms[i].x, forms[i].type, &s);
	if (EVP_Digest(s.data != NULL ? s.data : "", s.len, digest, &dlen, md,
		       NULL) == 1)
		ver = base64_encode(digest, dlen);
out:
	strs_free(&ids);
	strs_free(&features);
	free(forms);
	buf_free(&s);
	return ver;
}

/* ---- the cache ---- */

struct caps_notify *caps_cache_get(struct hashmap *cache, const char *key)
{
	return hashmap_get(cache, key);
}

void caps_cache_put(struct hashmap *cache, const char *key,
		    struct caps_notify *set)
{
	struct caps_notify *old;
	size_t pos = 0;
	const char *victim;
	void *v;

	/* Full: one entry goes, whichever the table yields first; a hash
	 * still in use lives on in its sessions, and comes back with the
	 * next disco#info answer. */
	if (hashmap_get(cache, key) == NULL &&
	    hashmap_count(cache) >= CAPS_CACHE_MAX &&
	    hashmap_next(cache, &pos, &victim, &v)) {
		char *k = xstrdup(victim);
		caps_notify_unref(hashmap_remove(cache, k));
		free(k);
	}
	old = hashmap_put(cache, key, caps_notify_ref(set));
	caps_notify_unref(old);
}

void caps_cache_free(struct hashmap *cache)
{
	size_t pos = 0;
	void *v;

	if (cache == NULL)
		return;
	while (hashmap_next(cache, &pos, NULL, &v))
		caps_notify_unref(v);
	hashmap_free(cache);
}
