/* XEP-0030 disco#info as other modules use it: mod_caps hashes the
 * server's (XEP-0115 §6.3), which must be exactly what mod_disco.c
 * answers. */
#ifndef ROOST_MOD_DISCO_H
#define ROOST_MOD_DISCO_H

#include <stdbool.h>

struct server;
struct xml_node;

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"

/* A new <query xmlns=disco#info/> (the caller frees it) for the server
 * (server true) or for an account: its own identity, then the enabled
 * modules' identities and features for that scope. */
struct xml_node *disco_info_query(struct server *srv, bool server);

#endif
