/* Error and reason names of the dlm protocol. */
#include "config.h"

#include <string.h>

#include "proto.h"

/*
 * A new protocol code must move DLM_E_MAX too, or dlm_proto_errcode()
 * would not look at it. (A repeated value is caught by the switches.)
 */
#define PROTO_ERROR_AT_MOST_MAX(constant, value, name, sentence) \
	_Static_assert(value <= DLM_E_MAX, #constant " is above DLM_E_MAX");
DLM_SERVER_ERRORS(PROTO_ERROR_AT_MOST_MAX)
#undef PROTO_ERROR_AT_MOST_MAX

const char *
dlm_proto_errname(int code)
{
	switch (code) {
#define PROTO_ERROR_NAME(constant, value, name, sentence) \
	case constant: return name;
	DLM_SERVER_ERRORS(PROTO_ERROR_NAME)
#undef PROTO_ERROR_NAME
	}
	return "UNKNOWN";
}

const char *
dlm_proto_errdesc(int code)
{
	switch (code) {
#define PROTO_ERROR_SENTENCE(constant, value, name, sentence) \
	case constant: return sentence;
	DLM_SERVER_ERRORS(PROTO_ERROR_SENTENCE)
#undef PROTO_ERROR_SENTENCE
	}
	return "unknown error";
}

int
dlm_proto_errcode(const char *name, size_t len)
{
	for (int code = 0; code <= DLM_E_MAX; code++) {
		const char *s = dlm_proto_errname(code);

		if (strlen(s) == len && memcmp(s, name, len) == 0)
			return code;
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
	case DLM_LOST_FAILOVER:
		return "failover";
	}
	return "unknown";
}

int
dlm_proto_lost_code(const char *name, size_t len)
{
	for (int r = DLM_LOST_FORCED; r <= DLM_LOST_FAILOVER; r++) {
		const char *s = dlm_proto_lost_reason(r);

		if (strlen(s) == len && memcmp(s, name, len) == 0)
			return r;
	}
	return 0;
}
