/* XEP-0191 Blocking Command. */
#include "core/module.h"

const struct module blocking_module = {
	.name = "blocking",
};
