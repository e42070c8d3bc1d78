/* Error and reason names of the dlm protocol. */
#include "config.h"

#include <string.h>

#include "proto.h"

static const struct {
	const char	*name;
	const char	*desc;
} proto_errors[DLM_E_MAX + 1] = {
	[DLM_OK] = { "OK", "success" },
	[DLM_E_BAD_REQUEST] = { "BAD_REQUEST", "malformed request" },
	[DLM_E_NO_SESSION] = { "NO_SESSION", "no session: send hello first" },
	[DLM_E_NAME_IN_USE] = { "NAME_IN_USE",
	    "client name is in use by a live session" },
	[DLM_E_WOULD_BLOCK] = { "WOULD_BLOCK", "lock is not free" },
	[DLM_E_TIMEOUT] = { "TIMEOUT", "timed out waiting for the lock" },
	[DLM_E_NOT_HELD] = { "NOT_HELD", "lock is not held by this session" },
	[DLM_E_ALREADY_HELD] = { "ALREADY_HELD",
	    "lock is already held or awaited by this session" },
	[DLM_E_KIND_MISMATCH] = { "KIND_MISMATCH",
	    "lock exists with the other kind" },
	[DLM_E_CANCELLED] = { "CANCELLED", "request was cancelled" },
	[DLM_E_LIMIT] = { "LIMIT", "a configured limit would be exceeded" },
	[DLM_E_PERMISSION] = { "PERMISSION", "permission denied" },
	[DLM_E_NOT_FOUND] = { "NOT_FOUND", "no such lock or client" },
	[DLM_E_SHUTTING_DOWN] = { "SHUTTING_DOWN", "server is shutting down" },
	[DLM_E_DEADLOCK] = { "DEADLOCK", "deadlock detected" },
	[DLM_E_UNSUPPORTED] = { "UNSUPPORTED",
	    "protocol version not supported" },
};

const char *
dlm_proto_errname(int code)
{
	if (code < 0 || code > DLM_E_MAX)
		return "UNKNOWN";
	return proto_errors[code].name;
}

const char *
dlm_proto_errdesc(int code)
{
	if (code < 0 || code > DLM_E_MAX)
		return "unknown error";
	return proto_errors[code].desc;
}

int
dlm_proto_errcode(const char *name, size_t len)
{
	for (int i = 0; i <= DLM_E_MAX; i++) {
		if (strlen(proto_errors[i].name) == len &&
		    memcmp(proto_errors[i].name, name, len) == 0)
			return i;
	}
	return -1;
}

const char *
dlm_proto_lost_reason(int reason)
{
	switch (reason) {
	case DLM_LOST_FORCED:
		return "forced";
	case DLM_LOST_RESET:
		return "reset";
	case DLM_LOST_EXPIRED:
		return "expired";
	}
	return "unknown";
}

int
dlm_proto_lost_code(const char *name, size_t len)
{
	for (int r = DLM_LOST_FORCED; r <= DLM_LOST_EXPIRED; r++) {
		const char *s = dlm_proto_lost_reason(r);

		if (strlen(s) == len && memcmp(s, name, len) == 0)
			return r;
	}
	return 0;
}
