/* Allocation that aborts on out-of-memory (STYLE rule 5): callers never
 * check these for NULL. */
#ifndef ROOST_UTIL_XALLOC_H
#define ROOST_UTIL_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* Grows an array of nmemb elements to at least `need`, doubling; returns
 * the new array and stores the new capacity in *nmemb. */
void *xgrow(void *ptr, size_t *nmemb, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipes then frees a buffer that held a secret. */
void xfree_secret(void *ptr, size_t len);

#endif
