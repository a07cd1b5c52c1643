/* XEP-0202 Entity Time. */
#include "core/module.h"

const struct module time_module = {
	.name = "time",
};
