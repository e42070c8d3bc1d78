/*
 * libdlm when memory runs out at the worst moment: in the thread that
 * reads a lost notice, and in the one that sees a connection drop with a
 * grant in flight. Neither may then forget what it must tell or undo:
 * what those moments need is made when the lock is asked for.
 * Allocations fail for real (failmalloc.c); skipped under a sanitizer.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "dlm.h"
#include "failmalloc.h"
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
	failmalloc_disarm();
	dlmd_stop_clean(&d);
}

struct lost_log {
	int		n;
	int		reason;
	uint64_t	token;
};

/* Runs with allocations failing: no allocation here. */
static void
on_lost(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    void *arg)
{
	struct lost_log *l = arg;

	(void)c;
	(void)lock;
	__atomic_store_n(&l->reason, reason, __ATOMIC_RELAXED);
	__atomic_store_n(&l->token, token, __ATOMIC_RELAXED);
	__atomic_add_fetch(&l->n, 1, __ATOMIC_RELEASE);
}

/*
 * The hold is force-released while no thread of the client can allocate:
 * the notice is still read and on_lost still runs, with the note made
 * when the lock was taken.
 */
START_TEST(lost_notice_without_memory)
{
	struct lost_log l = { 0, 0, 0 };
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
	op = tc_connect(&d);
	tc_hello(op, "operator");
	sleep_ms(50);		/* the I/O thread is idle, its buffers made */
	failmalloc_arm();
	ck_assert_int_eq(tc_call(op, "force_release", "lock:s", "job")->err, 0);
	for (int i = 0; i < 300 &&
	    __atomic_load_n(&l.n, __ATOMIC_ACQUIRE) == 0; i++)
		sleep_ms(10);
	failmalloc_disarm();
	ck_assert_int_ge(__atomic_load_n(&l.n, __ATOMIC_ACQUIRE), 1);
	ck_assert_uint_eq(l.token, t);
	ck_assert_int_eq(dlm_holds(c, "job", NULL), 0);
	tc_close(op);
	dlm_close(c);
}
END_TEST

struct waiter {
	struct dlm_client	*c;
	int			 rc;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = dlm_acquire(w->c, "ph", 0, DLM_FOREVER, NULL);
	return NULL;
}

/*
 * The grant of a waiting acquire is lost with the connection, and the
 * thread that sees the drop cannot allocate: the grant is still recorded
 * as uncertain, and given back after the resume, so that the lock does
 * not stay held by a session that does not know it has it.
 */
START_TEST(uncertain_grant_recorded_without_memory)
{
	struct dlm_client *c, *b;
	struct dlm_options o;
	struct relay r;
	struct waiter w;
	pthread_t th;
	char via[64];
	unsigned long failed;

	relay_start(&r, d.port);
	snprintf(via, sizeof via, "tcp:127.0.0.1:%d", r.port);
	dlm_options_init(&o);
	o.client = "unlucky";
	o.linger_ms = 5000;
	c = dlm_connect(via, &o, NULL);
	ck_assert_ptr_nonnull(c);
	dlm_options_init(&o);
	o.client = "b";
	b = dlm_connect(server, &o, NULL);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(dlm_acquire(b, "ph", 0, 0, NULL), 0);
	w.c = c;
	w.rc = -1;
	pthread_create(&th, NULL, waiter_main, &w);
	sleep_ms(200);
	__atomic_store_n(&r.freeze, 1, __ATOMIC_RELEASE);
	sleep_ms(100);
	ck_assert_int_eq(dlm_release(b, "ph"), 0);	/* granted to c... */
	sleep_ms(100);
	failmalloc_arm();
	__atomic_add_fetch(&r.cut, 1, __ATOMIC_RELEASE);	/* ...unheard */
	pthread_join(th, NULL);
	failed = failmalloc_failures();
	failmalloc_disarm();
	__atomic_store_n(&r.freeze, 0, __ATOMIC_RELEASE);
	ck_assert_int_eq(w.rc, DLM_E_DISCONNECTED);
	ck_assert_uint_gt(failed, 0);
	/* Resumed, the phantom grant is given back: b can have the lock. */
	ck_assert_int_eq(dlm_acquire(b, "ph", 0, 5000, NULL), 0);
	dlm_close(c);
	relay_stop(&r);
	dlm_close(b);
}
END_TEST

/* Watch calls, counted, and the holders the last one saw. */
struct seen {
	int		n;
	size_t		nholders;
};

static void
on_changed(struct dlm_client *c, const char *lock, const struct dlm_holder *h,
    size_t nholders, size_t waiters, void *arg)
{
	struct seen *s = arg;

	(void)c;
	(void)lock;
	(void)h;
	(void)waiters;
	__atomic_store_n(&s->nholders, nholders, __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->n, 1, __ATOMIC_RELEASE);
}

static void
wait_seen(struct seen *s, int want)
{
	for (int i = 0; i < 500 &&
	    __atomic_load_n(&s->n, __ATOMIC_ACQUIRE) < want; i++)
		sleep_ms(10);
}

/*
 * A change told while memory runs out may be missed, never anything
 * worse; the next one carries the whole state.
 */
START_TEST(changed_notice_without_memory)
{
	struct seen seen = { 0, 99 };
	struct dlm_client *c;
	struct tc *op;
	unsigned long failed;

	c = dlm_connect(server, NULL, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(dlm_watch(c, "w", on_changed, &seen), 0);
	wait_seen(&seen, 1);
	ck_assert_int_eq(seen.n, 1);
	op = tc_connect(&d);
	tc_hello(op, "operator");
	sleep_ms(50);
	failmalloc_arm();
	ck_assert_int_eq(tc_call(op, "acquire", "lock:s value:s", "w",
	    "v")->err, 0);
	sleep_ms(300);
	failed = failmalloc_failures();
	failmalloc_disarm();
	ck_assert_uint_gt(failed, 0);
	ck_assert_int_eq(tc_call(op, "release", "lock:s", "w")->err, 0);
	/* Told with the acquire (if memory allowed), then the release. */
	for (int i = 0; i < 500 &&
	    (__atomic_load_n(&seen.n, __ATOMIC_ACQUIRE) < 2 ||
	    __atomic_load_n(&seen.nholders, __ATOMIC_ACQUIRE) != 0); i++)
		sleep_ms(10);
	ck_assert_uint_eq(seen.nholders, 0);
	ck_assert_int_ge(seen.n, 2);
	tc_close(op);
	dlm_close(c);
}
END_TEST

static Suite *
nomem_suite(void)
{
	Suite *s = suite_create("libdlm_nomem");
	TCase *tc = tcase_create("faults");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, lost_notice_without_memory);
	tcase_add_test(tc, uncertain_grant_recorded_without_memory);
	tcase_add_test(tc, changed_notice_without_memory);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (!failmalloc_available()) {
		printf("SKIP: allocation failures cannot be injected under "
		    "a sanitizer\n");
		return 77;
	}
	return run_suite(nomem_suite());
}
