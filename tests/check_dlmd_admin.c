/*
 * dlmd's admin methods and who may call them; shutdown.
 */
#include "config.h"

#include <sys/stat.h>
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

START_TEST(force_release_tells_holder)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *op = tc_connect(&d);
	struct reply *r;
	uint64_t t;
	uint32_t id;

	tc_hello(a, "stuck");
	tc_hello(b, "next");
	tc_hello(op, "operator");
	t = reply_u64(tc_call(a, "acquire", "lock:s", "job"), "token");
	id = tc_send(b, "acquire", "lock:s", "job");
	r = tc_call(op, "force_release", "lock:s", "job");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(reply_str(r, "lock"), "job");
	ck_assert_uint_eq(reply_u64(r, "token"), t);
	ck_assert_str_eq(reply_str(r, "reason"), "forced");
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_gt(reply_u64(r, "token"), t);
	/* The old holder's session lives on; its release is now refused. */
	r = tc_call(a, "release", "lock:s", "job");
	ck_assert_str_eq(reply_errname(r), "NOT_HELD");
	r = tc_call(op, "force_release", "lock:s", "nothing");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

START_TEST(force_release_one_client)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *op = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_hello(op, "op");
	tc_call(a, "acquire", "lock:s mode:s", "s", "shared");
	tc_call(b, "acquire", "lock:s mode:s", "s", "shared");
	r = tc_call(op, "force_release", "lock:s client:s", "s", "b");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	r = tc_call(op, "lock", "lock:s", "s");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	ck_assert_str_eq(obj_str(&reply_get(r, "holders")->via.array.ptr[0],
	    "client"), "a");
	r = tc_call(op, "force_release", "lock:s client:s", "s", "ghost");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	ck_assert_ptr_nonnull(tc_wait_notify(b, 5000));
	ck_assert_ptr_null(tc_wait_notify(a, 100));
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

START_TEST(reset_client_and_all)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d),
	    *op = tc_connect(&d);
	struct reply *r;

	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_hello(op, "op");
	tc_call(a, "acquire", "lock:s", "1");
	tc_call(a, "acquire", "lock:s", "2");
	tc_call(b, "acquire", "lock:s", "3");
	tc_call(op, "acquire", "lock:s", "mine");
	r = tc_call(op, "reset_client", "client:s", "a");
	ck_assert_uint_eq(reply_u64(r, "released"), 2);
	r = tc_wait_notify(a, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_str(r, "reason"), "reset");
	ck_assert(tc_closed(a, 5000));
	r = tc_call(op, "reset_client", "client:s", "a");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	r = tc_call(op, "reset_all", NULL);
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	ck_assert(tc_closed(b, 5000));
	/* The caller's own session and holds survive reset_all. */
	r = tc_call(op, "lock", "lock:s", "mine");
	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	r = tc_call(op, "locks", NULL);
	ck_assert_uint_eq(reply_get(r, "locks")->via.array.size, 1);
	tc_close(a);
	tc_close(b);
	tc_close(op);
}
END_TEST

START_TEST(locks_listing_pages)
{
	struct tc *a = tc_connect(&d), *b = tc_connect(&d);
	struct reply *r;
	char name[32];
	int seen = 0;
	const msgpack_object *locks, *e;

	tc_hello(a, "lister");
	tc_hello(b, "waiter");
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof name, "app/%02d", i);
		tc_call(a, "acquire", "lock:s", name);
	}
	tc_call(a, "acquire", "lock:s", "other");
	tc_send(b, "acquire", "lock:s mode:s", "app/03", "shared");
	sleep_ms(50);

	/* Pages of 10 through the prefix, in name order. */
	name[0] = '\0';
	for (;;) {
		if (name[0] == '\0')
			r = tc_call(a, "locks", "prefix:s limit:i", "app/", 10LL);
		else
			r = tc_call(a, "locks", "prefix:s limit:i after:s",
			    "app/", 10LL, name);
		locks = reply_get(r, "locks");
		for (uint32_t i = 0; i < locks->via.array.size; i++) {
			char want[32];

			snprintf(want, sizeof want, "app/%02d", seen++);
			ck_assert_str_eq(obj_str(&locks->via.array.ptr[i],
			    "name"), want);
		}
		if (reply_get(r, "next") == NULL)
			break;
		snprintf(name, sizeof name, "%s", reply_str(r, "next"));
	}
	ck_assert_int_eq(seen, 25);

	r = tc_call(a, "lock", "lock:s", "app/03");
	ck_assert_str_eq(reply_str(r, "kind"), "mutex");
	ck_assert_str_eq(reply_str(r, "mode"), "exclusive");
	ck_assert_uint_eq(reply_u64(r, "nwaiters"), 1);
	e = &reply_get(r, "holders")->via.array.ptr[0];
	ck_assert_str_eq(obj_str(e, "client"), "lister");
	ck_assert_uint_gt(obj_u64(e, "token"), 0);
	ck_assert_uint_eq(obj_u64(e, "count"), 1);
	(void)obj_u64(e, "held_ms");
	(void)obj_u64(e, "session");
	e = &reply_get(r, "waiters")->via.array.ptr[0];
	ck_assert_str_eq(obj_str(e, "client"), "waiter");
	ck_assert_str_eq(obj_str(e, "mode"), "shared");
	ck_assert_uint_ge(obj_u64(e, "waited_ms"), 0);
	r = tc_call(a, "lock", "lock:s", "nope");
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	r = tc_call(a, "locks", "limit:i", 0LL);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	tc_close(a);
	tc_close(b);
}
END_TEST

START_TEST(clients_and_stats)
{
	struct tc *a = tc_connect(&d);
	struct reply *r;
	const msgpack_object *e, *info;
	uint32_t id;

	id = tc_send(a, "hello", "proto:i client:s lease_ms:i", 1LL, "svc-1",
	    4000LL);
	ck_assert_int_eq(tc_wait(a, id, 5000)->err, 0);
	tc_call(a, "acquire", "lock:s", "x");
	r = tc_call(a, "clients", NULL);
	ck_assert_uint_eq(reply_get(r, "clients")->via.array.size, 1);
	e = &reply_get(r, "clients")->via.array.ptr[0];
	ck_assert_str_eq(obj_str(e, "name"), "svc-1");
	ck_assert(strncmp(obj_str(e, "peer"), "unix:pid=", 9) == 0);
	ck_assert(mpr_get(e, "connected")->via.boolean);
	ck_assert_uint_eq(obj_u64(e, "lease_ms"), 4000);
	ck_assert_uint_le(obj_u64(e, "expires_in_ms"), 4000);
	ck_assert_uint_eq(obj_u64(e, "holds"), 1);
	ck_assert_uint_eq(obj_u64(e, "waits"), 0);
	info = mpr_get(e, "info");
	ck_assert_ptr_nonnull(info);
	ck_assert_int_eq(mpr_get(info, "host")->type, MSGPACK_OBJECT_NIL);

	r = tc_call(a, "stats", NULL);
	ck_assert_uint_eq(reply_u64(r, "sessions"), 1);
	ck_assert_uint_eq(reply_u64(r, "locks"), 1);
	ck_assert_uint_eq(reply_u64(r, "holds"), 1);
	ck_assert_uint_eq(reply_u64(r, "waiters"), 0);
	ck_assert_uint_ge(reply_u64(r, "acquires"), 1);
	ck_assert_uint_ge(reply_u64(r, "grants"), 1);
	ck_assert_uint_gt(reply_u64(r, "bytes_in"), 0);
	(void)reply_u64(r, "uptime_ms");
	(void)reply_u64(r, "expiries");
	(void)reply_u64(r, "forced");
	/* A single dlmd: no cluster keys, no cluster method. */
	ck_assert_ptr_null(reply_get(r, "role"));
	ck_assert_ptr_null(reply_get(r, "epoch"));
	r = tc_call(a, "cluster", NULL);
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	tc_close(a);
	/* And stats still needs a session. */
	a = tc_connect(&d);
	r = tc_call(a, "stats", NULL);
	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	tc_close(a);
}
END_TEST

START_TEST(client_info_shown)
{
	struct tc *a = tc_connect(&d);
	const msgpack_object *info;
	struct reply *r;
	msgpack_sbuffer sb;
	struct mpw w;

	/* tc_send cannot nest maps: build this hello by hand. */
	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, 77);
	mpw_str(&w, "hello");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "proto");
	mpw_u64(&w, 1);
	mpw_key(&w, "client");
	mpw_str(&w, "web-7");
	mpw_key(&w, "info");
	mpw_map(&w, 3);
	mpw_key(&w, "host");
	mpw_str(&w, "web7.example");
	mpw_key(&w, "pid");
	mpw_i64(&w, 4242);
	mpw_key(&w, "label");
	mpw_str(&w, "checkout worker");
	tc_send_raw(a, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	r = tc_wait(a, 77, 5000);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(a, "clients", "prefix:s", "web");
	info = mpr_get(&reply_get(r, "clients")->via.array.ptr[0], "info");
	ck_assert_str_eq(obj_str(info, "host"), "web7.example");
	ck_assert_uint_eq(obj_u64(info, "pid"), 4242);
	ck_assert_str_eq(obj_str(info, "label"), "checkout worker");
	tc_close(a);
}
END_TEST

START_TEST(tcp_needs_admin_token)
{
	struct dlmd_proc t;
	struct tc *c, *op;
	struct reply *r;
	char tokfile[300], admfile[300];
	FILE *f;

	snprintf(tokfile, sizeof tokfile, "/tmp/dlmtest-tok.%d", getpid());
	snprintf(admfile, sizeof admfile, "/tmp/dlmtest-adm.%d", getpid());
	f = fopen(tokfile, "w");
	fputs("client-secret\n", f);
	fclose(f);
	f = fopen(admfile, "w");
	fputs("admin-secret\n", f);
	fclose(f);
	dlmd_start_tcp(&t, "--token-file", tokfile, "--admin-token-file",
	    admfile, (char *)NULL);

	c = tc_connect_tcp(t.port);
	r = tc_call(c, "hello", "proto:i client:s", 1LL, "anon");
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	r = tc_call(c, "hello", "proto:i client:s auth:s", 1LL, "anon",
	    "client-secreT");
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	r = tc_call(c, "hello", "proto:i client:s auth:s", 1LL, "user",
	    "client-secret");
	ck_assert_int_eq(r->err, 0);
	tc_call(c, "acquire", "lock:s", "x");
	/* A client may inspect but not act. */
	r = tc_call(c, "locks", NULL);
	ck_assert_int_eq(r->err, 0);
	r = tc_call(c, "force_release", "lock:s", "x");
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	ck_assert_int_eq(r->err, 11);
	r = tc_call(c, "reset_all", NULL);
	ck_assert_str_eq(reply_errname(r), "PERMISSION");

	op = tc_connect_tcp(t.port);
	r = tc_call(op, "hello", "proto:i client:s auth:s", 1LL, "admin",
	    "admin-secret");
	ck_assert_int_eq(r->err, 0);
	r = tc_call(op, "force_release", "lock:s", "x");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	tc_close(c);
	tc_close(op);
	dlmd_stop_clean(&t);
	unlink(tokfile);
	unlink(admfile);
}
END_TEST

/*
 * Over the Unix socket, the peer's uid decides. Needs root, to connect as
 * another user; otherwise the daemon's own uid is all a test can be.
 */
START_TEST(unix_peer_uid_decides)
{
	struct tc *op;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fprintf(stderr, "unix_peer_uid_decides: not root, checking "
		    "only that the daemon's own uid is an admin\n");
		op = tc_connect(&d);
		tc_hello(op, "me");
		ck_assert_int_eq(tc_call(op, "reset_all", NULL)->err, 0);
		tc_close(op);
		return;
	}
	chmod(d.dir, 0755);
	op = tc_connect(&d);
	tc_hello(op, "root");
	tc_call(op, "acquire", "lock:s", "x");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tc *c;
		struct reply *r;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		c = tc_connect(&d);
		tc_hello(c, "nobody");
		r = tc_call(c, "force_release", "lock:s", "x");
		if (strcmp(reply_errname(r), "PERMISSION") != 0)
			_exit(11);
		r = tc_call(c, "reset_client", "client:s", "root");
		if (strcmp(reply_errname(r), "PERMISSION") != 0)
			_exit(12);
		r = tc_call(c, "stats", NULL);
		if (r->err != 0)
			_exit(13);
		tc_close(c);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(tc_call(op, "force_release", "lock:s", "x")->err, 0);
	tc_close(op);
}
END_TEST

START_TEST(admin_uid_option)
{
	struct dlmd_proc t;
	struct tc *op;
	pid_t pid;
	int status;

	if (geteuid() != 0) {
		fprintf(stderr, "admin_uid_option: needs root\n");
		return;
	}
	dlmd_start(&t, "--admin-uid", "65534", (char *)NULL);
	chmod(t.dir, 0755);
	op = tc_connect(&t);
	tc_hello(op, "root");
	tc_call(op, "acquire", "lock:s", "x");
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct tc *c;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		c = tc_connect(&t);
		tc_hello(c, "nobody");
		_exit(tc_call(c, "force_release", "lock:s", "x")->err);
	}
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	tc_close(op);
	dlmd_stop_clean(&t);
}
END_TEST

START_TEST(sigterm_answers_waits)
{
	struct dlmd_proc t;
	struct tc *a, *b;
	struct reply *r;
	uint32_t id;
	struct stat st;

	dlmd_start(&t, NULL);
	a = tc_connect(&t);
	b = tc_connect(&t);
	tc_hello(a, "a");
	tc_hello(b, "b");
	tc_call(a, "acquire", "lock:s", "x");
	id = tc_send(b, "acquire", "lock:s", "x");
	ck_assert_ptr_null(tc_wait(b, id, 100));
	kill(t.pid, SIGTERM);
	r = tc_wait(b, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "SHUTTING_DOWN");
	ck_assert_int_eq(r->err, 13);
	ck_assert(tc_closed(a, 5000));
	ck_assert(tc_closed(b, 5000));
	dlmd_stop_clean(&t);	/* exit status 0, no sanitizer report */
	ck_assert_int_ne(stat(t.sock, &st), 0);	/* socket removed */
	tc_close(a);
	tc_close(b);
}
END_TEST

/*
 * A SIGTERM that comes the moment the socket accepts, as from a service
 * manager stopping a daemon it just started, drains and exits 0.
 */
START_TEST(sigterm_right_after_start)
{
	struct dlmd_proc t;

	for (int i = 0; i < 20; i++) {
		dlmd_start_tcp(&t, (char *)NULL);
		dlmd_stop_clean(&t);
	}
}
END_TEST

START_TEST(refuses_running_socket)
{
	struct dlmd_proc t;
	char listen[400], cmd[600];
	int rc;

	dlmd_start(&t, NULL);
	snprintf(listen, sizeof listen, "unix:%s", t.sock);
	snprintf(cmd, sizeof cmd, "%s -f -l %s >/dev/null 2>&1", dlmd_path(),
	    listen);
	rc = system(cmd);
	ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
	/* The first daemon still serves. */
	{
		struct tc *c = tc_connect(&t);

		tc_hello(c, "still");
		tc_close(c);
	}
	dlmd_stop_clean(&t);
}
END_TEST

static Suite *
admin_suite(void)
{
	Suite *s = suite_create("dlmd-admin");
	TCase *tc = tcase_create("admin");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, force_release_tells_holder);
	tcase_add_test(tc, force_release_one_client);
	tcase_add_test(tc, reset_client_and_all);
	tcase_add_test(tc, locks_listing_pages);
	tcase_add_test(tc, clients_and_stats);
	tcase_add_test(tc, client_info_shown);
	tcase_add_test(tc, unix_peer_uid_decides);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, tcp_needs_admin_token);
	tcase_add_test(tc, admin_uid_option);
	tcase_add_test(tc, sigterm_answers_waits);
	tcase_add_test(tc, sigterm_right_after_start);
	tcase_add_test(tc, refuses_running_socket);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(admin_suite());
}
