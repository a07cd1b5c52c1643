/* XEP-0077 In-Band Registration, password change and account removal. */
#include "core/module.h"

const struct module register_module = {
	.name = "register",
};
