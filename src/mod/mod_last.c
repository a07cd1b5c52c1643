/* XEP-0012 Last Activity. */
#include "core/module.h"

const struct module last_module = {
	.name = "last",
};
