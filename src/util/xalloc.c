#include "util/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void __attribute__((noreturn)) oom(size_t size)
{
	fprintf(stderr, "roost: out of memory allocating %zu bytes\n", size);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		oom(size);
	return p;
}

void *xgrow(void *ptr, size_t *nmemb, size_t need, size_t size)
{
	size_t n = *nmemb ? *nmemb : 8;

	if (need <= *nmemb)
		return ptr;
	while (n < need) {
		if (n > ((size_t)-1) / 2)
			oom(need);
		n *= 2;
	}
	if (n > ((size_t)-1) / size)
		oom((size_t)-1);
	*nmemb = n;
	return xrealloc(ptr, n * size);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		oom(strlen(fmt));
	va_end(ap);
	return p;
}

void xfree_secret(void *ptr, size_t len)
{
	if (ptr == NULL)
		return;
	OPENSSL_cleanse(ptr, len);
	free(ptr);
}
