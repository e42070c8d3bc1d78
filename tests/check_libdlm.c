/*
 * libdlm against a real dlmd: connecting, locks, threads, leases, scoped
 * and async forms, lost holds, dropped connections, fork.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "dlm.h"
#include "relay.h"
#include "testutil.h"

static struct dlmd_proc d;
static char server[400];

static void
setup(void)
{
	dlmd_start_tcp(&d, "--lease-min", "100", (char *)NULL);
	snprintf(server, sizeof server, "unix:%s", d.sock);
}

static void
teardown(void)
{
	dlmd_stop_clean(&d);
}

static bool	lock_listing_has(struct dlm_client *, const char *,
		    const char *);

static struct dlm_client *
client(const char *name, int lease_ms, int linger_ms)
{
	struct dlm_options o;
	struct dlm_client *c;
	int err = -1;

	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = lease_ms;
	o.linger_ms = linger_ms;
	c = dlm_connect(server, &o, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_strerror(err));
	ck_assert_int_eq(err, 0);
	return c;
}

START_TEST(connect_forms)
{
	struct dlm_client *c;
	struct dlm_options o;
	char tcp[64];
	int err;

	c = dlm_connect(server, NULL, &err);
	ck_assert_ptr_nonnull(c);
	/* The library makes a HOST:PID:N name. */
	ck_assert(strchr(dlm_client_name(c), ':') != NULL);
	dlm_close(c);

	snprintf(tcp, sizeof tcp, "tcp:127.0.0.1:%d", d.port);
	c = dlm_connect(tcp, NULL, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(dlm_acquire(c, "t", 0, DLM_TRY, NULL), 0);
	dlm_close(c);

	setenv("DLM_SERVER", server, 1);
	dlm_options_init(&o);
	o.client = "from-env";
	o.label = "a test";
	c = dlm_connect(NULL, &o, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(dlm_client_name(c), "from-env");
	unsetenv("DLM_SERVER");
	{
		/* The label reaches the server. */
		struct tc *t = tc_connect(&d);
		struct reply *r;

		tc_hello(t, "inspector");
		r = tc_call(t, "clients", "prefix:s", "from-env");
		ck_assert_str_eq(obj_str(mpr_get(
		    &reply_get(r, "clients")->via.array.ptr[0], "info"),
		    "label"), "a test");
		tc_close(t);
	}
	/* The name is taken while that session lives. */
	ck_assert_ptr_null(dlm_connect(server, &o, &err));
	ck_assert_int_eq(err, DLM_E_NAME_IN_USE);
	dlm_close(c);

	ck_assert_ptr_null(dlm_connect("bogus:x", NULL, &err));
	ck_assert_int_eq(err, DLM_E_ADDRESS);
	ck_assert_ptr_null(dlm_connect("unix:/nonexistent/dlmd.sock", NULL,
	    &err));
	ck_assert_int_eq(err, DLM_E_CONNECT);
	dlm_close(NULL);
}
END_TEST

/*
 * A listener on 127.0.0.1:port, or -1 when the port is taken: it shows
 * whether a bad address was dialled after all.
 */
static int
listen_on(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 ||
	    listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

START_TEST(bad_address_refused_before_dialling)
{
	static const char *const bad[] = {
		"tcp:127.0.0.1:99999", "tcp:127.0.0.1:65536",
		"tcp:127.0.0.1:0", "tcp:127.0.0.1:abc", "tcp:127.0.0.1:",
		"tcp:[::1", "tcp:127.0.0.1:-1", "tcp:::1:80", "tcp:[::1]80",
		"tcp:[127.0.0.1]:80", "tcp::7411", "unix:", "bogus:x",
	};
	struct dlm_options o;
	/* Where a 16-bit wrap of 99999 and 65536 would dial. */
	int wrapped = listen_on(99999 & 0xffff);

	dlm_options_init(&o);
	o.connect_timeout_ms = 500;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int err = -1;

		ck_assert_msg(dlm_connect(bad[i], &o, &err) == NULL,
		    "%s: connected", bad[i]);
		ck_assert_msg(err == DLM_E_ADDRESS, "%s: %s, not ADDRESS",
		    bad[i], dlm_errname(err));
	}
	if (wrapped >= 0) {
		struct pollfd pfd = { wrapped, POLLIN, 0 };

		ck_assert_msg(poll(&pfd, 1, 0) == 0,
		    "port 99999 was dialled as %d", 99999 & 0xffff);
		close(wrapped);
	}
}
END_TEST

START_TEST(auth_token_over_tcp)
{
	struct dlmd_proc t;
	struct dlm_options o;
	struct dlm_client *c;
	char tcp[64], tokfile[64];
	FILE *f;
	int err = 0;

	snprintf(tokfile, sizeof tokfile, "/tmp/dlmtest-libtok.%d", getpid());
	f = fopen(tokfile, "w");
	fputs("s3cret\n", f);
	fclose(f);
	dlmd_start_tcp(&t, "--token-file", tokfile, (char *)NULL);
	snprintf(tcp, sizeof tcp, "tcp:127.0.0.1:%d", t.port);
	ck_assert_ptr_null(dlm_connect(tcp, NULL, &err));
	ck_assert_int_eq(err, DLM_E_PERMISSION);
	dlm_options_init(&o);
	o.auth = "s3cret";
	c = dlm_connect(tcp, &o, &err);
	ck_assert_msg(c != NULL, "%s", dlm_strerror(err));
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, NULL), 0);
	dlm_close(c);
	dlmd_stop_clean(&t);
	unlink(tokfile);
}
END_TEST

START_TEST(locks_and_errors)
{
	struct dlm_client *a = client("a", 0, 0), *b = client("b", 0, 0);
	uint64_t t1 = 0, t2 = 0, t3 = 0;
	uint64_t start;
	int held = -1;

	ck_assert_int_eq(dlm_acquire(a, "x", 0, DLM_FOREVER, &t1), 0);
	ck_assert_uint_gt(t1, 0);
	ck_assert_int_eq(dlm_holds(a, "x", &t2), 1);
	ck_assert_uint_eq(t1, t2);
	ck_assert_int_eq(dlm_holds(b, "x", NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "x", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	start = mono_ms();
	ck_assert_int_eq(dlm_acquire(b, "x", 0, 200, NULL), DLM_E_TIMEOUT);
	ck_assert_uint_ge(mono_ms() - start, 150);
	/* A thread cannot take its own mutex twice: an error, not a hang. */
	ck_assert_int_eq(dlm_acquire(a, "x", 0, DLM_FOREVER, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(dlm_check(b, "x", t1, &held), 0);
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(dlm_release(b, "x"), DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_release(a, "x"), 0);
	ck_assert_int_eq(dlm_holds(a, "x", NULL), 0);
	ck_assert_int_eq(dlm_check(b, "x", t1, &held), 0);
	ck_assert_int_eq(held, 0);

	/* rlock: counts, one token. */
	ck_assert_int_eq(dlm_acquire(a, "r", DLM_RLOCK, 0, &t1), 0);
	ck_assert_int_eq(dlm_acquire(a, "r", DLM_RLOCK, 0, &t2), 0);
	ck_assert_uint_eq(t1, t2);
	ck_assert_int_eq(dlm_acquire(a, "r", 0, 0, NULL), DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(dlm_release(a, "r"), 0);
	ck_assert_int_eq(dlm_holds(a, "r", NULL), 1);
	ck_assert_int_eq(dlm_release(a, "r"), 0);
	ck_assert_int_eq(dlm_holds(a, "r", NULL), 0);

	/* shared */
	ck_assert_int_eq(dlm_acquire(a, "s", DLM_SHARED, 0, &t1), 0);
	ck_assert_int_eq(dlm_acquire(b, "s", DLM_SHARED, 0, &t2), 0);
	ck_assert_int_eq(dlm_acquire(b, "s2", 0, 0, &t3), 0);
	ck_assert_int_eq(dlm_reset(b), 0);
	ck_assert_int_eq(dlm_holds(b, "s", NULL), 0);
	ck_assert_int_eq(dlm_holds(b, "s2", NULL), 0);
	ck_assert_int_eq(dlm_acquire(a, "s2", 0, 0, NULL), 0);

	ck_assert_int_eq(dlm_acquire(a, "", 0, 0, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire(a, NULL, 0, 0, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire(a, "z", 0x80, 0, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire(a, "z", 0, -5, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire(NULL, "z", 0, 0, NULL), DLM_E_INVALID);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* The generic call: results decoded, server errors with their sentence. */
static void	pump(struct dlm_client *, const int *, int);

/* Another thread's message for the same client is its own. */
static void *
errmsg_of_other_thread(void *arg)
{
	struct dlm_client *c = arg;

	return (void *)(dlm_errmsg(c)[0] == '\0' &&
	    dlm_acquire(c, "m", 0, DLM_TRY, NULL) == DLM_E_WOULD_BLOCK &&
	    strstr(dlm_errmsg(c), "another thread") != NULL ? c : NULL);
}

struct errmsg_seen {
	int	 done;
	int	 err;
	char	 msg[256];
};

static void
errmsg_in_callback(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct errmsg_seen *s = arg;

	(void)token;
	s->err = err;
	snprintf(s->msg, sizeof s->msg, "%s", dlm_errmsg(c));
	s->done = 1;
}

/*
 * The server's sentence is kept per thread and client: a caller reads why
 * its call failed (who holds the lock), in an async callback too; and a
 * failed connect says why with dlm_errmsg(NULL).
 */
START_TEST(last_error_message)
{
	struct dlm_client *holder = client("web-1", 0, 0), *c = client("c", 0, 0);
	struct errmsg_seen seen = { 0, 0, "" };
	struct dlm_options o;
	void *ok = NULL;
	pthread_t th;
	int err = 0;

	ck_assert_str_eq(dlm_errmsg(c), "");
	ck_assert_int_eq(dlm_acquire(holder, "x", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "x", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_msg(strstr(dlm_errmsg(c), "web-1") != NULL, "%s",
	    dlm_errmsg(c));
	ck_assert_str_eq(dlm_errmsg(holder), "");
	ck_assert_int_eq(dlm_release(c, "x"), DLM_E_NOT_HELD);
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "'x'"));
	ck_assert_int_eq(dlm_acquire(c, "y", 0, 0, NULL), 0);
	ck_assert_str_eq(dlm_errmsg(c), "");
	/* Per thread: another thread has its own, this one keeps its. */
	ck_assert_int_eq(dlm_acquire(c, "m", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "", 0, 0, NULL), DLM_E_INVALID);
	pthread_create(&th, NULL, errmsg_of_other_thread, c);
	pthread_join(th, &ok);
	ck_assert_ptr_eq(ok, c);
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "lock name"));
	/* In an async callback: that request's. */
	ck_assert_int_eq(dlm_acquire_async(c, "x", 0, DLM_TRY,
	    errmsg_in_callback, &seen), 0);
	pump(c, &seen.done, 1);
	ck_assert_int_eq(seen.err, DLM_E_WOULD_BLOCK);
	ck_assert_msg(strstr(seen.msg, "web-1") != NULL, "%s", seen.msg);
	/* A failed connect: the address and the system's reason. */
	ck_assert_ptr_null(dlm_connect("unix:/nonexistent/dlm.sock", NULL,
	    &err));
	ck_assert_int_eq(err, DLM_E_CONNECT);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "/nonexistent/dlm.sock") !=
	    NULL && strstr(dlm_errmsg(NULL), "No such file") != NULL, "%s",
	    dlm_errmsg(NULL));
	/* Refused by the server: its sentence. */
	dlm_options_init(&o);
	o.client = "web-1";
	ck_assert_ptr_null(dlm_connect(server, &o, &err));
	ck_assert_int_eq(err, DLM_E_NAME_IN_USE);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "web-1") != NULL, "%s",
	    dlm_errmsg(NULL));
	ck_assert_ptr_null(dlm_connect("bogus:", NULL, &err));
	ck_assert_int_eq(err, DLM_E_ADDRESS);
	ck_assert_str_ne(dlm_errmsg(NULL), "");
	/* Messages of many clients since closed do not pile up or leak. */
	for (int i = 0; i < 20; i++) {
		struct dlm_client *t = client(NULL, 0, 0);

		ck_assert_int_eq(dlm_release(t, "none"), DLM_E_NOT_HELD);
		ck_assert_str_ne(dlm_errmsg(t), "");
		if (i % 2 == 0)
			dlm_close(t);
		else {
			pthread_create(&th, NULL, errmsg_of_other_thread, t);
			pthread_join(th, NULL);
			dlm_close(t);
		}
	}
	/* c's is still the last callback's. */
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "web-1"));
	dlm_close(c);
	dlm_close(holder);
}
END_TEST

/*
 * struct dlm_options can grow: the library reads the caller's size of it.
 * Filled by hand (size 0) is this release's layout; a smaller size is no
 * layout there ever was; a newer, larger one is fine while the fields
 * this library does not know are unset.
 */
START_TEST(options_read_by_their_size)
{
	struct {
		struct dlm_options	 o;
		uint64_t		 newer[4];
	} big;
	struct dlm_options o = { .client = "by-hand" };
	struct dlm_client *c;
	int err = -1;

	c = dlm_connect(server, &o, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(dlm_client_name(c), "by-hand");
	dlm_close(c);

	dlm_options_init(&o);
	ck_assert_uint_eq(o.size, sizeof o);
	/* Smaller than the first layout, which ended with on_lost_arg. */
	o.size = offsetof(struct dlm_options, on_lost_arg);
	ck_assert_ptr_null(dlm_connect(server, &o, &err));
	ck_assert_int_eq(err, DLM_E_INVALID);
	/* The first layout, from before on_contended. */
	o.size = offsetof(struct dlm_options, on_contended);
	o.client = "first-layout";
	c = dlm_connect(server, &o, &err);
	ck_assert_ptr_nonnull(c);
	dlm_close(c);
	o.client = NULL;

	memset(&big, 0, sizeof big);
	dlm_options_init(&big.o);
	big.o.size = sizeof big;
	big.o.client = "newer";
	c = dlm_connect(server, &big.o, &err);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(dlm_client_name(c), "newer");
	dlm_close(c);
	big.newer[2] = 1;
	ck_assert_ptr_null(dlm_connect(server, &big.o, &err));
	ck_assert_int_eq(err, DLM_E_INVALID);
	ck_assert_ptr_null(dlm_connect_loop(server, &big.o, &err));
	ck_assert_int_eq(err, DLM_E_INVALID);
	ck_assert_str_ne(dlm_errmsg(NULL), "");
	dlm_free(NULL);
}
END_TEST

START_TEST(acquire_opts_read_by_their_size)
{
	struct {
		struct dlm_acquire_opts	 o;
		uint64_t		 newer[4];
	} big;
	struct dlm_acquire_opts o, hand = { .flags = 0 };
	struct dlm_client *c = dlm_connect(server, NULL, NULL);
	uint64_t t1 = 0, t2 = 0;

	ck_assert_ptr_nonnull(c);
	dlm_acquire_opts_init(&o);
	ck_assert_uint_eq(o.size, sizeof o);
	ck_assert_int_eq(o.timeout_ms, DLM_FOREVER);
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-a", NULL, &t1), 0);
	ck_assert_uint_gt(t1, 0);
	ck_assert_int_eq(dlm_holds(c, "ex-a", &t2), 1);
	ck_assert_uint_eq(t1, t2);
	o.flags = DLM_RLOCK | DLM_SHARED;
	o.timeout_ms = DLM_TRY;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-b", &o, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "ex-b", DLM_TRY, 0, NULL),
	    DLM_E_KIND_MISMATCH);
	/* Unsized, unknown flags, a bad timeout: refused before sending. */
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &hand, NULL),
	    DLM_E_INVALID);
	ck_assert_str_ne(dlm_errmsg(c), "");
	o.flags = 0x40000000;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &o, NULL), DLM_E_INVALID);
	o.flags = 0;
	o.timeout_ms = -2;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &o, NULL), DLM_E_INVALID);
	o.timeout_ms = DLM_TRY;
	o.lock_delay_ms = -1;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &o, NULL), DLM_E_INVALID);
	/* Over the server's cap (a minute by default): its LIMIT. */
	o.lock_delay_ms = 60001;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &o, NULL), DLM_E_LIMIT);
	ck_assert(strstr(dlm_errmsg(c), "max-lock-delay") != NULL);
	o.lock_delay_ms = 0;
	/* The layout before lock_delay_ms is read by its size. */
	o.size = offsetof(struct dlm_acquire_opts, lock_delay_ms);
	o.lock_delay_ms = 5;	/* past that size: not read */
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-e", &o, NULL), 0);
	ck_assert(!lock_listing_has(c, "ex-e", "lock_delay_ms"));
	o.size = sizeof o;
	o.lock_delay_ms = 5;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-f", &o, NULL), 0);
	ck_assert(lock_listing_has(c, "ex-f", "lock_delay_ms"));
	o.lock_delay_ms = 0;
	/* A newer program's struct: read by its size, its new fields unset. */
	memset(&big, 0, sizeof big);
	dlm_acquire_opts_init(&big.o);
	big.o.size = sizeof big;
	big.o.timeout_ms = DLM_TRY;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-c", &big.o, NULL), 0);
	big.newer[1] = 7;
	ck_assert_int_eq(dlm_acquire_ex(c, "ex-d", &big.o, NULL),
	    DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire_ex_async(c, "ex-d", &big.o, NULL, NULL,
	    NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_holds(c, "ex-d", NULL), 0);
	dlm_close(c);
}
END_TEST

START_TEST(generic_call)
{
	struct dlm_client *c = client("caller", 0, 0);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	void *res = NULL;
	size_t len = 0, off = 0;
	char *msg = NULL;
	bool found = false;

	ck_assert_int_eq(dlm_acquire(c, "seen", 0, 0, NULL), 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "lock", 4);
	msgpack_pack_str_with_body(&pk, "seen", 4);
	ck_assert_int_eq(dlm_call(c, "lock", sb.data, sb.size, &res, &len,
	    &msg), 0);
	ck_assert_ptr_null(msg);
	msgpack_unpacked_init(&u);
	ck_assert_int_eq(msgpack_unpack_next(&u, res, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(u.data.type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < u.data.via.map.size; i++) {
		msgpack_object_kv *kv = &u.data.via.map.ptr[i];

		if (kv->key.via.str.size == 4 &&
		    memcmp(kv->key.via.str.ptr, "name", 4) == 0)
			found = kv->val.via.str.size == 4 &&
			    memcmp(kv->val.via.str.ptr, "seen", 4) == 0;
	}
	ck_assert(found);
	msgpack_unpacked_destroy(&u);
	dlm_free(res);

	/* A server error comes with its sentence. */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "lock", 4);
	msgpack_pack_str_with_body(&pk, "nope", 4);
	ck_assert_int_eq(dlm_call(c, "lock", sb.data, sb.size, &res, &len,
	    &msg), DLM_E_NOT_FOUND);
	ck_assert_ptr_null(res);
	ck_assert_ptr_nonnull(msg);
	ck_assert(strstr(msg, "nope") != NULL);
	dlm_free(msg);

	/* No params; and the calls the library tracks itself are refused. */
	ck_assert_int_eq(dlm_call(c, "stats", NULL, 0, &res, &len, NULL), 0);
	dlm_free(res);
	ck_assert_int_eq(dlm_call(c, "release", sb.data, sb.size, NULL, NULL,
	    NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_call(c, "acquire", sb.data, sb.size, NULL, NULL,
	    NULL), DLM_E_INVALID);
	/* Params that are not one map would cut the session: refused. */
	ck_assert_int_eq(dlm_call(c, "stats", "\x91\x01", 2, NULL, NULL,
	    NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_call(c, "stats", sb.data, sb.size - 1, NULL,
	    NULL, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_call(c, "stats", NULL, 3, NULL, NULL, NULL),
	    DLM_E_INVALID);
	ck_assert_int_eq(dlm_call(c, "no_such_method", NULL, 0, NULL, NULL,
	    NULL), DLM_E_BAD_REQUEST);
	/* Still the same session, still holding. */
	ck_assert_int_eq(dlm_holds(c, "seen", NULL), 1);
	msgpack_sbuffer_destroy(&sb);
	dlm_close(c);
}
END_TEST

START_TEST(error_strings)
{
	/* Every row of the one list, as a user of <dlm.h> can expand it. */
	static const struct {
		int		 code;
		const char	*name;
		const char	*sentence;
	} rows[] = {
#define ROW(constant, value, name, sentence)	\
		{ constant, name, sentence },
		DLM_ERRORS(ROW)
#undef ROW
	};
	size_t n = sizeof rows / sizeof rows[0];

	ck_assert_uint_eq(n, 25);
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_eq(dlm_errname(rows[i].code), rows[i].name);
		ck_assert_str_eq(dlm_strerror(rows[i].code), rows[i].sentence);
		ck_assert_uint_gt(strlen(rows[i].sentence), 5);
		for (size_t j = 0; j < i; j++) {
			ck_assert_int_ne(rows[i].code, rows[j].code);
			ck_assert_str_ne(rows[i].name, rows[j].name);
		}
	}
	/* The values are the released ones: a user's binary has them. */
	ck_assert_int_eq(DLM_OK, 0);
	ck_assert_int_eq(DLM_E_TIMEOUT, 5);
	ck_assert_int_eq(DLM_E_UNSUPPORTED, 15);
	ck_assert_int_eq(DLM_E_NOT_ACTIVE, 16);
	ck_assert_int_eq(DLM_E_CONNECT, 100);
	ck_assert_int_eq(DLM_E_ADDRESS, 107);
	ck_assert_str_eq(dlm_errname(DLM_E_TIMEOUT), "TIMEOUT");
	ck_assert_str_eq(dlm_errname(DLM_E_WOULD_BLOCK), "WOULD_BLOCK");
	ck_assert_str_eq(dlm_errname(DLM_E_FORKED), "FORKED");
	ck_assert_str_eq(dlm_errname(12345), "UNKNOWN");
	ck_assert_str_eq(dlm_errname(16), "NOT_ACTIVE");
	ck_assert_str_eq(dlm_errname(17), "UNKNOWN");
	ck_assert_str_eq(dlm_errname(99), "UNKNOWN");
	ck_assert_str_eq(dlm_errname(108), "UNKNOWN");
	ck_assert_str_eq(dlm_strerror(-3), "unknown error");
	ck_assert_str_eq(dlm_strerror(108), "unknown error");
}
END_TEST

/* Many threads, one lock, one shared counter that must never see two. */
struct hammer {
	struct dlm_client	*c;
	int			 rounds;
	int			*inside;
	int			*total;
	int			*overlaps;
	pthread_mutex_t		*mu;
};

static void *
hammer_main(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < h->rounds; i++) {
		int now_inside;

		/* Odd rounds wait with a timeout, even ones for ever. */
		ck_assert_int_eq(dlm_acquire(h->c, "hammer", 0,
		    i % 2 ? 20000 : DLM_FOREVER, NULL), 0);
		pthread_mutex_lock(h->mu);
		now_inside = ++*h->inside;
		if (now_inside != 1)
			++*h->overlaps;
		pthread_mutex_unlock(h->mu);
		usleep(100);
		pthread_mutex_lock(h->mu);
		--*h->inside;
		++*h->total;
		pthread_mutex_unlock(h->mu);
		ck_assert_int_eq(dlm_release(h->c, "hammer"), 0);
	}
	return NULL;
}

START_TEST(threads_hammer_one_lock)
{
	enum { THREADS = 8, ROUNDS = 60 };
	struct dlm_client *c1 = client("h1", 0, 0), *c2 = client("h2", 0, 0);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_t th[THREADS];
	struct hammer h[THREADS];
	int inside = 0, total = 0, overlaps = 0;

	/* Half the threads share one client, half another. */
	for (int i = 0; i < THREADS; i++) {
		h[i] = (struct hammer){ i % 2 ? c1 : c2, ROUNDS, &inside,
		    &total, &overlaps, &mu };
		pthread_create(&th[i], NULL, hammer_main, &h[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(overlaps, 0);
	ck_assert_int_eq(total, THREADS * ROUNDS);
	dlm_close(c1);
	dlm_close(c2);
}
END_TEST

struct waiter {
	struct dlm_client	*c;
	char			 lock[16];
	int			 rc;
	int			 timeout;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = dlm_acquire(w->c, w->lock, 0, w->timeout, NULL);
	return NULL;
}

struct fifo_arg {
	struct dlm_client	*c;
	int			 id;
	int			*order;
	int			*n;
	pthread_mutex_t		*mu;
};

static void *
fifo_main(void *arg)
{
	struct fifo_arg *a = arg;

	ck_assert_int_eq(dlm_acquire(a->c, "fifo", 0, 20000, NULL), 0);
	pthread_mutex_lock(a->mu);
	a->order[(*a->n)++] = a->id;
	pthread_mutex_unlock(a->mu);
	ck_assert_int_eq(dlm_release(a->c, "fifo"), 0);
	return NULL;
}

/* Threads of one client get a lock in the order they asked for it. */
START_TEST(threads_of_one_client_served_in_order)
{
	enum { N = 5 };
	struct dlm_client *c = client("fifo", 0, 0);
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct fifo_arg a[N];
	pthread_t th[N];
	int order[N] = { 0 }, n = 0;

	ck_assert_int_eq(dlm_acquire(c, "fifo", 0, 0, NULL), 0);
	for (int i = 0; i < N; i++) {
		a[i] = (struct fifo_arg){ c, i, order, &n, &mu };
		pthread_create(&th[i], NULL, fifo_main, &a[i]);
		sleep_ms(50);	/* let each queue before the next */
	}
	ck_assert_int_eq(dlm_release(c, "fifo"), 0);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(n, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(order[i], i);
	dlm_close(c);
}
END_TEST

START_TEST(threads_wait_on_different_locks)
{
	enum { N = 6 };
	struct dlm_client *holder = client("holder", 0, 0);
	struct dlm_client *c = client("shared-client", 0, 0);
	pthread_t th[N];
	struct waiter w[N];

	memset(w, 0, sizeof w);
	for (int i = 0; i < N; i++) {
		snprintf(w[i].lock, sizeof w[i].lock, "d%d", i);
		ck_assert_int_eq(dlm_acquire(holder, w[i].lock, 0, 0, NULL), 0);
	}
	for (int i = 0; i < N; i++) {
		w[i].c = c;
		w[i].rc = -1;
		w[i].timeout = DLM_FOREVER;
		pthread_create(&th[i], NULL, waiter_main, &w[i]);
	}
	sleep_ms(200);
	/* All waiting at once through one client; release in reverse. */
	for (int i = N - 1; i >= 0; i--)
		ck_assert_int_eq(dlm_release(holder, w[i].lock), 0);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].rc, 0);
		ck_assert_int_eq(dlm_holds(c, w[i].lock, NULL), 1);
	}
	dlm_close(holder);
	dlm_close(c);
}
END_TEST

START_TEST(long_critical_section_keeps_lock)
{
	struct dlm_client *a = client("sleeper", 300, 0);
	struct dlm_client *b = client("b", 0, 0);
	uint64_t t = 0;
	int held = 0;

	ck_assert_int_eq(dlm_acquire(a, "long", 0, 0, &t), 0);
	/* Three and a half leases without a call: the library pings. */
	sleep_ms(1050);
	ck_assert_int_eq(dlm_holds(a, "long", NULL), 1);
	ck_assert_int_eq(dlm_acquire(b, "long", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(dlm_check(b, "long", t, &held), 0);
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(dlm_release(a, "long"), 0);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

START_TEST(sigkill_holder_releases_to_waiter)
{
	struct dlm_client *b;
	int pfd[2];
	pid_t pid;
	char ok;
	uint64_t start;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dlm_client *c = dlm_connect(server, NULL, NULL);

		if (c == NULL || dlm_acquire(c, "k", 0, 0, NULL) != 0 ||
		    write(pfd[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	b = client("waiter", 0, 0);
	ck_assert_int_eq(dlm_acquire(b, "k", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	start = mono_ms();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(dlm_acquire(b, "k", 0, 5000, NULL), 0);
	ck_assert_uint_lt(mono_ms() - start, 5000);
	dlm_close(b);
}
END_TEST

static struct dlm_client *other;

/* Another client can take the lock: it is free. */
static void
assert_free(const char *lock)
{
	ck_assert_int_eq(dlm_acquire(other, lock, 0, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_release(other, lock), 0);
}

static int
add_token(void *arg, uint64_t token)
{
	*(uint64_t *)arg = token;
	ck_assert_int_eq(dlm_acquire(other, "cb", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	return 42;
}

static int
leave_by_return(struct dlm_client *c)
{
	DLM_LOCKED(s, c, "ret", 0, DLM_TRY) {
		ck_assert_uint_gt(s.token, 0);
		return 7;
	}
	return -1;
}

START_TEST(scoped_forms_release_on_every_exit)
{
	struct dlm_client *c = client("scoped", 0, 0);
	uint64_t token = 0;
	int ran = 0, i;

	other = client("other", 0, 0);
	ck_assert_int_eq(dlm_with_lock(c, "cb", 0, DLM_TRY, add_token, &token),
	    42);
	ck_assert_uint_gt(token, 0);
	assert_free("cb");

	/* Falling off the end. */
	DLM_LOCKED(s, c, "end", 0, DLM_TRY) {
		ran++;
		ck_assert_int_eq(dlm_acquire(other, "end", 0, 0, NULL),
		    DLM_E_WOULD_BLOCK);
	}
	ck_assert_int_eq(ran, 1);
	assert_free("end");

	/*
	 * break and continue leave the block, not a loop around it, as
	 * dlm_with_lock(3) says: the loop's next iterations run.
	 */
	ran = 0;
	for (i = 0; i < 3; i++) {
		DLM_LOCKED(s, c, "brk", 0, DLM_TRY) {
			if (i == 1)
				break;
			ran++;
		}
		ran += 10;
	}
	ck_assert_int_eq(i, 3);
	ck_assert_int_eq(ran, 32);
	assert_free("brk");
	ran = 0;
	for (i = 0; i < 3; i++) {
		DLM_LOCKED(s, c, "cont", 0, DLM_TRY) {
			if (i == 1)
				continue;
			ran++;
		}
		ran += 10;
	}
	ck_assert_int_eq(ran, 32);
	assert_free("cont");
	/* The page's way out of the loop: a flag, and break after. */
	ran = 0;
	for (i = 0; i < 3; i++) {
		int stop = 0;

		DLM_LOCKED(s, c, "flag", 0, DLM_TRY) {
			if (i == 1) {
				stop = 1;
				break;
			}
		}
		if (stop)
			break;
		ran++;
	}
	ck_assert_int_eq(i, 1);
	ck_assert_int_eq(ran, 1);
	assert_free("flag");
	ran = 0;
	DLM_LOCKED(s, c, "brk2", 0, DLM_TRY) {
		ran++;
		break;
	}
	assert_free("brk2");

	/* return */
	ck_assert_int_eq(leave_by_return(c), 7);
	assert_free("ret");

	/* goto */
	DLM_LOCKED(s, c, "goto", 0, DLM_TRY) {
		goto out;
	}
	ck_abort_msg("goto did not leave the block");
out:
	assert_free("goto");

	/* The else branch, when the lock is not free. */
	ck_assert_int_eq(dlm_acquire(other, "busy", 0, 0, NULL), 0);
	ran = 0;
	DLM_LOCKED(s, c, "busy", 0, DLM_TRY) {
		ck_abort_msg("ran without the lock");
	} else {
		ck_assert_int_eq(s.err, DLM_E_WOULD_BLOCK);
		ran = 1;
	}
	ck_assert_int_eq(ran, 1);
	/* ... and its failed scope released nothing of the other's. */
	ck_assert_int_eq(dlm_holds(other, "busy", NULL), 1);
	ck_assert_int_eq(dlm_with_lock(c, "busy", 0, DLM_TRY, add_token,
	    &token), DLM_E_WOULD_BLOCK);
	dlm_close(c);
	dlm_close(other);
}
END_TEST

struct async_count {
	int	acquired;
	int	failed;
	int	released;
	int	last_err;
};

static void
on_acquired(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct async_count *n = arg;

	if (err == 0 && token > 0)
		n->acquired++;
	else {
		n->failed++;
		n->last_err = err;
	}
}

static void
on_released(struct dlm_client *c, int err, void *arg)
{
	struct async_count *n = arg;

	if (err == 0)
		n->released++;
	else
		n->failed++;
}

/* Run the program's "event loop" until cond holds or 5 s pass. */
static void
pump(struct dlm_client *c, const int *value, int want)
{
	uint64_t deadline = mono_ms() + 5000;

	while (*value < want && mono_ms() < deadline) {
		struct pollfd pfd = { dlm_async_fd(c), POLLIN, 0 };

		if (poll(&pfd, 1, 100) == 1)
			dlm_async_dispatch(c);
	}
	ck_assert_int_eq(*value, want);
}

START_TEST(async_many_in_flight)
{
	enum { N = 300 };
	struct dlm_client *c = client("async", 0, 0), *b = client("b", 0, 0);
	struct async_count n = { 0, 0, 0, 0 };
	char name[32];

	ck_assert_int_ge(dlm_async_fd(c), 0);
	ck_assert_int_eq(dlm_async_dispatch(c), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "a/%d", i);
		ck_assert_int_eq(dlm_acquire_async(c, name, 0, DLM_FOREVER,
		    on_acquired, &n), 0);
	}
	pump(c, &n.acquired, N);
	ck_assert_int_eq(dlm_holds(c, "a/17", NULL), 1);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "a/%d", i);
		ck_assert_int_eq(dlm_release_async(c, name, on_released, &n), 0);
	}
	pump(c, &n.released, N);
	ck_assert_int_eq(n.failed, 0);

	/* A waiting async acquire completes when the holder lets go. */
	ck_assert_int_eq(dlm_acquire(b, "later", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async(c, "later", 0, DLM_FOREVER,
	    on_acquired, &n), 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_async_dispatch(c), 0);
	ck_assert_int_eq(dlm_release(b, "later"), 0);
	pump(c, &n.acquired, N + 1);

	/* One still waiting at close: its callback runs, once, with an error. */
	ck_assert_int_eq(dlm_acquire(b, "never", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async(c, "never", 0, DLM_FOREVER,
	    on_acquired, &n), 0);
	sleep_ms(100);
	dlm_close(c);
	ck_assert_int_eq(n.failed, 1);
	ck_assert_int_ne(n.last_err, 0);
	dlm_close(b);
}
END_TEST

/*
 * Lock names longer than the room a request's params are packed in on the
 * stack go whole, by every call that sends one; and thousands of answers
 * in flight, read in chunks that end inside a frame, all arrive.
 */
START_TEST(long_names_and_many_answers)
{
	enum { N = 4000, LONG = 900 };
	struct dlmd_proc t;
	struct dlm_client *c;
	struct async_count n = { 0, 0, 0, 0 };
	char srv[400], name[LONG + 1], second[LONG + 1];
	uint64_t tok = 0;
	int held = -1;

	dlmd_start_tcp(&t, "--max-name-len", "1000", (char *)NULL);
	snprintf(srv, sizeof srv, "unix:%s", t.sock);
	c = dlm_connect(srv, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	memset(name, 'n', LONG);
	name[LONG] = '\0';
	memcpy(second, name, sizeof second);
	second[0] = 'o';
	ck_assert_int_eq(dlm_acquire(c, name, 0, 0, &tok), 0);
	ck_assert_int_eq(dlm_check(c, name, tok, &held), 0);
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(dlm_release(c, name), 0);
	ck_assert_int_eq(dlm_acquire_async(c, second, 0, 0, on_acquired, &n),
	    0);
	pump(c, &n.acquired, 1);
	ck_assert_int_eq(dlm_holds(c, second, NULL), 1);
	ck_assert_int_eq(dlm_release_async(c, second, on_released, &n), 0);
	pump(c, &n.released, 1);

	n.acquired = n.released = 0;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "many/%d", i);
		ck_assert_int_eq(dlm_acquire_async(c, name, 0, DLM_TRY,
		    on_acquired, &n), 0);
	}
	pump(c, &n.acquired, N);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof name, "many/%d", i);
		ck_assert_int_eq(dlm_release_async(c, name, on_released, &n),
		    0);
	}
	pump(c, &n.released, N);
	ck_assert_int_eq(n.failed, 0);
	dlm_close(c);
	dlmd_stop_clean(&t);
}
END_TEST

struct lost_log {
	pthread_mutex_t	mu;
	int		n;
	int		reason;
	uint64_t	token;
	char		lock[64];
};

static void
on_lost(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    void *arg)
{
	struct lost_log *l = arg;

	/* A blocking call from here is refused, not a deadlock. */
	if (reason != DLM_LOST_SESSION)
		ck_assert_int_eq(dlm_acquire(c, "from-callback", 0, 0, NULL),
		    DLM_E_INVALID);
	pthread_mutex_lock(&l->mu);
	l->n++;
	l->reason = reason;
	l->token = token;
	snprintf(l->lock, sizeof l->lock, "%s", lock);
	pthread_mutex_unlock(&l->mu);
}

static int
lost_count(struct lost_log *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/*
 * Up to 20 s: a lost notice after a server restart waits for the
 * restart, the back-off and a hello, which a loaded machine (a parallel
 * make check beside the cluster and load suites) has been seen to take
 * past 5 s.
 */
static void
wait_lost(struct lost_log *l, int want)
{
	for (int i = 0; i < 2000 && lost_count(l) < want; i++)
		sleep_ms(10);
	ck_assert_int_eq(lost_count(l), want);
}

/*
 * An operator session force-releases "job", held by the client under token
 * t, and on_lost must report it (the first notice in l); returns the
 * operator's connection.
 */
static struct tc *
force_release_job(struct lost_log *l, uint64_t t)
{
	struct tc *op = tc_connect(&d);

	tc_hello(op, "operator");
	ck_assert_int_eq(tc_call(op, "force_release", "lock:s", "job")->err, 0);
	wait_lost(l, 1);
	ck_assert_str_eq(l->lock, "job");
	ck_assert_uint_eq(l->token, t);
	ck_assert_int_eq(l->reason, DLM_LOST_FORCED);
	return op;
}

START_TEST(lost_callback_on_force_release)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_options o;
	struct dlm_client *c;
	struct tc *op;
	uint64_t t;

	dlm_options_init(&o);
	o.client = "victim";
	o.on_lost = on_lost;
	o.on_lost_arg = &l;
	c = dlm_connect(server, &o, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(dlm_acquire(c, "job", 0, 0, &t), 0);
	op = force_release_job(&l, t);
	ck_assert_int_eq(dlm_holds(c, "job", NULL), 0);
	/* The thread may take it again straight away, without a release. */
	ck_assert_int_eq(dlm_acquire(c, "job", 0, 0, &t), 0);
	ck_assert_int_eq(tc_call(op, "force_release", "lock:s", "job")->err, 0);
	wait_lost(&l, 2);
	/* The client works on, and may take the lock again. */
	ck_assert_int_eq(dlm_release(c, "job"), DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_acquire(c, "job", 0, 0, NULL), 0);
	tc_close(op);
	dlm_close(c);
}
END_TEST

struct blocked_acquire {
	struct dlm_client	*c;
	int			 rc;
};

static void *
acquire_waiting(void *arg)
{
	struct blocked_acquire *b = arg;

	b->rc = dlm_acquire(b->c, "busy", 0, 10000, NULL);
	return NULL;
}

/*
 * A caller waiting for its reply reads the socket itself; a lost notice it
 * reads meanwhile still reaches on_lost, on the client's own thread (where
 * the callback's blocking call is refused, not deadlocked).
 */
START_TEST(lost_notice_read_by_a_waiting_caller)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct blocked_acquire b;
	struct dlm_options o;
	struct dlm_client *holder = client("holder", 0, 0);
	struct tc *op;
	pthread_t th;
	uint64_t t;

	dlm_options_init(&o);
	o.client = "victim";
	o.on_lost = on_lost;
	o.on_lost_arg = &l;
	b.c = dlm_connect(server, &o, NULL);
	ck_assert_ptr_nonnull(b.c);
	ck_assert_int_eq(dlm_acquire(b.c, "job", 0, 0, &t), 0);
	ck_assert_int_eq(dlm_acquire(holder, "busy", 0, 0, NULL), 0);
	/* A thread of victim waits for "busy", reading the socket. */
	pthread_create(&th, NULL, acquire_waiting, &b);
	sleep_ms(100);
	op = force_release_job(&l, t);
	/* The waiting caller is still served. */
	ck_assert_int_eq(dlm_release(holder, "busy"), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(b.rc, 0);
	/* That thread's mutex is not this one's to release. */
	ck_assert_int_eq(dlm_release(b.c, "busy"), DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_holds(b.c, "busy", NULL), 1);
	tc_close(op);
	dlm_close(b.c);
	dlm_close(holder);
}
END_TEST

/* A client of dlmd through a fresh relay r; l (may be NULL) logs losses. */
static struct dlm_client *
relay_client(struct relay *r, const char *name, int lease_ms, int linger_ms,
    struct lost_log *l)
{
	struct dlm_options o;
	struct dlm_client *c;
	char via[64];
	int err = -1;

	relay_start(r, d.port);
	snprintf(via, sizeof via, "tcp:127.0.0.1:%d", r->port);
	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = lease_ms;
	o.linger_ms = linger_ms;
	if (l != NULL) {
		o.on_lost = on_lost;
		o.on_lost_arg = l;
	}
	c = dlm_connect(via, &o, &err);
	ck_assert_msg(c != NULL, "%s", dlm_strerror(err));
	return c;
}

START_TEST(dropped_connection_resumes_with_linger)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *b = client("b", 0, 0);
	struct relay r;
	struct waiter w;
	pthread_t th;
	uint64_t t = 0, t2 = 0;
	int held = 0;

	c = relay_client(&r, "roamer", 0, 5000, &l);
	ck_assert_int_eq(dlm_acquire(c, "kept", 0, 0, &t), 0);

	/* A wait in flight when the link drops fails; it does not hang. */
	ck_assert_int_eq(dlm_acquire(b, "busy", 0, 0, NULL), 0);
	memset(&w, 0, sizeof w);
	w.c = c;
	snprintf(w.lock, sizeof w.lock, "busy");
	w.timeout = DLM_FOREVER;
	w.rc = -1;
	pthread_create(&th, NULL, waiter_main, &w);
	sleep_ms(200);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, DLM_E_DISCONNECTED);

	/* The library reconnects and resumes: the hold is still ours. */
	ck_assert_int_eq(dlm_release(b, "busy"), 0);
	ck_assert_int_eq(dlm_acquire(c, "other", 0, 5000, NULL), 0);
	ck_assert_int_eq(dlm_holds(c, "kept", &t2), 1);
	ck_assert_uint_eq(t2, t);
	ck_assert_int_eq(dlm_check(b, "kept", t, &held), 0);
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(lost_count(&l), 0);
	ck_assert_int_eq(dlm_release(c, "kept"), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

/*
 * The lock is granted, but the grant is lost with the connection: the
 * caller hears DISCONNECTED. After the resume the library must release that
 * grant, or the session would keep a lock nobody knows it has.
 */
START_TEST(grant_lost_in_flight_is_released)
{
	struct dlm_client *c, *b = client("b", 0, 0);
	struct relay r;
	struct waiter w;
	pthread_t th;

	c = relay_client(&r, "unlucky", 0, 5000, NULL);
	ck_assert_int_eq(dlm_acquire(b, "ph", 0, 0, NULL), 0);
	memset(&w, 0, sizeof w);
	w.c = c;
	snprintf(w.lock, sizeof w.lock, "ph");
	w.timeout = DLM_FOREVER;
	w.rc = -1;
	pthread_create(&th, NULL, waiter_main, &w);
	sleep_ms(200);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	sleep_ms(100);		/* the relay polls in 20 ms steps */
	ck_assert_int_eq(dlm_release(b, "ph"), 0);	/* granted to c... */
	sleep_ms(100);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);	/* ...unheard */
	__atomic_store_n(&r.freeze, 0, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.rc, DLM_E_DISCONNECTED);
	ck_assert_int_eq(dlm_holds(c, "ph", NULL), 0);
	/* Resumed, the phantom grant is given back: b can have the lock. */
	ck_assert_int_eq(dlm_acquire(b, "ph", 0, 5000, NULL), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

START_TEST(dropped_connection_without_linger)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *b = client("b", 0, 0);
	struct relay r;
	uint64_t t;

	c = relay_client(&r, "fragile", 0, 0, &l);
	ck_assert_int_eq(dlm_acquire(c, "gone", 0, 0, &t), 0);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	wait_lost(&l, 1);
	ck_assert_int_eq(l.reason, DLM_LOST_SESSION);
	ck_assert_uint_eq(l.token, t);
	ck_assert_int_eq(dlm_holds(c, "gone", NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, NULL), DLM_E_CLOSED);
	/* The server released it at once. */
	ck_assert_int_eq(dlm_acquire(b, "gone", 0, 5000, NULL), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

/*
 * Replies stop coming (a one-way partition, or a stalled server): when the
 * lease runs out unanswered the library reports the hold lost at once,
 * rather than letting the program work on under a lease it cannot renew.
 */
START_TEST(unanswered_lease_reports_lost)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *b = client("b", 0, 0);
	struct relay r;
	uint64_t t;

	c = relay_client(&r, "deaf", 400, 0, &l);
	ck_assert_int_eq(dlm_acquire(c, "deaf", 0, 0, &t), 0);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	wait_lost(&l, 1);
	ck_assert_int_eq(l.reason, DLM_LOST_EXPIRED);
	ck_assert_uint_eq(l.token, t);
	ck_assert_int_eq(dlm_holds(c, "deaf", NULL), 0);
	/* Without a linger the library gave up the session: b gets it. */
	ck_assert_int_eq(dlm_acquire(b, "deaf", 0, 5000, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, NULL), DLM_E_CLOSED);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

/*
 * The same with a linger, where the server kept the session (the pings got
 * through): after the resume the library gives back the holds it reported
 * lost, so none stays held by a program told it has lost it.
 */
START_TEST(lapsed_holds_are_given_back_after_resume)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *b = client("b", 0, 0);
	struct relay r;

	c = relay_client(&r, "deaf-lingering", 400, 10000, &l);
	ck_assert_int_eq(dlm_acquire(c, "one", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "two", DLM_RLOCK, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "two", DLM_RLOCK, 0, NULL), 0);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	wait_lost(&l, 2);
	ck_assert_int_eq(l.reason, DLM_LOST_EXPIRED);
	__atomic_store_n(&r.freeze, 0, __ATOMIC_RELEASE);
	/* b waits; the resumed session's holds are reset, both are granted. */
	ck_assert_int_eq(dlm_acquire(b, "one", 0, 5000, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "two", DLM_RLOCK, 5000, NULL), 0);
	/* c is usable again and holds nothing. */
	ck_assert_int_eq(dlm_acquire(c, "three", 0, 5000, NULL), 0);
	ck_assert_int_eq(dlm_holds(c, "one", NULL), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

/* Thread A of late_release_cannot_free_a_newer_hold. */
struct late_releaser {
	struct dlm_client	*c;
	uint64_t		 token;
	int			 step;		/* 1 held, 2 go, 3 released */
	int			 acquire_rc;
	int			 release_rc;
};

static void *
late_releaser_main(void *arg)
{
	struct late_releaser *a = arg;

	a->acquire_rc = dlm_acquire(a->c, "x", 0, 0, &a->token);
	__atomic_store_n(&a->step, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&a->step, __ATOMIC_ACQUIRE) != 2)
		sleep_ms(5);
	a->release_rc = dlm_release(a->c, "x");
	__atomic_store_n(&a->step, 3, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Thread A's hold is lost with the lease; thread B of the same client
 * takes the lock anew; A's late dlm_release must fail NOT_HELD and leave
 * B's hold alone, as the server sees it.
 */
START_TEST(late_release_cannot_free_a_newer_hold)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *seer = client("seer", 0, 0);
	struct late_releaser a;
	struct relay r;
	pthread_t th;
	uint64_t t2 = 0;
	int held = 0;

	c = relay_client(&r, "two-threads", 400, 10000, &l);
	memset(&a, 0, sizeof a);
	a.c = c;
	pthread_create(&th, NULL, late_releaser_main, &a);
	while (__atomic_load_n(&a.step, __ATOMIC_ACQUIRE) != 1)
		sleep_ms(5);
	ck_assert_int_eq(a.acquire_rc, 0);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	wait_lost(&l, 1);
	ck_assert_int_eq(l.reason, DLM_LOST_EXPIRED);
	__atomic_store_n(&r.freeze, 0, __ATOMIC_RELEASE);
	/* B, this thread, takes the lock anew once the session is back. */
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 5000, &t2), 0);
	ck_assert_uint_ne(t2, a.token);
	__atomic_store_n(&a.step, 2, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	ck_assert_int_eq(a.release_rc, DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_holds(c, "x", NULL), 1);
	ck_assert_int_eq(dlm_check(seer, "x", t2, &held), 0);
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(dlm_release(c, "x"), 0);
	ck_assert_int_eq(dlm_check(seer, "x", t2, &held), 0);
	ck_assert_int_eq(held, 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(seer);
}
END_TEST

/*
 * The server restarts and has forgotten the session: within the linger
 * the library opens a new session under the same name, reports the old
 * holds lost, and goes on, as dlm(3) says.
 */
START_TEST(server_restart_within_linger_opens_a_new_session)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *c, *b;
	struct relay r;
	uint64_t t;

	c = relay_client(&r, "phoenix", 0, 10000, &l);
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, &t), 0);
	ck_assert_int_eq(dlmd_stop(&d), 0);
	dlmd_start_tcp(&d, "--lease-min", "100", (char *)NULL);
	snprintf(server, sizeof server, "unix:%s", d.sock);
	__atomic_store_n(&r.target, d.port, __ATOMIC_RELEASE);
	wait_lost(&l, 1);
	ck_assert_int_eq(l.reason, DLM_LOST_SESSION);
	ck_assert_uint_eq(l.token, t);
	ck_assert_int_eq(dlm_holds(c, "x", NULL), 0);
	/* Not closed: the calls work, in a session of the same name. */
	ck_assert_int_eq(dlm_acquire(c, "y", 0, 5000, NULL), 0);
	ck_assert_str_eq(dlm_client_name(c), "phoenix");
	b = client("b", 0, 0);
	ck_assert_int_eq(dlm_acquire(b, "y", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_msg(strstr(dlm_errmsg(b), "phoenix") != NULL, "%s",
	    dlm_errmsg(b));
	ck_assert_int_eq(dlm_acquire(b, "x", 0, DLM_TRY, NULL), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

START_TEST(fork_child_gets_clear_error)
{
	struct dlm_client *c = client("parent", 0, 0);
	pid_t pid;
	int status;

	ck_assert_int_eq(dlm_acquire(c, "p", 0, 0, NULL), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int rc = dlm_acquire(c, "q", 0, 0, NULL);

		dlm_close(c);
		_exit(rc == DLM_E_FORKED ? 0 : 1);
	}
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The parent's client is untouched. */
	ck_assert_int_eq(dlm_holds(c, "p", NULL), 1);
	ck_assert_int_eq(dlm_release(c, "p"), 0);
	ck_assert_int_eq(dlm_acquire(c, "q", 0, 0, NULL), 0);
	dlm_close(c);
}
END_TEST

/*
 * A process that holds a lock and forks a long-lived child dies: its lock is
 * released at once, not when the child (which inherited the socket) exits.
 */
START_TEST(fork_child_does_not_keep_parents_locks)
{
	struct dlm_client *b;
	int pfd[2];
	pid_t pid;
	char buf[16];

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dlm_client *c = dlm_connect(server, NULL, NULL);
		pid_t grandchild;

		if (c == NULL || dlm_acquire(c, "inherit", 0, 0, NULL) != 0)
			_exit(1);
		grandchild = fork();
		if (grandchild == 0) {
			sleep(30);
			_exit(0);
		}
		snprintf(buf, sizeof buf, "%d\n", (int)grandchild);
		if (write(pfd[1], buf, strlen(buf)) < 0)
			_exit(1);
		_exit(0);	/* the holder dies; its child lives on */
	}
	close(pfd[1]);
	memset(buf, 0, sizeof buf);
	ck_assert_int_gt(read(pfd[0], buf, sizeof buf - 1), 0);
	close(pfd[0]);
	waitpid(pid, NULL, 0);
	/* Connected only now: no thread of ours is copied into the fork. */
	b = client("b", 0, 0);
	ck_assert_int_eq(dlm_acquire(b, "inherit", 0, 5000, NULL), 0);
	kill(atoi(buf), SIGKILL);
	dlm_close(b);
}
END_TEST

START_TEST(close_wakes_waiting_callers)
{
	struct dlm_client *c = client("closer", 0, 0), *b = client("b", 0, 0);
	struct errmsg_seen seen = { 0, -1, "" };
	struct waiter w;
	pthread_t th;

	ck_assert_int_eq(dlm_acquire(b, "held", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "held2", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async(c, "held2", 0, DLM_FOREVER,
	    errmsg_in_callback, &seen), 0);
	memset(&w, 0, sizeof w);
	w.c = c;
	snprintf(w.lock, sizeof w.lock, "held");
	w.timeout = DLM_FOREVER;
	w.rc = -1;
	pthread_create(&th, NULL, waiter_main, &w);
	sleep_ms(200);
	dlm_close(c);
	pthread_join(th, NULL);
	/* As dlm_connect(3) says: CLOSED, not the bye's CANCELLED. */
	ck_assert_int_eq(w.rc, DLM_E_CLOSED);
	ck_assert_int_eq(seen.done, 1);
	ck_assert_int_eq(seen.err, DLM_E_CLOSED);
	dlm_close(b);
}
END_TEST

START_TEST(server_shutdown_is_reported)
{
	struct dlm_client *c = client("survivor", 0, 0);

	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, NULL), 0);
	ck_assert_int_eq(dlmd_stop(&d), 0);
	/* No linger: the client is closed and says so. */
	for (int i = 0; i < 100 && dlm_acquire(c, "y", 0, 0, NULL) !=
	    DLM_E_CLOSED; i++)
		sleep_ms(20);
	ck_assert_int_eq(dlm_acquire(c, "y", 0, 0, NULL), DLM_E_CLOSED);
	dlm_close(c);
	dlmd_start_tcp(&d, (char *)NULL);	/* for the teardown */
}
END_TEST

/*
 * dlm_close lands while the I/O thread is resuming the session on a link
 * whose hello is never answered: it returns at once, not after the
 * connect timeout (10 s here).
 */
START_TEST(close_during_reconnect_returns_at_once)
{
	struct dlm_client *c;
	struct relay r;
	uint64_t t0;

	c = relay_client(&r, "stuck", 0, 10000, NULL);
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 0, NULL), 0);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 300 &&
	    __atomic_load_n(&r.accepts, __ATOMIC_ACQUIRE) < 2; i++)
		sleep_ms(10);
	ck_assert_int_ge(__atomic_load_n(&r.accepts, __ATOMIC_ACQUIRE), 2);
	sleep_ms(200);		/* hello is out, and unanswered */
	t0 = mono_ms();
	dlm_close(c);
	ck_assert_uint_lt(mono_ms() - t0, 100);
	relay_stop(&r);
}
END_TEST

/*
 * dlm_cancel stops the acquires of one lock that this client's threads
 * wait for (the one at the server, and the one queued behind it here);
 * nothing else is disturbed.
 */
START_TEST(cancel_stops_one_waiting_acquire)
{
	struct dlm_client *c = client("canceller", 0, 0), *b = client("b", 0, 0);
	struct waiter w[2], rest;
	pthread_t th[2], oth;

	ck_assert_int_eq(dlm_acquire(b, "busy", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "also", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_cancel(c, "busy"), DLM_E_NOT_FOUND);
	memset(w, 0, sizeof w);
	for (int i = 0; i < 2; i++) {
		w[i].c = c;
		snprintf(w[i].lock, sizeof w[i].lock, "busy");
		w[i].timeout = DLM_FOREVER;
		w[i].rc = -1;
		pthread_create(&th[i], NULL, waiter_main, &w[i]);
	}
	memset(&rest, 0, sizeof other);
	rest.c = c;
	snprintf(rest.lock, sizeof rest.lock, "also");
	rest.timeout = 5000;
	rest.rc = -1;
	pthread_create(&oth, NULL, waiter_main, &rest);
	sleep_ms(200);
	ck_assert_int_eq(dlm_cancel(c, "busy"), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].rc, DLM_E_CANCELLED);
	}
	ck_assert_int_eq(dlm_cancel(c, "busy"), DLM_E_NOT_FOUND);
	/* The other wait goes on, and is granted. */
	ck_assert_int_eq(dlm_release(b, "also"), 0);
	pthread_join(oth, NULL);
	ck_assert_int_eq(rest.rc, 0);
	/* The cancelled lock is not held, and can be taken later. */
	ck_assert_int_eq(dlm_holds(c, "busy", NULL), 0);
	ck_assert_int_eq(dlm_release(b, "busy"), 0);
	ck_assert_int_eq(dlm_acquire(c, "busy", 0, 5000, NULL), 0);
	dlm_close(c);
	dlm_close(b);
}
END_TEST

START_TEST(cancel_request_stops_an_async_acquire)
{
	struct dlm_client *c = client("async-cancel", 0, 0), *b = client("b", 0, 0);
	struct async_count n = { 0, 0, 0, 0 };
	uint64_t id = 0;

	ck_assert_int_eq(dlm_acquire(b, "busy", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async_id(c, "busy", 0, DLM_FOREVER,
	    on_acquired, &n, &id), 0);
	ck_assert_uint_ne(id, 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_cancel_request(c, id), 0);
	pump(c, &n.failed, 1);
	ck_assert_int_eq(n.last_err, DLM_E_CANCELLED);
	ck_assert_int_eq(n.acquired, 0);
	ck_assert_int_eq(dlm_cancel_request(c, id), DLM_E_NOT_FOUND);
	ck_assert_int_eq(dlm_cancel_request(c, 12345), DLM_E_NOT_FOUND);
	dlm_close(c);
	dlm_close(b);
}
END_TEST

/* dlm_acquire_ex()'s options for a semaphore of capacity cap. */
static struct dlm_acquire_opts
sem_opts(uint32_t cap, uint32_t permits, int timeout_ms)
{
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.flags = DLM_SEMAPHORE;
	o.capacity = cap;
	o.permits = permits;
	o.timeout_ms = timeout_ms;
	return o;
}

/* The permits the server says are in use of lock, through dlm_call(). */
static uint64_t
server_in_use(struct dlm_client *c, const char *lock)
{
	struct tc *t = tc_connect(&d);
	struct reply *r;
	uint64_t n;

	tc_hello(t, NULL);
	r = tc_call(t, "lock", "lock:s", lock);
	n = r->err == 0 ? reply_u64(r, "in_use") : 0;
	tc_close(t);
	(void)c;
	return n;
}

/* What the library checks before sending, as the server would. */
START_TEST(semaphore_options_checked)
{
	struct dlm_client *c = client("semopts", 0, 0);
	struct dlm_acquire_opts o;

	o = sem_opts(0, 1, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "capacity"));
	o = sem_opts(0x80000000u, 1, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	o = sem_opts(3, 4, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	o = sem_opts(3, 1, DLM_TRY);
	o.flags |= DLM_SHARED;
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	o.flags = DLM_SEMAPHORE | DLM_RLOCK;
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_acquire_ex_async(c, "s", &o, on_acquired, NULL,
	    NULL), DLM_E_INVALID);
	/* Capacity or permits without the flag mean a forgotten flag. */
	o = sem_opts(3, 0, DLM_TRY);
	o.flags = 0;
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), DLM_E_INVALID);
	/* dlm_acquire() has no room for a capacity. */
	ck_assert_int_eq(dlm_acquire(c, "s", DLM_SEMAPHORE, DLM_TRY, NULL),
	    DLM_E_INVALID);
	ck_assert_int_eq(dlm_holds(c, "s", NULL), 0);
	/* permits 0 is one; the largest capacity is fine. */
	o = sem_opts(0x7fffffffu, 0, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(c, "s", &o, NULL), 0);
	ck_assert_uint_eq(server_in_use(c, "s"), 1);
	ck_assert_int_eq(dlm_release(c, "s"), 0);
	dlm_close(c);
}
END_TEST

/* Take, share, give back some, give back all. */
START_TEST(semaphore_acquire_and_release)
{
	struct dlm_client *a = client("sa", 0, 0), *b = client("sb", 0, 0);
	struct dlm_acquire_opts o;
	uint64_t ta = 0, tb = 0, t = 0;

	o = sem_opts(3, 3, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(a, "pool", &o, &ta), 0);
	ck_assert_uint_gt(ta, 0);
	ck_assert_int_eq(dlm_holds(a, "pool", &t), 1);
	ck_assert_uint_eq(t, ta);
	o = sem_opts(3, 1, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(b, "pool", &o, NULL),
	    DLM_E_WOULD_BLOCK);
	/* The same thread asking again: one grant per client. */
	ck_assert_int_eq(dlm_acquire_ex(a, "pool", &o, NULL),
	    DLM_E_ALREADY_HELD);
	o = sem_opts(4, 1, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(b, "pool", &o, NULL),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(dlm_acquire(b, "pool", 0, DLM_TRY, NULL),
	    DLM_E_KIND_MISMATCH);
	/* Some back: the hold and its token stay. */
	ck_assert_int_eq(dlm_release_permits(a, "pool", 0), DLM_E_INVALID);
	ck_assert_int_eq(dlm_release_permits(a, "pool", 4), DLM_E_INVALID);
	ck_assert_int_eq(dlm_release_permits(a, "pool", 2), 0);
	ck_assert_int_eq(dlm_holds(a, "pool", &t), 1);
	ck_assert_uint_eq(t, ta);
	ck_assert_uint_eq(server_in_use(a, "pool"), 1);
	ck_assert_int_eq(dlm_release_permits(a, "pool", 2), DLM_E_INVALID);
	o = sem_opts(3, 2, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(b, "pool", &o, &tb), 0);
	ck_assert_uint_gt(tb, ta);
	/* All that is left ends the hold, as dlm_release() does. */
	ck_assert_int_eq(dlm_release_permits(a, "pool", 1), 0);
	ck_assert_int_eq(dlm_holds(a, "pool", NULL), 0);
	ck_assert_int_eq(dlm_release(a, "pool"), DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_release_permits(a, "pool", 1), DLM_E_NOT_HELD);
	ck_assert_int_eq(dlm_release(b, "pool"), 0);
	/* Permits of a mutex: refused here. */
	ck_assert_int_eq(dlm_acquire(a, "m", 0, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_release_permits(a, "m", 1), DLM_E_INVALID);
	ck_assert_int_eq(dlm_holds(a, "m", NULL), 1);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* A waiting semaphore acquire, asynchronous, granted when permits free. */
START_TEST(semaphore_async_and_lost)
{
	struct lost_log l = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, "" };
	struct dlm_client *b = client("holder", 0, 0), *c;
	struct async_count n = { 0, 0, 0, 0 };
	struct dlm_acquire_opts o;
	struct dlm_options co;
	struct tc *op;
	uint64_t t = 0;

	dlm_options_init(&co);
	co.client = "victim";
	co.on_lost = on_lost;
	co.on_lost_arg = &l;
	c = dlm_connect(server, &co, NULL);
	ck_assert_ptr_nonnull(c);
	o = sem_opts(2, 2, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(b, "job", &o, NULL), 0);
	o = sem_opts(2, 2, DLM_FOREVER);
	ck_assert_int_eq(dlm_acquire_ex_async(c, "job", &o, on_acquired, &n,
	    NULL), 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_async_dispatch(c), 0);
	ck_assert_int_eq(dlm_release_permits(b, "job", 1), 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_async_dispatch(c), 0);
	ck_assert_int_eq(dlm_release(b, "job"), 0);
	pump(c, &n.acquired, 1);
	ck_assert_int_eq(dlm_holds(c, "job", &t), 1);
	/* Forced out: told, and the permits are the server's again. */
	op = force_release_job(&l, t);
	ck_assert_int_eq(dlm_holds(c, "job", NULL), 0);
	ck_assert_uint_eq(server_in_use(c, "job"), 0);
	o = sem_opts(2, 1, DLM_TRY);
	ck_assert_int_eq(dlm_acquire_ex(b, "job", &o, NULL), 0);
	tc_close(op);
	dlm_close(c);
	dlm_close(b);
}
END_TEST

/* A thread asking for a permit of w->lock (capacity 2) for w->timeout. */
static void *
sem_waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct dlm_acquire_opts o = sem_opts(2, 1, w->timeout);

	w->rc = dlm_acquire_ex(w->c, w->lock, &o, NULL);
	return NULL;
}

/* Threads of one client take turns: the server counts one grant each. */
struct sem_worker {
	struct dlm_client	*c;
	int			 rounds;
	int			*inside;
	int			*most;
	int			*total;
	pthread_mutex_t		*mu;
};

static void *
sem_worker_main(void *arg)
{
	struct sem_worker *w = arg;
	struct dlm_acquire_opts o = sem_opts(2, 1, 20000);

	for (int i = 0; i < w->rounds; i++) {
		ck_assert_int_eq(dlm_acquire_ex(w->c, "sem", &o, NULL), 0);
		pthread_mutex_lock(w->mu);
		if (++*w->inside > *w->most)
			*w->most = *w->inside;
		pthread_mutex_unlock(w->mu);
		usleep(200);
		pthread_mutex_lock(w->mu);
		--*w->inside;
		++*w->total;
		pthread_mutex_unlock(w->mu);
		ck_assert_int_eq(dlm_release(w->c, "sem"), 0);
	}
	return NULL;
}

/*
 * Four clients, two threads each, on a semaphore of capacity 2: never
 * more than two inside; and a second thread of a client that holds waits
 * for its turn, even with permits free.
 */
START_TEST(semaphore_threads_and_clients)
{
	enum { CLIENTS = 4, THREADS = 2, ROUNDS = 40 };
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct dlm_client *c[CLIENTS];
	struct sem_worker w[CLIENTS * THREADS];
	pthread_t th[CLIENTS * THREADS];
	struct dlm_acquire_opts o = sem_opts(2, 1, DLM_TRY);
	int inside = 0, most = 0, total = 0;
	char name[16];

	for (int i = 0; i < CLIENTS; i++) {
		snprintf(name, sizeof name, "sem-%d", i);
		c[i] = client(name, 0, 0);
	}
	ck_assert_int_eq(dlm_acquire_ex(c[0], "turns", &o, NULL), 0);
	/* Another thread of c[0]: its turn, not the server's permits. */
	{
		struct waiter wt;
		pthread_t t;

		memset(&wt, 0, sizeof wt);
		wt.c = c[0];
		snprintf(wt.lock, sizeof wt.lock, "turns");
		wt.timeout = 200;
		wt.rc = -1;
		pthread_create(&t, NULL, sem_waiter_main, &wt);
		pthread_join(t, NULL);
		ck_assert_int_eq(wt.rc, DLM_E_TIMEOUT);
	}
	ck_assert_uint_eq(server_in_use(c[0], "turns"), 1);
	ck_assert_int_eq(dlm_release(c[0], "turns"), 0);

	for (int i = 0; i < CLIENTS * THREADS; i++) {
		w[i] = (struct sem_worker){ c[i / THREADS], ROUNDS, &inside,
		    &most, &total, &mu };
		pthread_create(&th[i], NULL, sem_worker_main, &w[i]);
	}
	for (int i = 0; i < CLIENTS * THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(total, CLIENTS * THREADS * ROUNDS);
	ck_assert_int_le(most, 2);
	ck_assert_int_ge(most, 1);
	for (int i = 0; i < CLIENTS; i++)
		dlm_close(c[i]);
}
END_TEST

/* What watch callbacks were told, in order. */
#define WLOG_MAX	64
struct watch_log {
	pthread_mutex_t	 mu;
	int		 n;
	struct {
		size_t	 nholders;
		size_t	 waiters;
		char	 first[64];	/* the first holder, "" for none */
		char	 value[64];	/* its value, "" for none */
		uint64_t token;
		int	 shared;
	} e[WLOG_MAX];
	int		 blocking_rc;	/* what a blocking call said in there */
	bool		 unwatch_in_cb;	/* unwatch from the first call */
	int		 unwatch_rc;
};

static void
wlog_add(struct watch_log *l, const struct dlm_holder *h, size_t nholders,
    size_t waiters)
{
	pthread_mutex_lock(&l->mu);
	if (l->n < WLOG_MAX) {
		l->e[l->n].nholders = nholders;
		l->e[l->n].waiters = waiters;
		snprintf(l->e[l->n].first, sizeof l->e[l->n].first, "%s",
		    h != NULL ? h->client : "");
		snprintf(l->e[l->n].value, sizeof l->e[l->n].value, "%.*s",
		    h != NULL && h->value != NULL ? (int)h->value_len : 0,
		    h != NULL && h->value != NULL ? (const char *)h->value :
		    "");
		l->e[l->n].token = h != NULL ? h->token : 0;
		l->e[l->n].shared = h != NULL ? h->shared : -1;
		l->n++;
	}
	pthread_mutex_unlock(&l->mu);
}

static void
on_changed(struct dlm_client *c, const char *lock, const struct dlm_holder *hs,
    size_t nholders, size_t waiters, void *arg)
{
	struct watch_log *l = arg;

	/* Blocking calls are refused in here, as in on_lost. */
	l->blocking_rc = dlm_acquire(c, "from-watch", 0, 0, NULL);
	if (l->unwatch_in_cb) {
		l->unwatch_in_cb = false;
		l->unwatch_rc = dlm_unwatch(c, lock);
	}
	wlog_add(l, nholders > 0 ? &hs[0] : NULL, nholders, waiters);
}

static void
on_leader(struct dlm_client *c, const char *election,
    const struct dlm_holder *leader, void *arg)
{
	(void)c;
	(void)election;
	wlog_add(arg, leader, leader != NULL ? 1 : 0, 0);
}

static int
wlog_count(struct watch_log *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/* Wait up to 10 s for the want-th call. */
static void
wlog_wait(struct watch_log *l, int want)
{
	for (int i = 0; i < 1000 && wlog_count(l) < want; i++)
		sleep_ms(10);
	ck_assert_int_ge(wlog_count(l), want);
}

/* The holders of lock as the server lists them (raw), for values. */
static const char *
listed_value(const char *lock)
{
	static char buf[2048];
	struct tc *t = tc_connect(&d);
	const msgpack_object *hs, *v;
	struct reply *r;

	tc_hello(t, "lister");
	r = tc_call(t, "lock", "lock:s", lock);
	ck_assert_int_eq(r->err, 0);
	hs = reply_get(r, "holders");
	buf[0] = '\0';
	if (hs->via.array.size > 0 &&
	    (v = mpr_get(&hs->via.array.ptr[0], "value")) != NULL) {
		ck_assert_int_eq(v->type, MSGPACK_OBJECT_BIN);
		snprintf(buf, sizeof buf, "%.*s", (int)v->via.bin.size,
		    v->via.bin.ptr);
	}
	tc_close(t);
	return buf;
}

struct async_done {
	pthread_mutex_t	 mu;
	int		 n;
	int		 err;
};

static void
on_async(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct async_done *a = arg;

	(void)c;
	(void)token;
	pthread_mutex_lock(&a->mu);
	a->n++;
	a->err = err;
	pthread_mutex_unlock(&a->mu);
}

/* A value goes with the hold, sync and async (the library's own copy). */
START_TEST(acquire_with_value)
{
	struct dlm_client *c = client("valued", 0, 0);
	struct async_done a = { PTHREAD_MUTEX_INITIALIZER, 0, -1 };
	struct dlm_acquire_opts o;
	char buf[64], big[2000];
	int fd = dlm_async_fd(c);

	dlm_acquire_opts_init(&o);
	ck_assert_ptr_null(o.value);
	ck_assert_uint_eq(o.value_len, 0);
	o.value = "10.0.0.1:8080";
	o.value_len = strlen(o.value);
	ck_assert_int_eq(dlm_acquire_ex(c, "v-sync", &o, NULL), 0);
	ck_assert_str_eq(listed_value("v-sync"), "10.0.0.1:8080");
	/* The caller's buffer may change as soon as the call returns. */
	snprintf(buf, sizeof buf, "async-value");
	o.value = buf;
	o.value_len = strlen(buf);
	ck_assert_int_eq(dlm_acquire_ex_async(c, "v-async", &o, on_async, &a,
	    NULL), 0);
	memset(buf, 'X', sizeof buf);
	for (int i = 0; i < 500; i++) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (poll(&p, 1, 10) > 0)
			dlm_async_dispatch(c);
		pthread_mutex_lock(&a.mu);
		i = a.n > 0 ? 500 : i;
		pthread_mutex_unlock(&a.mu);
	}
	ck_assert_int_eq(a.n, 1);
	ck_assert_int_eq(a.err, 0);
	ck_assert_str_eq(listed_value("v-async"), "async-value");
	/* A re-entry keeps the hold's value. */
	o.flags = DLM_RLOCK;
	o.value = "first";
	o.value_len = 5;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-r", &o, NULL), 0);
	o.value = "second";
	o.value_len = 6;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-r", &o, NULL), 0);
	ck_assert_str_eq(listed_value("v-r"), "first");
	/* Refused here, or by the server's max-value-len. */
	o.flags = 0;
	o.value = NULL;
	o.value_len = 3;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-bad", &o, NULL), DLM_E_INVALID);
	o.value = big;
	o.value_len = 65537;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-bad", &o, NULL), DLM_E_INVALID);
	memset(big, 'b', sizeof big);
	o.value_len = sizeof big;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-bad", &o, NULL), DLM_E_LIMIT);
	ck_assert_ptr_nonnull(strstr(dlm_errmsg(c), "max-value-len"));
	ck_assert_int_eq(dlm_holds(c, "v-bad", NULL), 0);
	/* Empty is none. */
	o.value_len = 0;
	ck_assert_int_eq(dlm_acquire_ex(c, "v-none", &o, NULL), 0);
	ck_assert_str_eq(listed_value("v-none"), "");
	dlm_close(c);
}
END_TEST

/* A watch: the state at once, then each change, until dlm_unwatch(). */
START_TEST(watch_tells_each_change)
{
	struct watch_log l;
	struct dlm_client *w = client("watcher", 0, 0);
	struct dlm_client *a = client("alpha", 0, 0), *b = client("beta", 0, 0);
	struct dlm_acquire_opts o;
	uint64_t ta;
	int n;

	memset(&l, 0, sizeof l);
	pthread_mutex_init(&l.mu, NULL);
	ck_assert_int_eq(dlm_acquire(a, "job", 0, 0, &ta), 0);
	ck_assert_int_eq(dlm_watch(w, "job", on_changed, &l), 0);
	wlog_wait(&l, 1);
	ck_assert_uint_eq(l.e[0].nholders, 1);
	ck_assert_str_eq(l.e[0].first, "alpha");
	ck_assert_uint_eq(l.e[0].token, ta);
	ck_assert_int_eq(l.e[0].shared, 0);
	ck_assert_int_eq(l.blocking_rc, DLM_E_INVALID);
	ck_assert_int_eq(dlm_watch(w, "job", on_changed, &l),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(dlm_watch(w, NULL, on_changed, &l), DLM_E_INVALID);
	ck_assert_int_eq(dlm_watch(w, "x", NULL, &l), DLM_E_INVALID);

	/* b waits: the holders are the same, and nobody is told. */
	dlm_acquire_opts_init(&o);
	o.value = "beta's";
	o.value_len = 6;
	o.timeout_ms = 5000;
	ck_assert_int_eq(dlm_acquire_ex_async(b, "job", &o, NULL, NULL, NULL),
	    0);
	sleep_ms(200);
	ck_assert_int_eq(wlog_count(&l), 1);
	ck_assert_int_eq(dlm_release(a, "job"), 0);
	wlog_wait(&l, 2);
	ck_assert_str_eq(l.e[1].first, "beta");
	ck_assert_str_eq(l.e[1].value, "beta's");
	ck_assert_uint_eq(l.e[1].waiters, 0);

	/* Unwatched: no more calls. */
	ck_assert_int_eq(dlm_unwatch(w, "job"), 0);
	ck_assert_int_eq(dlm_unwatch(w, "job"), DLM_E_NOT_FOUND);
	n = wlog_count(&l);
	ck_assert_int_eq(dlm_acquire(a, "job", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	dlm_close(b);
	sleep_ms(200);
	ck_assert_int_eq(wlog_count(&l), n);

	/* Watched again, and unwatched from its own callback. */
	l.unwatch_in_cb = true;
	ck_assert_int_eq(dlm_watch(w, "job", on_changed, &l), 0);
	wlog_wait(&l, n + 1);
	ck_assert_uint_eq(l.e[n].nholders, 0);
	ck_assert_int_eq(l.unwatch_rc, 0);
	ck_assert_int_eq(dlm_acquire(a, "job", 0, 0, NULL), 0);
	sleep_ms(200);
	ck_assert_int_eq(wlog_count(&l), n + 1);
	ck_assert_int_eq(dlm_unwatch(w, "job"), DLM_E_NOT_FOUND);
	dlm_close(w);
	dlm_close(a);
	pthread_mutex_destroy(&l.mu);
}
END_TEST

struct campaigner {
	struct dlm_client	*c;
	const char		*value;
	int			 rc;
	uint64_t		 token;
};

static void *
campaign_main(void *arg)
{
	struct campaigner *cp = arg;

	cp->rc = dlm_campaign(cp->c, "leader", cp->value, strlen(cp->value),
	    10000, &cp->token);
	return NULL;
}

/* Leader election: one leads, the next takes over, observers see it. */
START_TEST(campaign_observe_resign)
{
	struct watch_log l;
	struct dlm_client *obs = client("observer", 0, 0);
	struct campaigner a = { client("node-a", 0, 0), "10.0.0.1:80", -1, 0 };
	struct campaigner b = { client("node-b", 0, 0), "10.0.0.2:80", -1, 0 };
	pthread_t th;

	memset(&l, 0, sizeof l);
	pthread_mutex_init(&l.mu, NULL);
	ck_assert_int_eq(dlm_observe(obs, "leader", on_leader, &l), 0);
	wlog_wait(&l, 1);
	ck_assert_str_eq(l.e[0].first, "");	/* nobody leads yet */
	campaign_main(&a);
	ck_assert_int_eq(a.rc, 0);
	ck_assert_uint_gt(a.token, 0);
	wlog_wait(&l, 2);
	ck_assert_str_eq(l.e[1].first, "node-a");
	ck_assert_str_eq(l.e[1].value, "10.0.0.1:80");
	ck_assert_uint_eq(l.e[1].token, a.token);
	/* A second candidate waits; a try fails at once. */
	ck_assert_int_eq(dlm_campaign(b.c, "leader", "x", 1, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	pthread_create(&th, NULL, campaign_main, &b);
	sleep_ms(200);
	ck_assert_int_eq(dlm_resign(a.c, "leader"), 0);
	pthread_join(th, NULL);
	ck_assert_int_eq(b.rc, 0);
	ck_assert_uint_gt(b.token, a.token);
	wlog_wait(&l, 3);
	ck_assert_str_eq(l.e[2].first, "node-b");
	ck_assert_str_eq(l.e[2].value, "10.0.0.2:80");
	ck_assert_int_eq(dlm_resign(a.c, "leader"), DLM_E_NOT_HELD);
	/* The leader dies: nobody leads. */
	dlm_close(b.c);
	wlog_wait(&l, 4);
	ck_assert_str_eq(l.e[3].first, "");
	ck_assert_int_eq(dlm_unwatch(obs, "leader"), 0);
	dlm_close(obs);
	dlm_close(a.c);
	pthread_mutex_destroy(&l.mu);
}
END_TEST

/*
 * The `lock` listing of name, as dlm_call() returns it, searched for key:
 * whether the listing has it anywhere.
 */
static bool
lock_listing_has(struct dlm_client *c, const char *name, const char *key)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	void *res = NULL;
	size_t len = 0;
	bool has;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "lock", 4);
	msgpack_pack_str_with_body(&pk, name, strlen(name));
	ck_assert_int_eq(dlm_call(c, "lock", sb.data, sb.size, &res, &len,
	    NULL), 0);
	has = memmem(res, len, key, strlen(key)) != NULL;
	dlm_free(res);
	msgpack_sbuffer_destroy(&sb);
	return has;
}

struct contended_log {
	pthread_mutex_t	mu;
	int		n;
	uint64_t	token;
	uint32_t	waiters;
	char		lock[64];
	int		release_rc;	/* of a release sent from the callback */
	bool		on_io_thread;
	pthread_t	main;
};

static void
on_contended(struct dlm_client *c, const char *lock, uint64_t token,
    uint32_t waiters, void *arg)
{
	struct contended_log *l = arg;
	/* Give way at once: an async release is allowed from here. */
	int rc = dlm_release_async(c, lock, NULL, NULL);

	pthread_mutex_lock(&l->mu);
	l->n++;
	l->token = token;
	l->waiters = waiters;
	snprintf(l->lock, sizeof l->lock, "%s", lock);
	l->on_io_thread = !pthread_equal(pthread_self(), l->main);
	l->release_rc = rc;
	pthread_mutex_unlock(&l->mu);
}

static int
contended_count(struct contended_log *l)
{
	int n;

	pthread_mutex_lock(&l->mu);
	n = l->n;
	pthread_mutex_unlock(&l->mu);
	return n;
}

/*
 * A holder that asked with DLM_NOTIFY_CONTENDED is told, on its client's
 * thread, when another client starts waiting, and can give way from the
 * callback; a hold that did not ask is not told.
 */
START_TEST(contended_callback_gives_way)
{
	struct contended_log l = { .mu = PTHREAD_MUTEX_INITIALIZER,
	    .main = pthread_self(), .release_rc = -1 };
	struct dlm_acquire_opts ao;
	struct dlm_options o;
	struct dlm_client *a, *b;
	uint64_t t = 0, tb = 0;

	dlm_options_init(&o);
	o.client = "cacher";
	o.on_contended = on_contended;
	o.on_contended_arg = &l;
	a = dlm_connect(server, &o, NULL);
	ck_assert_ptr_nonnull(a);
	b = client("wanter", 0, 0);
	/* Not asked: not told. */
	ck_assert_int_eq(dlm_acquire(a, "plain", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "plain", 0, 300, NULL),
	    DLM_E_TIMEOUT);
	ck_assert_int_eq(contended_count(&l), 0);

	dlm_acquire_opts_init(&ao);
	ao.flags = DLM_NOTIFY_CONTENDED;
	ck_assert_int_eq(dlm_acquire_ex(a, "hot", &ao, &t), 0);
	ck_assert(lock_listing_has(a, "hot", "notify_contended"));
	/* b waits; a is told and releases from its callback. */
	ck_assert_int_eq(dlm_acquire(b, "hot", 0, 10000, &tb), 0);
	ck_assert_uint_gt(tb, t);
	/* The callback may not have finished its bookkeeping yet. */
	for (int i = 0; i < 500 && contended_count(&l) == 0; i++)
		sleep_ms(10);
	ck_assert_int_eq(contended_count(&l), 1);
	pthread_mutex_lock(&l.mu);
	ck_assert_str_eq(l.lock, "hot");
	ck_assert_uint_eq(l.token, t);
	ck_assert_uint_eq(l.waiters, 1);
	ck_assert_int_eq(l.release_rc, 0);
	ck_assert(l.on_io_thread);
	pthread_mutex_unlock(&l.mu);
	/* b has it, so a's release is done; its answer may be on its way. */
	for (int i = 0; i < 500 && dlm_holds(a, "hot", NULL) != 0; i++)
		sleep_ms(10);
	ck_assert_int_eq(dlm_holds(a, "hot", NULL), 0);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/*
 * The server forgets watches with the connection: after a reconnect the
 * library watches again, and the callback hears the state then.
 */
START_TEST(watch_again_after_reconnect)
{
	struct watch_log l;
	struct dlm_client *c, *a = client("alpha", 0, 0);
	struct relay r;

	memset(&l, 0, sizeof l);
	pthread_mutex_init(&l.mu, NULL);
	c = relay_client(&r, "watching-roamer", 0, 5000, NULL);
	ck_assert_int_eq(dlm_watch(c, "w", on_changed, &l), 0);
	wlog_wait(&l, 1);
	ck_assert_uint_eq(l.e[0].nholders, 0);
	/* Cut: the change made meanwhile is told once the link is back. */
	__atomic_store_n(&r.refuse, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);
	sleep_ms(100);
	ck_assert_int_eq(dlm_acquire(a, "w", 0, 0, NULL), 0);
	__atomic_store_n(&r.refuse, 0, __ATOMIC_RELEASE);
	wlog_wait(&l, 2);
	ck_assert_str_eq(l.e[1].first, "alpha");
	/* And changes after it, as before. */
	ck_assert_int_eq(dlm_release(a, "w"), 0);
	wlog_wait(&l, 3);
	ck_assert_uint_eq(l.e[2].nholders, 0);
	ck_assert_int_eq(dlm_unwatch(c, "w"), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(a);
	pthread_mutex_destroy(&l.mu);
}
END_TEST

/*
 * A child process holding with a lock-delay is killed: the lock is
 * granted to nobody for the delay, then to the waiter.
 */
START_TEST(killed_holder_delays_the_lock)
{
	struct dlm_client *b;
	int pfd[2], rc;
	pid_t pid;
	char ok;
	uint64_t start;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct dlm_client *c = dlm_connect(server, NULL, NULL);
		struct dlm_acquire_opts ao;

		dlm_acquire_opts_init(&ao);
		ao.lock_delay_ms = 600;
		if (c == NULL || dlm_acquire_ex(c, "k", &ao, NULL) != 0 ||
		    write(pfd[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &ok, 1), 1);
	close(pfd[0]);
	b = client("waiter", 0, 0);
	ck_assert(lock_listing_has(b, "k", "lock_delay_ms"));
	start = mono_ms();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	/* Tries fail while the delay lasts (the close is seen at once). */
	do {
		rc = dlm_acquire(b, "k", 0, DLM_TRY, NULL);
		if (rc == DLM_E_WOULD_BLOCK)
			sleep_ms(20);
	} while (rc == DLM_E_WOULD_BLOCK && mono_ms() - start < 10000);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_ge(mono_ms() - start, 600);
	dlm_close(b);
}
END_TEST

/* What an async acquire or convert's callback was told. */
struct told {
	int		n;
	int		err;
	uint64_t	token;
	char		msg[512];
};

static void
on_told(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct told *t = arg;

	t->err = err;
	t->token = token;
	snprintf(t->msg, sizeof t->msg, "%s", dlm_errmsg(c));
	t->n++;
}

START_TEST(deadlock_refused_and_said)
{
	struct dlm_client *a = client("a", 0, 0), *b = client("b", 0, 0);
	struct dlm_acquire_opts o;
	struct told ta = { 0 }, tb = { 0 };

	ck_assert_str_eq(dlm_errname(DLM_E_DEADLOCK), "DEADLOCK");
	ck_assert_int_eq(dlm_acquire(a, "x", 0, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "y", 0, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async(a, "y", 0, DLM_FOREVER, on_told,
	    &ta), 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_acquire(b, "x", 0, DLM_FOREVER, NULL),
	    DLM_E_DEADLOCK);
	ck_assert_msg(strstr(dlm_errmsg(b), "cycle of 2 waits") != NULL &&
	    strstr(dlm_errmsg(b), "'y'") != NULL &&
	    strstr(dlm_errmsg(b), "behind a") != NULL, "errmsg: %s",
	    dlm_errmsg(b));
	ck_assert_int_eq(dlm_holds(b, "x", NULL), 0);
	/* The next thread of b may try its turn at x: it was passed on. */
	dlm_acquire_opts_init(&o);
	o.flags = DLM_NO_DEADLOCK_CHECK;
	o.timeout_ms = 200;
	ck_assert_int_eq(dlm_acquire_ex(b, "x", &o, NULL), DLM_E_TIMEOUT);
	/* Asynchronously: the callback hears it, with the words. */
	ck_assert_int_eq(dlm_acquire_async(b, "x", 0, DLM_FOREVER, on_told,
	    &tb), 0);
	pump(b, &tb.n, 1);
	ck_assert_int_eq(tb.err, DLM_E_DEADLOCK);
	ck_assert_msg(strstr(tb.msg, "cycle") != NULL, "msg: %s", tb.msg);
	/* a still waits, and gets y when b lets it go. */
	ck_assert_int_eq(ta.n, 0);
	ck_assert_int_eq(dlm_release(b, "y"), 0);
	pump(a, &ta.n, 1);
	ck_assert_int_eq(ta.err, 0);
	/* A flag this library does not know is still refused. */
	o.flags = 0x20;
	ck_assert_int_eq(dlm_acquire_ex(b, "z", &o, NULL), DLM_E_INVALID);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* A thread shares a lock for a while (a mutex is its taker thread's). */
struct share_a_while {
	struct dlm_client	*c;
	const char		*lock;
	int			 ms;
	int			 held;		/* atomic: the main thread polls */
	int			 rc;
};

static void *
share_a_while(void *arg)
{
	struct share_a_while *sw = arg;

	sw->rc = dlm_acquire(sw->c, sw->lock, DLM_SHARED, DLM_TRY, NULL);
	__atomic_store_n(&sw->held, 1, __ATOMIC_RELEASE);
	sleep_ms(sw->ms);
	if (sw->rc == 0)
		sw->rc = dlm_release(sw->c, sw->lock);
	return NULL;
}

START_TEST(convert_follows_in_the_entries)
{
	struct dlm_client *a = client("a", 0, 0), *b = client("b", 0, 0);
	struct share_a_while sw = { b, "x", 200, 0, -1 };
	struct told t = { 0 };
	uint64_t t1 = 0, t2 = 0, t3 = 0, th = 0, start;
	pthread_t th_id;

	ck_assert_int_eq(dlm_convert(a, "x", 0, DLM_TRY, NULL),
	    DLM_E_NOT_HELD);
	ck_assert_str_ne(dlm_errmsg(a), "");
	ck_assert_int_eq(dlm_acquire(a, "x", DLM_SHARED, DLM_TRY, &t1), 0);
	ck_assert_int_eq(dlm_acquire(b, "x", DLM_SHARED, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_convert(a, "x", DLM_RLOCK, DLM_TRY, NULL),
	    DLM_E_INVALID);
	ck_assert_int_eq(dlm_convert(a, "x", 0, -2, NULL), DLM_E_INVALID);
	ck_assert_int_eq(dlm_convert(a, "x", 0, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(dlm_convert(a, "x", 0, 100, NULL), DLM_E_TIMEOUT);
	/* Waits, ahead of everyone, until b lets go. */
	ck_assert_int_eq(dlm_release(b, "x"), 0);
	pthread_create(&th_id, NULL, share_a_while, &sw);
	while (!__atomic_load_n(&sw.held, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	start = mono_ms();
	ck_assert_int_eq(dlm_convert(a, "x", 0, 5000, &t2), 0);
	ck_assert_uint_ge(mono_ms() - start, 100);
	pthread_join(th_id, NULL);
	ck_assert_int_eq(sw.rc, 0);
	ck_assert_uint_gt(t2, t1);
	ck_assert_int_eq(dlm_holds(a, "x", &th), 1);
	ck_assert_uint_eq(th, t2);
	ck_assert_int_eq(dlm_acquire(b, "x", DLM_SHARED, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	/* Down again: the token stays, b may share it. */
	ck_assert_int_eq(dlm_convert(a, "x", DLM_SHARED, DLM_TRY, &t3), 0);
	ck_assert_uint_eq(t3, t2);
	ck_assert_int_eq(dlm_acquire(b, "x", DLM_SHARED, DLM_TRY, NULL), 0);
	/* Asynchronously, and cancelled by dlm_cancel(): still shared. */
	ck_assert_int_eq(dlm_convert_async(a, "x", 0, DLM_FOREVER, on_told,
	    &t), 0);
	sleep_ms(100);
	ck_assert_int_eq(t.n, 0);
	ck_assert_int_eq(dlm_cancel(a, "x"), 0);
	pump(a, &t.n, 1);
	ck_assert_int_eq(t.err, DLM_E_CANCELLED);
	ck_assert_int_eq(dlm_holds(a, "x", &th), 1);
	ck_assert_uint_eq(th, t2);
	/* And done asynchronously. */
	ck_assert_int_eq(dlm_release(b, "x"), 0);
	ck_assert_int_eq(dlm_convert_async(a, "x", 0, DLM_FOREVER, on_told,
	    &t), 0);
	pump(a, &t.n, 2);
	ck_assert_int_eq(t.err, 0);
	ck_assert_uint_gt(t.token, t2);
	ck_assert_int_eq(dlm_holds(a, "x", &th), 1);
	ck_assert_uint_eq(th, t.token);
	/* The release names the new token, and the lock is free after. */
	ck_assert_int_eq(dlm_release(a, "x"), 0);
	ck_assert_int_eq(dlm_holds(a, "x", NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "x", 0, DLM_TRY, NULL), 0);
	ck_assert_int_eq(dlm_convert_async(a, "x", 0, 0, on_told, &t),
	    DLM_E_NOT_HELD);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* An rlock converts its whole depth; two converters: one DEADLOCK. */
START_TEST(convert_rlock_and_two_converters)
{
	struct dlm_client *a = client("a", 0, 0), *b = client("b", 0, 0);
	struct told t = { 0 };
	uint64_t tk = 0;

	ck_assert_int_eq(dlm_acquire(a, "r", DLM_RLOCK | DLM_SHARED, 0, NULL),
	    0);
	ck_assert_int_eq(dlm_acquire(a, "r", DLM_RLOCK | DLM_SHARED, 0, NULL),
	    0);
	ck_assert_int_eq(dlm_acquire(b, "r", DLM_RLOCK | DLM_SHARED, 0, NULL),
	    0);
	ck_assert_int_eq(dlm_convert_async(a, "r", 0, DLM_FOREVER, on_told,
	    &t), 0);
	sleep_ms(100);
	ck_assert_int_eq(dlm_convert(b, "r", 0, DLM_FOREVER, NULL),
	    DLM_E_DEADLOCK);
	ck_assert_msg(strstr(dlm_errmsg(b), "converting 'r'") != NULL,
	    "errmsg: %s", dlm_errmsg(b));
	ck_assert_int_eq(dlm_release(b, "r"), 0);
	pump(a, &t.n, 1);
	ck_assert_int_eq(t.err, 0);
	/* Both levels are exclusive now: one release leaves one. */
	ck_assert_int_eq(dlm_release(a, "r"), 0);
	ck_assert_int_eq(dlm_acquire(b, "r", DLM_RLOCK | DLM_SHARED, DLM_TRY,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(dlm_convert(a, "r", DLM_SHARED, DLM_TRY, &tk), 0);
	ck_assert_uint_eq(tk, t.token);
	ck_assert_int_eq(dlm_acquire(b, "r", DLM_RLOCK | DLM_SHARED, DLM_TRY,
	    NULL), 0);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

static Suite *
libdlm_suite(void)
{
	Suite *s = suite_create("libdlm");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, connect_forms);
	tcase_add_test(tc, bad_address_refused_before_dialling);
	tcase_add_test(tc, auth_token_over_tcp);
	tcase_add_test(tc, locks_and_errors);
	tcase_add_test(tc, error_strings);
	tcase_add_test(tc, generic_call);
	tcase_add_test(tc, options_read_by_their_size);
	tcase_add_test(tc, acquire_opts_read_by_their_size);
	tcase_add_test(tc, last_error_message);
	tcase_add_test(tc, scoped_forms_release_on_every_exit);
	tcase_add_test(tc, async_many_in_flight);
	tcase_add_test(tc, long_names_and_many_answers);
	tcase_add_test(tc, lost_callback_on_force_release);
	tcase_add_test(tc, contended_callback_gives_way);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, threads_hammer_one_lock);
	tcase_add_test(tc, threads_of_one_client_served_in_order);
	tcase_add_test(tc, threads_wait_on_different_locks);
	tcase_add_test(tc, close_wakes_waiting_callers);
	suite_add_tcase(s, tc);

	tc = tcase_create("faults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, long_critical_section_keeps_lock);
	tcase_add_test(tc, sigkill_holder_releases_to_waiter);
	tcase_add_test(tc, killed_holder_delays_the_lock);
	tcase_add_test(tc, dropped_connection_resumes_with_linger);
	tcase_add_test(tc, grant_lost_in_flight_is_released);
	tcase_add_test(tc, dropped_connection_without_linger);
	tcase_add_test(tc, unanswered_lease_reports_lost);
	tcase_add_test(tc, lapsed_holds_are_given_back_after_resume);
	tcase_add_test(tc, late_release_cannot_free_a_newer_hold);
	tcase_add_test(tc, lost_notice_read_by_a_waiting_caller);
	tcase_add_test(tc, fork_child_gets_clear_error);
	tcase_add_test(tc, fork_child_does_not_keep_parents_locks);
	tcase_add_test(tc, server_shutdown_is_reported);
	tcase_add_test(tc, server_restart_within_linger_opens_a_new_session);
	suite_add_tcase(s, tc);

	tc = tcase_create("semaphore");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, semaphore_options_checked);
	tcase_add_test(tc, semaphore_acquire_and_release);
	tcase_add_test(tc, semaphore_async_and_lost);
	tcase_add_test(tc, semaphore_threads_and_clients);
	suite_add_tcase(s, tc);

	tc = tcase_create("watch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, acquire_with_value);
	tcase_add_test(tc, watch_tells_each_change);
	tcase_add_test(tc, campaign_observe_resign);
	tcase_add_test(tc, watch_again_after_reconnect);
	suite_add_tcase(s, tc);

	tc = tcase_create("cancel");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, close_during_reconnect_returns_at_once);
	tcase_add_test(tc, cancel_stops_one_waiting_acquire);
	tcase_add_test(tc, cancel_request_stops_an_async_acquire);
	tcase_add_test(tc, deadlock_refused_and_said);
	tcase_add_test(tc, convert_follows_in_the_entries);
	tcase_add_test(tc, convert_rlock_and_two_converters);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(libdlm_suite());
}
