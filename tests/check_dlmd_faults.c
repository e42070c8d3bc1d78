/*
 * dlmd under hostile and careless clients, and at its configured limits.
 * Each case also checks that another, well-behaved client is unaffected.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
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
	dlmd_start(&d, "--lease-min", "100", "--max-request", "1024",
	    "--max-output", "65536", (char *)NULL);
}

static void
teardown(void)
{
	dlmd_stop_clean(&d);
}

/* A client holding a lock; it must stay untouched by the others' faults. */
static struct tc *
bystander(const struct dlmd_proc *p)
{
	struct tc *c = tc_connect(p);

	tc_hello(c, "bystander");
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s", "mine")->err, 0);
	return c;
}

static void
bystander_fine(struct tc *c)
{
	struct reply *r = tc_call(c, "lock", "lock:s", "mine");

	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	ck_assert_str_eq(obj_str(&reply_get(r, "holders")->via.array.ptr[0],
	    "client"), "bystander");
	tc_close(c);
}

/* Send bytes; expect a BAD_REQUEST with a nil msgid, then the close. */
static void
expect_refused_and_closed(const void *bytes, size_t len, const char *why)
{
	struct tc *c = tc_connect(&d);
	struct reply *r;

	tc_send_raw(c, bytes, len);
	r = tc_next(c, 5000);
	ck_assert_msg(r != NULL, "%s: no reply", why);
	ck_assert_int_eq(r->type, 1);
	ck_assert(!r->has_msgid);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_msg(tc_closed(c, 5000), "%s: not closed", why);
	tc_close(c);
}

START_TEST(garbage_byte)
{
	struct tc *b = bystander(&d);

	expect_refused_and_closed("\xc1", 1, "0xc1");
	bystander_fine(b);
}
END_TEST

START_TEST(oversized_frames)
{
	struct tc *b = bystander(&d);
	char big[2100];

	/* A str header announcing 2000 bytes: refused before they come. */
	big[0] = (char)0x94;
	big[1] = 0;
	big[2] = 1;
	big[3] = (char)0xda;
	big[4] = (char)(2000 >> 8);
	big[5] = (char)(2000 & 0xff);
	memset(big + 6, 'x', 2000);
	expect_refused_and_closed(big, 2006, "2000-byte string");
	/* Declared counts far past any request size. */
	expect_refused_and_closed("\xdd\xff\xff\xff\xff", 5, "array32");
	expect_refused_and_closed("\xdf\x7f\xff\xff\xff", 5, "map32");
	expect_refused_and_closed("\xc6\xff\xff\xff\xf0", 5, "bin32");
	bystander_fine(b);
}
END_TEST

START_TEST(deep_nesting)
{
	struct tc *b = bystander(&d);
	unsigned char deep[200];

	memset(deep, 0x91, sizeof deep - 1);
	deep[sizeof deep - 1] = 0xc0;
	expect_refused_and_closed(deep, sizeof deep, "deep");
	/* Six levels: still too deep for any method. */
	expect_refused_and_closed("\x94\x00\x01\xa4ping\x91\x81\xa1x\x91\x91"
	    "\x91\xc0", 16, "six levels");
	bystander_fine(b);
}
END_TEST

START_TEST(random_garbage_from_many)
{
	struct tc *b = bystander(&d);
	unsigned seed = 99;

	for (int i = 0; i < 200; i++) {
		struct tc *c = tc_connect(&d);
		unsigned char junk[300];
		size_t n = 1 + (size_t)(rand_r(&seed) % sizeof junk);

		for (size_t k = 0; k < n; k++)
			junk[k] = (unsigned char)rand_r(&seed);
		/* The server may close before all is sent: ignore errors. */
		(void)send(c->fd, junk, n, MSG_NOSIGNAL);
		if (i % 2 == 0)
			tc_close(c);
		else {
			(void)tc_next(c, 20);
			tc_close(c);
		}
	}
	bystander_fine(b);
}
END_TEST

START_TEST(truncated_and_split)
{
	struct tc *b = bystander(&d), *c = tc_connect(&d);
	static const char hello[] =
	    "\x94\x00\x05\xa5hello\x91\x82\xa5proto\x01\xa6" "client\xa1z";
	struct reply *r;

	/* A request split across writes is served once whole. */
	tc_send_raw(c, hello, 10);
	ck_assert_ptr_null(tc_next(c, 100));
	tc_send_raw(c, hello + 10, sizeof hello - 1 - 10);
	r = tc_wait(c, 5, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(c);
	/* A request cut short by a closing client costs nothing. */
	c = tc_connect(&d);
	tc_send_raw(c, hello, 12);
	tc_close(c);
	bystander_fine(b);
}
END_TEST

START_TEST(wrong_shapes_keep_connection)
{
	/* A frame literal and its length, NULs included. */
#define FRAME(lit)	lit, sizeof(lit) - 1
	static const struct {
		const char	*bytes;
		size_t		 len;
		int		 msgid;	/* -1: nil */
	} cases[] = {
		/* [0, 1, "acquire", "x"] */
		{ FRAME("\x94\x00\x01\xa7" "acquire\xa1x"), 1 },
		/* [0, 2, "nosuch", []] */
		{ FRAME("\x94\x00\x02\xa6nosuch\x90"), 2 },
		/* [0, 3, 42, []] */
		{ FRAME("\x94\x00\x03\x2a\x90"), 3 },
		/* [1, 4, nil, nil]: a response sent to the server */
		{ FRAME("\x94\x01\x04\xc0\xc0"), -1 },
		/* "str" */
		{ FRAME("\xa3str"), -1 },
		/* [0, 2^32, "ping", []] */
		{ FRAME("\x94\x00\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa4ping"
		  "\x90"), -1 },
		/* [0, 6, "ping", [{}, {}]] */
		{ FRAME("\x94\x00\x06\xa4ping\x92\x80\x80"), 6 },
		/* [0, 7, "ping"] */
		{ FRAME("\x93\x00\x07\xa4ping"), -1 },
		/* [0, 8, "acquire", [{"lock": 123}]] */
		{ FRAME("\x94\x00\x08\xa7" "acquire\x91\x81\xa4lock\x7b"), 8 },
		/* [0, 9, "acquire", [{"lock": "x", "timeout_ms": -5}]] */
		{ FRAME("\x94\x00\x09\xa7" "acquire\x91\x82\xa4lock\xa1x"
		  "\xaatimeout_ms\xfb"), 9 },
		/* [0, 10, "acquire", [{"lock": "x", "mode": "weird"}]] */
		{ FRAME("\x94\x00\x0a\xa7" "acquire\x91\x82\xa4lock\xa1x"
		  "\xa4mode\xa5weird"), 10 },
		/* [0, 11, "acquire", [{}]] */
		{ FRAME("\x94\x00\x0b\xa7" "acquire\x91\x80"), 11 },
		/* [0, 12, "acquire", [{"lock": ""}]] */
		{ FRAME("\x94\x00\x0c\xa7" "acquire\x91\x81\xa4lock\xa0"), 12 },
		/* [0, 13, "acquire", [{"lock": "x", "kind": 1}]] */
		{ FRAME("\x94\x00\x0d\xa7" "acquire\x91\x82\xa4lock\xa1x"
		  "\xa4kind\x01"), 13 },
		/* [0, 14, "cancel", [{"id": "x"}]] */
		{ FRAME("\x94\x00\x0e\xa6" "cancel\x91\x81\xa2id\xa1x"), 14 },
	};
	struct tc *b = bystander(&d), *c = tc_connect(&d);
	struct reply *r;

	tc_hello(c, "clumsy");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		tc_send_raw(c, cases[i].bytes, cases[i].len);
		r = tc_next(c, 5000);
		ck_assert_msg(r != NULL, "case %zu: no reply", i);
		ck_assert_msg(strcmp(reply_errname(r), "BAD_REQUEST") == 0,
		    "case %zu: %s", i, reply_errname(r));
		if (cases[i].msgid < 0)
			ck_assert_msg(!r->has_msgid, "case %zu", i);
		else
			ck_assert_msg(r->has_msgid &&
			    r->msgid == (uint32_t)cases[i].msgid, "case %zu", i);
		ck_assert_uint_gt(strlen(reply_errmsg(r)), 0);
	}
	/* Unknown keys are ignored; the connection still serves. */
	tc_send_raw(c, FRAME("\x94\x00\x0f\xa7" "acquire\x91\x82\xa4lock"
	    "\xa1y\xa6" "future\x92\x01\x02"));
	r = tc_wait(c, 15, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_int_eq(tc_call(c, "ping", NULL)->err, 0);
	tc_close(c);
	bystander_fine(b);
}
END_TEST

START_TEST(never_reads)
{
	struct tc *b = bystander(&d), *c = tc_connect(&d), *s;
	static const char ping[] = "\x94\x00\x01\xa4ping\x90";
	char burst[(sizeof ping - 1) * 2000];
	struct reply *r;
	bool closed = false;

	tc_hello(c, "deaf");
	for (size_t i = 0; i < sizeof burst; i += sizeof ping - 1)
		memcpy(burst + i, ping, sizeof ping - 1);
	/* Send pings and never read: replies pile up past max-output. */
	for (int i = 0; i < 400 && !closed; i++) {
		const char *p = burst;
		size_t left = sizeof burst;

		while (left > 0) {
			ssize_t n = send(c->fd, p, left, MSG_NOSIGNAL);

			if (n < 0) {
				closed = true;
				break;
			}
			p += n;
			left -= (size_t)n;
		}
	}
	ck_assert_msg(closed || tc_closed(c, 5000), "deaf client not dropped");
	tc_close(c);
	s = tc_connect(&d);
	tc_hello(s, "stats");
	r = tc_call(s, "stats", NULL);
	ck_assert_uint_ge(reply_u64(r, "output_overflows"), 1);
	r = tc_call(s, "clients", "prefix:s", "deaf");
	ck_assert_uint_eq(reply_get(r, "clients")->via.array.size, 0);
	tc_close(s);
	bystander_fine(b);
}
END_TEST

START_TEST(pipelined_requests_in_order)
{
	struct tc *c = tc_connect(&d);

	tc_hello(c, "pipe");
	/* 500 requests before reading any reply: answered in order. */
	for (int i = 0; i < 500; i++)
		tc_send(c, "ping", NULL);
	for (int i = 0; i < 500; i++) {
		struct reply *r = tc_next(c, 5000);

		ck_assert_ptr_nonnull(r);
		ck_assert_uint_eq(r->msgid, (uint32_t)(2 + i));
	}
	tc_close(c);
}
END_TEST

START_TEST(silent_connection_dropped)
{
	struct dlmd_proc t;
	struct tc *c;

	dlmd_start(&t, "--lease-min", "100", "--lease-default", "300", (char *)NULL);
	c = tc_connect(&t);
	ck_assert(tc_closed(c, 5000));
	tc_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(name_length_limit)
{
	struct dlmd_proc t;
	struct tc *c;
	struct reply *r;
	char name[300];

	dlmd_start(&t, NULL);
	c = tc_connect(&t);
	tc_hello(c, "n");
	memset(name, 'n', sizeof name);
	name[255] = '\0';
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s", name)->err, 0);
	name[255] = 'n';
	name[256] = '\0';
	r = tc_call(c, "acquire", "lock:s", name);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	ck_assert_int_eq(r->err, 10);
	tc_close(c);
	dlmd_stop_clean(&t);

	dlmd_start(&t, "--max-name-len", "16", (char *)NULL);
	c = tc_connect(&t);
	r = tc_call(c, "hello", "proto:i client:s", 1LL,
	    "a-client-name-too-long");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	tc_hello(c, "sixteen-bytes-ok");
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s",
	    "0123456789abcdef")->err, 0);
	r = tc_call(c, "acquire", "lock:s", "0123456789abcdefg");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	tc_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(request_size_limit)
{
	struct tc *c = tc_connect(&d), *b = bystander(&d);
	char *buf = malloc(1100);

	tc_hello(c, "sizer");
	/*
	 * [0, 1, "ping", [{"pad": str}]]: 1 + 1 + 1 + 5 + 1 + 1 + 4 + 3
	 * header bytes, then the string.
	 */
	for (int total = 1024; total <= 1025; total++) {
		size_t n = (size_t)total - 17;
		struct reply *r;

		memcpy(buf, "\x94\x00\x01\xa4ping\x91\x81\xa3pad\xda", 15);
		buf[15] = (char)(n >> 8);
		buf[16] = (char)(n & 0xff);
		memset(buf + 17, 'p', n);
		tc_send_raw(c, buf, (size_t)total);
		r = tc_next(c, 5000);
		ck_assert_ptr_nonnull(r);
		if (total == 1024) {
			ck_assert_int_eq(r->err, 0);
			ck_assert_uint_eq(r->msgid, 1);
		} else {
			ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
			ck_assert(tc_closed(c, 5000));
		}
	}
	free(buf);
	tc_close(c);
	bystander_fine(b);
}
END_TEST

START_TEST(max_clients_limit)
{
	struct dlmd_proc t;
	struct tc *c[3], *adm;
	struct reply *r;

	dlmd_start_tcp(&t, "--max-clients", "2", (char *)NULL);
	for (int i = 0; i < 3; i++)
		c[i] = tc_connect_tcp(t.port);
	tc_hello(c[0], "one");
	tc_hello(c[1], "two");
	r = tc_call(c[2], "hello", "proto:i client:s", 1LL, "three");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	/* An admin on the Unix socket still gets in to fix things. */
	adm = tc_connect(&t);
	tc_hello(adm, "admin");
	tc_close(c[0]);
	sleep_ms(100);
	tc_close(adm);
	sleep_ms(100);
	tc_hello(c[2], "three");
	for (int i = 1; i < 3; i++)
		tc_close(c[i]);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(holds_and_waits_limits)
{
	struct dlmd_proc t;
	struct tc *a, *b;
	struct reply *r;

	dlmd_start(&t, "--max-holds", "3", "--max-waits", "1", (char *)NULL);
	a = tc_connect(&t);
	b = tc_connect(&t);
	tc_hello(a, "a");
	tc_hello(b, "b");
	for (int i = 0; i < 3; i++) {
		char n[8];

		snprintf(n, sizeof n, "h%d", i);
		ck_assert_int_eq(tc_call(a, "acquire", "lock:s", n)->err, 0);
	}
	r = tc_call(a, "acquire", "lock:s", "h3");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	ck_assert(strstr(reply_errmsg(r), "3 holds") != NULL);
	tc_send(b, "acquire", "lock:s", "h0");
	sleep_ms(50);
	r = tc_call(b, "acquire", "lock:s", "h1");
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	tc_close(a);
	tc_close(b);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(lease_and_linger_clamped)
{
	struct dlmd_proc t;
	struct tc *c;
	struct reply *r;

	dlmd_start(&t, "--lease-min", "500", "--lease-max", "2000",
	    "--lease-default", "1000", "--linger-max", "1000", (char *)NULL);
	c = tc_connect(&t);
	r = tc_call(c, "hello", "proto:i client:s lease_ms:i linger_ms:i", 1LL,
	    "short", 10LL, 5000LL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 500);
	ck_assert_uint_eq(reply_u64(r, "linger_ms"), 1000);
	tc_close(c);
	c = tc_connect(&t);
	r = tc_call(c, "hello", "proto:i client:s lease_ms:i", 1LL, "long",
	    99999LL);
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 2000);
	tc_close(c);
	c = tc_connect(&t);
	r = tc_call(c, "hello", "proto:i client:s", 1LL, "default");
	ck_assert_uint_eq(reply_u64(r, "lease_ms"), 1000);
	r = tc_call(c, "hello", "proto:i client:s lease_ms:i", 1LL, "neg",
	    -1LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

static int
run_dlmd(const char *args)
{
	char cmd[512];
	int rc;

	snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", dlmd_path(), args);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

START_TEST(bad_options_refused)
{
	ck_assert_int_eq(run_dlmd("--max-clients 0"), 2);
	ck_assert_int_eq(run_dlmd("--max-clients x"), 2);
	ck_assert_int_eq(run_dlmd("--lease-min 5000 --lease-max 1000"), 2);
	ck_assert_int_eq(run_dlmd("--lease-default 10 --lease-min 100"), 2);
	ck_assert_int_eq(run_dlmd("--socket-mode 999"), 2);
	ck_assert_int_eq(run_dlmd("--log-level loud"), 2);
	ck_assert_int_eq(run_dlmd("--token-file /nonexistent"), 2);
	ck_assert_int_eq(run_dlmd("--no-such-flag"), 2);
	/* A malformed address is a bad value (2); an unusable one, 1. */
	ck_assert_int_eq(run_dlmd("-l tcp:nonsense"), 2);
	ck_assert_int_eq(run_dlmd("-l unix:/nonexistent-dir/x/y.sock"), 1);
	ck_assert_int_eq(run_dlmd("--version"), 0);
	ck_assert_int_eq(run_dlmd("--help"), 0);
}
END_TEST

static Suite *
faults_suite(void)
{
	Suite *s = suite_create("dlmd-faults");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, garbage_byte);
	tcase_add_test(tc, oversized_frames);
	tcase_add_test(tc, deep_nesting);
	tcase_add_test(tc, random_garbage_from_many);
	tcase_add_test(tc, truncated_and_split);
	tcase_add_test(tc, wrong_shapes_keep_connection);
	tcase_add_test(tc, never_reads);
	tcase_add_test(tc, pipelined_requests_in_order);
	tcase_add_test(tc, request_size_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, silent_connection_dropped);
	tcase_add_test(tc, name_length_limit);
	tcase_add_test(tc, max_clients_limit);
	tcase_add_test(tc, holds_and_waits_limits);
	tcase_add_test(tc, lease_and_linger_clamped);
	tcase_add_test(tc, bad_options_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(faults_suite());
}
