/* XEP-0163 Personal Eventing Protocol on XEP-0060 (with XEP-0223). */
#include "core/module.h"

const struct module pep_module = {
	.name = "pep",
};
