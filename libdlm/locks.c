/*
 * The local lock entries: what this client holds, as far as it knows, and
 * the turns its threads take at a mutex. The layers below change them
 * only through dlm__locks_on_reply(), dlm__locks_on_lost() and
 * dlm__locks_drop_all(). Everything here runs with c->mu held.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"

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
	dlm__note_free(e->spare);
	free(e->name);
	free(e->value);
	free(e);
}

int
dlm__lockent_reserve(struct lockent *e)
{
	if (e->spare == NULL && (e->spare = dlm__note_new(e->name)) == NULL)
		return DLM_E_NOMEM;
	return 0;
}

/* Tell the program e's hold is lost, with the note made for it. */
static void
lockent_lost(struct dlm_client *c, struct lockent *e, int reason)
{
	if (e->spare != NULL) {
		dlm__note_queue(c, e->spare, e->token, reason, 0);
		e->spare = NULL;
	} else
		dlm__note(c, e->name, e->token, reason, 0);
}

void
dlm__lock_turn_pass(struct lockent *e)
{
	struct turn_waiter *w = e->head;

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

/* Not held any more: hand the turn to the oldest waiter, if any. */
void
dlm__lockent_clear(struct lockent *e)
{
	e->count = 0;
	e->token = 0;
	dlm__lock_turn_pass(e);
}

/* Wake every queued thread (the client is closing). */
void
dlm__lockent_wake_all(struct lockent *e)
{
	for (struct turn_waiter *w = e->head; w != NULL; w = w->next)
		pthread_cond_signal(&w->cv);
}

int
dlm__lock_cancel_turns(struct dlm_client *c, const char *lock)
{
	struct lockent *e;
	int n = 0;

	HASH_FIND_STR(c->locks, lock, e);
	if (e == NULL)
		return 0;
	for (struct turn_waiter *w = e->head; w != NULL; w = w->next) {
		if (!w->cancelled) {
			w->cancelled = true;
			pthread_cond_signal(&w->cv);
			n++;
		}
	}
	return n;
}

/* Leave the queue of e without the turn. */
static void
turn_leave(struct lockent *e, const struct turn_waiter *me)
{
	struct turn_waiter **pp;

	for (pp = &e->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == me) {
			*pp = me->next;
			break;
		}
	e->tail = NULL;
	for (struct turn_waiter *w = e->head; w != NULL; w = w->next)
		e->tail = w;
	e->nwait--;
}

/*
 * The server would refuse a second acquire from the same session, so
 * threads sharing a client queue here, in FIFO order.
 */
int
dlm__lock_turn(struct dlm_client *c, struct lockent *e, int timeout_ms,
    int *left)
{
	uint64_t start = mono_ms();
	struct turn_waiter me;
	pthread_condattr_t attr;
	struct timespec until;
	int rc;

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
	/*
	 * In the event-loop mode there is no other thread to pass the turn
	 * on: the session holds or awaits it (an async acquire).
	 */
	if (c->loop)
		return DLM_E_ALREADY_HELD;
	if (timeout_ms == 0)
		return DLM_E_WOULD_BLOCK;

	/* Timed waits count on the monotonic clock, like everything here. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&me.cv, &attr);
	pthread_condattr_destroy(&attr);
	me.next = NULL;
	me.granted = false;
	me.cancelled = false;
	/*
	 * me lives on this stack while queued; every way out below unlinks
	 * it first (dlm__lockent_clear() when granted, or turn_leave()).
	 */
	if (e->tail != NULL)
		e->tail->next = &me;	/* cppcheck-suppress autoVariables */
	else
		e->head = &me;		/* cppcheck-suppress autoVariables */
	e->tail = &me;		/* cppcheck-suppress autoVariables */
	e->nwait++;
	if (timeout_ms > 0)
		mono_deadline(&until, timeout_ms);
	while (!me.granted && !me.cancelled && !c->closing) {
		if (timeout_ms < 0)
			pthread_cond_wait(&me.cv, &c->mu);
		else if (pthread_cond_timedwait(&me.cv, &c->mu, &until) ==
		    ETIMEDOUT)
			break;
	}
	pthread_cond_destroy(&me.cv);
	if (!me.granted) {
		turn_leave(e, &me);
		rc = c->closing ? DLM_E_CLOSED : me.cancelled ?
		    DLM_E_CANCELLED : DLM_E_TIMEOUT;
		return rc;
	}
	if (c->closing || me.cancelled) {
		/* Pass the turn on; we are leaving. */
		dlm__lockent_clear(e);
		return c->closing ? DLM_E_CLOSED : DLM_E_CANCELLED;
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

/*
 * A convert answered: the hold it meant, if the entry is still that one,
 * has the mode asked, and the token and receipt of the answer (a cluster
 * reclaims it converted). A failed one changes nothing; after a drop
 * (DLM_E_DISCONNECTED) the entry keeps the mode and token it had, which
 * a release still names rightly (the server takes either token).
 */
static void
locks_on_convert(struct dlm_client *c, const struct dlm_req *req)
{
	struct lockent *e;

	HASH_FIND_STR(c->locks, req->lock, e);
	if (req->r.err != 0 || e == NULL || e->count == 0 ||
	    e->token != req->hold_token)
		return;
	e->token = req->r.token;
	e->shared = (req->acq.flags & DLM_SHARED) != 0;
	e->has_receipt = req->r.has_receipt;
	e->receipt_count = (uint32_t)req->r.count;
	memcpy(e->receipt, req->r.receipt, sizeof e->receipt);
}

void
dlm__locks_on_reply(struct dlm_client *c, struct dlm_req *req)
{
	struct lockent *e;

	if (req->lock == NULL) {
		/* reset: every hold is gone. */
		if (req->r.err == 0 && req->is_release) {
			struct lockent *it, *tmp;

			/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
			HASH_ITER(hh, c->locks, it, tmp) {
				dlm__lockent_clear(it);
				it->refs++;
				dlm__lockent_put(c, it);
			}
		}
		return;
	}
	if (req->is_convert) {
		locks_on_convert(c, req);
		return;
	}
	if (!req->is_acquire && !req->is_release)
		return;
	if (req->ent != NULL) {
		/* An async acquire's, with its reference, dropped below. */
		e = req->ent;
		req->ent = NULL;
	} else if ((e = dlm__lockent(c, req->lock, false)) == NULL)
		return;		/* a sync acquire's exists: it has a ref */
	if (req->is_acquire && req->r.err == 0) {
		if (e->spare == NULL) {
			e->spare = req->spare;
			req->spare = NULL;
		}
		/* A new hold has the request's value; a re-entry keeps its. */
		if (e->count == 0 || e->token != req->r.token) {
			free(e->value);
			e->value = req->value_own;
			e->value_len = req->value_own != NULL ?
			    req->acq.value_len : 0;
			req->value_own = NULL;
		}
		/* A new hold has its acquire's choices; a re-entry adds. */
		if (e->count == 0 || e->token != req->r.token) {
			e->lock_delay_ms = 0;
			e->notify_contended = false;
		}
		if ((uint32_t)req->acq.lock_delay_ms > e->lock_delay_ms)
			e->lock_delay_ms = (uint32_t)req->acq.lock_delay_ms;
		if (req->acq.flags & DLM_NOTIFY_CONTENDED)
			e->notify_contended = true;
		e->count = (uint32_t)req->r.count;
		e->token = req->r.token;
		e->rlock = (req->acq.flags & DLM_RLOCK) != 0;
		e->shared = (req->acq.flags & DLM_SHARED) != 0;
		e->has_receipt = req->r.has_receipt;
		e->receipt_count = e->count;
		memcpy(e->receipt, req->r.receipt, sizeof e->receipt);
		if (req->acq.flags & DLM_SEMAPHORE) {
			e->capacity = req->acq.capacity;
			e->permits = req->r.permits != 0 &&
			    req->r.permits <= UINT32_MAX ?
			    (uint32_t)req->r.permits : req->acq.permits;
			e->receipt_permits = e->permits;
		} else
			e->capacity = e->permits = e->receipt_permits = 0;
		if (!e->rlock)
			e->busy = true;
	} else if (req->is_release && (req->r.err == 0 ||
	    (req->r.err == DLM_E_NOT_HELD && e->token == req->hold_token))) {
		/*
		 * NOT_HELD for another token than the entry's is about a
		 * hold already gone: the entry is a newer one's.
		 */
		e->count = req->r.err == 0 ? (uint32_t)req->r.count : 0;
		/* Some of a semaphore's permits given back: the rest held. */
		if (e->capacity != 0 && e->count > 0)
			e->permits = (uint32_t)req->r.permits;
		if (e->count == 0)
			dlm__lockent_clear(e);
	}
	dlm__lockent_put(c, e);
}

void
dlm__locks_on_lost(struct dlm_client *c, const char *lock, size_t len,
    uint64_t token, int reason)
{
	struct lockent *e;

	HASH_FIND(hh, c->locks, lock, len, e);
	if (e == NULL || e->token != token || e->count == 0) {
		/*
		 * A hold the client did not know it had (a grant the drop
		 * of a connection hid) or no longer has: said if memory
		 * allows, as nothing the program relies on is lost with it.
		 */
		char *name = strndup(lock, len);

		if (name != NULL && strlen(name) == len)
			dlm__note(c, name, token, reason, 0);
		free(name);
		return;
	}
	/* No allocation here: the note was made with the acquire. */
	lockent_lost(c, e, reason);
	/*
	 * The turn stays with its thread: it may take the lock again
	 * without a release first.
	 */
	e->count = 0;
	e->token = 0;
	e->refs++;		/* no reference was taken: just a look */
	dlm__lockent_put(c, e);
}

void
dlm__locks_on_contended(struct dlm_client *c, const char *lock, size_t len,
    uint64_t token, uint32_t waiters)
{
	struct lockent *e;
	struct note *n;

	/* Only about a hold the client has: a late one is moot. */
	HASH_FIND(hh, c->locks, lock, len, e);
	if (e == NULL || e->token != token || e->count == 0 ||
	    c->on_contended == NULL || (n = dlm__note_new(e->name)) == NULL)
		return;
	n->contended = true;
	n->waiters = waiters;
	dlm__note_queue(c, n, token, 0, 0);
}

void
dlm__locks_drop_all(struct dlm_client *c, int reason)
{
	struct lockent *e, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp) {
		/*
		 * An entry not held keeps its turn: its thread may be
		 * acquiring it (in a cluster, an acquire held back over a
		 * change of server), and passes it on itself.
		 */
		if (e->count == 0)
			continue;
		lockent_lost(c, e, reason);
		dlm__lockent_clear(e);
		e->refs++;
		dlm__lockent_put(c, e);
	}
}

int
dlm__locks_release_target(struct dlm_client *c, const char *lock,
    uint64_t *token)
{
	const pthread_t self = pthread_self();
	struct lockent *e;
	bool mine;

	*token = 0;
	HASH_FIND_STR(c->locks, lock, e);
	if (e == NULL)
		return DLM_E_NOT_HELD;
	/* The turn at a mutex is this thread's: it means its own hold. */
	mine = e->owned && pthread_equal(e->owner, self);
	if (e->count == 0 || (mine && e->rlock)) {
		/*
		 * This thread's mutex was lost (forced, reset, expired), and
		 * whatever the session holds now is not what it means.
		 */
		if (mine)
			dlm__lock_turn_pass(e);
		return DLM_E_NOT_HELD;
	}
	if (e->owned && !mine && !e->rlock)
		return DLM_E_NOT_HELD;	/* another thread's mutex */
	*token = e->token;
	return 0;
}

uint32_t
dlm__locks_permits(struct dlm_client *c, const char *lock)
{
	struct lockent *e;

	HASH_FIND_STR(c->locks, lock, e);
	return e != NULL && e->count > 0 ? e->permits : 0;
}

int
dlm__locks_convert_target(struct dlm_client *c, const char *lock,
    uint64_t *token)
{
	struct lockent *e;

	*token = 0;
	HASH_FIND_STR(c->locks, lock, e);
	if (e == NULL || e->count == 0 || (e->owned && !e->rlock &&
	    !pthread_equal(e->owner, pthread_self())))
		return DLM_E_NOT_HELD;
	*token = e->token;
	return 0;
}

bool
dlm__locks_held(struct dlm_client *c, const char *lock)
{
	struct lockent *e;

	HASH_FIND_STR(c->locks, lock, e);
	return e != NULL && e->count > 0;
}

int
dlm__locks_claims(struct dlm_client *c, msgpack_sbuffer *sb, uint32_t *n)
{
	struct lockent *e, *tmp;
	struct wire_claim cl;

	*n = 0;
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp) {
		if (e->count == 0)
			continue;
		if (!e->has_receipt || e->count > e->receipt_count ||
		    e->permits > e->receipt_permits) {
			/* As dlm__locks_on_lost(): the turn stays. */
			lockent_lost(c, e, DLM_LOST_FAILOVER);
			e->count = 0;
			e->token = 0;
			e->refs++;
			dlm__lockent_put(c, e);
			continue;
		}
		cl = (struct wire_claim){ e->name, e->rlock, e->shared,
		    e->token, e->count, e->receipt_count, e->receipt,
		    e->capacity, e->permits, e->receipt_permits,
		    e->value, e->value_len, e->lock_delay_ms,
		    e->notify_contended };
		if (wire_claim(sb, &cl) != 0)
			return DLM_E_NOMEM;
		(*n)++;
	}
	return 0;
}

void
dlm__locks_free(struct dlm_client *c)
{
	struct lockent *e, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp) {
		HASH_DEL(c->locks, e);
		dlm__note_free(e->spare);
		free(e->name);
		free(e->value);
		free(e);
	}
}
