/* DESIGN §5's encoding for callers that build inputs themselves, and the
 * small tables of names. */
#include "seal/seal-private.h"

#include <string.h>
#include <time.h>

#include "util/buf.h"

void seal_put_u32(struct buf *b, uint32_t v)
{
	unsigned char p[4];
	seal_be32(p, v);
	buf_append(b, p, sizeof(p));
}

void seal_put_u64(struct buf *b, uint64_t v)
{
	unsigned char p[8];
	seal_be64(p, v);
	buf_append(b, p, sizeof(p));
}

void seal_put_lp(struct buf *b, const void *data, size_t len)
{
	seal_put_u32(b, (uint32_t)len);
	buf_append(b, data, len);
}

void seal_put_lp_str(struct buf *b, const char *s)
{
	seal_put_lp(b, s, strlen(s));
}

int64_t seal_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *seal_store_label(enum seal_store store)
{
	switch (store) {
	case SEAL_STORE_OFFLINE: return "offline";
	case SEAL_STORE_ARCHIVE: return "archive";
	}
	return NULL;
}

const char *seal_finding_name(enum seal_finding_kind kind)
{
	switch (kind) {
	case SEAL_F_BAD_ROW_MAC: return "bad_row_mac";
	case SEAL_F_ROLLBACK: return "rollback";
	case SEAL_F_MISSING: return "missing";
	case SEAL_F_DUPLICATE: return "duplicate";
	case SEAL_F_UNEXPECTED: return "unexpected";
	case SEAL_F_BAD_CHAIN: return "bad_chain";
	case SEAL_F_UNVERIFIABLE: return "unverifiable";
	case SEAL_F_BAD_TOMB: return "bad_tomb";
	case SEAL_F_HEAD_MISMATCH: return "head_mismatch";
	case SEAL_F_COUNT_MISMATCH: return "count_mismatch";
	}
	return "unknown";
}
