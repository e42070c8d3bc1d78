/*
 * Inspecting methods (locks, lock, clients, stats), open to every session,
 * and acting ones (force_release, reset_client, reset_all), for admins only.
 *
 * Listings are ordered by name and paginated: a page ends after `limit`
 * entries or about list_page_bytes() of reply, and carries `next`, the name
 * to pass as `after` for the following page.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"

#define LIST_LIMIT_MAX		1000
#define LOCK_QUEUE_IN_LIST	100	/* holders/waiters shown per lock in locks */
#define LOCK_QUEUE_IN_SHOW	10000	/* ... in lock */

static const char *
mode_name(int mode)
{
	return mode == LT_SHARED ? "shared" : "exclusive";
}

static const char *
kind_name(int kind)
{
	return kind == LT_SEMAPHORE ? "semaphore" : kind == LT_RLOCK ?
	    "rlock" : "mutex";
}

static size_t list_page_bytes(void);

/*
 * How many of l's holders fit in a listing: at most max, and no more
 * than about a page of bytes, values being up to max-value-len each.
 */
static uint32_t
holders_to_list(const struct lt_lock *l, uint32_t max)
{
	const struct lt_hold *h;
	size_t bytes = 0;
	uint32_t n = 0;

	TAILQ_FOREACH(h, &l->holders, lock_link) {
		if (n == max)
			break;
		bytes += strlen(session_of_owner(h->owner)->name) +
		    h->value_len + 64;
		if (n > 0 && bytes > list_page_bytes())
			break;
		n++;
	}
	return n;
}

static void
pack_lock(struct mpw *w, const struct lt_lock *l, uint32_t max_queue,
    uint64_t now)
{
	uint32_t max_holders = holders_to_list(l, max_queue);
	const struct lt_hold *h;
	const struct lt_wait *wt;
	uint32_t n;
	int mode = l->mode;
	bool semaphore = l->kind == LT_SEMAPHORE;
	uint64_t delayed = locktab_delay_left(l, now);

	if (l->nholders == 0 && TAILQ_FIRST(&l->waiters) != NULL)
		mode = TAILQ_FIRST(&l->waiters)->mode;
	/* Keys a feature adds are there only when it is in use. */
	mpw_map(w, 7 + (semaphore ? 2 : 0) + (delayed > 0));
	if (delayed > 0) {
		mpw_key(w, "delayed_ms");
		mpw_u64(w, delayed);
	}
	/* A semaphore's: its capacity, and the permits in use. */
	if (semaphore) {
		mpw_key(w, "capacity");
		mpw_u64(w, l->capacity);
		mpw_key(w, "in_use");
		mpw_u64(w, l->in_use);
	}
	mpw_key(w, "name");
	mpw_strn(w, l->name, l->namelen);
	mpw_key(w, "kind");
	mpw_str(w, kind_name(l->kind));
	mpw_key(w, "mode");
	mpw_str(w, mode_name(mode));
	mpw_key(w, "nholders");
	mpw_u64(w, l->nholders);
	mpw_key(w, "nwaiters");
	mpw_u64(w, l->nwaiters);

	mpw_key(w, "holders");
	mpw_array(w, max_holders);
	n = 0;
	TAILQ_FOREACH(h, &l->holders, lock_link) {
		const struct session *s = session_of_owner(h->owner);

		bool converting = locktab_converting(h) != NULL;

		if (n++ == max_holders)
			break;
		mpw_map(w, 5 + (semaphore ? 1 : 0) + (h->value != NULL ? 1 : 0) +
		    (h->lock_delay != 0) + h->notify_contended + converting);
		if (semaphore) {
			mpw_key(w, "permits");
			mpw_u64(w, h->permits);
		}
		mpw_key(w, "client");
		mpw_str(w, s->name);
		mpw_key(w, "session");
		mpw_u64(w, s->id);
		mpw_key(w, "count");
		mpw_u64(w, h->count);
		mpw_key(w, "token");
		mpw_u64(w, h->token);
		mpw_key(w, "held_ms");
		mpw_u64(w, now - h->since);
		if (h->value != NULL) {
			mpw_key(w, "value");
			mpw_bin(w, h->value, h->value_len);
		}
		if (h->lock_delay != 0) {
			mpw_key(w, "lock_delay_ms");
			mpw_u64(w, h->lock_delay);
		}
		if (h->notify_contended) {
			mpw_key(w, "notify_contended");
			mpw_bool(w, true);
		}
		if (converting) {
			/* The mode it waits for; its hold is still shared. */
			mpw_key(w, "converting");
			mpw_str(w, mode_name(LT_EXCLUSIVE));
		}
	}

	mpw_key(w, "waiters");
	mpw_array(w, l->nwaiters < max_queue ? l->nwaiters : max_queue);
	n = 0;
	TAILQ_FOREACH(wt, &l->waiters, lock_link) {
		const struct session *s = session_of_owner(wt->owner);

		if (n++ == max_queue)
			break;
		mpw_map(w, 3 + (semaphore ? 1 : 0) + (wt->convert ? 1 : 0));
		if (semaphore) {
			mpw_key(w, "permits");
			mpw_u64(w, wt->permits);
		}
		mpw_key(w, "client");
		mpw_str(w, s->name);
		mpw_key(w, "mode");
		mpw_str(w, mode_name(wt->mode));
		mpw_key(w, "waited_ms");
		mpw_u64(w, now - wt->since);
		if (wt->convert) {
			mpw_key(w, "converting");
			mpw_bool(w, true);
		}
	}
}

/*
 * A page stops growing past this many bytes: small enough that even a
 * client reading slowly is not dropped for its output (max-output).
 */
static size_t
list_page_bytes(void)
{
	size_t cap = srv->cfg->max_output / 4;

	return cap < DLMD_LIST_BYTES ? cap : DLMD_LIST_BYTES;
}

static bool
has_prefix(const char *name, size_t len, const char *prefix, size_t plen)
{
	return len >= plen && memcmp(name, prefix, plen) == 0;
}

/* Where a page starts: after `after`, and not before `prefix`. */
static const char *
list_start(const char *prefix, size_t plen, const char *after, size_t alen,
    size_t *len)
{
	if (after != NULL) {
		size_t n = plen < alen ? plen : alen;
		int c = memcmp(after, prefix, n);

		if (c > 0 || (c == 0 && alen >= plen)) {
			*len = alen;
			return after;
		}
	}
	*len = plen;
	return prefix;
}

static int
list_params(struct request *req, const char **prefix, size_t *plen,
    const char **after, size_t *alen, int64_t *limit)
{
	int rc;

	*limit = LIST_LIMIT_MAX;
	if ((rc = param_name(req, "prefix", false, prefix, plen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = param_name(req, "after", false, after, alen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = param_int(req, "limit", false, 1, LIST_LIMIT_MAX,
	    limit)) != 0)
		return rc;
	if (*prefix == NULL) {
		*prefix = "";
		*plen = 0;
	}
	return 0;
}

/* Finish a listing: {KEY: [entries...], next?}. */
static void
list_finish(struct request *req, const char *key, msgpack_sbuffer *entries,
    uint32_t n, const char *next, size_t nextlen)
{
	mpw_map(&req->res, next != NULL ? 2 : 1);
	mpw_key(&req->res, key);
	mpw_array(&req->res, n);
	if (msgpack_sbuffer_write(&srv->result, entries->data,
	    entries->size) != 0)
		req->res.err = 1;
	if (next != NULL) {
		mpw_key(&req->res, "next");
		mpw_strn(&req->res, next, nextlen);
	}
}

int
admin_locks(struct request *req)
{
	const char *prefix, *after, *start;
	size_t plen, alen, slen;
	int64_t limit;
	msgpack_sbuffer entries;
	struct mpw w;
	struct lt_lock *l, *last = NULL;
	uint32_t n = 0;
	uint64_t now = now_ms();
	int rc;

	if ((rc = list_params(req, &prefix, &plen, &after, &alen, &limit)) != 0)
		return rc;
	msgpack_sbuffer_init(&entries);
	mpw_init_sbuffer(&w, &entries);
	start = list_start(prefix, plen, after, alen, &slen);
	l = locktab_first_from(srv->lt, start, slen);
	if (l != NULL && after != NULL && l->namelen == alen &&
	    memcmp(l->name, after, alen) == 0)
		l = locktab_next(srv->lt, l);
	for (; l != NULL && has_prefix(l->name, l->namelen, prefix, plen);
	    l = locktab_next(srv->lt, l)) {
		if (n == limit || entries.size >= list_page_bytes())
			break;
		/* What the caller may not view is left out, uncounted. */
		if (!auth_may(req->conn, ACL_VIEW, l->name, l->namelen))
			continue;
		pack_lock(&w, l, LOCK_QUEUE_IN_LIST, now);
		last = l;
		n++;
	}
	/* More remain when the loop stopped on a lock that still matches. */
	if (l == NULL || !has_prefix(l->name, l->namelen, prefix, plen))
		last = NULL;
	list_finish(req, "locks", &entries, n, last != NULL ? last->name : NULL,
	    last != NULL ? last->namelen : 0);
	req->res.err |= w.err;
	msgpack_sbuffer_destroy(&entries);
	return 0;
}

int
admin_lock(struct request *req)
{
	const char *name;
	size_t namelen;
	struct lt_lock *l;
	int rc;

	/* Checked before the look-up: a refusal says nothing of existence. */
	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = request_right(req, ACL_VIEW, name, namelen)) != 0)
		return rc;
	if ((l = locktab_find(srv->lt, name, namelen)) == NULL)
		return request_error(req, DLM_E_NOT_FOUND, "no lock named '%s' "
		    "is held or awaited", safe_str(name, namelen));
	pack_lock(&req->res, l, LOCK_QUEUE_IN_SHOW, now_ms());
	return 0;
}

static void
pack_client(struct mpw *w, const struct session *s, uint64_t now)
{
	uint64_t left = 0;

	if (s->conn != NULL)
		left = s->owner.deadline > now ? s->owner.deadline - now : 0;
	else
		left = s->linger_deadline > now ? s->linger_deadline - now : 0;
	mpw_map(w, 10);
	mpw_key(w, "name");
	mpw_str(w, s->name);
	mpw_key(w, "session");
	mpw_u64(w, s->id);
	mpw_key(w, "info");
	mpw_map(w, 3);
	mpw_key(w, "host");
	if (s->info_host != NULL)
		mpw_str(w, s->info_host);
	else
		mpw_nil(w);
	mpw_key(w, "pid");
	if (s->info_pid >= 0)
		mpw_i64(w, s->info_pid);
	else
		mpw_nil(w);
	mpw_key(w, "label");
	if (s->info_label != NULL)
		mpw_str(w, s->info_label);
	else
		mpw_nil(w);
	mpw_key(w, "peer");
	mpw_str(w, s->peer);
	mpw_key(w, "connected");
	mpw_bool(w, s->conn != NULL);
	mpw_key(w, "lease_ms");
	mpw_u64(w, s->lease_ms);
	mpw_key(w, "linger_ms");
	mpw_u64(w, s->linger_ms);
	mpw_key(w, "expires_in_ms");
	mpw_u64(w, left);
	mpw_key(w, "holds");
	mpw_u64(w, s->owner.nholds);
	mpw_key(w, "waits");
	mpw_u64(w, s->owner.nwaits);
}

int
admin_clients(struct request *req)
{
	const char *prefix, *after, *start;
	size_t plen, alen, slen;
	int64_t limit;
	msgpack_sbuffer entries;
	struct mpw w;
	struct session *s, *last = NULL;
	uint32_t n = 0;
	uint64_t now = now_ms();
	int rc;

	if ((rc = list_params(req, &prefix, &plen, &after, &alen, &limit)) != 0)
		return rc;
	msgpack_sbuffer_init(&entries);
	mpw_init_sbuffer(&w, &entries);
	start = list_start(prefix, plen, after, alen, &slen);
	s = session_first_from(start, slen);
	if (s != NULL && after != NULL && strlen(s->name) == alen &&
	    memcmp(s->name, after, alen) == 0)
		s = session_next(s);
	for (; s != NULL && has_prefix(s->name, strlen(s->name), prefix, plen);
	    s = session_next(s)) {
		if (n == limit || entries.size >= list_page_bytes())
			break;
		pack_client(&w, s, now);
		last = s;
		n++;
	}
	if (s == NULL || !has_prefix(s->name, strlen(s->name), prefix, plen))
		last = NULL;
	list_finish(req, "clients", &entries, n,
	    last != NULL ? last->name : NULL,
	    last != NULL ? strlen(last->name) : 0);
	req->res.err |= w.err;
	msgpack_sbuffer_destroy(&entries);
	return 0;
}

static void	pack_cluster_stats(struct mpw *);

int
admin_stats(struct request *req)
{
	const struct stats *st = &srv->stats;
	struct lt_stats lts;
	struct mpw *w = &req->res;

	locktab_stats(srv->lt, &lts);
	mpw_map(w, srv->cluster.enabled ? 31 + 12 : 31);
	mpw_key(w, "server");
	mpw_str(w, PACKAGE_NAME "d " PACKAGE_VERSION);
	mpw_key(w, "uptime_ms");
	mpw_u64(w, now_ms() - srv->start_ms);
	mpw_key(w, "sessions");
	mpw_u64(w, srv->nsessions);
	mpw_key(w, "lingering");
	mpw_u64(w, srv->nlingering);
	mpw_key(w, "connections");
	mpw_u64(w, conn_count());
	mpw_key(w, "locks");
	mpw_u64(w, lts.locks);
	mpw_key(w, "holds");
	mpw_u64(w, lts.holds);
	mpw_key(w, "waiters");
	mpw_u64(w, lts.waits);
	mpw_key(w, "requests");
	mpw_u64(w, st->requests);
	mpw_key(w, "acquires");
	mpw_u64(w, st->acquires);
	mpw_key(w, "grants");
	mpw_u64(w, st->grants);
	mpw_key(w, "releases");
	mpw_u64(w, st->releases);
	mpw_key(w, "timeouts");
	mpw_u64(w, st->timeouts);
	mpw_key(w, "cancels");
	mpw_u64(w, st->cancels);
	mpw_key(w, "expiries");
	mpw_u64(w, st->expiries);
	mpw_key(w, "forced");
	mpw_u64(w, st->forced);
	mpw_key(w, "errors");
	mpw_u64(w, st->errors);
	mpw_key(w, "connections_total");
	mpw_u64(w, st->connections);
	mpw_key(w, "sessions_total");
	mpw_u64(w, st->sessions_total);
	mpw_key(w, "resumes");
	mpw_u64(w, st->resumes);
	mpw_key(w, "protocol_errors");
	mpw_u64(w, st->protocol_errors);
	mpw_key(w, "output_overflows");
	mpw_u64(w, st->output_overflows);
	mpw_key(w, "bytes_in");
	mpw_u64(w, st->bytes_in);
	mpw_key(w, "bytes_out");
	mpw_u64(w, st->bytes_out);
	mpw_key(w, "next_token");
	mpw_u64(w, locktab_next_token(srv->lt));
	mpw_key(w, "watches");
	mpw_u64(w, watch_count());
	mpw_key(w, "watch_notices");
	mpw_u64(w, watch_notices());
	mpw_key(w, "lock_delays");
	mpw_u64(w, lts.delays);
	mpw_key(w, "delayed_locks");
	mpw_u64(w, lts.delayed);
	mpw_key(w, "contended_notices");
	mpw_u64(w, st->contended);
	mpw_key(w, "deadlocks");
	mpw_u64(w, st->deadlocks);
	if (srv->cluster.enabled)
		pack_cluster_stats(w);
	return 0;
}

/* A string, or nil when empty. */
static void
mpw_str_or_nil(struct mpw *w, const char *s)
{
	if (s == NULL || s[0] == '\0')
		mpw_nil(w);
	else
		mpw_str(w, s);
}

/* The 12 keys stats adds in cluster mode. */
static void
pack_cluster_stats(struct mpw *w)
{
	const struct cluster_status *cs = &srv->cluster;
	bool active = cs->role == CLUSTER_ACTIVE;
	uint64_t now = now_ms();

	mpw_key(w, "role");
	mpw_str(w, cluster_role_word(srv->cluster.role));
	mpw_key(w, "epoch");
	mpw_u64(w, cs->epoch > 0 ? (uint64_t)cs->epoch : 0);
	mpw_key(w, "active");
	mpw_str_or_nil(w, cs->active);
	mpw_key(w, "member_id");
	mpw_str(w, cs->id);
	mpw_key(w, "etcd");
	mpw_str(w, cluster_endpoints());
	mpw_key(w, "etcd_current");
	mpw_str(w, cluster_current_endpoint());
	mpw_key(w, "cluster_status");
	mpw_str_or_nil(w, cs->why);
	mpw_key(w, "grace_ms");
	mpw_u64(w, active && cs->grace_until > now ? cs->grace_until - now : 0);
	mpw_key(w, "lease_left_ms");
	mpw_u64(w, active ? cluster_lease_left_ms() : 0);
	mpw_key(w, "token_lo");
	mpw_u64(w, active ? cs->token_lo : 0);
	mpw_key(w, "token_hi");
	mpw_u64(w, active ? cs->token_hi : 0);
	mpw_key(w, "failovers");
	mpw_u64(w, cs->failovers);
}

/*
 * The cluster's members as this dlmd saw them in etcd at its last lease
 * renewal: {cluster, self, active, epoch, age_ms, members: [...]}.
 */
int
admin_cluster(struct request *req)
{
	struct mpw *w = &req->res;
	const struct cluster_status *cs = &srv->cluster;
	const char *id, *adv, *role;
	int64_t since;
	int n;

	if (!cs->enabled)
		return request_error(req, DLM_E_NOT_FOUND, "this dlmd is not "
		    "a member of a cluster (no --cluster-etcd)");
	n = cluster_nmembers();
	mpw_map(w, 6);
	mpw_key(w, "cluster");
	mpw_str(w, srv->cfg->cluster_name != NULL ? srv->cfg->cluster_name :
	    "dlm");
	mpw_key(w, "self");
	mpw_str(w, cs->id);
	mpw_key(w, "active");
	mpw_str_or_nil(w, cs->active);
	mpw_key(w, "epoch");
	mpw_u64(w, cs->epoch > 0 ? (uint64_t)cs->epoch : 0);
	mpw_key(w, "age_ms");
	if (cluster_members_age_ms() == UINT64_MAX)
		mpw_nil(w);
	else
		mpw_u64(w, cluster_members_age_ms());
	mpw_key(w, "members");
	mpw_array(w, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		cluster_members(i, &id, &adv, &role, &since);
		mpw_map(w, 4);
		mpw_key(w, "id");
		mpw_str(w, id);
		mpw_key(w, "advertise");
		mpw_str(w, adv);
		mpw_key(w, "role");
		mpw_str(w, role);
		mpw_key(w, "since");
		mpw_i64(w, since);
	}
	return 0;
}

static int
find_client(struct request *req, bool required, struct session **s)
{
	const char *name;
	size_t namelen;
	int rc;

	*s = NULL;
	if ((rc = param_name(req, "client", required, &name, &namelen,
	    srv->cfg->max_name_len)) != 0)
		return rc;
	if (name != NULL && (*s = session_find(name, namelen)) == NULL)
		return request_error(req, DLM_E_NOT_FOUND, "no client named "
		    "'%s'", safe_str(name, namelen));
	return 0;
}

int
admin_force_release(struct request *req)
{
	const char *name;
	size_t namelen;
	struct session *s;
	uint32_t n;
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = request_right(req, ACL_ADMIN, name, namelen)) != 0 ||
	    (rc = find_client(req, false, &s)) != 0)
		return rc;
	if (locktab_find(srv->lt, name, namelen) == NULL)
		return request_error(req, DLM_E_NOT_FOUND, "no lock named '%s' "
		    "is held or awaited", safe_str(name, namelen));
	n = locktab_force_release(srv->lt, name, namelen,
	    s != NULL ? &s->owner : NULL, DLM_LOST_FORCED, now_ms());
	srv->stats.forced += n;
	log_info("%s force-released lock '%s' (%u holds)",
	    safe_str0(req->conn->session->name), safe_str(name, namelen), n);
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "released");
	mpw_u64(&req->res, n);
	return 0;
}

/*
 * With a rules file, resetting a session needs the admin right on every
 * lock it holds or waits for; one that has none needs it on every lock
 * (a "*" rule), as ending it touches no lock the rules could name. The
 * caller named the session, not these locks: a refusal names one only if
 * the caller may view it.
 */
static int
may_reset(struct request *req, const struct session *s)
{
	const struct lt_hold *h;
	const struct lt_wait *w;
	int rc;

	if (!auth_has_rules())
		return 0;
	if (s->owner.nholds == 0 && s->owner.nwaits == 0)
		return request_right(req, ACL_ADMIN, "", 0);
	LIST_FOREACH(h, &s->owner.holds, owner_link)
		if ((rc = auth_right_found(req->conn, ACL_ADMIN, h->lock->name,
		    h->lock->namelen, req->errmsg, sizeof req->errmsg)) != 0)
			return rc;
	LIST_FOREACH(w, &s->owner.waits, owner_link)
		if ((rc = auth_right_found(req->conn, ACL_ADMIN, w->lock->name,
		    w->lock->namelen, req->errmsg, sizeof req->errmsg)) != 0)
			return rc;
	return 0;
}

/* End a session the way an admin reset does; returns holds released. */
static uint32_t
reset_session(struct session *s)
{
	struct conn *c = s->conn;
	uint32_t n = s->owner.nholds;

	session_end(s, DLM_LOST_RESET, DLM_E_CANCELLED);
	if (c != NULL)
		conn_close_after_flush(c);
	srv->stats.forced += n;
	return n;
}

int
admin_reset_client(struct request *req)
{
	struct session *s;
	uint32_t n;
	int rc;

	if ((rc = find_client(req, true, &s)) != 0 ||
	    (rc = may_reset(req, s)) != 0)
		return rc;
	log_info("%s reset client %s", safe_str0(req->conn->session->name),
	    safe_str0(s->name));
	n = reset_session(s);
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "released");
	mpw_u64(&req->res, n);
	return 0;
}

int
admin_reset_all(struct request *req)
{
	struct session *self = req->conn->session, *s, *next;
	uint32_t n = 0;

	for (s = session_first_from("", 0); s != NULL; s = session_next(s)) {
		int rc;

		if (s != self && (rc = may_reset(req, s)) != 0)
			return rc;
	}
	log_info("%s reset every other client", safe_str0(self->name));
	for (s = session_first_from("", 0); s != NULL; s = next) {
		next = session_next(s);
		if (s != self)
			n += reset_session(s);
	}
	mpw_map(&req->res, 1);
	mpw_key(&req->res, "released");
	mpw_u64(&req->res, n);
	return 0;
}
