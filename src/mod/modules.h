/* The list of built-in modules, in start-up order. */
#ifndef ROOST_MOD_MODULES_H
#define ROOST_MOD_MODULES_H

#include "core/module.h"

extern const struct module *const builtin_modules[];

#endif
