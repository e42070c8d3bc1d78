/*
 * The connection and the session on it, as a state machine that never
 * blocks. See engine.h for who drives it.
 *
 *	CONNECTING --connected--> HELLO --answered--> READY
 *	    ^                       |                   |
 *	    |  (linger left)        | failed            | dropped, lapsed
 *	    +------ BACKOFF <-------+-------------------+
 *	                            |  (no linger, linger over, first
 *	                            v   connect failed, or closing)
 *	                          CLOSED
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "dlm.h"
#include "engine.h"
#include "proto.h"

#define BACKOFF_FIRST_MS	20
#define BACKOFF_MAX_MS		1000
/* A cluster's standbys answer at once: ask again sooner. */
#define BACKOFF_MAX_CLUSTER_MS	250
/*
 * In a cluster, how long a client that lost its server keeps looking for
 * the active one at least (a fail-over takes the etcd lease's TTL plus
 * the grace).
 */
#define FAILOVER_RETRY_MS	60000
/* With several servers, one that does not answer is left after this. */
#define ATTEMPT_MAX_MS		2000
/* How long engine_close() waits for the socket to take bye. */
#define BYE_WAIT_MS		50
/* An output buffer bigger than this is freed once written. */
#define OUT_KEEP		(256u * 1024)
/* hello's msgid: requests count from 1. */
#define HELLO_MSGID		0

/*
 * A mutex whose acquire was in flight when the connection dropped: the
 * server may have granted it just before. Released after a resume unless
 * the client knows it holds the lock.
 */
struct uncertain {
	struct uncertain	*next;
	char			*lock;
};

static void	begin_dial(struct engine *, uint64_t now);
static void	why(struct engine *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/*
 * Say in e->errmsg, after the server's address, why a connect or hello
 * failed: what dlm_errmsg() shows for a failed dlm_connect().
 */
static void
why(struct engine *e, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	addr_format(&e->addr, e->errmsg, sizeof e->errmsg - 2);
	n = strlen(e->errmsg);
	e->errmsg[n++] = ':';
	e->errmsg[n++] = ' ';
	va_start(ap, fmt);
	vsnprintf(e->errmsg + n, sizeof e->errmsg - n, fmt, ap);
	va_end(ap);
}

static void
set_state(struct engine *e, enum engine_state st, int err)
{
	if (st == ENGINE_CLOSED)
		e->err = err;
	if (e->state == st)
		return;
	e->state = st;
	e->ops->state(e->owner, st, err);
}

/*
 * Close the socket. fork_fd goes first: a fork() in between leaves the
 * child a socket it does not close (shut by its CLOEXEC at exec, or dropped
 * with the lease), never a number the parent has already reused.
 */
static void
drop_socket(struct engine *e)
{
	atomic_store(&e->fork_fd, -1);
	dial_abort(&e->dial);
	tls_client_drop(e);
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	e->in.len = 0;
	e->out.size = e->out_off = 0;
	e->broken = false;
}

static void
uncertain_free(struct uncertain *u)
{
	if (u != NULL) {
		free(u->lock);
		free(u);
	}
}

static void
req_free(struct dlm_req *req)
{
	uncertain_free(req->unc);
	free(req->lock);
	free(req->value_own);
	free(req->r.raw);
	free(req->r.message);
	free(req);
}

/* Hand a finished request up, or free it when it is the engine's own. */
static void
finish(struct engine *e, struct dlm_req *req)
{
	uncertain_free(req->unc);	/* not needed: it was answered */
	req->unc = NULL;
	req->done = true;
	if (req->kind == REQ_INTERNAL)
		req_free(req);
	else
		e->ops->finished(e->owner, req);
}

/* req was in flight when the connection dropped: keep its record. */
static void
remember_uncertain(struct engine *e, struct dlm_req *req)
{
	struct uncertain *u = req->unc;

	req->unc = NULL;
	u->next = e->uncertain;
	e->uncertain = u;
}

static void
forget_uncertain(struct engine *e)
{
	struct uncertain *u;

	while ((u = e->uncertain) != NULL) {
		e->uncertain = u->next;
		uncertain_free(u);
	}
}

/*
 * Fail pending requests with err: those sent on the connection that
 * dropped, or with all, those still waiting for a session too.
 */
static void
fail_pending(struct engine *e, int err, bool all)
{
	struct dlm_req *req, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		if (req->unsent && !all)
			continue;
		HASH_DEL(e->pending, req);
		if (!req->unsent && req->unc != NULL &&
		    err == DLM_E_DISCONNECTED)
			remember_uncertain(e, req);
		req->r.err = err;
		finish(e, req);
	}
	if (all)
		e->later.size = 0;
}

/* The session is gone for good: what waits fails, every hold is lost. */
static void
give_up(struct engine *e, int err)
{
	drop_socket(e);
	forget_uncertain(e);
	fail_pending(e, DLM_E_CLOSED, true);
	set_state(e, ENGINE_CLOSED, err);
	if (e->opened && !e->closing)
		e->ops->lost_all(e->owner, DLM_LOST_SESSION);
}

/* Each server (and each active one they name) once, then a back-off. */
static void
new_round(struct engine *e)
{
	e->round_left = e->naddrs - 1;
	e->hints_left = e->naddrs;
}

/* Wait before the next round, no later than until. */
static void
back_off(struct engine *e, uint64_t now, uint64_t until)
{
	int max = e->cluster || e->saw_not_active ? BACKOFF_MAX_CLUSTER_MS :
	    BACKOFF_MAX_MS;

	new_round(e);
	e->step_at = now + (uint64_t)e->backoff_ms;
	if (e->step_at > until)
		e->step_at = until;
	e->backoff_ms = e->backoff_ms * 2 > max ? max : e->backoff_ms * 2;
	set_state(e, ENGINE_BACKOFF, 0);
}

/*
 * A dial or a hello failed: the next server of the list at once, or after
 * a back-off within the linger (or the first connect's time), or give up.
 */
static void
attempt_failed(struct engine *e, uint64_t now, int err)
{
	uint64_t until = e->opened ? e->linger_until : e->first_until;

	drop_socket(e);
	if (!e->closing && e->round_left > 0 && now < until) {
		e->round_left--;
		e->step_at = now;
		set_state(e, ENGINE_BACKOFF, 0);
		return;
	}
	if (!e->opened) {
		if (!e->closing && e->saw_not_active && now < until) {
			/* A cluster between actives: wait for its election. */
			back_off(e, now, until);
			return;
		}
		/* The first connect: the caller hears why. */
		fail_pending(e, err, true);
		set_state(e, ENGINE_CLOSED, err);
		return;
	}
	if (e->closing || now >= until) {
		give_up(e, DLM_E_CLOSED);
		return;
	}
	back_off(e, now, until);
}

/*
 * Whether req, in flight when a cluster's server went away, waits to be
 * sent to the next active one: an acquire (not being cancelled, and not a
 * try, which must not wait) or a release of one lock. Whether it is sent
 * again depends on where the session opens next: see send_held_back().
 */
static bool
holdable(const struct dlm_req *req)
{
	return req->kind != REQ_INTERNAL && req->lock != NULL &&
	    ((req->is_acquire && !req->cancel_sent && req->timeout_ms != 0) ||
	    req->is_release);
}

static void
hold_back_sent(struct engine *e)
{
	struct dlm_req *req, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		if (!req->unsent && holdable(req)) {
			req->unsent = req->held_back = true;
			e->nheld_back++;
		}
	}
}

/*
 * The connection is gone. What was sent on it fails; with a linger, the
 * session is resumed on a new one until the linger runs out; otherwise
 * the session is over.
 */
static void
connection_lost(struct engine *e, uint64_t now)
{
	int window = e->linger_ms;

	drop_socket(e);
	/*
	 * In a cluster the server may have died, not the session: what was
	 * asked waits for the next active, and the holds are reclaimed there.
	 */
	if (e->cluster && !e->closing)
		hold_back_sent(e);
	fail_pending(e, e->closing ? DLM_E_CLOSED : DLM_E_DISCONNECTED, false);
	if (e->cluster && window < FAILOVER_RETRY_MS)
		window = FAILOVER_RETRY_MS;
	if (e->closing || window <= 0) {
		give_up(e, DLM_E_CLOSED);
		return;
	}
	e->linger_until = now + (uint64_t)window;
	e->backoff_ms = BACKOFF_FIRST_MS;
	e->step_at = now + BACKOFF_FIRST_MS;
	new_round(e);
	set_state(e, ENGINE_BACKOFF, 0);
}

/* The end of a connect or hello step: the timeout, within the linger. */
static uint64_t
step_deadline(const struct engine *e, uint64_t now)
{
	int ms = e->connect_timeout_ms;
	uint64_t at, until = e->opened ? e->linger_until : e->first_until;

	if (e->naddrs > 1 && ms > ATTEMPT_MAX_MS)
		ms = ATTEMPT_MAX_MS;
	at = now + (uint64_t)ms;
	if (until != 0 && at > until)
		at = until;
	return at;
}

/*
 * reclaim's request: the session, and what it holds as the layer above
 * claims it. 0 or DLM_E_NOMEM.
 */
static int
send_reclaim(struct engine *e)
{
	struct hello_args h = e->hello;
	msgpack_sbuffer claims;
	uint32_t n = 0;
	int rc;

	/* The lease the session had, which is what its holder counts. */
	h.lease_ms = e->lease_ms;
	h.linger_ms = e->linger_ms;
	/* An earlier reclaim may have been taken, its answer lost. */
	if (e->reclaim_unread)
		e->holds_unsure = true;
	msgpack_sbuffer_init(&claims);
	rc = e->ops->claims(e->owner, &claims, &n);
	if (rc == 0)
		rc = wire_reclaim(&e->out, HELLO_MSGID, &h, e->secret,
		    e->receipt, n, &claims);
	msgpack_sbuffer_destroy(&claims);
	if (rc == 0)
		e->reclaim_unread = true;
	return rc;
}

/* Connected: say hello (presenting the secret when resuming). */
static void
say_hello(struct engine *e, int fd, uint64_t now)
{
	struct hello_args h = e->hello;
	int rc;

	e->fd = fd;
	atomic_store(&e->fork_fd, fd);
	e->in.len = 0;
	e->out.size = e->out_off = 0;
	/*
	 * In a cluster, a session that was open may be on a new active,
	 * which knows it only by reclaim; if this is the same one, reclaim
	 * is refused and hello resumes it.
	 */
	e->reclaiming = e->opened && e->cluster && e->secret[0] != '\0';
	h.resume = e->opened && e->secret[0] != '\0' ? e->secret : NULL;
	if ((rc = e->reclaiming ? send_reclaim(e) :
	    wire_hello(&e->out, HELLO_MSGID, &h)) != 0) {
		attempt_failed(e, now, rc);
		return;
	}
	e->step_at = step_deadline(e, now);
	e->hello_sent_ms = now;
	set_state(e, ENGINE_HELLO, 0);
	engine_flush(e, now);
}

static void
begin_dial(struct engine *e, uint64_t now)
{
	int rc;

	if (e->hinted) {
		e->addr = e->hint;
		e->hinted = false;
	} else {
		e->addr = e->addrs[e->next_addr];
		e->next_addr = (e->next_addr + 1) % e->naddrs;
	}
	rc = dial_start(&e->dial, &e->addr);

	if (rc < 0 || rc > 1) {
		why(e, "cannot connect: %s", e->dial.why);
		attempt_failed(e, now, rc);
		return;
	}
	if (rc == 1) {
		int fd = e->dial.fd;

		e->dial.fd = -1;
		dial_abort(&e->dial);
		say_hello(e, fd, now);
		return;
	}
	atomic_store(&e->fork_fd, e->dial.fd);
	e->step_at = step_deadline(e, now);
	set_state(e, ENGINE_CONNECTING, 0);
}

static struct dlm_req *
internal_req(void)
{
	struct dlm_req *req = calloc(1, sizeof *req);

	if (req != NULL)
		req->kind = REQ_INTERNAL;
	return req;
}

/*
 * Send a request of the engine's own, whose answer nobody reads: 0, or
 * an error when it could not be queued (out of memory).
 */
static int
internal_call(struct engine *e, const char *method, const char *key,
    const char *s, uint64_t u)
{
	msgpack_sbuffer params;
	struct dlm_req *req;
	int rc = 0;

	if ((req = internal_req()) == NULL)
		return DLM_E_NOMEM;
	msgpack_sbuffer_init(&params);
	if (key != NULL)
		rc = s != NULL ? wire_params_str(&params, key, s) :
		    wire_params_uint(&params, key, u);
	if (rc == 0)
		rc = engine_submit(e, req, method, key != NULL ? &params :
		    NULL);
	if (rc != 0)
		req_free(req);
	msgpack_sbuffer_destroy(&params);
	return rc;
}

/*
 * After a resume: release each mutex whose acquire the drop cut short,
 * unless the client holds it, so that a grant nobody heard of cannot keep
 * the lock from everyone for the rest of the session.
 */
static void
release_uncertain(struct engine *e)
{
	struct uncertain *u, *list = e->uncertain;

	e->uncertain = NULL;
	while ((u = list) != NULL) {
		list = u->next;
		if (!e->ops->holds(e->owner, u->lock) &&
		    internal_call(e, "release", "lock", u->lock, 0) != 0) {
			/* Kept, and tried again as the engine runs. */
			u->next = e->uncertain;
			e->uncertain = u;
			continue;
		}
		uncertain_free(u);
	}
}

/*
 * Send the reset that gives back the holds reported lapsed; when it
 * cannot be queued, it is owed, and tried again as the engine runs.
 */
static void
reset_lapsed(struct engine *e)
{
	e->reset_owed = internal_call(e, "reset", NULL, NULL, 0) != 0;
}

/*
 * A cluster's standby refused: follow the active it names, if any, in
 * this round; wait for an election otherwise.
 */
static void
not_active(struct engine *e, const msgpack_object *error)
{
	char active[ADDR_PATH_MAX + ADDR_HOST_MAX + 16];
	struct addr a;

	e->saw_not_active = true;
	wire_error_active(error, active, sizeof active);
	if (active[0] != '\0' && e->hints_left > 0 &&
	    addr_parse(active, 0, &a, NULL, 0) == 0) {
		e->hint = a;
		e->hinted = true;
		e->hints_left--;
		e->round_left++;
	}
}

/* A refusal of hello or reclaim: say why, and note a standby's hint. */
static int
refused(struct engine *e, const struct frame *f, int rc, const char *what)
{
	char msg[200];

	wire_error_message(f->error, msg, sizeof msg);
	why(e, "%s refused: %s", what, msg[0] != '\0' ? msg :
	    dlm_strerror(rc));
	if (rc == DLM_E_NOT_ACTIVE)
		not_active(e, f->error);
	return rc;
}

/* Send req again on the new connection, with what is left of its time. */
static int
resend(struct engine *e, struct dlm_req *req, uint64_t now)
{
	struct wire_params params;
	int left = req->timeout_ms, rc;

	if (req->is_acquire && left > 0) {
		uint64_t spent = now - req->first_ms;

		if (spent >= (uint64_t)left)
			return DLM_E_TIMEOUT;
		left -= (int)spent;
	}
	rc = req->is_acquire ? wire_acquire_params(&params, req->lock,
	    &req->acq, left) : wire_lock_params(&params, req->lock,
	    req->hold_token);
	if (rc == 0)
		rc = wire_request(&e->out, req->msgid, req->is_acquire ?
		    "acquire" : "release", &params.sb);
	wire_params_free(&params);
	if (rc == 0) {
		req->unsent = false;
		req->resent = true;
		req->sent_ms = now;
	}
	return rc;
}

/* Where the session opened again, which decides what held back goes. */
enum reopened {
	REOPEN_RECLAIMED,	/* on a new active, with its holds */
	REOPEN_RESUMED,		/* on the server that had it */
	REOPEN_NEW,		/* as a new session: every hold was lost */
};

/* Finish a held-back request with err, its place in the engine let go. */
static void
finish_held_back(struct engine *e, struct dlm_req *req, int err)
{
	HASH_DEL(e->pending, req);
	req->held_back = false;
	e->nheld_back--;
	req->r.err = err;
	finish(e, req);
}

/*
 * The requests held back over a cluster's change of server. After a
 * reclaim they all go again: the new active never saw them, and the holds
 * a release names were claimed at the depth this client knew, before the
 * release. On the server that had the session, any of them may have been
 * carried out unheard (an acquire granted, an rlock's release counted), so
 * they fail as over any dropped connection, and a mutex's acquire is
 * released after, unless held. On a new session every hold was lost, so
 * a release has nothing to do, and an acquire is asked anew.
 */
static void
send_held_back(struct engine *e, uint64_t now, enum reopened how)
{
	struct dlm_req *req, *tmp;
	int rc;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		if (!req->held_back)
			continue;
		if (how == REOPEN_RESUMED) {
			if (req->is_acquire && req->unc != NULL)
				remember_uncertain(e, req);
			finish_held_back(e, req, req->is_acquire &&
			    req->cancel_sent ? DLM_E_CANCELLED :
			    DLM_E_DISCONNECTED);
		} else if (req->is_acquire && req->cancel_sent)
			finish_held_back(e, req, DLM_E_CANCELLED);
		else if (req->is_release && how == REOPEN_NEW)
			finish_held_back(e, req, DLM_E_NOT_HELD);
		else if ((rc = resend(e, req, now)) != 0)
			finish_held_back(e, req, rc);
		else {
			req->held_back = false;
			e->nheld_back--;
		}
	}
}

/*
 * When the next held-back acquire's timeout runs out (0: none): it is
 * counted from the call, whether or not a server answers meanwhile.
 */
static uint64_t
held_back_deadline(const struct engine *e)
{
	const struct dlm_req *req, *tmp;
	uint64_t at = 0;

	if (e->nheld_back == 0)
		return 0;
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		uint64_t end = req->first_ms + (uint64_t)req->timeout_ms;

		if (req->held_back && req->is_acquire && req->timeout_ms > 0 &&
		    (at == 0 || end < at))
			at = end;
	}
	return at;
}

/* Held-back acquires whose timeout has run out fail with TIMEOUT. */
static void
expire_held_back(struct engine *e, uint64_t now)
{
	struct dlm_req *req, *tmp;

	if (e->nheld_back == 0)
		return;
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		if (req->held_back && req->is_acquire && req->timeout_ms > 0 &&
		    now >= req->first_ms + (uint64_t)req->timeout_ms) {
			/* Cut short on a server: what that one may have given. */
			if (req->unc != NULL)
				remember_uncertain(e, req);
			finish_held_back(e, req, DLM_E_TIMEOUT);
		}
	}
}

/*
 * The session is open (again): requests made meanwhile go out, and the
 * layer above hears. 0, or DLM_E_NOMEM.
 */
static int
session_opened(struct engine *e, uint64_t now)
{
	e->opened = true;
	/* The server renewed the lease when it read hello (or reclaim). */
	e->last_send_ms = now;
	e->lease_base_ms = e->hello_sent_ms;
	e->holds_unsure = false;
	e->linger_until = 0;
	e->backoff_ms = BACKOFF_FIRST_MS;
	e->saw_not_active = false;
	e->lapsed = false;
	if (e->later.size > 0) {
		struct dlm_req *req, *tmp;

		if (msgpack_sbuffer_write(&e->out, e->later.data,
		    e->later.size) != 0)
			return DLM_E_NOMEM;
		e->later.size = 0;
		/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
		HASH_ITER(hh, e->pending, req, tmp) {
			if (req->unsent && !req->held_back) {
				req->unsent = false;
				req->sent_ms = now;
			}
		}
	}
	e->ops->state(e->owner, ENGINE_READY, 0);
	engine_flush(e, now);
	return 0;
}

/* hello was answered: 0, or why the session could not be opened. */
static int
hello_answered(struct engine *e, const struct frame *f, uint64_t now)
{
	struct session_info si;
	bool resuming = e->opened;
	int rc;

	if ((rc = wire_error_code(f->error)) != 0)
		return refused(e, f, rc, "hello");
	if ((rc = wire_session(f, &si, true)) != 0) {
		why(e, "hello's answer cannot be read");
		return rc;
	}
	e->session = si.session;
	memcpy(e->secret, si.secret, sizeof e->secret);
	e->cluster = si.has_receipt;
	memcpy(e->receipt, si.receipt, sizeof e->receipt);
	e->lease_ms = si.lease_ms;
	e->linger_ms = si.linger_ms >= 0 ? si.linger_ms : e->hello.linger_ms;
	/* Told to the layer above in session_opened(), once all is queued. */
	e->state = ENGINE_READY;
	if (resuming && si.resumed) {
		if (e->holds_unsure && !e->lapsed) {
			/*
			 * An earlier reclaim was taken here, its answer lost:
			 * which holds it kept is not known, so every hold
			 * is reported lost, and given back below.
			 */
			e->ops->lost_all(e->owner, DLM_LOST_FAILOVER);
			e->lapsed = true;
		}
		send_held_back(e, now, REOPEN_RESUMED);
		if (e->lapsed) {
			/*
			 * The holds were reported lost; the server kept the
			 * session after all: give back whatever it still
			 * holds, so that nothing stays held that the program
			 * has been told it lost.
			 */
			forget_uncertain(e);
			reset_lapsed(e);
		} else
			release_uncertain(e);
	} else if (resuming) {
		/* The server lost the session, and the holds with it. */
		forget_uncertain(e);
		e->reset_owed = false;
		e->ops->lost_all(e->owner, DLM_LOST_SESSION);
		send_held_back(e, now, REOPEN_NEW);
	}
	return session_opened(e, now);
}

/*
 * reclaim was answered: the session and the holds the new active kept,
 * and each refused hold reported lost. A refusal of the whole reclaim
 * (the session is on this server already, or was never recorded, or the
 * grace is over) is answered by a hello that resumes the session or makes
 * a new one. 0, or why the session could not be opened.
 */
static int
reclaim_answered(struct engine *e, const struct frame *f, uint64_t now)
{
	struct session_info si;
	const char *lock;
	size_t len;
	uint64_t token;
	bool kept;
	int rc, got;

	e->reclaiming = false;
	if ((rc = wire_error_code(f->error)) != 0) {
		struct hello_args h = e->hello;

		/* Refused whole: this reclaim changed nothing. */
		e->reclaim_unread = false;
		if (rc == DLM_E_NOT_ACTIVE)
			return refused(e, f, rc, "reclaim");
		h.resume = e->secret;
		if ((rc = wire_hello(&e->out, HELLO_MSGID, &h)) != 0)
			return rc;
		e->step_at = step_deadline(e, now);
		e->hello_sent_ms = now;
		engine_flush(e, now);
		return 0;
	}
	/*
	 * Taken. Until every outcome is read, reclaim_unread stays set: a
	 * drop now makes the next reclaim find the session here already.
	 */
	if ((rc = wire_session(f, &si, false)) != 0) {
		why(e, "reclaim's answer cannot be read");
		return rc;
	}
	for (uint32_t i = 0; (got = wire_reclaim_outcome(f, i, &lock, &len,
	    &token, &kept)) != 0; i++)
		if (got < 0) {
			why(e, "reclaim's outcomes cannot be read");
			return DLM_E_PROTOCOL;
		}
	e->reclaim_unread = false;
	e->session = si.session;
	if (si.has_receipt)
		memcpy(e->receipt, si.receipt, sizeof e->receipt);
	e->lease_ms = si.lease_ms;
	if (si.linger_ms >= 0)
		e->linger_ms = si.linger_ms;
	e->state = ENGINE_READY;
	/* Holds already reported lapsed are not reported again. */
	for (uint32_t i = 0; !e->lapsed && wire_reclaim_outcome(f, i, &lock,
	    &len, &token, &kept) > 0; i++)
		if (!kept)
			e->ops->lost(e->owner, lock, len, token,
			    DLM_LOST_FAILOVER);
	/* Grants the old active gave unheard died with it. */
	forget_uncertain(e);
	/* Holds reported lapsed while the reclaim was on its way go back. */
	if (e->lapsed)
		reset_lapsed(e);
	send_held_back(e, now, REOPEN_RECLAIMED);
	return session_opened(e, now);
}

/*
 * Handle one frame: 0, -1 when the connection must be dropped, or (in
 * HELLO) a positive error code when hello was refused.
 */
static int
handle_frame(struct engine *e, const struct frame *f, uint64_t now)
{
	if (f->type == DLM_MSG_RESPONSE) {
		struct dlm_req *req;

		if (!f->has_msgid)
			return 0;	/* an error about an unreadable frame */
		if (e->state == ENGINE_HELLO)
			return f->msgid != HELLO_MSGID ? 0 : e->reclaiming ?
			    reclaim_answered(e, f, now) :
			    hello_answered(e, f, now);
		if ((req = engine_find(e, f->msgid)) == NULL || req->unsent)
			return 0;
		if (e->cluster && holdable(req) &&
		    wire_error_code(f->error) == DLM_E_NOT_ACTIVE) {
			/* The server stepped down: ask the next active. */
			req->unsent = req->held_back = true;
			e->nheld_back++;
			return 0;
		}
		HASH_DEL(e->pending, req);
		wire_reply(&req->r, f, req->want_raw);
		if (req->is_watch && req->r.err == 0 &&
		    !wire_state_valid(f->result)) {
			free(req->r.raw);
			req->r.raw = NULL;
			req->r.err = DLM_E_PROTOCOL;
		}
		if (req->r.err == DLM_E_NOT_ACTIVE) {
			/* Stepping down, it closes: to the caller, a drop. */
			req->r.err = DLM_E_DISCONNECTED;
		}
		/* Any answer means the server read the request: renewed. */
		if (req->sent_ms > e->lease_base_ms)
			e->lease_base_ms = req->sent_ms;
		finish(e, req);
		return 0;
	}
	if (f->type == DLM_MSG_NOTIFY) {
		const msgpack_object *state;
		const char *lock;
		size_t len;
		uint64_t token;
		uint32_t waiters;
		int reason, rc = wire_lost(f, &lock, &len, &token, &reason);

		if (rc < 0)
			return -1;
		if (rc > 0) {
			e->ops->lost(e->owner, lock, len, token, reason);
			return 0;
		}
		if ((rc = wire_changed(f, &lock, &len, &state)) < 0)
			return -1;
		if (rc > 0) {
			e->ops->changed(e->owner, lock, len, state);
			return 0;
		}
		if ((rc = wire_contended(f, &lock, &len, &token,
		    &waiters)) < 0)
			return -1;
		if (rc > 0)
			e->ops->contended(e->owner, lock, len, token, waiters);
	}
	return 0;	/* something newer than this library: ignore */
}

/* Read what came and handle every whole frame. */
static void
read_input(struct engine *e, uint64_t now)
{
	struct frame f;
	size_t len;
	int got;

	char tlswhy[200] = "";

	if ((e->ssl != NULL ? tls_client_read(e, &e->in, tlswhy,
	    sizeof tlswhy) : rbuf_read(&e->in, e->fd)) < 0) {
		if (e->state == ENGINE_HELLO && tlswhy[0] != '\0') {
			/* A server refusing our certificate says so now. */
			why(e, "the server ended TLS: %s", tlswhy);
			attempt_failed(e, now, DLM_E_CONNECT);
		} else if (e->state == ENGINE_HELLO) {
			why(e, "the server closed the connection before "
			    "answering hello");
			attempt_failed(e, now, DLM_E_CONNECT);
		} else
			connection_lost(e, now);
		return;
	}
	while ((got = rbuf_frame(&e->in, &f, &len)) > 0) {
		int rc = handle_frame(e, &f, now);

		/* f points into the buffer: consume only after handling. */
		rbuf_consume(&e->in, len);
		if (rc > 0 || (rc < 0 && e->state == ENGINE_HELLO)) {
			if (rc < 0)
				why(e, "the answer to hello cannot be read");
			attempt_failed(e, now, rc > 0 ? rc : DLM_E_PROTOCOL);
			return;
		}
		if (rc < 0) {
			connection_lost(e, now);
			return;
		}
	}
	if (got < 0) {
		if (e->state == ENGINE_HELLO) {
			why(e, "the server sent something that is not dlm's "
			    "protocol");
			attempt_failed(e, now, DLM_E_PROTOCOL);
		} else
			connection_lost(e, now);
	}
}

void
engine_init(struct engine *e, const struct engine_ops *ops, void *owner)
{
	memset(e, 0, sizeof *e);
	e->fd = -1;
	e->dial.fd = -1;
	atomic_init(&e->fork_fd, -1);
	e->ops = ops;
	e->owner = owner;
	e->next_id = 1;
	e->backoff_ms = BACKOFF_FIRST_MS;
	e->state = ENGINE_CLOSED;
	msgpack_sbuffer_init(&e->out);
	msgpack_sbuffer_init(&e->later);
	rbuf_init(&e->in);
}

int
engine_start(struct engine *e, const struct addr *addrs, int naddrs,
    const struct hello_args *hello, int connect_timeout_ms)
{
	uint64_t now = mono_ms();

	if (naddrs > ADDR_LIST_MAX)
		naddrs = ADDR_LIST_MAX;
	memcpy(e->addrs, addrs, (size_t)naddrs * sizeof *addrs);
	e->naddrs = naddrs;
	e->next_addr = 0;
	new_round(e);
	e->hello = *hello;
	e->linger_ms = hello->linger_ms;
	e->connect_timeout_ms = connect_timeout_ms;
	e->first_until = now + (uint64_t)connect_timeout_ms;
	e->state = ENGINE_CONNECTING;
	begin_dial(e, now);
	return e->state == ENGINE_CLOSED ? e->err : 0;
}

int
engine_fd(const struct engine *e)
{
	switch (e->state) {
	case ENGINE_CONNECTING:
		return e->tls_handshaking ? e->fd : e->dial.fd;
	case ENGINE_HELLO:
	case ENGINE_READY:
		return e->fd;
	default:
		return -1;
	}
}

bool
engine_has_output(const struct engine *e)
{
	return e->out_off < e->out.size;
}

int
engine_events(const struct engine *e)
{
	switch (e->state) {
	case ENGINE_CONNECTING:
		if (e->tls_handshaking)
			return e->tls_want_write ? ENGINE_WRITE : ENGINE_READ;
		return ENGINE_WRITE;
	case ENGINE_HELLO:
	case ENGINE_READY:
		return ENGINE_READ | (engine_has_output(e) && !e->broken ?
		    ENGINE_WRITE : 0);
	default:
		return 0;
	}
}

/*
 * In a cluster the holds are reclaimed after a fail-over, so they stay
 * the program's while it has no server, but only for the lease: the next
 * active counts it from when the holder last heard from the old one.
 */
static bool
lapse_pending(const struct engine *e)
{
	return e->cluster && e->opened && !e->lapsed &&
	    e->state != ENGINE_READY && e->state != ENGINE_CLOSED;
}

/*
 * How long the session may be idle before a ping renews it: a third of
 * the lease; in a cluster a sixth, so that a holder has most of its lease
 * left to reclaim in when its server dies.
 */
static uint64_t
ping_every(const struct engine *e)
{
	return (uint64_t)e->lease_ms / (e->cluster ? 6 : 3);
}

uint64_t
engine_deadline(const struct engine *e)
{
	uint64_t ping_at, lapse_at, at, held = held_back_deadline(e);

	switch (e->state) {
	case ENGINE_CONNECTING:
	case ENGINE_HELLO:
	case ENGINE_BACKOFF:
		lapse_at = e->lease_base_ms + (uint64_t)e->lease_ms;
		at = lapse_pending(e) && lapse_at < e->step_at ? lapse_at :
		    e->step_at;
		return held != 0 && held < at ? held : at;
	case ENGINE_READY:
		/* Ping when idle for ping_every(). */
		ping_at = e->last_send_ms + ping_every(e);
		/*
		 * No request answered for a whole lease, though pings went
		 * out meanwhile: the server has expired the session,
		 * or will before it can tell us.
		 */
		lapse_at = e->lease_base_ms + (uint64_t)e->lease_ms;
		at = ping_at < lapse_at ? ping_at : lapse_at;
		return held != 0 && held < at ? held : at;
	default:
		return 0;
	}
}

/* One step of a TLS handshake; hello follows it. */
static void
tls_step(struct engine *e, uint64_t now)
{
	char err[200];
	int rc = tls_client_step(e, err, sizeof err);

	if (rc == 1)
		say_hello(e, e->fd, now);
	else if (rc < 0) {
		why(e, "%s", err);
		attempt_failed(e, now, DLM_E_CONNECT);
	} else if (now >= e->step_at) {
		why(e, "TLS handshake not done within %d ms",
		    e->connect_timeout_ms);
		attempt_failed(e, now, DLM_E_CONNECT);
	}
}

/* Connected to a tls: server: the handshake comes before hello. */
static void
tls_begin(struct engine *e, int fd, uint64_t now)
{
	char err[200];

	atomic_store(&e->fork_fd, fd);
	if (tls_client_start(e, fd, err, sizeof err) != 0) {
		close(fd);
		atomic_store(&e->fork_fd, -1);
		why(e, "%s", err);
		attempt_failed(e, now, DLM_E_CONNECT);
		return;
	}
	tls_step(e, now);
}

void
engine_process(struct engine *e, int events, uint64_t now)
{
	if (lapse_pending(e) &&
	    now >= e->lease_base_ms + (uint64_t)e->lease_ms) {
		/* What engine_deadline() says: held no longer. */
		e->lapsed = true;
		e->ops->lost_all(e->owner, DLM_LOST_EXPIRED);
	}
	expire_held_back(e, now);
	switch (e->state) {
	case ENGINE_CONNECTING:
		if (e->tls_handshaking) {
			tls_step(e, now);
			return;
		}
		if (events != 0) {
			int fd, rc;

			atomic_store(&e->fork_fd, -1);
			rc = dial_done(&e->dial, &fd);
			if (rc == 1 && e->addr.type == ADDR_TLS)
				tls_begin(e, fd, now);
			else if (rc == 1)
				say_hello(e, fd, now);
			else if (rc == 0)
				atomic_store(&e->fork_fd, e->dial.fd);
			else {
				why(e, "cannot connect: %s", e->dial.why);
				attempt_failed(e, now, rc);
			}
		} else if (now >= e->step_at) {
			why(e, "cannot connect: no answer within %d ms",
			    e->connect_timeout_ms);
			attempt_failed(e, now, DLM_E_CONNECT);
		}
		return;
	case ENGINE_BACKOFF:
		if (now >= e->step_at)
			begin_dial(e, now);
		return;
	case ENGINE_CLOSED:
		return;
	case ENGINE_HELLO:
	case ENGINE_READY:
		break;
	}
	if (e->broken) {
		char tlswhy[200] = "";

		/* A server refusing our certificate sent why before closing. */
		if (e->state == ENGINE_HELLO && e->ssl != NULL)
			(void)tls_client_read(e, &e->in, tlswhy, sizeof tlswhy);
		if (e->state == ENGINE_HELLO && tlswhy[0] != '\0') {
			why(e, "the server ended TLS: %s", tlswhy);
			attempt_failed(e, now, DLM_E_CONNECT);
		} else if (e->state == ENGINE_HELLO) {
			why(e, "the connection failed during hello");
			attempt_failed(e, now, DLM_E_CONNECT);
		} else
			connection_lost(e, now);
		return;
	}
	if (events & ENGINE_WRITE)
		engine_flush(e, now);
	if (events & ENGINE_READ) {
		read_input(e, now);
		if (e->state != ENGINE_HELLO && e->state != ENGINE_READY)
			return;
	}
	if (e->state == ENGINE_HELLO) {
		if (now >= e->step_at) {
			why(e, "hello not answered within %d ms",
			    e->connect_timeout_ms);
			attempt_failed(e, now, DLM_E_CONNECT);
		}
		return;
	}
	if (now >= e->lease_base_ms + (uint64_t)e->lease_ms) {
		/*
		 * The lease ran out without a word from the server: the holds
		 * can no longer be trusted. Report them lost now, not when
		 * the connection is given up, so that the program stops
		 * using what they protect before another holder can be
		 * granted them.
		 */
		e->lapsed = true;
		e->ops->lost_all(e->owner, DLM_LOST_EXPIRED);
		connection_lost(e, now);
		return;
	}
	/* What memory kept from being sent after a resume goes now. */
	if (e->reset_owed)
		reset_lapsed(e);
	if (e->uncertain != NULL)
		release_uncertain(e);
	if (e->reset_owed || e->uncertain != NULL || engine_has_output(e))
		engine_flush(e, now);
	if (now >= e->last_send_ms + ping_every(e)) {
		/* The reply renews the lease. */
		e->last_send_ms = now;	/* one ping per interval, whatever */
		internal_call(e, "ping", NULL, NULL, 0);
		engine_flush(e, now);
	}
}

int
engine_submit(struct engine *e, struct dlm_req *req, const char *method,
    const msgpack_sbuffer *params)
{
	msgpack_sbuffer *to;
	int rc;

	if (e->state == ENGINE_CLOSED || e->closing)
		return DLM_E_CLOSED;
	if (req->is_acquire && !(req->acq.flags & DLM_RLOCK) && req->lock != NULL &&
	    req->unc == NULL) {
		/* What a drop with it in flight must record: made now. */
		if ((req->unc = calloc(1, sizeof *req->unc)) == NULL ||
		    (req->unc->lock = strdup(req->lock)) == NULL) {
			uncertain_free(req->unc);
			req->unc = NULL;
			return DLM_E_NOMEM;
		}
	}
	req->msgid = e->next_id++;
	if (e->next_id == 0)
		e->next_id = 1;		/* 0 is hello's */
	req->sent_ms = mono_ms();
	if (req->first_ms == 0)
		req->first_ms = req->sent_ms;
	req->done = false;
	req->unsent = e->state != ENGINE_READY;
	to = req->unsent ? &e->later : &e->out;
	dlm__hash_oom = 0;
	HASH_ADD(hh, e->pending, msgid, sizeof req->msgid, req);
	if (dlm__hash_oom)
		rc = DLM_E_NOMEM;
	else if ((rc = wire_request(to, req->msgid, method, params)) != 0) {
		/* Out of memory: this request fails, the connection is fine. */
		HASH_DEL(e->pending, req);
	}
	if (rc != 0) {
		uncertain_free(req->unc);
		req->unc = NULL;
	}
	return rc;
}

void
engine_flush(struct engine *e, uint64_t now)
{
	bool wrote = false;

	if (e->fd < 0 || e->broken ||
	    (e->state != ENGINE_READY && e->state != ENGINE_HELLO))
		return;
	while (e->out_off < e->out.size) {
		ssize_t n = e->ssl != NULL ? tls_client_write(e,
		    e->out.data + e->out_off, e->out.size - e->out_off) :
		    send(e->fd, e->out.data + e->out_off,
		    e->out.size - e->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* Whoever polls the socket now sees its end. */
			e->broken = true;
			shutdown(e->fd, SHUT_RDWR);
			return;
		}
		e->out_off += (size_t)n;
		wrote = true;
	}
	if (e->out_off == e->out.size) {
		e->out.size = e->out_off = 0;
		if (e->out.alloc > OUT_KEEP) {
			/* A burst is over; do not keep its buffer. */
			msgpack_sbuffer_destroy(&e->out);
			msgpack_sbuffer_init(&e->out);
		}
	}
	if (wrote)
		e->last_send_ms = now;
}

struct dlm_req *
engine_find(struct engine *e, uint32_t msgid)
{
	struct dlm_req *req;

	HASH_FIND(hh, e->pending, &msgid, sizeof msgid, req);
	return req;
}

int
engine_cancel(struct engine *e, const struct dlm_req *req)
{
	msgpack_sbuffer params;
	struct dlm_req *c;
	int rc;

	if ((c = internal_req()) == NULL)
		return DLM_E_NOMEM;
	msgpack_sbuffer_init(&params);
	if ((rc = wire_params_uint(&params, "id", req->msgid)) == 0)
		rc = engine_submit(e, c, "cancel", &params);
	msgpack_sbuffer_destroy(&params);
	if (rc != 0)
		req_free(c);
	return rc;
}

bool
engine_lease_valid(const struct engine *e, uint64_t now)
{
	/* In a cluster the holds outlive the connection (lapse_pending()). */
	return (e->state == ENGINE_READY || lapse_pending(e)) &&
	    now < e->lease_base_ms + (uint64_t)e->lease_ms;
}

void
engine_bye(struct engine *e)
{
	uint64_t until = mono_ms() + BYE_WAIT_MS;

	if (e->closing)
		return;
	e->closing = true;
	/*
	 * End the session with bye, so that a linger does not keep its
	 * locks. A server that does not read gets a few milliseconds.
	 */
	if (e->state == ENGINE_READY && !e->broken &&
	    wire_request(&e->out, 0, "bye", NULL) == 0) {
		for (;;) {
			uint64_t now = mono_ms();
			struct pollfd pfd = { e->fd, POLLOUT, 0 };

			engine_flush(e, now);
			if (!engine_has_output(e) || e->broken || now >= until)
				break;
			(void)poll(&pfd, 1, (int)(until - now));
		}
	}
}

void
engine_close(struct engine *e)
{
	engine_bye(e);
	if (e->state != ENGINE_CLOSED)
		give_up(e, DLM_E_CLOSED);
	else
		drop_socket(e);
}

void
engine_free(struct engine *e)
{
	struct dlm_req *req, *tmp;

	drop_socket(e);
	tls_client_free(e);
	forget_uncertain(e);
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, e->pending, req, tmp) {
		HASH_DEL(e->pending, req);
		if (req->kind == REQ_INTERNAL)
			req_free(req);
	}
	msgpack_sbuffer_destroy(&e->out);
	msgpack_sbuffer_destroy(&e->later);
	rbuf_free(&e->in);
}
