/* XEP-0202 Entity Time, for the server itself: its UTC time (XEP-0082
 * dateTime, 'Z') and its offset from UTC (XEP-0082 TZD) as the host's
 * time zone has it now. A user's bare JID is not answered: a user's time
 * is the client's to tell, at a full JID. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/module.h"
#include "xml/xml.h"

#define NS_TIME "urn:xmpp:time"

static void time_get(const struct iq_request *req)
{
	struct xml_node *t = xml_new("time", NS_TIME);
	time_t now = time(NULL);
	struct tm utc, local;
	char tzo[32], stamp[32];
	long off;

	gmtime_r(&now, &utc);
	localtime_r(&now, &local);
	off = local.tm_gmtoff;
	snprintf(tzo, sizeof(tzo), "%c%02ld:%02ld", off < 0 ? '-' : '+',
		 labs(off) / 3600, labs(off) % 3600 / 60);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
	xml_add_text_child(t, "tzo", tzo);
	xml_add_text_child(t, "utc", stamp);
	iq_reply(req, t);
}

static const struct iq_handler time_handlers[] = {
	{ NS_TIME, "time", IQ_SCOPE_SERVER, time_get, NULL },
	{ NULL, NULL, 0, NULL, NULL },
};

static const char *const time_features[] = { NS_TIME, NULL };

const struct module time_module = {
	.name = "time",
	.iq_handlers = time_handlers,
	.server_features = time_features,
};
