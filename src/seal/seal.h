/* The sealed, tamper-evident stores' cryptography (DESIGN §5): the
 * offline store and the message archive (XEP-0313), one construction,
 * one keyring per user with a chain per store.
 * Pure: OpenSSL 3 only, no SQLite, no event loop, no I/O except reading the
 * seal key file. The store calls this from its worker thread and the server
 * from its loop thread.
 *
 * Threads: every function is reentrant on distinct objects. A `struct
 * seal_keys` is read-only after seal_keys_derive and may be shared by any
 * number of threads. `struct seal_sealer` and `struct seal_unlocked` lock
 * themselves: any thread may call them concurrently (but never free one
 * while another call on it is running). Keyrings, records and findings
 * belong to one thread at a time.
 *
 * Return codes: 0 success, -1 failure, unless a function says otherwise.
 * A -1 from a crypto primitive means either tampering or an OpenSSL
 * failure: callers treat both as "not genuine / not done".
 *
 * Encoding (DESIGN §5 "Encoding"): every MAC and KDF input is
 * label || fields; a variable-length field is lp(x) = u32 big-endian length
 * || x; integers (seq, key id, counts, version) are u64 big-endian; a stamp
 * is a signed count of microseconds since the epoch, encoded as the u64
 * two's complement; fixed-size keys, chains, nonces go in raw. JIDs are the
 * canonical bare JID stored at account creation. The exact inputs are
 * written next to each function below and in the .c files. */
#ifndef ROOST_SEAL_SEAL_H
#define ROOST_SEAL_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl/scram.h"   /* enum scram_hash, struct scram_creds (types only) */

struct buf;
struct seal_record;

#define SEAL_KEY_LEN 32        /* seal key, derived keys, X25519 keys, MACs */
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
/* A bare JID is at most localpart (1023) '@' domainpart (1023) (RFC 7622). */
#define SEAL_JID_MAX 2047
/* Largest plaintext seal_record_seal accepts (stanzas are capped far below). */
#define SEAL_MAX_PLAINTEXT (16u * 1024 * 1024)
/* Retired key pairs a keyring keeps after password changes; see rekey. */
#define SEAL_MAX_RETIRED 32
#define SEAL_KEYRING_VERSION 1
/* One wrapped private key: nonce || ciphertext(32) || tag. */
#define SEAL_WRAP_LEN (SEAL_NONCE_LEN + SEAL_KEY_LEN + SEAL_TAG_LEN)
/* Wrapped retired private keys: nonce || ciphertext(32 * n) || tag. */
#define SEAL_RETIRED_WRAP_MAX \
	(SEAL_NONCE_LEN + SEAL_KEY_LEN * SEAL_MAX_RETIRED + SEAL_TAG_LEN)
#define SEAL_NHASH 2           /* indexed by enum scram_hash */

/* ---- encoding helpers ---- */

void seal_put_u32(struct buf *b, uint32_t v);
void seal_put_u64(struct buf *b, uint64_t v);
/* lp(x): u32 big-endian length, then the bytes. */
void seal_put_lp(struct buf *b, const void *data, size_t len);
void seal_put_lp_str(struct buf *b, const char *s);
/* Now, in microseconds since the epoch (CLOCK_REALTIME). */
int64_t seal_now_us(void);

/* ---- seal key and derived keys ---- */

/* Reads the 32-byte seal key. Refuses (-1) a file that is not a regular
 * file, is readable, writable or executable by group or others (mode &
 * 077), or is not exactly 32 bytes; *error_r is then xmalloc'd (caller
 * frees). Does not create the file (main.c does at first start). */
int seal_key_load(const char *path, unsigned char key[SEAL_KEY_LEN],
		  char **error_r);

/* k_X = HKDF-SHA256(ikm = seal key, no salt, info = "roost/v1/" X), one per
 * MAC kind. The struct also caches keyed HMAC contexts, so it must be
 * released with seal_keys_clear; it is read-only after derive and may be
 * shared between threads. Do not copy it by assignment. */
struct seal_keys {
	unsigned char k_chain[SEAL_KEY_LEN];
	unsigned char k_tomb[SEAL_KEY_LEN];
	unsigned char k_row[SEAL_KEY_LEN];
	unsigned char k_cred[SEAL_KEY_LEN];
	unsigned char k_pepper[SEAL_KEY_LEN];
	/* private: HMAC-SHA256 keyed with k_chain, k_tomb, k_row, k_cred
	 * (seal_hmac.c); each use starts from a copy, never changes these. */
	struct seal_hmac_key *mac_tmpl[4];
};

int seal_keys_derive(const unsigned char seal_key[SEAL_KEY_LEN],
		     struct seal_keys *out);
/* Wipes the keys and frees the contexts. Safe on a zeroed struct. */
void seal_keys_clear(struct seal_keys *keys);

/* ---- credentials MAC ---- */

/* out = HMAC(k_cred, "roost/v1/cred" || lp(JID) || lp(hash name) ||
 * lp(salt) || u64 iterations || lp(StoredKey) || lp(ServerKey)), key
 * lengths being the hash's. The store keeps it beside each credential row;
 * a row whose MAC fails (e.g. copied from another user) is an integrity
 * error, not a login. */
int seal_cred_mac(const struct seal_keys *keys, const char *jid,
		  enum scram_hash h, const struct scram_creds *creds,
		  unsigned char out[SEAL_KEY_LEN]);
/* 0 when `mac` matches (constant-time compare), else -1. */
int seal_cred_check(const struct seal_keys *keys, const char *jid,
		    enum scram_hash h, const struct scram_creds *creds,
		    const unsigned char mac[SEAL_KEY_LEN]);

/* ---- sealed stores and their chains ---- */

/* The sealed stores of a user. Each has its own record table, its own
 * chain in the keyring row and its own MAC labels, so a record can never
 * pass for one of the other store. */
enum seal_store { SEAL_STORE_OFFLINE, SEAL_STORE_ARCHIVE };
#define SEAL_NSTORES 2
/* "offline" / "archive": the `store` label in K's info; NULL for a value
 * that is not a store. */
const char *seal_store_label(enum seal_store store);

/* One store's chain state: records base_seq+1 .. head_seq exist; chain_0
 * (base 0) is 32 zero bytes. live counts live (not wiped) records;
 * live_bytes sums their ct_len (ciphertext plus the 16-byte tag). The
 * keyring row holds one per store; the store also keeps, per user and
 * store, the state it last committed or verified (the walk's anchor, see
 * seal_verify). A plain value. */
struct seal_chain {
	uint64_t base_seq, head_seq;
	unsigned char base_chain[SEAL_KEY_LEN], head_chain[SEAL_KEY_LEN];
	uint64_t live, live_bytes;
};

/* ---- keyring (one per user) ---- */

/* A plain value: no pointers, copy it by assignment, nothing to free, no
 * secret in clear (private keys are only held wrapped).
 *
 * Wraps. KEK_h = HKDF-SHA256(salt = k_pepper, ikm = ClientKey_h,
 * info = "roost/v1/keyring" || lp(hash name) || lp(JID)), hash name
 * "SHA-1" / "SHA-256". Each wrap is ChaCha20-Poly1305 under KEK_h with a
 * random nonce:
 *   wrap[h]         = nonce || AEAD(sk) ,
 *                     AAD = "roost/v1/wrap" || lp(hash name) || lp(JID) ||
 *                           u64 key_id || pk
 *   retired_wrap[h] = nonce || AEAD(sk_1 || ... || sk_n) ,
 *                     AAD = "roost/v1/retired" || lp(hash name) || lp(JID) ||
 *                           u64 key_id || pk || u64 n || u64 id_1 .. id_n
 * so a wrap cannot be moved to another user, hash, key pair or list. The
 * retired key ids are also kept in clear (covered by the row MAC) so that
 * a process holding only the seal key can tell which records are still
 * openable by someone (seal_keyring_has_key). */
struct seal_keyring {
	uint32_t version;
	char jid[SEAL_JID_MAX + 1];
	unsigned char pk[SEAL_KEY_LEN];
	uint32_t key_id;
	bool has_wrap[SEAL_NHASH];
	unsigned char wrap[SEAL_NHASH][SEAL_WRAP_LEN];
	/* Retired pairs, oldest first; retired_wrap[h] is present exactly
	 * when has_wrap[h] and nretired > 0; its length is
	 * SEAL_NONCE_LEN + 32 * nretired + SEAL_TAG_LEN. */
	uint32_t nretired;
	uint32_t retired_ids[SEAL_MAX_RETIRED];
	unsigned char retired_wrap[SEAL_NHASH][SEAL_RETIRED_WRAP_MAX];
	/* One chain per sealed store, indexed by enum seal_store: the
	 * offline store's and the archive's are independent (a finding in
	 * one never touches the other), but both sit under this row's MAC. */
	struct seal_chain chains[SEAL_NSTORES];
	/* HMAC(k_row, "roost/v1/row" || u64 version || lp(JID) || pk ||
	 * u64 key_id || for h in SHA-1, SHA-256: (u64 0 | u64 1 || lp(wrap[h])
	 * || lp(retired_wrap[h])) || u64 nretired || u64 each retired id ||
	 * for each store, offline then archive: (u64 base_seq || base_chain
	 * || u64 head_seq || head_chain || u64 live || u64 live_bytes)). */
	unsigned char mac[SEAL_KEY_LEN];
};

/* The private keys of one unlocked keyring (current and retired), plus a
 * small cache of opening keys. Opaque; lives while the user has a session,
 * then seal_unlocked_free wipes it. Locks itself (see top). */
struct seal_unlocked;

/* A new keyring for `jid` (a canonical bare JID, at most SEAL_JID_MAX
 * bytes): fresh X25519 pair, random 4-byte key id, for every store
 * base = head = 0 with zero chains and live 0, MAC set. client_key_sha1 (20 bytes) and
 * client_key_sha256 (32 bytes) are the user's ClientKeys; either may be
 * NULL when the account has no credentials for that hash, not both. If
 * unlocked_r is not NULL it receives the unlocked keyring (saves an
 * unlock right after a password is set). Wipe the client keys yourself. */
int seal_keyring_create(const struct seal_keys *keys, const char *jid,
			const unsigned char *client_key_sha1,
			const unsigned char *client_key_sha256,
			struct seal_keyring *out,
			struct seal_unlocked **unlocked_r);

/* Recomputes kr->mac after the caller changed fields. */
int seal_keyring_mac_update(const struct seal_keys *keys,
			    struct seal_keyring *kr);
/* 0 if kr->mac is valid (constant-time), -1 otherwise. Check before
 * every seal: a row with a swapped pk must be refused. */
int seal_keyring_mac_check(const struct seal_keys *keys,
			   const struct seal_keyring *kr);

/* Unlocks with the ClientKey of hash h (scram_hash_len(h) bytes) learnt
 * at SASL success (or derived from the password for PLAIN): derives KEK_h,
 * unwraps sk, checks pk == X25519(sk), unwraps the retired keys, wipes
 * KEK_h. Does NOT check the row MAC (call seal_keyring_mac_check first).
 * On failure returns -1 and a static reason in *error_r (may be NULL):
 * after a successful SCRAM exchange every failure here is an integrity
 * event, never a reason to make a new keyring (DESIGN §5). */
int seal_keyring_unlock(const struct seal_keys *keys,
			const struct seal_keyring *kr, enum scram_hash h,
			const unsigned char *client_key,
			struct seal_unlocked **out, const char **error_r);
/* Wipes every secret and frees; NULL is fine. */
void seal_unlocked_free(struct seal_unlocked *u);
/* Key id of the keyring's current pair when it was unlocked. */
uint32_t seal_unlocked_key_id(const struct seal_unlocked *u);
/* True if `u` holds the private key for key_id. */
bool seal_unlocked_has_key(const struct seal_unlocked *u, uint32_t key_id);

/* Password change with the keyring unlocked (`old`, from this kr): a new
 * pair and key id; the old current pair and the old retired ones become
 * the retired list, wrapped under the new KEKs (client keys as in
 * create). Every store's chain state is kept; MAC updated. If the list would
 * exceed SEAL_MAX_RETIRED the oldest are dropped: records under them
 * become unopenable, exactly as after a reset (find them with
 * seal_keyring_has_key). On failure kr is unchanged. unlocked_r as in
 * create. */
int seal_keyring_rekey(const struct seal_keys *keys, struct seal_keyring *kr,
		       const struct seal_unlocked *old,
		       const unsigned char *client_key_sha1,
		       const unsigned char *client_key_sha256,
		       struct seal_unlocked **unlocked_r);

/* Admin reset without the old password (roostctl passwd): a new pair, the
 * retired list emptied; every store's chain state is kept so the walks
 * stay green. Records whose key id is no longer known (seal_keyring_has_key)
 * can never be opened: the caller reports them at next login and purges
 * them (wipe, which keeps the chain intact). */
int seal_keyring_reset(const struct seal_keys *keys, struct seal_keyring *kr,
		       const unsigned char *client_key_sha1,
		       const unsigned char *client_key_sha256,
		       struct seal_unlocked **unlocked_r);

/* True if key_id is the current or a retired key id of kr. */
bool seal_keyring_has_key(const struct seal_keyring *kr, uint32_t key_id);

/* Row bookkeeping on the chain of `store` (the other store's chain is
 * never touched), each followed by a MAC update; the caller writes the
 * row in the same transaction as the record change. Only on a row whose
 * MAC was checked: re-MACing a tampered row would launder it. Each
 * returns -1 with kr unchanged on a bad store or when:
 * note_seal: rec->seq is not head_seq + 1 or rec is wiped; else head
 *   becomes (rec->seq, rec->chain); live += 1; live_bytes += rec->ct_len.
 * note_wipe: a live record of ct_len bytes was wiped; -1 on underflow.
 * note_compact: every record in base_seq+1 .. seq is wiped and deleted;
 *   base becomes (seq, chain); -1 unless base_seq <= seq <= head_seq. */
int seal_keyring_note_seal(const struct seal_keys *keys,
			   struct seal_keyring *kr, enum seal_store store,
			   const struct seal_record *rec);
/* note_seal without the MAC update, for a batch of records to one user:
 * the caller runs seal_keyring_mac_update once, after the last, before
 * the row is written (a MAC per record cost as much as the rest of the
 * bookkeeping). Same checks and return as note_seal. */
int seal_keyring_advance(struct seal_keyring *kr, enum seal_store store,
			 const struct seal_record *rec);
int seal_keyring_note_wipe(const struct seal_keys *keys,
			   struct seal_keyring *kr, enum seal_store store,
			   size_t ct_len);
int seal_keyring_note_compact(const struct seal_keys *keys,
			      struct seal_keyring *kr, enum seal_store store,
			      uint64_t seq,
			      const unsigned char chain[SEAL_KEY_LEN]);

/* Versioned binary form for the store (appended to `out`):
 *   "RKR" u8 version(1) || pk || u32 key_id ||
 *   u8 flags (bit h: wrap[h] present) || each present wrap (60 bytes) ||
 *   u32 nretired || u32 ids.. || (nretired > 0: each present retired
 *   wrap, 28 + 32 n bytes) || for each store, offline then archive:
 *   (u64 base_seq || base_chain || u64 head_seq || head_chain || u64 live
 *   || u64 live_bytes) || mac
 * decode is strict: exact length, known version and flags, at least one
 * wrap, nretired <= SEAL_MAX_RETIRED. Hostile input returns -1, never
 * crashes. The JID is not in the blob (no other account name should sit
 * in a user's row): decode takes the canonical bare JID of the row's
 * owner (1..SEAL_JID_MAX bytes) and the MAC, which covers it, rejects a
 * row moved from another user. decode does not check the MAC. */
void seal_keyring_encode(const struct seal_keyring *kr, struct buf *out);
int seal_keyring_decode(const void *data, size_t len, const char *jid,
			struct seal_keyring *out);

/* ---- records ---- */

/* One stored stanza. ct is owned by the struct when it came from
 * seal_record_seal (seal_record_clear frees it); the store may point ct
 * at its own memory for records it only verifies or opens, as long as it
 * never calls clear or wipe on them. For a wiped record only seq, chain,
 * wiped and tomb matter (the store may keep stamp for notices; nothing
 * authenticates it any more). */
struct seal_record {
	uint64_t seq;
	int64_t stamp;          /* µs since the epoch */
	uint32_t key_id;
	unsigned char epk[SEAL_KEY_LEN];
	unsigned char nonce[SEAL_NONCE_LEN];
	unsigned char *ct;      /* ciphertext || tag; NULL once wiped */
	size_t ct_len;
	unsigned char chain[SEAL_KEY_LEN];
	bool wiped;
	unsigned char tomb[SEAL_KEY_LEN]; /* zero while live */
};

void seal_record_clear(struct seal_record *rec);

/* The process's sealing state: one ephemeral X25519 pair (esk, epk) and,
 * per (JID, store), the derived K and the last seq sealed. Locks itself. */
struct seal_sealer;

/* max_entries: (JID, store) pairs remembered (0 = 4096). When the table is
 * full it is cleared AND the ephemeral pair rotated, so a forgotten "last
 * seq" can never let one (K, nonce) pair be used twice. Returns NULL only
 * if OpenSSL cannot make a key. */
struct seal_sealer *seal_sealer_new(size_t max_entries);
void seal_sealer_free(struct seal_sealer *s);
/* New ephemeral pair; cached Ks are dropped, "last seq" is kept. The
 * caller does this every few hours. */
int seal_sealer_rotate(struct seal_sealer *s);
/* The store could not commit the record sealed at seq for (jid, store)
 * (transaction failed): allow that seq again. To keep (K, nonce) unique
 * the ephemeral pair is rotated. */
int seal_sealer_release(struct seal_sealer *s, const char *jid,
			enum seal_store store, uint64_t seq);

/* Seals `len` bytes to the user's pk (from a keyring whose MAC the caller
 * checked, seq = head_seq + 1, prev_chain = head_chain):
 *   K     = HKDF-SHA256(ikm = X25519(esk, pk), no salt,
 *                       info = "roost/v1/seal" || lp(store) || epk || pk)
 *   nonce = u64 seq || 4 random bytes
 *   ct    = ChaCha20-Poly1305(K, nonce, AAD = lp(JID) || u64 seq ||
 *                             u64 stamp || u64 key_id)
 *   chain = seal_record_chain(...)
 * Fills *out (out->ct xmalloc'd). Returns -1 (out untouched) if seq is not
 * above the last seq this sealer sealed for (jid, store), if seq is 0, or
 * len > SEAL_MAX_PLAINTEXT. Any thread. */
int seal_record_seal(struct seal_sealer *s, const struct seal_keys *keys,
		     const char *jid, enum seal_store store,
		     const unsigned char pk[SEAL_KEY_LEN], uint32_t key_id,
		     uint64_t seq, int64_t stamp,
		     const unsigned char prev_chain[SEAL_KEY_LEN],
		     const void *plaintext, size_t len,
		     struct seal_record *out);

/* Opens a live record with the private key named by rec->key_id (K is
 * cached in `u` per key id, store and epk, so a delivery costs no X25519
 * after the first record of a process key). On
 * success *pt_r is xmalloc'd (free with xfree_secret(*pt_r, *len_r)), with
 * a NUL byte after the *len_r bytes. -1 on any failure: unknown key id,
 * wrong JID or store, any bit changed in key_id, seq, stamp, epk, nonce or
 * ct. Opening proves nothing about genuineness (pk is public): deliver only
 * records seal_verify called genuine. Any thread. */
int seal_record_open(struct seal_unlocked *u, const char *jid,
		     enum seal_store store, const struct seal_record *rec,
		     unsigned char **pt_r, size_t *len_r);

/* The chain and tomb MAC labels name the store: the offline store's are
 * DESIGN §5's "roost/v1/chain" and "roost/v1/tomb"; the archive's are
 * "roost/v1/archive/chain" and "roost/v1/archive/tomb". (Neither label is
 * a prefix of the other store's, so the inputs never coincide.) Both
 * chains start from 32 zero bytes, so without the label a store's first
 * record would also verify as the other store's first record.
 *
 * chain = HMAC(k_chain, chain label || lp(JID) || u64 seq || u64 stamp ||
 *              u64 key_id || epk || nonce || lp(ct) || prev_chain). */
int seal_record_chain(const struct seal_keys *keys, const char *jid,
		      enum seal_store store, const struct seal_record *rec,
		      const unsigned char prev_chain[SEAL_KEY_LEN],
		      unsigned char out[SEAL_KEY_LEN]);
/* tomb = HMAC(k_tomb, tomb label || lp(JID) || u64 seq || chain). */
int seal_record_tomb(const struct seal_keys *keys, const char *jid,
		     enum seal_store store, uint64_t seq,
		     const unsigned char chain[SEAL_KEY_LEN],
		     unsigned char out[SEAL_KEY_LEN]);
/* Removal: wipes and frees ct (ct_len is kept for note_wipe), sets wiped
 * and the tomb over rec->chain. Wipe only records seal_verify accepted
 * for that store: a tomb over a tampered record would erase the
 * evidence. */
int seal_record_wipe(const struct seal_keys *keys, const char *jid,
		     enum seal_store store, struct seal_record *rec);

/* ---- clear data beside a store ---- */

/* A MAC for clear data kept beside a user's sealed store that the walk
 * cannot see, since it is not inside a record's ct: the archive's
 * filtering metadata (the store binds it to its record by putting the
 * record's seq and chain into `data`) and the archive preferences.
 *   out = HMAC(k_row, "roost/v1/aux" || lp(JID) || lp(kind) || lp(data))
 * `kind` names the use ("archive-meta", "archive-prefs"), so data made
 * for one use never passes for another. check: 0 when `mac` matches
 * (constant-time), else -1. */
int seal_aux_mac(const struct seal_keys *keys, const char *jid,
		 const char *kind, const void *data, size_t len,
		 unsigned char out[SEAL_KEY_LEN]);
int seal_aux_check(const struct seal_keys *keys, const char *jid,
		   const char *kind, const void *data, size_t len,
		   const unsigned char mac[SEAL_KEY_LEN]);

/* ---- verification walk ---- */

/* The anchor: what the walk trusts as a store's chain state. Without a
 * memory of the user this is the row's chains[store] (if the row MAC
 * holds); the store keeps, per user and store, the state of the row it
 * last committed or verified (seal_anchor_of after every change it
 * commits), which is how a rollback of row and records to an earlier
 * genuine state is caught while the process runs (DESIGN §5). Copies
 * kr->chains[store]; a bad store gives a zeroed *out. */
void seal_anchor_of(const struct seal_keyring *kr, enum seal_store store,
		    struct seal_chain *out);

enum seal_finding_kind {
	SEAL_F_BAD_ROW_MAC,    /* keyring MAC fails (seq 0) */
	SEAL_F_ROLLBACK,       /* row's anchor differs from the in-memory one
				* (seq: the row's head_seq) */
	SEAL_F_MISSING,        /* no record at seq .. seq+count-1 (deleted,
				* or the tail truncated) */
	SEAL_F_DUPLICATE,      /* a second record at seq (each extra one) */
	SEAL_F_UNEXPECTED,     /* record at or below base or above head */
	SEAL_F_BAD_CHAIN,      /* live record that does not verify although
				* its predecessor's chain is authentic: it was
				* changed (any field) */
	SEAL_F_UNVERIFIABLE,   /* live record that cannot be checked because
				* no authentic predecessor chain exists
				* (predecessor deleted or overwritten) */
	SEAL_F_BAD_TOMB,       /* wiped record whose tomb does not verify */
	SEAL_F_HEAD_MISMATCH,  /* no record at head, or the one there does not
				* carry head_chain (seq: head) */
	SEAL_F_COUNT_MISMATCH, /* live/live_bytes cannot be reconciled with
				* the records (seq 0) */
};
const char *seal_finding_name(enum seal_finding_kind kind);

struct seal_finding {
	enum seal_finding_kind kind;
	uint64_t seq;
	uint64_t count;         /* seqs covered: >1 only for MISSING */
	size_t index;           /* into recs, or SIZE_MAX */
};

/* Per input record (same index as recs). */
enum seal_rec_state {
	SEAL_REC_GENUINE,   /* live, authentic, deliverable */
	SEAL_REC_WIPED,     /* wiped, tomb valid */
	SEAL_REC_BAD,       /* named by a finding: never deliver */
	SEAL_REC_WITHHELD,  /* authentic by itself, but the store as a whole
			     * is suspect (no trusted anchor, or counts that
			     * leave room for an already delivered record
			     * restored from a backup): never deliver */
};

struct seal_findings {
	struct seal_finding *v;
	size_t n, cap;
	enum seal_rec_state *state;  /* nrecs entries */
	size_t nrecs;
	size_t ngenuine, nwithheld, nbad;
	/* Compaction: the largest k >= base such that every seq in
	 * base+1 .. k is exactly one SEAL_REC_WIPED record, with its chain
	 * (k = base and base_chain when there is nothing to compact, and
	 * always when the row MAC failed or the row was rolled back). The
	 * store deletes rows base+1 .. k and calls seal_keyring_note_compact
	 * when compact_seq > the row's base_seq. */
	uint64_t compact_seq;
	unsigned char compact_chain[SEAL_KEY_LEN];
};

/* Walks the user's records of one store (any order) against the row's
 * chains[store] and, if given, the in-memory anchor `mem` of that store,
 * which then wins over the row. The row MAC covers both chains, so a
 * row that fails it condemns both stores' walks; anything else (records,
 * the other chain's state) concerns one store only. Fills *out (free
 * with seal_findings_free). Returns 0 when clean, 1 when there are
 * findings, -1 on a bad store or an OpenSSL failure (out then holds
 * nothing usable). Costs one HMAC per record (plus a few for records that
 * fail), so a walk is O(records of that store).
 *
 * A live record is GENUINE iff its seq is in base+1 .. head, it is the
 * only verified record at that seq, its stored chain equals HMAC(k_chain,
 * its fields || P) where P is an authentic chain value of seq-1, and the
 * store as a whole is not suspect (see WITHHELD). A valid HMAC can only
 * come from the server sealing that very record at that seq, so a changed
 * record never condemns its untouched successors; seal_verify.c lists
 * precisely what is caught and what is not.
 *
 * Never call a note_* function or mac_update on a row whose MAC failed:
 * re-MACing it would launder the tampering. */
int seal_verify(const struct seal_keys *keys, const struct seal_keyring *kr,
		enum seal_store store, const struct seal_record *recs,
		size_t nrecs, const struct seal_chain *mem,
		struct seal_findings *out);
/* A zeroed struct is a valid empty one. */
void seal_findings_free(struct seal_findings *f);

/* ---- one record at a time (the archive's page path) ----
 *
 * A query of the archive returns a page of a few dozen records; walking
 * every record for each page makes paging through n records cost O(n^2).
 * These two give, for one record, the verdict seal_verify gives it, from
 * the record, the row before it and the keyring row alone, provided the
 * store is in the state a clean store is always in. What the walk sees
 * and these do not (findings about other records, which can make the walk
 * withhold every record as a precaution) is said in seal_verify.c; the
 * caller must walk now and then (store_archive.c, docs/mam.md). */

/* True when the chain of `store` is "tight": the row MAC holds; `mem`,
 * the in-memory anchor, is given and equals the row's chain state (no
 * rollback under this process); base_seq <= head_seq (equal: head_chain
 * is base_chain and live_bytes is 0); and live == head_seq - base_seq,
 * i.e. no record in base+1 .. head was ever wiped in this history, so no
 * record there can be a removed one restored from a backup. A clean store
 * is always tight: removal wipes the oldest first and compacts in the
 * same transaction. */
bool seal_chain_tight(const struct seal_keys *keys,
		      const struct seal_keyring *kr, enum seal_store store,
		      const struct seal_chain *mem);

/* In a tight store, for rec, the only row at its seq, and pred, the only
 * row at seq - 1 (NULL when seq - 1 is the base): 1 when rec is live,
 * base < seq <= head, pred is live, rec's chain is HMAC(k_chain, its
 * fields || P) with P = base_chain or pred's stored chain, and, at head,
 * that chain is head_chain; 0 when any of that fails (the caller then
 * walks: the walk knows more ways to place a record); -1 on an OpenSSL
 * failure. The clear metadata beside an archive record is the caller's
 * to check. */
int seal_verify_link(const struct seal_keys *keys,
		     const struct seal_keyring *kr, enum seal_store store,
		     const struct seal_record *rec,
		     const struct seal_record *pred);

#endif
