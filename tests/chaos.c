/*
 * The chaos checker: CLIENTS worker processes loop on acquire -> work on a
 * shared file-backed resource that checks fencing tokens -> release, while
 * this driver kills (SIGKILL), stops (SIGSTOP, SIGCONT after the lease has
 * run out) and disconnects them at random, for SECONDS.
 *
 * The resource accepts a piece of work only with a token at least as new
 * as the newest it has seen, at its start and again at its commit, so a
 * holder that wakes after losing its lease is refused, not obeyed. It
 * fails when
 *   - two committed pieces of work under different tokens overlap in time;
 *   - a worker nobody disturbed is refused (dlmd let the lock go to
 *     someone else while that worker's live session held it);
 *   - dlmd's `lock` shows more than one holder of the exclusive lock;
 *   - a killed worker's session is still listed a lease after its death;
 *   - dlmd dies, or does not exit 0 on SIGTERM at the end.
 * It reports how many stale writes the tokens stopped.
 *
 * usage: chaos [SECONDS [CLIENTS [LEASE_MS]]]   (dlmd from $DLMD)
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "chaosres.h"
#include "clock.h"
#include "dlm.h"

#define MAXCLIENTS	32
#define LOCK		"chaos"

struct shared {
	/* Bumped by the driver before it disturbs a worker. */
	volatile unsigned long	disturbed[MAXCLIENTS];
	volatile unsigned long	committed, stale, violations;
};

static struct shared *sh;
static char dir[64], server[200];
static struct chaosres resource;
static int lease_ms = 500;
static volatile sig_atomic_t reconnect_asked;

static void
violation(const char *fmt, ...)
{
	va_list ap;

	__atomic_add_fetch(&sh->violations, 1, __ATOMIC_SEQ_CST);
	fputs("chaos: VIOLATION: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
on_usr1(int sig)
{
	(void)sig;
	reconnect_asked = 1;
}

static struct dlm_client *
worker_connect(int slot, int gen)
{
	struct dlm_options o;
	char name[32];

	snprintf(name, sizeof name, "w%d-%d-%d", slot, gen, (int)getpid());
	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = lease_ms;
	for (;;) {
		struct dlm_client *c = dlm_connect(server, &o, NULL);

		if (c != NULL)
			return c;
		usleep(20000);
	}
}

static void __attribute__((noreturn))
worker(int slot)
{
	struct dlm_client *c;
	int gen = 0;

	signal(SIGUSR1, on_usr1);
	srandom((unsigned)getpid());
	c = worker_connect(slot, gen++);
	for (;;) {
		unsigned long before;
		uint64_t token;
		int rc, held;

		if (reconnect_asked) {
			reconnect_asked = 0;
			dlm_close(c);
			c = worker_connect(slot, gen++);
		}
		before = sh->disturbed[slot];
		rc = dlm_acquire(c, LOCK, 0, 1000, &token);
		if (rc == DLM_E_CLOSED) {
			dlm_close(c);
			c = worker_connect(slot, gen++);
			continue;
		}
		if (rc != 0)
			continue;
		/*
		 * The worker does not stop itself when its hold is lost: the
		 * resource must. It is dlmd's fault only when the library
		 * still counted the hold as good just before the step and
		 * the driver did not touch this worker.
		 */
		held = dlm_holds(c, LOCK, NULL);
		if (!chaosres_step(&resource, token, 'A')) {
			__atomic_add_fetch(&sh->stale, 1, __ATOMIC_SEQ_CST);
			if (held && sh->disturbed[slot] == before)
				violation("worker %d refused at the start with "
				    "token %llu though it held the lock and "
				    "nobody disturbed it", slot,
				    (unsigned long long)token);
		} else {
			usleep((useconds_t)(random() % 20000));
			held = dlm_holds(c, LOCK, NULL);
			if (chaosres_step(&resource, token, 'C'))
				__atomic_add_fetch(&sh->committed, 1,
				    __ATOMIC_SEQ_CST);
			else {
				__atomic_add_fetch(&sh->stale, 1,
				    __ATOMIC_SEQ_CST);
				if (held && sh->disturbed[slot] == before)
					violation("worker %d refused at commit "
					    "with token %llu though it held the "
					    "lock and nobody disturbed it", slot,
					    (unsigned long long)token);
			}
		}
		(void)dlm_release(c, LOCK);
	}
}

static pid_t
spawn_worker(int slot)
{
	pid_t pid = fork();

	if (pid < 0)
		abort();
	if (pid == 0)
		worker(slot);
	return pid;
}

/* How many holders dlmd lists for the lock, or -1. */
static long
holders_of(struct dlm_client *admin)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	void *res = NULL;
	size_t len = 0;
	long n = -1;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	msgpack_pack_str_with_body(&pk, "lock", 4);
	msgpack_pack_str_with_body(&pk, LOCK, strlen(LOCK));
	if (dlm_call(admin, "lock", sb.data, sb.size, &res, &len, NULL) ==
	    DLM_E_NOT_FOUND)
		n = 0;
	msgpack_sbuffer_destroy(&sb);
	if (res == NULL)
		return n;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, res, len, NULL) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP)
		for (uint32_t i = 0; i < u.data.via.map.size; i++) {
			msgpack_object_kv *kv = &u.data.via.map.ptr[i];

			if (kv->key.via.str.size == 8 &&
			    memcmp(kv->key.via.str.ptr, "nholders", 8) == 0)
				n = (long)kv->val.via.u64;
		}
	msgpack_unpacked_destroy(&u);
	dlm_free(res);
	return n;
}

/* Whether a session whose name ends in "-PID" is still listed. */
static bool
session_of_pid_listed(struct dlm_client *admin, pid_t pid)
{
	char needle[32];
	void *res = NULL;
	size_t len = 0;
	bool found;

	if (dlm_call(admin, "clients", NULL, 0, &res, &len, NULL) != 0)
		return false;
	snprintf(needle, sizeof needle, "-%d", (int)pid);
	found = memmem(res, len, needle, strlen(needle)) != NULL;
	dlm_free(res);
	return found;
}

static void
overlapped(unsigned long long a, unsigned long long b)
{
	violation("work under tokens %llu and %llu overlapped", a, b);
}

int
main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 8;
	int nclients = argc > 2 ? atoi(argv[2]) : 6;
	const char *dlmd = getenv("DLMD");
	pid_t dlmd_pid, workers[MAXCLIENTS];
	pid_t killed[4096];
	uint64_t killed_at[4096];
	int nkilled = 0, kills = 0, stops = 0, drops = 0, status;
	struct dlm_client *admin;
	char lease_arg[16], listen[256];
	uint64_t end;

	if (argc > 3)
		lease_ms = atoi(argv[3]);
	if (dlmd == NULL || nclients < 2 || nclients > MAXCLIENTS ||
	    seconds < 1 || lease_ms < 100) {
		fprintf(stderr, "usage: DLMD=... chaos [SECONDS [CLIENTS "
		    "[LEASE_MS]]]\n");
		return 2;
	}
	snprintf(dir, sizeof dir, "/tmp/dlmchaos.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 2;
	snprintf(server, sizeof server, "unix:%s/s.sock", dir);
	snprintf(listen, sizeof listen, "unix:%s/s.sock", dir);
	chaosres_init(&resource, dir, "chaos");
	snprintf(lease_arg, sizeof lease_arg, "%d", lease_ms);
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	if ((dlmd_pid = fork()) == 0) {
		execl(dlmd, dlmd, "-c", "/dev/null", "-f", "-l", listen,
		    "--log-level", "warning", "--lease-min", "100",
		    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && access(listen + 5, F_OK) != 0; i++)
		usleep(10000);
	if ((admin = dlm_connect(server, NULL, NULL)) == NULL) {
		fprintf(stderr, "chaos: dlmd did not start\n");
		return 2;
	}
	dlm_close(admin);
	srandom((unsigned)time(NULL));
	for (int i = 0; i < nclients; i++)
		workers[i] = spawn_worker(i);

	end = mono_ns() + (uint64_t)seconds * 1000000000u;
	while (mono_ns() < end) {
		int slot = (int)(random() % nclients);
		long holders;

		usleep((useconds_t)(50000 + random() % 100000));
		__atomic_add_fetch(&sh->disturbed[slot], 1, __ATOMIC_SEQ_CST);
		switch (random() % 3) {
		case 0:
			kill(workers[slot], SIGKILL);
			waitpid(workers[slot], NULL, 0);
			if (nkilled < 4096) {
				killed[nkilled] = workers[slot];
				killed_at[nkilled++] = mono_ns();
			}
			workers[slot] = spawn_worker(slot);
			kills++;
			break;
		case 1:
			kill(workers[slot], SIGSTOP);
			usleep((useconds_t)(lease_ms + 100 +
			    random() % 300) * 1000);
			kill(workers[slot], SIGCONT);
			stops++;
			break;
		default:
			kill(workers[slot], SIGUSR1);
			drops++;
			break;
		}
		/*
		 * A client of its own for the checks, closed before the next
		 * fork: the workers must not be forked from a process with
		 * libdlm's thread running (sanitizers do not support it).
		 */
		if ((admin = dlm_connect(server, NULL, NULL)) == NULL) {
			violation("cannot connect to dlmd");
			break;
		}
		if ((holders = holders_of(admin)) > 1)
			violation("dlmd lists %ld holders of an exclusive "
			    "lock", holders);
		/* A killed worker's session goes with its socket; allow it
		 * a lease in any case. */
		for (int k = 0; k < nkilled; k++)
			if (killed[k] != 0 && mono_ns() > killed_at[k] +
			    (uint64_t)(lease_ms + 500) * 1000000u) {
				if (session_of_pid_listed(admin, killed[k]))
					violation("killed worker %d still has "
					    "a session", (int)killed[k]);
				killed[k] = 0;
			}
		dlm_close(admin);
		if (waitpid(dlmd_pid, &status, WNOHANG) == dlmd_pid) {
			violation("dlmd exited (status %d)", status);
			dlmd_pid = 0;
			break;
		}
	}
	for (int i = 0; i < nclients; i++) {
		kill(workers[i], SIGKILL);
		waitpid(workers[i], NULL, 0);
	}
	if (dlmd_pid > 0) {
		kill(dlmd_pid, SIGTERM);
		waitpid(dlmd_pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			violation("dlmd exited with status %d on SIGTERM",
			    status);
	}
	(void)chaosres_overlaps(&resource, overlapped);
	printf("chaos: %d s, %d clients, lease %d ms: %lu pieces of work "
	    "committed, %lu stale writes stopped by tokens; faults: %d kills, "
	    "%d stops past the lease, %d disconnects; violations: %lu\n",
	    seconds, nclients, lease_ms, sh->committed, sh->stale, kills,
	    stops, drops, sh->violations);
	{
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "chaos: could not remove %s\n", dir);
	}
	return sh->violations == 0 && sh->committed > 0 ? 0 : 1;
}
