#include "xmpp/stream_error.h"

#include <string.h>

#include "util/buf.h"
#include "xml/xml_writer.h"

static const char *const conditions[] = {
	"bad-format", "bad-namespace-prefix", "conflict", "connection-timeout",
	"host-gone", "host-unknown", "improper-addressing",
	"internal-server-error", "invalid-from", "invalid-namespace",
	"invalid-xml", "not-authorized", "not-well-formed", "policy-violation",
	"remote-connection-failed", "reset", "resource-constraint",
	"restricted-xml", "see-other-host", "system-shutdown",
	"undefined-condition", "unsupported-encoding", "unsupported-feature",
	"unsupported-stanza-type", "unsupported-version",
};

static int known(const char *condition)
{
	for (size_t i = 0; i < sizeof(conditions) / sizeof(conditions[0]); i++)
		if (strcmp(conditions[i], condition) == 0)
			return 1;
	return 0;
}

void stream_error_append(struct buf *out, const char *condition,
			 const char *text)
{
	if (!known(condition))
		condition = "undefined-condition";
	buf_appendf(out, "<stream:error><%s xmlns='" NS_STREAM_ERRORS "'/>",
		    condition);
	if (text != NULL) {
		buf_append_str(out, "<text xmlns='" NS_STREAM_ERRORS "'>");
		xml_escape(out, text, strlen(text), 0);
		buf_append_str(out, "</text>");
	}
	buf_append_str(out, "</stream:error></stream:stream>");
}
