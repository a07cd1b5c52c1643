#include "seal/seal_keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "seal/seal.h"
#include "util/xalloc.h"

int seal_key_ensure(const char *path, char **error_r)
{
	unsigned char key[SEAL_KEY_LEN];
	struct stat st;
	int fd, ok;

	if (lstat(path, &st) == 0)
		return 0;
	if (errno != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0; /* the other process won the race */
		*error_r = xasprintf("%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	ok = RAND_bytes(key, sizeof(key)) == 1 &&
	     write(fd, key, sizeof(key)) == (ssize_t)sizeof(key) &&
	     fsync(fd) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	close(fd);
	if (!ok) {
		unlink(path);
		*error_r = xasprintf("%s: cannot write the seal key", path);
		return -1;
	}
	return 1;
}
