/* The roster (RFC 6121 §2) and roster versioning (XEP-0237). */
#ifndef ROOST_CORE_ROSTER_H
#define ROOST_CORE_ROSTER_H

#include "core/module.h"

struct account;
struct roster_entry;

extern const struct module roster_module;

/* Sends a roster push for `e` (or for a removal of `jid` when e is NULL)
 * to every session of the account that requested the roster. */
void roster_push(struct account *a, const struct roster_entry *e,
		 const char *removed_jid);

/* Adds <item/> for `e` to `query`. */
void roster_item_xml(struct xml_node *query, const struct roster_entry *e);

#endif
