/*
 * libevent_jobs: a libevent program runs 50 jobs at once, each under its
 * own lock, with no thread of libdlm's: the client lives on the
 * program's event_base through <dlm/libevent.h>.
 *
 * Each job asks for its lock, holds it for a moment (a timer, as real
 * work would be), then gives it back. The jobs overlap: one session may
 * wait for many locks at once (though for each lock only once: a second
 * acquire of a lock it holds or awaits fails with DLM_E_ALREADY_HELD).
 *
 * Build: cc libevent_jobs.c $(pkg-config --cflags --libs dlm libevent) \
 *            -o libevent_jobs
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <dlm.h>
#include <dlm/libevent.h>

#define JOBS	50
#define HOLD_MS	5

struct job {
	int		 id;
	char		 lock[32];
	struct event	*work;
};

static struct dlm_client *client;
static struct event_base *base;
static int granted, released, failed, running, most_running;

static void
job_finished(void)
{
	if (granted + failed == JOBS && released + failed == JOBS)
		event_base_loopexit(base, NULL);
}

static void
on_released(struct dlm_client *c, int err, void *arg)
{
	struct job *j = arg;

	if (err == 0)
		released++;
	else {
		fprintf(stderr, "job %d: release: %s\n", j->id,
		    dlm_errmsg(c));
		failed++;
	}
	job_finished();
}

/* The job's work is done: give the lock back. */
static void
on_work_done(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;

	(void)fd;
	(void)what;
	running--;
	if (dlm_release_async(client, j->lock, on_released, j) != 0) {
		failed++;
		job_finished();
	}
}

static void
on_granted(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct job *j = arg;
	struct timeval hold = { 0, HOLD_MS * 1000 };

	(void)token;
	if (err != 0) {
		fprintf(stderr, "job %d: %s\n", j->id, dlm_errmsg(c));
		failed++;
		job_finished();
		return;
	}
	granted++;
	if (++running > most_running)
		most_running = running;
	evtimer_add(j->work, &hold);
}

int
main(void)
{
	static struct job jobs[JOBS];
	int err;

	base = event_base_new();
	/* NULL: $DLM_SERVER, else the default socket. */
	client = dlm_connect_loop(NULL, NULL, &err);
	if (base == NULL || client == NULL) {
		fprintf(stderr, "dlm_connect_loop: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	if (dlm_libevent_attach(client, base) != 0)
		return 1;
	/* Asked at once: they wait for the session, then go out together. */
	for (int i = 0; i < JOBS; i++) {
		jobs[i].id = i;
		snprintf(jobs[i].lock, sizeof jobs[i].lock, "examples/job/%d",
		    i);
		jobs[i].work = evtimer_new(base, on_work_done, &jobs[i]);
		if (dlm_acquire_async(client, jobs[i].lock, 0, DLM_FOREVER,
		    on_granted, &jobs[i]) != 0)
			failed++;
	}
	event_base_dispatch(base);
	printf("%d jobs, %d granted, %d released, %d failed, at most %d at once\n",
	    JOBS, granted, released, failed, most_running);
	dlm_close(client);
	for (int i = 0; i < JOBS; i++)
		event_free(jobs[i].work);
	event_base_free(base);
	return failed == 0 ? 0 : 1;
}
