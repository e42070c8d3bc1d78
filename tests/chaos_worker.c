/*
 * The cluster chaos checker's workers: each a process with one libdlm
 * client given every dlmd ($DLM_SERVER=a,b,c), looping acquire -> steps of
 * work on the lock's token-checking resource -> release, like a service
 * would: a step is taken only while dlm_holds() counts the hold, so a
 * step the resource refuses means another holder was let in while this
 * one's hold was good, which is dlmd's or libdlm's fault, never the
 * worker's.
 *
 * When the driver disturbs the cluster while a worker holds a lock, the
 * worker keeps the hold through the disturbance, writing nothing, until
 * the driver has seen the cluster grant again; then it judges the hold:
 * still counted and accepted by the resource (kept), reported through
 * on_lost (told), or gone with nobody saying so (untold, a failure).
 */
#include "config.h"

#include <sys/prctl.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaos_cluster.h"
#include "clock.h"
#include "dlm.h"

/* The token of the last hold on_lost reported, per lock; this process's. */
static volatile uint64_t lost_token[CC_MAXLOCKS];
static int my_slot;

void
cc_lock_name(int i, char *buf, size_t len)
{
	snprintf(buf, len, "chaos%d", i);
}

static void
count(unsigned long *n)
{
	__atomic_add_fetch(n, 1, __ATOMIC_SEQ_CST);
}

static void
count_err(int err)
{
	count(&cc_sh->errs[err >= 0 && err < CC_MAXERR ? err : 0]);
}

/* From the client's thread: remember which hold went, and why. */
static void
on_lost(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    void *arg)
{
	int i;

	(void)c;
	(void)arg;
	if (sscanf(lock, "chaos%d", &i) == 1 && i >= 0 && i < CC_MAXLOCKS)
		__atomic_store_n(&lost_token[i], token, __ATOMIC_SEQ_CST);
	count(&cc_sh->lost[reason >= 0 && reason < 8 ? reason : 0]);
}

/*
 * Until libdlm takes a list of servers, try each one in turn: a standby
 * answers NOT_ACTIVE, the active opens the session. Counted, so that the
 * report says the fail-over was not libdlm's.
 */
static struct dlm_client *
connect_each(const struct dlm_options *o)
{
	char list[512], *save = NULL;

	snprintf(list, sizeof list, "%s", cc_cfg.servers);
	for (char *a = strtok_r(list, ",", &save); a != NULL;
	    a = strtok_r(NULL, ",", &save)) {
		struct dlm_client *c = dlm_connect(a, o, NULL);

		if (c != NULL) {
			count(&cc_sh->list_fallbacks);
			return c;
		}
		count(&cc_sh->connect_fails);
	}
	return NULL;
}

static struct dlm_client *
worker_connect(int gen)
{
	struct dlm_options o;
	char name[48];

	snprintf(name, sizeof name, "w%d-%d-%d", my_slot, gen, (int)getpid());
	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = cc_cfg.lease_ms;
	/* Every other worker lingers: the server died, not the client. */
	o.linger_ms = my_slot % 2 == 0 ? cc_cfg.lease_ms : 0;
	o.connect_timeout_ms = 2000;
	o.on_lost = on_lost;
	for (;;) {
		struct dlm_client *c;
		int err = 0;

		if (cc_sh->stop)
			_exit(0);
		if (!cc_sh->no_list) {
			if ((c = dlm_connect(NULL, &o, &err)) != NULL) {
				count(&cc_sh->connects);
				return c;
			}
			if (err == DLM_E_ADDRESS)
				cc_sh->no_list = 1;
			else
				count(&cc_sh->connect_fails);
		}
		if (cc_sh->no_list && (c = connect_each(&o)) != NULL) {
			count(&cc_sh->connects);
			return c;
		}
		usleep(50000);
	}
}

static void
grant_log(int lock, uint64_t token)
{
	uint64_t i = __atomic_fetch_add(&cc_sh->ngrants, 1, __ATOMIC_SEQ_CST);
	struct cc_grant *g = &cc_sh->grants[i % CC_GRANTS];

	__atomic_store_n(&g->ns, 0, __ATOMIC_SEQ_CST);
	g->token = token;
	g->lock = (uint32_t)lock;
	g->slot = (uint32_t)my_slot;
	__atomic_store_n(&g->ns, mono_ns(), __ATOMIC_SEQ_CST);
}

/* Whether on_lost reported the hold (lock, token), waiting up to ms. */
static bool
told_lost(int lock, uint64_t token, int ms)
{
	uint64_t until = mono_ms() + (uint64_t)ms;

	for (;;) {
		if (__atomic_load_n(&lost_token[lock], __ATOMIC_SEQ_CST) ==
		    token)
			return true;
		if (mono_ms() >= until)
			return false;
		usleep(10000);
	}
}

/* Whether the library counts the hold (lock, token) as good. */
static bool
still_holds(struct dlm_client *c, const char *name, uint64_t token)
{
	uint64_t have = 0;

	return dlm_holds(c, name, &have) == 1 && have == token;
}

/*
 * One step of work under token, taken only while the hold counts; false
 * when the piece of work must stop (the hold is gone or refused).
 */
static bool
step(struct dlm_client *c, int lock, const char *name, uint64_t token,
    char what)
{
	if (!still_holds(c, name, token)) {
		/* The notice may be on its way from the client's thread. */
		if (!told_lost(lock, token, 1000)) {
			count(&cc_sh->untold);
			fprintf(stderr, "chaos_cluster: worker %d: the hold of "
			    "%s (token %llu) is gone and on_lost said "
			    "nothing\n", my_slot, name,
			    (unsigned long long)token);
		}
		return false;
	}
	if (chaosres_step(&cc_cfg.res[lock], token, what))
		return true;
	count(&cc_sh->refused);
	cc_violation("worker %d refused on %s with token %llu though libdlm "
	    "counted the hold and said nothing of a loss", my_slot, name,
	    (unsigned long long)token);
	return false;
}

/*
 * The cluster was disturbed while this hold was had: ride it out, then
 * judge it (see the top of the file). started: 'A' was accepted.
 */
static void
ride(struct dlm_client *c, int lock, const char *name, uint64_t token,
    uint64_t seq, bool started)
{
	struct cc_ride *r = &cc_sh->ride[my_slot % 2 == 0];
	uint64_t cap = mono_ms() + (uint64_t)cc_cfg.ride_cap_ms;

	count(&r->held);
	while (cc_sh->settled_seq < seq && mono_ms() < cap &&
	    !told_lost(lock, token, 0))
		usleep(50000);
	/* A little past the first new grant, so that others are at work. */
	(void)told_lost(lock, token, 300);
	if (told_lost(lock, token, 0)) {
		count(&r->told);
		return;
	}
	if (!still_holds(c, name, token)) {
		/* The notice may be on its way from the client's thread. */
		if (told_lost(lock, token, 1000))
			count(&r->told);
		else {
			count(&r->untold);
			fprintf(stderr, "chaos_cluster: worker %d: the hold of "
			    "%s (token %llu) is gone after a fault and "
			    "on_lost said nothing\n", my_slot, name,
			    (unsigned long long)token);
		}
		return;
	}
	if ((started || step(c, lock, name, token, 'A')) &&
	    step(c, lock, name, token, 'C')) {
		count(&r->kept);
		count(&cc_sh->committed);
	}
}

/* A piece of work: 'A', a few 'W', 'C', unless a fault comes first. */
static void
work(struct dlm_client *c, int lock, const char *name, uint64_t token,
    uint64_t seq)
{
	int steps = 2 + (int)(random() % 3);
	bool started = false;

	count(&cc_sh->pieces);
	for (int i = 0; i < steps; i++) {
		char what = i == 0 ? 'A' : i == steps - 1 ? 'C' : 'W';

		if (cc_sh->disturb_seq != seq) {
			ride(c, lock, name, token, cc_sh->disturb_seq,
			    started);
			return;
		}
		if (!step(c, lock, name, token, what))
			return;
		started = true;
		if (what == 'C')
			count(&cc_sh->committed);
		else
			usleep((useconds_t)(random() % 10000));
	}
}

static void __attribute__((noreturn))
worker(void)
{
	struct dlm_client *c;
	int gen = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	srandom((unsigned)getpid());
	c = worker_connect(gen++);
	while (!cc_sh->stop) {
		int lock = (int)(random() % cc_cfg.nlocks), depth = 1, rc;
		/* Odd locks are rlocks, sometimes entered twice. */
		int flags = lock % 2 == 1 ? DLM_RLOCK : 0;
		char name[32];
		uint64_t token, again, seq;

		cc_lock_name(lock, name, sizeof name);
		rc = dlm_acquire(c, name, flags, 2000 + (int)(random() % 2000),
		    &token);
		seq = cc_sh->disturb_seq;
		if (rc != 0) {
			count_err(rc);
			if (rc == DLM_E_CLOSED || rc == DLM_E_NOT_ACTIVE ||
			    rc == DLM_E_SHUTTING_DOWN) {
				dlm_close(c);
				c = worker_connect(gen++);
			} else if (rc != DLM_E_TIMEOUT)
				usleep(20000);
			continue;
		}
		grant_log(lock, token);
		if (flags != 0 && random() % 2 == 0 &&
		    dlm_acquire(c, name, flags, DLM_TRY, &again) == 0) {
			depth++;
			if (again != token)
				cc_violation("worker %d entered rlock %s again "
				    "under token %llu, not %llu", my_slot, name,
				    (unsigned long long)again,
				    (unsigned long long)token);
		}
		work(c, lock, name, token, seq);
		while (depth-- > 0)
			if ((rc = dlm_release(c, name)) != 0)
				count_err(rc);
	}
	dlm_close(c);
	_exit(0);
}

pid_t
cc_worker_spawn(int slot)
{
	pid_t pid = fork();

	if (pid == 0) {
		my_slot = slot;
		worker();
	}
	return pid;
}
