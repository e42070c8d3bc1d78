/*
 * The convert method: a session changes the mode of a lock it holds, as
 * the kernel DLM's convert does (doc/PROTOCOL.md). Exclusive to shared is
 * done at once; shared to exclusive at once when the session is the only
 * holder, else it waits ahead of the ordinary waiters, as a pending
 * request (struct pending with convert set) that session.c's callbacks
 * answer as they answer a waiting acquire: granted, timed out, cancelled
 * by its msgid, or ended with the hold or the session.
 */
#include "config.h"

#include <stdio.h>

#include "acl.h"
#include "dlmd.h"

static int
convert_mode(struct request *req, enum lt_mode *mode)
{
	const msgpack_object *o = mpr_get(req->params, "mode");

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'mode' is required: \"exclusive\" or \"shared\"");
	if (mpr_str_eq(o, "exclusive"))
		*mode = LT_EXCLUSIVE;
	else if (mpr_str_eq(o, "shared"))
		*mode = LT_SHARED;
	else
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'mode' must be \"exclusive\" or \"shared\"");
	return 0;
}

/* Why an upgrade that may not wait was refused. */
static int
convert_busy(struct request *req, const struct lt_lock *l, const char *name)
{
	if (l->nholders == 1)
		return request_error(req, DLM_E_WOULD_BLOCK, "lock '%s' is "
		    "held by this session alone, but nothing is granted%s",
		    name, cluster_not_granting());
	return request_error(req, DLM_E_WOULD_BLOCK, "lock '%s' is shared "
	    "with %u other holders", name, l->nholders - 1);
}

int
convert_method(struct request *req)
{
	static struct lt_cycle cycle;
	struct session *s = req->conn->session;
	struct lt_convert cv = { 0 };
	const msgpack_object *o;
	const char *name, *safe;
	size_t namelen;
	int64_t timeout = -1;
	uint64_t token = 0, now;
	struct lt_lock *l;
	struct lt_hold *h = NULL;
	struct lt_wait *w;
	struct pending *p;
	uint8_t receipt[RECEIPT_LEN];
	char what[300];
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = convert_mode(req, &cv.mode)) != 0 ||
	    (rc = param_int(req, "timeout_ms", false, -1, INT32_MAX,
	    &timeout)) != 0 ||
	    (rc = request_right(req, ACL_LOCK, name, namelen)) != 0)
		return rc;
	if ((o = mpr_get(req->params, "token")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL && (!mpr_uint(o, &token) ||
	    token == 0))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'token' must be a positive integer");
	safe = safe_str(name, namelen);
	/*
	 * With a token the convert means that hold, as release does: its
	 * present token, or the one before its latest conversion.
	 */
	if ((l = locktab_find(srv->lt, name, namelen)) != NULL)
		h = locktab_hold_of(l, &s->owner);
	if (h == NULL || (token != 0 && h->token != token &&
	    h->prev_token != token))
		return request_error(req, DLM_E_NOT_HELD, "lock '%s' is not "
		    "held by this session%s", safe, token != 0 ?
		    " with that token" : "");
	cv.may_wait = timeout != 0;
	cv.cycle = &cycle;
	now = now_ms();
	rc = locktab_convert(srv->lt, &s->owner, name, namelen, &cv, now, &h,
	    &w);
	switch (rc) {
	case LT_GRANTED:
		pack_converted(&req->res, h, session_valid_ms(s, now),
		    session_hold_receipt(s, h, receipt) ? receipt : NULL);
		return 0;
	case LT_QUEUED:
		p = pending_new(s, req->msgid, timeout);
		p->convert = true;
		p->wait = w;
		w->udata = p;
		return DISPATCH_PENDING;
	case DLM_E_WOULD_BLOCK:
		return convert_busy(req, l, safe);
	case DLM_E_KIND_MISMATCH:
		return request_error(req, rc, "lock '%s' is neither a mutex "
		    "nor an rlock: only those convert", safe);
	case DLM_E_ALREADY_HELD:
		return request_error(req, rc, "this session converts lock "
		    "'%s' already", safe);
	case DLM_E_LIMIT:
		return request_error(req, rc, "this session has %u holds and "
		    "%u waits; the limits are %u holds+waits and %u waits",
		    s->owner.nholds, s->owner.nwaits, srv->cfg->max_holds,
		    srv->cfg->max_waits);
	case DLM_E_DEADLOCK:
		snprintf(what, sizeof what, "converting '%s' to exclusive",
		    safe);
		return request_deadlock(req, what, &cycle);
	default:
		return request_error(req, rc, "%s", dlm_proto_errdesc(rc));
	}
}
