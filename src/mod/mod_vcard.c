/* XEP-0054 vcard-temp. */
#include "core/module.h"

const struct module vcard_module = {
	.name = "vcard",
};
