/*
 * lockbench: one lock workload against one peer (dlmd, Redis or
 * PostgreSQL), with figures on stdout as "WORKLOAD METRIC VALUE" lines for
 * bench/compare to put side by side. See doc/BENCHMARKS.md.
 *
 *   1 uncontended   one client: acquire+release pairs/s, pair latency
 *   2 distinct      C clients (50), each on its own lock: pairs/s
 *   3 pipelined     C clients (4), D (64) acquires in flight, then D
 *                   releases: lock operations/s
 *   4 handoff       C clients (16) on one lock: hand-offs/s, spread
 *   5 idle          C sessions (10000) holding a lock each and keeping it:
 *                   the server's CPU and RSS; N (1000000) locks held: RSS
 *   6 dies          a holder SIGKILLed, or SIGSTOPped (a silent host):
 *                   time until a waiting client is granted the lock
 *   7 first         C (200) new sessions one after another: connect and
 *                   hello, the first acquire, the next: p50 and p99 of each
 *   8 semaphore     C clients (16) on one semaphore of K (-k, 4) permits,
 *                   each taking one, waiting as the peer waits, and giving
 *                   it back: acquires/s, the most inside at once (never
 *                   above K), spread
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/wait.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockbench.h"

struct bench_opts bench_opts = { .redis_retry_ms = 100 };

static const struct peer *peer;
static const char *addr;
static int seconds = 5, clients = -1, depth = 64, lease_ms = -1, repeats = 5;
static long many_locks = 1000000;
static int sem_permits = 4;
static pid_t server_pid;
static volatile int stop;

void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int64_t
lock_key(const char *name)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	return (int64_t)h;
}

double
proc_cpu_s(pid_t pid)
{
	char path[64], buf[4096];
	unsigned long ut = 0, st = 0;
	const char *p;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof buf, f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
		    "%lu %lu", &ut, &st);
	fclose(f);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long
proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = 0;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * CPU seconds of the server: the process and its live children, so that
 * PostgreSQL's backends (children of the postmaster) count.
 */
static double
server_cpu_s(pid_t pid)
{
	double total = proc_cpu_s(pid);
	struct dirent *de;
	DIR *d;

	if ((d = opendir("/proc")) == NULL)
		return total;
	while ((de = readdir(d)) != NULL) {
		char path[300], buf[512];
		const char *p;
		int ppid = 0;
		FILE *f;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof buf, f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == (int)pid)
			total += proc_cpu_s((pid_t)atoi(de->d_name));
		fclose(f);
	}
	closedir(d);
	return total;
}

static double
self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/*
 * CPU spent on each side from cpu_start() to cpu_done(), per unit counted
 * (a pair, an operation, an acquire), for cpu_report() to print.
 */
static double server_cpu0, client_cpu0, server_us, client_us;

static void
cpu_start(void)
{
	if (server_pid > 0)
		server_cpu0 = server_cpu_s(server_pid);
	client_cpu0 = self_cpu_s();
}

static void
cpu_done(double units)
{
	server_us = client_us = -1;
	if (units <= 0)
		return;
	if (server_pid > 0)
		server_us = (server_cpu_s(server_pid) - server_cpu0) / units *
		    1e6;
	client_us = (self_cpu_s() - client_cpu0) / units * 1e6;
}

int
idle_measure(int n, int secs, int lease, pid_t server, long rss0,
    int (*renew)(void *, int), void *ctx, struct idle_cost *cost)
{
	uint64_t t0, period_ns = (uint64_t)lease / 3 * 1000000;
	double cpu0;
	int next = 0;

	sleep_ms(500);
	cost->rss_per_session = (double)(proc_rss_kib(server) - rss0) *
	    1024.0 / n;
	cost->renewals = 0;
	cpu0 = proc_cpu_s(server);
	t0 = mono_ns();
	/* Session i is due at i/n of each period. */
	while (mono_ns() - t0 < (uint64_t)secs * 1000000000ULL) {
		uint64_t due = (mono_ns() - t0) % period_ns;
		int upto = (int)((double)due / (double)period_ns * n);

		while (next != upto) {
			if (renew(ctx, next) != 0)
				return -1;
			cost->renewals++;
			next = (next + 1) % n;
		}
		sleep_ms(10);
	}
	cost->cpu_pct = (proc_cpu_s(server) - cpu0) / secs * 100.0;
	return 0;
}

static void
result(const char *workload, const char *metric, double value)
{
	printf("%s %s %.6g\n", workload, metric, value);
	fflush(stdout);
}

static void
cpu_report(const char *workload)
{
	if (server_us >= 0)
		result(workload, "server_cpu_us", server_us);
	if (client_us >= 0)
		result(workload, "client_cpu_us", client_us);
}

static void *
open_or_die(int lease)
{
	void *conn = peer->open(addr, lease);

	if (conn == NULL) {
		fprintf(stderr, "lockbench: cannot connect to %s at %s\n",
		    peer->name, addr);
		exit(1);
	}
	return conn;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* 1: one client, one lock, acquire and release as fast as answered. */
static int
uncontended(void)
{
	void *conn = open_or_die(0);
	size_t n = 0, cap = 1 << 20;
	uint64_t *lat = malloc(cap * sizeof *lat), t0, end;

	if (lat == NULL)
		return 1;

	for (int i = 0; i < 1000; i++)		/* warm up */
		if (peer->acquire(conn, "w1", 0) != PEER_GRANTED ||
		    peer->release(conn, "w1") != 0)
			return 1;
	cpu_start();
	t0 = mono_ns();
	end = t0 + (uint64_t)seconds * 1000000000ULL;
	for (uint64_t t = t0; t < end;) {
		uint64_t u;

		if (peer->acquire(conn, "w1", 0) != PEER_GRANTED ||
		    peer->release(conn, "w1") != 0)
			return 1;
		u = mono_ns();
		if (n == cap) {
			uint64_t *more = realloc(lat, 2 * cap * sizeof *lat);

			if (more == NULL)
				break;
			lat = more;
			cap *= 2;
		}
		lat[n++] = u - t;
		t = u;
	}
	cpu_done((double)n);
	result("w1", "pairs_per_s", (double)n / ((double)(mono_ns() - t0) / 1e9));
	qsort(lat, n, sizeof *lat, cmp_u64);
	result("w1", "p50_us", (double)lat[n / 2] / 1e3);
	result("w1", "p99_us", (double)lat[n * 99 / 100] / 1e3);
	cpu_report("w1");
	free(lat);
	peer->close(conn);
	return 0;
}

struct worker {
	pthread_t	 thread;
	int		 index;
	void		*conn;
	unsigned long	 count;
	int		 failed;
};

static pthread_barrier_t start_line;
static double run_seconds;	/* how long the last run_workers ran */

static void *
distinct_worker(void *arg)
{
	struct worker *w = arg;
	char lock[32];

	snprintf(lock, sizeof lock, "w2/%d", w->index);
	pthread_barrier_wait(&start_line);
	while (!stop) {
		if (peer->acquire(w->conn, lock, 0) != PEER_GRANTED ||
		    peer->release(w->conn, lock) != 0) {
			w->failed = 1;
			break;
		}
		w->count++;
	}
	return NULL;
}

static void *
pipelined_worker(void *arg)
{
	struct worker *w = arg;
	char (*names)[32] = calloc((size_t)depth, sizeof *names);
	const char **locks = calloc((size_t)depth, sizeof *locks);

	if (names == NULL || locks == NULL)
		w->failed = 1;	/* still at the start line: the others wait */
	for (int i = 0; !w->failed && i < depth; i++) {
		snprintf(names[i], sizeof names[i], "w3/%d/%d", w->index, i);
		locks[i] = names[i];
	}
	pthread_barrier_wait(&start_line);
	while (!stop && !w->failed) {
		if (peer->batch(w->conn, locks, depth) != 0) {
			w->failed = 1;
			break;
		}
		w->count += 2 * (unsigned long)depth;
	}
	free(locks);
	free(names);
	return NULL;
}

/*
 * The client that took the lock last; read and written only by the holder,
 * so a recipe that let two in at once could also garble it.
 */
static volatile int last_holder = -1;
static unsigned long handoffs;

static void *
handoff_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&start_line);
	for (;;) {
		if (peer->acquire(w->conn, "w4", -1) != PEER_GRANTED) {
			w->failed = 1;
			break;
		}
		if (!stop) {
			w->count++;
			/* A hand-off: the lock went to another client. */
			if (last_holder != w->index)
				handoffs++;
			last_holder = w->index;
		}
		if (peer->release(w->conn, "w4") != 0) {
			w->failed = 1;
			break;
		}
		if (stop)
			break;
	}
	return NULL;
}

/* Run n workers for the set time; the sum of their counts per second. */
static double
run_workers(int n, void *(*fn)(void *), struct worker **out)
{
	struct worker *w = calloc((size_t)n, sizeof *w);
	uint64_t t0, t1;
	double total = 0;

	if (w == NULL) {
		fprintf(stderr, "lockbench: out of memory\n");
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		w[i].index = i;
		w[i].conn = open_or_die(0);
	}
	stop = 0;
	pthread_barrier_init(&start_line, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++)
		pthread_create(&w[i].thread, NULL, fn, &w[i]);
	pthread_barrier_wait(&start_line);
	cpu_start();
	t0 = mono_ns();
	sleep_ms(seconds * 1000);
	stop = 1;
	t1 = mono_ns();
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].failed) {
			fprintf(stderr, "lockbench: a %s client failed\n",
			    peer->name);
			exit(1);
		}
		total += (double)w[i].count;
	}
	/* Before the connections close: PostgreSQL's backends then exit. */
	cpu_done(total);
	pthread_barrier_destroy(&start_line);
	for (int i = 0; i < n; i++)
		peer->close(w[i].conn);
	*out = w;
	run_seconds = (double)(t1 - t0) / 1e9;
	return total / run_seconds;
}

static int
distinct(void)
{
	struct worker *w;

	result("w2", "pairs_per_s", run_workers(clients > 0 ? clients : 50,
	    distinct_worker, &w));
	cpu_report("w2");
	free(w);
	return 0;
}

static int
pipelined(void)
{
	struct worker *w;

	result("w3", "ops_per_s", run_workers(clients > 0 ? clients : 4,
	    pipelined_worker, &w));
	cpu_report("w3");
	free(w);
	return 0;
}

static int
handoff(void)
{
	int n = clients > 0 ? clients : 16, served = 0;
	struct worker *w;
	unsigned long lo = ~0UL, hi = 0;
	double rate;

	handoffs = 0;
	rate = run_workers(n, handoff_worker, &w);
	result("w4", "acquires_per_s", rate);
	cpu_report("w4");
	rate = (double)handoffs / run_seconds;
	for (int i = 0; i < n; i++) {
		if (w[i].count > 0)
			served++;
		lo = w[i].count < lo ? w[i].count : lo;
		hi = w[i].count > hi ? w[i].count : hi;
	}
	result("w4", "handoffs_per_s", rate);
	result("w4", "clients_served", served);
	result("w4", "min_per_client", (double)lo);
	result("w4", "max_per_client", (double)hi);
	free(w);
	return 0;
}

static int
idle(void)
{
	struct idle_cost cost;
	double per_lock;
	int n = clients > 0 ? clients : 10000;

	if (server_pid <= 0) {
		fprintf(stderr, "lockbench: workload 5 needs the server's "
		    "pid (-p)\n");
		return 2;
	}
	if (peer->idle == NULL || peer->many == NULL) {
		fprintf(stderr, "lockbench: %s: not measured\n", peer->name);
		return 0;
	}
	memset(&cost, 0, sizeof cost);
	if (peer->idle(addr, n, seconds, lease_ms > 0 ? lease_ms : 10000,
	    server_pid, &cost) != 0)
		return 1;
	result("w5", "idle_sessions", n);
	result("w5", "idle_cpu_pct", cost.cpu_pct);
	result("w5", "renewals_per_s", (double)cost.renewals / seconds);
	result("w5", "rss_per_session_b", cost.rss_per_session);
	if (peer->many(addr, many_locks, server_pid, &per_lock) != 0)
		return 1;
	result("w5", "held_locks", (double)many_locks);
	result("w5", "rss_per_lock_b", per_lock);
	return 0;
}

struct waiter {
	void		*conn;
	int		 bound_ms;
	int		 res;
	uint64_t	 granted_ns;
};

static void *
waiter_main(void *arg)
{
	struct waiter *wt = arg;

	wt->res = peer->acquire(wt->conn, "w6", wt->bound_ms);
	wt->granted_ns = mono_ns();
	return NULL;
}

/* One holder disturbed by sig: ms until the waiter had the lock, or -1. */
static double
holder_dies(int sig, int lease)
{
	struct waiter wt = { .bound_ms = lease + 3000 };
	pthread_t th;
	int pfd[2];
	pid_t pid;
	char c = 0;
	uint64_t t0;
	double ms;

	if (pipe(pfd) != 0 || (pid = fork()) < 0)
		return -2;
	if (pid == 0) {
		void *conn = peer->open(addr, lease);

		close(pfd[0]);
		if (conn == NULL || peer->acquire(conn, "w6", 0) != PEER_GRANTED)
			_exit(1);
		if (write(pfd[1], "k", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		waitpid(pid, NULL, 0);
		return -2;
	}
	close(pfd[0]);
	wt.conn = open_or_die(lease);
	pthread_create(&th, NULL, waiter_main, &wt);
	sleep_ms(300);		/* the waiter is waiting */
	t0 = mono_ns();
	kill(pid, sig);
	pthread_join(th, NULL);
	ms = wt.res == PEER_GRANTED ? (double)(wt.granted_ns - t0) / 1e6 : -1;
	if (wt.res == PEER_GRANTED)
		peer->release(wt.conn, "w6");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	peer->close(wt.conn);
	return ms;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
dies(void)
{
	static const struct { int sig; const char *name; } how[] = {
		{ SIGKILL, "kill" }, { SIGSTOP, "stop" },
	};
	int lease = lease_ms > 0 ? lease_ms : 2000;
	double *ms = calloc((size_t)repeats, sizeof *ms);

	result("w6", "lease_ms", lease);
	for (size_t h = 0; h < sizeof how / sizeof how[0]; h++) {
		char metric[64];
		int lost = 0;

		for (int i = 0; i < repeats; i++) {
			ms[i] = holder_dies(how[h].sig, lease);
			if (ms[i] == -2)
				return 1;
			if (ms[i] < 0) {
				lost++;
				ms[i] = 1e12;	/* sorts last */
			}
		}
		qsort(ms, (size_t)repeats, sizeof *ms, cmp_double);
		snprintf(metric, sizeof metric, "%s_p50_ms", how[h].name);
		result("w6", metric, ms[repeats / 2] < 1e12 ? ms[repeats / 2] :
		    -1);
		snprintf(metric, sizeof metric, "%s_max_ms", how[h].name);
		result("w6", metric, lost == 0 ? ms[repeats - 1] : -1);
		snprintf(metric, sizeof metric, "%s_never", how[h].name);
		result("w6", metric, lost);
	}
	result("w6", "bound_ms", lease + 3000);
	free(ms);
	return 0;
}

/* The p50 and p99 of n samples (ns, sorted here) as "PREFIX_p50_us"... */
static void
result_pcts(const char *workload, const char *prefix, uint64_t *v, size_t n)
{
	char metric[64];

	qsort(v, n, sizeof *v, cmp_u64);
	snprintf(metric, sizeof metric, "%s_p50_us", prefix);
	result(workload, metric, (double)v[n / 2] / 1e3);
	snprintf(metric, sizeof metric, "%s_p99_us", prefix);
	result(workload, metric, (double)v[n * 99 / 100] / 1e3);
}

/*
 * 7: what a new session pays before its first grant, one session at a
 * time so that nothing else is in the way: connect and hello (open), the
 * session's first acquire (a clustered dlmd puts its record in etcd
 * first), and its next acquire, of another lock, for comparison. Both
 * are released and the session closed before the next one starts.
 */
static int
first_grant(void)
{
	int n = clients > 0 ? clients : 200;
	uint64_t *open_ns = calloc((size_t)n, sizeof *open_ns);
	uint64_t *first_ns = calloc((size_t)n, sizeof *first_ns);
	uint64_t *next_ns = calloc((size_t)n, sizeof *next_ns);
	uint64_t *to_grant_ns = calloc((size_t)n, sizeof *to_grant_ns);
	int err = 1;

	if (open_ns == NULL || first_ns == NULL || next_ns == NULL ||
	    to_grant_ns == NULL)
		goto fail;
	cpu_start();
	for (int i = 0; i < n; i++) {
		uint64_t t0 = mono_ns(), t1, t2, t3;
		void *conn = open_or_die(0);

		t1 = mono_ns();
		if (peer->acquire(conn, "w7/first", 0) != PEER_GRANTED)
			goto fail;
		t2 = mono_ns();
		if (peer->acquire(conn, "w7/next", 0) != PEER_GRANTED)
			goto fail;
		t3 = mono_ns();
		if (peer->release(conn, "w7/first") != 0 ||
		    peer->release(conn, "w7/next") != 0)
			goto fail;
		peer->close(conn);
		open_ns[i] = t1 - t0;
		first_ns[i] = t2 - t1;
		next_ns[i] = t3 - t2;
		to_grant_ns[i] = t2 - t0;
	}
	cpu_done((double)n);
	result("w7", "sessions", n);
	result_pcts("w7", "open", open_ns, (size_t)n);
	result_pcts("w7", "first", first_ns, (size_t)n);
	result_pcts("w7", "next", next_ns, (size_t)n);
	result_pcts("w7", "to_first", to_grant_ns, (size_t)n);
	cpu_report("w7");
	err = 0;
fail:
	free(open_ns);
	free(first_ns);
	free(next_ns);
	free(to_grant_ns);
	return err;
}

/*
 * Workload 8: how many are inside the semaphore's section now, and the
 * most ever; a recipe that let more than K in at once would show here.
 */
static int sem_inside, sem_most;

static void *
semaphore_worker(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(&start_line);
	for (;;) {
		int in;

		if (peer->sem_acquire(w->conn, "w8", sem_permits, -1) !=
		    PEER_GRANTED) {
			w->failed = 1;
			break;
		}
		in = __atomic_add_fetch(&sem_inside, 1, __ATOMIC_SEQ_CST);
		for (int most = __atomic_load_n(&sem_most, __ATOMIC_SEQ_CST);
		    in > most && !__atomic_compare_exchange_n(&sem_most, &most,
		    in, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);)
			;
		if (!stop)
			w->count++;
		__atomic_sub_fetch(&sem_inside, 1, __ATOMIC_SEQ_CST);
		if (peer->sem_release(w->conn, "w8") != 0) {
			w->failed = 1;
			break;
		}
		if (stop)
			break;
	}
	return NULL;
}

static int
semaphore(void)
{
	int n = clients > 0 ? clients : 16, served = 0;
	struct worker *w;
	unsigned long lo = ~0UL, hi = 0;

	if (peer->sem_acquire == NULL) {
		fprintf(stderr, "lockbench: %s has no semaphore recipe\n",
		    peer->name);
		return 1;
	}
	sem_inside = sem_most = 0;
	result("w8", "acquires_per_s", run_workers(n, semaphore_worker, &w));
	cpu_report("w8");
	for (int i = 0; i < n; i++) {
		if (w[i].count > 0)
			served++;
		lo = w[i].count < lo ? w[i].count : lo;
		hi = w[i].count > hi ? w[i].count : hi;
	}
	result("w8", "permits", sem_permits);
	result("w8", "most_inside", sem_most);
	result("w8", "clients_served", served);
	result("w8", "min_per_client", (double)lo);
	result("w8", "max_per_client", (double)hi);
	free(w);
	if (sem_most > sem_permits) {
		fprintf(stderr, "lockbench: %s let %d in at once to a semaphore "
		    "of %d\n", peer->name, sem_most, sem_permits);
		return 1;
	}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
"usage: lockbench [-t SECONDS] [-c CLIENTS] [-d DEPTH] [-k PERMITS]\n"
"                 [-l LEASE_MS] [-n LOCKS] [-p SERVER_PID] [-r RETRY_MS]\n"
"                 [-R REPEATS] dlmd|dlmd-loop|redis|postgres ADDRESS 1-8\n"
"  ADDRESS: unix:PATH, tcp:HOST:PORT or tls:HOST:PORT (dlmd, dlmd-loop,\n"
"  redis; the server's certificate checked against $DLM_TLS_CA; not for\n"
"  dlmd's workload 5); a libpq connection string (postgres)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static int (*const workloads[])(void) = {
		uncontended, distinct, pipelined, handoff, idle, dies,
		first_grant, semaphore,
	};
	int ch, w;

	while ((ch = getopt(argc, argv, "c:d:k:l:n:p:r:R:t:")) != -1) {
		switch (ch) {
		case 'c': clients = atoi(optarg); break;
		case 'd': depth = atoi(optarg); break;
		case 'k': sem_permits = atoi(optarg); break;
		case 'l': lease_ms = atoi(optarg); break;
		case 'n': many_locks = atol(optarg); break;
		case 'p': server_pid = (pid_t)atoi(optarg); break;
		case 'r': bench_opts.redis_retry_ms = atoi(optarg); break;
		case 'R': repeats = atoi(optarg); break;
		case 't': seconds = atoi(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 3 || seconds < 1 || depth < 1 || repeats < 1 ||
	    many_locks < 1 || sem_permits < 1)
		usage();
	if (strcmp(argv[optind], "dlmd") == 0)
		peer = &peer_dlmd;
	else if (strcmp(argv[optind], "dlmd-loop") == 0)
		peer = &peer_dlmd_loop;
	else if (strcmp(argv[optind], "redis") == 0)
		peer = &peer_redis;
	else if (strcmp(argv[optind], "postgres") == 0)
		peer = &peer_postgres;
	else
		usage();
	addr = argv[optind + 1];
	w = atoi(argv[optind + 2]);
	if (w < 1 || w > 8)
		usage();
	signal(SIGPIPE, SIG_IGN);
	printf("recipe %s: %s\n", peer->name, peer->recipe());
	return workloads[w - 1]();
}
