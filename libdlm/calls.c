/*
 * libdlm's public calls: acquire, release, reset, check, holds, cancel, the
 * async and scoped forms; built on client.c's call path and locks.c's
 * entries.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "clock.h"
#include "mpack.h"

#define MAX_LOCK_NAME	65535
#define BAD_NAME	"a lock name is 1 to 65535 bytes"
/* A value rides in one request: no more than a server takes (64 KiB). */
#define MAX_VALUE	65536

static int
check_name(const char *lock)
{
	size_t n;

	if (lock == NULL || (n = strlen(lock)) == 0 || n > MAX_LOCK_NAME)
		return DLM_E_INVALID;
	return 0;
}

/* Say what kept this thread from its turn at lock. */
static void
turn_error(struct dlm_client *c, int rc, const char *lock)
{
	switch (rc) {
	case DLM_E_ALREADY_HELD:
		dlm__resultf(c, rc, "lock '%s' is already held by this %s",
		    lock, c->loop ? "client" : "thread");
		break;
	case DLM_E_WOULD_BLOCK:
		dlm__resultf(c, rc, "lock '%s' is held by another thread of "
		    "this client", lock);
		break;
	case DLM_E_TIMEOUT:
		dlm__resultf(c, rc, "timed out waiting for lock '%s' behind "
		    "another thread of this client", lock);
		break;
	case DLM_E_CANCELLED:
		dlm__resultf(c, rc, "the wait for lock '%s' was cancelled",
		    lock);
		break;
	default:
		dlm__result(c, rc, NULL);
	}
}

void
dlm_acquire_opts_init(struct dlm_acquire_opts *opts)
{
	if (opts != NULL) {
		memset(opts, 0, sizeof *opts);
		opts->size = sizeof *opts;
		opts->timeout_ms = DLM_FOREVER;
	}
}

/*
 * A semaphore's choices, checked as the server would, so that a mistake
 * is told at the call: NULL, or what is wrong. permits 0 becomes 1.
 */
static const char *
semaphore_opts_read(struct dlm_acquire_opts *o)
{
	if (!(o->flags & DLM_SEMAPHORE)) {
		if (o->capacity != 0 || o->permits != 0)
			return "capacity and permits are for DLM_SEMAPHORE";
		return NULL;
	}
	if (o->flags & (DLM_RLOCK | DLM_SHARED))
		return "DLM_SEMAPHORE with DLM_RLOCK or DLM_SHARED: a semaphore "
		    "is neither reentrant nor shared";
	if (o->capacity == 0 || o->capacity > INT32_MAX)
		return "a semaphore's capacity is 1 to INT32_MAX";
	if (o->permits == 0)
		o->permits = 1;
	if (o->permits > o->capacity)
		return "more permits than the semaphore's capacity";
	return NULL;
}

/*
 * Read the caller's acquire options into *o, in the library's own layout:
 * only as much as the caller's struct has, as with struct dlm_options; a
 * newer caller's fields past ours must be unset. NULL when o may be
 * asked for, else what is wrong, for DLM_E_INVALID.
 */
static const char *
acquire_opts_read(struct dlm_acquire_opts *o, const char *lock,
    const struct dlm_acquire_opts *given)
{
	size_t n;

	dlm_acquire_opts_init(o);
	if (check_name(lock) != 0)
		return BAD_NAME;
	if (given == NULL)
		return NULL;
	n = given->size;
	if (n < offsetof(struct dlm_acquire_opts, timeout_ms) + sizeof(int))
		return "acquire options without their size: fill them with "
		    "dlm_acquire_opts_init()";
	for (size_t i = sizeof *o; i < n; i++)
		if (((const unsigned char *)given)[i] != 0)
			return "acquire options this library does not know";
	memcpy(o, given, n < sizeof *o ? n : sizeof *o);
	o->size = sizeof *o;
	if ((o->flags & ~(DLM_RLOCK | DLM_SHARED | DLM_SEMAPHORE |
	    DLM_NOTIFY_CONTENDED | DLM_NO_DEADLOCK_CHECK)) != 0)
		return "unknown flags";
	if (o->timeout_ms < -1)
		return "a timeout below -1";
	if (o->lock_delay_ms < 0)
		return "a negative lock_delay_ms";
	if (o->value == NULL && o->value_len > 0)
		return "a value_len without a value";
	if (o->value_len > MAX_VALUE)
		return "a value longer than 65536 bytes";
	if (o->value_len == 0)
		o->value = NULL;
	return semaphore_opts_read(o);
}

/*
 * The request's own copy of o's value, for the lock's entry to keep (it
 * is claimed with it after a fail-over): 0, or DLM_E_NOMEM.
 */
static int
own_value(struct dlm_req *req, const struct dlm_acquire_opts *o)
{
	req->acq = *o;
	if (o->value == NULL)
		return 0;
	if ((req->value_own = malloc(o->value_len)) == NULL)
		return DLM_E_NOMEM;
	memcpy(req->value_own, o->value, o->value_len);
	req->acq.value = req->value_own;
	return 0;
}

int
dlm_acquire(struct dlm_client *c, const char *lock, int flags, int timeout_ms,
    uint64_t *token)
{
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.flags = flags;
	o.timeout_ms = timeout_ms;
	return dlm_acquire_ex(c, lock, &o, token);
}

int
dlm_acquire_ex(struct dlm_client *c, const char *lock,
    const struct dlm_acquire_opts *given, uint64_t *token)
{
	pthread_cond_t cv;
	struct dlm_acquire_opts o;
	struct dlm_req req;
	struct lockent *e;
	struct note *spare = NULL;
	struct wire_params params;
	struct mpw w;
	const char *bad;
	int rc, left, flags, timeout_ms;
	bool took_turn = false;

	if ((bad = acquire_opts_read(&o, lock, given)) != NULL)
		return dlm__result(c, DLM_E_INVALID, bad);
	flags = o.flags;
	left = timeout_ms = o.timeout_ms;
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	/* Made now, what a grant needs: see send_async(). */
	if ((e = dlm__lockent(c, lock, true)) == NULL ||
	    (spare = dlm__note_new(lock)) == NULL) {
		dlm__lockent_put(c, e);
		dlm__result(c, DLM_E_NOMEM, NULL);
		dlm__leave(c);
		return DLM_E_NOMEM;
	}
	if (!(flags & DLM_RLOCK)) {
		if ((rc = dlm__lock_turn(c, e, timeout_ms, &left)) != 0) {
			turn_error(c, rc, lock);
			goto out;
		}
		took_turn = true;
	}
	dlm__sync_req(&req, &cv, lock);
	wire_params_init(&params, &w);	/* so that it can be freed below */
	if ((rc = own_value(&req, &o)) == 0 &&
	    (rc = wire_acquire_params(&params, lock, &o, left)) == 0) {
		req.is_acquire = true;
		req.timeout_ms = left;
		req.spare = spare;
		rc = dlm__call(c, &req, "acquire", &params.sb);
		if (rc == 0 && token != NULL)
			*token = req.r.token;
		spare = req.spare;	/* NULL if the entry took it */
		dlm__result(c, rc, req.r.message);
		free(req.r.message);
	} else
		dlm__result(c, rc, NULL);
	pthread_cond_destroy(&cv);
	free(req.value_own);	/* NULL if the entry took it */
	wire_params_free(&params);
	/*
	 * Not taken: give the turn to the next thread (a count here is an
	 * rlock's, after KIND_MISMATCH, and stays).
	 */
	if (rc != 0 && took_turn)
		dlm__lock_turn_pass(e);
out:
	dlm__note_free(spare);
	dlm__lockent_put(c, e);
	dlm__leave(c);
	return rc;
}

/* A synchronous call with params (a packed map) or none; fills *r. */
static int
simple_call(struct dlm_client *c, const char *method, bool is_release,
    struct reply_data *r, const msgpack_sbuffer *params)
{
	pthread_cond_t cv;
	struct dlm_req req;
	int rc;

	if ((rc = dlm__enter(c)) != 0)
		return rc;
	dlm__sync_req(&req, &cv, NULL);
	req.is_release = is_release;
	rc = dlm__call(c, &req, method, params);
	dlm__result(c, rc, req.r.message);
	free(req.r.message);
	req.r.message = NULL;
	if (r != NULL)
		*r = req.r;
	pthread_cond_destroy(&cv);
	dlm__leave(c);
	return rc;
}

/*
 * The release names the hold it means by its token, so that one sent
 * before that hold was lost cannot free a newer one at the server; and a
 * thread whose mutex is gone, or was never its, hears NOT_HELD here.
 */
static int
release_call(struct dlm_client *c, const char *lock, uint32_t permits)
{
	pthread_cond_t cv;
	struct dlm_req req;
	struct wire_params params;
	uint64_t token;
	uint32_t held = 0;
	int rc;

	if (check_name(lock) != 0)
		return dlm__result(c, DLM_E_INVALID, BAD_NAME);
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((rc = dlm__locks_release_target(c, lock, &token)) != 0) {
		dlm__resultf(c, rc, "lock '%s' is not held by this thread: "
		    "never taken, lost, or another thread's", lock);
		dlm__leave(c);
		return rc;
	}
	if (permits != 0 && ((held = dlm__locks_permits(c, lock)) == 0 ||
	    permits > held)) {
		rc = held == 0 ? dlm__resultf(c, DLM_E_INVALID, "lock '%s' is "
		    "not a semaphore", lock) : dlm__resultf(c, DLM_E_INVALID,
		    "%u permits of semaphore '%s' are held, fewer than %u",
		    held, lock, permits);
		dlm__leave(c);
		return rc;
	}
	if ((rc = wire_release_params(&params, lock, token, permits)) == 0) {
		dlm__sync_req(&req, &cv, lock);
		req.is_release = true;
		req.hold_token = token;
		rc = dlm__call(c, &req, "release", &params.sb);
		pthread_cond_destroy(&cv);
		dlm__result(c, rc, req.r.message);
		free(req.r.message);
	} else
		dlm__result(c, rc, NULL);
	wire_params_free(&params);
	dlm__leave(c);
	return rc;
}

int
dlm_release(struct dlm_client *c, const char *lock)
{
	return release_call(c, lock, 0);
}

int
dlm_release_permits(struct dlm_client *c, const char *lock, uint32_t permits)
{
	if (permits == 0 || permits > INT32_MAX)
		return dlm__result(c, DLM_E_INVALID, "permits is 1 to "
		    "INT32_MAX (dlm_release() gives back all of them)");
	return release_call(c, lock, permits);
}

int
dlm_reset(struct dlm_client *c)
{
	/* is_release with no lock: the whole table is cleared on success. */
	return simple_call(c, "reset", true, NULL, NULL);
}

int
dlm_check(struct dlm_client *c, const char *lock, uint64_t token, int *held)
{
	struct wire_params params;
	struct reply_data r;
	struct mpw w;
	int rc;

	if (check_name(lock) != 0 || held == NULL)
		return dlm__result(c, DLM_E_INVALID, held == NULL ?
		    "held must not be NULL" : BAD_NAME);
	wire_params_init(&params, &w);
	mpw_map(&w, 2);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	mpw_key(&w, "token");
	mpw_u64(&w, token);
	rc = w.err != 0 ? dlm__result(c, DLM_E_NOMEM, NULL) :
	    simple_call(c, "check", false, &r, &params.sb);
	wire_params_free(&params);
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
	if (e != NULL && e->count > 0 &&
	    engine_lease_valid(&c->eng, mono_ms())) {
		held = 1;
		if (token != NULL)
			*token = e->token;
	}
	dlm__leave(c);
	return held;
}

/*
 * Send an async acquire whose params were packed with result rc; frees
 * the params, and the request when it could not be sent. What recording
 * the grant needs is made first (the lock's entry, and the note that
 * would report it lost), so that an answer never finds memory short.
 * *id (when not NULL) is set to its id before c->mu is dropped: after
 * that another thread may answer the request and free it.
 */
static int
send_async(struct dlm_client *c, struct dlm_req *req, const char *method,
    struct wire_params *params, int rc, uint64_t *id)
{
	if (rc != 0)
		dlm__result(c, rc, NULL);
	else if ((rc = dlm__enter(c)) == 0) {
		if ((req->ent = dlm__lockent(c, req->lock, true)) == NULL ||
		    (req->spare = dlm__note_new(req->lock)) == NULL)
			rc = DLM_E_NOMEM;
		else
			rc = dlm__call(c, req, method, &params->sb);
		if (rc == 0 && id != NULL)
			*id = req->msgid;
		if (rc != 0) {
			dlm__lockent_put(c, req->ent);
			req->ent = NULL;
		}
		dlm__result(c, rc, NULL);
		dlm__leave(c);
	}
	wire_params_free(params);
	if (rc != 0)
		dlm__req_free(req);
	return rc;
}

int
dlm_acquire_async(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, dlm_acquire_cb cb, void *arg)
{
	return dlm_acquire_async_id(c, lock, flags, timeout_ms, cb, arg, NULL);
}

int
dlm_acquire_async_id(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, dlm_acquire_cb cb, void *arg, uint64_t *id)
{
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.flags = flags;
	o.timeout_ms = timeout_ms;
	return dlm_acquire_ex_async(c, lock, &o, cb, arg, id);
}

int
dlm_acquire_ex_async(struct dlm_client *c, const char *lock,
    const struct dlm_acquire_opts *given, dlm_acquire_cb cb, void *arg,
    uint64_t *id)
{
	struct dlm_acquire_opts o;
	struct wire_params params;
	struct dlm_req *req;
	const char *bad;
	int rc;

	if ((bad = acquire_opts_read(&o, lock, given)) != NULL)
		return dlm__result(c, DLM_E_INVALID, bad);
	if ((req = calloc(1, sizeof *req)) == NULL ||
	    (req->lock = strdup(lock)) == NULL) {
		free(req);
		return dlm__result(c, DLM_E_NOMEM, NULL);
	}
	req->kind = REQ_ASYNC_ACQUIRE;
	if (own_value(req, &o) != 0) {
		dlm__req_free(req);
		return dlm__result(c, DLM_E_NOMEM, NULL);
	}
	req->is_acquire = true;
	req->timeout_ms = o.timeout_ms;
	req->acb = cb;
	req->arg = arg;
	rc = wire_acquire_params(&params, lock, &o, o.timeout_ms);
	return send_async(c, req, "acquire", &params, rc, id);
}

int
dlm_release_async(struct dlm_client *c, const char *lock, dlm_done_cb cb,
    void *arg)
{
	struct wire_params params;
	struct lockent *e;
	struct dlm_req *req;
	int rc;

	if (check_name(lock) != 0)
		return dlm__result(c, DLM_E_INVALID, BAD_NAME);
	if ((req = calloc(1, sizeof *req)) == NULL ||
	    (req->lock = strdup(lock)) == NULL) {
		free(req);
		return dlm__result(c, DLM_E_NOMEM, NULL);
	}
	req->kind = REQ_ASYNC_DONE;
	req->is_release = true;
	req->dcb = cb;
	req->arg = arg;
	if ((rc = dlm__enter(c)) != 0) {
		dlm__req_free(req);
		return rc;
	}
	/* The hold it means is the one held when it is asked for. */
	HASH_FIND_STR(c->locks, lock, e);
	if (e != NULL && e->count > 0)
		req->hold_token = e->token;
	if ((rc = wire_lock_params(&params, lock, req->hold_token)) == 0)
		rc = dlm__call(c, req, "release", &params.sb);
	dlm__result(c, rc, NULL);
	dlm__leave(c);
	wire_params_free(&params);
	if (rc != 0)
		dlm__req_free(req);
	return rc;
}

/* A pending acquire or convert of lock not yet asked to cancel, or NULL. */
static struct dlm_req *
acquire_of(struct dlm_client *c, const char *lock)
{
	struct dlm_req *req, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->eng.pending, req, tmp) {
		if ((req->is_acquire || req->is_convert) && !req->cancel_sent &&
		    req->lock != NULL && strcmp(req->lock, lock) == 0)
			return req;
	}
	return NULL;
}

int
dlm_cancel(struct dlm_client *c, const char *lock)
{
	struct dlm_req *req;
	int rc, n;

	if (check_name(lock) != 0)
		return dlm__result(c, DLM_E_INVALID, BAD_NAME);
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	/* Threads still queued for their turn here never reach the server. */
	n = dlm__lock_cancel_turns(c, lock);
	/* One at a time: cancelling adds a request to the table. */
	while ((req = acquire_of(c, lock)) != NULL) {
		req->cancel_sent = true;
		if (engine_cancel(&c->eng, req) == 0)
			n++;
	}
	if (n > 0)
		engine_flush(&c->eng, mono_ms());
	rc = n > 0 ? dlm__result(c, 0, NULL) : dlm__resultf(c,
	    DLM_E_NOT_FOUND, "no acquire of lock '%s' is waiting", lock);
	dlm__leave(c);
	return rc;
}

int
dlm_cancel_request(struct dlm_client *c, uint64_t id)
{
	struct dlm_req *req;
	int rc;

	if (id == 0 || id > UINT32_MAX)
		return dlm__result(c, DLM_E_NOT_FOUND, "no such request");
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((req = engine_find(&c->eng, (uint32_t)id)) == NULL ||
	    !req->is_acquire || req->kind == REQ_SYNC || req->cancel_sent)
		rc = DLM_E_NOT_FOUND;
	else if ((rc = engine_cancel(&c->eng, req)) == 0) {
		req->cancel_sent = true;
		engine_flush(&c->eng, mono_ms());
	}
	dlm__result(c, rc, rc == DLM_E_NOT_FOUND ? "no asynchronous acquire "
	    "with that id is waiting" : NULL);
	dlm__leave(c);
	return rc;
}

/* What is wrong with dlm_convert()'s arguments, or NULL. */
static const char *
convert_args(const char *lock, int flags, int timeout_ms)
{
	if (check_name(lock) != 0)
		return BAD_NAME;
	if ((flags & ~DLM_SHARED) != 0)
		return "unknown flags: a convert takes DLM_SHARED, or 0 for "
		    "exclusive";
	if (timeout_ms < -1)
		return "a timeout below -1";
	return NULL;
}

/*
 * The hold a convert by this thread means: *token its token, or
 * DLM_E_NOT_HELD, said in words.
 */
static int
convert_target(struct dlm_client *c, const char *lock, uint64_t *token)
{
	int rc = dlm__locks_convert_target(c, lock, token);

	if (rc != 0)
		dlm__resultf(c, rc, "lock '%s' is not held by this %s: never "
		    "taken, lost, or another thread's", lock, c->loop ?
		    "client" : "thread");
	return rc;
}

/*
 * The convert names the hold it means by its token, as a release does;
 * the lock's entry follows the answer (dlm__locks_on_reply()).
 */
int
dlm_convert(struct dlm_client *c, const char *lock, int flags, int timeout_ms,
    uint64_t *token)
{
	pthread_cond_t cv;
	struct dlm_req req;
	struct wire_params params;
	const char *bad;
	uint64_t held;
	int rc;

	if ((bad = convert_args(lock, flags, timeout_ms)) != NULL)
		return dlm__result(c, DLM_E_INVALID, bad);
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((rc = convert_target(c, lock, &held)) != 0) {
		dlm__leave(c);
		return rc;
	}
	if ((rc = wire_convert_params(&params, lock, (flags & DLM_SHARED) != 0,
	    timeout_ms, held)) == 0) {
		dlm__sync_req(&req, &cv, lock);
		req.is_convert = true;
		req.hold_token = held;
		req.acq.flags = flags;
		req.timeout_ms = timeout_ms;
		rc = dlm__call(c, &req, "convert", &params.sb);
		if (rc == 0 && token != NULL)
			*token = req.r.token;
		pthread_cond_destroy(&cv);
		dlm__result(c, rc, req.r.message);
		free(req.r.message);
	} else
		dlm__result(c, rc, NULL);
	wire_params_free(&params);
	dlm__leave(c);
	return rc;
}

int
dlm_convert_async(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, dlm_acquire_cb cb, void *arg)
{
	struct wire_params params;
	struct dlm_req *req;
	const char *bad;
	int rc;

	if ((bad = convert_args(lock, flags, timeout_ms)) != NULL)
		return dlm__result(c, DLM_E_INVALID, bad);
	if ((req = calloc(1, sizeof *req)) == NULL ||
	    (req->lock = strdup(lock)) == NULL) {
		free(req);
		return dlm__result(c, DLM_E_NOMEM, NULL);
	}
	req->kind = REQ_ASYNC_ACQUIRE;
	req->is_convert = true;
	req->acq.flags = flags;
	req->timeout_ms = timeout_ms;
	req->acb = cb;
	req->arg = arg;
	if ((rc = dlm__enter(c)) != 0) {
		dlm__req_free(req);
		return rc;
	}
	if ((rc = convert_target(c, lock, &req->hold_token)) == 0) {
		if ((rc = wire_convert_params(&params, lock,
		    (flags & DLM_SHARED) != 0, timeout_ms,
		    req->hold_token)) == 0)
			rc = dlm__call(c, req, "convert", &params.sb);
		wire_params_free(&params);
		dlm__result(c, rc, NULL);
	}
	dlm__leave(c);
	if (rc != 0)
		dlm__req_free(req);
	return rc;
}

int
dlm_with_lock(struct dlm_client *c, const char *lock, int flags,
    int timeout_ms, int (*fn)(void *, uint64_t), void *arg)
{
	uint64_t token;
	int rc;

	if (fn == NULL)
		return dlm__result(c, DLM_E_INVALID, "fn must not be NULL");
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
