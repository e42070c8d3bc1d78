/*
 * What a method handler uses, whichever file it lives in: its parameters
 * read and checked, its refusals worded, the rules asked. Nothing here
 * calls a handler or knows the method table, so handlers depend on this
 * file and on dispatch.c's table only through it.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"
#include "mpack.h"
#include "proto.h"

/* 0 when the caller may use right on the lock; else PERMISSION, why. */
int
request_right(struct request *req, unsigned right, const char *name,
    size_t len)
{
	return auth_right(req->conn, right, name, len, req->errmsg,
	    sizeof req->errmsg);
}

int
request_error(struct request *req, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(req->errmsg, sizeof req->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

/* A str or bin parameter of 1..max bytes. */
int
param_name(struct request *req, const char *key, bool required,
    const char **p, size_t *len, size_t max)
{
	const msgpack_object *o = mpr_get(req->params, key);

	*p = NULL;
	*len = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL) {
		if (required)
			return request_error(req, DLM_E_BAD_REQUEST,
			    "'%s' is required", key);
		return 0;
	}
	if (!mpr_bytes(o, p, len))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be a string", key);
	if (*len == 0)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must not be empty", key);
	if (*len > max)
		return request_error(req, DLM_E_LIMIT,
		    "'%s' is %zu bytes long; the limit is %zu", key, *len, max);
	return 0;
}

/* An integer parameter within [min, max]; *v is untouched when absent. */
int
param_int(struct request *req, const char *key, bool required, int64_t min,
    int64_t max, int64_t *v)
{
	const msgpack_object *o = mpr_get(req->params, key);
	int64_t x;

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL) {
		if (required)
			return request_error(req, DLM_E_BAD_REQUEST,
			    "'%s' is required", key);
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 > (uint64_t)INT64_MAX)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be between %lld and %lld", key, (long long)min,
		    (long long)max);
	if (!mpr_int(o, &x))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be an integer", key);
	if (x < min || x > max)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be between %lld and %lld", key, (long long)min,
		    (long long)max);
	*v = x;
	return 0;
}

/* A str parameter of at most max bytes, possibly empty; NULL when absent. */
int
param_str(struct request *req, const char *key, const char **p, size_t *len,
    size_t max)
{
	const msgpack_object *o = mpr_get(req->params, key);

	*p = NULL;
	*len = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!mpr_str(o, p, len))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be a string", key);
	if (*len > max)
		return request_error(req, DLM_E_LIMIT,
		    "'%s' is %zu bytes long; the limit is %zu", key, *len, max);
	return 0;
}

/*
 * A member that is not the active one refuses to open a session, naming
 * the active when it knows it (the error map's "active").
 */
int
request_not_active(struct request *req)
{
	req->err_active = srv->cluster.active[0] != '\0' ?
	    srv->cluster.active : NULL;
	return request_error(req, DLM_E_NOT_ACTIVE, "this dlmd is a %s member "
	    "of its cluster%s%s", cluster_role_word(srv->cluster.role),
	    req->err_active != NULL ? "; the active one is " : "",
	    req->err_active != NULL ? req->err_active : "");
}

/*
 * What every request that opens a session (hello, reclaim) checks first:
 * the connection has none yet, and the client speaks our protocol.
 */
int
request_opens_session(struct request *req)
{
	int64_t proto = 0;
	int rc;

	if (req->conn->session != NULL)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "this connection already has a session");
	if ((rc = param_int(req, "proto", true, INT64_MIN, INT64_MAX,
	    &proto)) != 0)
		return rc;
	if (proto != DLM_PROTO_VERSION)
		return request_error(req, DLM_E_UNSUPPORTED,
		    "protocol version %lld is not supported; this server speaks "
		    "version %d", (long long)proto, DLM_PROTO_VERSION);
	return 0;
}

/*
 * A lock's kind in words, for a message: "mutex", or "semaphore of
 * capacity N".
 */
const char *
kind_phrase(const struct lt_lock *l)
{
	static char buf[64];

	if (l->kind != LT_SEMAPHORE)
		return l->kind == LT_RLOCK ? "rlock" : "mutex";
	snprintf(buf, sizeof buf, "semaphore of capacity %u", l->capacity);
	return buf;
}

/* Who holds a lock, for a message: "client NAME" or "N shared holders". */
const char *
holders_phrase(const struct lt_lock *l)
{
	static char buf[400];
	const struct lt_hold *h = TAILQ_FIRST(&l->holders);

	if (l->kind == LT_SEMAPHORE)
		snprintf(buf, sizeof buf, "a semaphore with %u of its %u "
		    "permits in use by %u holders and %u waiters queued",
		    l->in_use, l->capacity, l->nholders, l->nwaiters);
	else if (h == NULL)
		snprintf(buf, sizeof buf, "queued for by %u waiters",
		    l->nwaiters);
	else if (l->nholders == 1) {
		snprintf(buf, sizeof buf, "held by %s",
		    safe_str0(session_of_owner(h->owner)->name));
	} else
		snprintf(buf, sizeof buf, "held by %u shared holders",
		    l->nholders);
	return buf;
}

bool
lock_kind(const msgpack_object *o, int *kind)
{
	*kind = LT_MUTEX;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL ||
	    mpr_str_eq(o, "mutex"))
		return true;
	if (mpr_str_eq(o, "rlock"))
		*kind = LT_RLOCK;
	else if (mpr_str_eq(o, "semaphore"))
		*kind = LT_SEMAPHORE;
	else
		return false;
	return true;
}

/* An optional bool parameter; *v is untouched when absent. */
int
param_bool(struct request *req, const char *key, bool *v)
{
	const msgpack_object *o = mpr_get(req->params, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!mpr_bool(o, v))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be true or false", key);
	return 0;
}

/* Append to a message being built; false once it is full. */
static bool
msg_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool
msg_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *off) {
		*off = len;
		return false;
	}
	*off += (size_t)n;
	return true;
}

/* Append to a message being built; false once it is full. */
static bool
msg_add(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A step's client, as a message names it: the requester is "this session". */
static const char *
cycle_who(const struct request *req, const struct lt_cycle_step *st)
{
	const struct session *s = session_of_owner(st->owner);

	return s == req->conn->session ? "this session" : safe_str0(s->name);
}

/*
 * DEADLOCK for a request (what: "acquiring 'x'") that would close cy: the
 * message says the cycle in words, the error map lists it (reply.c).
 */
int
request_deadlock(struct request *req, const char *what,
    const struct lt_cycle *cy)
{
	uint32_t n = cy->len < LT_CYCLE_MAX ? cy->len : LT_CYCLE_MAX;
	size_t off = 0, len = sizeof req->errmsg;
	char *buf = req->errmsg;

	srv->stats.deadlocks++;
	req->err_cycle = cy;
	/*
	 * Another session's lock is named only to a caller who may view it,
	 * so that a refusal tells no more than a listing would.
	 */
	req->err_cycle_hidden = 0;
	/* cppcheck-suppress knownConditionTrueFalse ; the table filled cy */
	for (uint32_t i = 0; i < n; i++) {
		const struct lt_cycle_step *st = &cy->steps[i];

		if (session_of_owner(st->owner) != req->conn->session &&
		    !auth_may(req->conn, ACL_VIEW, st->lock->name,
		    st->lock->namelen))
			req->err_cycle_hidden |= UINT64_C(1) << i;
	}
	msg_add(buf, len, &off, "%s would close a cycle of %u waits", what,
	    cy->len);
	/* cppcheck-suppress knownConditionTrueFalse ; the table filled cy */
	for (uint32_t i = 0; i < n; i++) {
		const struct lt_cycle_step *st = &cy->steps[i];
		const struct lt_cycle_step *next = &cy->steps[(i + 1) % n];

		/* The next of the last step kept is unknown when cut short. */
		/* cppcheck-suppress knownConditionTrueFalse */
		const char *behind = n < cy->len && i + 1 == n ? "..." :
		    cycle_who(req, next);

		char lock[300];

		if (req->err_cycle_hidden & (UINT64_C(1) << i))
			snprintf(lock, sizeof lock, "a lock it may not view");
		else
			snprintf(lock, sizeof lock, "'%s'", safe_str(
			    st->lock->name, st->lock->namelen));
		if (!msg_add(buf, len, &off, "%s%s %s for %s (%s) behind %s",
		    i == 0 ? ": " : "; ", cycle_who(req, st),
		    i == 0 ? "would wait" : "waits", lock,
		    st->mode == LT_SHARED ? "shared" : "exclusive", behind))
			break;
	}
	if (off >= len)
		memcpy(buf + len - 4, "...", 4);
	return DLM_E_DEADLOCK;
}
