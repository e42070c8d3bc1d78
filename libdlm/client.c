/*
 * The top of a client's life: the public lifecycle (dlm_connect(),
 * dlm_close(), the accessors), which chooses the threaded mode's driver,
 * and the call path into the engine that calls.c and rawcall.c share,
 * which hands the engine to whichever driver runs it. The client object
 * itself, its queues and what the engine reports are core.c's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"

/* Enter a public call: returns 0 with c->mu held, or an error. */
int
dlm__enter(struct dlm_client *c)
{
	if (c == NULL)
		return DLM_E_INVALID;
	if (dlm__forked(c))
		return dlm__result(c, DLM_E_FORKED, NULL);
	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		(void)dlm__result(c, DLM_E_CLOSED, c->eng.state ==
		    ENGINE_CLOSED && c->eng.errmsg[0] != '\0' ? c->eng.errmsg :
		    "the client is being closed");
		pthread_mutex_unlock(&c->mu);
		return DLM_E_CLOSED;
	}
	c->users++;
	return 0;
}

/* Leave a public call (c->mu held; released here). */
void
dlm__leave(struct dlm_client *c)
{
	/*
	 * Read before the unlock: a threaded client may be freed by
	 * dlm_close() at once after it. A loop client has one thread.
	 */
	bool loop = c->loop;

	if (--c->users == 0 && c->closing)
		pthread_cond_broadcast(&c->state_cv);
	pthread_mutex_unlock(&c->mu);
	if (loop)
		dlm__loop_notify(c);
}

void
dlm__sync_req(struct dlm_req *req, pthread_cond_t *cv, const char *lock)
{
	memset(req, 0, sizeof *req);
	pthread_cond_init(cv, NULL);
	req->kind = REQ_SYNC;
	req->cv = cv;
	req->lock = (char *)lock;	/* not freed: REQ_SYNC */
}

int
dlm__call(struct dlm_client *c, struct dlm_req *req, const char *method,
    const msgpack_sbuffer *params)
{
	const bool sync = req->kind == REQ_SYNC;
	int rc;

	/*
	 * A blocking call from a callback would wait for a reply only this
	 * very thread can read.
	 */
	if (sync && (c->loop ? c->in_process :
	    pthread_equal(pthread_self(), c->thread)))
		return DLM_E_INVALID;
	if (c->closing)
		return DLM_E_CLOSED;
	if ((rc = engine_submit(&c->eng, req, method, params)) != 0)
		return rc;
	if (!sync) {
		c->async_pending++;
		/*
		 * Written by the I/O thread, woken once, so that a burst of
		 * requests leaves in one write; in the loop mode, when the
		 * loop finds the socket writable.
		 */
		if (!c->loop && !c->flush_asked) {
			c->flush_asked = true;
			if (!pthread_equal(pthread_self(), c->thread))
				dlm__wake_io(c);
		}
		return 0;
	}
	engine_flush(&c->eng, mono_ms());
	while (!req->done) {
		/* Closing: dlm_close() fails req once no one drives. */
		if (!c->driving && !c->closing &&
		    (c->loop || c->eng.state == ENGINE_READY)) {
			dlm__drive(c, req);
			continue;
		}
		if (c->io_driving && !c->handoff_asked) {
			/* The I/O thread lets go, and this caller drives. */
			c->handoff_asked = true;
			dlm__wake_io(c);
		}
		c->sync_waiting++;
		pthread_cond_wait(req->cv, &c->mu);
		c->sync_waiting--;
	}
	return req->r.err;
}

struct dlm_client *
dlm_connect(const char *server, const struct dlm_options *opts, int *err)
{
	struct dlm_client *c;
	int rc;

	if ((c = dlm__client_new(server, opts, false, &rc)) != NULL &&
	    ((rc = dlm__connect_wait(c)) != 0 ||
	    (rc = dlm__thread_start(c)) != 0)) {
		dlm__errmsg_set(0, rc, c->eng.errmsg);
		/* Never shared: nothing to say bye to, nobody to wait for. */
		dlm__registry_remove(c);
		dlm__client_free(c);
	}
	if (rc != 0)
		c = NULL;
	else
		dlm__errmsg_set(0, 0, NULL);
	if (err != NULL)
		*err = rc;
	return c;
}

void
dlm_close(struct dlm_client *c)
{
	if (c == NULL || !dlm__close_begin(c))
		return;
	if (!c->loop)
		dlm__thread_stop(c);
	dlm__close_end(c);
}

void
dlm_free(void *p)
{
	free(p);
}

const char *
dlm_client_name(struct dlm_client *c)
{
	return c != NULL ? c->name : NULL;
}

int
dlm_async_fd(struct dlm_client *c)
{
	return c != NULL ? c->evfd : -1;
}

int
dlm_async_dispatch(struct dlm_client *c)
{
	struct dlm_req *req;
	uint64_t count;

	if (c == NULL || dlm__forked(c) || c->loop)
		return 0;
	if (read(c->evfd, &count, sizeof count) < 0) {
		/* Nothing queued (EAGAIN); the list below says the same. */
	}
	pthread_mutex_lock(&c->mu);
	req = dlm__take_completions(c);
	pthread_mutex_unlock(&c->mu);
	return dlm__run_completions(c, req);
}
