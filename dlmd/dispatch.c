/*
 * Requests: decode a frame, check its shape, find the method, check the
 * caller may call it, and run it. Every field from the network is checked for
 * type and size here before anything else sees it.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"
#include "xmalloc.h"

#define M_SESSION	0x1	/* needs hello first */
#define M_ADMIN		0x2	/* admins only */
/*
 * Needs a session, except on a cluster member that is not active: there no
 * session can be had, and these still tell an operator what it is doing.
 */
#define M_OBSERVE	0x4
/*
 * Only on the active member of a cluster: NOT_ACTIVE elsewhere, with or
 * without a session (the client goes to the active one to watch).
 */
#define M_ACTIVE	0x8

struct method {
	const char	*name;
	int		(*fn)(struct request *);
	unsigned	 flags;
};

static int	m_hello(struct request *);
static int	m_ping(struct request *);
static int	m_acquire(struct request *);
static int	m_check(struct request *);
static int	m_release(struct request *);
static int	m_cancel(struct request *);
static int	m_reset(struct request *);
static int	m_bye(struct request *);

static const struct method methods[] = {
	{ "hello", m_hello, 0 },
	{ "reclaim", reclaim_method, 0 },
	{ "ping", m_ping, M_SESSION },
	{ "acquire", m_acquire, M_SESSION },
	{ "check", m_check, M_SESSION },
	{ "release", m_release, M_SESSION },
	{ "cancel", m_cancel, M_SESSION },
	{ "reset", m_reset, M_SESSION },
	{ "bye", m_bye, M_SESSION },
	{ "locks", admin_locks, M_SESSION },
	{ "lock", admin_lock, M_SESSION },
	{ "clients", admin_clients, M_SESSION },
	{ "stats", admin_stats, M_SESSION | M_OBSERVE },
	{ "cluster", admin_cluster, M_SESSION | M_OBSERVE },
	{ "force_release", admin_force_release, M_SESSION | M_ADMIN },
	{ "reset_client", admin_reset_client, M_SESSION | M_ADMIN },
	{ "reset_all", admin_reset_all, M_SESSION | M_ADMIN },
	{ "watch", watch_method, M_SESSION | M_ACTIVE },
	{ "unwatch", unwatch_method, M_SESSION | M_ACTIVE },
	{ "convert", convert_method, M_SESSION },
};

/* Connections whose frame waits for etcd, each paused meanwhile. */
TAILQ_HEAD(conn_deferred, conn);
static struct conn_deferred deferred = TAILQ_HEAD_INITIALIZER(deferred);

/* Keep the request's frame to serve again; pause its connection. */
static void
defer(struct request *req)
{
	struct conn *c = req->conn;

	c->deferred = xmalloc(req->framelen);
	memcpy(c->deferred, req->frame, req->framelen);
	c->deferred_len = req->framelen;
	TAILQ_INSERT_TAIL(&deferred, c, defer_link);
	conn_pause(c);
}

void
dispatch_conn_closed(struct conn *c)
{
	if (c->deferred == NULL)
		return;
	TAILQ_REMOVE(&deferred, c, defer_link);
	free(c->deferred);
	c->deferred = NULL;
}

/* Serve each deferred frame again, once, in order. */
static void
dispatch_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c;
	size_t n = 0;

	/* Those deferred again go to the tail: count, rather than chase it. */
	TAILQ_FOREACH(c, &deferred, defer_link)
		n++;
	while (n-- > 0 && (c = TAILQ_FIRST(&deferred)) != NULL) {
		char *buf = c->deferred;
		size_t len = c->deferred_len;

		TAILQ_REMOVE(&deferred, c, defer_link);
		c->deferred = NULL;
		if (!c->dead && !c->closing)
			dispatch_frame(c, buf, len);
		free(buf);
		if (c->deferred == NULL)
			conn_resume(c);
	}
}

/*
 * Something deferred frames may wait for changed. They are served from
 * the loop, never from inside another request: requests share the
 * decoding zone and the result buffer.
 */
void
dispatch_resume(void)
{
	static struct event ev;
	static bool assigned;

	if (TAILQ_EMPTY(&deferred))
		return;
	if (!assigned) {
		event_assign(&ev, srv->base, -1, 0, dispatch_resume_cb, NULL);
		assigned = true;
	}
	event_active(&ev, EV_TIMEOUT, 0);
}

/*
 * A hold's value: str or bin of at most max bytes (LIMIT past it, as for
 * names); absent, nil or empty is none (*p NULL).
 */
static int
param_value(struct request *req, const char *key, const char **p,
    size_t *len, size_t max)
{
	const msgpack_object *o = mpr_get(req->params, key);

	*p = NULL;
	*len = 0;
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!mpr_bytes(o, p, len))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be bytes (bin or str)", key);
	if (*len > max)
		return request_error(req, DLM_E_LIMIT, "'%s' is %zu bytes "
		    "long; the limit is %zu (max-value-len)", key, *len, max);
	if (*len == 0)
		*p = NULL;
	return 0;
}

static uint32_t
clamp_u32(int64_t v, uint32_t lo, uint32_t hi)
{
	if (v < lo)
		return lo;
	if (v > hi)
		return hi;
	return (uint32_t)v;
}

static void
session_set_info(struct session *s, const msgpack_object *info)
{
	const msgpack_object *o;
	const char *p;
	size_t n;
	int64_t pid;

	if ((o = mpr_get(info, "host")) != NULL && mpr_str(o, &p, &n)) {
		free(s->info_host);
		s->info_host = xstrndup(p, n);
	}
	if ((o = mpr_get(info, "label")) != NULL && mpr_str(o, &p, &n)) {
		free(s->info_label);
		s->info_label = xstrndup(p, n);
	}
	if ((o = mpr_get(info, "pid")) != NULL && mpr_int(o, &pid))
		s->info_pid = pid;
}

static int
check_info(struct request *req, const msgpack_object *info)
{
	static const char *keys[] = { "host", "label" };
	const msgpack_object *o;
	int64_t pid;

	if (info == NULL || info->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (info->type != MSGPACK_OBJECT_MAP)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'info' must be a map");
	for (size_t i = 0; i < 2; i++) {
		const char *p;
		size_t n;

		if ((o = mpr_get(info, keys[i])) == NULL ||
		    o->type == MSGPACK_OBJECT_NIL)
			continue;
		if (!mpr_str(o, &p, &n))
			return request_error(req, DLM_E_BAD_REQUEST,
			    "'info.%s' must be a string", keys[i]);
		if (n > DLMD_INFO_MAX)
			return request_error(req, DLM_E_LIMIT,
			    "'info.%s' is longer than %d bytes", keys[i],
			    DLMD_INFO_MAX);
	}
	if ((o = mpr_get(info, "pid")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL && !mpr_int(o, &pid))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'info.pid' must be an integer");
	return 0;
}

/* A server-made name for a client that gave none: HOST:PID:N or PEER:N. */
static void
hello_make_name(struct conn *c, char *buf, size_t len)
{
	do {
		srv->next_anon++;
		if (c->pid > 0)
			snprintf(buf, len, "%s:%ld:%llu", srv->hostname,
			    (long)c->pid, (unsigned long long)srv->next_anon);
		else
			snprintf(buf, len, "%s:%llu", c->peer,
			    (unsigned long long)srv->next_anon);
	} while (session_find(buf, strlen(buf)) != NULL);
}

static int
m_hello(struct request *req)
{
	struct dlmd_config *cfg = srv->cfg;
	struct conn *c = req->conn;
	const char *name, *resume, *auth;
	size_t namelen, resumelen, authlen;
	const msgpack_object *info = mpr_get(req->params, "info");
	int64_t lease = -1, linger = -1;
	struct session *s;
	bool resumed = false, have_receipt;
	uint8_t receipt[RECEIPT_LEN];
	char made[256];
	int rc;

	if ((rc = request_opens_session(req)) != 0)
		return rc;
	if ((rc = param_name(req, "client", false, &name, &namelen,
	    cfg->max_name_len)) != 0 ||
	    (rc = param_str(req, "resume", &resume, &resumelen, 256)) != 0 ||
	    (rc = param_str(req, "auth", &auth, &authlen, 4096)) != 0 ||
	    (rc = param_int(req, "lease_ms", false, 0, INT64_MAX,
	    &lease)) != 0 ||
	    (rc = param_int(req, "linger_ms", false, 0, INT64_MAX,
	    &linger)) != 0 ||
	    (rc = check_info(req, info)) != 0)
		return rc;
	if (name != NULL && memchr(name, '\0', namelen) != NULL)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'client' must not contain a NUL byte");
	if ((rc = auth_hello(c, auth, authlen, req->errmsg,
	    sizeof req->errmsg)) != 0)
		return rc;
	/* After the token check: the hint is for clients, not strangers. */
	if (!cluster_is_active())
		return request_not_active(req);

	/*
	 * A name whose holds may yet be reclaimed is its owner's: hello waits
	 * until it has reclaimed (then NAME_IN_USE, or a resume) or lapsed.
	 */
	if (name != NULL && cluster_in_grace() && (!records_loaded() ||
	    records_pending(name, namelen, now_ms()))) {
		conn_hello_wait(c, (uint32_t)(srv->cluster.grace_until -
		    now_ms()) + cfg->lease_default_ms);
		return DISPATCH_DEFER;
	}
	s = name != NULL ? session_find(name, namelen) : NULL;
	if (s != NULL && s->conn != NULL && s->owner.deadline <= now_ms()) {
		/* Its lease ran out before its timer fired: expire it now. */
		session_touch(s, now_ms());
		s = NULL;
	}
	if (s != NULL) {
		if (resume == NULL || !auth_secret_equal(resume, resumelen,
		    s->secret, strlen(s->secret)))
			return request_error(req, DLM_E_NAME_IN_USE,
			    "client name '%s' belongs to a %s session%s",
			    safe_str(name, namelen), s->conn != NULL ?
			    "connected" : "lingering (awaiting resume)",
			    resume != NULL ?
			    " and the resume secret does not match it" : "");
		if (s->conn != NULL) {
			/*
			 * The secret proves it is the same client on a new
			 * connection (the old one may be half-open): take over.
			 */
			struct conn *old = s->conn;

			pending_cancel_all(s, DLM_E_CANCELLED,
			    "the session was resumed on another connection");
			old->session = NULL;
			s->conn = NULL;
			conn_close_after_flush(old);
		}
		session_attach(s, c);
		resumed = true;
		srv->stats.resumes++;
	} else {
		if (srv->nsessions >= cfg->max_clients && !c->admin)
			return request_error(req, DLM_E_LIMIT,
			    "the server has %u sessions, its max-clients limit",
			    srv->nsessions);
		if (name == NULL) {
			hello_make_name(c, made, sizeof made);
			name = made;
			namelen = strlen(made);
		}
		s = session_create(c, name, namelen);
	}
	conn_greeted(c);
	if (info != NULL && info->type == MSGPACK_OBJECT_MAP)
		session_set_info(s, info);
	/* A resumed session keeps its lease and linger unless given anew. */
	if (lease >= 0 || !resumed)
		s->lease_ms = clamp_u32(lease >= 0 ? lease :
		    cfg->lease_default_ms, cfg->lease_min_ms, cfg->lease_max_ms);
	if (linger >= 0 || !resumed)
		s->linger_ms = clamp_u32(linger >= 0 ? linger : 0, 0,
		    cfg->linger_max_ms);
	/* Never longer than its record says: a new active counts on it. */
	if (s->record != RECORD_NONE && s->lease_ms > s->record_lease_ms)
		s->lease_ms = s->record_lease_ms;
	session_touch(s, now_ms());
	log_debug("hello from %s as %s%s", c->peer, safe_str0(s->name),
	    resumed ? " (resumed)" : "");

	have_receipt = session_receipt(s, receipt);
	mpw_map(&req->res, have_receipt ? 8 : 7);
	if (have_receipt) {
		mpw_key(&req->res, "receipt");
		mpw_bin(&req->res, receipt, RECEIPT_LEN);
	}
	mpw_key(&req->res, "session");
	mpw_u64(&req->res, s->id);
	mpw_key(&req->res, "client");
	mpw_str(&req->res, s->name);
	mpw_key(&req->res, "secret");
	mpw_str(&req->res, s->secret);
	mpw_key(&req->res, "lease_ms");
	mpw_u64(&req->res, s->lease_ms);
	mpw_key(&req->res, "linger_ms");
	mpw_u64(&req->res, s->linger_ms);
	mpw_key(&req->res, "server");
	mpw_str(&req->res, PACKAGE_NAME "d " PACKAGE_VERSION);
	mpw_key(&req->res, "resumed");
	mpw_bool(&req->res, resumed);
	return 0;
}

static int
m_ping(struct request *req)
{
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "lease_ms");
	mpw_u64(&req->res, req->conn->session->lease_ms);
	return 0;
}

static int
param_enum(struct request *req, const char *key, const char *a,
    const char *b, int *v)
{
	const msgpack_object *o = mpr_get(req->params, key);

	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (mpr_str_eq(o, a))
		*v = 0;
	else if (mpr_str_eq(o, b))
		*v = 1;
	else
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'%s' must be \"%s\" or \"%s\"", key, a, b);
	return 0;
}

/* acquire's kind: "mutex" (the default), "rlock" or "semaphore". */
static int
param_kind(struct request *req, int *kind)
{
	if (!lock_kind(mpr_get(req->params, "kind"), kind))
		return request_error(req, DLM_E_BAD_REQUEST, "'kind' must be "
		    "\"mutex\", \"rlock\" or \"semaphore\"");
	return 0;
}

/*
 * A semaphore's capacity (required) and permits (default 1, at most the
 * capacity) into want; neither may be given for another kind, where they
 * would mean nothing.
 */
static int
param_permits(struct request *req, int kind, int mode, struct lt_want *want)
{
	int64_t capacity = 0, permits = 1;
	int rc;

	if ((rc = param_int(req, "capacity", kind == LT_SEMAPHORE, 1,
	    LT_CAPACITY_MAX, &capacity)) != 0 ||
	    (rc = param_int(req, "permits", false, 1, LT_CAPACITY_MAX,
	    &permits)) != 0)
		return rc;
	if (kind != LT_SEMAPHORE) {
		const msgpack_object *c = mpr_get(req->params, "capacity");
		const msgpack_object *p = mpr_get(req->params, "permits");

		if ((c != NULL && c->type != MSGPACK_OBJECT_NIL) ||
		    (p != NULL && p->type != MSGPACK_OBJECT_NIL))
			return request_error(req, DLM_E_BAD_REQUEST,
			    "'capacity' and 'permits' are for kind "
			    "\"semaphore\" only");
		return 0;
	}
	if (mode != 0)
		return request_error(req, DLM_E_BAD_REQUEST, "a semaphore has "
		    "no shared mode: its permits are what is shared");
	if (permits > capacity)
		return request_error(req, DLM_E_BAD_REQUEST, "%lld permits "
		    "asked of a semaphore of capacity %lld", (long long)permits,
		    (long long)capacity);
	want->capacity = (uint32_t)capacity;
	want->permits = (uint32_t)permits;
	return 0;
}

/*
 * An acquire's lock-delay: 0 when not asked; above max-lock-delay it is
 * refused, not cut short, as a shorter delay than asked would weaken the
 * very protection it was asked for without the client knowing.
 */
static int
param_lock_delay(struct request *req, uint32_t *delay)
{
	int64_t v = 0;
	int rc;

	*delay = 0;
	if ((rc = param_int(req, "lock_delay_ms", false, 0, INT64_MAX,
	    &v)) != 0)
		return rc;
	if (v > srv->cfg->max_lock_delay_ms)
		return request_error(req, DLM_E_LIMIT, "'lock_delay_ms' %lld "
		    "is above this server's max-lock-delay of %u ms",
		    (long long)v, srv->cfg->max_lock_delay_ms);
	*delay = (uint32_t)v;
	return 0;
}

/*
 * Whether acquire's params have a key past the four every client sends
 * (lock, kind, mode, timeout_ms): found in one pass, so that a plain
 * acquire pays no lookup for each key that newer ones may add.
 */
static bool
acquire_has_more(const msgpack_object *m)
{
	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return false;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		const char *p = k->via.str.ptr;

		if (k->type != MSGPACK_OBJECT_STR)
			return true;
		if (k->via.str.size == 4 && (memcmp(p, "lock", 4) == 0 ||
		    memcmp(p, "kind", 4) == 0 || memcmp(p, "mode", 4) == 0))
			continue;
		if (k->via.str.size == 10 && memcmp(p, "timeout_ms", 10) == 0)
			continue;
		return true;
	}
	return false;
}

static int
m_acquire(struct request *req)
{
	static struct lt_cycle cycle;
	struct session *s = req->conn->session;
	const char *name, *value = NULL;
	size_t namelen, valuelen = 0;
	int kind = LT_MUTEX, mode = 0, rc;
	int64_t timeout = -1;
	uint32_t lock_delay = 0;
	bool notify = false, more;
	struct lt_want want = { 0 };
	struct lt_hold *h;
	struct lt_wait *w;
	struct lt_lock *l;
	uint8_t receipt[RECEIPT_LEN];
	bool check = true;
	char what[300];

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = param_kind(req, &kind)) != 0 ||
	    (rc = param_enum(req, "mode", "exclusive", "shared", &mode)) != 0 ||
	    (rc = param_int(req, "timeout_ms", false, -1, INT32_MAX,
	    &timeout)) != 0)
		return rc;
	more = acquire_has_more(req->params);
	if ((more || kind == LT_SEMAPHORE) &&
	    (rc = param_permits(req, kind, mode, &want)) != 0)
		return rc;
	if (more && ((rc = param_value(req, "value", &value, &valuelen,
	    srv->cfg->max_value_len)) != 0 ||
	    (rc = param_lock_delay(req, &lock_delay)) != 0 ||
	    (rc = param_bool(req, "notify_contended", &notify)) != 0 ||
	    (rc = param_bool(req, "deadlock_check", &check)) != 0))
		return rc;
	if ((rc = request_right(req, ACL_LOCK, name, namelen)) != 0)
		return rc;
	/* In a cluster, a session is in etcd before it may hold anything. */
	if (!records_ensure(s))
		return DISPATCH_DEFER;
	srv->stats.acquires++;
	want.kind = kind;
	want.mode = mode == 0 ? LT_EXCLUSIVE : LT_SHARED;
	want.may_wait = timeout != 0;
	want.value = value;
	want.value_len = valuelen;
	want.lock_delay_ms = lock_delay;
	want.notify_contended = notify;
	want.deadlock_check = check;
	want.cycle = &cycle;
	rc = locktab_acquire(srv->lt, &s->owner, name, namelen, &want,
	    now_ms(), &h, &w);
	if (rc == DLM_E_WOULD_BLOCK)
		srv->stats.would_blocks++;
	else if (rc > 0)
		srv->stats.refused++;
	switch (rc) {
	case LT_GRANTED:
		srv->stats.grants++;
		metrics_observe_wait(0);
		pack_grant(&req->res, h, session_valid_ms(s, now_ms()),
		    session_hold_receipt(s, h, receipt) ? receipt : NULL);
		return 0;
	case LT_QUEUED:
		w->udata = pending_new(s, req->msgid, timeout);
		((struct pending *)w->udata)->wait = w;
		return DISPATCH_PENDING;
	case DLM_E_WOULD_BLOCK:
		l = locktab_find(srv->lt, name, namelen);
		if (l != NULL && locktab_delay_left(l, now_ms()) > 0)
			return request_error(req, rc, "lock '%s' is delayed "
			    "for %llu ms more: a holder's hold ended without "
			    "a release, and it asked for a lock-delay",
			    safe_str(name, namelen), (unsigned long long)
			    locktab_delay_left(l, now_ms()));
		if (l == NULL || (l->nholders == 0 && l->nwaiters == 0))
			return request_error(req, rc, "lock '%s' is free, but "
			    "nothing is granted%s", safe_str(name, namelen),
			    cluster_not_granting());
		return request_error(req, rc, "lock '%s' is %s",
		    safe_str(name, namelen), holders_phrase(l));
	case DLM_E_KIND_MISMATCH:
		l = locktab_find(srv->lt, name, namelen);
		return request_error(req, rc, "lock '%s' exists as a %s",
		    safe_str(name, namelen), kind_phrase(l));
	case DLM_E_ALREADY_HELD:
		l = locktab_find(srv->lt, name, namelen);
		if ((h = locktab_hold_of(l, &s->owner)) == NULL)
			return request_error(req, rc, "this session already "
			    "waits for lock '%s'", safe_str(name, namelen));
		if (kind == LT_SEMAPHORE)
			return request_error(req, rc, "this session already "
			    "holds %u permits of semaphore '%s' (release them "
			    "and acquire again for another number)",
			    h->permits, safe_str(name, namelen));
		if (kind == LT_RLOCK)
			return request_error(req, rc, "this session holds rlock "
			    "'%s' shared; it cannot be upgraded to exclusive",
			    safe_str(name, namelen));
		return request_error(req, rc, "this session already holds "
		    "mutex '%s' (use kind \"rlock\" to re-enter)",
		    safe_str(name, namelen));
	case DLM_E_LIMIT:
		return request_error(req, rc, "this session has %u holds and "
		    "%u waits; the limits are %u holds+waits and %u waits",
		    s->owner.nholds, s->owner.nwaits, srv->cfg->max_holds,
		    srv->cfg->max_waits);
	case DLM_E_DEADLOCK:
		snprintf(what, sizeof what, "acquiring '%s'",
		    safe_str(name, namelen));
		return request_deadlock(req, what, &cycle);
	default:
		return request_error(req, rc, "%s", dlm_proto_errdesc(rc));
	}
}

static int
m_check(struct request *req)
{
	const char *name;
	size_t namelen;
	struct lt_lock *l;
	struct lt_hold *h = NULL;
	const msgpack_object *o;
	uint64_t utoken;
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = request_right(req, ACL_VIEW, name, namelen)) != 0)
		return rc;
	o = mpr_get(req->params, "token");
	if (o == NULL || !mpr_uint(o, &utoken))
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'token' is required and must be an unsigned integer");
	if ((l = locktab_find(srv->lt, name, namelen)) != NULL)
		h = locktab_hold_by_token(l, utoken);
	mpw_map(&req->res, h != NULL ? 2 : 1);
	mpw_key(&req->res, "held");
	mpw_bool(&req->res, h != NULL);
	if (h != NULL) {
		mpw_key(&req->res, "client");
		mpw_str(&req->res, session_of_owner(h->owner)->name);
	}
	return 0;
}

static bool
is_semaphore(const char *name, size_t namelen)
{
	const struct lt_lock *l = locktab_find(srv->lt, name, namelen);

	return l != NULL && l->kind == LT_SEMAPHORE;
}

/*
 * release of a semaphore: all the session's permits, or (permits >= 0)
 * that many. {count: 1 while the hold lasts, else 0, permits: still held}.
 */
static int
release_permits(struct request *req, const char *name, size_t namelen,
    int64_t permits)
{
	struct session *s = req->conn->session;
	struct lt_lock *l = locktab_find(srv->lt, name, namelen);
	struct lt_hold *h;
	uint32_t left;
	int rc;

	if (l == NULL || (h = locktab_hold_of(l, &s->owner)) == NULL)
		return request_error(req, DLM_E_NOT_HELD, "lock '%s' is not "
		    "held by this session", safe_str(name, namelen));
	if (l->kind != LT_SEMAPHORE)
		return request_error(req, DLM_E_BAD_REQUEST, "'permits' is for "
		    "a semaphore; lock '%s' is a %s", safe_str(name, namelen),
		    kind_phrase(l));
	if (permits > (int64_t)h->permits)
		return request_error(req, DLM_E_BAD_REQUEST, "this session "
		    "holds %u permits of semaphore '%s', fewer than the %lld "
		    "to release", h->permits, safe_str(name, namelen),
		    (long long)permits);
	rc = locktab_release_permits(srv->lt, &s->owner, name, namelen,
	    permits > 0 ? (uint32_t)permits : 0, now_ms(), &left);
	if (rc != 0)
		return request_error(req, rc, "%s", dlm_proto_errdesc(rc));
	srv->stats.releases++;
	mpw_map(&req->res, 2);
	mpw_key(&req->res, "count");
	mpw_u64(&req->res, left > 0 ? 1 : 0);
	mpw_key(&req->res, "permits");
	mpw_u64(&req->res, left);
	return 0;
}

static int
m_release(struct request *req)
{
	struct session *s = req->conn->session;
	const msgpack_object *o;
	const char *name;
	size_t namelen;
	uint32_t remaining;
	int64_t permits = -1;
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = param_int(req, "permits", false, 1, LT_CAPACITY_MAX,
	    &permits)) != 0)
		return rc;
	/*
	 * With a token the release means that hold and no other: one sent
	 * before a loss must not free the session's newer hold of the name.
	 */
	if ((o = mpr_get(req->params, "token")) != NULL &&
	    o->type != MSGPACK_OBJECT_NIL) {
		struct lt_lock *l;
		struct lt_hold *h;
		uint64_t token;

		if (!mpr_uint(o, &token))
			return request_error(req, DLM_E_BAD_REQUEST,
			    "'token' must be an unsigned integer");
		/*
		 * A converted hold is still the one granted: its token before
		 * the latest conversion names it too.
		 */
		if ((l = locktab_find(srv->lt, name, namelen)) == NULL ||
		    (h = locktab_hold_of(l, &s->owner)) == NULL ||
		    (h->token != token && h->prev_token != token))
			return request_error(req, DLM_E_NOT_HELD, "lock '%s' "
			    "is not held by this session with token %llu",
			    safe_str(name, namelen), (unsigned long long)token);
	}
	if (permits >= 0 || is_semaphore(name, namelen))
		return release_permits(req, name, namelen, permits);
	rc = locktab_release(srv->lt, &s->owner, name, namelen, now_ms(),
	    &remaining);
	if (rc != 0)
		return request_error(req, rc, "lock '%s' is not held by this "
		    "session", safe_str(name, namelen));
	srv->stats.releases++;
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "count");
	mpw_u64(&req->res, remaining);
	return 0;
}

static int
m_cancel(struct request *req)
{
	struct session *s = req->conn->session;
	const msgpack_object *o = mpr_get(req->params, "id");
	struct pending *p = NULL;
	uint64_t id;

	if (o == NULL || !mpr_uint(o, &id) || id > UINT32_MAX)
		return request_error(req, DLM_E_BAD_REQUEST,
		    "'id' is required: the msgid of a pending acquire");
	if ((p = pending_find(s, (uint32_t)id)) != NULL) {
		srv->stats.cancels++;
		pending_cancel(p, DLM_E_CANCELLED,
		    "the acquire was cancelled by request %u", req->msgid);
	}
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "cancelled");
	mpw_bool(&req->res, p != NULL);
	return 0;
}

static int
m_reset(struct request *req)
{
	uint32_t n;

	n = locktab_release_owner(srv->lt, &req->conn->session->owner,
	    now_ms());
	srv->stats.releases += n;
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "released");
	mpw_u64(&req->res, n);
	return 0;
}

static int
m_bye(struct request *req)
{
	struct conn *c = req->conn;

	session_end(c->session, 0, DLM_E_CANCELLED);
	conn_close_after_flush(c);
	mpw_nil(&req->res);
	return 0;
}

/*
 * A member that is not active has no sessions, yet an operator must see
 * what it is doing: stats and cluster are answered without one, except
 * over TCP (or TLS without a client certificate) when clients must
 * present a token, which only hello takes.
 */
static bool
observe_without_session(const struct conn *c)
{
	/*
	 * Who may ask: a local peer; a client whose certificate a tls-ca
	 * vouched for; anyone where dlmd asks no token of anyone.
	 */
	return !cluster_is_active() &&
	    (c->is_unix || c->ident.kind == ID_TLS ||
	    (srv->cfg->client_token == NULL && srv->cfg->ntokens == 0));
}

static const struct method *
method_find(const msgpack_object *o)
{
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (mpr_str_eq(o, methods[i].name))
			return &methods[i];
	return NULL;
}

/* A frame the connection could not read; it closes after this answer. */
void
dispatch_bad_frame(struct conn *c, const char *why)
{
	reply_error(c, NULL, DLM_E_BAD_REQUEST, "%s", why);
}

void
dispatch_frame(struct conn *c, const char *buf, size_t len)
{
	const msgpack_object *v, *params;
	const struct method *m;
	struct request req;
	msgpack_object obj;
	size_t off = 0;
	uint64_t type, msgid;
	int rc;

	srv->stats.requests++;
	msgpack_zone_clear(&srv->zone);
	if (msgpack_unpack(buf, len, &off, &srv->zone, &obj) !=
	    MSGPACK_UNPACK_SUCCESS) {
		reply_error(c, NULL, DLM_E_BAD_REQUEST,
		    "request could not be decoded");
		return;
	}
	/*
	 * An active past its deadline steps down before it serves anything:
	 * after a stall (say SIGSTOP) requests may be read before the timer
	 * that would have made it step down has run. Stepping down closes c.
	 */
	if (!cluster_check(now_ms()))
		return;
	/* Every message renews the lease, well-formed or not. */
	if (c->session != NULL) {
		session_touch(c->session, now_ms());
		if (c->closing || c->dead)
			return;
	}
	if (obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size == 0) {
		reply_error(c, NULL, DLM_E_BAD_REQUEST,
		    "a request is an array [0, msgid, method, [params]]");
		return;
	}
	v = obj.via.array.ptr;
	if (!mpr_uint(&v[0], &type) || type != DLM_MSG_REQUEST) {
		reply_error(c, NULL, DLM_E_BAD_REQUEST,
		    "only requests (type 0) may be sent to the server");
		return;
	}
	if (obj.via.array.size != 4 || !mpr_uint(&v[1], &msgid) ||
	    msgid > UINT32_MAX) {
		reply_error(c, NULL, DLM_E_BAD_REQUEST,
		    "a request is an array [0, msgid, method, [params]] with "
		    "msgid a 32-bit unsigned integer");
		return;
	}
	memset(&req, 0, sizeof req);
	req.conn = c;
	req.msgid = (uint32_t)msgid;
	req.frame = buf;
	req.framelen = len;
	if (v[2].type != MSGPACK_OBJECT_STR) {
		reply_error(c, &req.msgid, DLM_E_BAD_REQUEST,
		    "the method must be a string");
		return;
	}
	if ((m = method_find(&v[2])) == NULL) {
		reply_error(c, &req.msgid, DLM_E_BAD_REQUEST,
		    "unknown method '%s'", safe_str(v[2].via.str.ptr,
		    v[2].via.str.size));
		return;
	}
	params = &v[3];
	if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size > 1 ||
	    (params->via.array.size == 1 &&
	    params->via.array.ptr[0].type != MSGPACK_OBJECT_MAP &&
	    params->via.array.ptr[0].type != MSGPACK_OBJECT_NIL)) {
		reply_error(c, &req.msgid, DLM_E_BAD_REQUEST,
		    "params must be an array holding one map");
		return;
	}
	if (params->via.array.size == 1 &&
	    params->via.array.ptr[0].type == MSGPACK_OBJECT_MAP)
		req.params = &params->via.array.ptr[0];
	if (srv->shutting_down) {
		reply_error(c, &req.msgid, DLM_E_SHUTTING_DOWN,
		    "server is shutting down");
		return;
	}
	if ((m->flags & M_ACTIVE) && !cluster_is_active()) {
		(void)request_not_active(&req);
		reply_not_active(c, req.msgid, req.err_active, req.errmsg);
		return;
	}
	if ((m->flags & M_SESSION) && c->session == NULL &&
	    !((m->flags & M_OBSERVE) && observe_without_session(c))) {
		reply_error(c, &req.msgid, DLM_E_NO_SESSION,
		    "'%s' needs a session: send hello first", m->name);
		return;
	}
	/* With a rules file, admin methods check the rules lock by lock. */
	if ((m->flags & M_ADMIN) && !auth_has_rules() &&
	    (rc = auth_admin(c, m->name, req.errmsg, sizeof req.errmsg)) != 0) {
		reply_error(c, &req.msgid, rc, "%s", req.errmsg);
		return;
	}

	msgpack_sbuffer_clear(&srv->result);
	mpw_init_sbuffer(&req.res, &srv->result);
	rc = m->fn(&req);
	if (rc == DISPATCH_PENDING)
		return;
	if (rc == DISPATCH_DEFER) {
		defer(&req);
		return;
	}
	if (rc == DLM_E_NOT_ACTIVE) {
		reply_not_active(c, req.msgid, req.err_active, req.errmsg);
		return;
	}
	if (rc == DLM_E_DEADLOCK && req.err_cycle != NULL) {
		reply_deadlock(c, req.msgid, req.errmsg, req.err_cycle,
		    req.err_cycle_hidden);
		return;
	}
	if (rc != 0) {
		reply_error(c, &req.msgid, rc, "%s", req.errmsg);
		return;
	}
	if (req.res.err != 0)
		fatalx("%s: packing the reply to %s failed", __func__, m->name);
	reply_result(c, req.msgid, &srv->result);
}
