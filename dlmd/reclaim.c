/*
 * The reclaim method: after a fail-over, a client proves its session and
 * its holds to the new active, which installs them with their tokens
 * (doc/HA.md, doc/PROTOCOL.md). Like hello, it opens a session; unlike
 * hello, the session is the one the client had, name and secret, and comes
 * with its holds.
 *
 * Everything comes from the network and is checked before anything
 * changes: the shape of every claim, then the session's receipt. Each
 * hold's receipt is then checked on its own; a claim that fails is
 * refused in the answer, the others kept. Receipts are compared in
 * constant time.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"

#define RECLAIM_HOLDS_MAX	65536	/* when max-holds sets none */

/* A claim as read from the request: pointers into the request. */
struct claim {
	struct receipt_claim	 c;
	const char		*receipt;
	size_t			 receiptlen;
	uint32_t		 proven;	/* the receipt's count */
	uint32_t		 proven_permits; /* a semaphore's, likewise */
	/*
	 * The hold's value, as its holder sends it again: the receipt does
	 * not cover it (a session can state it only for its own holds).
	 */
	const char		*value;
	size_t			 valuelen;
	/*
	 * The hold's choices at its acquire, which its receipt does not
	 * cover: they are the holder's own to make (a delay within this
	 * server's cap), so its word is taken for them.
	 */
	uint32_t		 lock_delay_ms;
	bool			 notify_contended;
};

static int
claim_enum(struct request *req, const msgpack_object *m, const char *key,
    const char *a, const char *b, unsigned *v)
{
	const msgpack_object *o = mpr_get(m, key);

	*v = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (mpr_str_eq(o, a))
		*v = 0;
	else if (mpr_str_eq(o, b))
		*v = 1;
	else
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's '%s' "
		    "must be \"%s\" or \"%s\"", key, a, b);
	return 0;
}

static int
claim_uint(struct request *req, const msgpack_object *m, const char *key,
    uint64_t dflt, uint64_t max, uint64_t *v)
{
	const msgpack_object *o = mpr_get(m, key);

	*v = dflt;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL) {
		if (dflt == 0)
			return request_error(req, DLM_E_BAD_REQUEST,
			    "a hold's '%s' is required", key);
		return 0;
	}
	if (!mpr_uint(o, v) || *v == 0 || *v > max)
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's '%s' "
		    "must be an integer from 1 to %llu", key,
		    (unsigned long long)max);
	return 0;
}

/* A claim's kind: "mutex" (the default), "rlock" or "semaphore". */
static int
claim_kind(struct request *req, const msgpack_object *m, unsigned *kind)
{
	int k;

	if (!lock_kind(mpr_get(m, "kind"), &k))
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's 'kind' "
		    "must be \"mutex\", \"rlock\" or \"semaphore\"");
	*kind = (unsigned)k;
	return 0;
}

/*
 * A semaphore claim's capacity (required), permits (required) and
 * receipt_permits (what its receipt proves: the grant's, which a partial
 * release since may have lowered; default permits). Other claims have
 * none, whatever they say.
 */
static int
claim_permits(struct request *req, const msgpack_object *m, struct claim *cl)
{
	uint64_t capacity, permits, proven;
	int rc;

	if (cl->c.kind != LT_SEMAPHORE)
		return 0;
	if ((rc = claim_uint(req, m, "capacity", 0, LT_CAPACITY_MAX,
	    &capacity)) != 0 ||
	    (rc = claim_uint(req, m, "permits", 0, capacity, &permits)) != 0 ||
	    (rc = claim_uint(req, m, "receipt_permits", permits, capacity,
	    &proven)) != 0)
		return rc;
	if (proven < permits)
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's "
		    "'permits' (%llu) is above what its receipt proves (%llu)",
		    (unsigned long long)permits, (unsigned long long)proven);
	if (cl->c.mode != LT_EXCLUSIVE || cl->c.count != 1)
		return request_error(req, DLM_E_BAD_REQUEST, "a semaphore's "
		    "hold has no shared mode and a count of one");
	cl->c.capacity = (uint32_t)capacity;
	cl->c.permits = (uint32_t)permits;
	cl->proven_permits = (uint32_t)proven;
	return 0;
}

/* One element of holds, checked for shape only. */
static int
claim_read(struct request *req, const msgpack_object *m, struct claim *cl)
{
	const msgpack_object *o;
	uint64_t count, proven, token;
	int rc;

	memset(cl, 0, sizeof *cl);
	if (m->type != MSGPACK_OBJECT_MAP)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "each of 'holds' must be a map");
	o = mpr_get(m, "lock");
	if (o == NULL || !mpr_bytes(o, &cl->c.lock, &cl->c.locklen) ||
	    cl->c.locklen == 0 || cl->c.locklen > srv->cfg->max_name_len)
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's 'lock' "
		    "must be a name of 1 to %u bytes", srv->cfg->max_name_len);
	o = mpr_get(m, "receipt");
	if (o == NULL || !mpr_bytes(o, &cl->receipt, &cl->receiptlen))
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's "
		    "'receipt' is required: the one its grant carried");
	if ((o = mpr_get(m, "value")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL &&
	    !mpr_bytes(o, &cl->value, &cl->valuelen))
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's "
		    "'value' must be bytes (bin or str)");
	if (cl->valuelen == 0)
		cl->value = NULL;
	if ((rc = claim_kind(req, m, &cl->c.kind)) != 0 ||
	    (rc = claim_enum(req, m, "mode", "exclusive", "shared",
	    &cl->c.mode)) != 0 ||
	    (rc = claim_uint(req, m, "token", 0, INT64_MAX, &token)) != 0 ||
	    (rc = claim_uint(req, m, "count", 1, UINT32_MAX, &count)) != 0 ||
	    (rc = claim_uint(req, m, "receipt_count", count, UINT32_MAX,
	    &proven)) != 0)
		return rc;
	if (proven < count)
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's 'count' "
		    "(%llu) is above the count its receipt proves (%llu)",
		    (unsigned long long)count, (unsigned long long)proven);
	if ((o = mpr_get(m, "lock_delay_ms")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL) {
		uint64_t delay;

		if (!mpr_uint(o, &delay))
			return request_error(req, DLM_E_BAD_REQUEST, "a hold's "
			    "'lock_delay_ms' must be an unsigned integer");
		/*
		 * Cut to this server's cap, not refused: the hold was
		 * granted with it, and refusing would lose the hold.
		 */
		cl->lock_delay_ms = delay > srv->cfg->max_lock_delay_ms ?
		    srv->cfg->max_lock_delay_ms : (uint32_t)delay;
	}
	if ((o = mpr_get(m, "notify_contended")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL &&
	    !mpr_bool(o, &cl->notify_contended))
		return request_error(req, DLM_E_BAD_REQUEST, "a hold's "
		    "'notify_contended' must be true or false");
	cl->c.token = token;
	cl->c.count = (uint32_t)count;
	cl->proven = (uint32_t)proven;
	return claim_permits(req, m, cl);
}

/*
 * {lock, token, count, kept}, a semaphore's with {permits}, or {lock,
 * token, kept, error, message}.
 */
static void
pack_outcome(struct mpw *w, const struct claim *cl, int rc, const char *why)
{
	bool permits = rc == 0 && cl->c.kind == LT_SEMAPHORE;

	mpw_map(w, rc == 0 ? 4 + permits : 5);
	if (permits) {
		mpw_key(w, "permits");
		mpw_u64(w, cl->c.permits);
	}
	mpw_key(w, "lock");
	mpw_strn(w, cl->c.lock, cl->c.locklen);
	mpw_key(w, "token");
	mpw_u64(w, cl->c.token);
	mpw_key(w, "kept");
	mpw_bool(w, rc == 0);
	if (rc == 0) {
		mpw_key(w, "count");
		mpw_u64(w, cl->c.count);
		return;
	}
	mpw_key(w, "error");
	mpw_str(w, dlm_proto_errname(rc));
	mpw_key(w, "message");
	mpw_str(w, why);
}

/* Check one claim's receipt and install it; 0 or an error code. */
static int
claim_install(struct session *s, const struct claim *cl, uint64_t now,
    const char **why)
{
	struct receipt_who who = { &srv->cluster.key, session_cluster_name(),
	    s->name, strlen(s->name), s->secret, strlen(s->secret) };
	struct receipt_claim proven = cl->c;
	uint8_t want[RECEIPT_LEN];
	struct lt_hold *h;
	int rc;

	proven.count = cl->proven;
	proven.permits = cl->proven_permits;
	receipt_hold(&who, &proven, want);
	if (!receipt_equal(want, cl->receipt, cl->receiptlen)) {
		*why = "the receipt does not prove this hold";
		return DLM_E_PERMISSION;
	}
	/* This member's limit may be lower than the one that granted it. */
	if (cl->valuelen > srv->cfg->max_value_len) {
		*why = "its value is longer than max-value-len";
		return DLM_E_LIMIT;
	}
	if (cl->c.kind == LT_SEMAPHORE)
		rc = locktab_install_semaphore(srv->lt, &s->owner, cl->c.lock,
		    cl->c.locklen, cl->c.capacity, cl->c.permits, cl->c.token,
		    DLM_LOST_FAILOVER, now, &h);
	else
		rc = locktab_install(srv->lt, &s->owner, cl->c.lock,
		    cl->c.locklen, cl->c.kind, cl->c.mode, cl->c.count,
		    cl->c.token, DLM_LOST_FAILOVER, now, &h);
	switch (rc) {
	case LT_GRANTED:
		if (cl->value != NULL)
			locktab_set_value(srv->lt, h, cl->value, cl->valuelen);
		locktab_hold_options(srv->lt, h, cl->lock_delay_ms,
		    cl->notify_contended);
		*why = "";
		return 0;
	case DLM_E_WOULD_BLOCK:
		*why = cl->c.kind == LT_SEMAPHORE ? "a later grant of this "
		    "lock was reclaimed, or the semaphore's permits are all "
		    "claimed: this hold had ended or shrunk" : "a later grant "
		    "of this lock was reclaimed: this hold had ended";
		break;
	case DLM_E_ALREADY_HELD:
		*why = "claimed twice";
		break;
	case DLM_E_LIMIT:
		*why = "more holds than max-holds";
		break;
	default:
		*why = "not a hold this cluster granted";
		break;
	}
	return rc;
}

int
reclaim_method(struct request *req)
{
	const struct dlmd_config *cfg = srv->cfg;
	struct conn *c = req->conn;
	const msgpack_object *holds;
	const char *name, *secret, *auth, *receipt, *why;
	size_t namelen, secretlen, authlen, receiptlen, nholds, kept = 0;
	struct receipt_who who;
	struct claim cl;
	struct session *s;
	uint8_t want[RECEIPT_LEN];
	uint32_t record_lease;
	int64_t lease = -1, linger = -1, rev;
	uint64_t now = now_ms();
	int rc;

	if (!srv->cluster.enabled)
		return request_error(req, DLM_E_UNSUPPORTED, "reclaim is for "
		    "a cluster's fail-over; this dlmd is not clustered");
	if ((rc = request_opens_session(req)) != 0)
		return rc;
	if ((rc = param_name(req, "client", true, &name, &namelen,
	    cfg->max_name_len)) != 0 ||
	    (rc = param_name(req, "secret", true, &secret, &secretlen,
	    DLMD_SECRET_LEN)) != 0 ||
	    (rc = param_name(req, "receipt", true, &receipt, &receiptlen,
	    RECEIPT_LEN)) != 0 ||
	    (rc = param_name(req, "auth", false, &auth, &authlen, 4096)) != 0 ||
	    (rc = param_int(req, "lease_ms", false, 0, INT64_MAX,
	    &lease)) != 0 ||
	    (rc = param_int(req, "linger_ms", false, 0, INT64_MAX,
	    &linger)) != 0)
		return rc;
	if (memchr(name, '\0', namelen) != NULL ||
	    memchr(secret, '\0', secretlen) != NULL)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'client' and 'secret' must not contain a NUL byte");
	holds = mpr_get(req->params, "holds");
	nholds = holds != NULL && holds->type == MSGPACK_OBJECT_ARRAY ?
	    holds->via.array.size : 0;
	if (holds != NULL && holds->type != MSGPACK_OBJECT_ARRAY &&
	    holds->type != MSGPACK_OBJECT_NIL)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'holds' must be an array of maps");
	if (nholds > (cfg->max_holds != 0 ? cfg->max_holds :
	    RECLAIM_HOLDS_MAX))
		return request_error(req, DLM_E_LIMIT, "%zu holds claimed; the "
		    "limit is %u", nholds, cfg->max_holds != 0 ?
		    cfg->max_holds : RECLAIM_HOLDS_MAX);
	for (size_t i = 0; i < nholds; i++)
		if ((rc = claim_read(req, &holds->via.array.ptr[i], &cl)) != 0)
			return rc;
	if ((rc = auth_hello(c, auth, authlen, req->errmsg,
	    sizeof req->errmsg)) != 0)
		return rc;
	/* Taking a hold back is taking it: the lock right, as for acquire. */
	for (size_t i = 0; i < nholds; i++) {
		claim_read(req, &holds->via.array.ptr[i], &cl);
		if ((rc = request_right(req, ACL_LOCK, cl.c.lock,
		    cl.c.locklen)) != 0)
			return rc;
	}
	if (!cluster_is_active())
		return request_not_active(req);
	if (!cluster_in_grace())
		return request_error(req, DLM_E_NOT_FOUND, "no fail-over grace "
		    "period is running: holds of an earlier active are gone; "
		    "hello and acquire anew");
	/* Tokens, records and the key come within milliseconds of the role. */
	if (!cluster_reclaim_ready())
		return DISPATCH_DEFER;

	who = (struct receipt_who){ &srv->cluster.key, session_cluster_name(),
	    name, namelen, secret, secretlen };
	receipt_session(&who, want);
	if (!receipt_equal(want, receipt, receiptlen))
		return request_error(req, DLM_E_PERMISSION, "the receipt does "
		    "not prove session '%s' with this secret",
		    safe_str(name, namelen));
	if (session_find(name, namelen) != NULL)
		return request_error(req, DLM_E_NAME_IN_USE, "session '%s' is "
		    "here already: resume it with hello", safe_str(name,
		    namelen));
	if (records_claim(name, namelen, now, &record_lease, &rev, &why) != 0)
		return request_error(req, DLM_E_NOT_FOUND, "session '%s' "
		    "cannot reclaim: %s", safe_str(name, namelen), why);

	s = session_create(c, name, namelen);
	memcpy(s->secret, secret, secretlen);
	s->secret[secretlen] = '\0';
	s->record = RECORD_DONE;
	s->record_rev = rev;
	s->record_lease_ms = record_lease;
	s->lease_ms = lease >= 0 ? (uint32_t)(lease > UINT32_MAX ?
	    UINT32_MAX : lease) : record_lease;
	if (s->lease_ms > record_lease)
		s->lease_ms = record_lease;
	if (s->lease_ms > cfg->lease_max_ms)
		s->lease_ms = cfg->lease_max_ms;
	if (s->lease_ms < cfg->lease_min_ms)
		s->lease_ms = cfg->lease_min_ms;
	s->linger_ms = linger >= 0 ? (uint32_t)(linger > cfg->linger_max_ms ?
	    cfg->linger_max_ms : linger) : 0;
	conn_greeted(c);
	session_touch(s, now);
	srv->cluster.reclaims++;

	mpw_map(&req->res, 6);
	mpw_key(&req->res, "session");
	mpw_u64(&req->res, s->id);
	mpw_key(&req->res, "client");
	mpw_str(&req->res, s->name);
	mpw_key(&req->res, "receipt");
	mpw_bin(&req->res, want, RECEIPT_LEN);
	mpw_key(&req->res, "lease_ms");
	mpw_u64(&req->res, s->lease_ms);
	mpw_key(&req->res, "linger_ms");
	mpw_u64(&req->res, s->linger_ms);
	mpw_key(&req->res, "holds");
	mpw_array(&req->res, (uint32_t)nholds);
	/* Watchers hear once per lock, with the holds and their values. */
	watch_hold();
	for (size_t i = 0; i < nholds; i++) {
		claim_read(req, &holds->via.array.ptr[i], &cl);
		rc = claim_install(s, &cl, now, &why);
		if (rc == 0)
			kept++;
		pack_outcome(&req->res, &cl, rc, why);
	}
	watch_release();
	srv->cluster.reclaimed_holds += kept;
	log_info("session %s reclaimed %zu of %zu holds from %s",
	    safe_str0(s->name), kept, nholds, c->peer);
	cluster_reclaimed();
	/* A hello of this name waited for this reclaim. */
	dispatch_resume();
	return 0;
}
