/*
 * Counting semaphores in dlmd, over raw MessagePack: grants up to the
 * capacity, strict FIFO, partial releases, listings, hostile values, and
 * permits coming back when a holder dies, lapses or is forced out.
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

/* A connection with a session named name. */
static struct tc *
client(const char *name)
{
	struct tc *c = tc_connect(&d);

	tc_hello(c, name);
	return c;
}

/* acquire permits of semaphore lock of capacity cap, waiting timeout. */
static uint32_t
sem_send(struct tc *c, const char *lock, long long cap, long long permits,
    long long timeout)
{
	return tc_send(c, "acquire", "lock:s kind:s capacity:i permits:i "
	    "timeout_ms:i", lock, "semaphore", cap, permits, timeout);
}

static struct reply *
sem_call(struct tc *c, const char *lock, long long cap, long long permits,
    long long timeout)
{
	struct reply *r = tc_wait(c, sem_send(c, lock, cap, permits, timeout),
	    10000);

	ck_assert_ptr_nonnull(r);
	return r;
}

/* A grant of permits: token > 0, count 1, the permits said. */
static uint64_t
granted(const struct reply *r, uint64_t permits)
{
	ck_assert_msg(r != NULL, "no grant");
	ck_assert_msg(r->err == 0, "not granted: %s %s", reply_errname(r),
	    reply_errmsg(r));
	ck_assert_uint_eq(reply_u64(r, "permits"), permits);
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	ck_assert_uint_gt(reply_u64(r, "valid_ms"), 0);
	ck_assert_uint_gt(reply_u64(r, "token"), 0);
	return reply_u64(r, "token");
}

START_TEST(grants_up_to_capacity)
{
	struct tc *a = client("a"), *b = client("b"), *c = client("c");
	struct reply *r;
	uint64_t ta, tb, tc_;
	uint32_t id;

	ta = granted(sem_call(a, "pool", 2, 1, 0), 1);
	/* permits left out means one. */
	r = tc_call(b, "acquire", "lock:s kind:s capacity:i timeout_ms:i",
	    "pool", "semaphore", 2LL, 0LL);
	tb = granted(r, 1);
	ck_assert_uint_gt(tb, ta);
	r = sem_call(c, "pool", 2, 1, 0);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "2 of its 2 permits"));
	id = sem_send(c, "pool", 2, 1, -1);
	ck_assert_ptr_null(tc_wait(c, id, 200));
	r = tc_call(a, "release", "lock:s", "pool");
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	ck_assert_uint_eq(reply_u64(r, "permits"), 0);
	tc_ = granted(tc_wait(c, id, 5000), 1);
	ck_assert_uint_gt(tc_, tb);
	/* A semaphore's token is checked like any other. */
	r = tc_call(a, "check", "lock:s token:i", "pool", (long long)tc_);
	ck_assert(reply_bool(r, "held"));
	ck_assert_str_eq(reply_str(r, "client"), "c");
	r = tc_call(a, "check", "lock:s token:i", "pool", (long long)ta);
	ck_assert(!reply_bool(r, "held"));
	r = tc_call(a, "release", "lock:s", "pool");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

/* A large request at the head is not passed by small ones behind it. */
START_TEST(fifo_head_not_passed)
{
	struct tc *a = client("a"), *b = client("b"), *c = client("c");
	struct reply *r;
	uint64_t ta;
	uint32_t ib, ic;

	ta = granted(sem_call(a, "s", 3, 2, 0), 2);
	ib = sem_send(b, "s", 3, 2, -1);
	ck_assert_ptr_null(tc_wait(b, ib, 100));
	/* One permit is free, yet it is B's turn. */
	r = sem_call(c, "s", 3, 1, 0);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	ic = sem_send(c, "s", 3, 1, 5000);
	ck_assert_ptr_null(tc_wait(c, ic, 100));
	/* A gives one back: B's two fit now, before C's one. */
	r = tc_call(a, "release", "lock:s permits:i", "s", 1LL);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	ck_assert_uint_eq(reply_u64(r, "permits"), 1);
	granted(tc_wait(b, ib, 5000), 2);
	/* 1 + 2 = 3: C's one does not fit until A is gone. */
	ck_assert_ptr_null(tc_wait(c, ic, 200));
	r = tc_call(a, "check", "lock:s token:i", "s", (long long)ta);
	ck_assert(reply_bool(r, "held"));
	r = tc_call(a, "release", "lock:s", "s");
	ck_assert_uint_eq(reply_u64(r, "permits"), 0);
	granted(tc_wait(c, ic, 5000), 1);
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

START_TEST(capacity_and_kind_mismatch)
{
	struct tc *a = client("a"), *b = client("b");
	struct reply *r;

	granted(sem_call(a, "s", 3, 1, 0), 1);
	r = sem_call(b, "s", 4, 1, -1);
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r),
	    "semaphore of capacity 3"));
	/* An older client that asks for a mutex of the same name. */
	r = tc_call(b, "acquire", "lock:s timeout_ms:i", "s", 0LL);
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	r = tc_call(b, "acquire", "lock:s kind:s", "s", "rlock");
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "m")->err, 0);
	r = sem_call(b, "m", 1, 1, -1);
	ck_assert_str_eq(reply_errname(r), "KIND_MISMATCH");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "mutex"));
	/* A second acquire by the holder: refused, with what to do. */
	r = sem_call(a, "s", 3, 2, -1);
	ck_assert_str_eq(reply_errname(r), "ALREADY_HELD");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "release"));
	tc_close(a);
	tc_close(b);
}
END_TEST

/* Each bad value is BAD_REQUEST, and leaves nothing behind. */
START_TEST(hostile_values)
{
	struct tc *a = client("a");
	struct reply *r;

	r = tc_call(a, "acquire", "lock:s kind:s", "h", "semaphore");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "capacity"));
	r = tc_call(a, "acquire", "lock:s kind:s capacity:n", "h",
	    "semaphore");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s kind:s", "h", "semaphores");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", 0, 1, 0)),
	    "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", -1, 1, 0)),
	    "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", 2147483648LL, 1, 0)),
	    "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", 3, 0, 0)),
	    "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", 3, -2, 0)),
	    "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(sem_call(a, "h", 3, 2147483648LL, 0)),
	    "BAD_REQUEST");
	r = sem_call(a, "h", 3, 4, 0);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "capacity 3"));
	r = tc_call(a, "acquire", "lock:s kind:s capacity:s", "h",
	    "semaphore", "3");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s kind:s capacity:i permits:b", "h",
	    "semaphore", 3LL, 1);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s kind:s capacity:i mode:s", "h",
	    "semaphore", 3LL, "shared");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* Capacity and permits mean nothing to a mutex: refused. */
	r = tc_call(a, "acquire", "lock:s capacity:i", "h", 3LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s kind:s permits:i", "h", "rlock",
	    1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_str_eq(reply_errname(tc_call(a, "lock", "lock:s", "h")),
	    "NOT_FOUND");
	/* The largest capacity is fine. */
	granted(sem_call(a, "h", 2147483647LL, 2147483647LL, 0), 2147483647);
	r = tc_call(a, "lock", "lock:s", "h");
	ck_assert_uint_eq(reply_u64(r, "capacity"), 2147483647);
	ck_assert_uint_eq(reply_u64(r, "in_use"), 2147483647);
	/* Releases: permits 0, too many, of the wrong type, of a mutex. */
	r = tc_call(a, "release", "lock:s permits:i", "h", 0LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "release", "lock:s permits:i", "h", 2147483648LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "release", "lock:s permits:s", "h", "1");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	granted(sem_call(a, "small", 5, 2, 0), 2);
	r = tc_call(a, "release", "lock:s permits:i", "small", 3LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "holds 2 permits"));
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "m")->err, 0);
	r = tc_call(a, "release", "lock:s permits:i", "m", 1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "release", "lock:s permits:i", "nothing", 1LL);
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	/* Nothing changed: the holds are as they were. */
	r = tc_call(a, "lock", "lock:s", "small");
	ck_assert_uint_eq(reply_u64(r, "in_use"), 2);
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "m")->err, 0);
	ck_assert_int_eq(tc_call(a, "release", "lock:s permits:i", "small",
	    2LL)->err, 0);
	ck_assert_str_eq(reply_errname(tc_call(a, "lock", "lock:s", "small")),
	    "NOT_FOUND");
	tc_close(a);
}
END_TEST

/* lock and locks: capacity, permits in use, each holder's and waiter's. */
START_TEST(listings_show_permits)
{
	struct tc *a = client("a"), *b = client("b"), *c = client("c");
	const msgpack_object *holders, *waiters, *locks;
	struct reply *r;
	uint32_t id;

	granted(sem_call(a, "s", 5, 3, 0), 3);
	granted(sem_call(b, "s", 5, 1, 0), 1);
	id = sem_send(c, "s", 5, 2, -1);
	ck_assert_ptr_null(tc_wait(c, id, 100));
	r = tc_call(a, "lock", "lock:s", "s");
	ck_assert_str_eq(reply_str(r, "kind"), "semaphore");
	ck_assert_uint_eq(reply_u64(r, "capacity"), 5);
	ck_assert_uint_eq(reply_u64(r, "in_use"), 4);
	ck_assert_uint_eq(reply_u64(r, "nholders"), 2);
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 1);
	holders = reply_get(r, "holders");
	ck_assert_uint_eq(holders->via.array.size, 2);
	ck_assert_str_eq(obj_str(&holders->via.array.ptr[0], "client"), "a");
	ck_assert_uint_eq(obj_u64(&holders->via.array.ptr[0], "permits"), 3);
	ck_assert_str_eq(obj_str(&holders->via.array.ptr[1], "client"), "b");
	ck_assert_uint_eq(obj_u64(&holders->via.array.ptr[1], "permits"), 1);
	waiters = reply_get(r, "waiters");
	ck_assert_str_eq(obj_str(&waiters->via.array.ptr[0], "client"), "c");
	ck_assert_uint_eq(obj_u64(&waiters->via.array.ptr[0], "permits"), 2);
	/* A partial release shows. */
	ck_assert_int_eq(tc_call(a, "release", "lock:s permits:i", "s",
	    1LL)->err, 0);
	granted(tc_wait(c, id, 5000), 2);
	r = tc_call(a, "locks", "prefix:s", "s");
	locks = reply_get(r, "locks");
	ck_assert_uint_eq(locks->via.array.size, 1);
	ck_assert_uint_eq(obj_u64(&locks->via.array.ptr[0], "in_use"), 5);
	ck_assert_uint_eq(obj_u64(&locks->via.array.ptr[0], "capacity"), 5);
	holders = mpr_get(&locks->via.array.ptr[0], "holders");
	ck_assert_uint_eq(holders->via.array.size, 3);
	ck_assert_uint_eq(obj_u64(&holders->via.array.ptr[0], "permits"), 2);
	/* A mutex's entry has none of the semaphore's keys. */
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "m")->err, 0);
	r = tc_call(a, "lock", "lock:s", "m");
	ck_assert_ptr_null(reply_get(r, "capacity"));
	ck_assert_ptr_null(mpr_get(&reply_get(r, "holders")->via.array.ptr[0],
	    "permits"));
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

/* A child that takes permits of a semaphore and then does nothing. */
static pid_t
spawn_holder(const char *lock, long long cap, long long permits,
    long long lease_ms)
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
		r = tc_call(c, "hello", "proto:i client:s lease_ms:i", 1LL,
		    "child", lease_ms);
		if (r->err != 0)
			_exit(1);
		if (sem_call(c, lock, cap, permits, 0)->err != 0)
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

/* The kernel closes a killed holder's socket: its permits come back. */
START_TEST(holder_killed_gives_permits_back)
{
	struct tc *b = client("b"), *c = client("c");
	pid_t pid = spawn_holder("k", 3, 3, 60000);
	uint32_t ib, ic;

	ib = sem_send(b, "k", 3, 2, -1);
	ic = sem_send(c, "k", 3, 1, -1);
	ck_assert_ptr_null(tc_wait(b, ib, 200));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	granted(tc_wait(b, ib, 5000), 2);
	granted(tc_wait(c, ic, 5000), 1);
	tc_close(b);
	tc_close(c);
}
END_TEST

/* A holder that closes its connection without a release. */
START_TEST(holder_disconnect_gives_permits_back)
{
	struct tc *a = client("a"), *b = client("b");
	uint32_t id;

	granted(sem_call(a, "d", 2, 2, 0), 2);
	id = sem_send(b, "d", 2, 2, -1);
	ck_assert_ptr_null(tc_wait(b, id, 100));
	tc_close(a);
	granted(tc_wait(b, id, 5000), 2);
	tc_close(b);
}
END_TEST

/* A silent holder loses its permits when its lease runs out. */
START_TEST(lease_expiry_gives_permits_back)
{
	struct tc *a = tc_connect(&d), *b = client("b");
	struct reply *r;
	uint64_t t, start;
	uint32_t id;

	r = tc_call(a, "hello", "proto:i client:s lease_ms:i", 1LL, "quiet",
	    300LL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 300);
	t = granted(sem_call(a, "e", 4, 4, 0), 4);
	start = mono_ms();
	id = sem_send(b, "e", 4, 1, -1);
	r = tc_wait(b, id, 5000);
	granted(r, 1);
	ck_assert_uint_ge(mono_ms() - start, 200);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_uint_eq(reply_u64(r, "token"), t);
	ck_assert_str_eq(reply_str(r, "reason"), "expired");
	tc_close(a);
	tc_close(b);
}
END_TEST

/* force_release from one holder or all; the waiters that fit go. */
START_TEST(force_release_semaphore)
{
	struct tc *a = client("a"), *b = client("b"), *c = client("c"),
	    *op = client("op");
	struct reply *r;
	uint64_t ta, tb;
	uint32_t id;

	ta = granted(sem_call(a, "f", 3, 2, 0), 2);
	tb = granted(sem_call(b, "f", 3, 1, 0), 1);
	id = sem_send(c, "f", 3, 3, -1);
	r = tc_call(op, "force_release", "lock:s client:s", "f", "a");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(reply_u64(r, "token"), ta);
	ck_assert_str_eq(reply_str(r, "reason"), "forced");
	/* B's one permit is still in use: C's three do not fit. */
	ck_assert_ptr_null(tc_wait(c, id, 200));
	r = tc_call(op, "lock", "lock:s", "f");
	ck_assert_uint_eq(reply_u64(r, "in_use"), 1);
	r = tc_call(op, "force_release", "lock:s", "f");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_wait_notify(b, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(reply_u64(r, "token"), tb);
	granted(tc_wait(c, id, 5000), 3);
	r = tc_call(a, "release", "lock:s", "f");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	tc_close(a);
	tc_close(b);
	tc_close(c);
	tc_close(op);
}
END_TEST

/* reset and reset_client give every permit of the session back. */
START_TEST(reset_gives_permits_back)
{
	struct tc *a = client("a"), *b = client("b"), *op = client("op");
	struct reply *r;
	uint32_t id;

	granted(sem_call(a, "r", 2, 2, 0), 2);
	id = sem_send(b, "r", 2, 1, -1);
	r = tc_call(a, "reset", NULL);
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	granted(tc_wait(b, id, 5000), 1);
	granted(sem_call(a, "r", 2, 1, 0), 1);
	r = tc_call(op, "reset_client", "client:s", "b");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_call(op, "lock", "lock:s", "r");
	ck_assert_uint_eq(reply_u64(r, "in_use"), 1);
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

static Suite *
semaphore_suite(void)
{
	Suite *s = suite_create("dlmd_semaphore");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, grants_up_to_capacity);
	tcase_add_test(tc, fifo_head_not_passed);
	tcase_add_test(tc, capacity_and_kind_mismatch);
	tcase_add_test(tc, hostile_values);
	tcase_add_test(tc, listings_show_permits);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, holder_killed_gives_permits_back);
	tcase_add_test(tc, holder_disconnect_gives_permits_back);
	tcase_add_test(tc, lease_expiry_gives_permits_back);
	tcase_add_test(tc, force_release_semaphore);
	tcase_add_test(tc, reset_gives_permits_back);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(semaphore_suite());
}
