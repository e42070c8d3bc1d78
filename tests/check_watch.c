/*
 * Values on holds and watches, over raw MessagePack against a real dlmd:
 * what watch answers, the "changed" notices for every way holders change,
 * unwatch, the limits, and what hostile input gets.
 */
#include "config.h"

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
	dlmd_start(&d, "--lease-min", "100", "--max-watches", "3",
	    (char *)NULL);
}

static void
teardown(void)
{
	dlmd_stop_clean(&d);
}

/* The i-th holder map of a state (a watch result or a notice's params). */
static const msgpack_object *
holder(const msgpack_object *state, uint32_t i)
{
	const msgpack_object *hs = mpr_get(state, "holders");

	ck_assert_ptr_nonnull(hs);
	ck_assert_int_eq(hs->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_lt(i, hs->via.array.size);
	return &hs->via.array.ptr[i];
}

static uint32_t
nholders(const msgpack_object *state)
{
	const msgpack_object *hs = mpr_get(state, "holders");

	ck_assert_ptr_nonnull(hs);
	ck_assert_int_eq(hs->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(obj_u64(state, "nholders"), hs->via.array.size);
	return hs->via.array.size;
}

/* The holder's value as a string copy, or NULL when it has none. */
static const char *
value_of(const msgpack_object *h)
{
	static char buf[2048];
	const msgpack_object *v = mpr_get(h, "value");

	if (v == NULL)
		return NULL;
	ck_assert_int_eq(v->type, MSGPACK_OBJECT_BIN);
	ck_assert_uint_lt(v->via.bin.size, sizeof buf);
	memcpy(buf, v->via.bin.ptr, v->via.bin.size);
	buf[v->via.bin.size] = '\0';
	return buf;
}

/* The next notice on c, which must be "changed" for lock; its state. */
static const msgpack_object *
changed(struct tc *c, const char *lock)
{
	struct reply *r = tc_wait_notify(c, 5000);

	ck_assert_msg(r != NULL, "no notice of a change of %s", lock);
	ck_assert_str_eq(r->method, "changed");
	ck_assert_str_eq(obj_str(r->params, "lock"), lock);
	return r->params;
}

static void
no_notice(struct tc *c)
{
	struct reply *r = tc_wait_notify(c, 200);

	ck_assert_msg(r == NULL, "an unexpected notice: %s",
	    r != NULL ? r->method : "");
}

/* watch's answer is the state; every change of holders is told, once. */
START_TEST(watch_state_and_each_change)
{
	struct tc *w = tc_connect(&d), *a = tc_connect(&d), *b = tc_connect(&d);
	const msgpack_object *st;
	struct reply *r;
	uint64_t ta, tb;
	uint32_t id;

	tc_hello(w, "watcher");
	tc_hello(a, "alpha");
	tc_hello(b, "beta");
	/* A lock that does not exist: no holders. */
	r = tc_call(w, "watch", "lock:s", "L");
	ck_assert_int_eq(r->err, 0);
	ck_assert_str_eq(reply_str(r, "lock"), "L");
	ck_assert_uint_eq(nholders(r->result), 0);
	ck_assert_uint_eq(reply_u64(r, "waiters"), 0);

	/* A grant, with its value. */
	r = tc_call(a, "acquire", "lock:s value:s", "L", "10.0.0.1:80");
	ta = reply_u64(r, "token");
	st = changed(w, "L");
	ck_assert_uint_eq(nholders(st), 1);
	ck_assert_str_eq(obj_str(holder(st, 0), "client"), "alpha");
	ck_assert_uint_eq(obj_u64(holder(st, 0), "token"), ta);
	ck_assert_str_eq(obj_str(holder(st, 0), "mode"), "exclusive");
	ck_assert_str_eq(value_of(holder(st, 0)), "10.0.0.1:80");
	ck_assert_uint_eq(obj_u64(st, "waiters"), 0);

	/* A waiter changes no holder: no notice, but the count shows. */
	id = tc_send(b, "acquire", "lock:s value:y", "L", "b\0b", (size_t)3);
	no_notice(w);
	r = tc_call(w, "watch", "lock:s", "L");	/* watching again: the state */
	ck_assert_uint_eq(reply_u64(r, "waiters"), 1);
	ck_assert_uint_eq(nholders(r->result), 1);

	/* The release and the grant it allows: one notice, the state after. */
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "L")->err, 0);
	st = changed(w, "L");
	ck_assert_uint_eq(nholders(st), 1);
	ck_assert_str_eq(obj_str(holder(st, 0), "client"), "beta");
	ck_assert_uint_eq(obj_u64(st, "waiters"), 0);
	tb = obj_u64(holder(st, 0), "token");
	ck_assert_uint_gt(tb, ta);
	ck_assert_int_eq(memcmp(value_of(holder(st, 0)), "b\0b", 3), 0);
	r = tc_wait(b, id, 5000);
	ck_assert_uint_eq(reply_u64(r, "token"), tb);
	no_notice(w);	/* watched twice, told once */

	/* The lock goes away: told with no holders; the watch stays. */
	ck_assert_int_eq(tc_call(b, "release", "lock:s", "L")->err, 0);
	st = changed(w, "L");
	ck_assert_uint_eq(nholders(st), 0);
	r = tc_call(a, "acquire", "lock:s", "L");
	ck_assert_int_eq(r->err, 0);
	st = changed(w, "L");
	ck_assert_str_eq(obj_str(holder(st, 0), "client"), "alpha");
	ck_assert_ptr_null(value_of(holder(st, 0)));

	/* Other locks are not this watch's business. */
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "M")->err, 0);
	no_notice(w);
	tc_close(w);
	tc_close(a);
	tc_close(b);
}
END_TEST

/* Shared holders and a reentrant count: who holds, not how often. */
START_TEST(shared_holders_and_reentry)
{
	struct tc *w = tc_connect(&d), *a = tc_connect(&d), *b = tc_connect(&d);
	const msgpack_object *st;

	tc_hello(w, "watcher");
	tc_hello(a, "alpha");
	tc_hello(b, "beta");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "S")->err, 0);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s kind:s mode:s value:s",
	    "S", "rlock", "shared", "first")->err, 0);
	st = changed(w, "S");
	ck_assert_str_eq(obj_str(holder(st, 0), "mode"), "shared");
	/* Re-entered: the count grows, the holders and the value do not. */
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s kind:s mode:s value:s",
	    "S", "rlock", "shared", "second")->err, 0);
	no_notice(w);
	ck_assert_int_eq(tc_call(b, "acquire", "lock:s kind:s mode:s",
	    "S", "rlock", "shared")->err, 0);
	st = changed(w, "S");
	ck_assert_uint_eq(nholders(st), 2);
	ck_assert_str_eq(value_of(holder(st, 0)), "first");
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "S")->err, 0);
	no_notice(w);
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "S")->err, 0);
	st = changed(w, "S");
	ck_assert_uint_eq(nholders(st), 1);
	ck_assert_str_eq(obj_str(holder(st, 0), "client"), "beta");
	/* The client's own reset is a change too. */
	ck_assert_int_eq(tc_call(b, "reset", NULL)->err, 0);
	st = changed(w, "S");
	ck_assert_uint_eq(nholders(st), 0);
	tc_close(w);
	tc_close(a);
	tc_close(b);
}
END_TEST

/* Holds that end without their holder asking: every way is told. */
START_TEST(holds_ended_by_others_are_told)
{
	struct tc *w = tc_connect(&d), *a = tc_connect(&d);
	struct tc *op = tc_connect(&d), *b;
	const msgpack_object *st;
	struct reply *r;

	tc_hello(w, "watcher");
	tc_hello(op, "operator");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "E")->err, 0);

	/* A holder whose connection closes (killed): released at once. */
	tc_hello(a, "doomed");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "E")->err, 0);
	ck_assert_uint_eq(nholders(changed(w, "E")), 1);
	tc_close(a);
	ck_assert_uint_eq(nholders(changed(w, "E")), 0);

	/* A lease that runs out. */
	b = tc_connect(&d);
	r = tc_call(b, "hello", "proto:i client:s lease_ms:i", 1LL, "sleepy",
	    100LL);
	ck_assert_int_eq(r->err, 0);
	ck_assert_int_eq(tc_call(b, "acquire", "lock:s", "E")->err, 0);
	st = changed(w, "E");
	ck_assert_str_eq(obj_str(holder(st, 0), "client"), "sleepy");
	st = changed(w, "E");	/* within the lease and the timer's slack */
	ck_assert_uint_eq(nholders(st), 0);
	tc_close(b);

	/* A force-release and an admin's reset of the holder. */
	a = tc_connect(&d);
	tc_hello(a, "stuck");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "E")->err, 0);
	ck_assert_uint_eq(nholders(changed(w, "E")), 1);
	r = tc_call(op, "force_release", "lock:s", "E");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	ck_assert_uint_eq(nholders(changed(w, "E")), 0);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "E")->err, 0);
	ck_assert_uint_eq(nholders(changed(w, "E")), 1);
	r = tc_call(op, "reset_client", "client:s", "stuck");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	ck_assert_uint_eq(nholders(changed(w, "E")), 0);
	tc_close(a);
	tc_close(w);
	tc_close(op);
}
END_TEST

/* Every watcher of a lock is told, each on its own connection. */
START_TEST(many_watchers_each_told)
{
	struct tc *w[3], *a = tc_connect(&d);
	char name[16];

	for (int i = 0; i < 3; i++) {
		w[i] = tc_connect(&d);
		snprintf(name, sizeof name, "w%d", i);
		tc_hello(w[i], name);
		ck_assert_int_eq(tc_call(w[i], "watch", "lock:s", "X")->err, 0);
	}
	tc_hello(a, "alpha");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s value:s", "X",
	    "leader")->err, 0);
	for (int i = 0; i < 3; i++)
		ck_assert_str_eq(value_of(holder(changed(w[i], "X"), 0)),
		    "leader");
	/* One stops watching; the others still hear. */
	ck_assert_int_eq(tc_call(w[1], "unwatch", "lock:s", "X")->err, 0);
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "X")->err, 0);
	ck_assert_uint_eq(nholders(changed(w[0], "X")), 0);
	ck_assert_uint_eq(nholders(changed(w[2], "X")), 0);
	no_notice(w[1]);
	for (int i = 0; i < 3; i++)
		tc_close(w[i]);
	tc_close(a);
}
END_TEST

/* unwatch, and what a session may watch: max-watches, idempotent watch. */
START_TEST(unwatch_and_limits)
{
	struct tc *w = tc_connect(&d), *a = tc_connect(&d);
	struct reply *r;

	tc_hello(w, "watcher");
	tc_hello(a, "alpha");
	r = tc_call(w, "unwatch", "lock:s", "nothing");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "a")->err, 0);
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "b")->err, 0);
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "c")->err, 0);
	/* Watching one again is not a new watch. */
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "c")->err, 0);
	r = tc_call(w, "watch", "lock:s", "d");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "max-watches"));
	r = tc_call(w, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "watches"), 3);
	ck_assert_int_eq(tc_call(w, "unwatch", "lock:s", "b")->err, 0);
	r = tc_call(w, "unwatch", "lock:s", "b");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "d")->err, 0);
	/* Unwatched: no notice. */
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "b")->err, 0);
	no_notice(w);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "d")->err, 0);
	ck_assert_uint_eq(nholders(changed(w, "d")), 1);
	/* A session's watches end with it; another session starts afresh. */
	tc_close(w);
	w = tc_connect(&d);
	tc_hello(w, "watcher");
	r = tc_call(w, "unwatch", "lock:s", "d");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	r = tc_call(w, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "watches"), 0);
	ck_assert_uint_gt(reply_u64(r, "watch_notices"), 0);
	tc_close(w);
	tc_close(a);
}
END_TEST

/* Values: shown by lock and locks; limited; empty is none. */
START_TEST(values_in_listings_and_limits)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	char big[1025];
	const msgpack_object *locks, *hs;
	struct reply *r;

	memset(big, 'v', sizeof big);
	tc_hello(a, "alpha");
	tc_hello(b, "beta");
	r = tc_call(a, "acquire", "lock:s value:y", "V", big, (size_t)1025);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	ck_assert_ptr_nonnull(strstr(reply_errmsg(r), "max-value-len"));
	r = tc_call(a, "acquire", "lock:s value:y", "V", big, (size_t)1024);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(b, "acquire", "lock:s value:s", "W", "");
	ck_assert_int_eq(r->err, 0);
	r = tc_call(b, "lock", "lock:s", "V");
	hs = reply_get(r, "holders");
	ck_assert_uint_eq(hs->via.array.size, 1);
	ck_assert_uint_eq(mpr_get(&hs->via.array.ptr[0], "value")->via.bin.size,
	    1024);
	r = tc_call(b, "lock", "lock:s", "W");
	hs = reply_get(r, "holders");
	ck_assert_ptr_null(mpr_get(&hs->via.array.ptr[0], "value"));
	r = tc_call(b, "locks", NULL);
	locks = reply_get(r, "locks");
	ck_assert_uint_eq(locks->via.array.size, 2);
	hs = mpr_get(&locks->via.array.ptr[0], "holders");
	ck_assert_ptr_nonnull(mpr_get(&hs->via.array.ptr[0], "value"));
	/* Wrong types. */
	r = tc_call(a, "acquire", "lock:s value:i", "Y", 7LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(a, "acquire", "lock:s value:b", "Y", 1);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* nil is none. */
	r = tc_call(a, "acquire", "lock:s value:n", "Y");
	ck_assert_int_eq(r->err, 0);
	tc_close(a);
	tc_close(b);
}
END_TEST

/* What the watch methods make of bad input: an answer, never a crash. */
START_TEST(hostile_watch_input)
{
	struct tc *w = tc_connect(&d);
	char longname[300];
	static const unsigned char params_int[] = {
		0x94, 0x00, 0x07, 0xa5, 'w', 'a', 't', 'c', 'h', 0x91, 0x05,
	};
	struct reply *r;

	/* Before hello. */
	r = tc_call(w, "watch", "lock:s", "x");
	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	tc_hello(w, "watcher");
	r = tc_call(w, "watch", NULL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(w, "watch", "lock:n");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(w, "watch", "lock:i", 5LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(w, "watch", "lock:s", "");
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	r = tc_call(w, "watch", "lock:s", longname);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	r = tc_call(w, "unwatch", "lock:b", 1);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	r = tc_call(w, "unwatch", NULL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* params [5] rather than [{...}]. */
	tc_send_raw(w, params_int, sizeof params_int);
	r = tc_wait(w, 7, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	/* A binary name is a name. */
	r = tc_call(w, "watch", "lock:y", "a\0b", (size_t)3);
	ck_assert_int_eq(r->err, 0);
	/* Still serving. */
	ck_assert_int_eq(tc_call(w, "ping", NULL)->err, 0);
	tc_close(w);
}
END_TEST

/* A value past max-request is a frame too big: that client goes alone. */
START_TEST(huge_value_closes_only_its_sender)
{
	struct tc *a = tc_connect(&d), *w = tc_connect(&d);
	size_t n = 70 * 1024;
	char *big = malloc(n);

	memset(big, 'x', n);
	tc_hello(a, "alpha");
	tc_hello(w, "watcher");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "H")->err, 0);
	(void)tc_send(a, "acquire", "lock:s value:y", "H", big, n);
	ck_assert(tc_closed(a, 5000));
	no_notice(w);
	ck_assert_int_eq(tc_call(w, "ping", NULL)->err, 0);
	free(big);
	tc_close(a);
	tc_close(w);
}
END_TEST

/* A watcher that never reads is dropped like any slow reader; others go on. */
START_TEST(slow_watcher_dropped_alone)
{
	struct dlmd_proc small;
	struct tc *slow, *w, *a;
	char value[1024];
	int i;

	dlmd_start(&small, "--max-output", "8192", (char *)NULL);
	slow = tc_connect(&small);
	w = tc_connect(&small);
	a = tc_connect(&small);
	memset(value, 'z', sizeof value);
	tc_hello(slow, "slow");
	tc_hello(w, "reader");
	tc_hello(a, "alpha");
	ck_assert_int_eq(tc_call(slow, "watch", "lock:s", "Z")->err, 0);
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "Z")->err, 0);
	/* The slow one reads nothing from here on; its socket fills. */
	for (i = 0; i < 5000; i++) {
		ck_assert_int_eq(tc_call(a, "acquire", "lock:s value:y", "Z",
		    value, sizeof value)->err, 0);
		ck_assert_int_eq(tc_call(a, "release", "lock:s", "Z")->err, 0);
		ck_assert_uint_eq(nholders(changed(w, "Z")), 1);
		ck_assert_uint_eq(nholders(changed(w, "Z")), 0);
		if (i % 50 == 49 && reply_u64(tc_call(a, "stats", NULL),
		    "output_overflows") > 0)
			break;
	}
	ck_assert_int_lt(i, 5000);
	ck_assert(dlmd_log_has(&small, "of output unread"));
	ck_assert(tc_closed(slow, 5000));
	ck_assert_int_eq(tc_call(w, "ping", NULL)->err, 0);
	tc_close(slow);
	tc_close(w);
	tc_close(a);
	dlmd_stop_clean(&small);
}
END_TEST

/* A lingering session's watches went with its connection. */
START_TEST(lingering_session_watches_nothing)
{
	struct tc *w = tc_connect(&d), *a = tc_connect(&d);
	struct reply *r;
	char secret[64];

	r = tc_call(w, "hello", "proto:i client:s linger_ms:i", 1LL, "comeback",
	    5000LL);
	snprintf(secret, sizeof secret, "%s", reply_str(r, "secret"));
	tc_hello(a, "alpha");
	ck_assert_int_eq(tc_call(w, "watch", "lock:s", "G")->err, 0);
	tc_close(w);
	w = tc_connect(&d);
	r = tc_call(w, "hello", "proto:i client:s resume:s", 1LL, "comeback",
	    secret);
	ck_assert(reply_bool(r, "resumed"));
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "G")->err, 0);
	no_notice(w);
	r = tc_call(w, "unwatch", "lock:s", "G");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	tc_close(w);
	tc_close(a);
}
END_TEST

static Suite *
watch_suite(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, watch_state_and_each_change);
	tcase_add_test(tc, shared_holders_and_reentry);
	tcase_add_test(tc, holds_ended_by_others_are_told);
	tcase_add_test(tc, many_watchers_each_told);
	tcase_add_test(tc, lingering_session_watches_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unwatch_and_limits);
	tcase_add_test(tc, values_in_listings_and_limits);
	tcase_add_test(tc, hostile_watch_input);
	tcase_add_test(tc, huge_value_closes_only_its_sender);
	tcase_add_test(tc, slow_watcher_dropped_alone);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(watch_suite());
}
