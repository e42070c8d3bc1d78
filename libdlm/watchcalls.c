/*
 * The public watch calls, and leader election on top of them and of the
 * acquire with a value: dlm_watch(), dlm_unwatch(), dlm_campaign(),
 * dlm_resign(), dlm_observe(). See dlm_watch(3). The entries and the
 * delivery of states are watches.c's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"

#define BAD_NAME	"a lock name is 1 to 65535 bytes"

static bool
name_ok(const char *lock)
{
	size_t n;

	return lock != NULL && (n = strlen(lock)) > 0 && n <= 65535;
}

/* dlm_watch() and dlm_observe(): one of cb and leader_cb is set. */
static int
watch_start(struct dlm_client *c, const char *lock, dlm_changed_cb cb,
    dlm_leader_cb leader_cb, void *arg)
{
	pthread_cond_t cv;
	struct dlm_req req;
	struct wire_params params;
	struct watchent *e;
	uint64_t id;
	int rc;

	if (!name_ok(lock))
		return dlm__result(c, DLM_E_INVALID, BAD_NAME);
	if (cb == NULL && leader_cb == NULL)
		return dlm__result(c, DLM_E_INVALID,
		    "the callback must not be NULL");
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((rc = dlm__watch_add(c, lock, cb, leader_cb, arg, &e)) != 0) {
		if (rc == DLM_E_ALREADY_HELD)
			dlm__resultf(c, rc, "lock '%s' is watched by this "
			    "client already", lock);
		else
			dlm__result(c, rc, NULL);
		dlm__leave(c);
		return rc;
	}
	id = e->id;
	if ((rc = wire_lock_params(&params, lock, 0)) == 0) {
		dlm__sync_req(&req, &cv, lock);
		req.is_watch = true;
		req.watch_id = id;
		req.want_raw = true;	/* the state, for the callback */
		rc = dlm__call(c, &req, "watch", &params.sb);
		pthread_cond_destroy(&cv);
		dlm__result(c, rc, req.r.message);
		free(req.r.message);
		free(req.r.raw);	/* NULL if the entry took it */
	} else
		dlm__result(c, rc, NULL);
	wire_params_free(&params);
	/* Not watched: the entry goes, unless unwatched meanwhile. */
	if (rc != 0 && (e = dlm__watch_find(c, lock, strlen(lock))) != NULL &&
	    e->id == id)
		dlm__watch_remove(c, e);
	dlm__leave(c);
	return rc;
}

int
dlm_watch(struct dlm_client *c, const char *lock, dlm_changed_cb cb,
    void *arg)
{
	return watch_start(c, lock, cb, NULL, cb != NULL ? arg : NULL);
}

int
dlm_observe(struct dlm_client *c, const char *election, dlm_leader_cb cb,
    void *arg)
{
	return watch_start(c, election, NULL, cb, cb != NULL ? arg : NULL);
}

/*
 * Ask the server to forget the watch, without waiting: nobody reads the
 * answer (NOT_FOUND after a reconnect, when it had forgotten already).
 */
static void
send_unwatch(struct dlm_client *c, const char *lock)
{
	struct wire_params params;
	struct dlm_req *req;

	if (c->eng.state == ENGINE_CLOSED ||
	    (req = calloc(1, sizeof *req)) == NULL)
		return;
	req->kind = REQ_INTERNAL;
	if (wire_lock_params(&params, lock, 0) != 0 ||
	    engine_submit(&c->eng, req, "unwatch", &params.sb) != 0)
		free(req);
	else
		engine_flush(&c->eng, mono_ms());
	wire_params_free(&params);
}

int
dlm_unwatch(struct dlm_client *c, const char *lock)
{
	struct watchent *e;
	uint64_t id;
	int rc;

	if (!name_ok(lock))
		return dlm__result(c, DLM_E_INVALID, BAD_NAME);
	if ((rc = dlm__enter(c)) != 0)
		return rc;
	if ((e = dlm__watch_find(c, lock, strlen(lock))) == NULL) {
		rc = dlm__resultf(c, DLM_E_NOT_FOUND, "lock '%s' is not "
		    "watched by this client", lock);
		dlm__leave(c);
		return rc;
	}
	id = e->id;
	dlm__watch_remove(c, e);
	/*
	 * Without memory to say it, the server tells this client of
	 * changes it now ignores, until the connection ends.
	 */
	send_unwatch(c, lock);
	/* Its callback, running in another thread, finishes first. */
	while (c->watch_running == id &&
	    !pthread_equal(c->watch_thread, pthread_self()))
		pthread_cond_wait(&c->state_cv, &c->mu);
	dlm__result(c, 0, NULL);
	dlm__leave(c);
	return 0;
}

int
dlm_campaign(struct dlm_client *c, const char *election, const void *value,
    size_t value_len, int timeout_ms, uint64_t *token)
{
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.timeout_ms = timeout_ms;
	o.value = value;
	o.value_len = value_len;
	return dlm_acquire_ex(c, election, &o, token);
}

int
dlm_resign(struct dlm_client *c, const char *election)
{
	return dlm_release(c, election);
}
