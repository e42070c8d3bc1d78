/*
 * dlmd under load: ten thousand connections at once, a hundred thousand
 * connects and disconnects, and a storm of clients that never read. Through
 * each, a probe client keeps asking dlmd for answers, and afterwards dlmd
 * must have dropped everything the load left behind: sessions, locks and
 * memory (its resident size back near where it started).
 *
 * The figures (probe latency, RSS) are printed, not judged against a clock:
 * the probe only has to be answered, within a bound no healthy daemon gets
 * near.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "frame.h"
#include "mpack.h"
#include "testutil.h"

enum {
	CONNECTIONS = 10000,
	CHURN = 100000,
	CHURNERS = 4,
	STORM = 200,
	PROBE_BOUND_MS = 10000,	/* "still answering", not a speed target */
	/*
	 * What dlmd may keep after a load is gone: libevent's per-descriptor
	 * tables, sized by the highest descriptor seen, and the allocator's
	 * free lists. A leak of even 100 bytes per connection is far above it.
	 */
	RSS_SLACK_KIB = 4096,
};

static struct dlmd_proc d;

/* ---- what dlmd costs ---- */

static long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * A sanitizer's allocator keeps freed memory in quarantine and its own
 * pools, so resident size says nothing there; its leak checker, run when
 * dlmd exits, does that job instead.
 */
static bool
dlmd_is_sanitized(pid_t pid)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, "libasan") != NULL ||
		    strstr(line, "libtsan") != NULL ||
		    strstr(line, "vgpreload") != NULL;
	fclose(f);
	return found;
}

/*
 * dlmd's resident size once it has given back what it freed (a moment
 * after a load ends): sampled until it stops falling.
 */
static long
rss_settled(void)
{
	uint64_t deadline = mono_ms() + 6000;
	long last = rss_kib(d.pid);

	for (;;) {
		long now;

		sleep_ms(1500);
		now = rss_kib(d.pid);
		if (now >= last || mono_ms() > deadline)
			return now < last ? now : last;
		last = now;
	}
}

static void
rss_back_to(long baseline, long slack_kib, const char *after)
{
	long now = rss_settled();

	printf("load: dlmd RSS %ld KiB at start, %ld KiB after %s\n", baseline,
	    now, after);
	if (dlmd_is_sanitized(d.pid))
		return;
	ck_assert_msg(now <= baseline + slack_kib,
	    "dlmd kept %ld KiB after %s (%ld KiB at start)", now - baseline,
	    after, baseline);
}

/* ---- the probe: an ordinary client that must keep being answered ---- */

struct probe {
	struct tc	*c;
	uint64_t	 worst_ms;
	unsigned	 pings;
};

static void
probe_open(struct probe *p)
{
	memset(p, 0, sizeof *p);
	p->c = tc_connect(&d);
	tc_hello(p->c, "probe");
}

static void
probe_ping(struct probe *p)
{
	uint64_t t0 = mono_ms(), took;
	uint32_t id = tc_send(p->c, "ping", NULL);

	ck_assert_msg(tc_wait(p->c, id, PROBE_BOUND_MS) != NULL,
	    "dlmd did not answer the probe within %d ms", PROBE_BOUND_MS);
	took = mono_ms() - t0;
	if (took > p->worst_ms)
		p->worst_ms = took;
	p->pings++;
}

static uint64_t
probe_stat(struct probe *p, const char *key)
{
	return reply_u64(tc_call(p->c, "stats", NULL), key);
}

/* Wait until the load's traces are gone: only the probe (and keep) left. */
static void
probe_wait_settled(struct probe *p, uint64_t conns, uint64_t locks)
{
	uint64_t deadline = mono_ms() + 20000;

	for (;;) {
		struct reply *r = tc_call(p->c, "stats", NULL);

		if (reply_u64(r, "connections") == conns &&
		    reply_u64(r, "sessions") == conns &&
		    reply_u64(r, "locks") == locks)
			return;
		ck_assert_msg(mono_ms() < deadline, "dlmd still has %llu "
		    "connections, %llu sessions and %llu locks",
		    (unsigned long long)reply_u64(r, "connections"),
		    (unsigned long long)reply_u64(r, "sessions"),
		    (unsigned long long)reply_u64(r, "locks"));
		sleep_ms(20);
	}
}

static void
probe_close(struct probe *p, const char *load)
{
	printf("load: %s: probe answered %u pings, the slowest in %llu ms\n",
	    load, p->pings, (unsigned long long)p->worst_ms);
	tc_close(p->c);
}

/* ---- a lean client for the many: one frame out, one reply back ---- */

static size_t
encode(char *out, size_t cap, const char *method, const char *key,
    const char *value)
{
	msgpack_sbuffer sb;
	struct mpw w;
	size_t len;

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, 1);
	mpw_str(&w, method);
	mpw_array(&w, 1);
	if (key == NULL) {
		mpw_map(&w, 0);
	} else if (strcmp(method, "hello") == 0) {
		mpw_map(&w, 2);
		mpw_key(&w, "proto");
		mpw_u64(&w, 1);
		mpw_key(&w, key);
		mpw_str(&w, value);
	} else {
		mpw_map(&w, 2);
		mpw_key(&w, key);
		mpw_str(&w, value);
		mpw_key(&w, "timeout_ms");
		mpw_u64(&w, 10000);
	}
	len = sb.size;
	if (w.err != 0 || len > cap)
		len = 0;
	else
		memcpy(out, sb.data, len);
	msgpack_sbuffer_destroy(&sb);
	return len;
}

static int
dial(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, d.sock, strlen(d.sock));
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool
send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Read one reply frame: true when it is a success. */
static bool
read_ok(int fd)
{
	char buf[4096];
	size_t len = 0, flen;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		enum frame_status st = frame_scan(buf, len, sizeof buf, 8, &flen);
		ssize_t n;

		if (st == FRAME_COMPLETE) {
			msgpack_zone zone;
			msgpack_object obj;
			size_t off = 0;
			bool ok;

			msgpack_zone_init(&zone, 1024);
			ok = msgpack_unpack(buf, flen, &off, &zone, &obj) ==
			    MSGPACK_UNPACK_SUCCESS &&
			    obj.type == MSGPACK_OBJECT_ARRAY &&
			    obj.via.array.size == 4 &&
			    obj.via.array.ptr[0].type ==
			    MSGPACK_OBJECT_POSITIVE_INTEGER &&
			    obj.via.array.ptr[0].via.u64 == 1 &&
			    obj.via.array.ptr[2].type == MSGPACK_OBJECT_NIL;
			msgpack_zone_destroy(&zone);
			return ok;
		}
		if (st != FRAME_INCOMPLETE ||
		    poll(&pfd, 1, PROBE_BOUND_MS) != 1)
			return false;
		n = read(fd, buf + len, sizeof buf - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
	}
}

static bool
call_ok(int fd, const char *method, const char *key, const char *value)
{
	char frame[512];
	size_t len = encode(frame, sizeof frame, method, key, value);

	return len > 0 && send_all(fd, frame, len) && read_ok(fd);
}

/* The descriptors this test needs, or a clear failure when it cannot. */
static void
need_descriptors(rlim_t n)
{
	struct rlimit rl;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < n)
		rl.rlim_max = n;	/* allowed to root only */
	rl.rlim_cur = rl.rlim_max;
	ck_assert_msg(setrlimit(RLIMIT_NOFILE, &rl) == 0,
	    "this test needs %llu descriptors and the hard limit is lower; "
	    "raise it (ulimit -Hn, or LimitNOFILE)", (unsigned long long)n);
}

static void
setup(void)
{
	need_descriptors(CONNECTIONS + 256);
	/* A long default lease: it is also how long a stalled hello may take. */
	dlmd_start(&d, "--log-level", "warning", "--max-clients", "20000",
	    "--max-output", "65536", "--lease-default", "60000", (char *)NULL);
}

static void
teardown(void)
{
	dlmd_stop_clean(&d);
}

/*
 * Ten thousand clients connect, say hello and half of them take a lock of
 * their own; all stay connected at once, then all go.
 */
static void
hold_and_drop(struct probe *p)
{
	enum { BATCH = 250 };
	static int fds[CONNECTIONS];
	struct tc *other;
	char name[64];

	for (int i = 0; i < CONNECTIONS; i += BATCH) {
		/* A batch at a time: connects, then hellos, then acquires. */
		for (int j = i; j < i + BATCH; j++)
			ck_assert_msg((fds[j] = dial()) >= 0, "connect %d: %s",
			    j, strerror(errno));
		for (int j = i; j < i + BATCH; j++) {
			snprintf(name, sizeof name, "idle-%d", j);
			ck_assert_msg(call_ok(fds[j], "hello", "client", name),
			    "hello %d", j);
		}
		for (int j = i; j < i + BATCH; j += 2) {
			snprintf(name, sizeof name, "load/%d", j);
			ck_assert_msg(call_ok(fds[j], "acquire", "lock", name),
			    "acquire %d", j);
		}
		probe_ping(p);
	}
	ck_assert_uint_eq(probe_stat(p, "connections"), CONNECTIONS + 1);
	ck_assert_uint_eq(probe_stat(p, "sessions"), CONNECTIONS + 1);
	ck_assert_uint_eq(probe_stat(p, "locks"), CONNECTIONS / 2);
	printf("load: dlmd RSS %ld KiB with %d connections and %d locks\n",
	    rss_kib(d.pid), CONNECTIONS, CONNECTIONS / 2);

	/* The locks are really held: another client is told so. */
	other = tc_connect(&d);
	tc_hello(other, "other");
	ck_assert_str_eq(reply_errname(tc_call(other, "acquire",
	    "lock:s timeout_ms:i", "load/9998", 0LL)), "WOULD_BLOCK");
	tc_close(other);

	for (int i = 0; i < CONNECTIONS; i++) {
		close(fds[i]);
		if (i % 1000 == 0)
			probe_ping(p);
	}
	probe_wait_settled(p, 1, 0);
}

/*
 * Ten thousand clients connect, say hello and half of them take a lock of
 * their own; all stay connected at once, then all go; twice. Some memory
 * stays after the first time: glibc cannot return pages that still hold a
 * small live allocation, and libevent keeps a record for every descriptor
 * number it has seen. That is bounded by the peak, so the second time must
 * end where the first did.
 */
START_TEST(ten_thousand_connections)
{
	struct probe p;
	long baseline, first;

	probe_open(&p);
	baseline = rss_kib(d.pid);
	hold_and_drop(&p);
	first = rss_settled();
	printf("load: dlmd RSS %ld KiB at start, %ld KiB after 10000 "
	    "connections\n", baseline, first);
	if (!dlmd_is_sanitized(d.pid))
		ck_assert_msg(first - baseline < CONNECTIONS,
		    "dlmd kept %ld KiB after %d connections", first - baseline,
		    CONNECTIONS);
	hold_and_drop(&p);
	rss_back_to(first, RSS_SLACK_KIB / 4, "10000 connections again");
	probe_close(&p, "10000 connections, twice");
}
END_TEST

/* One churner: n short connections of four kinds; exits 0 when all went right. */
static int
churn(int who, int n)
{
	static const char garbage[] = "\xc1\xc1\xc1\xc1";
	char name[64];

	for (int i = 0; i < n; i++) {
		int fd = dial();
		bool ok = fd >= 0;

		switch (ok ? i % 4 : -1) {
		case 0:		/* connect and go */
			break;
		case 1:		/* a session, then gone without bye */
			snprintf(name, sizeof name, "churn-%d-%d", who, i);
			ok = call_ok(fd, "hello", "client", name);
			break;
		case 2:		/* a session that takes a lock and dies */
			snprintf(name, sizeof name, "churn-%d-%d", who, i);
			ok = call_ok(fd, "hello", "client", name);
			snprintf(name, sizeof name, "churn/%d/%d", who, i % 64);
			ok = ok && call_ok(fd, "acquire", "lock", name);
			break;
		case 3:		/* garbage, refused, gone */
			ok = send_all(fd, garbage, sizeof garbage - 1);
			break;
		}
		if (!ok) {
			fprintf(stderr, "churner %d: connection %d (kind %d) "
			    "failed: %s\n", who, i, i % 4, strerror(errno));
			return 1;
		}
		close(fd);
	}
	return 0;
}

START_TEST(connection_churn)
{
	pid_t kids[CHURNERS];
	struct probe p;
	long baseline;
	uint64_t total0;
	int running = CHURNERS;

	probe_open(&p);
	baseline = rss_kib(d.pid);
	total0 = probe_stat(&p, "connections_total");
	for (int k = 0; k < CHURNERS; k++) {
		kids[k] = fork();
		ck_assert_int_ge(kids[k], 0);
		if (kids[k] == 0)
			_exit(churn(k, CHURN / CHURNERS));
	}
	while (running > 0) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			ck_assert_msg(WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0, "a churner failed");
			running--;
			continue;
		}
		probe_ping(&p);
		sleep_ms(20);
	}
	probe_wait_settled(&p, 1, 0);
	ck_assert_uint_ge(probe_stat(&p, "connections_total") - total0, CHURN);
	rss_back_to(baseline, RSS_SLACK_KIB, "100000 connects and disconnects");
	probe_close(&p, "100000 connects and disconnects");
}
END_TEST

/*
 * Clients that ask for big answers and never read them, and clients that
 * send half a frame and stall: dlmd drops the first when their unread
 * output passes max-output, holds the second cheaply, and the probe is
 * answered all along.
 */
START_TEST(slow_reader_storm)
{
	static int deaf[STORM], stalled[STORM];
	char frame[512], name[256], burst[512 * 200];
	size_t flen, blen = 0;
	struct probe p;
	struct tc *holder;
	long baseline;
	uint64_t overflows0;

	probe_open(&p);
	baseline = rss_kib(d.pid);
	/* Locks with long names, so that each listing is large. */
	holder = tc_connect(&d);
	tc_hello(holder, "holder");
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "storm/%0200d", i);
		ck_assert_int_eq(tc_call(holder, "acquire", "lock:s", name)->err,
		    0);
	}
	flen = encode(frame, sizeof frame, "locks", NULL, NULL);
	ck_assert_uint_gt(flen, 0);
	for (int i = 0; i < 200; i++, blen += flen)
		memcpy(burst + blen, frame, flen);
	overflows0 = probe_stat(&p, "output_overflows");

	for (int i = 0; i < STORM; i++) {
		snprintf(name, sizeof name, "deaf-%d", i);
		ck_assert((deaf[i] = dial()) >= 0);
		ck_assert(call_ok(deaf[i], "hello", "client", name));
		/* 200 listings asked for, none read: megabytes owed. */
		ck_assert(send_all(deaf[i], burst, blen) ||
		    errno == EPIPE || errno == ECONNRESET);
		ck_assert((stalled[i] = dial()) >= 0);
		ck_assert(send_all(stalled[i], "\x94\x00\x01", 3));
		if (i % 10 == 0)
			probe_ping(&p);
	}
	/* Every deaf client dropped; the stalled ones and the rest still in. */
	for (uint64_t deadline = mono_ms() + 20000;;) {
		probe_ping(&p);
		if (probe_stat(&p, "output_overflows") - overflows0 >= STORM)
			break;
		ck_assert_msg(mono_ms() < deadline, "only %llu deaf clients "
		    "dropped", (unsigned long long)(probe_stat(&p,
		    "output_overflows") - overflows0));
		sleep_ms(20);
	}
	ck_assert_uint_eq(probe_stat(&p, "connections"), 2 + STORM);
	ck_assert_uint_eq(probe_stat(&p, "locks"), 100);
	for (int i = 0; i < STORM; i++) {
		close(deaf[i]);
		close(stalled[i]);
	}
	tc_close(holder);
	probe_wait_settled(&p, 1, 0);
	rss_back_to(baseline, RSS_SLACK_KIB, "a storm of slow readers");
	probe_close(&p, "a storm of slow readers");
}
END_TEST

static Suite *
load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, ten_thousand_connections);
	tcase_add_test(tc, connection_churn);
	tcase_add_test(tc, slow_reader_storm);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/* The figures must survive a failing test's exit. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run_suite(load_suite());
}
