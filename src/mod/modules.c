#include "mod/modules.h"

#include "core/roster.h"

extern const struct module disco_module;
extern const struct module ping_module;
extern const struct module version_module;
extern const struct module carbons_module;
extern const struct module csi_module;
extern const struct module mam_module;
extern const struct module offline_module;
extern const struct module blocking_module;
extern const struct module pep_module;
extern const struct module caps_module;
extern const struct module bookmarks_module;
extern const struct module private_module;
extern const struct module vcard_module;
extern const struct module avatar_module;
extern const struct module last_module;
extern const struct module time_module;
extern const struct module register_module;

/* Adding a XEP: write mod/mod_<name>.c with a `struct module` and list it
 * here; the core needs no change. */
const struct module *const builtin_modules[] = {
	&roster_module,
	/* First: a stanza from or to a blocked JID goes no further. */
	&blocking_module,
	&disco_module,
	&ping_module,
	&version_module,
	/* Before carbons: it removes stanza-ids that clients made up before
	 * anything copies what they sent. */
	&mam_module,
	&carbons_module,
	&csi_module,
	&offline_module,
	&caps_module,
	&pep_module,
	&bookmarks_module,
	&private_module,
	&vcard_module,
	&avatar_module,
	&last_module,
	&time_module,
	&register_module,
	NULL,
};
