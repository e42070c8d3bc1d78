/*
 * Does a daemon full of sessions serve as fast as an empty one?
 *
 * Starts dlmd twice: once empty, once with LINGER sessions that each hold a
 * lock and wait out a linger (a timer each, no socket) plus CONNECTED idle
 * sessions (a socket and a lease timer each). Then a probe client measures
 * ping round trips (p50, p99) and acquire+release pairs per second, and
 * dlmd's CPU while idle and its resident memory. Timers are libevent common
 * timeouts, so their number should not show in the probe's figures.
 *
 * usage: idle_sessions DLMD [LINGER [CONNECTED]]
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "frame.h"
#include "mpack.h"

static char sock_path[108];

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static int
dial(void)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock_path, strlen(sock_path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
		die("connect");
	return fd;
}

/* Send [0, id, method, [{k: v...}]] with string or integer values. */
static void
request(int fd, uint32_t id, const char *method, const char *k1,
    const char *s1, const char *k2, long long i2, const char *k3,
    long long i3)
{
	msgpack_sbuffer sb;
	struct mpw w;
	uint32_t n = (k1 != NULL) + (k2 != NULL) + (k3 != NULL);

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, id);
	mpw_str(&w, method);
	mpw_array(&w, 1);
	mpw_map(&w, n);
	if (k1 != NULL) {
		mpw_key(&w, k1);
		mpw_str(&w, s1);
	}
	if (k2 != NULL) {
		mpw_key(&w, k2);
		mpw_i64(&w, i2);
	}
	if (k3 != NULL) {
		mpw_key(&w, k3);
		mpw_i64(&w, i3);
	}
	if (w.err != 0 || write(fd, sb.data, sb.size) != (ssize_t)sb.size)
		die("write");
	msgpack_sbuffer_destroy(&sb);
}

/* Read one whole reply frame; fail on an error reply. */
static void
reply(int fd)
{
	static char buf[65536];
	static size_t len;
	size_t flen;

	for (;;) {
		enum frame_status st = frame_scan(buf, len, sizeof buf, 8, &flen);
		ssize_t n;

		if (st == FRAME_COMPLETE) {
			static msgpack_zone zone;
			msgpack_object obj;
			size_t off = 0;

			/* [1, id, error, result]: error is nil on success. */
			if (zone.chunk_size == 0)
				msgpack_zone_init(&zone, 4096);
			if (msgpack_unpack(buf, flen, &off, &zone, &obj) !=
			    MSGPACK_UNPACK_SUCCESS ||
			    obj.type != MSGPACK_OBJECT_ARRAY ||
			    obj.via.array.size != 4 ||
			    obj.via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
				fprintf(stderr, "error reply\n");
				exit(1);
			}
			msgpack_zone_clear(&zone);
			memmove(buf, buf + flen, len - flen);
			len -= flen;
			return;
		}
		if (st != FRAME_INCOMPLETE) {
			fprintf(stderr, "bad frame\n");
			exit(1);
		}
		n = read(fd, buf + len, sizeof buf - len);
		if (n <= 0)
			die("read");
		len += (size_t)n;
	}
}

static pid_t
start_dlmd(const char *dlmd)
{
	pid_t pid = fork();

	if (pid == 0) {
		char listen[128];

		snprintf(listen, sizeof listen, "unix:%s", sock_path);
		execl(dlmd, dlmd, "-c", "/dev/null", "-f", "-l", listen,
		    "--log-level", "warning", "--max-clients", "1000000",
		    "--linger-max", "3600000", "--lease-max", "3600000",
		    (char *)NULL);
		die("exec");
	}
	for (int i = 0; i < 500; i++) {
		struct sockaddr_un sun;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, sock_path, strlen(sock_path));
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
			close(fd);
			return pid;
		}
		close(fd);
		usleep(10000);
	}
	fprintf(stderr, "dlmd did not start\n");
	exit(1);
}

/* utime+stime of a process in seconds, and its RSS in KiB. */
static void
proc_usage(pid_t pid, double *cpu, long *rss_kib)
{
	char path[64], buf[4096];
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		const char *p;

		if (fgets(buf, sizeof buf, f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL)
			sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
			    "%*u %lu %lu", &ut, &st);
		fclose(f);
	}
	*cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	*rss_kib = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(buf, sizeof buf, f) != NULL)
			if (sscanf(buf, "VmRSS: %ld", rss_kib) == 1)
				break;
		fclose(f);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct result {
	double	p50_us, p99_us, pairs_per_s, idle_cpu_pct;
	long	rss_kib;
};

static void
run(const char *dlmd, long lingering, long connected, struct result *res)
{
	enum { PINGS = 20000, PAIRS = 20000 };
	static double rtt[PINGS];
	int *fds = calloc((size_t)connected + 1, sizeof *fds), probe;
	pid_t pid = start_dlmd(dlmd);
	double t0, cpu0, cpu1;
	char name[64];
	uint32_t id = 1;
	long rss;

	for (long i = 0; i < lingering; i++) {
		int fd = dial();

		snprintf(name, sizeof name, "linger-%ld", i);
		request(fd, id++, "hello", "client", name, "linger_ms", 3600000,
		    "proto", 1);
		reply(fd);
		snprintf(name, sizeof name, "idle/%ld", i);
		request(fd, id++, "acquire", "lock", name, NULL, 0, NULL, 0);
		reply(fd);
		close(fd);
	}
	for (long i = 0; i < connected; i++) {
		fds[i] = dial();
		snprintf(name, sizeof name, "conn-%ld", i);
		request(fds[i], id++, "hello", "client", name, "lease_ms",
		    3600000, "proto", 1);
		reply(fds[i]);
	}
	probe = dial();
	request(probe, id++, "hello", "client", "probe", NULL, 0, "proto", 1);
	reply(probe);

	/* Idle CPU over two seconds: timers alone, nobody talking. */
	proc_usage(pid, &cpu0, &rss);
	sleep(2);
	proc_usage(pid, &cpu1, &rss);
	res->idle_cpu_pct = (cpu1 - cpu0) / 2.0 * 100.0;
	res->rss_kib = rss;

	for (int i = 0; i < PINGS; i++) {
		double t = mono_sec();

		request(probe, id++, "ping", NULL, NULL, NULL, 0, NULL, 0);
		reply(probe);
		rtt[i] = (mono_sec() - t) * 1e6;
	}
	qsort(rtt, PINGS, sizeof rtt[0], cmp_double);
	res->p50_us = rtt[PINGS / 2];
	res->p99_us = rtt[PINGS * 99 / 100];

	t0 = mono_sec();
	for (int i = 0; i < PAIRS; i++) {
		request(probe, id++, "acquire", "lock", "probe/x", NULL, 0, NULL,
		    0);
		reply(probe);
		request(probe, id++, "release", "lock", "probe/x", NULL, 0, NULL,
		    0);
		reply(probe);
	}
	res->pairs_per_s = PAIRS / (mono_sec() - t0);

	close(probe);
	for (long i = 0; i < connected; i++)
		close(fds[i]);
	free(fds);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int
main(int argc, char **argv)
{
	long lingering = argc > 2 ? atol(argv[2]) : 100000;
	long connected = argc > 3 ? atol(argv[3]) : 10000;
	struct result empty, full;
	struct rlimit rl;

	if (argc < 2) {
		fprintf(stderr, "usage: idle_sessions DLMD [LINGER [CONNECTED]]\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if ((rlim_t)connected + 64 > rl.rlim_cur) {
			connected = (long)rl.rlim_cur - 64;
			fprintf(stderr, "file limit: using %ld connected "
			    "sessions\n", connected);
		}
	}
	snprintf(sock_path, sizeof sock_path, "/tmp/dlm-bench-%d.sock",
	    (int)getpid());
	run(argv[1], 0, 0, &empty);
	run(argv[1], lingering, connected, &full);
	unlink(sock_path);

	printf("%-34s %14s %14s %8s\n", "", "empty dlmd", "full dlmd", "ratio");
	printf("%-34s %14s %7ld+%-6ld\n", "sessions (lingering+connected)",
	    "0", lingering, connected);
	printf("%-34s %14.1f %14.1f %8.2f\n", "probe ping p50 (us)", empty.p50_us,
	    full.p50_us, full.p50_us / empty.p50_us);
	printf("%-34s %14.1f %14.1f %8.2f\n", "probe ping p99 (us)", empty.p99_us,
	    full.p99_us, full.p99_us / empty.p99_us);
	printf("%-34s %14.0f %14.0f %8.2f\n", "probe acquire+release pairs/s",
	    empty.pairs_per_s, full.pairs_per_s,
	    full.pairs_per_s / empty.pairs_per_s);
	printf("%-34s %14.2f %14.2f\n", "dlmd CPU while idle (% of a core)",
	    empty.idle_cpu_pct, full.idle_cpu_pct);
	printf("%-34s %14ld %14ld\n", "dlmd RSS (KiB)", empty.rss_kib,
	    full.rss_kib);
	return 0;
}
