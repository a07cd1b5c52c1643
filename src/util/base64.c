#include "util/base64.h"

#include <openssl/evp.h>

#include <stdlib.h>

#include "util/xalloc.h"

char *base64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, unsigned char **out_r,
		  size_t *out_len_r)
{
	unsigned char *out;
	size_t pad = 0, o = 0;

	if (len == 0 || (len == 1 && in[0] == '=')) {
		*out_r = xcalloc(1, 1);
		*out_len_r = 0;
		return 0;
	}
	if (len % 4 != 0)
		return -1;
	if (in[len - 1] == '=')
		pad++;
	if (in[len - 2] == '=')
		pad++;
	out = xmalloc(len / 4 * 3 + 1);
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		for (int k = 0; k < 4; k++) {
			size_t at = i + (size_t)k;
			if (in[at] == '=' && at >= len - pad) {
				v[k] = 0;
				continue;
			}
			v[k] = b64_value(in[at]);
			if (v[k] < 0)
				goto bad;
		}
		unsigned int n = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 |
				 (unsigned)v[2] << 6 | (unsigned)v[3];
		out[o++] = (unsigned char)(n >> 16);
		if (i + 4 < len || pad < 2)
			out[o++] = (unsigned char)(n >> 8);
		if (i + 4 < len || pad < 1)
			out[o++] = (unsigned char)n;
		/* Non-canonical encodings (stray bits under the padding) are
		 * rejected too: one message, one encoding. */
		if (i + 4 == len && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15))))
			goto bad;
	}
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	return 0;
bad:
	free(out);
	return -1;
}
