/*
 * The cluster's roles (--cluster-etcd): which dlmd is active, for how long
 * it may be sure of it, and which fencing tokens it may give. etcd decides;
 * this file only asks, counts and steps down in time. doc/HA.md has the
 * design and the argument for "never two holders"; in short:
 *
 * - Every member holds an etcd lease and keeps PREFIX/members/ID on it. A
 *   standby polls PREFIX/active and, when it is gone, tries the txn "if
 *   create_revision(PREFIX/active) == 0 then put it with my lease". The
 *   winner is active; its epoch is the key's create_revision.
 * - The active's lease is counted from when the last successful keepalive
 *   was *sent*: etcd cannot expire it before sent + TTL. The lock table is
 *   told to grant nothing at or after sent + TTL - margin (the "deadline"),
 *   and every request past the deadline makes the daemon step down before
 *   it is served; a timer does the same when no request comes.
 * - A new active grants nothing for a grace period (the longest lease a
 *   client may hold, plus a margin), so every hold the previous active
 *   gave has lapsed on its holder first. Its acquires wait meanwhile.
 * - Tokens come from PREFIX/tokens, the highest token ever reserved, in
 *   blocks by compare-and-swap, refilled at half a block: the grant path
 *   never waits for etcd unless a block runs out first, and then waits
 *   rather than reuse a token.
 *
 * - Every member reads the cluster's secret, PREFIX/secret (32 random
 *   bytes, created once by whoever comes first, by a txn on its create
 *   revision), before it campaigns: the active signs receipts with it, and
 *   its successor checks them (receipt.c, reclaim.c).
 * - A new active reads which sessions may hold locks (records.c); its
 *   grace ends early once each has reclaimed or lapsed.
 *
 * Polling, not a watch: a standby's reaction time is the poll interval
 * (250 ms) on top of the lease's expiry (seconds), each poll is one
 * linearizable read, and there is no stream to resume, no second
 * connection to keep alive and no compaction to handle.
 */
#include "config.h"

#include <sys/random.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "dlmd.h"
#include "xmalloc.h"

#define CLUSTER_TICK_MS		250	/* poll, retry and refill check */
#define CLUSTER_RENEW_RETRY_MS	100	/* after a failed keepalive */
#define CLUSTER_TOKEN_BLOCK	1000000	/* tokens reserved at a time */
#define CLUSTER_GRACE_MARGIN_MS	1000
#define CLUSTER_ETCD_TIMEOUT_MS	1000
#define CLUSTER_MEMBERS_MAX	64

struct member {
	char		id[40];
	char		advertise[DLMD_ADVERTISE_MAX + 1];
	char		role[16];
	int64_t		since;		/* wall clock, seconds: for people */
};

static struct {
	struct event_base	*base;
	const struct dlmd_config *cfg;
	struct etcd		*etcd;
	char			*key_active;
	char			*key_tokens;
	char			*key_secret;
	void			(*changed)(void);	/* the caller's */
	uint8_t			 secret_want[RECEIPT_KEY_LEN];
	char			*key_member;
	char			*members_prefix;
	char			 id[17];
	/*
	 * Each lease, and each term as active, gets a new generation;
	 * answers to requests of an older one are dropped unread.
	 */
	uint64_t		 gen;
	int64_t			 lease_id;
	uint64_t		 lease_ttl_ms;	/* min(granted, configured) */
	uint64_t		 margin_ms;
	uint64_t		 deadline;	/* grants stop at this now_ms() */
	/*
	 * The active's deadline from its last renewal, taken only once a
	 * read that needs etcd's quorum, sent after it, is answered.
	 */
	uint64_t		 renewed_until;
	uint64_t		 grace_ms;
	bool			 lease_busy;
	bool			 poll_busy;
	bool			 renew_busy;
	bool			 tokens_busy;
	bool			 secret_busy;
	bool			 secret_bad;	/* logged once */
	bool			 have_tokens;	/* a range in this term */
	bool			 etcd_trouble;	/* logged once until it ends */
	int64_t			 tokens_modrev;	/* last seen; 0: absent */
	uint64_t		 tokens_value;
	uint64_t		 tokens_want;	/* the mark being put */
	uint64_t		 token_end;	/* of what the table may give */
	uint32_t		 seen_lease_max;	/* of the active seen */
	uint64_t		 last_ok_ms;	/* last answer from etcd */
	char			 last_error[200];
	struct event		*tick;
	struct event		*renew;
	struct event		*fence;
	struct event		*grace;
	struct member		 members[CLUSTER_MEMBERS_MAX];
	int			 nmembers;
	uint64_t		 members_at;
} cl;

static void	cluster_renew(void);
static void	cluster_lease_lost(const char *why);

static void
set_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Why this dlmd does not grant (or what last went wrong), for status. */
static void
set_why(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(srv->cluster.why, sizeof srv->cluster.why, fmt, ap);
	va_end(ap);
}

/* etcd did not answer well: say so once, then only when it ends. */
static void
etcd_failed(const char *what, const struct etcd_reply *r)
{
	snprintf(cl.last_error, sizeof cl.last_error, "%s at %s: %s", what,
	    r->endpoint, r->why != NULL ? r->why : "a malformed answer");
	srv->cluster.etcd_failures++;
	if (!cl.etcd_trouble) {
		log_warnx("cluster: etcd %s; retrying (endpoints %s)",
		    cl.last_error, cl.cfg->cluster_etcd);
		cl.etcd_trouble = true;
	} else
		log_debug("cluster: etcd %s", cl.last_error);
	if (srv->cluster.role != CLUSTER_ACTIVE)
		set_why("etcd: %s", cl.last_error);
}

static void
etcd_answered(const struct etcd_reply *r)
{
	metrics_observe_etcd(r->rtt_ms);
	cl.last_ok_ms = now_ms();
	if (cl.etcd_trouble) {
		log_info("cluster: etcd answers again (%s)", r->endpoint);
		cl.etcd_trouble = false;
	}
}

static void *
gen_arg(void)
{
	return (void *)(uintptr_t)cl.gen;
}

static bool
stale(void *arg)
{
	return (uintptr_t)arg != cl.gen;
}

/* {"id", "advertise", "role", "since", "lease_max_ms"}, as JSON text. */
static char *
member_value(const char *role)
{
	json_t *v = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", cl.id,
	    "advertise", cl.cfg->advertise, "role", role, "since",
	    (json_int_t)time(NULL), "lease_max_ms",
	    (json_int_t)cl.cfg->lease_max_ms);
	char *text;

	if (v == NULL || (text = json_dumps(v, JSON_COMPACT)) == NULL)
		fatalx("%s: out of memory", __func__);
	json_decref(v);
	return text;
}

static void
ignore_cb(const struct etcd_reply *r, void *arg)
{
	(void)arg;
	if (r->ok)
		etcd_answered(r);
}

static void
put_member(void)
{
	char *v = member_value(cluster_role_word(srv->cluster.role));

	etcd_call(cl.etcd, "/v3/kv/put", etcd_req_put(cl.key_member, v,
	    strlen(v), cl.lease_id), ignore_cb, NULL);
	free(v);
}

/* Read a member or active value; false if it is not ours to read. */
static bool
parse_member(const struct etcd_kv *kv, struct member *m, uint32_t *lease_max)
{
	json_t *v = json_loadb(kv->value, kv->valuelen, JSON_REJECT_DUPLICATES,
	    NULL);
	const json_t *j;
	bool ok = false;

	memset(m, 0, sizeof *m);
	if (lease_max != NULL)
		*lease_max = 0;
	if (!json_is_object(v))
		goto out;
	j = json_object_get(v, "id");
	if (!json_is_string(j) || json_string_length(j) >= sizeof m->id)
		goto out;
	snprintf(m->id, sizeof m->id, "%s", json_string_value(j));
	j = json_object_get(v, "advertise");
	if (!json_is_string(j) || json_string_length(j) >= sizeof m->advertise)
		goto out;
	snprintf(m->advertise, sizeof m->advertise, "%s",
	    json_string_value(j));
	if (json_is_string(j = json_object_get(v, "role")))
		snprintf(m->role, sizeof m->role, "%s", json_string_value(j));
	if (json_is_integer(j = json_object_get(v, "since")))
		m->since = json_integer_value(j);
	j = json_object_get(v, "lease_max_ms");
	if (lease_max != NULL && json_is_integer(j) &&
	    json_integer_value(j) > 0 && json_integer_value(j) <= INT32_MAX)
		*lease_max = (uint32_t)json_integer_value(j);
	ok = true;
out:
	json_decref(v);
	return ok;
}

/* What a standby knows of the active, from PREFIX/active's kvs. */
static void
note_active(const struct etcd_kv *kv, size_t n)
{
	struct member m;
	uint32_t lease_max;

	if (n == 0) {
		srv->cluster.active[0] = '\0';
		return;
	}
	if (!parse_member(kv, &m, &lease_max)) {
		log_debug("cluster: %s holds no value of ours", cl.key_active);
		srv->cluster.active[0] = '\0';
		return;
	}
	if (strcmp(srv->cluster.active, m.advertise) != 0)
		log_info("cluster: the active dlmd is %s (epoch %lld)",
		    safe_str0(m.advertise), (long long)kv->create_revision);
	snprintf(srv->cluster.active, sizeof srv->cluster.active, "%s",
	    m.advertise);
	srv->cluster.epoch = kv->create_revision;
	if (lease_max > cl.seen_lease_max)
		cl.seen_lease_max = lease_max;
}

/* The deadline moved: tell the table, and the timer that steps down. */
static void
deadline_set(uint64_t deadline)
{
	struct timeval tv;
	uint64_t now = now_ms();

	cl.deadline = deadline;
	srv->cluster.lease_deadline = deadline;
	if (srv->cluster.role != CLUSTER_ACTIVE)
		return;
	locktab_set_window(srv->lt, srv->cluster.grace_until, deadline);
	tv.tv_sec = deadline > now ? (time_t)((deadline - now) / 1000) : 0;
	tv.tv_usec = deadline > now ?
	    (suseconds_t)((deadline - now) % 1000) * 1000 : 0;
	evtimer_add(cl.fence, &tv);
}

/*
 * Stop being active: grant nothing from now on, end every session (their
 * pending acquires are answered NOT_ACTIVE), close every connection so that
 * clients move, and start over with a new lease.
 */
static void
cluster_step_down(const char *why)
{
	uint32_t nconns = conn_count();

	log_warnx("cluster: stepping down from active (epoch %lld): %s; no "
	    "more grants here, closing %u connections",
	    (long long)srv->cluster.epoch, why, nconns);
	set_why("stepped down: %s", why);
	srv->cluster.role = CLUSTER_STARTING;
	srv->cluster.fences++;
	srv->cluster.active[0] = '\0';
	locktab_set_window(srv->lt, 0, 0);
	locktab_set_tokens(srv->lt, cl.token_end, cl.token_end);
	srv->cluster.token_lo = srv->cluster.token_hi = 0;
	evtimer_del(cl.fence);
	evtimer_del(cl.grace);
	/* The records stay in etcd: their sessions will reclaim elsewhere. */
	records_term_end();
	session_end_all(DLM_E_NOT_ACTIVE);
	conn_close_all_after_flush();
	cluster_lease_lost(NULL);
}

/* A fresh start: forget the lease (revoking it if it may live on). */
static void
cluster_lease_lost(const char *why)
{
	if (why != NULL && srv->cluster.role == CLUSTER_ACTIVE) {
		cluster_step_down(why);
		return;
	}
	if (why != NULL) {
		log_warnx("cluster: %s; taking a new lease", why);
		set_why("%s", why);
	}
	if (cl.lease_id != 0)
		etcd_call(cl.etcd, "/v3/lease/revoke",
		    etcd_req_lease("ID", cl.lease_id), ignore_cb, NULL);
	cl.gen++;
	cl.lease_id = 0;
	cl.lease_busy = cl.poll_busy = cl.renew_busy = cl.tokens_busy = false;
	cl.secret_busy = false;
	cl.have_tokens = false;
	srv->cluster.role = CLUSTER_STARTING;
	evtimer_del(cl.renew);
}

/* The fence timer: the deadline came without a renewal. */
static void
fence_cb(evutil_socket_t fd, short what, void *arg)
{
	if (timer_rearm_if_early(cl.fence, cl.deadline))
		return;
	cluster_check(now_ms());
}

bool
cluster_check(uint64_t now)
{
	char why[300];

	if (srv->cluster.role != CLUSTER_ACTIVE || now < cl.deadline)
		return true;
	snprintf(why, sizeof why, "the etcd lease was not renewed for %llu "
	    "ms, with etcd's quorum confirmed (last error: %s)",
	    (unsigned long long)(now - (cl.deadline + cl.margin_ms -
	    cl.lease_ttl_ms)),
	    cl.last_error[0] != '\0' ? cl.last_error : "none");
	cluster_step_down(why);
	return false;
}

static void
grace_over(void)
{
	uint64_t now = now_ms();

	evtimer_del(cl.grace);
	srv->cluster.grace_until = now;
	locktab_set_window(srv->lt, now, cl.deadline);
	log_info("cluster: grace period over; granting");
	if (cl.have_tokens)
		set_why("%s", "");
	locktab_regrant_all(srv->lt, now);
	/* A hello waiting for a name's reclaim may go now. */
	if (cl.changed != NULL)
		cl.changed();
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
	if (timer_rearm_if_early(cl.grace, srv->cluster.grace_until))
		return;
	grace_over();
}

void
cluster_end_grace(void)
{
	if (srv->cluster.role == CLUSTER_ACTIVE &&
	    srv->cluster.grace_until > now_ms())
		grace_over();
}

bool
cluster_in_grace(void)
{
	return srv->cluster.enabled && srv->cluster.role == CLUSTER_ACTIVE &&
	    srv->cluster.grace_until > now_ms();
}

/* May reclaims be checked and installed: key, tokens and records known. */
bool
cluster_reclaim_ready(void)
{
	return srv->cluster.role == CLUSTER_ACTIVE && srv->cluster.have_key &&
	    cl.have_tokens && records_loaded();
}

/*
 * End the grace early once every session that may hold a lock of the
 * previous active has reclaimed here or lapsed: nobody else can hold one.
 */
static void
grace_maybe_over(void)
{
	if (!cluster_in_grace() || !cluster_reclaim_ready() ||
	    !records_settled())
		return;
	log_info("cluster: every session that may hold a lock has reclaimed "
	    "or lapsed, %llu ms into the grace",
	    (unsigned long long)(now_ms() - srv->cluster.since));
	grace_over();
}

void
cluster_reclaimed(void)
{
	grace_maybe_over();
}

/* Something reclaims may wait for came: tell the caller, then see. */
static void
cluster_changed(void)
{
	grace_maybe_over();
	if (cl.changed != NULL)
		cl.changed();
}

static void tokens_reserve(void);

static void
tokens_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kv;
	const json_t *resp;
	char err[200];
	int64_t rev;
	uint64_t lo, hi;
	bool ok;
	size_t n;

	if (stale(arg))
		return;
	cl.tokens_busy = false;
	if (!r->ok || etcd_parse_txn(r->json, &ok, &rev, &resp, err,
	    sizeof err) != 0) {
		etcd_failed("reserving tokens", r);
		return;
	}
	etcd_answered(r);
	if (!ok) {
		/* Someone moved the mark: learn where it is, and try again. */
		if (etcd_parse_kvs(etcd_txn_range(resp, 0), &kv, 1, &n, err,
		    sizeof err) != 0) {
			log_warnx("cluster: %s: %s", cl.key_tokens, err);
			return;
		}
		cl.tokens_modrev = 0;
		if (n == 1) {
			char *end;
			unsigned long long v = strtoull(kv.value, &end, 10);

			if (kv.valuelen == 0 || kv.valuelen > 20 ||
			    *end != '\0' || kv.value[0] < '0' ||
			    kv.value[0] > '9' || v > INT64_MAX) {
				log_warnx("cluster: %s is not a token count; "
				    "granting nothing until it is",
				    cl.key_tokens);
				set_why("%s is not a token count",
				    cl.key_tokens);
				etcd_kv_clear(&kv, 1);
				return;
			}
			cl.tokens_value = v;
			cl.tokens_modrev = kv.mod_revision;
		}
		etcd_kv_clear(&kv, n);
		tokens_reserve();
		return;
	}
	/* Reserved: the block below the mark just put. */
	hi = cl.tokens_want;
	lo = hi - CLUSTER_TOKEN_BLOCK + 1;
	if (!cl.have_tokens && cl.tokens_modrev == 0 &&
	    srv->cluster.grace_until > now_ms()) {
		/* No token was ever reserved: nobody can hold a lock. */
		log_info("cluster: %s was created now, so no lock was ever "
		    "granted: no grace period", cl.key_tokens);
		srv->cluster.grace_until = now_ms();
	}
	cl.tokens_modrev = rev;
	cl.tokens_value = hi;
	if (lo == cl.token_end)
		locktab_set_tokens(srv->lt, 0, hi + 1);
	else {
		locktab_set_tokens(srv->lt, lo, hi + 1);
		srv->cluster.token_lo = lo;
	}
	if (srv->cluster.token_lo == 0)
		srv->cluster.token_lo = lo;
	srv->cluster.token_hi = hi;
	cl.token_end = hi + 1;
	log_debug("cluster: tokens up to %llu reserved",
	    (unsigned long long)hi);
	if (!cl.have_tokens) {
		cl.have_tokens = true;
		if (srv->cluster.grace_until <= now_ms())
			grace_over();
		else
			cluster_changed();
	} else
		locktab_regrant_all(srv->lt, now_ms());
}

/*
 * Compare-and-swap the high-water mark from what we last saw to a block
 * above it. Absent (modrev 0), it is created from the wall clock once, so
 * that tokens continue above those of a single dlmd that ran before; from
 * then on the key alone decides.
 */
static void
tokens_reserve(void)
{
	char value[24];
	uint64_t next;

	if (cl.tokens_busy || srv->cluster.role != CLUSTER_ACTIVE)
		return;
	if (cl.tokens_modrev == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		next = (uint64_t)ts.tv_sec * 1000000 +
		    (uint64_t)ts.tv_nsec / 1000;
		if (next < locktab_next_token(srv->lt))
			next = locktab_next_token(srv->lt);
		next += CLUSTER_TOKEN_BLOCK - 1;
	} else {
		if (cl.tokens_value > INT64_MAX - CLUSTER_TOKEN_BLOCK) {
			set_why("the fencing tokens are exhausted");
			log_warnx("cluster: the fencing tokens are exhausted");
			return;
		}
		next = cl.tokens_value + CLUSTER_TOKEN_BLOCK;
	}
	snprintf(value, sizeof value, "%llu", (unsigned long long)next);
	cl.tokens_want = next;
	cl.tokens_busy = true;
	etcd_call(cl.etcd, "/v3/kv/txn", etcd_txn_body(
	    etcd_one(etcd_cmp(cl.key_tokens, "MOD", cl.tokens_modrev)),
	    etcd_one(etcd_op("request_put", etcd_req_put(cl.key_tokens,
	    value, strlen(value), 0))),
	    etcd_one(etcd_op("request_range", etcd_req_range(cl.key_tokens,
	    false)))), tokens_cb, gen_arg());
}

static void
become_active(int64_t epoch)
{
	uint32_t lease_max = cl.cfg->lease_max_ms;
	uint64_t now = now_ms();

	if (cl.seen_lease_max > lease_max)
		lease_max = cl.seen_lease_max;
	cl.poll_busy = cl.tokens_busy = false;
	cl.have_tokens = false;
	cl.tokens_modrev = 0;
	cl.tokens_value = 0;
	srv->cluster.role = CLUSTER_ACTIVE;
	srv->cluster.epoch = epoch;
	srv->cluster.failovers++;
	srv->cluster.since = now;
	snprintf(srv->cluster.active, sizeof srv->cluster.active, "%s",
	    cl.cfg->advertise);
	cl.grace_ms = (uint64_t)lease_max + CLUSTER_GRACE_MARGIN_MS;
	srv->cluster.grace_until = now + cl.grace_ms;
	set_why("grace period after becoming active; reserving tokens");
	log_info("cluster: active for %s, epoch %lld; granting nothing for "
	    "%llu ms (the longest lease, %u ms, plus %u)",
	    cl.cfg->cluster_name != NULL ? cl.cfg->cluster_name : "dlm",
	    (long long)epoch, (unsigned long long)cl.grace_ms, lease_max,
	    CLUSTER_GRACE_MARGIN_MS);
	locktab_set_tokens(srv->lt, cl.token_end, cl.token_end);
	deadline_set(cl.deadline);
	evtimer_add(cl.grace, timer_tv((uint32_t)cl.grace_ms));
	records_term_begin(now, CLUSTER_GRACE_MARGIN_MS);
	put_member();
	tokens_reserve();
	/* The renewal must not wait out a whole period now. */
	cluster_renew();
}

static void
campaign_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kv;
	const json_t *resp;
	char err[200];
	int64_t rev;
	bool won;
	size_t n;

	if (stale(arg))
		return;
	cl.poll_busy = false;
	if (!r->ok && r->status >= 400 && r->status < 500) {
		/* Most likely our lease is gone ("lease not found"). */
		cluster_lease_lost(r->why);
		return;
	}
	if (!r->ok || etcd_parse_txn(r->json, &won, &rev, &resp, err,
	    sizeof err) != 0) {
		etcd_failed("campaigning", r);
		return;
	}
	etcd_answered(r);
	if (won) {
		become_active(rev);
		return;
	}
	if (etcd_parse_kvs(etcd_txn_range(resp, 0), &kv, 1, &n, err,
	    sizeof err) == 0) {
		note_active(&kv, n);
		etcd_kv_clear(&kv, n);
	}
}

static void
campaign(void)
{
	char *v = member_value("active");

	cl.poll_busy = true;
	etcd_call(cl.etcd, "/v3/kv/txn", etcd_txn_body(
	    etcd_one(etcd_cmp(cl.key_active, "CREATE", 0)),
	    etcd_one(etcd_op("request_put", etcd_req_put(cl.key_active, v,
	    strlen(v), cl.lease_id))),
	    etcd_one(etcd_op("request_range", etcd_req_range(cl.key_active,
	    false)))), campaign_cb, gen_arg());
	free(v);
}

static void
poll_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kv;
	char err[200];
	size_t n;

	if (stale(arg))
		return;
	cl.poll_busy = false;
	if (!r->ok || etcd_parse_kvs(r->json, &kv, 1, &n, err,
	    sizeof err) != 0) {
		etcd_failed("reading the active key", r);
		return;
	}
	etcd_answered(r);
	if (srv->cluster.role != CLUSTER_STANDBY) {
		etcd_kv_clear(&kv, n);
		return;
	}
	note_active(&kv, n);
	etcd_kv_clear(&kv, n);
	if (n == 0 && srv->cluster.have_key)
		campaign();
	else if (srv->cluster.active[0] != '\0')
		set_why("standby; the active is %s", srv->cluster.active);
}

/* The active checks that PREFIX/active is still its own. */
static void
verify_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kv;
	struct member m;
	char err[200];
	size_t n;

	if (stale(arg) || srv->cluster.role != CLUSTER_ACTIVE)
		return;
	if (!r->ok || etcd_parse_kvs(r->json, &kv, 1, &n, err,
	    sizeof err) != 0) {
		etcd_failed("reading the active key", r);
		/*
		 * The deadline waits for this read: renew and read again
		 * soon (on the next endpoint), not a whole period later.
		 */
		evtimer_add(cl.renew, timer_tv(CLUSTER_RENEW_RETRY_MS));
		return;
	}
	etcd_answered(r);
	if (n == 0 || kv.create_revision != srv->cluster.epoch ||
	    kv.lease != cl.lease_id || !parse_member(&kv, &m, NULL) ||
	    strcmp(m.id, cl.id) != 0)
		cluster_step_down(n == 0 ? "the active key is gone from etcd" :
		    "the active key is no longer this dlmd's");
	else if (cl.renewed_until > cl.deadline)
		deadline_set(cl.renewed_until);
	etcd_kv_clear(&kv, n);
}

static void
members_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kvs[CLUSTER_MEMBERS_MAX];
	char err[200];
	size_t n;

	if (!r->ok || etcd_parse_kvs(r->json, kvs, CLUSTER_MEMBERS_MAX, &n,
	    err, sizeof err) != 0)
		return;
	etcd_answered(r);
	cl.nmembers = 0;
	for (size_t i = 0; i < n; i++)
		if (parse_member(&kvs[i], &cl.members[cl.nmembers], NULL))
			cl.nmembers++;
	cl.members_at = now_ms();
	etcd_kv_clear(kvs, n);
}

static void
secret_cb(const struct etcd_reply *r, void *arg)
{
	struct etcd_kv kv;
	const json_t *resp;
	char err[200];
	int64_t rev;
	bool created;
	size_t n;

	if (stale(arg))
		return;
	cl.secret_busy = false;
	if (!r->ok || etcd_parse_txn(r->json, &created, &rev, &resp, err,
	    sizeof err) != 0) {
		etcd_failed("reading the cluster's secret", r);
		return;
	}
	etcd_answered(r);
	if (created) {
		receipt_key_set(&srv->cluster.key, cl.secret_want);
		srv->cluster.have_key = true;
		log_info("cluster: created the cluster's secret %s",
		    cl.key_secret);
		return;
	}
	if (etcd_parse_kvs(etcd_txn_range(resp, 0), &kv, 1, &n, err,
	    sizeof err) != 0)
		return;
	if (n == 1 && kv.valuelen == RECEIPT_KEY_LEN) {
		receipt_key_set(&srv->cluster.key,
		    (const uint8_t *)kv.value);
		srv->cluster.have_key = true;
		log_debug("cluster: read the cluster's secret");
	} else if (!cl.secret_bad) {
		/* Never overwritten: receipts already given would die. */
		log_warnx("cluster: %s is not %d bytes; this member will not "
		    "campaign until it is", cl.key_secret, RECEIPT_KEY_LEN);
		set_why("%s is not a cluster secret", cl.key_secret);
		cl.secret_bad = true;
	}
	etcd_kv_clear(&kv, n);
}

/* Read the cluster's secret, creating it if nobody has yet. */
static void
secret_fetch(void)
{
	size_t got = 0;

	while (got < sizeof cl.secret_want) {
		ssize_t k = getrandom(cl.secret_want + got,
		    sizeof cl.secret_want - got, 0);

		if (k < 0)
			fatal("getrandom");
		got += (size_t)k;
	}
	cl.secret_busy = true;
	etcd_call(cl.etcd, "/v3/kv/txn", etcd_txn_body(
	    etcd_one(etcd_cmp(cl.key_secret, "CREATE", 0)),
	    etcd_one(etcd_op("request_put", etcd_req_put(cl.key_secret,
	    (const char *)cl.secret_want, sizeof cl.secret_want, 0))),
	    etcd_one(etcd_op("request_range", etcd_req_range(cl.key_secret,
	    false)))), secret_cb, gen_arg());
}

static void
renew_cb(const struct etcd_reply *r, void *arg)
{
	char err[200];
	int64_t ttl;
	uint64_t ttl_ms, next, until;

	if (stale(arg))
		return;
	cl.renew_busy = false;
	if (!r->ok || etcd_parse_keepalive(r->json, cl.lease_id, &ttl, err,
	    sizeof err) != 0) {
		etcd_failed("renewing the lease", r);
		evtimer_add(cl.renew, timer_tv(CLUSTER_RENEW_RETRY_MS));
		return;
	}
	etcd_answered(r);
	if (ttl == 0) {
		cluster_lease_lost("etcd says the lease has expired");
		return;
	}
	ttl_ms = (uint64_t)ttl * 1000;
	if (ttl_ms > cl.lease_ttl_ms)
		ttl_ms = cl.lease_ttl_ms;
	/* Counted from when the renewal was sent, not answered. */
	until = r->sent_ms + ttl_ms - cl.margin_ms;
	if (srv->cluster.role == CLUSTER_ACTIVE) {
		/*
		 * An etcd leader that has lost its quorum renews leases until
		 * it notices, for up to an election timeout or two, but it
		 * cannot answer a linearizable read: the deadline moves when
		 * the read of the active key, sent now, comes back ours.
		 */
		cl.renewed_until = until;
		etcd_call(cl.etcd, "/v3/kv/range", etcd_req_range(cl.key_active,
		    false), verify_cb, gen_arg());
	} else if (until > cl.deadline)
		deadline_set(until);
	etcd_call(cl.etcd, "/v3/kv/range", etcd_req_range(cl.members_prefix,
	    true), members_cb, NULL);
	next = cl.lease_ttl_ms / 3;
	if (r->sent_ms + next > now_ms())
		next = r->sent_ms + next - now_ms();
	else
		next = 0;
	evtimer_add(cl.renew, timer_tv((uint32_t)next));
}

static void
cluster_renew(void)
{
	if (cl.lease_id == 0 || cl.renew_busy)
		return;
	evtimer_del(cl.renew);
	cl.renew_busy = true;
	etcd_call(cl.etcd, "/v3/lease/keepalive", etcd_req_lease("ID",
	    cl.lease_id), renew_cb, gen_arg());
}

static void
renew_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	cluster_renew();
}

static void
grant_cb(const struct etcd_reply *r, void *arg)
{
	char err[200];
	int64_t id, ttl;
	uint64_t ttl_ms;

	if (stale(arg))
		return;
	cl.lease_busy = false;
	if (!r->ok || etcd_parse_grant(r->json, &id, &ttl, err,
	    sizeof err) != 0) {
		etcd_failed("granting a lease", r);
		return;
	}
	etcd_answered(r);
	ttl_ms = (uint64_t)ttl * 1000;
	cl.lease_ttl_ms = ttl_ms < cl.cfg->cluster_ttl_ms ? ttl_ms :
	    cl.cfg->cluster_ttl_ms;
	cl.lease_id = id;
	cl.deadline = r->sent_ms + cl.lease_ttl_ms - cl.margin_ms;
	srv->cluster.lease_deadline = cl.deadline;
	srv->cluster.role = CLUSTER_STANDBY;
	srv->cluster.since = now_ms();
	set_why("standby; looking for the active");
	log_info("cluster: member %s with etcd lease %llx (%llu ms)", cl.id,
	    (unsigned long long)id, (unsigned long long)cl.lease_ttl_ms);
	put_member();
	evtimer_add(cl.renew, timer_tv((uint32_t)(cl.lease_ttl_ms / 3)));
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_ms();

	switch (srv->cluster.role) {
	case CLUSTER_STARTING:
		if (!cl.lease_busy) {
			char ttl[16];
			json_t *body = json_object();

			snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)
			    ((cl.cfg->cluster_ttl_ms + 999) / 1000));
			if (body == NULL || json_object_set_new(body, "TTL",
			    json_string(ttl)) != 0)
				fatalx("%s: out of memory", __func__);
			cl.lease_busy = true;
			etcd_call(cl.etcd, "/v3/lease/grant", body, grant_cb,
			    gen_arg());
		}
		break;
	case CLUSTER_STANDBY:
		if (!srv->cluster.have_key && !cl.secret_busy)
			secret_fetch();
		if (!cl.poll_busy) {
			cl.poll_busy = true;
			etcd_call(cl.etcd, "/v3/kv/range",
			    etcd_req_range(cl.key_active, false), poll_cb,
			    gen_arg());
		}
		break;
	case CLUSTER_ACTIVE:
		if (!cluster_check(now))
			break;
		if (locktab_tokens_left(srv->lt) < CLUSTER_TOKEN_BLOCK / 2)
			tokens_reserve();
		records_tick(now);
		grace_maybe_over();
		break;
	}
	srv->cluster.grace_left_ms = srv->cluster.role == CLUSTER_ACTIVE &&
	    srv->cluster.grace_until > now ? srv->cluster.grace_until - now : 0;
	evtimer_add(cl.tick, timer_tv(CLUSTER_TICK_MS));
}

static char *
key_join(const char *prefix, const char *rest)
{
	size_t len = strlen(prefix) + strlen(rest) + 2;
	char *k = xmalloc(len);

	snprintf(k, len, "%s/%s", prefix, rest);
	return k;
}

int
cluster_start(struct event_base *base, const struct dlmd_config *cfg,
    void (*changed)(void))
{
	const char *name = cfg->cluster_name != NULL ? cfg->cluster_name :
	    "dlm";
	char secret[DLMD_SECRET_LEN + 1], err[600], *mine;
	struct ssl_ctx_st *tls = NULL;

	if (cfg->cluster_etcd == NULL)
		return 0;
	memset(&cl, 0, sizeof cl);
	cl.base = base;
	cl.cfg = cfg;
	if (strncmp(cfg->cluster_etcd, "https://", 8) == 0 &&
	    (tls = etcd_tls_ctx(cfg, err, sizeof err)) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	cl.etcd = etcd_new(base, cfg->cluster_etcd, CLUSTER_ETCD_TIMEOUT_MS,
	    tls, err, sizeof err);
	etcd_tls_ctx_free(tls);
	if (cl.etcd == NULL) {
		log_warnx("cluster-etcd: %s", err);
		return -1;
	}
	session_random_secret(secret);
	memcpy(cl.id, secret, sizeof cl.id - 1);
	cl.key_active = key_join(name, "active");
	cl.key_tokens = key_join(name, "tokens");
	cl.key_secret = key_join(name, "secret");
	cl.changed = changed;
	records_init(cl.etcd, name, cluster_changed);
	cl.members_prefix = key_join(name, "members/");
	mine = key_join(name, "members");
	cl.key_member = key_join(mine, cl.id);
	free(mine);
	/* Renewals every TTL/3 leave two tries; step down TTL/6 early. */
	cl.margin_ms = cfg->cluster_ttl_ms / 6;
	cl.lease_ttl_ms = cfg->cluster_ttl_ms;
	cl.tick = evtimer_new(base, tick_cb, NULL);
	cl.renew = evtimer_new(base, renew_timer_cb, NULL);
	cl.fence = evtimer_new(base, fence_cb, NULL);
	cl.grace = evtimer_new(base, grace_cb, NULL);
	if (cl.tick == NULL || cl.renew == NULL || cl.fence == NULL ||
	    cl.grace == NULL)
		fatalx("%s: cannot make timers", __func__);

	srv->cluster.enabled = true;
	srv->cluster.role = CLUSTER_STARTING;
	snprintf(srv->cluster.id, sizeof srv->cluster.id, "%s", cl.id);
	set_why("starting: no etcd lease yet");
	/* Nothing may be granted before etcd says so. */
	locktab_set_window(srv->lt, 0, 0);
	cl.token_end = locktab_next_token(srv->lt);
	locktab_set_tokens(srv->lt, cl.token_end, cl.token_end);
	log_info("cluster %s: member %s, advertising %s, etcd %s, lease %u ms",
	    name, cl.id, cfg->advertise, cfg->cluster_etcd,
	    cfg->cluster_ttl_ms);
	tick_cb(-1, 0, NULL);
	return 0;
}

/* Leaving: hand the role on at once rather than after the lease runs out. */
void
cluster_stop(void)
{
	if (!srv->cluster.enabled || cl.etcd == NULL)
		return;
	/*
	 * Grant nothing more (ending sessions releases holds, which could
	 * grant a waiter) before giving the role away.
	 */
	if (srv->cluster.role == CLUSTER_ACTIVE)
		log_info("cluster: leaving the active role (epoch %lld)",
		    (long long)srv->cluster.epoch);
	locktab_set_window(srv->lt, 0, 0);
	evtimer_del(cl.fence);
	evtimer_del(cl.grace);
	/* Sessions end now, but their records stay for the next active. */
	records_term_end();
	srv->cluster.role = CLUSTER_STARTING;
	set_why("shutting down");
	if (cl.lease_id != 0)
		etcd_call(cl.etcd, "/v3/lease/revoke", etcd_req_lease("ID",
		    cl.lease_id), ignore_cb, NULL);
	cl.lease_id = 0;
	cl.gen++;
	evtimer_del(cl.tick);
	evtimer_del(cl.renew);
}

/*
 * SIGHUP: new connections to etcd use the TLS files as they are now; a
 * file that does not load keeps the running ones.
 */
void
cluster_reload_tls(const struct dlmd_config *cfg)
{
	struct ssl_ctx_st *tls;
	char err[600];

	if (cl.etcd == NULL || strncmp(cfg->cluster_etcd, "https://", 8) != 0)
		return;
	if ((tls = etcd_tls_ctx(cfg, err, sizeof err)) == NULL) {
		log_warnx("reload: %s; keeping the running TLS files for etcd",
		    err);
		return;
	}
	etcd_set_tls(cl.etcd, tls);
	etcd_tls_ctx_free(tls);
	log_info("reload: TLS files for etcd loaded%s%s",
	    cfg->cluster_etcd_cert != NULL ? ", certificate " : "",
	    cfg->cluster_etcd_cert != NULL ? cfg->cluster_etcd_cert : "");
}

void
cluster_free(void)
{
	if (cl.etcd == NULL)
		return;
	records_free();
	etcd_free(cl.etcd);
	event_free(cl.tick);
	event_free(cl.renew);
	event_free(cl.fence);
	event_free(cl.grace);
	free(cl.key_active);
	free(cl.key_tokens);
	free(cl.key_secret);
	free(cl.key_member);
	free(cl.members_prefix);
	memset(&cl, 0, sizeof cl);
}

bool
cluster_is_active(void)
{
	return !srv->cluster.enabled || srv->cluster.role == CLUSTER_ACTIVE;
}

/* Why a free lock is not granted at once, for an error message. */
const char *
cluster_not_granting(void)
{
	static char buf[200];
	uint64_t now = now_ms();

	if (!srv->cluster.enabled)
		return "";
	if (srv->cluster.grace_until > now)
		snprintf(buf, sizeof buf, " during the fail-over grace period "
		    "(%llu ms left)",
		    (unsigned long long)(srv->cluster.grace_until - now));
	else if (locktab_tokens_left(srv->lt) == 0)
		snprintf(buf, sizeof buf, " until fencing tokens are "
		    "reserved in etcd");
	else
		snprintf(buf, sizeof buf, " while its etcd lease is unsure");
	return buf;
}

const char *
cluster_endpoints(void)
{
	return cl.cfg != NULL ? cl.cfg->cluster_etcd : "";
}

const char *
cluster_current_endpoint(void)
{
	return cl.etcd != NULL ? etcd_endpoint(cl.etcd) : "";
}

/* The members seen in etcd at the last renewal, for the cluster method. */
int
cluster_members(int i, const char **id, const char **advertise,
    const char **role, int64_t *since)
{
	if (i < 0 || i >= cl.nmembers)
		return -1;
	*id = cl.members[i].id;
	*advertise = cl.members[i].advertise;
	*role = cl.members[i].role;
	*since = cl.members[i].since;
	return 0;
}

int
cluster_nmembers(void)
{
	return cl.nmembers;
}

uint64_t
cluster_members_age_ms(void)
{
	return cl.members_at != 0 ? now_ms() - cl.members_at : UINT64_MAX;
}

uint64_t
cluster_lease_left_ms(void)
{
	uint64_t now = now_ms();

	return cl.deadline > now ? cl.deadline - now : 0;
}
