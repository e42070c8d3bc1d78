/*
 * dlmd over its socket, with raw MessagePack: sessions, locks, waits,
 * out-of-order replies, process death and leases.
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

START_TEST(hello_and_ping)
{
	struct tc *c = tc_connect(&d);
	struct reply *r = tc_call(c, "hello", "proto:i client:s lease_ms:i",
	    1LL, "alpha", 2000LL);

	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_gt(reply_u64(r, "session"), 0);
	ck_assert_str_eq(reply_str(r, "client"), "alpha");
	ck_assert_uint_eq(strlen(reply_str(r, "secret")), 32);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 2000);
	ck_assert_uint_eq(reply_u64(r, "linger_ms"), 0);
	ck_assert(strncmp(reply_str(r, "server"), "dlmd ", 5) == 0);
	ck_assert(!reply_bool(r, "resumed"));
	r = tc_call(c, "ping", NULL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 2000);
	tc_close(c);
}
END_TEST

START_TEST(generated_names_are_unique)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	char na[256];

	snprintf(na, sizeof na, "%s", reply_str(tc_hello(a, NULL), "client"));
	ck_assert_uint_gt(strlen(na), 0);
	ck_assert_str_ne(na, reply_str(tc_hello(b, NULL), "client"));
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(request_before_hello)
{
	struct tc *c = tc_connect(&d);
	struct reply *r = tc_call(c, "acquire", "lock:s", "x");

	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	ck_assert_int_eq(r->err, 2);
	/* The connection stays usable. */
	tc_hello(c, "late");
	tc_close(c);
}
END_TEST

START_TEST(name_in_use)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "same");
	r = tc_call(b, "hello", "proto:i client:s", 1LL, "same");
	ck_assert_str_eq(reply_errname(r), "NAME_IN_USE");
	ck_assert(strstr(reply_errmsg(r), "same") != NULL);
	r = tc_call(a, "hello", "proto:i client:s", 1LL, "again");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(unsupported_protocol)
{
	struct tc *c = tc_connect(&d);
	struct reply *r = tc_call(c, "hello", "proto:i", 2LL);

	ck_assert_str_eq(reply_errname(r), "UNSUPPORTED");
	r = tc_call(c, "hello", NULL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(c);
}
END_TEST

START_TEST(handoff_on_release)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t t1;
	uint32_t id;

	tc_hello(a, "a");
	tc_hello(b, "b");
	r = tc_call(a, "acquire", "lock:s", "x");
	t1 = reply_u64(r, "token");
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	ck_assert_uint_gt(reply_u64(r, "valid_ms"), 0);
	id = tc_send(b, "acquire", "lock:s timeout_ms:i", "x", -1LL);
	ck_assert_ptr_null(tc_wait(b, id, 200));
	r = tc_call(a, "release", "lock:s", "x");
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_gt(reply_u64(r, "token"), t1);
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(try_and_timeout)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t start;

	tc_hello(a, "holder");
	tc_hello(b, "b");
	tc_call(a, "acquire", "lock:s", "x");
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "x", 0LL);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	ck_assert_int_eq(r->err, 4);
	ck_assert(strstr(reply_errmsg(r), "holder") != NULL);
	start = mono_ms();
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "x", 300LL);
	ck_assert_str_eq(reply_errname(r), "TIMEOUT");
	/* Not before the timeout: the lock was never free. */
	ck_assert_uint_ge(mono_ms() - start, 250);
	/* The timed-out waiter left the queue. */
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(replies_out_of_order)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint32_t acq, ping;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_call(a, "acquire", "lock:s", "x");
	acq = tc_send(b, "acquire", "lock:s", "x");
	ping = tc_send(b, "ping", NULL);
	r = tc_next(b, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->msgid, ping);
	/* Cancel the waiting acquire: it is answered CANCELLED. */
	r = tc_call(b, "cancel", "id:i", (long long)acq);
	ck_assert(reply_bool(r, "cancelled"));
	r = tc_wait(b, acq, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "CANCELLED");
	r = tc_call(b, "cancel", "id:i", (long long)acq);
	ck_assert(!reply_bool(r, "cancelled"));
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(rlock_over_the_wire)
{
	struct tc *a = tc_connect(&d);
	struct reply *r;
	uint64_t t;

	tc_hello(a, "a");
	r = tc_call(a, "acquire", "lock:s kind:s", "r", "rlock");
	t = reply_u64(r, "token");
	r = tc_call(a, "acquire", "lock:s kind:s", "r", "rlock");
	ck_assert_uint_eq(reply_u64(r, "count"), 2);
	ck_assert_uint_eq(reply_u64(r, "token"), t);
	r = tc_call(a, "acquire", "lock:s", "r");
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	r = tc_call(a, "release", "lock:s", "r");
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	r = tc_call(a, "release", "lock:s", "r");
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	r = tc_call(a, "release", "lock:s", "r");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	r = tc_call(a, "acquire", "lock:s kind:s", "r", "semaphore");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(a);
}
END_TEST

START_TEST(mutex_errors)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_call(a, "acquire", "lock:s", "m");
	r = tc_call(a, "acquire", "lock:s", "m");
	ck_assert_str_eq(reply_errname(r), "ALREADY_HELD");
	r = tc_call(b, "release", "lock:s", "m");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	r = tc_call(b, "acquire", "lock:s kind:s", "m", "rlock");
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	tc_close(a);
	tc_close(b);
}
END_TEST

/*
 * A release that names its hold by token frees that hold only: one meant
 * for an older hold of the name is answered NOT_HELD and changes nothing.
 */
START_TEST(release_with_token_names_the_hold)
{
	struct tc *a = tc_connect(&d);
	struct reply *r;
	uint64_t t;

	tc_hello(a, "a");
	r = tc_call(a, "acquire", "lock:s", "m");
	t = reply_u64(r, "token");
	r = tc_call(a, "release", "lock:s token:i", "m", (long long)t + 1);
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "token"));
	r = tc_call(a, "check", "lock:s token:i", "m", (long long)t);
	ck_assert(reply_bool(r, "held"));
	r = tc_call(a, "release", "lock:s token:s", "m", "x");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "release", "lock:s token:i", "m", (long long)t);
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	r = tc_call(a, "release", "lock:s token:i", "m", (long long)t);
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	/* An rlock's levels share one token. */
	r = tc_call(a, "acquire", "lock:s kind:s", "r", "rlock");
	t = reply_u64(r, "token");
	tc_call(a, "acquire", "lock:s kind:s", "r", "rlock");
	r = tc_call(a, "release", "lock:s token:i", "r", (long long)t);
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	r = tc_call(a, "release", "lock:s token:n", "r");
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	tc_close(a);
}
END_TEST

START_TEST(shared_holders)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *c = tc_connect(&d);
	struct reply *r;
	uint32_t id;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_hello(c, "c");
	r = tc_call(a, "acquire", "lock:s mode:s", "s", "shared");
	ck_assert_int_eq(r->err, 0);
	r = tc_call(b, "acquire", "lock:s mode:s", "s", "shared");
	ck_assert_int_eq(r->err, 0);
	id = tc_send(c, "acquire", "lock:s mode:s", "s", "exclusive");
	ck_assert_ptr_null(tc_wait(c, id, 100));
	tc_call(a, "release", "lock:s", "s");
	ck_assert_ptr_null(tc_wait(c, id, 100));
	tc_call(b, "release", "lock:s", "s");
	r = tc_wait(c, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

START_TEST(check_token)
{
	struct tc *a = tc_connect(&d), *v = tc_connect(&d);
	struct reply *r;
	uint64_t t;

	tc_hello(a, "holder");
	tc_hello(v, "resource");
	t = reply_u64(tc_call(a, "acquire", "lock:s", "db"), "token");
	r = tc_call(v, "check", "lock:s token:i", "db", (long long)t);
	ck_assert(reply_bool(r, "held"));
	ck_assert_str_eq(reply_str(r, "client"), "holder");
	r = tc_call(v, "check", "lock:s token:i", "db", (long long)t - 1);
	ck_assert(!reply_bool(r, "held"));
	tc_call(a, "release", "lock:s", "db");
	r = tc_call(v, "check", "lock:s token:i", "db", (long long)t);
	ck_assert(!reply_bool(r, "held"));
	r = tc_call(v, "check", "lock:s", "db");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(a);
	tc_close(v);
}
END_TEST

START_TEST(client_reset_and_bye)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_call(a, "acquire", "lock:s", "1");
	tc_call(a, "acquire", "lock:s", "2");
	r = tc_call(a, "reset", NULL);
	ck_assert_uint_eq(reply_u64(r, "released"), 2);
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "1", 0LL);
	ck_assert_int_eq(r->err, 0);
	tc_call(a, "acquire", "lock:s", "3");
	r = tc_call(a, "bye", NULL);
	ck_assert_int_eq(r->err, 0);
	ck_assert(tc_closed(a, 5000));
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "3", 0LL);
	ck_assert_int_eq(r->err, 0);
	/* The name is free again. */
	tc_close(a);
	a = tc_connect(&d);
	tc_hello(a, "a");
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(tcp_listener)
{
	struct dlmd_proc t;
	struct tc *c;
	struct reply *r;

	dlmd_start_tcp(&t, NULL);
	c = tc_connect_tcp(t.port);
	tc_hello(c, "over-tcp");
	r = tc_call(c, "acquire", "lock:s", "x");
	ck_assert_int_eq(r->err, 0);
	tc_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(tokens_grow_across_restarts)
{
	struct dlmd_proc t;
	struct tc *c;
	uint64_t t1, t2;

	dlmd_start(&t, NULL);
	c = tc_connect(&t);
	tc_hello(c, "x");
	t1 = reply_u64(tc_call(c, "acquire", "lock:s", "x"), "token");
	tc_close(c);
	dlmd_stop_clean(&t);
	dlmd_start(&t, NULL);
	c = tc_connect(&t);
	tc_hello(c, "x");
	t2 = reply_u64(tc_call(c, "acquire", "lock:s", "x"), "token");
	ck_assert_uint_gt(t2, t1);
	tc_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

/* A child process that takes lock and then stops doing anything. */
static pid_t
spawn_holder(const char *lock, long long lease_ms, long long linger_ms)
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
		r = tc_call(c, "hello", "proto:i client:s lease_ms:i "
		    "linger_ms:i", 1LL, "child", lease_ms, linger_ms);
		if (r->err != 0)
			_exit(1);
		r = tc_call(c, "acquire", "lock:s", lock);
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

START_TEST(sigkill_releases_at_once)
{
	struct tc *b = tc_connect(&d);
	struct reply *r;
	pid_t pid = spawn_holder("k", 60000, 0);
	uint32_t id;

	tc_hello(b, "waiter");
	id = tc_send(b, "acquire", "lock:s", "k");
	ck_assert_ptr_null(tc_wait(b, id, 200));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* The kernel closed the socket: no lease has to run out. */
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(b);
}
END_TEST

START_TEST(sigstop_loses_after_lease)
{
	struct tc *b = tc_connect(&d);
	struct reply *r;
	pid_t pid = spawn_holder("s", 600, 0);
	uint64_t start = mono_ms();
	uint32_t id;

	kill(pid, SIGSTOP);
	tc_hello(b, "waiter");
	id = tc_send(b, "acquire", "lock:s", "s");
	r = tc_wait(b, id, 10000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	/* Not granted while the stopped holder's lease could still hold. */
	ck_assert_uint_ge(mono_ms() - start, 500);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tc_close(b);
}
END_TEST

START_TEST(silent_holder_told_lost_expired)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint64_t t;
	uint32_t id;

	r = tc_call(a, "hello", "proto:i client:s lease_ms:i", 1LL, "quiet",
	    300LL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 300);
	t = reply_u64(tc_call(a, "acquire", "lock:s", "q"), "token");
	tc_hello(b, "b");
	id = tc_send(b, "acquire", "lock:s", "q");
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(reply_str(r, "lock"), "q");
	ck_assert_uint_eq(reply_u64(r, "token"), t);
	ck_assert_str_eq(reply_str(r, "reason"), "expired");
	ck_assert(tc_closed(a, 5000));
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(pings_keep_the_lease)
{
	struct tc *a = tc_connect(&d);
	struct reply *r;

	tc_call(a, "hello", "proto:i client:s lease_ms:i", 1LL, "busy", 300LL);
	tc_call(a, "acquire", "lock:s", "p");
	for (int i = 0; i < 10; i++) {
		sleep_ms(100);
		tc_call(a, "ping", NULL);
	}
	r = tc_call(a, "release", "lock:s", "p");
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
}
END_TEST

START_TEST(linger_and_resume)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	char secret[64];
	uint64_t sid, t;

	r = tc_call(a, "hello", "proto:i client:s linger_ms:i", 1LL, "ling",
	    5000LL);
	ck_assert_uint_eq(reply_u64(r, "linger_ms"), 5000);
	sid = reply_u64(r, "session");
	snprintf(secret, sizeof secret, "%s", reply_str(r, "secret"));
	t = reply_u64(tc_call(a, "acquire", "lock:s", "l"), "token");
	tc_close(a);

	tc_hello(b, "b");
	sleep_ms(100);
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "l", 0LL);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	r = tc_call(b, "clients", "prefix:s", "ling");
	ck_assert(!mpr_get(&reply_get(r, "clients")->via.array.ptr[0],
	    "connected")->via.boolean);

	/* Without the secret the name is taken. */
	a = tc_connect(&d);
	r = tc_call(a, "hello", "proto:i client:s", 1LL, "ling");
	ck_assert_str_eq(reply_errname(r), "NAME_IN_USE");
	r = tc_call(a, "hello", "proto:i client:s resume:s", 1LL, "ling",
	    "0123456789abcdef0123456789abcdef");
	ck_assert_str_eq(reply_errname(r), "NAME_IN_USE");
	r = tc_call(a, "hello", "proto:i client:s resume:s", 1LL, "ling",
	    secret);
	ck_assert_int_eq(r->err, 0);
	ck_assert(reply_bool(r, "resumed"));
	ck_assert_uint_eq(reply_u64(r, "session"), sid);
	ck_assert_uint_eq(reply_u64(r, "linger_ms"), 5000);
	r = tc_call(b, "check", "lock:s token:i", "l", (long long)t);
	ck_assert(reply_bool(r, "held"));
	r = tc_call(a, "release", "lock:s", "l");
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(linger_runs_out)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	uint32_t id, waiting;

	tc_call(a, "hello", "proto:i client:s linger_ms:i", 1LL, "brief",
	    400LL);
	tc_call(a, "acquire", "lock:s", "l");
	tc_hello(b, "b");
	tc_call(b, "acquire", "lock:s", "other");
	/* A's pending acquire is cancelled when its connection goes. */
	waiting = tc_send(a, "acquire", "lock:s", "other");
	ck_assert_ptr_null(tc_wait(a, waiting, 100));
	tc_close(a);
	id = tc_send(b, "acquire", "lock:s", "l");
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(b, "lock", "lock:s", "other");
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 0);
	r = tc_call(b, "hello", "proto:i client:s", 1LL, "brief");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(b);
	b = tc_connect(&d);
	r = tc_call(b, "hello", "proto:i client:s resume:s", 1LL, "brief",
	    "0123");
	ck_assert_int_eq(r->err, 0);
	ck_assert(!reply_bool(r, "resumed"));
	tc_close(b);
}
END_TEST

START_TEST(resume_takes_over_live_connection)
{
	struct tc *a = tc_connect(&d), *a2 = tc_connect(&d);
	struct reply *r;
	char secret[64];
	uint32_t id;

	r = tc_hello(a, "moving");
	snprintf(secret, sizeof secret, "%s", reply_str(r, "secret"));
	tc_call(a, "acquire", "lock:s", "held");
	r = tc_call(a2, "hello", "proto:i client:s resume:s", 1LL, "moving",
	    secret);
	ck_assert(reply_bool(r, "resumed"));
	ck_assert(tc_closed(a, 5000));
	id = tc_send(a2, "release", "lock:s", "held");
	r = tc_wait(a2, id, 5000);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(a2);
}
END_TEST

static Suite *
core_suite(void)
{
	Suite *s = suite_create("dlmd-core");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, hello_and_ping);
	tcase_add_test(tc, generated_names_are_unique);
	tcase_add_test(tc, request_before_hello);
	tcase_add_test(tc, name_in_use);
	tcase_add_test(tc, unsupported_protocol);
	tcase_add_test(tc, handoff_on_release);
	tcase_add_test(tc, try_and_timeout);
	tcase_add_test(tc, replies_out_of_order);
	tcase_add_test(tc, rlock_over_the_wire);
	tcase_add_test(tc, mutex_errors);
	tcase_add_test(tc, release_with_token_names_the_hold);
	tcase_add_test(tc, shared_holders);
	tcase_add_test(tc, check_token);
	tcase_add_test(tc, client_reset_and_bye);
	suite_add_tcase(s, tc);

	tc = tcase_create("restarts");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tcp_listener);
	tcase_add_test(tc, tokens_grow_across_restarts);
	suite_add_tcase(s, tc);

	tc = tcase_create("sessions");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sigkill_releases_at_once);
	tcase_add_test(tc, sigstop_loses_after_lease);
	tcase_add_test(tc, silent_holder_told_lost_expired);
	tcase_add_test(tc, pings_keep_the_lease);
	tcase_add_test(tc, linger_and_resume);
	tcase_add_test(tc, linger_runs_out);
	tcase_add_test(tc, resume_takes_over_live_connection);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(core_suite());
}
