/*
 * Sessions: a client's name, lease and linger, and the acquires it has
 * pending. A session outlives its connection by its linger; it ends on bye,
 * lease expiry, linger's end or an admin reset, releasing everything at once.
 */
#include "config.h"

#include <sys/random.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlmd.h"
#include "xmalloc.h"

static int
session_cmp(const struct session *a, const struct session *b)
{
	return strcmp(a->name, b->name);
}

/* libbsd's tree.h has no RB_GENERATE_STATIC; not every function is used. */
RB_PROTOTYPE_INTERNAL(session_tree, session, by_name, session_cmp,
    __attribute__((__unused__)) static)
RB_GENERATE_INTERNAL(session_tree, session, by_name, session_cmp,
    __attribute__((__unused__)) static)

struct session *
session_of_owner(const struct lt_owner *o)
{
	return (struct session *)((const char *)o -
	    offsetof(struct session, owner));
}

struct session *
session_find(const char *name, size_t len)
{
	struct session key;
	char buf[1024];
	struct session *s;

	if (len >= sizeof buf)
		return NULL;	/* longer than any name the server accepts */
	memcpy(buf, name, len);
	buf[len] = '\0';
	key.name = buf;
	s = RB_FIND(session_tree, &srv->sessions, &key);
	return s;
}

struct session *
session_first_from(const char *key, size_t keylen)
{
	struct session k;
	char buf[1024];

	if (keylen == 0)
		return RB_MIN(session_tree, &srv->sessions);
	if (keylen >= sizeof buf)
		keylen = sizeof buf - 1;
	memcpy(buf, key, keylen);
	buf[keylen] = '\0';
	k.name = buf;
	return RB_NFIND(session_tree, &srv->sessions, &k);
}

struct session *
session_next(struct session *s)
{
	return RB_NEXT(session_tree, &srv->sessions, s);
}

void
session_random_secret(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[DLMD_SECRET_LEN / 2];
	size_t got = 0;

	while (got < sizeof raw) {
		ssize_t n = getrandom(raw + got, sizeof raw - got, 0);

		if (n < 0)
			fatal("getrandom");
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof raw; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[DLMD_SECRET_LEN] = '\0';
}

const char *
session_cluster_name(void)
{
	return srv->cfg->cluster_name != NULL ? srv->cfg->cluster_name : "dlm";
}

static struct receipt_who
session_who(const struct session *s)
{
	return (struct receipt_who){ &srv->cluster.key, session_cluster_name(),
	    s->name, strlen(s->name), s->secret, strlen(s->secret) };
}

/*
 * The receipt that proves the session (its name and secret) to a later
 * active; false when there is none to give (not clustered).
 */
bool
session_receipt(const struct session *s, uint8_t *out)
{
	struct receipt_who who;

	if (!srv->cluster.enabled || !srv->cluster.have_key)
		return false;
	who = session_who(s);
	receipt_session(&who, out);
	return true;
}

/* The receipt of one of its holds, as it stands now (count included). */
bool
session_hold_receipt(struct session *s, const struct lt_hold *h,
    uint8_t *out)
{
	struct receipt_claim c;

	if (!srv->cluster.enabled || !srv->cluster.have_key)
		return false;
	if (!s->have_hold_prefix) {
		/* The name and secret are the session's for good now. */
		struct receipt_who who = session_who(s);

		receipt_hold_prefix(&who, &s->hold_prefix);
		s->have_hold_prefix = true;
	}
	c = (struct receipt_claim){ h->lock->name, h->lock->namelen,
	    h->lock->kind, h->mode, h->count, h->token, h->permits,
	    h->lock->capacity };
	receipt_hold_from(&srv->cluster.key, &s->hold_prefix, &c, out);
	return true;
}

static void session_timer_cb(evutil_socket_t, short, void *);

struct session *
session_create(struct conn *c, const char *name, size_t len)
{
	struct session *s = xcalloc(1, sizeof *s);

	locktab_owner_init(&s->owner);
	TAILQ_INIT(&s->pending);
	LIST_INIT(&s->watches);
	s->id = ++srv->next_session_id;
	s->name = xstrndup(name, len);
	s->info_pid = -1;
	s->lease_ms = srv->cfg->lease_default_ms;
	session_random_secret(s->secret);
	evtimer_assign(&s->timer, srv->base, session_timer_cb, s);
	RB_INSERT(session_tree, &srv->sessions, s);
	srv->nsessions++;
	srv->stats.sessions_total++;
	session_attach(s, c);
	return s;
}

/* Bind the session to a connection (new, or resumed after a drop). */
/*
 * A contention notice the table gave while the session lingered went
 * nowhere, and the table tells a hold once until its queue empties: the
 * holder, keeping the queue full, would never hear. Tell it again now.
 */
static void
retell_contended(struct session *s)
{
	const struct lt_hold *h;

	LIST_FOREACH(h, &s->owner.holds, owner_link) {
		uint32_t n = h->lock->nwaiters -
		    (locktab_converting(h) != NULL);

		if (h->notify_contended && h->contended_told && n != 0) {
			srv->stats.contended++;
			notify_contended(s->conn, h, n);
		}
	}
}

void
session_attach(struct session *s, struct conn *c)
{
	/* Watches were the old connection's: its client watches anew. */
	watch_drop_session(s);
	if (s->lingering) {
		s->lingering = false;
		srv->nlingering--;
	}
	s->conn = c;
	c->session = s;
	snprintf(s->peer, sizeof s->peer, "%s", c->peer);
	s->linger_deadline = 0;
	retell_contended(s);
	/* The caller sets the lease and calls session_touch(). */
}

/*
 * Renew the lease. Called for every message. A lease that has already run
 * out, its timer not yet fired because the loop was busy, is not renewed: the
 * session has expired, and is ended here before the message is served.
 */
void
session_touch(struct session *s, uint64_t now)
{
	if (s->owner.deadline != 0 && s->owner.deadline <= now) {
		struct conn *c = s->conn;

		session_expire(s, c);
		return;
	}
	/*
	 * The timer is not moved for every message (that costs a timer
	 * syscall per request): it fires at the deadline it was set for, and
	 * a session renewed meanwhile is given the rest of its new lease.
	 */
	s->owner.deadline = now + s->lease_ms;
	if (!s->lease_armed) {
		event_add(&s->timer, timer_tv(s->lease_ms));
		s->lease_armed = true;
	}
}

uint64_t
session_valid_ms(const struct session *s, uint64_t now)
{
	if (s->owner.deadline <= now)
		return 0;
	return s->owner.deadline - now;
}

/*
 * The connection is gone. With linger, keep the session and its holds for
 * linger_ms; its pending acquires are cancelled (nobody is left to answer).
 */
void
session_detach(struct session *s)
{
	uint64_t now = now_ms(), linger;

	s->conn = NULL;
	/* Nobody to tell: a lingering session watches nothing. */
	watch_drop_session(s);
	if (s->ended)
		return;
	linger = s->linger_ms;
	/*
	 * In a cluster a client cannot tell a dropped connection from a dead
	 * server, so it keeps its holds for the rest of its lease, to reclaim
	 * them elsewhere or resume them here: the session lingers at least
	 * that long, so that nobody else is granted them meanwhile.
	 */
	if (srv->cfg->cluster_etcd != NULL && s->owner.deadline > now &&
	    s->owner.deadline - now > linger)
		linger = s->owner.deadline - now;
	/*
	 * Gone without release or bye: its holds were not let go, so their
	 * lock-delays apply (the reason sends nothing: no connection is left).
	 */
	if (linger == 0 || srv->shutting_down) {
		session_end(s, srv->shutting_down ? 0 : DLM_LOST_SESSION,
		    DLM_E_CANCELLED);
		return;
	}
	/* Nobody is left to answer. */
	pending_cancel_all(s, DLM_E_CANCELLED, "the connection closed");
	/* While lingering the lease does not run; the linger does. */
	s->owner.deadline = 0;
	s->linger_deadline = now + linger;
	s->lingering = true;
	srv->nlingering++;
	s->lease_armed = false;
	event_add(&s->timer, timer_tv((uint32_t)linger));
	log_debug("session %s lingering for %llu ms", safe_str0(s->name),
	    (unsigned long long)linger);
}

/* The connection layer's word that c is gone. */
void
session_conn_closed(struct conn *c)
{
	struct session *s = c->session;

	if (s != NULL) {
		c->session = NULL;
		session_detach(s);
	}
}

/*
 * End a session: its pending acquires are answered with cancel_code, then
 * every hold is released in one step of the lock table. Holders still
 * connected are told with "lost" when lost_reason is set. Freed later, by
 * session_reap(), so that no caller up the stack is left holding a pointer.
 */
void
session_end(struct session *s, int lost_reason, int cancel_code)
{
	uint32_t released;

	if (s->ended)
		return;
	s->ended = true;
	event_del(&s->timer);
	watch_drop_session(s);
	pending_cancel_all(s, cancel_code,
	    cancel_code == DLM_E_SHUTTING_DOWN ? "server is shutting down" :
	    "the session ended while the acquire waited");
	released = locktab_end_owner(srv->lt, &s->owner, lost_reason,
	    now_ms());
	RB_REMOVE(session_tree, &srv->sessions, s);
	srv->nsessions--;
	if (s->lingering)
		srv->nlingering--;
	if (s->conn != NULL) {
		s->conn->session = NULL;
		s->conn = NULL;
	}
	log_debug("session %s ended, %u holds released", safe_str0(s->name),
	    released);
	TAILQ_INSERT_TAIL(&srv->dead_sessions, s, dead_link);
	conn_kick();
}

/* The lease ran out: end the session and close its connection. */
void
session_expire(struct session *s, struct conn *c)
{
	srv->stats.expiries++;
	log_info("session %s expired: no message for %u ms",
	    safe_str0(s->name), s->lease_ms);
	session_end(s, DLM_LOST_EXPIRED, DLM_E_CANCELLED);
	if (c != NULL)
		conn_close_after_flush(c);
}

void
session_end_all(int cancel_code)
{
	struct session *s, *tmp;

	RB_FOREACH_SAFE(s, session_tree, &srv->sessions, tmp)
		session_end(s, 0, cancel_code);
}

void
session_reap(void)
{
	struct session *s;

	if (TAILQ_EMPTY(&srv->dead_sessions))
		return;
	while ((s = TAILQ_FIRST(&srv->dead_sessions)) != NULL) {
		TAILQ_REMOVE(&srv->dead_sessions, s, dead_link);
		free(s->name);
		free(s->info_host);
		free(s->info_label);
		free(s);
	}
	memory_released();
}

static void
session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct conn *c = s->conn;
	uint64_t due = c != NULL ? s->owner.deadline : s->linger_deadline;

	/*
	 * Renewed since the timer was set, or the timer came a clock tick
	 * early: wait for the rest.
	 */
	if (timer_rearm_if_early(&s->timer, due))
		return;
	s->lease_armed = false;
	if (c == NULL) {
		log_info("session %s ended: not back within its linger%s",
		    safe_str0(s->name), srv->cfg->cluster_etcd != NULL ?
		    " or lease" : "");
		/* Not let go either: as a drop without linger. */
		session_end(s, DLM_LOST_SESSION, DLM_E_CANCELLED);
		return;
	}
	session_expire(s, c);
}

static void
pending_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pending *p = arg;

	if (timer_rearm_if_early(&p->timer, p->deadline))
		return;
	srv->stats.timeouts++;
	pending_cancel(p, DLM_E_TIMEOUT, "timed out waiting for the lock");
}

struct pending *
pending_new(struct session *s, uint32_t msgid, int64_t timeout_ms)
{
	struct pending *p = xcalloc(1, sizeof *p);

	p->session = s;
	p->msgid = msgid;
	evtimer_assign(&p->timer, srv->base, pending_timer_cb, p);
	if (timeout_ms > 0) {
		p->timed = true;
		p->deadline = now_ms() + (uint64_t)timeout_ms;
		event_add(&p->timer, timer_tv((uint32_t)timeout_ms));
	}
	TAILQ_INSERT_TAIL(&s->pending, p, link);
	return p;
}

void
pending_free(struct pending *p)
{
	if (p->timed)
		event_del(&p->timer);
	TAILQ_REMOVE(&p->session->pending, p, link);
	free(p);
}

/*
 * Answer a pending acquire with an error and forget it. Its wait is the
 * caller's to withdraw from the lock table (or already gone from it).
 */
static void
pending_fail(struct pending *p, int code, const char *message)
{
	struct conn *c = p->session->conn;
	uint32_t msgid = p->msgid;

	pending_free(p);
	reply_error(c, &msgid, code, "%s", message);
}

/*
 * Withdraw a pending acquire and answer it with code and a sentence: the
 * one way a waiting acquire ends other than by a grant (cancel, timeout,
 * take-over, a dropped connection, the session's end). The answer goes
 * out before the withdrawal, which may grant the lock to someone else.
 */
void
pending_cancel(struct pending *p, int code, const char *fmt, ...)
{
	struct lt_wait *w = p->wait;
	char message[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	pending_fail(p, code, message);
	locktab_cancel(srv->lt, w, now_ms());
}

/* Every pending acquire of a session, as pending_cancel() does one. */
void
pending_cancel_all(struct session *s, int code, const char *message)
{
	struct pending *p;

	while ((p = TAILQ_FIRST(&s->pending)) != NULL)
		pending_cancel(p, code, "%s", message);
}

struct pending *
pending_find(struct session *s, uint32_t msgid)
{
	struct pending *p;

	TAILQ_FOREACH(p, &s->pending, link)
		if (p->msgid == msgid)
			return p;
	return NULL;
}

/* The lock table's callbacks: what it decided, told to the clients. */
static void
lt_granted(void *arg, struct lt_wait *w, struct lt_hold *h)
{
	struct pending *p = w->udata;
	struct session *s = p->session;
	uint32_t msgid = p->msgid;
	uint8_t receipt[RECEIPT_LEN];

	(void)arg;
	if (p->convert) {
		pending_free(p);
		reply_converted(s->conn, msgid, h, session_valid_ms(s,
		    now_ms()), session_hold_receipt(s, h, receipt) ? receipt :
		    NULL);
		return;
	}
	srv->stats.grants++;
	metrics_observe_wait(h->since - w->since);
	pending_free(p);
	if (srv->shutting_down) {
		reply_error(s->conn, &msgid, DLM_E_SHUTTING_DOWN,
		    "server is shutting down");
		return;	/* the hold goes when the session ends */
	}
	reply_grant(s->conn, msgid, h, session_valid_ms(s, now_ms()),
	    session_hold_receipt(s, h, receipt) ? receipt : NULL);
}

/*
 * The table withdrew a wait: a convert whose hold ended (released,
 * revoked, reset) while it waited. Otherwise only locktab_end_owner()
 * drops waits on its own, and session_end() withdraws a session's waits
 * before it calls that; so this answers a wait that no path of ours left
 * behind, should one ever be.
 */
static void
lt_cancelled(void *arg, struct lt_wait *w)
{
	(void)arg;
	pending_fail(w->udata, DLM_E_CANCELLED, w->convert ?
	    "the hold ended while the convert waited" :
	    "the session ended while the acquire waited");
}

static void
lt_revoked(void *arg, struct lt_hold *h, int reason)
{
	struct session *s = session_of_owner(h->owner);

	(void)arg;
	notify_lost(s->conn, h, reason);
}

static void
lt_ended(void *arg, const struct lt_hold *h, uint64_t now)
{
	(void)arg;
	metrics_observe_hold(now - h->since);
}

static void
lt_contended(void *arg, const struct lt_hold *h, uint32_t waiters)
{
	struct session *s = session_of_owner(h->owner);

	(void)arg;
	if (s->conn == NULL)
		return;		/* lingering: nobody to tell */
	srv->stats.contended++;
	notify_contended(s->conn, h, waiters);
}

/* Have the delay timer fire at due, unless it fires sooner already. */
static void
delay_timer_arm(uint64_t due)
{
	uint64_t now = now_ms();
	struct timeval tv;

	if (srv->delay_due != 0 && srv->delay_due <= due)
		return;
	srv->delay_due = due;
	due = due > now ? due - now : 0;
	tv.tv_sec = (time_t)(due / 1000);
	tv.tv_usec = (suseconds_t)(due % 1000) * 1000;
	event_add(&srv->delay_timer, &tv);
}

static void
lt_delayed(void *arg, const struct lt_lock *l, uint64_t until)
{
	(void)arg;
	(void)l;
	delay_timer_arm(until);
}

/*
 * The earliest lock-delay may be over (or the timer came a clock tick
 * early): the table grants what waited for those that are, and says
 * when the next ends.
 */
void
session_delay_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t next;

	(void)fd;
	(void)what;
	(void)arg;
	srv->delay_due = 0;
	if ((next = locktab_delays_due(srv->lt, now_ms())) != 0)
		delay_timer_arm(next);
}

const struct lt_ops session_lt_ops = {
	.granted = lt_granted,
	.cancelled = lt_cancelled,
	.revoked = lt_revoked,
	.ended = lt_ended,
	.changed = watch_changed,
	.contended = lt_contended,
	.delayed = lt_delayed,
};
