#include "mod/modules.h"

#include "core/roster.h"

extern const struct module disco_module;
extern const struct module ping_module;
extern const struct module version_module;

/* Adding a XEP: write mod/mod_<name>.c with a `struct module` and list it
 * here; the core needs no change. */
const struct module *const builtin_modules[] = {
	&roster_module,
	&disco_module,
	&ping_module,
	&version_module,
	NULL,
};
