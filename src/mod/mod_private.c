/* XEP-0049 Private XML Storage. */
#include "core/module.h"

const struct module private_module = {
	.name = "private",
};
