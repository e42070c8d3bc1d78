/*
 * libdlm's public calls: acquire, release, reset, check, holds, the async
 * and scoped forms, and error strings; built on client.c's requests.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "proto.h"

#define MAX_LOCK_NAME	65535

/* The entry for a lock name, made when make is set; takes a reference. */
struct lockent *
dlm__lockent(struct dlm_client *c, const char *name, bool make)
{
	struct lockent *e;

	HASH_FIND_STR(c->locks, name, e);
	if (e == NULL && make) {
		if ((e = calloc(1, sizeof *e)) == NULL)
			return NULL;
		if ((e->name = strdup(name)) == NULL) {
			free(e);
			return NULL;
		}
		dlm__hash_oom = 0;
		HASH_ADD_KEYPTR(hh, c->locks, e->name, strlen(e->name), e);
		if (dlm__hash_oom) {
			free(e->name);
			free(e);
			return NULL;
		}
	}
	if (e != NULL)
		e->refs++;
	return e;
}

/* Drop a reference; an entry nobody holds, uses or waits for goes. */
void
dlm__lockent_put(struct dlm_client *c, struct lockent *e)
{
	if (e == NULL || --e->refs > 0 || e->count > 0 || e->busy ||
	    e->nwait > 0)
		return;
	HASH_DEL(c->locks, e);
	free(e->name);
	free(e);
}

/* Not held any more: hand the turn to the oldest waiter, if any. */
static void
lockent_clear(struct lockent *e)
{
	struct turn_waiter *w = e->head;

	e->count = 0;
	e->token = 0;
	e->owned = false;
	if (!e->busy)
		return;
	if (w == NULL) {
		e->busy = false;
		return;
	}
	/* busy stays set: the turn goes straight to w. */
	e->head = w->next;
	if (e->head == NULL)
		e->tail = NULL;
	e->nwait--;
	w->granted = true;
	pthread_cond_signal(&w->cv);
}

/* Wake every queued thread (the client is closing). */
void
dlm__lockent_wake_all(struct lockent *e)
{
	for (struct turn_waiter *w = e->head; w != NULL; w = w->next)
		pthread_cond_signal(&w->cv);
}

size_t
dlm__drop_all_holds(struct dlm_client *c, char ***names, uint64_t **tokens)
{
	struct lockent *e, *tmp;
	size_t n = 0, cap = HASH_COUNT(c->locks);

	*names = cap ? calloc(cap, sizeof **names) : NULL;
	*tokens = cap ? calloc(cap, sizeof **tokens) : NULL;
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp) {
		if (e->count > 0 && *names != NULL && *tokens != NULL &&
		    ((*names)[n] = strdup(e->name)) != NULL)
			(*tokens)[n++] = e->token;
		lockent_clear(e);
		e->refs++;
		dlm__lockent_put(c, e);
	}
	return n;
}

/* Keep the local table in step with a reply (I/O thread, c->mu held). */
void
dlm__reply_applied(struct dlm_client *c, struct dlm_req *req)
{
	struct lockent *e;

	if (req->lock == NULL) {
		/* reset: every hold is gone. */
		if (req->r.err == 0 && req->is_release) {
			struct lockent *it, *tmp;

			/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
			HASH_ITER(hh, c->locks, it, tmp) {
				lockent_clear(it);
				it->refs++;
				dlm__lockent_put(c, it);
			}
		}
		return;
	}
	if (!req->is_acquire && !req->is_release)
		return;
	if ((e = dlm__lockent(c, req->lock, req->r.err == 0)) == NULL)
		return;
	if (req->is_acquire && req->r.err == 0) {
		e->count = (uint32_t)req->r.count;
		e->token = req->r.token;
		if (!(req->flags & DLM_RLOCK))
			e->busy = true;
	} else if (req->is_release &&
	    (req->r.err == 0 || req->r.err == DLM_E_NOT_HELD)) {
		e->count = req->r.err == 0 ? (uint32_t)req->r.count : 0;
		if (e->count == 0)
			lockent_clear(e);
	}
	dlm__lockent_put(c, e);
}

static int
check_name(const char *lock)
{
	size_t n;

	if (lock == NULL || (n = strlen(lock)) == 0 || n > MAX_LOCK_NAME)
		return DLM_E_INVALID;
	return 0;
}

/* Pack the params map of an acquire. */
static int
acquire_params(msgpack_sbuffer *sb, const char *lock, int flags,
    int timeout_ms)
{
	struct mpw w;

	mpw_init_sbuffer(&w, sb);
	mpw_map(&w, 4);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	mpw_key(&w, "kind");
	mpw_str(&w, (flags & DLM_RLOCK) ? "rlock" : "mutex");
	mpw_key(&w, "mode");
	mpw_str(&w, (flags & DLM_SHARED) ? "shared" : "exclusive");
	mpw_key(&w, "timeout_ms");
	mpw_i64(&w, timeout_ms);
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

static int
lock_params(msgpack_sbuffer *sb, const char *lock)
{
	struct mpw w;

	mpw_init_sbuffer(&w, sb);
	mpw_map(&w, 1);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

/*
 * Take this process's turn at a mutex: the server would refuse a second
 * acquire from the same session, so threads sharing a client queue here.
 * Returns 0 with e->busy set, or WOULD_BLOCK, TIMEOUT, CLOSED; *left is
 * what remains of the timeout.
 */
/*
 * Take this process's turn at a mutex: the server would refuse a second
 * acquire from the same session, so threads sharing a client queue here, in
 * FIFO order. Returns 0 with the turn taken, or ALREADY_HELD, WOULD_BLOCK,
 * TIMEOUT, CLOSED; *left is what remains of the timeout.
 */
static int
local_turn(struct dlm_client *c, struct lockent *e, int timeout_ms,
    int *left)
{
	uint64_t start = mono_ms();
	struct turn_waiter me, **pp;
	pthread_condattr_t attr;
	struct timespec until;

	*left = timeout_ms;
	if (!e->busy)
		goto mine;
	/*
	 * This thread already has it: the server would say the same. Unless
	 * the hold was lost (forced, reset, expired): the turn is still this
	 * thread's, and it may take the lock again without a release first.
	 */
	if (e->owned && pthread_equal(e->owner, pthread_self()))
		return e->count > 0 ? DLM_E_ALREADY_HELD : 0;
	if (timeout_ms == 0)
		return DLM_E_WOULD_BLOCK;

	/* Timed waits count on the monotonic clock, like everything here. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&me.cv, &attr);
	pthread_condattr_destroy(&attr);
	me.next = NULL;
	me.granted = false;
	/*
	 * me lives on this stack while queued; every way out below unlinks
	 * it first (lockent_clear() when granted, or the loop that leaves).
	 */
	if (e->tail != NULL)
		e->tail->next = &me;	/* cppcheck-suppress autoVariables */
	else
		e->head = &me;		/* cppcheck-suppress autoVariables */
	e->tail = &me;		/* cppcheck-suppress autoVariables */
	e->nwait++;
	if (timeout_ms > 0)
		mono_deadline(&until, timeout_ms);
	while (!me.granted && !c->closing) {
		if (timeout_ms < 0)
			pthread_cond_wait(&me.cv, &c->mu);
		else if (pthread_cond_timedwait(&me.cv, &c->mu, &until) ==
		    ETIMEDOUT)
			break;
	}
	pthread_cond_destroy(&me.cv);
	if (!me.granted) {
		/* Leave the queue. */
		for (pp = &e->head; *pp != NULL; pp = &(*pp)->next)
			if (*pp == &me) {
				*pp = me.next;
				break;
			}
		e->tail = NULL;
		for (struct turn_waiter *w = e->head; w != NULL; w = w->next)
			e->tail = w;
		e->nwait--;
		return c->closing ? DLM_E_CLOSED : DLM_E_TIMEOUT;
	}
	if (c->closing) {
		lockent_clear(e);	/* pass the turn on; we are leaving */
		return DLM_E_CLOSED;
	}
	if (timeout_ms > 0) {
		uint64_t spent = mono_ms() - start;

		*left = spent >= (uint64_t)timeout_ms ? 1 :
		    timeout_ms - (int)spent;
	}
mine:
	e->busy = true;
	e->owned = true;
	e->owner = pthread_self();
	return 0;
}

int
dlm_acquire(struct dlm_client *c, const char *lock, int flags, int timeout_ms,
    uint64_t *token)
{
	pthread_cond_t cv;
	struct dlm_req req;
	struct lockent *e;
	msgpack_sbuffer params;
	int rc, left = timeout_ms;
	bool took_turn = false;

	if ((rc = check_name(lock)) != 0 || (flags & ~(DLM_RLOCK |
	    DLM_SHARED)) != 0 || timeout_ms < -1)
		return DLM_E_INVALID;
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((e = dlm__lockent(c, lock, true)) == NULL) {
		dlm__leave(c);
		return DLM_E_NOMEM;
	}
	if (!(flags & DLM_RLOCK)) {
		if ((rc = local_turn(c, e, timeout_ms, &left)) != 0)
			goto out;
		took_turn = true;
	}
	msgpack_sbuffer_init(&params);
	if ((rc = acquire_params(&params, lock, flags, left)) == 0) {
		memset(&req, 0, sizeof req);
		pthread_cond_init(&cv, NULL);
		req.kind = REQ_SYNC;
		req.cv = &cv;
		req.lock = (char *)lock;	/* not freed: REQ_SYNC */
		req.flags = flags;
		req.is_acquire = true;
		rc = dlm__call(c, &req, "acquire", &params);
		if (rc == 0 && token != NULL)
			*token = req.r.token;
		pthread_cond_destroy(&cv);
	}
	msgpack_sbuffer_destroy(&params);
	/* Not taken: give the turn to the next thread. */
	if (rc != 0 && took_turn && e->count == 0)
		lockent_clear(e);
out:
	dlm__lockent_put(c, e);
	dlm__leave(c);
	return rc;
}

/* A synchronous call with a {lock} or no params; fills *r. */
static int
simple_call(struct dlm_client *c, const char *method, const char *lock,
    bool is_release, struct reply_data *r, const msgpack_sbuffer *extra)
{
	pthread_cond_t cv;
	struct dlm_req req;
	msgpack_sbuffer params;
	int rc;

	if ((rc = dlm__enter(c)) != 0)
		return rc;
	msgpack_sbuffer_init(&params);
	if (extra != NULL)
		rc = msgpack_sbuffer_write(&params, extra->data, extra->size) ?
		    DLM_E_NOMEM : 0;
	else if (lock != NULL)
		rc = lock_params(&params, lock);
	if (rc == 0) {
		memset(&req, 0, sizeof req);
		pthread_cond_init(&cv, NULL);
		req.kind = REQ_SYNC;
		req.cv = &cv;
		req.lock = (char *)lock;
		req.is_release = is_release;
		rc = dlm__call(c, &req, method,
		    extra != NULL || lock != NULL ? &params : NULL);
		if (r != NULL)
			*r = req.r;
		pthread_cond_destroy(&cv);
	}
	msgpack_sbuffer_destroy(&params);
	dlm__leave(c);
	return rc;
}

int
dlm_release(struct dlm_client *c, const char *lock)
{
	if (check_name(lock) != 0)
		return DLM_E_INVALID;
	return simple_call(c, "release", lock, true, NULL, NULL);
}

int
dlm_reset(struct dlm_client *c)
{
	/* is_release with no lock: the whole table is cleared on success. */
	return simple_call(c, "reset", NULL, true, NULL, NULL);
}

int
dlm_check(struct dlm_client *c, const char *lock, uint64_t token, int *held)
{
	msgpack_sbuffer params;
	struct reply_data r;
	struct mpw w;
	int rc;

	if (check_name(lock) != 0 || held == NULL)
		return DLM_E_INVALID;
	msgpack_sbuffer_init(&params);
	mpw_init_sbuffer(&w, &params);
	mpw_map(&w, 2);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	mpw_key(&w, "token");
	mpw_u64(&w, token);
	rc = w.err != 0 ? DLM_E_NOMEM :
	    simple_call(c, "check", NULL, false, &r, &params);
	msgpack_sbuffer_destroy(&params);
	if (rc == 0)
		*held = r.held ? 1 : 0;
	return rc;
}

int
dlm_holds(struct dlm_client *c, const char *lock, uint64_t *token)
{
	struct lockent *e;
	int held = 0;

	if (check_name(lock) != 0 || dlm__enter(c) != 0)
		return 0;
	HASH_FIND_STR(c->locks, lock, e);
	/*
	 * The server renewed the lease no later than when it received the
	 * last request it answered; count the lease from that request's send.
	 */
	if (e != NULL && e->count > 0 && c->state == CLIENT_CONNECTED &&
	    mono_ms() < c->lease_base_ms + (uint64_t)c->lease_ms) {
		held = 1;
		if (token != NULL)
			*token = e->token;
	}
	dlm__leave(c);
	return held;
}

/*
 * Send an async request whose params were packed with result rc; frees the
 * params, and the request when it could not be sent.
 */
static int
send_async(struct dlm_client *c, struct dlm_req *req, const char *method,
    msgpack_sbuffer *params, int rc)
{
	if (rc == 0 && (rc = dlm__enter(c)) == 0) {
		rc = dlm__call(c, req, method, params);
		dlm__leave(c);
	}
	msgpack_sbuffer_destroy(params);
	if (rc != 0)
		dlm__req_free(req);
	return rc;
}

int
dlm_acquire_async(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, dlm_acquire_cb cb, void *arg)
{
	msgpack_sbuffer params;
	struct dlm_req *req;
	int rc;

	if (check_name(lock) != 0 || (flags & ~(DLM_RLOCK | DLM_SHARED)) != 0 ||
	    timeout_ms < -1)
		return DLM_E_INVALID;
	if ((req = calloc(1, sizeof *req)) == NULL ||
	    (req->lock = strdup(lock)) == NULL) {
		free(req);
		return DLM_E_NOMEM;
	}
	req->kind = REQ_ASYNC_ACQUIRE;
	req->flags = flags;
	req->is_acquire = true;
	req->acb = cb;
	req->arg = arg;
	msgpack_sbuffer_init(&params);
	rc = acquire_params(&params, lock, flags, timeout_ms);
	return send_async(c, req, "acquire", &params, rc);
}

int
dlm_release_async(struct dlm_client *c, const char *lock, dlm_done_cb cb,
    void *arg)
{
	msgpack_sbuffer params;
	struct dlm_req *req;
	int rc;

	if (check_name(lock) != 0)
		return DLM_E_INVALID;
	if ((req = calloc(1, sizeof *req)) == NULL ||
	    (req->lock = strdup(lock)) == NULL) {
		free(req);
		return DLM_E_NOMEM;
	}
	req->kind = REQ_ASYNC_DONE;
	req->is_release = true;
	req->dcb = cb;
	req->arg = arg;
	msgpack_sbuffer_init(&params);
	rc = lock_params(&params, lock);
	return send_async(c, req, "release", &params, rc);
}

int
dlm_with_lock(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, int (*fn)(void *, uint64_t), void *arg)
{
	uint64_t token;
	int rc;

	if (fn == NULL)
		return DLM_E_INVALID;
	if ((rc = dlm_acquire(c, lock, flags, timeout_ms, &token)) != 0)
		return rc;
	rc = fn(arg, token);
	(void)dlm_release(c, lock);
	return rc;
}

struct dlm_scope
dlm_scope_acquire(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms)
{
	struct dlm_scope s = { c, lock, 0, 0, 0 };

	s.err = dlm_acquire(c, lock, flags, timeout_ms, &s.token);
	return s;
}

void
dlm_scope_release(struct dlm_scope *s)
{
	if (s->err == 0 && s->client != NULL)
		(void)dlm_release(s->client, s->lock);
	s->client = NULL;
}

/*
 * The server's codes through the protocol's table, the library's own here;
 * both are rows of DLM_ERRORS in <dlm.h>.
 */
const char *
dlm_strerror(int err)
{
	switch (err) {
#define LIB_ERROR_SENTENCE(constant, value, name, sentence) \
	case constant: return sentence;
	DLM_LIBRARY_ERRORS(LIB_ERROR_SENTENCE)
#undef LIB_ERROR_SENTENCE
	}
	return dlm_proto_errdesc(err);
}

const char *
dlm_errname(int err)
{
	switch (err) {
#define LIB_ERROR_NAME(constant, value, name, sentence) \
	case constant: return name;
	DLM_LIBRARY_ERRORS(LIB_ERROR_NAME)
#undef LIB_ERROR_NAME
	}
	return dlm_proto_errname(err);
}
