/* XEP-0402 PEP Native Bookmarks, with XEP-0048 compatibility. */
#include "core/module.h"

const struct module bookmarks_module = {
	.name = "bookmarks",
};
