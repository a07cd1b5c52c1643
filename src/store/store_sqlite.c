/* The SQLite store backend: <data_dir>/roost.db in WAL mode.
 *
 * WAL plus a busy timeout lets roostctl write while roostd runs on the same
 * file: readers never wait for the writer, and a second writer waits up to
 * STORE_SQLITE_BUSY_MS for the write lock instead of failing. Every write
 * transaction starts with BEGIN IMMEDIATE so that the lock is taken (and
 * waited for) up front; a deferred transaction that upgrades from read to
 * write can fail with SQLITE_BUSY without the busy handler ever running.
 *
 * One connection per store, used by the store's single worker thread, with
 * every statement prepared once at open. */
#include "store/store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "seal/seal.h"
#include "store/store_sqlite_archive.h"
#include "store/store_sqlite_checkpoint.h"
#include "store/store_sqlite_data.h"
#include "store/store_sqlite_row.h"
#include "util/arena.h"
#include "util/log.h"
#include "util/xalloc.h"

#define STORE_SQLITE_FILE "roost.db"
#define STORE_SQLITE_BUSY_MS 5000

/* Bytes of StoredKey and ServerKey per enum scram_hash. The store does not
 * link the SASL code, so the digest sizes are spelled out here. */
static const size_t key_len[2] = { 20, 32 };
static const char *const hash_col[2] = { "sha1", "sha256" };

/* Each entry upgrades the schema from version i to i + 1. Append only:
 * a released migration is never edited. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE users ("
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" sha1_salt BLOB, sha1_iterations INTEGER,"
	" sha1_stored_key BLOB, sha1_server_key BLOB,"
	" sha256_salt BLOB, sha256_iterations INTEGER,"
	" sha256_stored_key BLOB, sha256_server_key BLOB,"
	" created INTEGER NOT NULL,"
	" PRIMARY KEY (local, domain)"
	") WITHOUT ROWID;"
	"CREATE INDEX users_domain ON users (domain, local);"
	"CREATE TABLE roster ("
	" owner TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" name TEXT,"
	" sub TEXT NOT NULL CHECK (sub IN ('none', 'to', 'from', 'both')),"
	" ask INTEGER NOT NULL DEFAULT 0,"
	" pending_in INTEGER NOT NULL DEFAULT 0,"
	" hidden INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (owner, contact)"
	") WITHOUT ROWID;"
	"CREATE TABLE roster_groups ("
	" owner TEXT NOT NULL,"
	" contact TEXT NOT NULL,"
	" grp TEXT NOT NULL,"
	" PRIMARY KEY (owner, contact, grp),"
	" FOREIGN KEY (owner, contact) REFERENCES roster (owner, contact)"
	"  ON DELETE CASCADE"
	") WITHOUT ROWID;"
	"CREATE TABLE roster_version ("
	" owner TEXT PRIMARY KEY NOT NULL,"
	" version INTEGER NOT NULL"
	") WITHOUT ROWID;"
	/* Roster versions come from one counter for the whole server, so a
	 * deleted and re-created account never repeats a version that a
	 * client may still hold (XEP-0237 would then skip the push). */
	"CREATE TABLE roster_seq ("
	" id INTEGER PRIMARY KEY CHECK (id = 0),"
	" value INTEGER NOT NULL"
	");"
	"INSERT INTO roster_seq (id, value) VALUES (0, 0);",
	/* 1 -> 2: the sealed offline store (DESIGN §5). Records carry no
	 * sender and no plaintext: both are inside ct. */
	"ALTER TABLE users ADD COLUMN sha1_mac BLOB;"
	"ALTER TABLE users ADD COLUMN sha256_mac BLOB;"
	"CREATE TABLE keyrings ("
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" blob BLOB NOT NULL,"
	" PRIMARY KEY (local, domain)"
	") WITHOUT ROWID;"
	"CREATE TABLE offline ("
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" stamp INTEGER NOT NULL,"
	" key_id INTEGER NOT NULL,"
	" epk BLOB NOT NULL,"
	" nonce BLOB NOT NULL,"
	" ct BLOB,"
	" ct_len INTEGER NOT NULL,"
	" chain BLOB NOT NULL,"
	" tomb BLOB"
	");"
	/* Not UNIQUE: a duplicated seq is tampering for the walk to report,
	 * not a constraint error that would hide the rest of the store. */
	"CREATE INDEX offline_user ON offline (local, domain, seq);",
	/* 2 -> 3: the sealed message archive (XEP-0313, DESIGN §5). As
	 * offline, plus the clear metadata filtering needs (counterpart's
	 * bare JID, stanza-id, direction) under the `meta` MAC. Queries walk
	 * the user's rows by seq and filter after the walk, so no stamp
	 * index: it would only slow the writes down. */
	"CREATE TABLE archive ("
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" seq INTEGER NOT NULL,"
	" stamp INTEGER NOT NULL,"
	" with_jid TEXT NOT NULL,"
	" stanza_id TEXT NOT NULL,"
	" dir INTEGER NOT NULL,"
	" key_id INTEGER NOT NULL,"
	" epk BLOB NOT NULL,"
	" nonce BLOB NOT NULL,"
	" ct BLOB,"
	" ct_len INTEGER NOT NULL,"
	" chain BLOB NOT NULL,"
	" tomb BLOB,"
	" meta BLOB NOT NULL"
	");"
	/* Neither is UNIQUE, for the reason given for offline_user. */
	"CREATE INDEX archive_user ON archive (local, domain, seq);"
	"CREATE INDEX archive_sid ON archive (local, domain, stanza_id);"
	"CREATE TABLE archive_prefs ("
	" local TEXT NOT NULL,"
	" domain TEXT NOT NULL,"
	" mode TEXT NOT NULL,"
	" always TEXT NOT NULL,"
	" never TEXT NOT NULL,"
	" mac BLOB NOT NULL,"
	" PRIMARY KEY (local, domain)"
	") WITHOUT ROWID;",
	/* 3 -> 4: per-user XML data (store_sqlite_data.c): PEP nodes and
	 * items, private XML, vCard, blocking list. `ord` orders the items
	 * of one space by their last write. */
	"CREATE TABLE user_data ("
	" owner TEXT NOT NULL,"
	" space TEXT NOT NULL,"
	" key TEXT NOT NULL,"
	" value BLOB NOT NULL,"
	" stamp INTEGER NOT NULL,"
	" ord INTEGER NOT NULL,"
	" PRIMARY KEY (owner, space, key)"
	") WITHOUT ROWID;"
	"CREATE INDEX user_data_order ON user_data (owner, space, ord);",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
	STMT_BEGIN_READ,
	STMT_BEGIN_WRITE,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_USER_GET,
	STMT_USER_CREATE,
	STMT_USER_SET_CREDS,
	STMT_USER_DELETE,
	STMT_USER_LIST,
	STMT_USER_LIST_DOMAIN,
	STMT_OWNER_GROUPS_DELETE,
	STMT_OWNER_ROSTER_DELETE,
	STMT_OWNER_VERSION_DELETE,
	STMT_ROSTER_GET,
	STMT_ROSTER_GROUPS_GET,
	STMT_ROSTER_VERSION_GET,
	STMT_ROSTER_UPSERT,
	STMT_ROSTER_GROUPS_CLEAR,
	STMT_ROSTER_GROUP_ADD,
	STMT_ROSTER_REMOVE,
	STMT_ROSTER_SEQ_BUMP,
	STMT_ROSTER_VERSION_SET,
	STMT_OWNER_KEYRING_DELETE,
	STMT_OWNER_OFFLINE_DELETE,
	STMT_KEYRING_GET,
	STMT_KEYRING_PUT,
	STMT_OFFLINE_LIST,
	STMT_OFFLINE_INSERT,
	STMT_OFFLINE_WIPE,
	STMT_OFFLINE_DELETE,
	STMT_OWNER_ARCHIVE_DELETE,
	STMT_OWNER_ARCHIVE_PREFS_DELETE,
	STMT_ARCHIVE_LIST,
	STMT_ARCHIVE_INSERT,
	STMT_ARCHIVE_WIPE,
	STMT_ARCHIVE_DELETE,
	STMT_ARCHIVE_HAS_ID,
	STMT_ARCHIVE_PREFS_GET,
	STMT_ARCHIVE_PREFS_PUT,
	STMT_ROSTER_HAS,
	STMT_COUNT
};

#define CREDS_COLS(h) \
	h "_salt, " h "_iterations, " h "_stored_key, " h "_server_key"

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN_READ] = "BEGIN",
	[STMT_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_USER_GET] =
		"SELECT " CREDS_COLS("u.sha1") ", " CREDS_COLS("u.sha256") ","
		" u.sha1_mac, u.sha256_mac, k.blob"
		" FROM users u LEFT JOIN keyrings k"
		" ON k.local = u.local AND k.domain = u.domain"
		" WHERE u.local = ?1 AND u.domain = ?2",
	[STMT_USER_CREATE] =
		"INSERT INTO users (local, domain, " CREDS_COLS("sha1") ", "
		CREDS_COLS("sha256") ", sha1_mac, sha256_mac, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		" ON CONFLICT (local, domain) DO NOTHING",
	[STMT_USER_SET_CREDS] =
		"UPDATE users SET sha1_salt = ?3, sha1_iterations = ?4,"
		" sha1_stored_key = ?5, sha1_server_key = ?6,"
		" sha256_salt = ?7, sha256_iterations = ?8,"
		" sha256_stored_key = ?9, sha256_server_key = ?10,"
		" sha1_mac = ?11, sha256_mac = ?12"
		" WHERE local = ?1 AND domain = ?2",
	[STMT_USER_DELETE] =
		"DELETE FROM users WHERE local = ?1 AND domain = ?2",
	/* Sorted as printed: "a@x" and "a.b@x" order differently by
	 * localpart than by JID. */
	[STMT_USER_LIST] =
		"SELECT local || '@' || domain AS jid FROM users ORDER BY jid",
	[STMT_USER_LIST_DOMAIN] =
		"SELECT local || '@' || domain AS jid FROM users"
		" WHERE domain = ?1 ORDER BY jid",
	[STMT_OWNER_GROUPS_DELETE] =
		"DELETE FROM roster_groups WHERE owner = ?1",
	[STMT_OWNER_ROSTER_DELETE] =
		"DELETE FROM roster WHERE owner = ?1",
	[STMT_OWNER_VERSION_DELETE] =
		"DELETE FROM roster_version WHERE owner = ?1",
	[STMT_ROSTER_GET] =
		"SELECT contact, name, sub, ask, pending_in, hidden FROM roster"
		" WHERE owner = ?1 ORDER BY contact",
	[STMT_ROSTER_GROUPS_GET] =
		"SELECT contact, grp FROM roster_groups WHERE owner = ?1"
		" ORDER BY contact, grp",
	[STMT_ROSTER_VERSION_GET] =
		"SELECT version FROM roster_version WHERE owner = ?1",
	[STMT_ROSTER_UPSERT] =
		"INSERT INTO roster (owner, contact, name, sub, ask, pending_in,"
		" hidden) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (owner, contact) DO UPDATE SET"
		" name = excluded.name, sub = excluded.sub, ask = excluded.ask,"
		" pending_in = excluded.pending_in, hidden = excluded.hidden",
	[STMT_ROSTER_GROUPS_CLEAR] =
		"DELETE FROM roster_groups WHERE owner = ?1 AND contact = ?2",
	/* OR IGNORE: a client may repeat a group name in one item. */
	[STMT_ROSTER_GROUP_ADD] =
		"INSERT OR IGNORE INTO roster_groups (owner, contact, grp)"
		" VALUES (?1, ?2, ?3)",
	[STMT_ROSTER_REMOVE] =
		"DELETE FROM roster WHERE owner = ?1 AND contact = ?2",
	[STMT_ROSTER_SEQ_BUMP] =
		"UPDATE roster_seq SET value = value + 1 WHERE id = 0"
		" RETURNING value",
	[STMT_ROSTER_VERSION_SET] =
		"INSERT INTO roster_version (owner, version) VALUES (?1, ?2)"
		" ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
	[STMT_OWNER_KEYRING_DELETE] =
		"DELETE FROM keyrings WHERE local = ?1 AND domain = ?2",
	[STMT_OWNER_OFFLINE_DELETE] =
		"DELETE FROM offline WHERE local = ?1 AND domain = ?2",
	[STMT_KEYRING_GET] =
		"SELECT blob FROM keyrings WHERE local = ?1 AND domain = ?2",
	[STMT_KEYRING_PUT] =
		"INSERT INTO keyrings (local, domain, blob) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (local, domain) DO UPDATE SET blob = excluded.blob",
	[STMT_OFFLINE_LIST] =
		"SELECT seq, stamp, key_id, epk, nonce, ct, ct_len, chain, tomb"
		" FROM offline WHERE local = ?1 AND domain = ?2"
		" ORDER BY seq, rowid",
	[STMT_OFFLINE_INSERT] =
		"INSERT INTO offline (local, domain, seq, stamp, key_id, epk,"
		" nonce, ct, ct_len, chain, tomb)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL)",
	[STMT_OFFLINE_WIPE] =
		"UPDATE offline SET ct = NULL, tomb = ?4"
		" WHERE local = ?1 AND domain = ?2 AND seq = ?3",
	[STMT_OFFLINE_DELETE] =
		"DELETE FROM offline WHERE local = ?1 AND domain = ?2 AND seq <= ?3",
	[STMT_OWNER_ARCHIVE_DELETE] =
		"DELETE FROM archive WHERE local = ?1 AND domain = ?2",
	[STMT_OWNER_ARCHIVE_PREFS_DELETE] =
		"DELETE FROM archive_prefs WHERE local = ?1 AND domain = ?2",
	[STMT_ARCHIVE_LIST] =
		"SELECT seq, stamp, key_id, epk, nonce, ct, ct_len, chain, tomb,"
		" with_jid, stanza_id, dir, meta"
		" FROM archive WHERE local = ?1 AND domain = ?2"
		" ORDER BY seq, rowid",
	[STMT_ARCHIVE_INSERT] =
		"INSERT INTO archive (local, domain, seq, stamp, key_id, epk,"
		" nonce, ct, ct_len, chain, tomb, with_jid, stanza_id, dir, meta)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, ?12,"
		" ?13, ?14)",
	[STMT_ARCHIVE_WIPE] =
		"UPDATE archive SET ct = NULL, tomb = ?4"
		" WHERE local = ?1 AND domain = ?2 AND seq = ?3",
	[STMT_ARCHIVE_DELETE] =
		"DELETE FROM archive WHERE local = ?1 AND domain = ?2 AND seq <= ?3",
	[STMT_ARCHIVE_HAS_ID] =
		"SELECT 1 FROM archive"
		" WHERE local = ?1 AND domain = ?2 AND stanza_id = ?3 LIMIT 1",
	[STMT_ARCHIVE_PREFS_GET] =
		"SELECT mode, always, never, mac FROM archive_prefs"
		" WHERE local = ?1 AND domain = ?2",
	[STMT_ARCHIVE_PREFS_PUT] =
		"INSERT INTO archive_prefs (local, domain, mode, always, never, mac)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (local, domain) DO UPDATE SET mode = excluded.mode,"
		" always = excluded.always, never = excluded.never,"
		" mac = excluded.mac",
	[STMT_ROSTER_HAS] =
		"SELECT 1 FROM roster WHERE owner = ?1 AND contact = ?2"
		" AND hidden = 0",
};

static const char *const sub_names[] = { "none", "to", "from", "both" };

struct sqlite_store {
	struct store api;
	sqlite3 *db;
	sqlite3_stmt *stmts[STMT_COUNT];
	struct sqlite_data *data;   /* store_sqlite_data.c */
	struct sqlite_arc *arc;     /* store_sqlite_archive.c */
	struct sqlite_ckpt *ckpt;   /* store_sqlite_checkpoint.c */
};

static struct sqlite_store *sqlite_store(struct store *st)
{
	return (struct sqlite_store *)st;
}

/* Logs the connection's detailed message (which is only valid until the
 * next call on it) and hands the caller SQLite's static text for rc. */
static int db_error(struct sqlite_store *s, int rc, const char *what,
		    const char **error_r)
{
	log_warn("store: sqlite: %s: %s", what, sqlite3_errmsg(s->db));
	*error_r = sqlite3_errstr(rc);
	return -1;
}

/* Every statement is reset right after use so that it holds no read
 * snapshot and no lock between requests. */
static sqlite3_stmt *stmt_get(struct sqlite_store *s, enum stmt_id id)
{
	return s->stmts[id];
}

static void bind_text(sqlite3_stmt *stmt, int col, const char *text)
{
	/* SQLITE_STATIC: the job's copy outlives the statement's use. */
	if (text == NULL)
		sqlite3_bind_null(stmt, col);
	else
		sqlite3_bind_text(stmt, col, text, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(struct sqlite_store *s, enum stmt_id id,
		     const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, id);
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_error(s, rc, stmt_sql[id], error_r);
	return 0;
}

static int tx_begin(struct sqlite_store *s, bool write, const char **error_r)
{
	return exec_stmt(s, write ? STMT_BEGIN_WRITE : STMT_BEGIN_READ,
			 error_r);
}

static int tx_commit(struct sqlite_store *s, const char **error_r)
{
	return exec_stmt(s, STMT_COMMIT, error_r);
}

static void tx_rollback(struct sqlite_store *s)
{
	const char *error;

	/* Some errors (SQLITE_FULL, SQLITE_IOERR...) already rolled back. */
	if (!sqlite3_get_autocommit(s->db))
		(void)exec_stmt(s, STMT_ROLLBACK, &error);
}

/* ---- users ---- */

static int read_creds(sqlite3_stmt *stmt, int col, enum scram_hash h,
		      struct scram_creds *c)
{
	const void *salt, *stored, *server;
	int salt_len, stored_len, server_len;
	sqlite3_int64 iter;

	memset(c, 0, sizeof(*c));
	/* No credentials for this hash (e.g. an imported account): the
	 * caller sees salt_len 0 and does not offer that mechanism. */
	if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
		return 0;
	salt = sqlite3_column_blob(stmt, col);
	salt_len = sqlite3_column_bytes(stmt, col);
	iter = sqlite3_column_int64(stmt, col + 1);
	stored = sqlite3_column_blob(stmt, col + 2);
	stored_len = sqlite3_column_bytes(stmt, col + 2);
	server = sqlite3_column_blob(stmt, col + 3);
	server_len = sqlite3_column_bytes(stmt, col + 3);
	if (salt_len <= 0 || (size_t)salt_len > sizeof(c->salt) ||
	    iter <= 0 || iter > UINT_MAX ||
	    stored == NULL || (size_t)stored_len != key_len[h] ||
	    server == NULL || (size_t)server_len != key_len[h])
		return -1;
	memcpy(c->salt, salt, (size_t)salt_len);
	c->salt_len = (size_t)salt_len;
	c->iterations = (unsigned)iter;
	memcpy(c->stored_key, stored, key_len[h]);
	memcpy(c->server_key, server, key_len[h]);
	return 0;
}

static int sqlite_user_get(struct store *st, const char *local,
			   const char *domain, struct arena *pool,
			   struct store_user *user_r, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_USER_GET);
	const unsigned char *macs[2] = { NULL, NULL };
	int rc, ret = -1;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = db_error(s, rc, "user_get", error_r);
		goto out;
	}
	memset(user_r, 0, sizeof(*user_r));
	user_r->local = arena_strdup(pool, local);
	user_r->domain = arena_strdup(pool, domain);
	for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++) {
		if (read_creds(stmt, h * 4, (enum scram_hash)h,
			       &user_r->creds[h]) < 0) {
			log_warn("store: sqlite: %s@%s: malformed %s credentials",
				 local, domain, hash_col[h]);
			*error_r = "malformed credentials in the store";
			goto out;
		}
		macs[h] = sqlite3_column_bytes(stmt, 8 + h) == 32
			? sqlite3_column_blob(stmt, 8 + h) : NULL;
	}
	store_cred_verify(st, user_r, macs);
	if (sqlite3_column_type(stmt, 10) == SQLITE_BLOB) {
		int n = sqlite3_column_bytes(stmt, 10);
		void *blob = arena_alloc(pool, (size_t)n + 1);
		memcpy(blob, sqlite3_column_blob(stmt, 10), (size_t)n);
		user_r->keyring = blob;
		user_r->keyring_len = (size_t)n;
	}
	ret = 1;
out:
	sqlite3_reset(stmt);
	return ret;
}

/* Binds the eight credential columns starting at parameter `col`. */
static void bind_creds(sqlite3_stmt *stmt, int col,
		       const struct store_user *user)
{
	for (int h = SCRAM_SHA1; h <= SCRAM_SHA256; h++, col += 4) {
		const struct scram_creds *c = &user->creds[h];

		if (c->salt_len == 0 || c->salt_len > sizeof(c->salt)) {
			for (int i = 0; i < 4; i++)
				sqlite3_bind_null(stmt, col + i);
			continue;
		}
		sqlite3_bind_blob(stmt, col, c->salt, (int)c->salt_len,
				  SQLITE_STATIC);
		sqlite3_bind_int64(stmt, col + 1, c->iterations);
		sqlite3_bind_blob(stmt, col + 2, c->stored_key,
				  (int)key_len[h], SQLITE_STATIC);
		sqlite3_bind_blob(stmt, col + 3, c->server_key,
				  (int)key_len[h], SQLITE_STATIC);
	}
}

static int keyring_write(struct sqlite_store *s, const char *local,
			 const char *domain, const void *blob, size_t len,
			 const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, STMT_KEYRING_PUT);

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	sqlite3_bind_blob(stmt, 3, blob, (int)len, SQLITE_STATIC);
	return exec_stmt(s, STMT_KEYRING_PUT, error_r);
}

/* Inserts (STMT_USER_CREATE) or updates (STMT_USER_SET_CREDS) the
 * credentials and their MACs, in the caller's transaction. Returns 0, 1
 * when no row was inserted (it exists) or updated (no such user), -1. */
static int user_write_row(struct sqlite_store *s, enum stmt_id id,
			  const struct store_user *user, const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, id);
	unsigned char macs[2][32];
	bool have_macs = store_cred_macs(&s->api, user, macs) == 0;
	int rc;

	bind_text(stmt, 1, user->local);
	bind_text(stmt, 2, user->domain);
	bind_creds(stmt, 3, user);
	for (int h = 0; h < 2; h++) {
		if (have_macs && user->creds[h].salt_len > 0)
			sqlite3_bind_blob(stmt, 11 + h, macs[h], 32, SQLITE_STATIC);
		else
			sqlite3_bind_null(stmt, 11 + h);
	}
	if (id == STMT_USER_CREATE)
		sqlite3_bind_int64(stmt, 13, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	/* The bound keys are copied into SQLite's page cache anyway, but
	 * do not leave extra pointers to them in the statement. */
	sqlite3_clear_bindings(stmt);
	if (rc != SQLITE_DONE)
		return db_error(s, rc, stmt_sql[id], error_r);
	/* No row inserted (ON CONFLICT DO NOTHING) or updated. */
	return sqlite3_changes(s->db) == 0 ? 1 : 0;
}

/* The credentials, their MACs and (if given) the keyring in one
 * transaction: a crash must never leave a password without its keyring. */
static int sqlite_user_write(struct sqlite_store *s, enum stmt_id id,
			     const struct store_user *user,
			     const char **error_r)
{
	int ret;

	if (tx_begin(s, true, error_r) < 0)
		return -1;
	ret = user_write_row(s, id, user, error_r);
	if (ret != 0)
		goto rollback;
	ret = -1;
	if (user->keyring != NULL &&
	    keyring_write(s, user->local, user->domain, user->keyring,
			  user->keyring_len, error_r) < 0)
		goto rollback;
	if (tx_commit(s, error_r) < 0)
		goto rollback;
	return 0;
rollback:
	tx_rollback(s);
	return ret;
}

static int sqlite_user_create(struct store *st, const struct store_user *user,
			      const char **error_r)
{
	return sqlite_user_write(sqlite_store(st), STMT_USER_CREATE, user,
				 error_r);
}

static int sqlite_user_set_creds(struct store *st,
				 const struct store_user *user,
				 const char **error_r)
{
	return sqlite_user_write(sqlite_store(st), STMT_USER_SET_CREDS, user,
				 error_r);
}

/* Deletes the users row (*existed_r: it was there) and every row the
 * account owns, in the caller's transaction. Each table that names an
 * account as its owner must be listed here: an account removed in-band
 * leaves no row of its own behind (XEP-0077 §3.2). Rows of OTHER owners
 * that name it (their roster items, their archives' counterpart) stay. */
static int delete_account(struct sqlite_store *s, const char *local,
			  const char *domain, bool *existed_r,
			  const char **error_r)
{
	static const enum stmt_id owned[] = {
		STMT_OWNER_GROUPS_DELETE, STMT_OWNER_ROSTER_DELETE,
		STMT_OWNER_VERSION_DELETE,
	};
	static const enum stmt_id owned_split[] = {
		STMT_OWNER_KEYRING_DELETE, STMT_OWNER_OFFLINE_DELETE,
		STMT_OWNER_ARCHIVE_DELETE, STMT_OWNER_ARCHIVE_PREFS_DELETE,
	};
	sqlite3_stmt *stmt = stmt_get(s, STMT_USER_DELETE);
	char *owner = xasprintf("%s@%s", local, domain);
	int ret = -1;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	if (exec_stmt(s, STMT_USER_DELETE, error_r) < 0)
		goto out;
	*existed_r = sqlite3_changes(s->db) > 0;
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		bind_text(stmt_get(s, owned[i]), 1, owner);
		if (exec_stmt(s, owned[i], error_r) < 0)
			goto out;
	}
	for (size_t i = 0; i < sizeof(owned_split) / sizeof(owned_split[0]); i++) {
		bind_text(stmt_get(s, owned_split[i]), 1, local);
		bind_text(stmt_get(s, owned_split[i]), 2, domain);
		if (exec_stmt(s, owned_split[i], error_r) < 0)
			goto out;
	}
	if (sqlite_data_delete_owner(s->data, owner, error_r) < 0)
		goto out;
	ret = 0;
out:
	free(owner);
	return ret;
}

static int sqlite_user_delete(struct store *st, const char *local,
			      const char *domain, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	bool existed = false;

	if (tx_begin(s, true, error_r) < 0)
		return -1;
	if (delete_account(s, local, domain, &existed, error_r) < 0)
		goto rollback;
	if (!existed) {
		tx_rollback(s);
		return 1;
	}
	if (tx_commit(s, error_r) < 0)
		goto rollback;
	return 0;
rollback:
	tx_rollback(s);
	return -1;
}

static int sqlite_user_put_creds(struct store *st,
				 const struct store_user *user,
				 const char **error_r)
{
	return user_write_row(sqlite_store(st), STMT_USER_SET_CREDS, user,
			      error_r);
}

static int sqlite_user_purge(struct store *st, const char *local,
			     const char *domain, bool *existed_r,
			     const char **error_r)
{
	return delete_account(sqlite_store(st), local, domain, existed_r,
			      error_r);
}

static int sqlite_user_list(struct store *st, const char *domain,
			    struct arena *pool, const char *const **jids_r,
			    size_t *n_r, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	enum stmt_id id = domain ? STMT_USER_LIST_DOMAIN : STMT_USER_LIST;
	sqlite3_stmt *stmt = stmt_get(s, id);
	const char **jids = NULL, **out;
	size_t n = 0, cap = 0;
	int rc, ret = -1;

	if (domain != NULL)
		bind_text(stmt, 1, domain);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		jids = xgrow(jids, &cap, n + 1, sizeof(*jids));
		jids[n++] = arena_strdup(pool,
			(const char *)sqlite3_column_text(stmt, 0));
	}
	if (rc != SQLITE_DONE) {
		ret = db_error(s, rc, "user_list", error_r);
		goto out;
	}
	out = arena_alloc(pool, (n ? n : 1) * sizeof(*out));
	if (n > 0)
		memcpy(out, jids, n * sizeof(*out));
	*jids_r = out;
	*n_r = n;
	ret = 0;
out:
	sqlite3_reset(stmt);
	free(jids);
	return ret;
}

/* ---- roster ---- */

static int version_get(struct sqlite_store *s, const char *owner,
		       uint64_t *version_r, const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, STMT_ROSTER_VERSION_GET);
	int rc, ret = 0;

	bind_text(stmt, 1, owner);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*version_r = (uint64_t)sqlite3_column_int64(stmt, 0);
	else if (rc == SQLITE_DONE)
		*version_r = 0;
	else
		ret = db_error(s, rc, "roster version", error_r);
	sqlite3_reset(stmt);
	return ret;
}

/* Inside a write transaction: gives owner's roster the next version. */
static int version_bump(struct sqlite_store *s, const char *owner,
			uint64_t *version_r, const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, STMT_ROSTER_SEQ_BUMP);
	sqlite3_int64 v;
	int rc;

	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(stmt);
		return db_error(s, rc, "roster sequence", error_r);
	}
	v = sqlite3_column_int64(stmt, 0);
	/* Step to the end so the UPDATE is complete before the reset. */
	rc = sqlite3_step(stmt);
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE)
		return db_error(s, rc, "roster sequence", error_r);

	stmt = stmt_get(s, STMT_ROSTER_VERSION_SET);
	bind_text(stmt, 1, owner);
	sqlite3_bind_int64(stmt, 2, v);
	if (exec_stmt(s, STMT_ROSTER_VERSION_SET, error_r) < 0)
		return -1;
	*version_r = (uint64_t)v;
	return 0;
}

static const char *column_dup(sqlite3_stmt *stmt, int col, struct arena *pool)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	if (t == NULL)
		return NULL;
	return arena_strndup(pool, (const char *)t,
			     (size_t)sqlite3_column_bytes(stmt, col));
}

static enum roster_sub sub_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(sub_names) / sizeof(sub_names[0]); i++)
		if (strcmp(s, sub_names[i]) == 0)
			return (enum roster_sub)i;
	return ROSTER_SUB_NONE; /* the CHECK constraint prevents this */
}

static int sqlite_roster_get(struct store *st, const char *owner,
			     struct arena *pool,
			     const struct roster_item **items_r, size_t *n_r,
			     uint64_t *version_r, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	struct roster_item *items = NULL, *out;
	const char **groups = NULL, **gout = NULL;
	size_t n = 0, cap = 0, ngroups = 0, gcap = 0, i;
	sqlite3_stmt *stmt;
	int rc, ret = -1;

	/* One read transaction: items, groups and version from one
	 * snapshot. */
	if (tx_begin(s, false, error_r) < 0)
		goto out;

	stmt = stmt_get(s, STMT_ROSTER_GET);
	bind_text(stmt, 1, owner);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct roster_item *it;

		items = xgrow(items, &cap, n + 1, sizeof(*items));
		it = &items[n++];
		memset(it, 0, sizeof(*it));
		it->jid = column_dup(stmt, 0, pool);
		it->name = column_dup(stmt, 1, pool);
		it->sub = sub_parse((const char *)sqlite3_column_text(stmt, 2));
		it->ask = sqlite3_column_int(stmt, 3) != 0;
		it->pending_in = sqlite3_column_int(stmt, 4) != 0;
		it->hidden = sqlite3_column_int(stmt, 5) != 0;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		db_error(s, rc, "roster_get", error_r);
		goto rollback;
	}

	/* Groups come sorted by contact like the items, so each item's
	 * groups are one contiguous run of the array. */
	stmt = stmt_get(s, STMT_ROSTER_GROUPS_GET);
	bind_text(stmt, 1, owner);
	i = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *contact = (const char *)sqlite3_column_text(stmt, 0);

		while (i < n && strcmp(items[i].jid, contact) < 0)
			i++;
		if (i == n || strcmp(items[i].jid, contact) != 0)
			continue; /* the foreign key prevents this */
		groups = xgrow(groups, &gcap, ngroups + 1, sizeof(*groups));
		groups[ngroups++] = column_dup(stmt, 1, pool);
		items[i].ngroups++;
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		db_error(s, rc, "roster_get groups", error_r);
		goto rollback;
	}

	if (version_get(s, owner, version_r, error_r) < 0)
		goto rollback;
	if (tx_commit(s, error_r) < 0)
		goto rollback;

	if (ngroups > 0) {
		gout = arena_alloc(pool, ngroups * sizeof(*gout));
		memcpy(gout, groups, ngroups * sizeof(*gout));
	}
	out = arena_alloc(pool, (n ? n : 1) * sizeof(*out));
	for (i = 0, ngroups = 0; i < n; i++) {
		out[i] = items[i];
		if (items[i].ngroups > 0)
			out[i].groups = gout + ngroups;
		ngroups += items[i].ngroups;
	}
	*items_r = out;
	*n_r = n;
	ret = 0;
	goto out;
rollback:
	tx_rollback(s);
out:
	free(items);
	free(groups);
	return ret;
}

static int sqlite_roster_put(struct store *st, const char *owner,
			     const struct roster_item *item,
			     uint64_t *version_r, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt;
	unsigned sub = (unsigned)item->sub;

	if (sub >= sizeof(sub_names) / sizeof(sub_names[0])) {
		*error_r = "invalid subscription state";
		return -1;
	}
	if (tx_begin(s, true, error_r) < 0)
		return -1;

	stmt = stmt_get(s, STMT_ROSTER_UPSERT);
	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, item->jid);
	bind_text(stmt, 3, item->name);
	bind_text(stmt, 4, sub_names[sub]);
	sqlite3_bind_int(stmt, 5, item->ask);
	sqlite3_bind_int(stmt, 6, item->pending_in);
	sqlite3_bind_int(stmt, 7, item->hidden);
	if (exec_stmt(s, STMT_ROSTER_UPSERT, error_r) < 0)
		goto rollback;

	stmt = stmt_get(s, STMT_ROSTER_GROUPS_CLEAR);
	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, item->jid);
	if (exec_stmt(s, STMT_ROSTER_GROUPS_CLEAR, error_r) < 0)
		goto rollback;

	stmt = stmt_get(s, STMT_ROSTER_GROUP_ADD);
	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, item->jid);
	for (size_t i = 0; i < item->ngroups; i++) {
		bind_text(stmt, 3, item->groups[i]);
		if (exec_stmt(s, STMT_ROSTER_GROUP_ADD, error_r) < 0)
			goto rollback;
	}

	if (version_bump(s, owner, version_r, error_r) < 0)
		goto rollback;
	if (tx_commit(s, error_r) < 0)
		goto rollback;
	return 0;
rollback:
	tx_rollback(s);
	return -1;
}

static int sqlite_roster_delete(struct store *st, const char *owner,
				const char *contact, uint64_t *version_r,
				const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt;

	if (tx_begin(s, true, error_r) < 0)
		return -1;
	/* Explicitly rather than by the cascade, so that correctness does
	 * not hang on PRAGMA foreign_keys. */
	stmt = stmt_get(s, STMT_ROSTER_GROUPS_CLEAR);
	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, contact);
	if (exec_stmt(s, STMT_ROSTER_GROUPS_CLEAR, error_r) < 0)
		goto rollback;
	stmt = stmt_get(s, STMT_ROSTER_REMOVE);
	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, contact);
	if (exec_stmt(s, STMT_ROSTER_REMOVE, error_r) < 0)
		goto rollback;
	/* Nothing changed: the version stays, so a client holding it does
	 * not refetch a roster that is the same. */
	if (sqlite3_changes(s->db) == 0) {
		if (version_get(s, owner, version_r, error_r) < 0)
			goto rollback;
	} else if (version_bump(s, owner, version_r, error_r) < 0) {
		goto rollback;
	}
	if (tx_commit(s, error_r) < 0)
		goto rollback;
	return 0;
rollback:
	tx_rollback(s);
	return -1;
}

/* ---- sealed store primitives (store_offline.c drives them) ---- */

static int sqlite_tx_begin(struct store *st, bool write, const char **error_r)
{
	return tx_begin(sqlite_store(st), write, error_r);
}

static int sqlite_tx_commit(struct store *st, const char **error_r)
{
	return tx_commit(sqlite_store(st), error_r);
}

static void sqlite_tx_rollback(struct store *st)
{
	tx_rollback(sqlite_store(st));
}

static int sqlite_keyring_get(struct store *st, const char *local,
			      const char *domain, struct arena *pool,
			      const void **blob_r, size_t *len_r,
			      const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_KEYRING_GET);
	int rc, ret;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		int n = sqlite3_column_bytes(stmt, 0);
		void *blob = arena_alloc(pool, (size_t)n + 1);
		if (n > 0)
			memcpy(blob, sqlite3_column_blob(stmt, 0), (size_t)n);
		*blob_r = blob;
		*len_r = (size_t)n;
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = db_error(s, rc, "keyring_get", error_r);
	}
	sqlite3_reset(stmt);
	return ret;
}

static int sqlite_keyring_put(struct store *st, const char *local,
			      const char *domain, const void *blob, size_t len,
			      const char **error_r)
{
	return keyring_write(sqlite_store(st), local, domain, blob, len,
			     error_r);
}

static int sqlite_offline_list(struct store *st, const char *local,
			       const char *domain, struct seal_record **recs_r,
			       size_t *n_r, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_OFFLINE_LIST);
	struct seal_record *recs = NULL;
	size_t n = 0, cap = 0;
	int rc;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		recs = xgrow(recs, &cap, n + 1, sizeof(*recs));
		sqlite_record_read(stmt, &recs[n++]);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			seal_record_clear(&recs[i]);
		free(recs);
		return db_error(s, rc, "offline_list", error_r);
	}
	*recs_r = recs;
	*n_r = n;
	return 0;
}

/* ?1 .. ?10 of an insert into the offline store or the archive: the
 * owner, then the record's columns up to chain (tomb is set by a wipe). */
static void bind_record(sqlite3_stmt *stmt, const char *local,
			const char *domain, const struct seal_record *r)
{
	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)r->seq);
	sqlite3_bind_int64(stmt, 4, r->stamp);
	sqlite3_bind_int64(stmt, 5, r->key_id);
	sqlite3_bind_blob(stmt, 6, r->epk, sizeof(r->epk), SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 7, r->nonce, sizeof(r->nonce), SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 8, r->ct, (int)r->ct_len, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 9, (sqlite3_int64)r->ct_len);
	sqlite3_bind_blob(stmt, 10, r->chain, sizeof(r->chain), SQLITE_STATIC);
}

/* The wipe and the compaction of a sealed store's rows (the offline
 * store and the archive share their shape): `id` picks the table. */
static int wipe_row(struct store *st, enum stmt_id id, const char *local,
		    const char *domain, uint64_t seq,
		    const unsigned char tomb[32], const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, id);

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)seq);
	sqlite3_bind_blob(stmt, 4, tomb, 32, SQLITE_STATIC);
	return exec_stmt(s, id, error_r);
}

static int delete_upto(struct store *st, enum stmt_id id, const char *local,
		       const char *domain, uint64_t upto, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, id);

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	sqlite3_bind_int64(stmt, 3, upto > INT64_MAX ? INT64_MAX : (sqlite3_int64)upto);
	return exec_stmt(s, id, error_r);
}

static int sqlite_offline_insert(struct store *st, const char *local,
				 const char *domain,
				 const struct seal_record *r,
				 const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_OFFLINE_INSERT);

	bind_record(stmt, local, domain, r);
	return exec_stmt(s, STMT_OFFLINE_INSERT, error_r);
}

static int sqlite_offline_wipe(struct store *st, const char *local,
			       const char *domain, uint64_t seq,
			       const unsigned char tomb[32],
			       const char **error_r)
{
	return wipe_row(st, STMT_OFFLINE_WIPE, local, domain, seq, tomb,
			error_r);
}

static int sqlite_offline_delete(struct store *st, const char *local,
				 const char *domain, uint64_t upto,
				 const char **error_r)
{
	return delete_upto(st, STMT_OFFLINE_DELETE, local, domain, upto,
			   error_r);
}

/* ---- the archive's primitives (store_archive.c drives them) ---- */

static int sqlite_archive_list(struct store *st, const char *local,
			       const char *domain,
			       struct store_archive_row **rows_r, size_t *n_r,
			       const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ARCHIVE_LIST);
	struct store_archive_row *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		rows = xgrow(rows, &cap, n + 1, sizeof(*rows));
		sqlite_archive_row_read(stmt, &rows[n++]);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		store_archive_rows_free(rows, n);
		return db_error(s, rc, "archive_list", error_r);
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

static int sqlite_archive_insert(struct store *st, const char *local,
				 const char *domain,
				 const struct store_archive_row *row,
				 const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ARCHIVE_INSERT);
	const struct seal_record *r = &row->rec;

	bind_record(stmt, local, domain, r);
	bind_text(stmt, 11, row->with);
	bind_text(stmt, 12, row->stanza_id);
	sqlite3_bind_int(stmt, 13, row->outgoing ? 1 : 0);
	sqlite3_bind_blob(stmt, 14, row->meta, sizeof(row->meta), SQLITE_STATIC);
	return exec_stmt(s, STMT_ARCHIVE_INSERT, error_r);
}

static int sqlite_archive_wipe(struct store *st, const char *local,
			       const char *domain, uint64_t seq,
			       const unsigned char tomb[32],
			       const char **error_r)
{
	return wipe_row(st, STMT_ARCHIVE_WIPE, local, domain, seq, tomb,
			error_r);
}

static int sqlite_archive_delete(struct store *st, const char *local,
				 const char *domain, uint64_t upto,
				 const char **error_r)
{
	return delete_upto(st, STMT_ARCHIVE_DELETE, local, domain, upto,
			   error_r);
}

/* Runs a statement that returns at most one row: 1 row, 0 none, -1. */
static int exists_stmt(struct sqlite_store *s, enum stmt_id id,
		       const char **error_r)
{
	sqlite3_stmt *stmt = stmt_get(s, id);
	int rc = sqlite3_step(stmt);

	sqlite3_reset(stmt);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_error(s, rc, stmt_sql[id], error_r);
}

static int sqlite_archive_has_id(struct store *st, const char *local,
				 const char *domain, const char *stanza_id,
				 const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ARCHIVE_HAS_ID);

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	bind_text(stmt, 3, stanza_id);
	return exists_stmt(s, STMT_ARCHIVE_HAS_ID, error_r);
}

static int sqlite_roster_has(struct store *st, const char *owner,
			     const char *contact, const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ROSTER_HAS);

	bind_text(stmt, 1, owner);
	bind_text(stmt, 2, contact);
	return exists_stmt(s, STMT_ROSTER_HAS, error_r);
}

static int sqlite_archive_prefs_get(struct store *st, const char *local,
				    const char *domain, struct arena *pool,
				    struct store_prefs_row *row_r,
				    const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ARCHIVE_PREFS_GET);
	int rc, ret = 0;

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		const char *v[3];
		for (int i = 0; i < 3; i++) {
			const unsigned char *t = sqlite3_column_text(stmt, i);
			v[i] = arena_strdup(pool, t ? (const char *)t : "");
		}
		row_r->mode = v[0];
		row_r->always = v[1];
		row_r->never = v[2];
		sqlite_column_fixed(stmt, 3, row_r->mac, sizeof(row_r->mac));
		ret = 1;
	} else if (rc != SQLITE_DONE) {
		ret = db_error(s, rc, "archive_prefs_get", error_r);
	}
	sqlite3_reset(stmt);
	return ret;
}

static int sqlite_archive_prefs_put(struct store *st, const char *local,
				    const char *domain,
				    const struct store_prefs_row *row,
				    const char **error_r)
{
	struct sqlite_store *s = sqlite_store(st);
	sqlite3_stmt *stmt = stmt_get(s, STMT_ARCHIVE_PREFS_PUT);

	bind_text(stmt, 1, local);
	bind_text(stmt, 2, domain);
	bind_text(stmt, 3, row->mode);
	bind_text(stmt, 4, row->always);
	bind_text(stmt, 5, row->never);
	sqlite3_bind_blob(stmt, 6, row->mac, sizeof(row->mac), SQLITE_STATIC);
	return exec_stmt(s, STMT_ARCHIVE_PREFS_PUT, error_r);
}

/* ---- open and close ---- */

/* mkdir -p; directories it creates are private to the server's user. */
static int mkdir_private(const char *path, char **error_r)
{
	char *p = xstrdup(path);
	int ret = -1;

	if (*p == '\0') {
		*error_r = xstrdup("empty data directory");
		goto out;
	}
	for (char *slash = p + 1;; slash++) {
		if (*slash != '/' && *slash != '\0')
			continue;
		char c = *slash;
		*slash = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			*error_r = xasprintf("mkdir %s: %s", p, strerror(errno));
			goto out;
		}
		*slash = c;
		if (c == '\0')
			break;
	}
	ret = 0;
out:
	free(p);
	return ret;
}

static int check_wal(void *arg, int ncols, char **values, char **names)
{
	bool *wal = arg;

	*wal = ncols == 1 && values[0] != NULL &&
		strcmp(values[0], "wal") == 0;
	return 0;
}

static int exec_sql(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*error_r = xasprintf("sqlite: %s", msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int user_version(sqlite3 *db, int *version_r, char **error_r)
{
	sqlite3_stmt *stmt;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt,
			       NULL) != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_ROW)
		return 0;
fail:
	*error_r = xasprintf("sqlite: reading the schema version: %s",
			     sqlite3_errmsg(db));
	return -1;
}

/* Brings the schema to SCHEMA_VERSION. roostd and roostctl may open the
 * file at the same time: the version is read again under the write lock
 * so that only one of them migrates. */
static int migrate(sqlite3 *db, const char *path, char **error_r)
{
	int version;
	char *sql;

	if (user_version(db, &version, error_r) < 0)
		return -1;
	if (version == SCHEMA_VERSION)
		return 0;
	if (exec_sql(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (user_version(db, &version, error_r) < 0)
		goto rollback;
	if (version > SCHEMA_VERSION || version < 0) {
		*error_r = xasprintf("%s: schema version %d is newer than this "
				     "roost understands (%d)", path, version,
				     SCHEMA_VERSION);
		goto rollback;
	}
	for (; version < SCHEMA_VERSION; version++) {
		if (exec_sql(db, migrations[version], error_r) < 0)
			goto rollback;
		log_info("store: %s: schema upgraded to version %d", path,
			 version + 1);
	}
	sql = xasprintf("PRAGMA user_version = %d", SCHEMA_VERSION);
	if (exec_sql(db, sql, error_r) < 0) {
		free(sql);
		goto rollback;
	}
	free(sql);
	return exec_sql(db, "COMMIT", error_r);
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static void sqlite_close(struct store *st)
{
	struct sqlite_store *s = sqlite_store(st);

	if (s == NULL)
		return;
	sqlite_ckpt_stop(s->ckpt);
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite_data_free(s->data);
	sqlite_arc_free(s->arc);
	/* The last connection to close checkpoints and removes the WAL. */
	if (s->db != NULL && sqlite3_close(s->db) != SQLITE_OK)
		log_warn("store: sqlite: close: %s", sqlite3_errmsg(s->db));
	free(s);
}

static struct store *sqlite_open(const char *data_dir, char **error_r)
{
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	char *path = NULL, *ckpt_error = NULL;
	bool wal = false;
	int fd, rc;

	/* The connection moves between the opening thread, the worker and
	 * the closing thread, never used by two at once: that needs a
	 * thread-safe library but not its per-connection mutex. */
	if (!sqlite3_threadsafe()) {
		*error_r = xstrdup("sqlite: the library is built without "
				   "thread support");
		goto fail;
	}
	if (mkdir_private(data_dir, error_r) < 0)
		goto fail;
	path = xasprintf("%s/%s", data_dir, STORE_SQLITE_FILE);
	/* SQLite would create the file 0644; create it first so that
	 * accounts are never readable by others. The -wal and -shm files
	 * take the database file's mode. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);

	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*error_r = xasprintf("%s: %s", path, s->db ?
				     sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, STORE_SQLITE_BUSY_MS);

	if (sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", check_wal, &wal,
			 NULL) != SQLITE_OK || !wal) {
		*error_r = xasprintf("%s: cannot use WAL mode: %s", path,
				     sqlite3_errmsg(s->db));
		goto fail;
	}
	/* NORMAL: in WAL mode a crash loses at most the last commits since
	 * the last checkpoint's sync, never consistency. Checkpoints run on
	 * their own thread (store_sqlite_checkpoint.c); the automatic one,
	 * every 32768 pages (128 MiB of WAL) instead of 1000, is what stays
	 * if that thread cannot start: pages that every batch rewrites (each
	 * user's keyring row and index tails) are copied into the database
	 * once per checkpoint, so fewer checkpoints copy less. A 32 MiB page
	 * cache instead of 2 MiB: the hot pages of every active user's
	 * archive and keyring stay in memory instead of being read back from
	 * the WAL (with 200 users chatting, half the store thread's system
	 * time was pread). */
	if (exec_sql(s->db, "PRAGMA synchronous = NORMAL;"
			    "PRAGMA foreign_keys = ON;"
			    "PRAGMA wal_autocheckpoint = 32768;"
			    "PRAGMA cache_size = -32768;", error_r) < 0)
		goto fail;
	if (migrate(s->db, path, error_r) < 0)
		goto fail;

	for (int i = 0; i < STMT_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT,
					&s->stmts[i], NULL);
		if (rc != SQLITE_OK) {
			*error_r = xasprintf("sqlite: preparing \"%s\": %s",
					     stmt_sql[i], sqlite3_errmsg(s->db));
			goto fail;
		}
	}
	s->data = sqlite_data_new(s->db, error_r);
	if (s->data == NULL)
		goto fail;
	s->arc = sqlite_arc_new(s->db, error_r);
	if (s->arc == NULL)
		goto fail;
	s->ckpt = sqlite_ckpt_start(path, s->db, &ckpt_error);
	if (s->ckpt == NULL) {
		/* SQLite's automatic checkpoints (above) go on instead. */
		log_warn("store: %s", ckpt_error);
		free(ckpt_error);
	}
	free(path);
	return &s->api;
fail:
	free(path);
	sqlite_close(&s->api);
	return NULL;
}

/* ---- per-user data: store_sqlite_data.c on this connection ---- */

static int sqlite_data_get_op(struct store *st, const char *owner,
			      const char *space, const char *key,
			      struct arena *pool,
			      struct store_data_item **items_r, size_t *n_r,
			      const char **error_r)
{
	return sqlite_data_get(sqlite_store(st)->data, owner, space, key, pool,
			       items_r, n_r, error_r);
}

static int sqlite_data_list_op(struct store *st, const char *owner,
			       const char *space, size_t max,
			       struct arena *pool,
			       struct store_data_item **items_r, size_t *n_r,
			       const char **error_r)
{
	return sqlite_data_list(sqlite_store(st)->data, owner, space, max,
				pool, items_r, n_r, error_r);
}

static int sqlite_data_put_op(struct store *st, const char *owner,
			      const char *space, const char *key,
			      const void *value, size_t len, int64_t stamp_us,
			      size_t max_items, const char **error_r)
{
	return sqlite_data_put(sqlite_store(st)->data, owner, space, key,
			       value, len, stamp_us, max_items, error_r);
}

static int sqlite_data_delete_op(struct store *st, const char *owner,
				 const char *space, const char *key,
				 const char **error_r)
{
	return sqlite_data_delete(sqlite_store(st)->data, owner, space, key,
				  error_r);
}

static int sqlite_data_spaces_op(struct store *st, const char *owner,
				 const char *prefix, struct arena *pool,
				 struct store_data_item **items_r, size_t *n_r,
				 const char **error_r)
{
	return sqlite_data_spaces(sqlite_store(st)->data, owner, prefix, pool,
				  items_r, n_r, error_r);
}

static int sqlite_data_scan_op(struct store *st, const char *space,
			       struct arena *pool,
			       struct store_data_item **items_r, size_t *n_r,
			       const char **error_r)
{
	return sqlite_data_scan(sqlite_store(st)->data, space, pool, items_r,
				n_r, error_r);
}

/* ---- partial archive reads: store_sqlite_archive.c on this connection ---- */

static int sqlite_archive_seqs(struct store *st, const char *local,
			       const char *domain,
			       const struct store_archive_span *span, bool desc,
			       size_t max, uint64_t *seqs, size_t *n_r,
			       const char **error_r)
{
	return sqlite_arc_seqs(sqlite_store(st)->arc, local, domain, span, desc,
			       max, seqs, n_r, error_r);
}

static int sqlite_archive_count(struct store *st, const char *local,
				const char *domain,
				const struct store_archive_span *span,
				uint64_t *n_r, const char **error_r)
{
	return sqlite_arc_count(sqlite_store(st)->arc, local, domain, span, n_r,
				error_r);
}

static int sqlite_archive_range(struct store *st, const char *local,
				const char *domain, uint64_t lo, uint64_t hi,
				struct store_archive_row **rows_r, size_t *n_r,
				const char **error_r)
{
	return sqlite_arc_range(sqlite_store(st)->arc, local, domain, lo, hi,
				rows_r, n_r, error_r);
}

static int sqlite_archive_seq_of(struct store *st, const char *local,
				 const char *domain, const char *stanza_id,
				 uint64_t *seq_r, const char **error_r)
{
	return sqlite_arc_seq_of(sqlite_store(st)->arc, local, domain,
				 stanza_id, seq_r, error_r);
}

const struct store_backend store_backend_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.user_get = sqlite_user_get,
	.user_create = sqlite_user_create,
	.user_set_creds = sqlite_user_set_creds,
	.user_delete = sqlite_user_delete,
	.user_list = sqlite_user_list,
	.roster_get = sqlite_roster_get,
	.roster_put = sqlite_roster_put,
	.roster_delete = sqlite_roster_delete,
	.tx_begin = sqlite_tx_begin,
	.tx_commit = sqlite_tx_commit,
	.tx_rollback = sqlite_tx_rollback,
	.keyring_get = sqlite_keyring_get,
	.keyring_put = sqlite_keyring_put,
	.offline_list = sqlite_offline_list,
	.offline_insert = sqlite_offline_insert,
	.offline_wipe = sqlite_offline_wipe,
	.offline_delete = sqlite_offline_delete,
	.archive_list = sqlite_archive_list,
	.archive_insert = sqlite_archive_insert,
	.archive_wipe = sqlite_archive_wipe,
	.archive_delete = sqlite_archive_delete,
	.archive_has_id = sqlite_archive_has_id,
	.archive_seqs = sqlite_archive_seqs,
	.archive_count = sqlite_archive_count,
	.archive_range = sqlite_archive_range,
	.archive_seq_of = sqlite_archive_seq_of,
	.archive_prefs_get = sqlite_archive_prefs_get,
	.archive_prefs_put = sqlite_archive_prefs_put,
	.roster_has = sqlite_roster_has,
	.user_put_creds = sqlite_user_put_creds,
	.user_purge = sqlite_user_purge,
	.data_get = sqlite_data_get_op,
	.data_list = sqlite_data_list_op,
	.data_put = sqlite_data_put_op,
	.data_delete = sqlite_data_delete_op,
	.data_spaces = sqlite_data_spaces_op,
	.data_scan = sqlite_data_scan_op,
};
