/*
 * libuv_jobs: a libuv program runs 50 jobs at once, each under its own
 * lock, with no thread of libdlm's: the client lives on the program's
 * loop through <dlm/libuv.h>.
 *
 * Each job asks for its lock, holds it for a moment (a timer, as real
 * work would be), then gives it back. The jobs overlap: one session may
 * wait for many locks at once (though for each lock only once: a second
 * acquire of a lock it holds or awaits fails with DLM_E_ALREADY_HELD).
 *
 * Build: cc libuv_jobs.c $(pkg-config --cflags --libs dlm libuv) \
 *            -o libuv_jobs
 */
#include <stdio.h>

#include <uv.h>

#include <dlm.h>
#include <dlm/libuv.h>

#define JOBS	50
#define HOLD_MS	5

struct job {
	int		 id;
	char		 lock[32];
	uv_timer_t	 work;
};

static struct dlm_client *client;
static int granted, released, failed, running, most_running;

/* Every job is over: close the client, and the loop runs out of work. */
static void
job_finished(void)
{
	if (granted + failed == JOBS && released + failed == JOBS) {
		dlm_close(client);
		client = NULL;
	}
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
on_work_done(uv_timer_t *t)
{
	struct job *j = t->data;

	running--;
	uv_close((uv_handle_t *)&j->work, NULL);
	if (dlm_release_async(client, j->lock, on_released, j) != 0) {
		failed++;
		job_finished();
	}
}

static void
on_granted(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct job *j = arg;

	(void)token;
	if (err != 0) {
		fprintf(stderr, "job %d: %s\n", j->id, dlm_errmsg(c));
		uv_close((uv_handle_t *)&j->work, NULL);
		failed++;
		job_finished();
		return;
	}
	granted++;
	if (++running > most_running)
		most_running = running;
	uv_timer_start(&j->work, on_work_done, HOLD_MS, 0);
}

int
main(void)
{
	static struct job jobs[JOBS];
	uv_loop_t *loop = uv_default_loop();
	int err;

	/* NULL: $DLM_SERVER, else the default socket. */
	if ((client = dlm_connect_loop(NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "dlm_connect_loop: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	if (dlm_libuv_attach(client, loop) != 0)
		return 1;
	/* Asked at once: they wait for the session, then go out together. */
	for (int i = 0; i < JOBS; i++) {
		jobs[i].id = i;
		snprintf(jobs[i].lock, sizeof jobs[i].lock, "examples/job/%d",
		    i);
		uv_timer_init(loop, &jobs[i].work);
		jobs[i].work.data = &jobs[i];
		if (dlm_acquire_async(client, jobs[i].lock, 0, DLM_FOREVER,
		    on_granted, &jobs[i]) != 0) {
			uv_close((uv_handle_t *)&jobs[i].work, NULL);
			failed++;
		}
	}
	uv_run(loop, UV_RUN_DEFAULT);
	printf("%d jobs, %d granted, %d released, %d failed, at most %d at once\n",
	    JOBS, granted, released, failed, most_running);
	dlm_close(client);	/* NULL when done: accepted */
	uv_loop_close(loop);
	return failed == 0 ? 0 : 1;
}
