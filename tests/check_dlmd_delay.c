/*
 * dlmd's lock-delay and contention notices over raw MessagePack: which
 * endings of a hold delay its lock and which do not, the cap, hostile
 * values, listings, and the "contended" notification.
 *
 * Timing is asserted from below only (a grant came no sooner than the
 * delay): the machine may be slow, never fast.
 */
#include "config.h"

#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "testutil.h"

static struct dlmd_proc d;

static void
setup(void)
{
	dlmd_start(&d, "--lease-min", "100", (char *)NULL);
}

static void
teardown(void)
{
	dlmd_stop_clean(&d);
}

/* The holder of lock in a listing of it, as the `lock` method gives. */
static const msgpack_object *
first_holder(const struct reply *r)
{
	const msgpack_object *h = reply_get(r, "holders");

	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(h->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_ge(h->via.array.size, 1);
	return &h->via.array.ptr[0];
}

static bool
obj_has(const msgpack_object *m, const char *key)
{
	return mpr_get(m, key) != NULL;
}

/*
 * A child process that takes lock with a lock-delay and then does nothing,
 * so that it can be killed holding it.
 */
static pid_t
spawn_delayed_holder(const char *lock, long long delay_ms)
{
	int pfd[2];
	pid_t pid;
	char ok;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tc *c = tc_connect(&d);
		struct reply *r;

		close(pfd[0]);
		r = tc_call(c, "hello", "proto:i client:s", 1LL, "child");
		if (r->err != 0)
			_exit(1);
		r = tc_call(c, "acquire", "lock:s lock_delay_ms:i", lock,
		    delay_ms);
		if (r->err != 0)
			_exit(1);
		if (write(pfd[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	return pid;
}

/* A holder killed with its hold: nobody is granted before the delay. */
START_TEST(sigkill_delays_the_lock)
{
	struct tc *b = tc_connect(&d), *t = tc_connect(&d);
	struct reply *r;
	pid_t pid = spawn_delayed_holder("k", 500);
	uint64_t start;
	uint32_t id;

	tc_hello(b, "waiter");
	tc_hello(t, "trier");
	r = tc_call(b, "lock", "lock:s", "k");
	ck_assert_uint_eq(obj_u64(first_holder(r), "lock_delay_ms"), 500);
	ck_assert(!obj_has(first_holder(r), "notify_contended"));
	ck_assert_ptr_null(reply_get(r, "delayed_ms"));
	id = tc_send(b, "acquire", "lock:s", "k");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	start = mono_ms();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Once the server has seen the close, the lock shows its delay. */
	for (int i = 0; i < 100; i++) {
		r = tc_call(t, "lock", "lock:s", "k");
		if (reply_get(r, "delayed_ms") != NULL)
			break;
		ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
		sleep_ms(5);
	}
	if (mono_ms() - start < 500) {
		ck_assert_uint_le(reply_u64(r, "delayed_ms"), 500);
		ck_assert_uint_eq(reply_u64(r, "nholders"), 0);
		ck_assert_uint_eq(reply_u64(r, "nwaiters"), 1);
		r = tc_call(t, "acquire", "lock:s timeout_ms:i", "k", 0LL);
		if (mono_ms() - start < 500) {
			ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
			ck_assert(strstr(reply_errmsg(r), "delayed") != NULL);
		}
	}
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 500);
	r = tc_call(t, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "lock_delays"), 1);
	tc_close(b);
	tc_close(t);
}
END_TEST

/* A connection closed without release or bye (no linger): delayed too. */
START_TEST(dropped_connection_delays_the_lock)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t start;
	uint32_t id;

	tc_hello(a, "dropper");
	tc_hello(b, "waiter");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 400LL);
	ck_assert_int_eq(r->err, 0);
	id = tc_send(b, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	start = mono_ms();
	tc_close(a);
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 400);
	tc_close(b);
}
END_TEST

/*
 * A clean end never delays: release, the client's reset, bye. A delay of
 * a minute would outlast the waits below many times over.
 */
START_TEST(clean_release_does_not_delay)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint32_t id;

	tc_hello(a, "holder");
	tc_hello(b, "waiter");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x",
	    60000LL)->err, 0);
	id = tc_send(b, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "x")->err, 0);
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_int_eq(tc_call(b, "release", "lock:s", "x")->err, 0);

	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "y",
	    60000LL)->err, 0);
	id = tc_send(b, "acquire", "lock:s", "y");
	ck_assert_int_eq(tc_call(a, "reset", NULL)->err, 0);
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);

	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "z",
	    60000LL)->err, 0);
	id = tc_send(b, "acquire", "lock:s", "z");
	tc_send(a, "bye", NULL);
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(b, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "lock_delays"), 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

/*
 * force_release: the holder is told, then nobody gets the lock for the
 * delay; a waiter's own timeout still runs meanwhile.
 */
START_TEST(force_release_delays_the_lock)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *c = tc_connect(&d), *op = tc_connect(&d);
	struct reply *r;
	uint64_t start;
	uint32_t idb, idc;

	tc_hello(a, "stuck");
	tc_hello(b, "patient");
	tc_hello(c, "hasty");
	tc_hello(op, "operator");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "job",
	    800LL)->err, 0);
	idb = tc_send(b, "acquire", "lock:s", "job");
	ck_assert_ptr_null(tc_wait(b, idb, 100));
	start = mono_ms();
	r = tc_call(op, "force_release", "lock:s", "job");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(reply_str(r, "reason"), "forced");
	idc = tc_send(c, "acquire", "lock:s timeout_ms:i", "job", 100LL);
	r = tc_wait(c, idc, 5000);
	ck_assert_ptr_nonnull(r);
	if (mono_ms() - start < 800)
		ck_assert_str_eq(reply_errname(r), "TIMEOUT");
	r = tc_call(op, "locks", "prefix:s", "job");
	if (mono_ms() - start < 800) {
		const msgpack_object *locks = reply_get(r, "locks");

		ck_assert_ptr_nonnull(locks);
		ck_assert_uint_eq(locks->via.array.size, 1);
		ck_assert_uint_le(obj_u64(&locks->via.array.ptr[0],
		    "delayed_ms"), 800);
	}
	r = tc_wait(b, idb, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 800);
	/* Over: the lock shows no delay, and the next one is granted. */
	r = tc_call(op, "lock", "lock:s", "job");
	ck_assert_ptr_null(reply_get(r, "delayed_ms"));
	ck_assert_int_eq(tc_call(b, "release", "lock:s", "job")->err, 0);
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s timeout_ms:i", "job",
	    0LL)->err, 0);
	tc_close(a);
	tc_close(b);
	tc_close(c);
	tc_close(op);
}
END_TEST

/* An admin reset ends holds not let go: delayed. */
START_TEST(reset_client_delays_the_lock)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *op = tc_connect(&d);
	struct reply *r;
	uint64_t start;
	uint32_t id;

	tc_hello(a, "stuck");
	tc_hello(b, "waiter");
	tc_hello(op, "operator");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "r",
	    400LL)->err, 0);
	id = tc_send(b, "acquire", "lock:s", "r");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	start = mono_ms();
	ck_assert_uint_eq(reply_u64(tc_call(op, "reset_client", "client:s",
	    "stuck"), "released"), 1);
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 400);
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

/*
 * A lease that runs out: the lock is delayed from the expiry. A lock
 * nobody waits for is listed while delayed, and goes after.
 */
START_TEST(lease_expiry_delays_the_lock)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t start;
	uint32_t id;

	r = tc_call(a, "hello", "proto:i client:s lease_ms:i", 1LL, "quiet",
	    300LL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 300);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "q",
	    400LL)->err, 0);
	/* Before its last message: the lease runs from the server's receipt. */
	start = mono_ms();
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "e",
	    400LL)->err, 0);
	tc_hello(b, "b");
	id = tc_send(b, "acquire", "lock:s", "q");
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(reply_str(r, "reason"), "expired");
	r = tc_call(b, "lock", "lock:s", "e");
	if (mono_ms() - start < 700) {
		ck_assert_int_eq(r->err, 0);
		ck_assert_uint_eq(reply_u64(r, "nholders"), 0);
		ck_assert_uint_gt(reply_u64(r, "delayed_ms"), 0);
	}
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	/* The lease (300) and then the delay (400), at the least. */
	ck_assert_uint_ge(mono_ms() - start, 700);
	/* The unwanted lock is freed once its delay is over. */
	for (int i = 0; i < 200; i++) {
		r = tc_call(b, "lock", "lock:s", "e");
		if (r->err != 0)
			break;
		sleep_ms(10);
	}
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	r = tc_call(b, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "lock_delays"), 2);
	ck_assert_uint_eq(reply_u64(r, "delayed_locks"), 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

/*
 * With a linger the session outlives its connection, holds and all: the
 * delay starts only when the linger runs out without a resume. A resume
 * in time keeps the hold, and nothing is delayed.
 */
START_TEST(linger_over_delays_the_lock)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t start;
	uint32_t id;
	char secret[64];

	r = tc_call(a, "hello", "proto:i client:s linger_ms:i", 1LL,
	    "roamer", 300LL);
	ck_assert_int_eq(r->err, 0);
	snprintf(secret, sizeof secret, "%s", reply_str(r, "secret"));
	tc_hello(b, "waiter");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x",
	    400LL)->err, 0);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s lock_delay_ms:i", "y",
	    400LL)->err, 0);

	/* Back in time: the same hold, no delay. */
	tc_close(a);
	a = tc_connect(&d);
	r = tc_call(a, "hello", "proto:i client:s resume:s", 1LL, "roamer",
	    secret);
	ck_assert_int_eq(r->err, 0);
	ck_assert(reply_bool(r, "resumed"));
	r = tc_call(b, "lock", "lock:s", "y");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	ck_assert_ptr_null(reply_get(r, "delayed_ms"));

	/* Gone for good: the linger (300), then the delay (400). */
	id = tc_send(b, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	start = mono_ms();
	tc_close(a);
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 700);
	tc_close(b);
}
END_TEST

/* A raw acquire of "x" with lock_delay_ms an unsigned 64-bit value. */
static struct reply *
acquire_u64_delay(struct tc *c, uint64_t v)
{
	msgpack_sbuffer sb;
	struct mpw w;
	uint32_t id = c->next_id++;
	struct reply *r;

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, id);
	mpw_str(&w, "acquire");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "lock");
	mpw_str(&w, "x");
	mpw_key(&w, "timeout_ms");
	mpw_i64(&w, 0);
	mpw_key(&w, "lock_delay_ms");
	mpw_u64(&w, v);
	ck_assert_int_eq(w.err, 0);
	tc_send_raw(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	r = tc_wait(c, id, 5000);
	ck_assert_ptr_nonnull(r);
	return r;
}

/* The default cap is a minute; above it is refused, not cut short. */
START_TEST(cap_and_hostile_values)
{
	struct tc *a = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "a");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 60001LL);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	ck_assert(strstr(reply_errmsg(r), "max-lock-delay") != NULL);
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", -1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:s", "x", "100");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:b", "x", 1);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = acquire_u64_delay(a, UINT64_MAX);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = acquire_u64_delay(a, (uint64_t)1 << 40);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	r = tc_call(a, "acquire", "lock:s notify_contended:s", "x", "yes");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s notify_contended:i", "x", 1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* Nothing was taken by the refused ones. */
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	/* nil is "not asked"; 0 and the cap itself are fine. */
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:n notify_contended:n",
	    "x");
	ck_assert_int_eq(r->err, 0);
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert(!obj_has(first_holder(r), "lock_delay_ms"));
	ck_assert(!obj_has(first_holder(r), "notify_contended"));
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "y", 0LL);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "z", 60000LL);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
}
END_TEST

/* --max-lock-delay sets the cap; 0 refuses every delay. */
START_TEST(cap_is_configurable)
{
	struct dlmd_proc t;
	struct tc *a;
	struct reply *r;

	dlmd_start(&t, "--max-lock-delay", "1000", (char *)NULL);
	a = tc_connect(&t);
	tc_hello(a, "a");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 1001LL);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 1000LL);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	dlmd_stop_clean(&t);

	dlmd_start(&t, "--max-lock-delay", "0", (char *)NULL);
	a = tc_connect(&t);
	tc_hello(a, "a");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 1LL);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	r = tc_call(a, "acquire", "lock:s lock_delay_ms:i", "x", 0LL);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	dlmd_stop_clean(&t);
}
END_TEST

/* The next notification, which must be a contended one for lock/token. */
static void
expect_contended(struct tc *c, const char *lock, uint64_t token,
    uint64_t waiters)
{
	struct reply *r = tc_wait_notify(c, 5000);

	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "contended");
	ck_assert_str_eq(reply_str(r, "lock"), lock);
	ck_assert_uint_eq(reply_u64(r, "token"), token);
	ck_assert_uint_eq(reply_u64(r, "waiters"), waiters);
}

/* Told when the first waiter comes, and again after the queue emptied. */
START_TEST(contended_on_first_waiter)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *c = tc_connect(&d);
	struct reply *r;
	uint64_t t;
	uint32_t idb, idc;

	tc_hello(a, "cacher");
	tc_hello(b, "b");
	tc_hello(c, "c");
	r = tc_call(a, "acquire", "lock:s notify_contended:b", "x", 1);
	ck_assert_int_eq(r->err, 0);
	t = reply_u64(r, "token");
	r = tc_call(b, "lock", "lock:s", "x");
	ck_assert(obj_has(first_holder(r), "notify_contended"));
	/* A try is no waiter. */
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "x", 0LL);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	ck_assert_ptr_null(tc_wait_notify(a, 100));
	idb = tc_send(b, "acquire", "lock:s", "x");
	expect_contended(a, "x", t, 1);
	idc = tc_send(c, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(c, idc, 100));
	ck_assert_ptr_null(tc_wait_notify(a, 100));
	/* The queue empties; the next waiter is news again. */
	tc_call(b, "cancel", "id:i", (long long)idb);
	tc_call(c, "cancel", "id:i", (long long)idc);
	ck_assert_ptr_null(tc_wait_notify(a, 100));
	idc = tc_send(c, "acquire", "lock:s", "x");
	expect_contended(a, "x", t, 1);
	/* The holder gives way; the new holder did not ask. */
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "x")->err, 0);
	r = tc_wait(c, idc, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(a, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "contended_notices"), 2);
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

/*
 * A notice the holder could not get while it lingered is sent when it
 * resumes, since it would not hear of those waiters again otherwise.
 */
START_TEST(contended_told_on_resume)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t t;
	uint32_t idb;
	char secret[64];

	r = tc_call(a, "hello", "proto:i client:s linger_ms:i", 1LL,
	    "cacher", 10000LL);
	ck_assert_int_eq(r->err, 0);
	snprintf(secret, sizeof secret, "%s", reply_str(r, "secret"));
	tc_hello(b, "b");
	r = tc_call(a, "acquire", "lock:s notify_contended:b", "x", 1);
	ck_assert_int_eq(r->err, 0);
	t = reply_u64(r, "token");
	tc_close(a);
	idb = tc_send(b, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, idb, 200));
	a = tc_connect(&d);
	r = tc_call(a, "hello", "proto:i client:s resume:s", 1LL, "cacher",
	    secret);
	ck_assert_int_eq(r->err, 0);
	ck_assert(reply_bool(r, "resumed"));
	expect_contended(a, "x", t, 1);
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "x")->err, 0);
	r = tc_wait(b, idb, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

/*
 * Sharers each get their own if they asked; a holder that did not ask
 * gets none; a hold granted with others waiting behind it is told after
 * its grant.
 */
START_TEST(contended_shared_and_at_grant)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *c = tc_connect(&d), *w = tc_connect(&d), *v = tc_connect(&d);
	struct reply *r;
	uint64_t ta, tc_;
	uint32_t idw, idv;

	tc_hello(a, "reader-a");
	tc_hello(b, "reader-b");
	tc_hello(c, "reader-c");
	tc_hello(w, "writer");
	tc_hello(v, "writer-2");
	ta = reply_u64(tc_call(a, "acquire", "lock:s mode:s notify_contended:b",
	    "s", "shared", 1), "token");
	tc_call(b, "acquire", "lock:s mode:s", "s", "shared");
	tc_ = reply_u64(tc_call(c, "acquire",
	    "lock:s mode:s notify_contended:b", "s", "shared", 1), "token");
	idw = tc_send(w, "acquire", "lock:s notify_contended:b", "s", 1);
	expect_contended(a, "s", ta, 1);
	expect_contended(c, "s", tc_, 1);
	ck_assert_ptr_null(tc_wait_notify(b, 100));
	idv = tc_send(v, "acquire", "lock:s", "s");
	ck_assert_ptr_null(tc_wait(v, idv, 100));
	tc_call(a, "release", "lock:s", "s");
	tc_call(b, "release", "lock:s", "s");
	tc_call(c, "release", "lock:s", "s");
	/* The writer is granted with writer-2 behind it: told after. */
	r = tc_wait(w, idw, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	expect_contended(w, "s", reply_u64(r, "token"), 1);
	tc_close(a);
	tc_close(b);
	tc_close(c);
	tc_close(w);
	tc_close(v);
}
END_TEST

static Suite *
delay_suite(void)
{
	Suite *s = suite_create("dlmd_delay");
	TCase *tc = tcase_create("delay");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sigkill_delays_the_lock);
	tcase_add_test(tc, dropped_connection_delays_the_lock);
	tcase_add_test(tc, clean_release_does_not_delay);
	tcase_add_test(tc, force_release_delays_the_lock);
	tcase_add_test(tc, reset_client_delays_the_lock);
	tcase_add_test(tc, lease_expiry_delays_the_lock);
	tcase_add_test(tc, linger_over_delays_the_lock);
	tcase_add_test(tc, cap_and_hostile_values);
	tcase_add_test(tc, cap_is_configurable);
	suite_add_tcase(s, tc);

	tc = tcase_create("contended");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, contended_on_first_waiter);
	tcase_add_test(tc, contended_told_on_resume);
	tcase_add_test(tc, contended_shared_and_at_grant);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(delay_suite());
}
