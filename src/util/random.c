#include "util/random.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define POOL_SIZE 512

static _Thread_local unsigned char pool[POOL_SIZE];
static _Thread_local size_t pool_left;

int random_bytes(void *out, size_t len)
{
	unsigned char *o = out;

	if (len > POOL_SIZE / 4)
		return RAND_bytes(out, (int)len) == 1 ? 0 : -1;
	while (len > 0) {
		size_t n;

		if (pool_left == 0) {
			if (RAND_bytes(pool, POOL_SIZE) != 1)
				return -1;
			pool_left = POOL_SIZE;
		}
		n = len < pool_left ? len : pool_left;
		/* Handed out from the end; what is handed out is wiped. */
		memcpy(o, pool + pool_left - n, n);
		OPENSSL_cleanse(pool + pool_left - n, n);
		pool_left -= n;
		o += n;
		len -= n;
	}
	return 0;
}
