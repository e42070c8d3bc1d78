/*
 * libdlm's event-loop mode against a real dlmd: the behaviour of the
 * threaded client (FIFO, lost holds, resume, a holder killed, keepalive,
 * reconnect back-off, cancel, every callback once), with no thread of the
 * library's. Each test runs three times: driven by a hand-written poll()
 * loop that uses only the generic interface, by libevent through
 * <dlm/libevent.h>, and by libuv through <dlm/libuv.h>.
 */
#include "config.h"

#include <sys/wait.h>

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <uv.h>

#include "dlm.h"
#include "dlm/libevent.h"
#include "dlm/libuv.h"
#include "relay.h"
#include "testutil.h"

enum { DRIVE_POLL, DRIVE_LIBEVENT, DRIVE_LIBUV, DRIVES };

static struct dlmd_proc d;
static char server[400];
static int mode;
static struct event_base *base;
static uv_loop_t uvloop;
static uv_timer_t uvtick;	/* bounds one turn of the libuv loop */
#define MAX_LIVE	8
static struct dlm_client *live[MAX_LIVE];

static void
setup(void)
{
	dlmd_start_tcp(&d, "--lease-min", "100", (char *)NULL);
	snprintf(server, sizeof server, "unix:%s", d.sock);
	base = event_base_new();
	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(uv_loop_init(&uvloop), 0);
	uv_timer_init(&uvloop, &uvtick);
	memset(live, 0, sizeof live);
}

static void
teardown(void)
{
	event_base_free(base);
	/* The adapter's handles close on the loop's next turns. */
	uv_close((uv_handle_t *)&uvtick, NULL);
	for (int i = 0; i < 100 && uv_loop_close(&uvloop) == UV_EBUSY; i++)
		uv_run(&uvloop, UV_RUN_NOWAIT);
	dlmd_stop_clean(&d);
}

static void
uv_tick(uv_timer_t *t)
{
}

/* The threads of this process. */
static int
count_tasks(void)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(dir);
	return n;
}

static void
live_add(struct dlm_client *c)
{
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] == NULL) {
			live[i] = c;
			return;
		}
	ck_abort_msg("more than %d clients", MAX_LIVE);
}

/* The poll() driver's watcher: only to learn that a client is gone. */
static void
/* cppcheck-suppress constParameter ; the type of dlm_watch_cb */
poll_watch(struct dlm_client *c, int fd, int events, int timeout_ms,
    void *arg)
{
	if (!(events & DLM_EV_FREE))
		return;
	for (int i = 0; i < MAX_LIVE; i++)
		if (live[i] == c)
			live[i] = NULL;
}

/* Drive every client once, waiting at most max_ms (generic interface). */
static void
poll_once(int max_ms)
{
	struct pollfd pfd[MAX_LIVE];
	struct dlm_client *who[MAX_LIVE];
	int n = 0, timeout = max_ms;

	for (int i = 0; i < MAX_LIVE; i++) {
		int t, ev;

		if (live[i] == NULL)
			continue;
		who[n] = live[i];
		ev = dlm_loop_events(live[i]);
		pfd[n].fd = dlm_loop_fd(live[i]);
		pfd[n].events = (short)(((ev & DLM_EV_READ) ? POLLIN : 0) |
		    ((ev & DLM_EV_WRITE) ? POLLOUT : 0));
		pfd[n].revents = 0;
		t = dlm_loop_timeout_ms(live[i]);
		if (t >= 0 && t < timeout)
			timeout = t;
		n++;
	}
	(void)poll(pfd, (nfds_t)n, timeout);
	for (int i = 0; i < n; i++) {
		int ev = 0;

		/* A client closed by an earlier one's callback is gone. */
		bool still = false;

		for (int j = 0; j < MAX_LIVE; j++)
			still |= live[j] == who[i];
		if (!still)
			continue;
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			ev |= DLM_EV_READ;
		if (pfd[i].revents & (POLLOUT | POLLHUP | POLLERR))
			ev |= DLM_EV_WRITE;
		(void)dlm_loop_process(who[i], ev);
	}
}

/* Run the loop for up to ms, or until *v >= want (v may be NULL). */
static void
run(const int *v, int want, int ms)
{
	uint64_t until = mono_ms() + (uint64_t)ms;

	while ((v == NULL || *v < want) && mono_ms() < until) {
		if (mode == DRIVE_POLL)
			poll_once(10);
		else if (mode == DRIVE_LIBEVENT) {
			struct timeval tv = { 0, 10000 };

			event_base_loopexit(base, &tv);
			event_base_dispatch(base);
		} else {
			uv_timer_start(&uvtick, uv_tick, 10, 0);
			uv_run(&uvloop, UV_RUN_ONCE);
		}
	}
}

static void
run_until(const int *v, int want, int ms)
{
	run(v, want, ms);
	ck_assert_int_ge(*v, want);
}

struct log {
	int		 connected;
	int		 reconnecting;
	int		 closed;
	int		 close_err;
	char		 close_msg[256];	/* dlm_errmsg() in the callback */
	int		 lost;
	int		 lost_reason;
	uint64_t	 lost_token;
	char		 lost_lock[32];
};

static void
on_state(struct dlm_client *c, int state, int err, void *arg)
{
	struct log *l = arg;

	if (state == DLM_STATE_CONNECTED)
		l->connected++;
	else if (state == DLM_STATE_RECONNECTING)
		l->reconnecting++;
	else if (state == DLM_STATE_CLOSED) {
		l->closed++;
		l->close_err = err;
		snprintf(l->close_msg, sizeof l->close_msg, "%s",
		    dlm_errmsg(c));
	}
}

static void
on_lost(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    void *arg)
{
	struct log *l = arg;

	l->lost++;
	l->lost_reason = reason;
	l->lost_token = token;
	snprintf(l->lost_lock, sizeof l->lost_lock, "%s", lock);
}

/* A loop client of addr (NULL: the Unix socket), driven by this test's mode. */
static struct dlm_client *
loop_client(const char *addr, const char *name, int lease_ms, int linger_ms,
    struct log *l)
{
	struct dlm_options o;
	struct dlm_client *c;
	int err = -1;

	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = lease_ms;
	o.linger_ms = linger_ms;
	if (l != NULL) {
		o.on_lost = on_lost;
		o.on_lost_arg = l;
	}
	c = dlm_connect_loop(addr != NULL ? addr : server, &o, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_strerror(err));
	ck_assert_int_eq(err, 0);
	ck_assert_int_ge(dlm_loop_events(c), 0);
	if (l != NULL)
		dlm_loop_set_state_cb(c, on_state, l);
	if (mode == DRIVE_LIBEVENT)
		ck_assert_int_eq(dlm_libevent_attach(c, base), 0);
	else if (mode == DRIVE_LIBUV)
		ck_assert_int_eq(dlm_libuv_attach(c, &uvloop), 0);
	else {
		live_add(c);
		dlm_loop_set_watch(c, poll_watch, NULL);
	}
	return c;
}

/* One async acquire or release and its answer. */
struct op {
	int		 done;
	int		 err;
	uint64_t	 token;
	int		 order;	/* when it was answered, among ops */
};

static int answered;

static void
on_acquired(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct op *op = arg;

	op->done++;
	op->err = err;
	op->token = token;
	op->order = ++answered;
}

static void
on_released(struct dlm_client *c, int err, void *arg)
{
	struct op *op = arg;

	op->done++;
	op->err = err;
	op->order = ++answered;
}

/* Acquire lock through the loop and wait for the grant. */
static uint64_t
take(struct dlm_client *c, const char *lock)
{
	struct op op = { 0, -1, 0, 0 };

	ck_assert_int_eq(dlm_acquire_async(c, lock, 0, 5000, on_acquired, &op),
	    0);
	run_until(&op.done, 1, 5000);
	ck_assert_int_eq(op.err, 0);
	return op.token;
}

static void
give(struct dlm_client *c, const char *lock)
{
	struct op op = { 0, -1, 0, 0 };

	ck_assert_int_eq(dlm_release_async(c, lock, on_released, &op), 0);
	run_until(&op.done, 1, 5000);
	ck_assert_int_eq(op.err, 0);
}

START_TEST(no_thread_is_created)
{
	struct log l;
	struct dlm_client *c;
	int before, during;

	mode = _i;
	memset(&l, 0, sizeof l);
	before = count_tasks();
	c = loop_client(NULL, "threadless", 0, 0, &l);
	run_until(&l.connected, 1, 5000);
	ck_assert_uint_gt(take(c, "a"), 0);
	during = count_tasks();
	ck_assert_int_eq(dlm_holds(c, "a", NULL), 1);
	give(c, "a");
	dlm_close(c);
	ck_assert_int_eq(during, before);
	ck_assert_int_eq(count_tasks(), before);
}
END_TEST

START_TEST(waiters_are_served_in_order)
{
	struct dlm_client *a, *b, *c;
	struct op ob = { 0, -1, 0, 0 }, oc = { 0, -1, 0, 0 };

	mode = _i;
	answered = 0;
	a = loop_client(NULL, "a", 0, 0, NULL);
	b = loop_client(NULL, "b", 0, 0, NULL);
	c = loop_client(NULL, "c", 0, 0, NULL);
	take(a, "f");
	ck_assert_int_eq(dlm_acquire_async(b, "f", 0, DLM_FOREVER, on_acquired,
	    &ob), 0);
	run(NULL, 0, 100);
	ck_assert_int_eq(dlm_acquire_async(c, "f", 0, DLM_FOREVER, on_acquired,
	    &oc), 0);
	run(NULL, 0, 100);
	ck_assert_int_eq(ob.done + oc.done, 0);
	give(a, "f");
	run_until(&ob.done, 1, 5000);
	ck_assert_int_eq(ob.err, 0);
	ck_assert_int_eq(oc.done, 0);
	give(b, "f");
	run_until(&oc.done, 1, 5000);
	ck_assert_int_eq(oc.err, 0);
	ck_assert_int_lt(ob.order, oc.order);
	ck_assert_uint_gt(oc.token, ob.token);
	dlm_close(a);
	dlm_close(b);
	dlm_close(c);
}
END_TEST

START_TEST(force_release_is_reported_lost)
{
	struct log l;
	struct dlm_client *c;
	struct tc *op;
	uint64_t t;

	mode = _i;
	memset(&l, 0, sizeof l);
	c = loop_client(NULL, "victim", 0, 0, &l);
	t = take(c, "job");
	op = tc_connect(&d);
	tc_hello(op, "operator");
	ck_assert_int_eq(tc_call(op, "force_release", "lock:s", "job")->err, 0);
	run_until(&l.lost, 1, 5000);
	ck_assert_str_eq(l.lost_lock, "job");
	ck_assert_uint_eq(l.lost_token, t);
	ck_assert_int_eq(l.lost_reason, DLM_LOST_FORCED);
	ck_assert_int_eq(dlm_holds(c, "job", NULL), 0);
	/* The client works on, and may take the lock again. */
	ck_assert_uint_gt(take(c, "job"), t);
	tc_close(op);
	dlm_close(c);
}
END_TEST

START_TEST(dropped_connection_resumes_with_linger)
{
	struct log l;
	struct dlm_client *c;
	struct relay r;
	char via[64];
	uint64_t t, t2 = 0;

	mode = _i;
	memset(&l, 0, sizeof l);
	relay_start(&r, d.port);
	snprintf(via, sizeof via, "tcp:127.0.0.1:%d", r.port);
	c = loop_client(via, "roamer", 0, 5000, &l);
	run_until(&l.connected, 1, 5000);
	t = take(c, "kept");
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	run_until(&l.connected, 2, 5000);
	ck_assert_int_eq(l.reconnecting, 1);
	ck_assert_int_eq(dlm_holds(c, "kept", &t2), 1);
	ck_assert_uint_eq(t2, t);
	take(c, "other");
	ck_assert_int_eq(l.lost, 0);
	ck_assert_int_eq(l.closed, 0);
	dlm_close(c);
	relay_stop(&r);
}
END_TEST

START_TEST(killed_holder_lets_a_waiter_in)
{
	struct dlm_client *c;
	struct op op = { 0, -1, 0, 0 };
	int pfd[2], status;
	char ok;
	pid_t pid;
	uint64_t t0;

	mode = _i;
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dlm_client *h = dlm_connect(server, NULL, NULL);

		if (h == NULL || dlm_acquire(h, "k", 0, 0, NULL) != 0 ||
		    write(pfd[1], "y", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
	c = loop_client(NULL, "waiter", 0, 0, NULL);
	ck_assert_int_eq(dlm_acquire_async(c, "k", 0, DLM_FOREVER, on_acquired,
	    &op), 0);
	run(NULL, 0, 100);
	ck_assert_int_eq(op.done, 0);
	t0 = mono_ms();
	kill(pid, SIGKILL);
	run_until(&op.done, 1, 2000);
	ck_assert_int_eq(op.err, 0);
	ck_assert_uint_lt(mono_ms() - t0, 1000);
	waitpid(pid, &status, 0);
	close(pfd[0]);
	close(pfd[1]);
	dlm_close(c);
}
END_TEST

/* With the loop otherwise idle, pings keep the session past many leases. */
START_TEST(keepalive_holds_past_several_leases)
{
	struct log l;
	struct dlm_client *c;
	struct tc *op;
	struct reply *rep;
	uint64_t t;
	int held = 0;

	mode = _i;
	memset(&l, 0, sizeof l);
	c = loop_client(NULL, "idle", 300, 0, &l);
	t = take(c, "ka");
	run(NULL, 0, 1500);
	ck_assert_int_eq(l.lost, 0);
	ck_assert_int_eq(dlm_holds(c, "ka", NULL), 1);
	op = tc_connect(&d);
	tc_hello(op, "inspector");
	rep = tc_call(op, "check", "lock:s token:i", "ka", (long long)t);
	ck_assert_int_eq(rep->err, 0);
	ck_assert(reply_bool(rep, "held"));
	/* A blocking call drives the loop client itself. */
	ck_assert_int_eq(dlm_check(c, "ka", t, &held), 0);
	ck_assert_int_eq(held, 1);
	tc_close(op);
	dlm_close(c);
}
END_TEST

/*
 * The server is out of reach for a while (every link refused): the
 * client tries again with a growing back-off, not in a tight loop and not
 * giving up, and resumes once it can.
 */
START_TEST(reconnect_backs_off_then_resumes)
{
	struct log l;
	struct dlm_client *c;
	struct relay r;
	char via[64];
	uint64_t t;
	int tries;

	mode = _i;
	memset(&l, 0, sizeof l);
	relay_start(&r, d.port);
	snprintf(via, sizeof via, "tcp:127.0.0.1:%d", r.port);
	c = loop_client(via, "patient", 0, 10000, &l);
	run_until(&l.connected, 1, 5000);
	t = take(c, "b1");
	__atomic_store_n(&r.refuse, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	run(NULL, 0, 1000);
	tries = __atomic_load_n(&r.accepts, __ATOMIC_ACQUIRE) - 1;
	/* 20, 40, 80, 160, 320 ms apart: about six tries in a second. */
	ck_assert_int_ge(tries, 3);
	ck_assert_int_le(tries, 10);
	ck_assert_int_eq(l.reconnecting, 1);
	ck_assert_int_eq(l.closed, 0);
	__atomic_store_n(&r.refuse, 0, __ATOMIC_RELEASE);
	run_until(&l.connected, 2, 5000);
	ck_assert_int_eq(dlm_holds(c, "b1", NULL), 1);
	ck_assert_int_eq(l.lost, 0);
	dlm_close(c);
	relay_stop(&r);
	(void)t;
}
END_TEST

START_TEST(cancel_a_pending_acquire)
{
	struct dlm_client *c, *h;
	struct op o1 = { 0, -1, 0, 0 }, o2 = { 0, -1, 0, 0 };
	uint64_t id = 0;

	mode = _i;
	h = loop_client(NULL, "holder", 0, 0, NULL);
	c = loop_client(NULL, "impatient", 0, 0, NULL);
	take(h, "x");
	take(h, "y");
	ck_assert_int_eq(dlm_acquire_async_id(c, "x", 0, DLM_FOREVER,
	    on_acquired, &o1, &id), 0);
	ck_assert_int_eq(dlm_acquire_async(c, "y", 0, DLM_FOREVER, on_acquired,
	    &o2), 0);
	run(NULL, 0, 100);
	ck_assert_int_eq(dlm_cancel_request(c, id), 0);
	run_until(&o1.done, 1, 5000);
	ck_assert_int_eq(o1.err, DLM_E_CANCELLED);
	ck_assert_int_eq(dlm_cancel(c, "y"), 0);
	run_until(&o2.done, 1, 5000);
	ck_assert_int_eq(o2.err, DLM_E_CANCELLED);
	ck_assert_int_eq(dlm_cancel_request(c, id), DLM_E_NOT_FOUND);
	ck_assert_int_eq(dlm_cancel(c, "y"), DLM_E_NOT_FOUND);
	run(NULL, 0, 50);
	ck_assert_int_eq(o1.done + o2.done, 2);	/* once each */
	dlm_close(c);
	dlm_close(h);
}
END_TEST

static struct op closers[3];

/* The first answer closes its client: the others still run, once. */
static void
close_on_first(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	on_acquired(c, err, token, arg);
	if (arg == &closers[0])
		dlm_close(c);
}

START_TEST(every_callback_runs_once_at_close)
{
	enum { N = 10 };
	struct dlm_client *c, *h;
	struct op ops[N];
	char name[16];

	mode = _i;
	memset(ops, 0, sizeof ops);
	memset(closers, 0, sizeof closers);
	h = loop_client(NULL, "holder", 0, 0, NULL);
	c = loop_client(NULL, "doomed", 0, 0, NULL);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "h%d", i);
		take(h, name);
		ck_assert_int_eq(dlm_acquire_async(c, name, 0, DLM_FOREVER,
		    on_acquired, &ops[i]), 0);
	}
	run(NULL, 0, 100);
	dlm_close(c);
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(ops[i].done, 1);
		ck_assert_int_eq(ops[i].err, DLM_E_CLOSED);
	}

	/* Closed from inside its own callback: freed after it returns. */
	c = loop_client(NULL, "self-closing", 0, 0, NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof name, "free%d", i);
		ck_assert_int_eq(dlm_acquire_async(c, name, 0, DLM_FOREVER,
		    close_on_first, &closers[i]), 0);
	}
	run_until(&closers[2].done, 1, 5000);
	run(NULL, 0, 50);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(closers[i].done, 1);
	ck_assert_int_eq(closers[0].err, 0);
	dlm_close(h);
}
END_TEST

static int blocking_rc;

static void
block_from_callback(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	blocking_rc = dlm_acquire(c, "inner", 0, 0, NULL);
	on_acquired(c, err, token, arg);
}

/*
 * A blocking call drives the connection itself until answered; from a
 * callback, where the loop is busy running it, it is refused.
 */
START_TEST(blocking_calls_in_the_loop_mode)
{
	struct dlm_client *c;
	struct op op = { 0, -1, 0, 0 };
	uint64_t t = 0;

	mode = _i;
	c = loop_client(NULL, "blocking", 0, 0, NULL);
	ck_assert_int_eq(dlm_acquire(c, "sync", 0, 0, &t), 0);
	ck_assert_uint_gt(t, 0);
	ck_assert_int_eq(dlm_holds(c, "sync", NULL), 1);
	/* A second acquire of a held mutex cannot wait for another thread. */
	ck_assert_int_eq(dlm_acquire(c, "sync", 0, 1000, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(dlm_release(c, "sync"), 0);
	blocking_rc = -1;
	ck_assert_int_eq(dlm_acquire_async(c, "cb", 0, 0, block_from_callback,
	    &op), 0);
	run_until(&op.done, 1, 5000);
	ck_assert_int_eq(blocking_rc, DLM_E_INVALID);
	dlm_close(c);
}
END_TEST

static int queued_failed;

static void
on_queued(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	int *done = arg;

	(*done)++;
	if (err != 0)
		queued_failed++;
}

static void
on_queued_release(struct dlm_client *c, int err, void *arg)
{
	on_queued(c, err, 0, arg);
}

/*
 * Thousands of answers left queued in the socket are all read: reads of
 * them stop inside a frame, whose start waits in the buffer for the rest.
 */
START_TEST(answers_queued_long_are_all_read)
{
	enum { N = 4000 };
	struct log l;
	struct dlm_client *c;
	char name[32];
	int done;

	mode = _i;
	memset(&l, 0, sizeof l);
	queued_failed = 0;
	c = loop_client(NULL, "queued", 0, 0, &l);
	run_until(&l.connected, 1, 5000);
	for (int round = 0; round < 2; round++) {
		done = 0;
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof name, "q/%d", i);
			ck_assert_int_eq(round == 0 ?
			    dlm_acquire_async(c, name, 0, DLM_TRY, on_queued,
			    &done) : dlm_release_async(c, name,
			    on_queued_release, &done), 0);
		}
		/* Written, and not read until every answer has come. */
		for (int i = 0; i < 500 &&
		    (dlm_loop_events(c) & DLM_EV_WRITE); i++) {
			ck_assert_int_eq(dlm_loop_process(c, DLM_EV_WRITE), 0);
			sleep_ms(1);
		}
		sleep_ms(300);
		run_until(&done, N, 10000);
		ck_assert_int_eq(done, N);
		ck_assert_int_eq(queued_failed, 0);
	}
	ck_assert_int_eq(dlm_holds(c, "q/17", NULL), 0);
	dlm_close(c);
}
END_TEST

START_TEST(first_connect_failure_is_told)
{
	struct log l;
	struct dlm_client *c;
	char addr[64];

	mode = _i;
	memset(&l, 0, sizeof l);
	c = loop_client("unix:/nonexistent/dlmd.sock", "nowhere", 0, 0, &l);
	run_until(&l.closed, 1, 5000);
	ck_assert_int_eq(l.close_err, DLM_E_CONNECT);
	/* In words, inside the state callback: where, and why. */
	ck_assert_msg(strstr(l.close_msg, "/nonexistent/dlmd.sock") != NULL &&
	    strstr(l.close_msg, "No such file") != NULL, "%s", l.close_msg);
	ck_assert_int_eq(dlm_acquire_async(c, "x", 0, 0, on_acquired, NULL),
	    DLM_E_CLOSED);
	ck_assert_int_eq(dlm_loop_process(c, 0), DLM_E_CLOSED);
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "No such file"));
	dlm_close(c);

	/* Over TCP the refusal comes later, through the loop. */
	memset(&l, 0, sizeof l);
	snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", free_tcp_port());
	c = loop_client(addr, "refused", 0, 0, &l);
	run_until(&l.closed, 1, 5000);
	ck_assert_int_eq(l.close_err, DLM_E_CONNECT);
	ck_assert_msg(strstr(l.close_msg, "refused") != NULL, "%s",
	    l.close_msg);
	ck_assert_int_eq(l.connected, 0);
	dlm_close(c);
}
END_TEST

/* What a loop client's watch callbacks were told. */
struct wlog {
	int		 n;
	size_t		 nholders[16];
	char		 first[16][32];
	char		 value[16][32];
	int		 unwatch_at;	/* unwatch from the call numbered so */
	int		 unwatch_rc;
	int		 blocking_rc;
};

static void
wlog_add(struct wlog *l, const struct dlm_holder *h, size_t nholders)
{
	if (l->n >= 16)
		return;
	l->nholders[l->n] = nholders;
	snprintf(l->first[l->n], sizeof l->first[0], "%s",
	    h != NULL ? h->client : "");
	snprintf(l->value[l->n], sizeof l->value[0], "%.*s",
	    h != NULL && h->value != NULL ? (int)h->value_len : 0,
	    h != NULL && h->value != NULL ? (const char *)h->value : "");
	l->n++;
}

static void
on_changed(struct dlm_client *c, const char *lock, const struct dlm_holder *hs,
    size_t nholders, size_t waiters, void *arg)
{
	struct wlog *l = arg;

	(void)waiters;
	l->blocking_rc = dlm_watch(c, "other", on_changed, l);
	wlog_add(l, nholders > 0 ? &hs[0] : NULL, nholders);
	if (l->n == l->unwatch_at)
		l->unwatch_rc = dlm_unwatch(c, lock);
}

static void
on_leader(struct dlm_client *c, const char *election,
    const struct dlm_holder *leader, void *arg)
{
	wlog_add(arg, leader, leader != NULL ? 1 : 0);
}

/*
 * A watch in the loop mode: its calls run inside dlm_loop_process(); a
 * blocking call from one is refused, an unwatch is not.
 */
START_TEST(watch_in_the_loop_mode)
{
	struct wlog l;
	struct dlm_client *w, *a;
	struct dlm_acquire_opts o;

	mode = _i;
	memset(&l, 0, sizeof l);
	l.unwatch_at = 3;
	w = loop_client(NULL, "loop-watcher", 0, 0, NULL);
	a = loop_client(NULL, "loop-holder", 0, 0, NULL);
	ck_assert_int_eq(dlm_watch(w, "lw", on_changed, &l), 0);
	run_until(&l.n, 1, 5000);
	ck_assert_uint_eq(l.nholders[0], 0);
	ck_assert_int_eq(l.blocking_rc, DLM_E_INVALID);
	dlm_acquire_opts_init(&o);
	o.value = "here";
	o.value_len = 4;
	ck_assert_int_eq(dlm_acquire_ex(a, "lw", &o, NULL), 0);
	run_until(&l.n, 2, 5000);
	ck_assert_str_eq(l.first[1], "loop-holder");
	ck_assert_str_eq(l.value[1], "here");
	give(a, "lw");
	run_until(&l.n, 3, 5000);
	ck_assert_uint_eq(l.nholders[2], 0);
	ck_assert_int_eq(l.unwatch_rc, 0);
	take(a, "lw");
	run(NULL, 0, 200);
	ck_assert_int_eq(l.n, 3);
	ck_assert_int_eq(dlm_unwatch(w, "lw"), DLM_E_NOT_FOUND);
	dlm_close(w);
	dlm_close(a);
}
END_TEST

/* Leader election with loop clients: observe, campaign, resign. */
START_TEST(election_in_the_loop_mode)
{
	struct wlog l;
	struct dlm_client *obs, *a, *b;
	uint64_t ta = 0;

	mode = _i;
	memset(&l, 0, sizeof l);
	obs = loop_client(NULL, "loop-observer", 0, 0, NULL);
	a = loop_client(NULL, "loop-a", 0, 0, NULL);
	b = loop_client(NULL, "loop-b", 0, 0, NULL);
	ck_assert_int_eq(dlm_observe(obs, "loop-leader", on_leader, &l), 0);
	run_until(&l.n, 1, 5000);
	ck_assert_str_eq(l.first[0], "");
	ck_assert_int_eq(dlm_campaign(a, "loop-leader", "a:1", 3, 5000, &ta),
	    0);
	ck_assert_uint_gt(ta, 0);
	run_until(&l.n, 2, 5000);
	ck_assert_str_eq(l.first[1], "loop-a");
	ck_assert_str_eq(l.value[1], "a:1");
	ck_assert_int_eq(dlm_campaign(b, "loop-leader", "b:1", 3, DLM_TRY,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(dlm_resign(a, "loop-leader"), 0);
	run_until(&l.n, 3, 5000);
	ck_assert_str_eq(l.first[2], "");
	ck_assert_int_eq(dlm_campaign(b, "loop-leader", "b:1", 3, DLM_TRY,
	    NULL), 0);
	run_until(&l.n, 4, 5000);
	ck_assert_str_eq(l.value[3], "b:1");
	dlm_close(obs);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* After a reconnect the loop client watches again and is told the state. */
START_TEST(watch_again_after_reconnect)
{
	struct wlog l;
	struct log lg;
	struct dlm_client *c, *a;
	struct relay r;
	char via[64];

	mode = _i;
	memset(&l, 0, sizeof l);
	memset(&lg, 0, sizeof lg);
	relay_start(&r, d.port);
	snprintf(via, sizeof via, "tcp:127.0.0.1:%d", r.port);
	c = loop_client(via, "loop-roamer", 0, 5000, &lg);
	a = loop_client(NULL, "loop-alpha", 0, 0, NULL);
	ck_assert_int_eq(dlm_watch(c, "lr", on_changed, &l), 0);
	run_until(&l.n, 1, 5000);
	__atomic_store_n(&r.refuse, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	run_until(&lg.reconnecting, 1, 5000);
	take(a, "lr");
	__atomic_store_n(&r.refuse, 0, __ATOMIC_RELEASE);
	run_until(&l.n, 2, 5000);
	ck_assert_str_eq(l.first[1], "loop-alpha");
	dlm_close(c);
	dlm_close(a);
	relay_stop(&r);
}
END_TEST

struct contended {
	int		 n;
	uint64_t	 token;
	uint32_t	 waiters;
	char		 lock[32];
};

static void
on_contended(struct dlm_client *c, const char *lock, uint64_t token,
    uint32_t waiters, void *arg)
{
	struct contended *k = arg;

	k->n++;
	k->token = token;
	k->waiters = waiters;
	snprintf(k->lock, sizeof k->lock, "%s", lock);
	/* In the loop's thread, inside dlm_loop_process(): give way. */
	ck_assert_int_eq(dlm_release_async(c, lock, NULL, NULL), 0);
}

/*
 * A hold taken with DLM_NOTIFY_CONTENDED is told inside
 * dlm_loop_process() when another client waits, and gives way.
 */
START_TEST(contended_is_reported)
{
	struct contended k;
	struct dlm_acquire_opts ao;
	struct dlm_options o;
	struct dlm_client *c;
	struct op op = { 0, -1, 0, 0 };
	struct tc *w;
	struct reply *r;
	uint32_t id;
	int err = -1;

	mode = _i;
	memset(&k, 0, sizeof k);
	dlm_options_init(&o);
	o.client = "cacher";
	o.on_contended = on_contended;
	o.on_contended_arg = &k;
	c = dlm_connect_loop(server, &o, &err);
	ck_assert_ptr_nonnull(c);
	if (mode == DRIVE_LIBEVENT)
		ck_assert_int_eq(dlm_libevent_attach(c, base), 0);
	else if (mode == DRIVE_LIBUV)
		ck_assert_int_eq(dlm_libuv_attach(c, &uvloop), 0);
	else {
		live_add(c);
		dlm_loop_set_watch(c, poll_watch, NULL);
	}
	dlm_acquire_opts_init(&ao);
	ao.flags = DLM_NOTIFY_CONTENDED;
	ao.timeout_ms = 5000;
	ck_assert_int_eq(dlm_acquire_ex_async(c, "hot", &ao, on_acquired, &op,
	    NULL), 0);
	run_until(&op.done, 1, 5000);
	ck_assert_int_eq(op.err, 0);
	w = tc_connect(&d);
	tc_hello(w, "wanter");
	id = tc_send(w, "acquire", "lock:s", "hot");
	run_until(&k.n, 1, 5000);
	ck_assert_str_eq(k.lock, "hot");
	ck_assert_uint_eq(k.token, op.token);
	ck_assert_uint_eq(k.waiters, 1);
	/* The release sent from the callback lets the waiter in. */
	run(NULL, 0, 50);
	r = tc_wait(w, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	/* The release's answer, read as the loop turns. */
	for (int i = 0; i < 500 && dlm_holds(c, "hot", NULL) != 0; i++)
		run(NULL, 0, 10);
	ck_assert_int_eq(dlm_holds(c, "hot", NULL), 0);
	tc_close(w);
	dlm_close(c);
}
END_TEST

/* A holder killed with a lock-delay: the waiter's grant comes after it. */
START_TEST(killed_holder_with_delay_waits_it_out)
{
	struct dlm_client *c;
	struct op op = { 0, -1, 0, 0 };
	int pfd[2], status;
	char ok;
	pid_t pid;
	uint64_t t0;

	mode = _i;
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dlm_client *h = dlm_connect(server, NULL, NULL);
		struct dlm_acquire_opts ao;

		dlm_acquire_opts_init(&ao);
		ao.lock_delay_ms = 400;
		if (h == NULL || dlm_acquire_ex(h, "k", &ao, NULL) != 0 ||
		    write(pfd[1], "y", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
	c = loop_client(NULL, "waiter", 0, 0, NULL);
	ck_assert_int_eq(dlm_acquire_async(c, "k", 0, DLM_FOREVER, on_acquired,
	    &op), 0);
	run(NULL, 0, 100);
	ck_assert_int_eq(op.done, 0);
	t0 = mono_ms();
	kill(pid, SIGKILL);
	run_until(&op.done, 1, 10000);
	ck_assert_int_eq(op.err, 0);
	ck_assert_uint_ge(mono_ms() - t0, 400);
	waitpid(pid, &status, 0);
	close(pfd[0]);
	close(pfd[1]);
	dlm_close(c);
}
END_TEST

static Suite *
loop_suite(void)
{
	Suite *s = suite_create("libdlm_loop");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, no_thread_is_created, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, waiters_are_served_in_order, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, force_release_is_reported_lost, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, cancel_a_pending_acquire, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, every_callback_runs_once_at_close, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, blocking_calls_in_the_loop_mode, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, first_connect_failure_is_told, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, answers_queued_long_are_all_read, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, contended_is_reported, DRIVE_POLL, DRIVES);
	suite_add_tcase(s, tc);

	tc = tcase_create("watch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, watch_in_the_loop_mode, DRIVE_POLL, DRIVES);
	tcase_add_loop_test(tc, election_in_the_loop_mode, DRIVE_POLL, DRIVES);
	tcase_add_loop_test(tc, watch_again_after_reconnect, DRIVE_POLL,
	    DRIVES);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, dropped_connection_resumes_with_linger,
	    DRIVE_POLL, DRIVES);
	tcase_add_loop_test(tc, killed_holder_lets_a_waiter_in, DRIVE_POLL,
	    DRIVES);
	tcase_add_loop_test(tc, killed_holder_with_delay_waits_it_out,
	    DRIVE_POLL, DRIVES);
	tcase_add_loop_test(tc, keepalive_holds_past_several_leases,
	    DRIVE_POLL, DRIVES);
	tcase_add_loop_test(tc, reconnect_backs_off_then_resumes, DRIVE_POLL,
	    DRIVES);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(loop_suite());
}
