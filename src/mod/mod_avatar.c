/* XEP-0153 vCard-based avatars and XEP-0398 conversion to XEP-0084. */
#include "core/module.h"

const struct module avatar_module = {
	.name = "avatar",
};
