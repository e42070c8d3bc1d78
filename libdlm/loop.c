/*
 * The event-loop mode's driver: no thread of the library's own. The
 * program's loop waits on what dlm_loop_fd(), dlm_loop_events() and
 * dlm_loop_timeout_ms() say and calls dlm_loop_process(), which drives the
 * engine and then runs the callbacks it produced, in the loop's thread.
 * c->mu is still taken around the engine, uncontended, so that the calls
 * are the same code in both modes.
 */
#include "config.h"

#include "client.h"
#include "clock.h"

static int
loop_events(const struct dlm_client *c)
{
	int ev = engine_events(&c->eng);

	return ((ev & ENGINE_READ) ? DLM_EV_READ : 0) |
	    ((ev & ENGINE_WRITE) ? DLM_EV_WRITE : 0);
}

/*
 * The absolute deadline, or 0 for none. Callbacks queued by a blocking
 * call that drove the engine itself are due at once.
 */
static uint64_t
loop_deadline(const struct dlm_client *c, uint64_t now)
{
	if (c->done_head != NULL || c->note_head != NULL)
		return now;
	return engine_deadline(&c->eng);
}

static int
timeout_from(uint64_t at, uint64_t now)
{
	if (at == 0)
		return -1;
	if (at <= now)
		return 0;
	return at - now > INT32_MAX ? INT32_MAX : (int)(at - now);
}

/*
 * Tell the watcher when what it waits for changed; with force, even if
 * not: a one-shot timer that fired a hair early (it counts in finer units
 * than the deadline) found nothing due, and must be armed again.
 */
static void
loop_notify(struct dlm_client *c, bool force)
{
	uint64_t now, at;
	int fd, events;
	bool changed;

	/* A loop that polls on its own (no watcher) is told nothing. */
	if (c->watch == NULL)
		return;
	now = mono_ms();
	pthread_mutex_lock(&c->mu);
	fd = engine_fd(&c->eng);
	events = loop_events(c);
	at = loop_deadline(c, now);
	changed = force || fd != c->watched_fd ||
	    events != c->watched_events || at != c->watched_deadline;
	c->watched_fd = fd;
	c->watched_events = events;
	c->watched_deadline = at;
	pthread_mutex_unlock(&c->mu);
	if (changed)
		c->watch(c, fd, events, timeout_from(at, now), c->watch_arg);
}

void
dlm__loop_notify(struct dlm_client *c)
{
	loop_notify(c, false);
}

struct dlm_client *
dlm_connect_loop(const char *server, const struct dlm_options *opts,
    int *err)
{
	int rc;
	struct dlm_client *c = dlm__client_new(server, opts, true, &rc);

	if (err != NULL)
		*err = rc;
	return c;
}

int
dlm_loop_fd(struct dlm_client *c)
{
	int fd;

	if (c == NULL || !c->loop || dlm__forked(c))
		return -1;
	pthread_mutex_lock(&c->mu);
	fd = engine_fd(&c->eng);
	pthread_mutex_unlock(&c->mu);
	return fd;
}

int
dlm_loop_events(struct dlm_client *c)
{
	int ev;

	if (c == NULL || !c->loop || dlm__forked(c))
		return -1;
	pthread_mutex_lock(&c->mu);
	ev = loop_events(c);
	pthread_mutex_unlock(&c->mu);
	return ev;
}

int
dlm_loop_timeout_ms(struct dlm_client *c)
{
	uint64_t now = mono_ms(), at;

	if (c == NULL || !c->loop || dlm__forked(c))
		return -1;
	pthread_mutex_lock(&c->mu);
	at = loop_deadline(c, now);
	pthread_mutex_unlock(&c->mu);
	return timeout_from(at, now);
}

int
dlm_loop_process(struct dlm_client *c, int events)
{
	uint64_t now;
	bool ran = false;
	int rc;

	if (c == NULL || !c->loop)
		return DLM_E_INVALID;
	if (dlm__forked(c))
		return DLM_E_FORKED;
	pthread_mutex_lock(&c->mu);
	if (c->in_process || c->closing) {
		/* From a callback: the outer call does the work. */
		pthread_mutex_unlock(&c->mu);
		return c->closing ? DLM_E_CLOSED : DLM_E_INVALID;
	}
	c->in_process = true;
	now = mono_ms();
	engine_process(&c->eng, ((events & DLM_EV_READ) ? ENGINE_READ : 0) |
	    ((events & DLM_EV_WRITE) ? ENGINE_WRITE : 0), now);
	/* Callbacks may queue more, and those more: run until none is left. */
	while (c->done_head != NULL || c->note_head != NULL) {
		struct dlm_req *done = dlm__take_completions(c);
		struct note *notes = dlm__take_notes(c);

		pthread_mutex_unlock(&c->mu);
		dlm__run_completions(c, done);
		dlm__run_notes(c, notes);
		pthread_mutex_lock(&c->mu);
		ran = true;
	}
	/*
	 * What the callbacks asked for leaves in one write, timed anew if
	 * they ran: they may have taken a while.
	 */
	if (engine_has_output(&c->eng))
		engine_flush(&c->eng, ran ? mono_ms() : now);
	c->in_process = false;
	rc = c->eng.state == ENGINE_CLOSED ? DLM_E_CLOSED : 0;
	dlm__result(c, rc, c->eng.errmsg);
	if (c->close_asked) {
		/* dlm_close()'s work; there is no thread to stop. */
		pthread_mutex_unlock(&c->mu);
		if (dlm__close_begin(c))
			dlm__close_end(c);
		return DLM_E_CLOSED;
	}
	pthread_mutex_unlock(&c->mu);
	loop_notify(c, events == 0);
	return rc;
}

void
dlm_loop_set_watch(struct dlm_client *c, dlm_watch_cb fn, void *arg)
{
	if (c == NULL || !c->loop)
		return;
	pthread_mutex_lock(&c->mu);
	c->watch = fn;
	c->watch_arg = arg;
	c->watched_fd = -2;	/* tell the new watcher at once */
	pthread_mutex_unlock(&c->mu);
	dlm__loop_notify(c);
}

void
dlm_loop_set_state_cb(struct dlm_client *c, dlm_state_cb fn, void *arg)
{
	if (c == NULL || !c->loop)
		return;
	pthread_mutex_lock(&c->mu);
	c->state_cb = fn;
	c->state_arg = arg;
	pthread_mutex_unlock(&c->mu);
	dlm__loop_notify(c);
}
