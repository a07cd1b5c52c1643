/* Making the seal key file (DESIGN §5): at first start, by roostd or by
 * roostctl, whichever comes first. */
#ifndef ROOST_SEAL_SEAL_KEYFILE_H
#define ROOST_SEAL_SEAL_KEYFILE_H

/* Creates `path` with 32 random bytes, mode 0400, if it does not exist
 * (O_EXCL: two processes racing make one key). Returns 1 if it made the
 * file, 0 if it was there, -1 with an xmalloc'd *error_r. Whether an
 * existing file is acceptable is seal_key_load's to say. */
int seal_key_ensure(const char *path, char **error_r);

#endif
