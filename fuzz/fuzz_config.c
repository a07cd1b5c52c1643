/* libFuzzer target: the configuration parser (src/config.c on inih).
 * A file that loads must dump (config_dump) to a file that loads again
 * and dumps the same: `roostctl config` output is a valid config. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "config.h"
#include "util/log.h"
#include "util/xalloc.h"

static char *dump(const struct config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		abort();
	config_dump(f, cfg);
	fclose(f);
	return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = xstrndup((const char *)data, size);
	struct config cfg, again;
	char *error = NULL;

	log_set_level(LOG_ERROR);
	if (config_load_string(text, &cfg, &error) == 0) {
		char *d1 = dump(&cfg), *d2;

		if (error != NULL)
			abort();
		if (config_load_string(d1, &again, &error) != 0) {
			fprintf(stderr, "dump does not load: %s\n%s\n", error, d1);
			abort();
		}
		d2 = dump(&again);
		if (strcmp(d1, d2) != 0) {
			fprintf(stderr, "dumps differ:\n%s\n---\n%s\n", d1, d2);
			abort();
		}
		free(d1);
		free(d2);
		config_free(&again);
	} else if (error == NULL) {
		abort();
	}
	free(error);
	config_free(&cfg);
	free(text);
	return 0;
}
