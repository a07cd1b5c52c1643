/* A growable byte buffer, always NUL-terminated for convenience. */
#ifndef ROOST_UTIL_BUF_H
#define ROOST_UTIL_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_append(struct buf *b, const void *data, size_t len);
void buf_append_str(struct buf *b, const char *s);
void buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void buf_reset(struct buf *b);
/* Returns the data (caller frees) and leaves the buffer empty. */
char *buf_steal(struct buf *b, size_t *len_r);
void buf_free(struct buf *b);

#endif
