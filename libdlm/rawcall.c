/*
 * dlm_call(): any method the library does not track, by name, with
 * msgpack-encoded params and result. dlmctl is built on it; so can be any
 * tool that inspects or administers dlmd without a new library release.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"

/*
 * These change what the library believes this session holds or is; going
 * around the library with them would make that belief wrong.
 */
static const char *const tracked_methods[] = {
	"hello", "acquire", "release", "cancel", "reset", "bye", "convert",
};

static bool
method_ok(const char *method)
{
	size_t n;

	if (method == NULL || (n = strlen(method)) == 0 || n > 64)
		return false;
	for (size_t i = 0; i < sizeof tracked_methods /
	    sizeof tracked_methods[0]; i++)
		if (strcmp(method, tracked_methods[i]) == 0)
			return false;
	return true;
}

/* params must be exactly one msgpack map, or the session would be cut. */
static bool
params_ok(const void *params, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	bool ok;

	if (params == NULL)
		return len == 0;
	msgpack_unpacked_init(&u);
	ok = msgpack_unpack_next(&u, params, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && off == len &&
	    u.data.type == MSGPACK_OBJECT_MAP;
	msgpack_unpacked_destroy(&u);
	return ok;
}

int
dlm_call(struct dlm_client *c, const char *method, const void *params,
    size_t params_len, void **result, size_t *result_len, char **message)
{
	pthread_cond_t cv;
	struct dlm_req req;
	msgpack_sbuffer sb;
	int rc;

	if (result != NULL)
		*result = NULL;
	if (result_len != NULL)
		*result_len = 0;
	if (message != NULL)
		*message = NULL;
	if (!method_ok(method) || !params_ok(params, params_len))
		return dlm__result(c, DLM_E_INVALID, !method_ok(method) ?
		    "no such method here: acquire, release, convert, cancel, "
		    "reset, hello and bye have calls of their own" :
		    "params must be one msgpack map");
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	msgpack_sbuffer_init(&sb);
	if (params != NULL && msgpack_sbuffer_write(&sb, params, params_len)) {
		msgpack_sbuffer_destroy(&sb);
		dlm__result(c, DLM_E_NOMEM, NULL);
		dlm__leave(c);
		return DLM_E_NOMEM;
	}
	dlm__sync_req(&req, &cv, NULL);
	req.want_raw = true;
	rc = dlm__call(c, &req, method, params != NULL ? &sb : NULL);
	pthread_cond_destroy(&cv);
	msgpack_sbuffer_destroy(&sb);
	dlm__result(c, rc, req.r.message);
	dlm__leave(c);

	if (rc == 0 && result != NULL) {
		*result = req.r.raw;
		req.r.raw = NULL;
		if (result_len != NULL)
			*result_len = req.r.raw_len;
	}
	if (rc != 0 && message != NULL) {
		*message = req.r.message;
		req.r.message = NULL;
	}
	free(req.r.raw);
	free(req.r.message);
	return rc;
}
