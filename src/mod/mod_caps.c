/* XEP-0115 Entity Capabilities. */
#include "core/module.h"

const struct module caps_module = {
	.name = "caps",
};
