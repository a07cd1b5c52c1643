#include "server.h"

#include <string.h>

#include "config.h"

bool server_is_local_domain(const struct server *srv, const char *domain)
{
	return config_vhost(srv->cfg, domain) != NULL;
}
