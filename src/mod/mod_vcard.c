/* XEP-0054 vcard-temp: each account has one vCard, which its own
 * resources set and anyone may read; the server answers on the
 * account's behalf.
 *
 * The vCard lives in the per-user data store, space "vcard", key
 * "vcard-temp". The value is a header line holding the SHA-1 of the
 * PHOTO's image ("" when there is none), then the vCard as
 * xml_serialize_document writes it: presence needs the hash at every login
 * (XEP-0153), and reading it from the header spares parsing a vCard of up
 * to vcard_max_size bytes on the event loop.
 *
 * Every operation on one account's vCard reads the stored value first
 * (a set needs the old photo hash, XEP-0398 conversion changes only the
 * PHOTO), so operations on one account run one after the other, in the
 * order they were asked for: a queue per account, while it has work. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core/jid.h"
#include "core/module.h"
#include "mod/mod_avatar.h"
#include "mod/mod_vcard.h"
#include "server.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "xml/xml.h"
#include "xml/xml_document.h"

#define SPACE "vcard"
#define KEY "vcard-temp"
/* Operations one account's queue holds; requests beyond get
 * <resource-constraint/>. */
#define QUEUE_MAX 64
/* The header line: a hex SHA-1 and '\n'. */
#define HEADER_MAX 41

extern const struct module vcard_module;

enum job_kind { JOB_GET, JOB_SET, JOB_PHOTO, JOB_HASH };

struct job {
	struct job *next;
	enum job_kind kind;
	struct xml_node *iq;        /* GET, SET: a copy of the request */
	bool own;                   /* GET: the account asks for its own */
	char *value;                /* SET: the new stored value */
	size_t len;
	struct vcard_photo photo;   /* SET, PHOTO: the new image */
	vcard_hash_cb *cb;          /* HASH */
	void *ctx;
	char old_hash[41];          /* SET: the image the write replaced */
};

/* One account's queue; it exists while it holds a job. */
struct queue {
	struct server *srv;
	char *owner;
	struct job *head, *tail;
	size_t n;
};

/* Made at first use: during init the module table (and so our index)
 * does not exist yet. */
static struct hashmap *queues(struct server *srv)
{
	void **slot = &srv->mod_ctx[modules_index(srv->modules, &vcard_module)];

	if (*slot == NULL)
		*slot = hashmap_new();
	return *slot;
}

static void job_free(struct job *j)
{
	xml_free(j->iq);
	free(j->value);
	vcard_photo_free(&j->photo);
	free(j);
}

static struct iq_request job_req(const struct queue *q, const struct job *j)
{
	return (struct iq_request){ .srv = q->srv, .iq = j->iq };
}

/* ---- the stored value ---- */

/* Splits a stored value into its photo hash and its vCard bytes. */
static void split(const char *value, size_t len, char hash_r[41],
		  const char **xml_r, size_t *xml_len_r)
{
	const char *nl = memchr(value, '\n', len);
	size_t hl = nl != NULL ? (size_t)(nl - value) : 0;

	hash_r[0] = '\0';
	if (nl == NULL) {
		*xml_r = value;
		*xml_len_r = len;
		return;
	}
	if (hl == 40) {
		memcpy(hash_r, value, 40);
		hash_r[40] = '\0';
	}
	*xml_r = nl + 1;
	*xml_len_r = len - hl - 1;
}

static char *make_value(const char *hash, const struct xml_node *vcard,
			size_t *len_r)
{
	struct buf b = BUF_INIT;
	size_t xl;
	char *xml = xml_serialize_document(vcard, &xl);

	buf_appendf(&b, "%s\n", hash);
	buf_append(&b, xml, xl);
	free(xml);
	return buf_steal(&b, len_r);
}

/* ---- the queue ---- */

static void run(struct queue *q);

static void next(struct queue *q)
{
	struct job *j = q->head;

	q->head = j->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->n--;
	job_free(j);
	if (q->head != NULL) {
		run(q);
		return;
	}
	hashmap_remove(queues(q->srv), q->owner);
	free(q->owner);
	free(q);
}

/* Appends j to owner's queue and starts it if the queue was idle.
 * Returns -1 (j freed) when the queue is full. */
static int push(struct server *srv, const char *owner, struct job *j)
{
	struct queue *q = hashmap_get(queues(srv), owner);

	if (q == NULL) {
		q = xcalloc(1, sizeof(*q));
		q->srv = srv;
		q->owner = xstrdup(owner);
		hashmap_put(queues(srv), owner, q);
	} else if (q->n >= QUEUE_MAX) {
		job_free(j);
		return -1;
	}
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	if (q->n++ == 0)
		run(q);
	return 0;
}

static void written(void *ctx, int result, const char *error)
{
	struct queue *q = ctx;
	struct job *j = q->head;

	if (result < 0) {
		log_error("vcard: %s: storing the vCard failed: %s", q->owner,
			  error ? error : "?");
		/* The hash announced at acceptance may not be what is
		 * stored: have it read again. */
		avatar_photo_changed(q->srv, q->owner, NULL);
	}
	if (j->kind == JOB_SET) {
		struct iq_request req = job_req(q, j);

		if (result < 0) {
			iq_error(&req, "internal-server-error", NULL);
		} else {
			iq_reply(&req, NULL);
			avatar_vcard_stored(q->srv, q->owner, j->old_hash,
					    &j->photo);
		}
	}
	next(q);
}

static void do_get(struct queue *q, struct job *j, const char *xml,
		   size_t len, bool found)
{
	struct iq_request req = job_req(q, j);
	struct xml_node *vcard = found ? xml_parse_document(xml, len) : NULL;

	if (found && vcard == NULL)
		log_error("vcard: %s: the stored vCard is damaged", q->owner);
	if (vcard != NULL) {
		iq_reply(&req, vcard);
	} else if (j->own) {
		/* XEP-0054 §3.1 allows an empty vCard or item-not-found for
		 * one's own; clients take the empty one as "no vCard yet"
		 * without showing an error. */
		iq_reply(&req, xml_new("vCard", NS_VCARD));
	} else {
		/* §3.3: the same answer as for a user who does not exist. */
		iq_error(&req, "service-unavailable", NULL);
	}
	next(q);
}

static void do_photo(struct queue *q, struct job *j, const char *xml,
		     size_t len, bool found, const char *old_hash)
{
	struct xml_node *vcard = NULL;
	char *value;
	size_t vlen;

	if (strcmp(old_hash, j->photo.hash) == 0) {
		next(q);
		return;
	}
	if (found && (vcard = xml_parse_document(xml, len)) == NULL) {
		/* Never replace what we cannot read with a vCard holding
		 * only a photo. */
		log_error("vcard: %s: the stored vCard is damaged; its photo "
			  "was not updated", q->owner);
		next(q);
		return;
	}
	if (vcard == NULL)
		vcard = xml_new("vCard", NS_VCARD);
	vcard_photo_write(vcard, &j->photo);
	value = make_value(j->photo.hash, vcard, &vlen);
	xml_free(vcard);
	if (vlen > q->srv->cfg->vcard_max_size + HEADER_MAX) {
		log_info("vcard: %s: avatar not copied to the vCard: it would "
			 "exceed vcard_max_size", q->owner);
		free(value);
		next(q);
		return;
	}
	memcpy(j->old_hash, old_hash, sizeof(j->old_hash));
	avatar_photo_changed(q->srv, q->owner, j->photo.hash);
	store_data_put(q->srv->store, q->owner, SPACE, KEY, value, vlen, 0,
		       written, q);
	free(value);
}

static void got(void *ctx, int result, const struct store_data_item *items,
		size_t n)
{
	struct queue *q = ctx;
	struct job *j = q->head;
	char old_hash[41] = "";
	const char *xml = NULL;
	size_t len = 0;

	if (result < 0) {
		log_error("vcard: %s: reading the vCard failed", q->owner);
		if (j->iq != NULL) {
			struct iq_request req = job_req(q, j);
			iq_error(&req, "internal-server-error", NULL);
		} else if (j->kind == JOB_HASH) {
			j->cb(j->ctx, -1, NULL);
		}
		next(q);
		return;
	}
	if (n == 1)
		split(items[0].value, items[0].len, old_hash, &xml, &len);
	switch (j->kind) {
	case JOB_GET:
		do_get(q, j, xml, len, n == 1);
		break;
	case JOB_HASH:
		j->cb(j->ctx, 0, old_hash);
		next(q);
		break;
	case JOB_PHOTO:
		do_photo(q, j, xml, len, n == 1, old_hash);
		break;
	case JOB_SET:
		memcpy(j->old_hash, old_hash, sizeof(j->old_hash));
		if (j->value != NULL)
			store_data_put(q->srv->store, q->owner, SPACE, KEY,
				       j->value, j->len, 0, written, q);
		else
			store_data_delete(q->srv->store, q->owner, SPACE, KEY,
					  written, q);
		break;
	}
}

static void run(struct queue *q)
{
	store_data_get(q->srv->store, q->owner, SPACE, KEY, got, q);
}

/* ---- the IQs ---- */

/* Returns -1 (answered, j freed) when the account's queue is full. */
static int queue_request(const struct iq_request *req, struct job *j,
			 const char *owner)
{
	j->iq = xml_copy(req->iq);
	if (push(req->srv, owner, j) == 0)
		return 0;
	iq_error(req, "resource-constraint",
		 "too many vCard requests for this account");
	return -1;
}

static void vcard_get(const struct iq_request *req)
{
	struct job *j;
	char *owner;

	/* A vCard for the server itself is not configured. */
	if (req->to->local == NULL) {
		iq_error(req, "item-not-found", NULL);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_GET;
	j->own = jid_bare_equal(req->from, req->to);
	owner = jid_bare(req->to);
	queue_request(req, j, owner);
	free(owner);
}

static void vcard_set(const struct iq_request *req)
{
	const struct config *cfg = req->srv->cfg;
	struct xml_node *vcard = req->payload;
	struct job *j;
	char *owner, hash[41];

	/* §3.2: only one's own vCard, from one's own resource. */
	if (req->session == NULL || req->to->local == NULL ||
	    req->to->resource != NULL || !jid_bare_equal(req->from, req->to)) {
		iq_error(req, "forbidden", NULL);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->kind = JOB_SET;
	vcard_photo_read(vcard, &j->photo);
	/* An empty vCard removes the stored one: a get then answers as
	 * for an account that never set any. */
	if (vcard->children != NULL || vcard->attrs != NULL)
		j->value = make_value(j->photo.hash, vcard, &j->len);
	if (j->len > cfg->vcard_max_size + HEADER_MAX) {
		iq_error(req, "not-acceptable",
			 "the vCard is larger than this server accepts");
		job_free(j);
		return;
	}
	owner = jid_bare(req->to);
	memcpy(hash, j->photo.hash, sizeof(hash));
	/* Announced before it is stored: presence the client sends after
	 * this request must carry the new hash, not the old one. */
	if (queue_request(req, j, owner) == 0)
		avatar_photo_changed(req->srv, owner, hash);
	free(owner);
}

/* ---- for mod_avatar ---- */

void vcard_get_hash(struct server *srv, const char *owner, vcard_hash_cb *cb,
		    void *ctx)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_HASH;
	j->cb = cb;
	j->ctx = ctx;
	if (push(srv, owner, j) != 0)
		cb(ctx, -1, NULL);
}

void vcard_set_photo(struct server *srv, const char *owner,
		     const struct vcard_photo *photo)
{
	struct job *j = xcalloc(1, sizeof(*j));

	j->kind = JOB_PHOTO;
	memcpy(j->photo.hash, photo->hash, sizeof(j->photo.hash));
	j->photo.type = photo->type ? xstrdup(photo->type) : NULL;
	j->photo.b64 = photo->b64 ? xstrdup(photo->b64) : NULL;
	j->photo.bytes = photo->bytes;
	if (push(srv, owner, j) != 0)
		log_warn("vcard: %s: too many vCard operations; an avatar "
			 "change was not copied to the vCard", owner);
}

/* ---- module ---- */

/* After the store closed, every queue has run dry. */
static void vcard_deinit(struct server *srv)
{
	void **slot;

	if (srv->modules == NULL)
		return;
	slot = &srv->mod_ctx[modules_index(srv->modules, &vcard_module)];
	if (*slot != NULL && hashmap_count(*slot) > 0)
		log_error("vcard: %zu accounts had vCard operations left at "
			  "shutdown", hashmap_count(*slot));
	hashmap_free(*slot);
	*slot = NULL;
}

static const struct iq_handler vcard_handlers[] = {
	{ NS_VCARD, "vCard", IQ_SCOPE_SERVER | IQ_SCOPE_ACCOUNT, vcard_get,
	  vcard_set },
	{ NULL, NULL, 0, NULL, NULL },
};

/* §4: the server supports vcard-temp. */
static const char *const vcard_features[] = { NS_VCARD, NULL };

const struct module vcard_module = {
	.name = "vcard",
	.deinit = vcard_deinit,
	.iq_handlers = vcard_handlers,
	.server_features = vcard_features,
};
