/* Random bytes for the hot paths: a nonce's random half and a stanza-id
 * for every archived message. OpenSSL's RAND_bytes costs about the same
 * for 4 bytes as for 512 (its CTR-DRBG re-keys after every call), so each
 * thread draws 512 at a time and hands them out. Not for keys or salts:
 * those call RAND_bytes directly, so no key material waits in memory.
 * roostd never forks, so no two processes share a pool. */
#ifndef ROOST_UTIL_RANDOM_H
#define ROOST_UTIL_RANDOM_H

#include <stddef.h>

/* 0, or -1 if OpenSSL has no randomness (the caller must not go on as
 * if it had some). */
int random_bytes(void *out, size_t len);

#endif
