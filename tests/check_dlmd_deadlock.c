/*
 * Deadlock detection and conversion, against a real dlmd over raw
 * MessagePack: the DEADLOCK error and its cycle, the opt-out, the stats
 * counter; convert's downgrade and upgrade, its place ahead of waiters,
 * its timeouts, cancel, tokens and listings, and hostile params.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static struct tc *
session(const char *name)
{
	struct tc *c = tc_connect(&d);

	tc_hello(c, name);
	return c;
}

/* The error map's cycle, checked for shape: an array of n maps. */
static const msgpack_object *
cycle_of(const struct reply *r, uint32_t n)
{
	const msgpack_object *cy;

	ck_assert_str_eq(reply_errname(r), "DEADLOCK");
	ck_assert_int_eq(r->err, 14);
	ck_assert_ptr_nonnull(r->error);
	ck_assert_int_eq(r->error->type, MSGPACK_OBJECT_MAP);
	ck_assert_uint_eq(r->error->via.map.size, 4);
	cy = mpr_get(r->error, "cycle");
	ck_assert_ptr_nonnull(cy);
	ck_assert_int_eq(cy->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(cy->via.array.size, n);
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_int_eq(cy->via.array.ptr[i].type, MSGPACK_OBJECT_MAP);
		ck_assert_uint_eq(cy->via.array.ptr[i].via.map.size, 3);
	}
	return cy;
}

/* Step i of a cycle is {client, lock, mode}. */
static void
step_is(const msgpack_object *cy, uint32_t i, const char *client,
    const char *lock, const char *mode)
{
	const msgpack_object *m = &cy->via.array.ptr[i];

	ck_assert_str_eq(obj_str(m, "client"), client);
	ck_assert_str_eq(obj_str(m, "lock"), lock);
	ck_assert_str_eq(obj_str(m, "mode"), mode);
}

static uint64_t
stat_of(struct tc *c, const char *key)
{
	struct reply *r = tc_call(c, "stats", NULL);

	ck_assert_int_eq(r->err, 0);
	ck_assert_ptr_nonnull(reply_get(r, key));
	return reply_u64(r, key);
}

START_TEST(deadlock_two_sessions)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	const msgpack_object *cy;
	uint32_t wa;

	ck_assert_uint_eq(stat_of(a, "deadlocks"), 0);
	tc_call(a, "acquire", "lock:s", "x");
	tc_call(b, "acquire", "lock:s", "y");
	wa = tc_send(a, "acquire", "lock:s", "y");
	ck_assert_ptr_null(tc_wait(a, wa, 100));
	r = tc_call(b, "acquire", "lock:s", "x");
	cy = cycle_of(r, 2);
	step_is(cy, 0, "b", "x", "exclusive");
	step_is(cy, 1, "a", "y", "exclusive");
	/* The message says the cycle too, for people. */
	ck_assert_msg(strstr(reply_errmsg(r), "'x'") != NULL &&
	    strstr(reply_errmsg(r), "'y'") != NULL &&
	    strstr(reply_errmsg(r), " a") != NULL, "message: %s",
	    reply_errmsg(r));
	ck_assert_uint_eq(stat_of(b, "deadlocks"), 1);
	/* The other keeps waiting, and is served when y goes. */
	ck_assert_ptr_null(tc_wait(a, wa, 100));
	r = tc_call(b, "release", "lock:s", "y");
	ck_assert_int_eq(r->err, 0);
	r = tc_wait(a, wa, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

/* Three sessions, shared and exclusive, through a waiter ahead. */
START_TEST(deadlock_three_sessions_cycle_shape)
{
	struct tc *a = session("a"), *b = session("b"), *c = session("c");
	struct tc *e = session("e");
	struct reply *r;
	const msgpack_object *cy;
	uint32_t wa, wb, we;

	tc_call(a, "acquire", "lock:s mode:s", "x", "shared");
	tc_call(b, "acquire", "lock:s", "y");
	tc_call(c, "acquire", "lock:s kind:s", "z", "rlock");
	/* e waits for x exclusive: ahead of anyone who comes later. */
	we = tc_send(e, "acquire", "lock:s", "x");
	wa = tc_send(a, "acquire", "lock:s mode:s", "y", "shared");
	wb = tc_send(b, "acquire", "lock:s kind:s", "z", "rlock");
	ck_assert_ptr_null(tc_wait(b, wb, 100));
	/* c shared on x: behind e (exclusive), who waits for a. */
	r = tc_call(c, "acquire", "lock:s mode:s", "x", "shared");
	cy = cycle_of(r, 4);
	step_is(cy, 0, "c", "x", "shared");
	step_is(cy, 1, "e", "x", "exclusive");
	step_is(cy, 2, "a", "y", "shared");
	step_is(cy, 3, "b", "z", "exclusive");
	ck_assert_ptr_null(tc_wait(a, wa, 50));
	ck_assert_ptr_null(tc_wait(e, we, 50));
	tc_close(a);
	tc_close(b);
	tc_close(c);
	tc_close(e);
}
END_TEST

/* deadlock_check: false waits as before, until its timeout. */
START_TEST(deadlock_opt_out_waits)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	uint32_t wa, wb;

	tc_call(a, "acquire", "lock:s", "x");
	tc_call(b, "acquire", "lock:s", "y");
	wa = tc_send(a, "acquire", "lock:s deadlock_check:b", "y", 0);
	ck_assert_ptr_null(tc_wait(a, wa, 100));
	wb = tc_send(b, "acquire", "lock:s timeout_ms:i deadlock_check:b",
	    "x", 300LL, 0);
	r = tc_wait(b, wb, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "TIMEOUT");
	ck_assert_uint_eq(stat_of(b, "deadlocks"), 0);
	/* true is the default, said out loud. */
	r = tc_call(b, "acquire", "lock:s deadlock_check:b", "x", 1);
	ck_assert_str_eq(reply_errname(r), "DEADLOCK");
	ck_assert_uint_eq(stat_of(b, "deadlocks"), 1);
	/* A wrong type is refused, whatever else the request says. */
	r = tc_call(b, "acquire", "lock:s deadlock_check:s", "q", "no");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(b, "acquire", "lock:s deadlock_check:i", "q", 0LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(a);
	tc_close(b);
}
END_TEST

/* Exclusive to shared: the shared waiters at the head come in. */
START_TEST(convert_down_lets_shared_in)
{
	struct tc *a = session("a"), *b = session("b"), *c = session("c");
	struct tc *e = session("e");
	struct reply *r;
	uint64_t t;
	uint32_t wb, wc, we;

	r = tc_call(a, "acquire", "lock:s", "x");
	t = reply_u64(r, "token");
	wb = tc_send(b, "acquire", "lock:s mode:s", "x", "shared");
	wc = tc_send(c, "acquire", "lock:s mode:s", "x", "shared");
	we = tc_send(e, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, wb, 100));
	r = tc_call(a, "convert", "lock:s mode:s", "x", "shared");
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_eq(reply_u64(r, "token"), t);	/* kept */
	ck_assert_str_eq(reply_str(r, "mode"), "shared");
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	ck_assert_uint_gt(reply_u64(r, "valid_ms"), 0);
	r = tc_wait(b, wb, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_gt(reply_u64(r, "token"), t);
	ck_assert_ptr_nonnull(tc_wait(c, wc, 5000));
	ck_assert_ptr_null(tc_wait(e, we, 100));
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert_str_eq(reply_str(r, "mode"), "shared");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 3);
	/* Its old token still checks: the hold never went. */
	r = tc_call(e, "check", "lock:s token:i", "x", (long long)t);
	ck_assert(reply_bool(r, "held"));
	/* The same mode again: nothing changes. */
	r = tc_call(a, "convert", "lock:s mode:s", "x", "shared");
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_eq(reply_u64(r, "token"), t);
	tc_close(a);
	tc_close(b);
	tc_close(c);
	tc_close(e);
}
END_TEST

/*
 * Shared to exclusive waits for the other sharer, ahead of an exclusive
 * waiter queued before it, and gets a token higher than any before.
 */
START_TEST(convert_up_waits_ahead_of_waiters)
{
	struct tc *a = session("a"), *b = session("b"), *c = session("c");
	struct reply *r;
	const msgpack_object *hs, *ws;
	uint64_t ta, tb, t;
	uint32_t wc, ca;

	ta = reply_u64(tc_call(a, "acquire", "lock:s mode:s", "x", "shared"),
	    "token");
	tb = reply_u64(tc_call(b, "acquire", "lock:s mode:s", "x", "shared"),
	    "token");
	wc = tc_send(c, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(c, wc, 100));
	ca = tc_send(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	/* The listing shows the converting holder, at the queue's head. */
	r = tc_call(c, "lock", "lock:s", "x");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 2);
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 2);
	hs = reply_get(r, "holders");
	ws = reply_get(r, "waiters");
	for (uint32_t i = 0; i < 2; i++) {
		const msgpack_object *h = &hs->via.array.ptr[i];

		if (strcmp(obj_str(h, "client"), "a") == 0)
			ck_assert_str_eq(obj_str(h, "converting"),
			    "exclusive");
		else
			ck_assert_ptr_null(mpr_get(h, "converting"));
	}
	ck_assert_str_eq(obj_str(&ws->via.array.ptr[0], "client"), "a");
	ck_assert_ptr_nonnull(mpr_get(&ws->via.array.ptr[0], "converting"));
	ck_assert_str_eq(obj_str(&ws->via.array.ptr[1], "client"), "c");
	/* a still holds shared meanwhile. */
	r = tc_call(c, "check", "lock:s token:i", "x", (long long)ta);
	ck_assert(reply_bool(r, "held"));
	tc_call(b, "release", "lock:s", "x");
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	t = reply_u64(r, "token");
	ck_assert_uint_gt(t, ta);
	ck_assert_uint_gt(t, tb);
	/* The old shared token no longer checks; c still waits. */
	r = tc_call(b, "check", "lock:s token:i", "x", (long long)ta);
	ck_assert(!reply_bool(r, "held"));
	ck_assert_ptr_null(tc_wait(c, wc, 100));
	/* A release naming the token it was granted with still means it. */
	r = tc_call(a, "release", "lock:s token:i", "x", (long long)ta);
	ck_assert_int_eq(r->err, 0);
	r = tc_wait(c, wc, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_gt(reply_u64(r, "token"), t);
	tc_close(a);
	tc_close(b);
	tc_close(c);
}
END_TEST

/* Alone: at once. An rlock converts its whole depth. */
START_TEST(convert_up_alone_and_rlock_depth)
{
	struct tc *a = session("a");
	struct reply *r;
	uint64_t t;

	tc_call(a, "acquire", "lock:s kind:s mode:s", "x", "rlock", "shared");
	r = tc_call(a, "acquire", "lock:s kind:s mode:s", "x", "rlock",
	    "shared");
	t = reply_u64(r, "token");
	ck_assert_uint_eq(reply_u64(r, "count"), 2);
	r = tc_call(a, "convert", "lock:s mode:s timeout_ms:i", "x",
	    "exclusive", 0LL);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_gt(reply_u64(r, "token"), t);
	ck_assert_uint_eq(reply_u64(r, "count"), 2);
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	tc_close(a);
}
END_TEST

START_TEST(convert_try_timeout_and_cancel)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	uint64_t ta, start;
	uint32_t ca;

	ta = reply_u64(tc_call(a, "acquire", "lock:s mode:s", "x", "shared"),
	    "token");
	tc_call(b, "acquire", "lock:s mode:s", "x", "shared");
	r = tc_call(a, "convert", "lock:s mode:s timeout_ms:i", "x",
	    "exclusive", 0LL);
	ck_assert_str_eq(reply_errname(r), "WOULD_BLOCK");
	start = mono_ms();
	r = tc_call(a, "convert", "lock:s mode:s timeout_ms:i", "x",
	    "exclusive", 200LL);
	ck_assert_str_eq(reply_errname(r), "TIMEOUT");
	ck_assert_uint_ge(mono_ms() - start, 190);
	/* The shared hold is as it was. */
	r = tc_call(b, "check", "lock:s token:i", "x", (long long)ta);
	ck_assert(reply_bool(r, "held"));
	ca = tc_send(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	r = tc_call(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_str_eq(reply_errname(r), "ALREADY_HELD");
	r = tc_call(a, "cancel", "id:i", (long long)ca);
	ck_assert(reply_bool(r, "cancelled"));
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "CANCELLED");
	r = tc_call(b, "check", "lock:s token:i", "x", (long long)ta);
	ck_assert(reply_bool(r, "held"));
	r = tc_call(b, "lock", "lock:s", "x");
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(convert_two_converters_deadlock)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	const msgpack_object *cy;
	uint32_t ca;

	tc_call(a, "acquire", "lock:s mode:s", "x", "shared");
	tc_call(b, "acquire", "lock:s mode:s", "x", "shared");
	ca = tc_send(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	r = tc_call(b, "convert", "lock:s mode:s", "x", "exclusive");
	cy = cycle_of(r, 2);
	step_is(cy, 0, "b", "x", "exclusive");
	step_is(cy, 1, "a", "x", "exclusive");
	ck_assert_uint_eq(stat_of(b, "deadlocks"), 1);
	/* b lets go of its share: a's conversion is done. */
	tc_call(b, "release", "lock:s", "x");
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	tc_close(a);
	tc_close(b);
}
END_TEST

/* The other sharer's session ends: the conversion completes. */
START_TEST(convert_done_when_sharer_goes)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	uint32_t ca;

	tc_call(a, "acquire", "lock:s mode:s", "x", "shared");
	tc_call(b, "acquire", "lock:s mode:s", "x", "shared");
	ca = tc_send(a, "convert", "lock:s mode:s timeout_ms:i", "x",
	    "exclusive", 5000LL);
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	tc_close(b);
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	tc_close(a);
}
END_TEST

/* Revoked while converting: lost, then the convert is answered. */
START_TEST(convert_answered_when_hold_revoked)
{
	struct tc *a = session("a"), *b = session("b"), *op = session("op");
	struct reply *r;
	uint32_t ca;

	tc_call(a, "acquire", "lock:s mode:s", "x", "shared");
	tc_call(b, "acquire", "lock:s mode:s", "x", "shared");
	ca = tc_send(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	r = tc_call(op, "force_release", "lock:s client:s", "x", "a");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "CANCELLED");
	/* Its own release ends it the same way. */
	tc_call(a, "acquire", "lock:s mode:s", "x", "shared");
	ca = tc_send(a, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_ptr_null(tc_wait(a, ca, 100));
	tc_call(a, "release", "lock:s", "x");
	r = tc_wait(a, ca, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "CANCELLED");
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

START_TEST(convert_not_held)
{
	struct tc *a = session("a"), *b = session("b");
	struct reply *r;
	uint64_t t;
	uint32_t wb;

	r = tc_call(a, "convert", "lock:s mode:s", "x", "shared");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	t = reply_u64(tc_call(a, "acquire", "lock:s", "x"), "token");
	/* A waiter holds nothing to convert. */
	wb = tc_send(b, "acquire", "lock:s mode:s", "x", "shared");
	ck_assert_ptr_null(tc_wait(b, wb, 50));
	r = tc_call(b, "convert", "lock:s mode:s", "x", "exclusive");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	/* With a token, only that hold. */
	r = tc_call(a, "convert", "lock:s mode:s token:i", "x", "shared",
	    (long long)t + 1);
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	r = tc_call(a, "convert", "lock:s mode:s token:i", "x", "shared",
	    (long long)t);
	ck_assert_int_eq(r->err, 0);
	ck_assert_ptr_nonnull(tc_wait(b, wb, 5000));
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(convert_hostile_params)
{
	struct tc *a = session("a");
	static const char *const bad[] = {
		"mode:s", "lock:i mode:s", "lock:s", "lock:s mode:i",
		"lock:s mode:s", "lock:s mode:n", "lock:s mode:s timeout_ms:s",
		"lock:s mode:s timeout_ms:i", "lock:s mode:s token:s",
		"lock:s mode:s token:i", "lock:s mode:s token:i",
	};
	struct reply *r;
	char longname[300];

	tc_call(a, "acquire", "lock:s", "x");
	r = tc_call(a, "convert", bad[0], "shared");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[1], 7LL, "shared");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[2], "x");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[3], "x", 1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[4], "x", "upgrade");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[5], "x");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[6], "x", "shared", "soon");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[7], "x", "shared", -2LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[7], "x", "shared", 1LL << 40);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[8], "x", "shared", "1");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[9], "x", "shared", -1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", bad[10], "x", "shared", 0LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "convert", "lock:s mode:s", "", "shared");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	r = tc_call(a, "convert", "lock:s mode:s", longname, "shared");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	/* No params at all. */
	r = tc_call(a, "convert", NULL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* Nothing of that changed the hold. */
	r = tc_call(a, "lock", "lock:s", "x");
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	/* And the session still works. */
	r = tc_call(a, "convert", "lock:s mode:s", "x", "shared");
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
}
END_TEST

/* Before hello, convert is refused like any method needing a session. */
START_TEST(convert_needs_session)
{
	struct tc *c = tc_connect(&d);
	struct reply *r = tc_call(c, "convert", "lock:s mode:s", "x",
	    "shared");

	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	tc_close(c);
}
END_TEST

static Suite *
deadlock_suite(void)
{
	Suite *s = suite_create("dlmd_deadlock");
	TCase *tc = tcase_create("deadlock");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, deadlock_two_sessions);
	tcase_add_test(tc, deadlock_three_sessions_cycle_shape);
	tcase_add_test(tc, deadlock_opt_out_waits);
	suite_add_tcase(s, tc);

	tc = tcase_create("convert");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, convert_down_lets_shared_in);
	tcase_add_test(tc, convert_up_waits_ahead_of_waiters);
	tcase_add_test(tc, convert_up_alone_and_rlock_depth);
	tcase_add_test(tc, convert_try_timeout_and_cancel);
	tcase_add_test(tc, convert_two_converters_deadlock);
	tcase_add_test(tc, convert_done_when_sharer_goes);
	tcase_add_test(tc, convert_answered_when_hold_revoked);
	tcase_add_test(tc, convert_not_held);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, convert_hostile_params);
	tcase_add_test(tc, convert_needs_session);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(deadlock_suite());
}
