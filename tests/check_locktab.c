/* Unit tests of the lock table: no daemon, no sockets, no clock. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "locktab.h"
#include "proto.h"
#include "waitgraph.h"

#define MAXEV 256

/* What the table told us, in order. */
static struct event_log {
	/*
	 * 'g'ranted, 'c'ancelled, 'r'evoked, co'n'tended (reason: waiters),
	 * 'd'elayed (token: until).
	 */
	int		 kind;
	void		*udata;
	struct lt_owner	*owner;
	uint64_t	 token;
	int		 reason;
} ev[MAXEV];
static int nev;

static void
on_granted(void *arg, struct lt_wait *w, struct lt_hold *h)
{
	const struct lt_wait *o;

	ck_assert_int_lt(nev, MAXEV);
	ck_assert_ptr_eq(w->owner, h->owner);
	/*
	 * Strict FIFO: nobody who queued earlier still waits (unless its
	 * lease ran out), which the table's own state cannot show. A
	 * conversion is the exception: it goes ahead of every waiter.
	 */
	TAILQ_FOREACH(o, &h->lock->waiters, lock_link)
		ck_assert_msg(w->convert || o->since >= w->since ||
		    o->owner->deadline != 0,
		    "a waiter was passed by one that queued after it");
	ev[nev++] = (struct event_log){ 'g', w->udata, h->owner, h->token, 0 };
}

static void
on_cancelled(void *arg, struct lt_wait *w)
{
	ck_assert_int_lt(nev, MAXEV);
	ev[nev++] = (struct event_log){ 'c', w->udata, w->owner, 0, 0 };
}

static void
on_revoked(void *arg, struct lt_hold *h, int reason)
{
	ck_assert_int_lt(nev, MAXEV);
	ev[nev++] = (struct event_log){ 'r', NULL, h->owner, h->token,
	    reason };
}

/* Every hold's end, however it came, with how long it lasted. */
static int nended;
static uint64_t ended_ms;

static void
on_ended(void *arg, const struct lt_hold *h, uint64_t at)
{
	nended++;
	ended_ms += at - h->since;
}

/*
 * Every report of changed holders, with what the holders were then: a
 * signature of their tokens and values, in order.
 */
#define MAXCH 64
static struct change_log {
	char		 name[16];
	uint32_t	 nholders;
	uint64_t	 sig;
} ch[MAXCH];
static int nch;

/* The holders of l (NULL: none) as one number: tokens and values. */
static uint64_t
holders_sig(const struct lt_lock *l)
{
	const struct lt_hold *h;
	uint64_t sig = 1469598103934665603ULL;

	if (l == NULL)
		return sig;
	TAILQ_FOREACH(h, &l->holders, lock_link) {
		sig = (sig ^ h->token) * 1099511628211ULL;
		for (uint32_t i = 0; i < h->value_len; i++)
			sig = (sig ^ ((const uint8_t *)h->value)[i]) *
			    1099511628211ULL;
		sig = (sig ^ h->value_len) * 1099511628211ULL;
	}
	return sig;
}

static void
on_changed(void *arg, const struct lt_lock *l)
{
	if (nch == MAXCH)
		return;		/* the random test counts past the log */
	snprintf(ch[nch].name, sizeof ch[nch].name, "%.*s", (int)l->namelen,
	    l->name);
	ch[nch].nholders = l->nholders;
	ch[nch].sig = holders_sig(l);
	nch++;
}


static void
on_contended(void *arg, const struct lt_hold *h, uint32_t waiters)
{
	ck_assert_int_lt(nev, MAXEV);
	ck_assert(h->notify_contended);
	ck_assert_uint_gt(waiters, 0);
	/* Others waiting: not the holder's own conversion. */
	ck_assert_uint_eq(waiters, h->lock->nwaiters -
	    (locktab_converting(h) != NULL));
	ev[nev++] = (struct event_log){ 'n', NULL, h->owner, h->token,
	    (int)waiters };
}

static void
on_delayed(void *arg, const struct lt_lock *l, uint64_t until)
{
	ck_assert_int_lt(nev, MAXEV);
	ck_assert_uint_eq(l->delayed_until, until);
	ev[nev++] = (struct event_log){ 'd', NULL, NULL, until, 0 };
}

static const struct lt_ops ops = { on_granted, on_cancelled, on_revoked,
    on_ended, on_changed, on_contended, on_delayed };

static struct locktab *lt;
static struct lt_owner A, B, C, D;
static uint64_t now;

static void
setup(void)
{
	lt = locktab_new(1000, &ops, NULL);
	locktab_set_verify(lt, true);
	locktab_owner_init(&A);
	locktab_owner_init(&B);
	locktab_owner_init(&C);
	locktab_owner_init(&D);
	nev = 0;
	nch = 0;
	now = 1;
}

static void
check_invariants(void)
{
	const char *why = locktab_check(lt, now);

	ck_assert_msg(why == NULL, "invariant broken: %s", why);
}

static void
teardown(void)
{
	locktab_end_owner(lt, &A, 0, now);
	locktab_end_owner(lt, &B, 0, now);
	locktab_end_owner(lt, &C, 0, now);
	locktab_end_owner(lt, &D, 0, now);
	check_invariants();
	/* Locks a delay keeps go once it is over. */
	ck_assert_uint_eq(locktab_delays_due(lt, UINT64_MAX), 0);
	check_invariants();
	ck_assert_ptr_null(locktab_first_from(lt, "", 0));
	locktab_free(lt);
}

/* locktab_acquire() with an exclusive-or-shared lock of a kind. */
static int
acquire_raw(struct locktab *t, struct lt_owner *o, const char *name,
    size_t namelen, enum lt_kind kind, enum lt_mode mode, bool wait,
    void *udata, uint64_t at, struct lt_hold **h, struct lt_wait **w)
{
	struct lt_want want = { .kind = kind, .mode = mode, .may_wait = wait,
	    .udata = udata };

	return locktab_acquire(t, o, name, namelen, &want, at, h, w);
}

/* Acquire and return the result; *token gets the grant's token. */
static int
acq(struct lt_owner *o, const char *name, enum lt_kind kind, enum lt_mode mode,
    bool wait, void *udata, uint64_t *token)
{
	struct lt_hold *h;
	struct lt_wait *w;
	int rc = acquire_raw(lt, o, name, strlen(name), kind, mode, wait,
	    udata, now, &h, &w);

	if (rc == LT_GRANTED) {
		ck_assert_ptr_nonnull(h);
		if (token != NULL)
			*token = h->token;
	} else if (rc == LT_QUEUED)
		ck_assert_ptr_nonnull(w);
	check_invariants();
	return rc;
}

static int
rel(struct lt_owner *o, const char *name, uint32_t *remaining)
{
	uint32_t left = 99;
	int rc = locktab_release(lt, o, name, strlen(name), now, &left);

	if (remaining != NULL)
		*remaining = left;
	check_invariants();
	return rc;
}

static struct lt_wait *
wait_of(struct lt_owner *o)
{
	return LIST_FIRST(&o->waits);
}

START_TEST(every_hold_end_is_reported)
{
	struct lt_hold *h;
	struct lt_wait *w;
	uint32_t left;

	nended = 0;
	ended_ms = 0;
	now = 100;
	ck_assert_int_eq(acquire_raw(lt, &A, "a", 1, LT_RLOCK,
	    LT_EXCLUSIVE, false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_int_eq(acquire_raw(lt, &A, "a", 1, LT_RLOCK,
	    LT_EXCLUSIVE, false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_int_eq(acquire_raw(lt, &B, "b", 1, LT_MUTEX,
	    LT_EXCLUSIVE, false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_int_eq(acquire_raw(lt, &C, "c", 1, LT_MUTEX,
	    LT_EXCLUSIVE, false, NULL, now, &h, &w), LT_GRANTED);
	now = 150;
	ck_assert_int_eq(locktab_release(lt, &A, "a", 1, now, &left), 0);
	ck_assert_int_eq(nended, 0);	/* one level of two */
	ck_assert_int_eq(locktab_release(lt, &A, "a", 1, now, &left), 0);
	ck_assert_int_eq(nended, 1);
	ck_assert_uint_eq(ended_ms, 50);
	now = 200;
	ck_assert_uint_eq(locktab_force_release(lt, "b", 1, NULL, 1, now), 1);
	ck_assert_int_eq(nended, 2);
	now = 300;
	ck_assert_uint_eq(locktab_end_owner(lt, &C, 0, now), 1);
	ck_assert_int_eq(nended, 3);
	ck_assert_uint_eq(ended_ms, 50 + 100 + 200);
}
END_TEST

START_TEST(mutex_excludes)
{
	uint64_t t1, t2;

	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL, &t1),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(rel(&A, "x", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_ptr_eq(ev[0].owner, &B);
	ck_assert_ptr_eq(ev[0].udata, &B);
	t2 = ev[0].token;
	ck_assert_uint_gt(t2, t1);
	ck_assert_uint_eq(B.nholds, 1);
	ck_assert_uint_eq(B.nwaits, 0);
}
END_TEST

START_TEST(mutex_not_reentrant)
{
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, true, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_uint_eq(A.nholds, 1);
	ck_assert_uint_eq(A.nwaits, 0);
}
END_TEST

START_TEST(rlock_counts)
{
	uint64_t t1, t2, t3;
	uint32_t left;
	struct lt_lock *l;

	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL, &t1),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL, &t2),
	    LT_GRANTED);
	/* Exclusive covers shared: a shared re-entry is a re-entry. */
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_SHARED, false, NULL, &t3),
	    LT_GRANTED);
	ck_assert_uint_eq(t1, t2);
	ck_assert_uint_eq(t1, t3);
	l = locktab_find(lt, "r", 1);
	ck_assert_uint_eq(locktab_hold_of(l, &A)->count, 3);
	ck_assert_int_eq(acq(&B, "r", LT_RLOCK, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "r", &left), 0);
	ck_assert_uint_eq(left, 2);
	ck_assert_int_eq(rel(&A, "r", &left), 0);
	ck_assert_uint_eq(left, 1);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(rel(&A, "r", &left), 0);
	ck_assert_uint_eq(left, 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &B);
	ck_assert_int_eq(rel(&A, "r", NULL), DLM_E_NOT_HELD);
}
END_TEST

START_TEST(rlock_no_upgrade)
{
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_EXCLUSIVE, true, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_SHARED, true, NULL, NULL),
	    LT_GRANTED);
}
END_TEST

START_TEST(shared_and_exclusive)
{
	ck_assert_int_eq(acq(&A, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&C, "s", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&C, "s", LT_MUTEX, LT_EXCLUSIVE, true, &C, NULL),
	    LT_QUEUED);
	/* A shared request behind an exclusive waiter waits: no starvation. */
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_SHARED, true, &D, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "s", NULL), 0);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(rel(&B, "s", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &C);
	ck_assert_int_eq(rel(&C, "s", NULL), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[1].owner, &D);
}
END_TEST

START_TEST(shared_waiters_granted_together)
{
	ck_assert_int_eq(acq(&A, "s", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "s", LT_MUTEX, LT_SHARED, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "s", LT_MUTEX, LT_SHARED, true, &C, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_EXCLUSIVE, true, &D, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "s", NULL), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[0].owner, &B);
	ck_assert_ptr_eq(ev[1].owner, &C);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->nholders, 2);
	ck_assert_uint_eq(D.nwaits, 1);
}
END_TEST

START_TEST(fifo_order)
{
	struct lt_owner o[8];

	ck_assert_int_eq(acq(&A, "f", LT_MUTEX, LT_EXCLUSIVE, false, NULL, NULL),
	    LT_GRANTED);
	for (int i = 0; i < 8; i++) {
		locktab_owner_init(&o[i]);
		ck_assert_int_eq(acq(&o[i], "f", LT_MUTEX, LT_EXCLUSIVE, true,
		    &o[i], NULL), LT_QUEUED);
	}
	ck_assert_int_eq(rel(&A, "f", NULL), 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(nev, i + 1);
		ck_assert_ptr_eq(ev[i].owner, &o[i]);
		if (i > 0)
			ck_assert_uint_gt(ev[i].token, ev[i - 1].token);
		ck_assert_int_eq(rel(&o[i], "f", NULL), 0);
	}
	ck_assert_ptr_null(locktab_find(lt, "f", 1));
}
END_TEST

START_TEST(cancel_lets_shared_through)
{
	ck_assert_int_eq(acq(&A, "c", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "c", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "c", LT_MUTEX, LT_SHARED, true, &C, NULL),
	    LT_QUEUED);
	/* B times out: C, shared like the holder, may now go. */
	locktab_cancel(lt, wait_of(&B), now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_ptr_eq(ev[0].owner, &C);
	ck_assert_uint_eq(B.nwaits, 0);
}
END_TEST

START_TEST(cancel_last_waiter_frees_nothing_held)
{
	ck_assert_int_eq(acq(&A, "c", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "c", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	locktab_cancel(lt, wait_of(&B), now);
	check_invariants();
	ck_assert_int_eq(nev, 0);
	ck_assert_ptr_nonnull(locktab_find(lt, "c", 1));
	ck_assert_int_eq(rel(&A, "c", NULL), 0);
	ck_assert_ptr_null(locktab_find(lt, "c", 1));
}
END_TEST

START_TEST(end_owner_in_one_step)
{
	uint32_t n;

	ck_assert_int_eq(acq(&A, "a", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "b", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "b", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "c", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	/* A waits for c behind B; C waits for a behind A; A waits for a2. */
	ck_assert_int_eq(acq(&A, "c", LT_MUTEX, LT_EXCLUSIVE, true, &A, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "a", LT_MUTEX, LT_EXCLUSIVE, true, &C, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&D, "b", LT_RLOCK, LT_EXCLUSIVE, true, &D, NULL),
	    LT_QUEUED);
	n = locktab_end_owner(lt, &A, DLM_LOST_RESET, now);
	check_invariants();
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(A.nholds, 0);
	ck_assert_uint_eq(A.nwaits, 0);
	/* Its wait cancelled, its two holds revoked, C and D granted. */
	ck_assert_int_eq(nev, 5);
	ck_assert_int_eq(ev[0].kind, 'c');
	ck_assert_ptr_eq(ev[0].udata, &A);
	ck_assert_int_eq(ev[1].kind, 'r');
	ck_assert_int_eq(ev[1].reason, DLM_LOST_RESET);
	ck_assert_int_eq(ev[2].kind, 'r');
	ck_assert_int_eq(ev[3].kind, 'g');
	ck_assert_int_eq(ev[4].kind, 'g');
	ck_assert_uint_eq(C.nholds, 1);
	ck_assert_uint_eq(D.nholds, 1);
}
END_TEST

START_TEST(end_owner_never_grants_itself)
{
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&B, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "y", LT_MUTEX, LT_EXCLUSIVE, true, &A, NULL),
	    LT_QUEUED);
	/* Ending A releases x; B is waiting for it and must get it. */
	locktab_end_owner(lt, &A, 0, now);
	check_invariants();
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[0].kind, 'c');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_int_eq(ev[1].kind, 'g');
	ck_assert_ptr_eq(ev[1].owner, &B);
	/* No revocations were asked for. */
	for (int i = 0; i < nev; i++)
		ck_assert_int_ne(ev[i].kind, 'r');
}
END_TEST

START_TEST(tokens_increase)
{
	uint64_t prev = 0, t;

	ck_assert_uint_eq(locktab_next_token(lt), 1000);
	for (int i = 0; i < 100; i++) {
		char name[16];

		snprintf(name, sizeof name, "t%d", i % 7);
		ck_assert_int_eq(acq(&A, name, LT_MUTEX, LT_EXCLUSIVE, false,
		    NULL, &t), LT_GRANTED);
		ck_assert_uint_gt(t, prev);
		ck_assert_uint_ge(t, 1000);
		prev = t;
		ck_assert_int_eq(rel(&A, name, NULL), 0);
	}
}
END_TEST

START_TEST(kind_mismatch)
{
	ck_assert_int_eq(acq(&A, "k", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "k", LT_RLOCK, LT_EXCLUSIVE, true, NULL, NULL),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(acq(&A, "k", LT_RLOCK, LT_EXCLUSIVE, true, NULL, NULL),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(rel(&A, "k", NULL), 0);
	/* Gone, so the other kind may take the name now. */
	ck_assert_int_eq(acq(&B, "k", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
}
END_TEST

START_TEST(release_by_non_holder)
{
	ck_assert_int_eq(rel(&A, "nope", NULL), DLM_E_NOT_HELD);
	ck_assert_int_eq(acq(&A, "h", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "h", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	/* A waiter is no holder. */
	ck_assert_int_eq(rel(&B, "h", NULL), DLM_E_NOT_HELD);
	ck_assert_int_eq(rel(&C, "h", NULL), DLM_E_NOT_HELD);
	ck_assert_uint_eq(A.nholds, 1);
}
END_TEST

START_TEST(waiting_twice_refused)
{
	ck_assert_int_eq(acq(&A, "w", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "w", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&B, "w", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_uint_eq(B.nwaits, 1);
}
END_TEST

START_TEST(limits_holds_and_waits)
{
	struct lt_limits lim = { 3, 2 };

	locktab_set_limits(lt, &lim);
	ck_assert_int_eq(acq(&A, "1", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "2", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "3", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	/* At the limit: the fourth is refused and leaves nothing behind. */
	ck_assert_int_eq(acq(&A, "4", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_LIMIT);
	ck_assert_ptr_null(locktab_find(lt, "4", 1));
	/* A new rlock counts like any other hold. */
	ck_assert_int_eq(acq(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_LIMIT);
	ck_assert_int_eq(rel(&A, "3", NULL), 0);

	/* Waits: at most 2, and holds+waits at most 3. */
	ck_assert_int_eq(acq(&B, "1", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&B, "2", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "9", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "9", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    DLM_E_LIMIT);
	ck_assert_uint_eq(B.nwaits, 2);
	ck_assert_int_eq(acq(&A, "5", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "9", LT_MUTEX, LT_EXCLUSIVE, true, &A, NULL),
	    DLM_E_LIMIT);
}
END_TEST

START_TEST(expired_waiter_passed_over)
{
	ck_assert_int_eq(acq(&A, "e", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "e", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "e", LT_MUTEX, LT_EXCLUSIVE, true, &C, NULL),
	    LT_QUEUED);
	/* B's lease runs out before its owner is expired by the caller. */
	B.deadline = 5;
	C.deadline = 100;
	now = 10;
	ck_assert_int_eq(rel(&A, "e", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &C);
	ck_assert_uint_eq(B.nholds, 0);
}
END_TEST

/* Ask for permits of semaphore name of capacity cap; *h the hold if any. */
static int
sem(struct lt_owner *o, const char *name, uint32_t cap, uint32_t permits,
    bool wait, void *udata, struct lt_hold **hp)
{
	struct lt_want want = { .kind = LT_SEMAPHORE, .mode = LT_EXCLUSIVE,
	    .may_wait = wait, .udata = udata, .permits = permits,
	    .capacity = cap };
	struct lt_hold *h;
	struct lt_wait *w;
	int rc = locktab_acquire(lt, o, name, strlen(name), &want, now, &h, &w);

	if (rc == LT_GRANTED) {
		ck_assert_ptr_nonnull(h);
		ck_assert_uint_eq(h->permits, permits != 0 ? permits : 1);
	} else if (rc == LT_QUEUED) {
		ck_assert_ptr_nonnull(w);
		ck_assert_uint_eq(w->permits, permits != 0 ? permits : 1);
	}
	if (hp != NULL)
		*hp = rc == LT_GRANTED ? h : NULL;
	check_invariants();
	return rc;
}

/* Give back permits (0: all); returns the result, *left what remains. */
static int
sem_rel(struct lt_owner *o, const char *name, uint32_t permits,
    uint32_t *left)
{
	uint32_t l = 99;
	int rc = locktab_release_permits(lt, o, name, strlen(name), permits,
	    now, &l);

	if (left != NULL)
		*left = l;
	check_invariants();
	return rc;
}

static uint32_t
in_use(const char *name)
{
	struct lt_lock *l = locktab_find(lt, name, strlen(name));

	return l != NULL ? l->in_use : 0;
}

/* Up to the capacity at once; each grant its own, greater token. */
START_TEST(semaphore_counts_permits)
{
	struct lt_hold *ha, *hb, *hc;

	ck_assert_int_eq(sem(&A, "s", 3, 1, false, NULL, &ha), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 3, 0, false, NULL, &hb), LT_GRANTED);
	ck_assert_int_eq(sem(&C, "s", 3, 1, false, NULL, &hc), LT_GRANTED);
	ck_assert_uint_gt(hb->token, ha->token);
	ck_assert_uint_gt(hc->token, hb->token);
	ck_assert_uint_eq(in_use("s"), 3);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->nholders, 3);
	ck_assert_int_eq(sem(&D, "s", 3, 1, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(sem(&D, "s", 3, 1, true, &D, NULL), LT_QUEUED);
	ck_assert_int_eq(rel(&B, "s", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_ptr_eq(ev[0].owner, &D);
	ck_assert_uint_gt(ev[0].token, hc->token);
	ck_assert_uint_eq(in_use("s"), 3);
}
END_TEST

/* A large request at the head is never passed by smaller ones behind. */
START_TEST(semaphore_fifo_head_not_passed)
{
	int tb = 2, tc = 3, td = 4;

	ck_assert_int_eq(sem(&A, "s", 4, 3, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 4, 3, true, &tb, NULL), LT_QUEUED);
	/* One permit is free, yet C waits behind B, and a try fails. */
	ck_assert_int_eq(sem(&C, "s", 4, 1, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(sem(&C, "s", 4, 1, true, &tc, NULL), LT_QUEUED);
	ck_assert_int_eq(sem(&D, "s", 4, 1, true, &td, NULL), LT_QUEUED);
	ck_assert_int_eq(nev, 0);
	ck_assert_uint_eq(in_use("s"), 3);
	/* Two permits free now: still not B's 3, and so nobody's. */
	ck_assert_int_eq(sem_rel(&A, "s", 1, NULL), 0);
	ck_assert_int_eq(nev, 0);
	ck_assert_uint_eq(in_use("s"), 2);
	/* A goes: B's 3 fit, then C's 1; D's does not. */
	ck_assert_int_eq(rel(&A, "s", NULL), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[0].udata, &tb);
	ck_assert_ptr_eq(ev[1].udata, &tc);
	ck_assert_uint_eq(in_use("s"), 4);
	ck_assert_uint_eq(D.nwaits, 1);
	/* B's cancel-free end lets D in. */
	ck_assert_int_eq(sem_rel(&B, "s", 0, NULL), 0);
	ck_assert_int_eq(nev, 3);
	ck_assert_ptr_eq(ev[2].udata, &td);
	ck_assert_uint_eq(in_use("s"), 2);
}
END_TEST

/* Withdrawing the large request at the head lets the small ones go. */
START_TEST(semaphore_cancel_head_lets_others_in)
{
	int tc = 3;

	ck_assert_int_eq(sem(&A, "s", 2, 1, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 2, 2, true, NULL, NULL), LT_QUEUED);
	ck_assert_int_eq(sem(&C, "s", 2, 1, true, &tc, NULL), LT_QUEUED);
	ck_assert_int_eq(nev, 0);
	locktab_cancel(lt, wait_of(&B), now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].udata, &tc);
	ck_assert_uint_eq(in_use("s"), 2);
}
END_TEST

/* The capacity is the lock's while it exists; the kind too. */
START_TEST(semaphore_capacity_mismatch)
{
	ck_assert_int_eq(sem(&A, "s", 3, 1, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 4, 1, true, NULL, NULL),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(sem(&B, "s", 2, 1, false, NULL, NULL),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(acq(&B, "s", LT_MUTEX, LT_EXCLUSIVE, true, NULL,
	    NULL), DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(acq(&B, "s", LT_RLOCK, LT_SHARED, true, NULL,
	    NULL), DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(acq(&A, "m", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "m", 1, 1, true, NULL, NULL),
	    DLM_E_KIND_MISMATCH);
	/* Once it is gone, the name may come back with another capacity. */
	ck_assert_int_eq(rel(&A, "s", NULL), 0);
	ck_assert_ptr_null(locktab_find(lt, "s", 1));
	ck_assert_int_eq(sem(&B, "s", 7, 7, false, NULL, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->capacity, 7);
}
END_TEST

/* Out-of-range capacities and permits, shared mode: refused. */
START_TEST(semaphore_bad_requests)
{
	struct lt_want want = { .kind = LT_SEMAPHORE, .mode = LT_SHARED,
	    .permits = 1, .capacity = 2 };
	struct lt_hold *h;
	struct lt_wait *w;

	ck_assert_int_eq(sem(&A, "s", 0, 0, true, NULL, NULL),
	    DLM_E_BAD_REQUEST);
	ck_assert_int_eq(sem(&A, "s", LT_CAPACITY_MAX + 1u, 1, true, NULL,
	    NULL), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(sem(&A, "s", 3, 4, true, NULL, NULL),
	    DLM_E_BAD_REQUEST);
	ck_assert_int_eq(locktab_acquire(lt, &A, "s", 1, &want, now, &h, &w),
	    DLM_E_BAD_REQUEST);
	ck_assert_ptr_null(locktab_find(lt, "s", 1));
	ck_assert_int_eq(sem(&A, "s", LT_CAPACITY_MAX, LT_CAPACITY_MAX, false,
	    NULL, NULL), LT_GRANTED);
	ck_assert_uint_eq(in_use("s"), LT_CAPACITY_MAX);
	ck_assert_int_eq(sem(&B, "s", LT_CAPACITY_MAX, 1, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
}
END_TEST

/* One grant per session: asking again, or twice, is refused. */
START_TEST(semaphore_not_reentrant)
{
	ck_assert_int_eq(sem(&A, "s", 5, 1, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&A, "s", 5, 1, false, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(sem(&A, "s", 5, 2, true, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(sem(&B, "s", 5, 5, true, NULL, NULL), LT_QUEUED);
	ck_assert_int_eq(sem(&B, "s", 5, 1, true, NULL, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_uint_eq(A.nholds, 1);
	ck_assert_uint_eq(in_use("s"), 1);
}
END_TEST

/* Giving back some permits keeps the hold and its token. */
START_TEST(semaphore_partial_release)
{
	struct lt_hold *h;
	uint64_t token;
	uint32_t left;
	int tb = 2;

	ck_assert_int_eq(sem(&A, "s", 4, 4, false, NULL, &h), LT_GRANTED);
	token = h->token;
	ck_assert_int_eq(sem(&B, "s", 4, 2, true, &tb, NULL), LT_QUEUED);
	ck_assert_int_eq(sem_rel(&A, "s", 1, &left), 0);
	ck_assert_uint_eq(left, 3);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(sem_rel(&A, "s", 1, &left), 0);
	ck_assert_uint_eq(left, 2);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].udata, &tb);
	h = locktab_hold_of(locktab_find(lt, "s", 1), &A);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->token, token);
	ck_assert_uint_eq(h->permits, 2);
	ck_assert_uint_eq(in_use("s"), 4);
	/* More than held, or permits of another kind: refused, no change. */
	ck_assert_int_eq(sem_rel(&A, "s", 3, NULL), DLM_E_BAD_REQUEST);
	ck_assert_uint_eq(h->permits, 2);
	ck_assert_int_eq(sem_rel(&C, "s", 1, NULL), DLM_E_NOT_HELD);
	ck_assert_int_eq(acq(&C, "m", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(sem_rel(&C, "m", 1, NULL), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(sem_rel(&C, "m", 0, NULL), DLM_E_BAD_REQUEST);
	/* Exactly what is held ends the hold, as a plain release does. */
	ck_assert_int_eq(sem_rel(&A, "s", 2, &left), 0);
	ck_assert_uint_eq(left, 0);
	ck_assert_uint_eq(A.nholds, 0);
	ck_assert_int_eq(rel(&B, "s", &left), 0);
	ck_assert_uint_eq(left, 0);
	ck_assert_ptr_null(locktab_find(lt, "s", 1));
}
END_TEST

/* An owner's end (expiry, reset, a drop) gives its permits back at once. */
START_TEST(semaphore_owner_end_returns_permits)
{
	int tc = 3, td = 4;

	ck_assert_int_eq(sem(&A, "s", 3, 2, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&A, "t", 1, 1, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 3, 1, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&C, "s", 3, 2, true, &tc, NULL), LT_QUEUED);
	ck_assert_int_eq(sem(&D, "t", 1, 1, true, &td, NULL), LT_QUEUED);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now), 2);
	check_invariants();
	ck_assert_int_eq(nev, 4);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_int_eq(ev[1].kind, 'r');
	ck_assert_int_eq(ev[2].kind, 'g');
	ck_assert_int_eq(ev[3].kind, 'g');
	ck_assert_uint_eq(C.nholds, 1);
	ck_assert_uint_eq(D.nholds, 1);
	ck_assert_uint_eq(in_use("s"), 3);
	ck_assert_uint_eq(in_use("t"), 1);
	/* A forced release of one holder, then of all. */
	ck_assert_uint_eq(locktab_force_release(lt, "s", 1, &B,
	    DLM_LOST_FORCED, now), 1);
	ck_assert_uint_eq(in_use("s"), 2);
	ck_assert_uint_eq(locktab_force_release(lt, "s", 1, NULL,
	    DLM_LOST_FORCED, now), 1);
	check_invariants();
	ck_assert_ptr_null(locktab_find(lt, "s", 1));
	/* A waiter whose lease lapsed is passed over, never granted. */
	ck_assert_int_eq(sem(&A, "u", 2, 2, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "u", 2, 1, true, NULL, NULL), LT_QUEUED);
	ck_assert_int_eq(sem(&C, "u", 2, 1, true, NULL, NULL), LT_QUEUED);
	B.deadline = now;
	ck_assert_uint_eq(locktab_release_owner(lt, &A, now), 1);
	check_invariants();
	ck_assert_uint_eq(B.nholds, 0);
	ck_assert_uint_eq(in_use("u"), 1);
	B.deadline = 0;
}
END_TEST

START_TEST(force_release_all_or_one)
{
	uint32_t n;

	ck_assert_int_eq(acq(&A, "f", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "f", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&C, "f", LT_MUTEX, LT_EXCLUSIVE, true, &C, NULL),
	    LT_QUEUED);
	n = locktab_force_release(lt, "f", 1, &A, DLM_LOST_FORCED, now);
	check_invariants();
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_int_eq(ev[0].reason, DLM_LOST_FORCED);
	n = locktab_force_release(lt, "f", 1, NULL, DLM_LOST_FORCED, now);
	check_invariants();
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(nev, 3);
	ck_assert_ptr_eq(ev[1].owner, &B);
	ck_assert_int_eq(ev[2].kind, 'g');
	ck_assert_ptr_eq(ev[2].owner, &C);
	ck_assert_uint_eq(locktab_force_release(lt, "none", 4, NULL,
	    DLM_LOST_FORCED, now), 0);
}
END_TEST

START_TEST(release_owner_keeps_waits)
{
	ck_assert_int_eq(acq(&A, "a", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "b", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&A, "b", LT_MUTEX, LT_EXCLUSIVE, true, &A, NULL),
	    LT_QUEUED);
	ck_assert_uint_eq(locktab_release_owner(lt, &A, now), 1);
	check_invariants();
	ck_assert_uint_eq(A.nholds, 0);
	ck_assert_uint_eq(A.nwaits, 1);
}
END_TEST

START_TEST(ordered_listing)
{
	const char *names[] = { "b/2", "a", "b/1", "b", "c", "b/10", "ab" };
	const char *want[] = { "a", "ab", "b", "b/1", "b/10", "b/2", "c" };
	struct lt_lock *l;
	int i = 0;

	for (size_t k = 0; k < 7; k++)
		ck_assert_int_eq(acq(&A, names[k], LT_MUTEX, LT_EXCLUSIVE,
		    false, NULL, NULL), LT_GRANTED);
	for (l = locktab_first_from(lt, "", 0); l != NULL;
	    l = locktab_next(lt, l), i++)
		ck_assert(l->namelen == strlen(want[i]) &&
		    memcmp(l->name, want[i], l->namelen) == 0);
	ck_assert_int_eq(i, 7);
	l = locktab_first_from(lt, "b/", 2);
	ck_assert(l->namelen == 3 && memcmp(l->name, "b/1", 3) == 0);
	l = locktab_first_from(lt, "bz", 2);
	ck_assert(l->namelen == 1 && l->name[0] == 'c');
	ck_assert_ptr_null(locktab_first_from(lt, "d", 1));
}
END_TEST

START_TEST(binary_names)
{
	const char n1[] = { 'a', 0, 'b' }, n2[] = { 'a', 0, 'c' };
	struct lt_hold *h;
	struct lt_wait *w;
	char longname[1000];

	ck_assert_int_eq(acquire_raw(lt, &A, n1, 3, LT_MUTEX, LT_EXCLUSIVE,
	    false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_int_eq(acquire_raw(lt, &B, n2, 3, LT_MUTEX, LT_EXCLUSIVE,
	    false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_int_eq(acquire_raw(lt, &B, n1, 3, LT_MUTEX, LT_EXCLUSIVE,
	    false, NULL, now, &h, &w), DLM_E_WOULD_BLOCK);
	/* Names longer than the stack key take the heap path. */
	memset(longname, 'L', sizeof longname);
	ck_assert_int_eq(acquire_raw(lt, &A, longname, sizeof longname,
	    LT_MUTEX, LT_EXCLUSIVE, false, NULL, now, &h, &w), LT_GRANTED);
	ck_assert_ptr_nonnull(locktab_find(lt, longname, sizeof longname));
	ck_assert_int_eq(acquire_raw(lt, &A, "", 0, LT_MUTEX, LT_EXCLUSIVE,
	    false, NULL, now, &h, &w), DLM_E_BAD_REQUEST);
	check_invariants();
}
END_TEST

/*
 * Random operations by many owners on few locks, with the invariants checked
 * after every step, and exclusivity checked from the outside.
 */
START_TEST(random_operations_keep_invariants)
{
	enum { OWNERS = 12, LOCKS = 6, STEPS = 30000, CAP = 4 };
	struct lt_owner o[OWNERS];
	static const char *names[LOCKS] = { "p", "q", "r", "s", "t", "u" };
	unsigned seed = 12345;
	int ndelayed = 0, ncontended = 0;

	for (int i = 0; i < OWNERS; i++)
		locktab_owner_init(&o[i]);
	for (int step = 0; step < STEPS; step++) {
		int who = rand_r(&seed) % OWNERS, op = rand_r(&seed) % 10;
		const char *name = names[rand_r(&seed) % LOCKS];
		enum lt_kind kind = name[0] == 'r' ? LT_RLOCK :
		    name[0] == 'u' ? LT_SEMAPHORE : LT_MUTEX;
		enum lt_mode mode = rand_r(&seed) % 3 == 0 ? LT_SHARED :
		    LT_EXCLUSIVE;
		/* Now and then a bad or mismatched semaphore request. */
		uint32_t permits = (uint32_t)(rand_r(&seed) % (CAP + 2));
		uint32_t cap = rand_r(&seed) % 16 == 0 ? CAP + 1 : CAP;
		struct lt_want want = { .kind = kind, .may_wait = op < 3,
		    .udata = &o[who], .permits = permits, .capacity = cap };
		struct lt_hold *h;
		struct lt_wait *w;
		uint32_t left;

		if (kind != LT_SEMAPHORE || rand_r(&seed) % 16 == 0)
			want.mode = mode;
		if (kind != LT_SEMAPHORE && rand_r(&seed) % 4 != 0)
			want.permits = want.capacity = 0;
		want.lock_delay_ms = rand_r(&seed) % 4 == 0 ?
		    (uint32_t)(rand_r(&seed) % 30) : 0;
		want.notify_contended = rand_r(&seed) % 3 == 0;
		/* Now and then time jumps past delays not yet ended. */
		now += rand_r(&seed) % 50 == 0 ? 40 : 1;
		nev = 0;
		if (op < 5)
			(void)locktab_acquire(lt, &o[who], name, 1, &want, now,
			    &h, &w);
		else if (op < 7 && kind == LT_SEMAPHORE)
			(void)locktab_release_permits(lt, &o[who], name, 1,
			    rand_r(&seed) % 3, now, &left);
		else if (op < 8)
			(void)locktab_release(lt, &o[who], name, 1, now, &left);
		else if (op < 9 && LIST_FIRST(&o[who].waits) != NULL)
			locktab_cancel(lt, LIST_FIRST(&o[who].waits), now);
		else if (rand_r(&seed) % 3 == 0)
			(void)locktab_force_release(lt, name, 1,
			    rand_r(&seed) % 2 ? &o[who] : NULL, DLM_LOST_FORCED,
			    now);
		else
			locktab_end_owner(lt, &o[who], rand_r(&seed) % 4 == 0 ?
			    0 : DLM_LOST_EXPIRED, now);
		check_invariants();
		/* The caller's timer, which may come late. */
		if (rand_r(&seed) % 3 == 0) {
			uint64_t next = locktab_delays_due(lt, now);

			ck_assert(next == 0 || next > now);
			check_invariants();
		}
		for (int k = 0; k < nev; k++) {
			ndelayed += ev[k].kind == 'd';
			ncontended += ev[k].kind == 'n';
		}
		for (int k = 0; k < LOCKS; k++) {
			struct lt_lock *l = locktab_find(lt, names[k], 1);

			if (l == NULL)
				continue;
			if (l->kind == LT_SEMAPHORE)
				ck_assert_uint_le(l->in_use, l->capacity);
			else if (l->mode == LT_EXCLUSIVE)
				ck_assert_uint_le(l->nholders, 1);
		}
	}
	for (int i = 0; i < OWNERS; i++)
		locktab_end_owner(lt, &o[i], 0, now);
	check_invariants();
	/* The run did go through delays and notices. */
	ck_assert_int_gt(ndelayed, 100);
	ck_assert_int_gt(ncontended, 100);
}
END_TEST

/* Out of tokens, a free lock is not granted: it waits for the next range. */
START_TEST(token_range_exhausted_waits)
{
	uint64_t t1 = 0, t2 = 0;
	int tag = 7;

	locktab_set_tokens(lt, 5000, 5001);
	ck_assert_uint_eq(locktab_tokens_left(lt), 1);
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true, NULL, &t1),
	    LT_GRANTED);
	ck_assert_uint_eq(t1, 5000);
	ck_assert_uint_eq(locktab_tokens_left(lt), 0);
	ck_assert_int_eq(acq(&B, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&B, "y", LT_MUTEX, LT_EXCLUSIVE, true, &tag,
	    NULL), LT_QUEUED);
	/* Giving back an old range must not move the next token back. */
	locktab_set_tokens(lt, 10, 5001);
	locktab_regrant_all(lt, now);
	ck_assert_int_eq(nev, 0);
	locktab_set_tokens(lt, 9000, 9010);
	ck_assert_int_eq(nev, 0);
	locktab_regrant_all(lt, now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_ptr_eq(ev[0].udata, &tag);
	ck_assert_uint_eq(ev[0].token, 9000);
	ck_assert_int_eq(acq(&C, "z", LT_MUTEX, LT_EXCLUSIVE, true, NULL, &t2),
	    LT_GRANTED);
	ck_assert_uint_eq(t2, 9001);
	ck_assert_uint_eq(locktab_tokens_left(lt), 8);
	locktab_set_tokens(lt, 0, 0);
	ck_assert_uint_eq(locktab_tokens_left(lt), UINT64_MAX);
}
END_TEST

/* Outside the grant window nothing new is granted; inside, FIFO resumes. */
START_TEST(grant_window)
{
	uint64_t t = 0;
	uint32_t left;
	int ta = 1, tb = 2;

	now = 100;
	locktab_set_window(lt, 200, 300);
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, true, &ta, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_SHARED, true, &tb, NULL),
	    LT_QUEUED);
	locktab_regrant_all(lt, now);
	ck_assert_int_eq(nev, 0);
	now = 200;
	locktab_regrant_all(lt, now);
	check_invariants();
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[0].udata, &ta);
	ck_assert_ptr_eq(ev[1].udata, &tb);
	/* A reentrant acquire makes no hold: it counts up even outside. */
	now = 300;
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, &t),
	    LT_GRANTED);
	ck_assert_uint_eq(t, ev[0].token);
	ck_assert_int_eq(acq(&C, "y", LT_MUTEX, LT_EXCLUSIVE, true, NULL,
	    NULL), LT_QUEUED);
	/* A release outside the window grants nobody. */
	ck_assert_int_eq(acq(&D, "x", LT_RLOCK, LT_EXCLUSIVE, true, NULL,
	    NULL), LT_QUEUED);
	ck_assert_int_eq(rel(&B, "x", &left), 0);
	ck_assert_int_eq(rel(&A, "x", &left), 0);
	ck_assert_int_eq(rel(&A, "x", &left), 0);
	ck_assert_int_eq(nev, 2);
	locktab_set_window(lt, 0, UINT64_MAX);
	locktab_regrant_all(lt, now);
	check_invariants();
	ck_assert_int_eq(nev, 4);
}
END_TEST

/* Install a reclaimed hold; returns the result and checks invariants. */
static int
inst(struct lt_owner *o, const char *name, enum lt_kind kind,
    enum lt_mode mode, uint32_t count, uint64_t token)
{
	struct lt_hold *h;
	int rc = locktab_install(lt, o, name, strlen(name), kind, mode, count,
	    token, DLM_LOST_FORCED, now, &h);

	if (rc == LT_GRANTED) {
		ck_assert_ptr_nonnull(h);
		ck_assert_uint_eq(h->token, token);
		ck_assert_uint_eq(h->count, count);
		ck_assert_ptr_eq(h->owner, o);
	} else
		ck_assert_ptr_null(h);
	check_invariants();
	return rc;
}

/* A reclaimed hold keeps its token and count; bad claims are refused. */
START_TEST(install_keeps_token_and_count)
{
	uint32_t left;

	locktab_set_window(lt, 0, 0);	/* a grace: nothing new granted */
	ck_assert_int_eq(inst(&A, "r", LT_RLOCK, LT_SHARED, 3, 500),
	    LT_GRANTED);
	ck_assert_int_eq(rel(&A, "r", &left), 0);
	ck_assert_uint_eq(left, 2);
	/* Tokens the table never reached, zero, bad counts. */
	ck_assert_int_eq(inst(&B, "m", LT_MUTEX, LT_EXCLUSIVE, 1, 1000),
	    DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst(&B, "m", LT_MUTEX, LT_EXCLUSIVE, 1, 0),
	    DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst(&B, "m", LT_MUTEX, LT_EXCLUSIVE, 2, 10),
	    DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst(&B, "m", LT_RLOCK, LT_SHARED, 0, 10),
	    DLM_E_BAD_REQUEST);
	/* The same owner twice, or the same token for another. */
	ck_assert_int_eq(inst(&A, "r", LT_RLOCK, LT_SHARED, 1, 501),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(inst(&B, "r", LT_RLOCK, LT_SHARED, 1, 500),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(inst(&B, "r", LT_RLOCK, LT_SHARED, 1, 499),
	    LT_GRANTED);
	ck_assert_int_eq(nev, 0);
	/* Granted from the table's own range, above every reclaimed token. */
	locktab_set_window(lt, 0, UINT64_MAX);
	ck_assert_int_eq(acq(&C, "r", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
}
END_TEST

/* Two claims to one exclusive lock: the higher token, in either order. */
START_TEST(install_conflict_goes_to_the_higher_token)
{
	locktab_set_window(lt, 0, 0);
	ck_assert_int_eq(inst(&A, "m", LT_MUTEX, LT_EXCLUSIVE, 1, 10),
	    LT_GRANTED);
	ck_assert_int_eq(inst(&B, "m", LT_MUTEX, LT_EXCLUSIVE, 1, 20),
	    LT_GRANTED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_uint_eq(ev[0].token, 10);
	ck_assert_int_eq(ev[0].reason, DLM_LOST_FORCED);
	ck_assert_uint_eq(A.nholds, 0);
	ck_assert_int_eq(inst(&C, "m", LT_MUTEX, LT_EXCLUSIVE, 1, 15),
	    DLM_E_WOULD_BLOCK);

	ck_assert_int_eq(inst(&B, "n", LT_MUTEX, LT_EXCLUSIVE, 1, 20),
	    LT_GRANTED);
	ck_assert_int_eq(inst(&A, "n", LT_MUTEX, LT_EXCLUSIVE, 1, 10),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(nev, 1);
	ck_assert_uint_eq(locktab_hold_of(locktab_find(lt, "n", 1),
	    &B)->token, 20);
}
END_TEST

/*
 * Shared and exclusive claims of an rlock, in an order that hides the
 * exclusive one's place: a shared claim below an exclusive grant had
 * ended before it, even once that exclusive claim is itself displaced.
 */
START_TEST(install_floor_remembers_displaced_claims)
{
	locktab_set_window(lt, 0, 0);
	ck_assert_int_eq(inst(&A, "r", LT_RLOCK, LT_SHARED, 1, 5), LT_GRANTED);
	ck_assert_int_eq(inst(&B, "r", LT_RLOCK, LT_EXCLUSIVE, 2, 7),
	    LT_GRANTED);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_int_eq(inst(&C, "r", LT_RLOCK, LT_SHARED, 1, 8), LT_GRANTED);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[1].owner, &B);
	ck_assert_int_eq(inst(&D, "r", LT_RLOCK, LT_SHARED, 1, 6),
	    DLM_E_WOULD_BLOCK);
	/* Shared claims above the floor live together. */
	ck_assert_int_eq(inst(&D, "r", LT_RLOCK, LT_SHARED, 1, 9), LT_GRANTED);
	ck_assert_uint_eq(locktab_find(lt, "r", 1)->nholders, 2);
	/* A claim of the other kind, older than every holder: refused. */
	ck_assert_int_eq(inst(&A, "r", LT_MUTEX, LT_EXCLUSIVE, 1, 3),
	    DLM_E_WOULD_BLOCK);
	/* An exclusive claim older than a shared holder, above the floor. */
	ck_assert_int_eq(inst(&A, "s", LT_RLOCK, LT_SHARED, 1, 30), LT_GRANTED);
	ck_assert_int_eq(inst(&B, "s", LT_RLOCK, LT_EXCLUSIVE, 1, 20),
	    DLM_E_WOULD_BLOCK);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->nholders, 1);
}
END_TEST

/* Waiters queued during the grace wait behind reclaimed holds. */
START_TEST(install_before_waiters_are_served)
{
	int tb = 2, tc = 3;
	uint32_t left;

	now = 100;
	locktab_set_window(lt, 200, UINT64_MAX);
	ck_assert_int_eq(acq(&B, "w", LT_MUTEX, LT_EXCLUSIVE, true, &tb,
	    NULL), LT_QUEUED);
	ck_assert_int_eq(inst(&A, "w", LT_MUTEX, LT_EXCLUSIVE, 1, 50),
	    LT_GRANTED);
	/* A waiter of the other kind goes when a claim changes the kind. */
	ck_assert_int_eq(acq(&C, "k", LT_MUTEX, LT_EXCLUSIVE, true, &tc,
	    NULL), LT_QUEUED);
	ck_assert_int_eq(inst(&A, "k", LT_RLOCK, LT_SHARED, 2, 60),
	    LT_GRANTED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'c');
	ck_assert_ptr_eq(ev[0].udata, &tc);
	now = 200;
	locktab_regrant_all(lt, now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(rel(&A, "w", &left), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[1].kind, 'g');
	ck_assert_ptr_eq(ev[1].udata, &tb);
	ck_assert_uint_ge(ev[1].token, 1000);
}
END_TEST

/* Install a reclaimed semaphore hold; checks invariants. */
static int
inst_sem(struct lt_owner *o, const char *name, uint32_t cap,
    uint32_t permits, uint64_t token)
{
	struct lt_hold *h;
	int rc = locktab_install_semaphore(lt, o, name, strlen(name), cap,
	    permits, token, DLM_LOST_FORCED, now, &h);

	if (rc == LT_GRANTED) {
		ck_assert_ptr_nonnull(h);
		ck_assert_uint_eq(h->token, token);
		ck_assert_uint_eq(h->permits, permits);
		ck_assert_uint_eq(h->count, 1);
	} else
		ck_assert_ptr_null(h);
	check_invariants();
	return rc;
}

/* The hold of o on name, or NULL. */
static struct lt_hold *
hold(struct lt_owner *o, const char *name)
{
	struct lt_lock *l = locktab_find(lt, name, strlen(name));

	return l != NULL ? locktab_hold_of(l, o) : NULL;
}

/* acq() with a value. */
static int
acq_value(struct lt_owner *o, const char *name, enum lt_kind kind,
    bool wait, const char *value, size_t len)
{
	struct lt_want want = { .kind = kind, .mode = LT_EXCLUSIVE,
	    .may_wait = wait, .udata = o, .value = value, .value_len = len };
	struct lt_hold *h;
	struct lt_wait *w;
	int rc = locktab_acquire(lt, o, name, strlen(name), &want, now, &h,
	    &w);

	check_invariants();
	return rc;
}

/* An acquire with a lock-delay and contention notices. */
static int
acq_opt(struct lt_owner *o, const char *name, enum lt_kind kind,
    enum lt_mode mode, bool wait, void *udata, uint32_t delay, bool notify,
    uint64_t *token)
{
	struct lt_want want = { .kind = kind, .mode = mode, .may_wait = wait,
	    .udata = udata, .lock_delay_ms = delay,
	    .notify_contended = notify };
	struct lt_hold *h;
	struct lt_wait *w;
	int rc = locktab_acquire(lt, o, name, strlen(name), &want, now, &h,
	    &w);

	if (rc == LT_GRANTED && token != NULL)
		*token = h->token;
	check_invariants();
	return rc;
}

/*
 * Semaphore claims of one capacity live together while they fit; one of
 * another capacity or kind conflicts, and the higher token wins.
 */
START_TEST(install_semaphore_claims)
{
	int tc = 3;

	locktab_set_window(lt, 0, 0);
	/* Bad claims. */
	ck_assert_int_eq(inst_sem(&A, "s", 0, 1, 10), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst_sem(&A, "s", 3, 0, 10), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst_sem(&A, "s", 3, 4, 10), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst_sem(&A, "s", 3, 1, 0), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst_sem(&A, "s", 3, 1, 1000), DLM_E_BAD_REQUEST);
	ck_assert_int_eq(inst(&A, "s", LT_SEMAPHORE, LT_EXCLUSIVE, 1, 10),
	    DLM_E_BAD_REQUEST);
	/* Side by side up to the capacity, in any token order. */
	ck_assert_int_eq(inst_sem(&A, "s", 3, 2, 20), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "s", 3, 1, 10), LT_GRANTED);
	ck_assert_uint_eq(in_use("s"), 3);
	ck_assert_int_eq(inst_sem(&C, "s", 3, 1, 30), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst_sem(&A, "s", 3, 1, 31), DLM_E_ALREADY_HELD);
	ck_assert_int_eq(inst_sem(&C, "s", 3, 1, 20), DLM_E_ALREADY_HELD);
	ck_assert_int_eq(nev, 0);
	/* Another capacity: older than a holder, refused; newer, it wins. */
	ck_assert_int_eq(inst_sem(&C, "s", 5, 1, 15), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst_sem(&C, "s", 5, 4, 40), LT_GRANTED);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_int_eq(ev[1].kind, 'r');
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->capacity, 5);
	ck_assert_uint_eq(in_use("s"), 4);
	/* Below the displaced claims: those had ended it. */
	ck_assert_int_eq(inst_sem(&A, "s", 5, 1, 19), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst_sem(&D, "s", 5, 1, 35), LT_GRANTED);
	/* A mutex claim above them all takes the lock; below, refused. */
	ck_assert_int_eq(inst(&A, "s", LT_MUTEX, LT_EXCLUSIVE, 1, 38),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst(&A, "s", LT_MUTEX, LT_EXCLUSIVE, 1, 50),
	    LT_GRANTED);
	ck_assert_int_eq(nev, 4);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->capacity, 0);
	ck_assert_int_eq(inst_sem(&B, "s", 5, 1, 45), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst_sem(&B, "s", 5, 1, 60), LT_GRANTED);
	ck_assert_int_eq(nev, 5);
	/* Waiters of the semaphore are kept; of the other kind, cancelled. */
	locktab_set_window(lt, 0, UINT64_MAX);
	ck_assert_int_eq(sem(&C, "t", 2, 2, false, NULL, NULL), LT_GRANTED);
	ck_assert_int_eq(sem(&D, "t", 2, 1, true, &tc, NULL), LT_QUEUED);
	ck_assert_int_eq(inst_sem(&A, "t", 2, 1, 70), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(inst(&A, "t", LT_MUTEX, LT_EXCLUSIVE, 1, 70),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(rel(&C, "t", NULL), 0);
	ck_assert_int_eq(nev, 6);
	ck_assert_int_eq(ev[5].kind, 'g');
	ck_assert_int_eq(inst_sem(&A, "t", 2, 1, 70), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "t", 2, 1, 71), DLM_E_WOULD_BLOCK);
}
END_TEST

/* A value goes with the hold made, at once or after a wait, and no other. */
START_TEST(value_goes_with_the_hold)
{
	char big[1024];
	struct lt_hold *h;

	memset(big, 0xab, sizeof big);
	ck_assert_int_eq(acq_value(&A, "v", LT_RLOCK, false, "addr-a", 6),
	    LT_GRANTED);
	h = hold(&A, "v");
	ck_assert_uint_eq(h->value_len, 6);
	ck_assert_int_eq(memcmp(h->value, "addr-a", 6), 0);
	/* Re-entering keeps the hold's value. */
	ck_assert_int_eq(acq_value(&A, "v", LT_RLOCK, false, "other", 5),
	    LT_GRANTED);
	ck_assert_uint_eq(h->count, 2);
	ck_assert_int_eq(memcmp(h->value, "addr-a", 6), 0);
	/* A waiter's value is kept while it waits (in binary, with NULs). */
	ck_assert_int_eq(acq_value(&B, "v", LT_RLOCK, true, "b\0\0b", 4),
	    LT_QUEUED);
	ck_assert_uint_eq(wait_of(&B)->value_len, 4);
	ck_assert_int_eq(acq_value(&C, "v", LT_RLOCK, true, big, sizeof big),
	    LT_QUEUED);
	ck_assert_int_eq(acq_value(&D, "v", LT_RLOCK, true, NULL, 0),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "v", NULL), 0);
	ck_assert_int_eq(rel(&A, "v", NULL), 0);
	h = hold(&B, "v");
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->value_len, 4);
	ck_assert_int_eq(memcmp(h->value, "b\0\0b", 4), 0);
	/* A cancelled waiter's value goes with it; an empty one is none. */
	locktab_cancel(lt, wait_of(&C), now);
	check_invariants();
	ck_assert_int_eq(rel(&B, "v", NULL), 0);
	h = hold(&D, "v");
	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_null(h->value);
	ck_assert_uint_eq(h->value_len, 0);
	/* Set anew (as a reclaim does), or taken away. */
	locktab_set_value(lt, h, "d", 1);
	check_invariants();
	ck_assert_int_eq(memcmp(h->value, "d", 1), 0);
	locktab_set_value(lt, h, "", 0);
	check_invariants();
	ck_assert_ptr_null(h->value);
	/* Freed with the owner's end, its waits' values too (ASan checks). */
	ck_assert_int_eq(acq_value(&A, "v", LT_MUTEX, true, "x", 1),
	    DLM_E_KIND_MISMATCH);
	ck_assert_int_eq(acq_value(&A, "v", LT_RLOCK, true, "x", 1),
	    LT_QUEUED);
	ck_assert_int_eq(acq_value(&A, "w", LT_MUTEX, false, big, 10),
	    LT_GRANTED);
	locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now);
	check_invariants();
}
END_TEST

/* A claim that displaces holds lets in the waiters it made room for. */
START_TEST(install_semaphore_grants_waiters)
{
	struct lt_hold *ha;
	uint64_t tz = 0;
	int tb = 2;

	ck_assert_int_eq(sem(&A, "s", 5, 4, false, NULL, &ha), LT_GRANTED);
	ck_assert_int_eq(sem(&B, "s", 5, 2, true, &tb, NULL), LT_QUEUED);
	ck_assert_int_eq(acq(&D, "z", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    &tz), LT_GRANTED);
	nev = 0;
	/* Newer than A's and not fitting beside it: A goes, B fits now. */
	ck_assert_int_eq(inst_sem(&C, "s", 5, 2, tz), LT_GRANTED);
	ck_assert_uint_eq(A.nholds, 0);
	ck_assert_uint_eq(B.nholds, 1);
	ck_assert_uint_eq(in_use("s"), 4);
}
END_TEST

/*
 * Two claims whose permits add up past the capacity were never held at
 * once: the higher token wins, as for a mutex, in either order.
 */
START_TEST(install_semaphore_claims_that_never_met)
{
	locktab_set_window(lt, 0, 0);
	ck_assert_int_eq(inst_sem(&A, "s", 2, 2, 10), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "s", 2, 1, 20), LT_GRANTED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_uint_eq(in_use("s"), 1);
	/* Older than B, yet both fit: side by side. */
	ck_assert_int_eq(inst_sem(&C, "s", 2, 1, 5), LT_GRANTED);
	ck_assert_uint_eq(in_use("s"), 2);
	/* Two permits beside B's newer grant: never. */
	ck_assert_int_eq(inst_sem(&D, "s", 2, 2, 15), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(nev, 1);
	/* Capacity 1 is a mutex: the newer claim, whichever order. */
	ck_assert_int_eq(inst_sem(&A, "one", 1, 1, 30), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "one", 1, 1, 40), LT_GRANTED);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[1].owner, &A);
	ck_assert_int_eq(inst_sem(&C, "one", 1, 1, 35), DLM_E_WOULD_BLOCK);
	ck_assert_uint_eq(locktab_hold_of(locktab_find(lt, "one", 3),
	    &B)->token, 40);
	/* A newer claim takes the place of the one it never met. */
	ck_assert_int_eq(inst_sem(&A, "f", 3, 2, 50), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "f", 3, 1, 51), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&C, "f", 3, 2, 60), LT_GRANTED);
	ck_assert_int_eq(nev, 3);
	ck_assert_ptr_eq(ev[2].owner, &A);
	ck_assert_uint_eq(in_use("f"), 3);
	/* One that would displace one and still not fit: no change. */
	ck_assert_int_eq(inst_sem(&A, "g", 6, 3, 70), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&B, "g", 6, 2, 71), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&C, "g", 6, 1, 72), LT_GRANTED);
	ck_assert_int_eq(inst_sem(&D, "g", 6, 4, 80), DLM_E_WOULD_BLOCK);
	ck_assert_uint_eq(in_use("g"), 6);
	ck_assert_int_eq(nev, 3);
}
END_TEST

/*
 * One report per lock and operation, with the holders as they are after
 * it; none when the holders stay the same.
 */
START_TEST(changes_reported_once_per_operation)
{
	uint32_t left;

	/* Queued and re-entered: the holders did not change. */
	ck_assert_int_eq(acq(&A, "s", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(nch, 1);
	ck_assert_str_eq(ch[0].name, "s");
	ck_assert_uint_eq(ch[0].nholders, 1);
	ck_assert_int_eq(acq(&A, "s", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "s", LT_RLOCK, LT_SHARED, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "s", LT_RLOCK, LT_SHARED, true, &C, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&D, "s", LT_RLOCK, LT_SHARED, true, &D, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "s", &left), 0);
	ck_assert_int_eq(nch, 1);
	/* The release and the three grants it allowed: one report. */
	ck_assert_int_eq(rel(&A, "s", &left), 0);
	ck_assert_int_eq(nev, 3);
	ck_assert_int_eq(nch, 2);
	ck_assert_uint_eq(ch[1].nholders, 3);
	ck_assert_uint_eq(ch[1].sig, holders_sig(locktab_find(lt, "s", 1)));
	/* An owner's end: one report for each lock it held, none else. */
	ck_assert_int_eq(acq(&B, "t", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&C, "u", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "u", LT_MUTEX, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	nch = 0;
	locktab_end_owner(lt, &B, DLM_LOST_EXPIRED, now);
	check_invariants();
	ck_assert_int_eq(nch, 2);
	ck_assert_uint_eq(ch[0].nholders + ch[1].nholders, 2);	/* s: C, D */
	/* The last holder gone: reported with nobody, before the lock goes. */
	nch = 0;
	ck_assert_uint_eq(locktab_force_release(lt, "u", 1, NULL, 1, now), 1);
	check_invariants();
	ck_assert_int_eq(nch, 1);
	ck_assert_str_eq(ch[0].name, "u");
	ck_assert_uint_eq(ch[0].nholders, 0);
	ck_assert_ptr_null(locktab_find(lt, "u", 1));
	/* A force-release of nothing reports nothing. */
	ck_assert_uint_eq(locktab_force_release(lt, "u", 1, NULL, 1, now), 0);
	ck_assert_int_eq(nch, 1);
	/* An install is one report, its displaced holders and all. */
	nch = 0;
	ck_assert_int_eq(inst(&A, "s", LT_RLOCK, LT_EXCLUSIVE, 1, 999),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(nch, 0);
	/* Above both shared holders: it displaces them, in one report. */
	nev = 0;
	ck_assert_int_eq(inst(&A, "s", LT_RLOCK, LT_EXCLUSIVE, 1,
	    locktab_next_token(lt) - 1), LT_GRANTED);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(nch, 1);
	ck_assert_uint_eq(ch[0].nholders, 1);
}
END_TEST

/* The random walk, checking every report against the holders after it. */
START_TEST(random_changes_reported_exactly)
{
	enum { OWNERS = 8, LOCKS = 3, STEPS = 20000 };
	struct lt_owner o[OWNERS];
	static const char *names[LOCKS] = { "p", "q", "r" };
	uint64_t before[LOCKS];
	unsigned seed = 4242;

	for (int i = 0; i < OWNERS; i++)
		locktab_owner_init(&o[i]);
	for (int k = 0; k < LOCKS; k++)
		before[k] = holders_sig(NULL);
	for (int step = 0; step < STEPS; step++) {
		int who = rand_r(&seed) % OWNERS, op = rand_r(&seed) % 11;
		const char *name = names[rand_r(&seed) % LOCKS];
		enum lt_kind kind = (name[0] == 'r') ? LT_RLOCK : LT_MUTEX;
		struct lt_want want = { .kind = kind, .mode =
		    rand_r(&seed) % 3 == 0 ? LT_SHARED : LT_EXCLUSIVE,
		    .may_wait = op < 3, .udata = &o[who] };
		char value[8];
		struct lt_hold *h;
		struct lt_wait *w;
		uint32_t left;

		snprintf(value, sizeof value, "v%d", step % 1000);
		if (rand_r(&seed) % 2) {
			want.value = value;
			want.value_len = strlen(value);
		}
		now++;
		nev = 0;
		nch = 0;
		if (op < 5)
			(void)locktab_acquire(lt, &o[who], name, 1, &want, now,
			    &h, &w);
		else if (op < 8)
			(void)locktab_release(lt, &o[who], name, 1, now, &left);
		else if (op < 9 && LIST_FIRST(&o[who].waits) != NULL)
			locktab_cancel(lt, LIST_FIRST(&o[who].waits), now);
		else if (op < 10 && LIST_FIRST(&o[who].holds) != NULL)
			locktab_set_value(lt, LIST_FIRST(&o[who].holds),
			    want.value, want.value_len);
		else
			locktab_end_owner(lt, &o[who], DLM_LOST_EXPIRED, now);
		check_invariants();
		for (int k = 0; k < LOCKS; k++) {
			uint64_t after = holders_sig(locktab_find(lt, names[k],
			    1));
			int n = 0, last = -1;

			for (int i = 0; i < nch; i++)
				if (strcmp(ch[i].name, names[k]) == 0) {
					n++;
					last = i;
				}
			ck_assert_int_le(n, 1);
			/* A value set again to itself may be reported. */
			if (after != before[k])
				ck_assert_int_eq(n, 1);
			if (n == 1)
				ck_assert_uint_eq(ch[last].sig, after);
			before[k] = after;
		}
	}
	for (int i = 0; i < OWNERS; i++)
		locktab_end_owner(lt, &o[i], 0, now);
	check_invariants();
}
END_TEST

/*
 * Deadlock detection. chk() is acq() with the check asked for and the
 * cycle kept in cyc.
 */
static struct lt_cycle cyc;

static int
chk(struct lt_owner *o, const char *name, enum lt_kind kind, enum lt_mode mode,
    bool check)
{
	struct lt_want want = { .kind = kind, .mode = mode, .may_wait = true,
	    .udata = o, .deadlock_check = check, .cycle = &cyc };
	struct lt_hold *h;
	struct lt_wait *w;
	int rc;

	memset(&cyc, 0, sizeof cyc);
	rc = locktab_acquire(lt, o, name, strlen(name), &want, now, &h, &w);
	check_invariants();
	return rc;
}

/* Step i of cyc is owner o waiting for name in mode. */
static void
step_is(uint32_t i, const struct lt_owner *o, const char *name,
    enum lt_mode mode)
{
	ck_assert_uint_lt(i, cyc.len);
	ck_assert_ptr_eq(cyc.steps[i].owner, o);
	ck_assert_uint_eq(cyc.steps[i].lock->namelen, strlen(name));
	ck_assert(memcmp(cyc.steps[i].lock->name, name, strlen(name)) == 0);
	ck_assert_int_eq(cyc.steps[i].mode, mode);
}

START_TEST(deadlock_two_party)
{
	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&A, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	ck_assert_int_eq(chk(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &B, "x", LT_EXCLUSIVE);
	step_is(1, &A, "y", LT_EXCLUSIVE);
	/* The others keep waiting; the refused one changed nothing. */
	ck_assert_uint_eq(A.nwaits, 1);
	ck_assert_uint_eq(B.nwaits, 0);
	ck_assert_uint_eq(B.nholds, 1);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(rel(&B, "y", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &A);
}
END_TEST

START_TEST(refused_cycles_checked_by_brute_force)
{
	struct lt_cycle bogus;

	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&A, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	ck_assert_int_eq(chk(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    DLM_E_DEADLOCK);
	ck_assert(wg_cycle_real(&cyc, NULL));
	/* The same steps the other way round wait for nobody they name. */
	bogus = cyc;
	bogus.steps[0].owner = &A;
	bogus.steps[1].owner = &B;
	ck_assert(!wg_cycle_real(&bogus, NULL));
	bogus.len = 0;
	ck_assert(!wg_cycle_real(&bogus, NULL));
	/* A shared wait conflicts with an exclusive hold too. */
	bogus = cyc;
	bogus.steps[0].mode = LT_SHARED;
	ck_assert(wg_cycle_real(&bogus, NULL));
	/* But not with a shared one: B asks z shared, A holds it shared. */
	ck_assert_int_eq(chk(&A, "z", LT_MUTEX, LT_SHARED, true),
	    LT_GRANTED);
	bogus.steps[0].lock = locktab_find(lt, "z", 1);
	ck_assert(!wg_cycle_real(&bogus, NULL));
}
END_TEST

START_TEST(deadlock_three_party)
{
	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_RLOCK, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&C, "z", LT_MUTEX, LT_SHARED, true), LT_GRANTED);
	ck_assert_int_eq(chk(&A, "y", LT_RLOCK, LT_SHARED, true), LT_QUEUED);
	ck_assert_int_eq(chk(&B, "z", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	/* Shared behind an exclusive waiter queues, and closes nothing. */
	ck_assert_int_eq(chk(&D, "z", LT_MUTEX, LT_SHARED, true), LT_QUEUED);
	ck_assert_int_eq(chk(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 3);
	step_is(0, &C, "x", LT_EXCLUSIVE);
	step_is(1, &A, "y", LT_SHARED);
	step_is(2, &B, "z", LT_EXCLUSIVE);
}
END_TEST

/* Shared waits for shared nothing; a shared waiter waits for exclusive. */
START_TEST(deadlock_shared_and_exclusive)
{
	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_SHARED, true), LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_SHARED, true), LT_GRANTED);
	ck_assert_int_eq(chk(&A, "y", LT_MUTEX, LT_SHARED, true), LT_GRANTED);
	ck_assert_int_eq(chk(&B, "x", LT_MUTEX, LT_SHARED, true), LT_GRANTED);
	/* Exclusive after shared holders: waits for both. */
	ck_assert_int_eq(chk(&C, "c", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	/* B shared on c: waits for C's exclusive hold; C waits for B. */
	ck_assert_int_eq(chk(&B, "c", LT_MUTEX, LT_SHARED, true),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &B, "c", LT_SHARED);
	step_is(1, &C, "x", LT_EXCLUSIVE);
	/* Without the check it waits, as before. */
	ck_assert_int_eq(chk(&B, "c", LT_MUTEX, LT_SHARED, false), LT_QUEUED);
	ck_assert_uint_eq(B.nwaits, 1);
}
END_TEST

/* The queue is FIFO: a waiter waits for the conflicting waiters ahead. */
START_TEST(deadlock_through_waiters_ahead)
{
	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&D, "d", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	/* B waits on x (shared) and on d, which D holds. */
	ck_assert_int_eq(chk(&B, "x", LT_MUTEX, LT_SHARED, true), LT_QUEUED);
	ck_assert_int_eq(chk(&B, "d", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	/* D shared behind B shared: no edge to B, only to A. */
	ck_assert_int_eq(chk(&D, "x", LT_MUTEX, LT_SHARED, true), LT_QUEUED);
	ck_assert_int_eq(locktab_end_owner(lt, &D, 0, now), 1);
	check_invariants();
	ck_assert_int_eq(nev, 2);	/* D's wait went, B got d */
	ck_assert_int_eq(ev[1].kind, 'g');
	ck_assert_ptr_eq(ev[1].owner, &B);
	ck_assert_int_eq(chk(&D, "d2", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&B, "d2", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	/* D exclusive behind B: waits for B, who waits for D. */
	ck_assert_int_eq(chk(&D, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &D, "x", LT_EXCLUSIVE);
	step_is(1, &B, "d2", LT_EXCLUSIVE);
	/* A holder that an exclusive waiter waits for. */
	ck_assert_int_eq(chk(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	ck_assert_int_eq(chk(&C, "c", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&A, "c", LT_MUTEX, LT_SHARED, true),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &A, "c", LT_SHARED);
	step_is(1, &C, "x", LT_EXCLUSIVE);
}
END_TEST

/* Waits of an owner whose lease ran out are no edges. */
START_TEST(deadlock_ignores_expired_owners)
{
	ck_assert_int_eq(chk(&A, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_GRANTED);
	ck_assert_int_eq(chk(&A, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	A.deadline = now;
	ck_assert_int_eq(chk(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
}
END_TEST

/* Conversion. */
static int
conv(struct lt_owner *o, const char *name, enum lt_mode mode, bool wait,
    uint64_t *token)
{
	struct lt_convert cv = { .mode = mode, .may_wait = wait, .udata = o,
	    .cycle = &cyc };
	struct lt_hold *h;
	struct lt_wait *w;
	int rc;

	memset(&cyc, 0, sizeof cyc);
	rc = locktab_convert(lt, o, name, strlen(name), &cv, now, &h, &w);
	if (rc == LT_GRANTED) {
		ck_assert_ptr_nonnull(h);
		ck_assert_int_eq(h->mode, mode);
		if (token != NULL)
			*token = h->token;
	} else if (rc == LT_QUEUED) {
		ck_assert_ptr_nonnull(w);
		ck_assert(w->convert);
	}
	check_invariants();
	return rc;
}

static struct lt_hold *
hold_of(struct lt_owner *o, const char *name)
{
	struct lt_lock *l = locktab_find(lt, name, strlen(name));

	return l != NULL ? locktab_hold_of(l, o) : NULL;
}

START_TEST(convert_down_lets_shared_in)
{
	uint64_t t, t2;

	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    &t), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, true, &B, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&C, "x", LT_MUTEX, LT_SHARED, true, &C, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(acq(&D, "x", LT_MUTEX, LT_EXCLUSIVE, true, &D, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(conv(&A, "x", LT_SHARED, false, &t2), LT_GRANTED);
	ck_assert_uint_eq(t2, t);	/* a downgrade keeps its token */
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[0].owner, &B);
	ck_assert_ptr_eq(ev[1].owner, &C);
	ck_assert_uint_gt(ev[0].token, t);
	ck_assert_uint_eq(D.nwaits, 1);
	/* The same mode again: nothing changes. */
	ck_assert_int_eq(conv(&A, "x", LT_SHARED, false, &t2), LT_GRANTED);
	ck_assert_uint_eq(t2, t);
	ck_assert_int_eq(nev, 2);
}
END_TEST

START_TEST(convert_up_alone_at_once)
{
	uint64_t t, t2;

	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, &t),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_EXCLUSIVE, true, &B, NULL),
	    LT_QUEUED);
	/* Alone, ahead of the waiter: at once, with a new token. */
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, false, &t2), LT_GRANTED);
	ck_assert_uint_gt(t2, t);
	ck_assert_uint_eq(t2, locktab_next_token(lt) - 1);
	ck_assert_uint_eq(hold_of(&A, "x")->count, 2);	/* the whole hold */
	ck_assert_uint_eq(hold_of(&A, "x")->prev_token, t);
	/* And down again: the upgrade's token stays. */
	ck_assert_int_eq(conv(&A, "x", LT_SHARED, false, &t), LT_GRANTED);
	ck_assert_uint_eq(t, t2);
	ck_assert_int_eq(nev, 0);	/* B is exclusive: still waits */
	/* Up once more: the token before it is the last one, not the first. */
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, false, &t), LT_GRANTED);
	ck_assert_uint_gt(t, t2);
	ck_assert_uint_eq(hold_of(&A, "x")->prev_token, t2);
}
END_TEST

START_TEST(convert_up_waits_ahead_of_waiters)
{
	uint64_t ta, t;

	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, false, NULL, &ta),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true, &C, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, false, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_ptr_eq(TAILQ_FIRST(&locktab_find(lt, "x", 1)->waiters)->owner,
	    &A);
	ck_assert_ptr_nonnull(locktab_converting(hold_of(&A, "x")));
	ck_assert_ptr_null(locktab_converting(hold_of(&B, "x")));
	/* Converting again, or acquiring it again: ALREADY_HELD. */
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_ALREADY_HELD);
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, true, &A, NULL),
	    DLM_E_ALREADY_HELD);
	/* A shared acquire queues too, behind the conversion. */
	ck_assert_int_eq(acq(&D, "x", LT_MUTEX, LT_SHARED, true, &D, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(hold_of(&A, "x")->mode, LT_SHARED);
	ck_assert_int_eq(rel(&B, "x", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_ptr_eq(ev[0].udata, &A);
	t = ev[0].token;
	ck_assert_uint_gt(t, ta);
	ck_assert_int_eq(hold_of(&A, "x")->mode, LT_EXCLUSIVE);
	ck_assert_uint_eq(hold_of(&A, "x")->token, t);
	ck_assert_int_eq(rel(&A, "x", NULL), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_ptr_eq(ev[1].owner, &C);
}
END_TEST

START_TEST(convert_two_converters_deadlock)
{
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_int_eq(conv(&B, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &B, "x", LT_EXCLUSIVE);
	step_is(1, &A, "x", LT_EXCLUSIVE);
	/* B gives up its share: A's conversion completes. */
	ck_assert_int_eq(rel(&B, "x", NULL), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &A);
}
END_TEST

START_TEST(convert_refusals)
{
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_NOT_HELD);
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, true, &B, NULL),
	    LT_QUEUED);
	/* A waiter holds nothing to convert. */
	ck_assert_int_eq(conv(&B, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_NOT_HELD);
	ck_assert_int_eq(conv(&B, "y", LT_EXCLUSIVE, true, NULL),
	    DLM_E_NOT_HELD);
}
END_TEST

/* Withdrawn conversions leave the shared hold as it was. */
START_TEST(convert_cancel_and_hold_end)
{
	struct lt_wait *w;
	uint32_t left;

	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_int_eq(acq(&C, "x", LT_RLOCK, LT_SHARED, true, &C, NULL),
	    LT_QUEUED);
	/* Cancelled: the hold stays shared, and C may share it now. */
	w = locktab_converting(hold_of(&A, "x"));
	ck_assert_ptr_nonnull(w);
	locktab_cancel(lt, w, now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_eq(ev[0].owner, &C);
	ck_assert_uint_eq(hold_of(&A, "x")->count, 2);
	ck_assert_int_eq(hold_of(&A, "x")->mode, LT_SHARED);
	/* One level released: the conversion goes on; the last: it ends. */
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_int_eq(rel(&A, "x", &left), 0);
	ck_assert_uint_eq(left, 1);
	ck_assert_uint_eq(A.nwaits, 1);
	ck_assert_int_eq(rel(&A, "x", &left), 0);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[1].kind, 'c');
	ck_assert_ptr_eq(ev[1].owner, &A);
	ck_assert_uint_eq(A.nwaits, 0);
	/* Revoked while converting: lost first, then the conversion. */
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_uint_eq(locktab_force_release(lt, "x", 1, &A,
	    DLM_LOST_FORCED, now), 1);
	check_invariants();
	ck_assert_int_eq(nev, 4);
	ck_assert_int_eq(ev[2].kind, 'r');
	ck_assert_int_eq(ev[3].kind, 'c');
	ck_assert_uint_eq(A.nwaits, 0);
	/* Its owner's end: the conversion is cancelled with its waits. */
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now), 1);
	check_invariants();
	ck_assert_int_eq(ev[4].kind, 'c');
	ck_assert_int_eq(ev[5].kind, 'r');
	/* The reset of its holds: likewise. */
	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_uint_eq(locktab_release_owner(lt, &A, now), 1);
	check_invariants();
	ck_assert_int_eq(ev[6].kind, 'c');
	ck_assert_uint_eq(A.nwaits, 0);
}
END_TEST

/* A conversion waits for every other holder: cycles through it. */
START_TEST(convert_closes_cycles)
{
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&A, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &A, "x", LT_EXCLUSIVE);
	step_is(1, &B, "y", LT_EXCLUSIVE);
	/* And an acquire that closes a cycle through a conversion. */
	locktab_end_owner(lt, &B, 0, now);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	ck_assert_int_eq(chk(&B, "y", LT_MUTEX, LT_SHARED, true),
	    DLM_E_DEADLOCK);
	step_is(0, &B, "y", LT_SHARED);
	step_is(1, &A, "x", LT_EXCLUSIVE);
}
END_TEST

/*
 * A shared waiter that waited for nobody (grants paused) waits for the
 * converter once it converts: the conversion closes that cycle.
 */
START_TEST(convert_closes_cycle_through_waiters_behind)
{
	ck_assert_int_eq(acq(&A, "x", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq(&C, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	locktab_set_window(lt, now + 100, UINT64_MAX);
	ck_assert_int_eq(chk(&C, "x", LT_MUTEX, LT_SHARED, true), LT_QUEUED);
	ck_assert_int_eq(chk(&A, "y", LT_MUTEX, LT_EXCLUSIVE, true),
	    LT_QUEUED);
	ck_assert_int_eq(conv(&A, "x", LT_EXCLUSIVE, true, NULL),
	    DLM_E_DEADLOCK);
	ck_assert_uint_eq(cyc.len, 2);
	step_is(0, &A, "y", LT_EXCLUSIVE);
	step_is(1, &C, "x", LT_SHARED);
	locktab_set_window(lt, 0, UINT64_MAX);
	locktab_regrant_all(lt, now);
	check_invariants();
}
END_TEST

/*
 * The oracle for the random run: the wait-for graph built by brute force
 * from the table's lists, with its own conflict rule, and its transitive
 * closure; nothing of waitgraph.c.
 */
enum { R_OWNERS = 8, R_LOCKS = 4 };
static struct lt_owner ro[R_OWNERS];
static const char *rnames[R_LOCKS] = { "p", "q", "r", "s" };
static bool reach[R_OWNERS][R_OWNERS];

static bool
r_conflict(int want, int other)
{
	return !(want == LT_SHARED && other == LT_SHARED);
}

static int
r_idx(const struct lt_owner *o)
{
	ck_assert(o >= ro && o < ro + R_OWNERS);
	return (int)(o - ro);
}

/* Every wait's edges (the checked and the unchecked), then the closure. */
static void
r_closure(void)
{
	memset(reach, 0, sizeof reach);
	for (int k = 0; k < R_LOCKS; k++) {
		struct lt_lock *l = locktab_find(lt, rnames[k], 1);
		const struct lt_wait *w, *v;
		const struct lt_hold *h;

		if (l == NULL)
			continue;
		TAILQ_FOREACH(w, &l->waiters, lock_link) {
			int u = r_idx(w->owner);

			TAILQ_FOREACH(h, &l->holders, lock_link)
				if (h->owner != w->owner && (w->convert ||
				    r_conflict(w->mode, h->mode)))
					reach[u][r_idx(h->owner)] = true;
			for (v = TAILQ_FIRST(&l->waiters); v != w;
			    v = TAILQ_NEXT(v, lock_link))
				if (r_conflict(w->mode, v->mode))
					reach[u][r_idx(v->owner)] = true;
		}
	}
	for (int k = 0; k < R_OWNERS; k++)
		for (int i = 0; i < R_OWNERS; i++)
			if (reach[i][k])
				for (int j = 0; j < R_OWNERS; j++)
					reach[i][j] |= reach[k][j];
}

/* Would i waiting for lock l in mode close a cycle? */
static bool
r_acquire_closes(int i, const struct lt_lock *l, int mode)
{
	const struct lt_hold *h;
	const struct lt_wait *v;

	if (l == NULL)
		return false;
	r_closure();
	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (r_conflict(mode, h->mode) && reach[r_idx(h->owner)][i])
			return true;
	TAILQ_FOREACH(v, &l->waiters, lock_link)
		if (r_conflict(mode, v->mode) && reach[r_idx(v->owner)][i])
			return true;
	return false;
}

/*
 * Would i converting its shared hold of l to exclusive close a cycle: the
 * graph with its new edges (to the other holders; from the shared waiters,
 * which now wait for it) has a cycle through i or one of those waiters.
 */
static bool
r_convert_closes(int i, const struct lt_lock *l)
{
	const struct lt_hold *h;
	const struct lt_wait *v;

	if (TAILQ_FIRST(&l->waiters) != NULL &&
	    TAILQ_FIRST(&l->waiters)->convert)
		return true;
	r_closure();
	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (r_idx(h->owner) != i)
			reach[i][r_idx(h->owner)] = true;
	TAILQ_FOREACH(v, &l->waiters, lock_link)
		if (v->mode == LT_SHARED)
			reach[r_idx(v->owner)][i] = true;
	for (int k = 0; k < R_OWNERS; k++)
		for (int a = 0; a < R_OWNERS; a++)
			if (reach[a][k])
				for (int b = 0; b < R_OWNERS; b++)
					reach[a][b] |= reach[k][b];
	if (reach[i][i])
		return true;
	TAILQ_FOREACH(v, &l->waiters, lock_link)
		if (v->mode == LT_SHARED && reach[i][r_idx(v->owner)])
			return true;
	return false;
}

/*
 * Each step of a reported cycle waits for the next step's owner; cl is
 * the lock of the conversion refused, or NULL for an acquire.
 */
static void
r_cycle_is_real(const struct lt_cycle *c, const struct lt_lock *cl)
{
	ck_assert_uint_ge(c->len, 1);
	ck_assert_uint_le(c->len, R_OWNERS);
	for (uint32_t k = 0; k < c->len; k++) {
		const struct lt_cycle_step *s = &c->steps[k];
		const struct lt_owner *next = c->steps[(k + 1) % c->len].owner;
		const struct lt_hold *h;
		const struct lt_wait *v;
		bool ok = false;

		TAILQ_FOREACH(h, &s->lock->holders, lock_link)
			if (h->owner == next && h->owner != s->owner &&
			    r_conflict(s->mode, h->mode))
				ok = true;
		TAILQ_FOREACH(v, &s->lock->waiters, lock_link) {
			if (v->owner == s->owner)
				break;	/* only those ahead of it */
			if (v->owner == next && r_conflict(s->mode, v->mode))
				ok = true;
		}
		/* A shared waiter behind the conversion waits for it. */
		if (cl != NULL && s->lock == cl && s->mode == LT_SHARED &&
		    next == c->steps[0].owner)
			ok = true;
		if (!ok)
			for (uint32_t j = 0; j < c->len; j++)
				fprintf(stderr, "step %u: %d waits for %.*s "
				    "mode %d\n", j, r_idx(c->steps[j].owner),
				    (int)c->steps[j].lock->namelen,
				    c->steps[j].lock->name, c->steps[j].mode);
		ck_assert_msg(ok, "step %u of a cycle of %u waits for nobody "
		    "it names", k, c->len);
	}
}

/*
 * Random acquires (checked or not), conversions, releases, cancels,
 * forced releases and ends; after every step the invariants (wg_check()
 * among them: no cycle of checked waits), and before every checked
 * acquire and every conversion that queues or is refused DEADLOCK, the
 * oracle's word on whether it closes a cycle.
 */
START_TEST(random_deadlocks_match_brute_force)
{
	unsigned seed = 4242;
	int deadlocks = 0, queued = 0, converted = 0;

	for (int i = 0; i < R_OWNERS; i++)
		locktab_owner_init(&ro[i]);
	for (int step = 0; step < 30000; step++) {
		int who = rand_r(&seed) % R_OWNERS, op = rand_r(&seed) % 20;
		int k = rand_r(&seed) % R_LOCKS;
		const char *name = rnames[k];
		enum lt_kind kind = k == 2 ? LT_RLOCK : LT_MUTEX;
		enum lt_mode mode = rand_r(&seed) % 3 == 0 ? LT_SHARED :
		    LT_EXCLUSIVE;
		struct lt_lock *l = locktab_find(lt, name, 1);
		struct lt_hold *h;
		struct lt_wait *w;
		uint32_t left;
		bool oracle = false;
		int rc;

		now++;
		nev = 0;
		memset(&cyc, 0, sizeof cyc);
		if (op < 8) {
			bool check = op != 0;
			struct lt_want want = { .kind = kind, .mode = mode,
			    .may_wait = true, .udata = &ro[who],
			    .deadlock_check = check, .cycle = &cyc };

			if (check)
				oracle = r_acquire_closes(who, l, mode);
			rc = locktab_acquire(lt, &ro[who], name, 1, &want, now,
			    &h, &w);
			if (check && (rc == LT_QUEUED ||
			    rc == DLM_E_DEADLOCK)) {
				ck_assert_msg(oracle == (rc == DLM_E_DEADLOCK),
				    "step %d: detector %d, brute force %d",
				    step, rc, oracle);
				queued++;
			}
			if (rc == DLM_E_DEADLOCK) {
				ck_assert(check);
				r_cycle_is_real(&cyc, NULL);
				ck_assert_ptr_eq(cyc.steps[0].owner, &ro[who]);
				deadlocks++;
			}
		} else if (op < 11) {
			struct lt_convert cv = { .mode = mode,
			    .may_wait = rand_r(&seed) % 4 != 0,
			    .udata = &ro[who], .cycle = &cyc };

			h = l != NULL ? locktab_hold_of(l, &ro[who]) : NULL;
			if (h != NULL && h->mode == LT_SHARED &&
			    mode == LT_EXCLUSIVE)
				oracle = r_convert_closes(who, l);
			rc = locktab_convert(lt, &ro[who], name, 1, &cv, now,
			    &h, &w);
			if (rc == LT_QUEUED || rc == DLM_E_DEADLOCK)
				ck_assert_msg(oracle == (rc == DLM_E_DEADLOCK),
				    "step %d: convert %d, brute force %d",
				    step, rc, oracle);
			if (rc == DLM_E_DEADLOCK) {
				r_cycle_is_real(&cyc, l);
				ck_assert_ptr_eq(cyc.steps[0].owner, &ro[who]);
				deadlocks++;
			}
			if (rc == LT_GRANTED)
				converted++;
		} else if (op < 16)
			(void)locktab_release(lt, &ro[who], name, 1, now,
			    &left);
		else if (op < 18 && LIST_FIRST(&ro[who].waits) != NULL)
			locktab_cancel(lt, LIST_FIRST(&ro[who].waits), now);
		else if (op < 19)
			(void)locktab_force_release(lt, name, 1, &ro[who],
			    DLM_LOST_FORCED, now);
		else
			locktab_end_owner(lt, &ro[who], DLM_LOST_EXPIRED, now);
		check_invariants();
		for (k = 0; k < R_LOCKS; k++)
			if ((l = locktab_find(lt, rnames[k], 1)) != NULL &&
			    l->mode == LT_EXCLUSIVE)
				ck_assert_uint_le(l->nholders, 1);
	}
	/* The run meant something: cycles were found and waits made. */
	ck_assert_int_gt(deadlocks, 1000);
	ck_assert_int_gt(queued, 3000);
	ck_assert_int_gt(converted, 200);
	for (int i = 0; i < R_OWNERS; i++)
		locktab_end_owner(lt, &ro[i], 0, now);
	check_invariants();
}
END_TEST

static uint64_t
delays_due(void)
{
	uint64_t next = locktab_delays_due(lt, now);

	check_invariants();
	return next;
}

/* A forced release of a hold with a delay grants nobody for that long. */
START_TEST(delay_after_force_release)
{
	struct lt_lock *l;
	int tb = 2, tc = 3;

	now = 10;
	ck_assert_int_eq(acq_opt(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    100, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_hold_of(locktab_find(lt, "x", 1),
	    &A)->lock_delay, 100);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true, &tb, NULL),
	    LT_QUEUED);
	now = 20;
	ck_assert_uint_eq(locktab_force_release(lt, "x", 1, NULL,
	    DLM_LOST_FORCED, now), 1);
	check_invariants();
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[0].kind, 'r');
	ck_assert_int_eq(ev[1].kind, 'd');
	ck_assert_uint_eq(ev[1].token, 120);
	l = locktab_find(lt, "x", 1);
	ck_assert_uint_eq(locktab_delay_left(l, now), 100);
	/* A try fails, an acquire queues, the waiter keeps waiting. */
	ck_assert_int_eq(acq(&C, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true, &tc, NULL),
	    LT_QUEUED);
	now = 119;
	ck_assert_uint_eq(delays_due(), 120);
	locktab_regrant(lt, l, now);
	ck_assert_int_eq(nev, 2);
	ck_assert_uint_eq(locktab_delay_left(l, now), 1);
	now = 120;
	ck_assert_uint_eq(delays_due(), 0);
	ck_assert_int_eq(nev, 3);
	ck_assert_int_eq(ev[2].kind, 'g');
	ck_assert_ptr_eq(ev[2].udata, &tb);
	ck_assert_uint_eq(locktab_delay_left(l, now), 0);
	ck_assert_uint_eq(l->delayed_until, 0);
}
END_TEST

/* A clean end never delays: release, reset, bye. */
START_TEST(delay_not_after_clean_release)
{
	uint32_t left;
	int tb = 2;

	ck_assert_int_eq(acq_opt(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    1000, false, NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true, &tb, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(rel(&A, "x", &left), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');

	ck_assert_int_eq(acq_opt(&C, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    1000, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_release_owner(lt, &C, now), 1);
	ck_assert_int_eq(acq_opt(&D, "z", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    1000, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_end_owner(lt, &D, 0, now), 1);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	ck_assert_ptr_null(locktab_find(lt, "y", 1));
	ck_assert_ptr_null(locktab_find(lt, "z", 1));
	ck_assert_int_eq(acq(&A, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
}
END_TEST

/*
 * An owner ended with a reason (expiry, reset, a dropped connection):
 * the lock is kept while delayed, with nobody on it, and freed after.
 */
START_TEST(delay_keeps_an_empty_lock)
{
	struct lt_stats st;

	now = 1000;
	ck_assert_int_eq(acq_opt(&A, "x", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    50, false, NULL), LT_GRANTED);
	/* Without a delay asked, the lock is freed at once. */
	ck_assert_int_eq(acq(&A, "y", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now), 2);
	check_invariants();
	ck_assert_ptr_null(locktab_find(lt, "y", 1));
	ck_assert_ptr_nonnull(locktab_find(lt, "x", 1));
	locktab_stats(lt, &st);
	ck_assert_uint_eq(st.delays, 1);
	ck_assert_uint_eq(st.delayed, 1);
	ck_assert_uint_eq(st.locks, 1);
	now = 1049;
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_uint_eq(delays_due(), 1050);
	now = 1050;
	/* Over, though not yet ended by the caller: granted at once. */
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(rel(&B, "x", NULL), 0);
	ck_assert_ptr_nonnull(locktab_find(lt, "x", 1));
	ck_assert_uint_eq(delays_due(), 0);
	ck_assert_ptr_null(locktab_find(lt, "x", 1));
	locktab_stats(lt, &st);
	ck_assert_uint_eq(st.delayed, 0);
	ck_assert_uint_eq(st.locks, 0);
}
END_TEST

/* A lock kept only for its delay is any kind the next acquire asks. */
START_TEST(delay_empty_lock_takes_any_kind)
{
	now = 1000;
	ck_assert_int_eq(acq_opt(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    50, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now), 1);
	check_invariants();
	/* An rlock now: it waits out the delay, no KIND_MISMATCH. */
	ck_assert_int_eq(acq(&B, "x", LT_RLOCK, LT_SHARED, true, NULL, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(locktab_find(lt, "x", 1)->kind, LT_RLOCK);
	now = 1050;
	nev = 0;
	ck_assert_uint_eq(delays_due(), 0);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'g');
	ck_assert_int_eq(rel(&B, "x", NULL), 0);
}
END_TEST

/* Shared holders: the longest delay wins; one never shortens another. */
START_TEST(delay_extends_never_shortens)
{
	struct lt_lock *l;
	int td = 4;

	now = 100;
	ck_assert_int_eq(acq_opt(&A, "s", LT_MUTEX, LT_SHARED, false, NULL,
	    300, false, NULL), LT_GRANTED);
	ck_assert_int_eq(acq_opt(&B, "s", LT_MUTEX, LT_SHARED, false, NULL,
	    50, false, NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&C, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	l = locktab_find(lt, "s", 1);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_RESET, now), 1);
	ck_assert_uint_eq(l->delayed_until, 400);
	now = 200;
	ck_assert_uint_eq(locktab_end_owner(lt, &B, DLM_LOST_RESET, now), 1);
	check_invariants();
	ck_assert_uint_eq(l->delayed_until, 400);
	ck_assert_uint_eq(l->delayed_from, 100);
	/* A sharer still holding does not let another sharer in. */
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_SHARED, true, &td, NULL),
	    LT_QUEUED);
	now = 399;
	ck_assert_uint_eq(delays_due(), 400);
	now = 450;
	ck_assert_uint_eq(delays_due(), 0);
	ck_assert_int_eq(ev[nev - 1].kind, 'g');
	ck_assert_ptr_eq(ev[nev - 1].udata, &td);
	/* A later delay after the first is over starts anew. */
	ck_assert_uint_eq(locktab_force_release(lt, "s", 1, &D,
	    DLM_LOST_FORCED, now), 1);
	ck_assert_uint_eq(l->delayed_until, 0);	/* D asked for none */
}
END_TEST

/* A reentrant acquire raises the hold's delay, never lowers it. */
START_TEST(delay_reentrant_takes_the_larger)
{
	struct lt_hold *h;

	ck_assert_int_eq(acq_opt(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    20, false, NULL), LT_GRANTED);
	h = locktab_hold_of(locktab_find(lt, "r", 1), &A);
	ck_assert_int_eq(acq_opt(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    70, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(h->lock_delay, 70);
	ck_assert_int_eq(acq_opt(&A, "r", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    0, false, NULL), LT_GRANTED);
	ck_assert_uint_eq(h->lock_delay, 70);
	ck_assert_uint_eq(h->count, 3);
}
END_TEST

/*
 * A waiter granted after a delay keeps its own choices; a hold installed
 * during a delay (a reclaim) is no grant, and options given to it after.
 */
START_TEST(delay_and_install)
{
	struct lt_hold *h;
	int ta = 1;

	now = 100;
	locktab_set_window(lt, 0, 0);
	ck_assert_int_eq(inst(&A, "m", LT_MUTEX, LT_SHARED, 1, 50), LT_GRANTED);
	h = locktab_hold_of(locktab_find(lt, "m", 1), &A);
	locktab_hold_options(lt, h, 30, true);
	check_invariants();
	ck_assert_uint_eq(h->lock_delay, 30);
	ck_assert(h->notify_contended);
	ck_assert_uint_eq(locktab_end_owner(lt, &A, DLM_LOST_EXPIRED, now), 1);
	ck_assert_uint_eq(locktab_find(lt, "m", 1)->delayed_until, 130);
	ck_assert_int_eq(inst(&B, "m", LT_MUTEX, LT_SHARED, 1, 60), LT_GRANTED);
	ck_assert_int_eq(acq_opt(&A, "m", LT_MUTEX, LT_EXCLUSIVE, true, &ta,
	    25, true, NULL), LT_QUEUED);
	locktab_set_window(lt, 0, UINT64_MAX);
	now = 140;
	ck_assert_uint_eq(delays_due(), 0);
	ck_assert_uint_eq(locktab_end_owner(lt, &B, 0, now), 1);
	check_invariants();
	h = locktab_hold_of(locktab_find(lt, "m", 1), &A);
	ck_assert_ptr_nonnull(h);
	ck_assert_uint_eq(h->lock_delay, 25);
	ck_assert(h->notify_contended);
	ck_assert(!h->installed);
}
END_TEST

/* The first waiter tells the holders that asked, once per emptying. */
START_TEST(contended_once_per_queue)
{
	uint64_t ta = 0;
	int tb = 2, tc = 3, td = 4;

	ck_assert_int_eq(acq_opt(&A, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    0, true, &ta), LT_GRANTED);
	ck_assert_int_eq(nev, 0);
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, true, &tb, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'n');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_uint_eq(ev[0].token, ta);
	ck_assert_int_eq(ev[0].reason, 1);
	ck_assert_int_eq(acq(&C, "x", LT_MUTEX, LT_EXCLUSIVE, true, &tc, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 1);
	/* The queue empties; the next waiter is news again. */
	locktab_cancel(lt, wait_of(&B), now);
	check_invariants();
	ck_assert_int_eq(nev, 1);
	locktab_cancel(lt, wait_of(&C), now);
	check_invariants();
	ck_assert_int_eq(acq(&D, "x", LT_MUTEX, LT_EXCLUSIVE, true, &td, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[1].kind, 'n');
	ck_assert_ptr_eq(ev[1].owner, &A);
	/* A try is not a waiter. */
	ck_assert_int_eq(acq(&B, "x", LT_MUTEX, LT_EXCLUSIVE, false, NULL,
	    NULL), DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(nev, 2);
}
END_TEST

/* Sharers each get their own notice, if they asked; others none. */
START_TEST(contended_shared_holders)
{
	int td = 4;

	ck_assert_int_eq(acq_opt(&A, "s", LT_MUTEX, LT_SHARED, false, NULL,
	    0, true, NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "s", LT_MUTEX, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	ck_assert_int_eq(acq_opt(&C, "s", LT_MUTEX, LT_SHARED, false, NULL,
	    0, true, NULL), LT_GRANTED);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->nnotify, 2);
	ck_assert_int_eq(acq(&D, "s", LT_MUTEX, LT_EXCLUSIVE, true, &td, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 2);
	ck_assert_int_eq(ev[0].kind, 'n');
	ck_assert_int_eq(ev[1].kind, 'n');
	ck_assert(ev[0].owner != ev[1].owner);
	ck_assert(ev[0].owner == &A || ev[0].owner == &C);
	ck_assert(ev[1].owner == &A || ev[1].owner == &C);
	/* A holder leaving does not tell the others again. */
	ck_assert_int_eq(rel(&A, "s", NULL), 0);
	ck_assert_uint_eq(locktab_find(lt, "s", 1)->nnotify, 1);
	ck_assert_int_eq(nev, 2);
}
END_TEST

/* A holder converting is not told of contention by its own convert. */
START_TEST(contended_not_by_own_convert)
{
	ck_assert_int_eq(acq_opt(&A, "c", LT_RLOCK, LT_SHARED, false, NULL,
	    0, true, NULL), LT_GRANTED);
	ck_assert_int_eq(acq(&B, "c", LT_RLOCK, LT_SHARED, false, NULL, NULL),
	    LT_GRANTED);
	nev = 0;
	ck_assert_int_eq(conv(&A, "c", LT_EXCLUSIVE, true, NULL), LT_QUEUED);
	for (int i = 0; i < nev; i++)
		ck_assert_int_ne(ev[i].kind, 'n');
	/* Someone else waiting is news. */
	ck_assert_int_eq(acq(&C, "c", LT_RLOCK, LT_EXCLUSIVE, true, NULL,
	    NULL), LT_QUEUED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'n');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_int_eq(ev[0].reason, 1);
}
END_TEST

/*
 * A hold granted with others already waiting behind it is told after its
 * grant; one a reentrant acquire asks for notices, at once.
 */
START_TEST(contended_at_grant_and_reentry)
{
	int tb = 2, tc = 3;

	ck_assert_int_eq(acq(&A, "x", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    NULL), LT_GRANTED);
	ck_assert_int_eq(acq_opt(&B, "x", LT_RLOCK, LT_EXCLUSIVE, true, &tb,
	    0, true, NULL), LT_QUEUED);
	ck_assert_int_eq(acq(&C, "x", LT_RLOCK, LT_EXCLUSIVE, true, &tc, NULL),
	    LT_QUEUED);
	ck_assert_int_eq(nev, 0);
	/* A takes notices on re-entry: two wait, it is told now. */
	ck_assert_int_eq(acq_opt(&A, "x", LT_RLOCK, LT_EXCLUSIVE, false, NULL,
	    0, true, NULL), LT_GRANTED);
	ck_assert_int_eq(nev, 1);
	ck_assert_int_eq(ev[0].kind, 'n');
	ck_assert_ptr_eq(ev[0].owner, &A);
	ck_assert_int_eq(ev[0].reason, 2);
	ck_assert_int_eq(rel(&A, "x", NULL), 0);
	ck_assert_int_eq(rel(&A, "x", NULL), 0);
	ck_assert_int_eq(nev, 3);
	ck_assert_int_eq(ev[1].kind, 'g');
	ck_assert_ptr_eq(ev[1].udata, &tb);
	ck_assert_int_eq(ev[2].kind, 'n');
	ck_assert_ptr_eq(ev[2].owner, &B);
	ck_assert_uint_eq(ev[2].token, ev[1].token);
	ck_assert_int_eq(ev[2].reason, 1);
	/* Granted with nobody behind: nothing to say. */
	ck_assert_int_eq(rel(&B, "x", NULL), 0);
	ck_assert_int_eq(nev, 4);
	ck_assert_int_eq(ev[3].kind, 'g');
}
END_TEST

static Suite *
locktab_suite(void)
{
	Suite *s = suite_create("locktab");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, every_hold_end_is_reported);
	tcase_add_test(tc, mutex_excludes);
	tcase_add_test(tc, mutex_not_reentrant);
	tcase_add_test(tc, rlock_counts);
	tcase_add_test(tc, rlock_no_upgrade);
	tcase_add_test(tc, shared_and_exclusive);
	tcase_add_test(tc, shared_waiters_granted_together);
	tcase_add_test(tc, fifo_order);
	tcase_add_test(tc, cancel_lets_shared_through);
	tcase_add_test(tc, cancel_last_waiter_frees_nothing_held);
	tcase_add_test(tc, end_owner_in_one_step);
	tcase_add_test(tc, end_owner_never_grants_itself);
	tcase_add_test(tc, tokens_increase);
	tcase_add_test(tc, kind_mismatch);
	tcase_add_test(tc, release_by_non_holder);
	tcase_add_test(tc, waiting_twice_refused);
	tcase_add_test(tc, expired_waiter_passed_over);
	tcase_add_test(tc, force_release_all_or_one);
	tcase_add_test(tc, semaphore_counts_permits);
	tcase_add_test(tc, semaphore_fifo_head_not_passed);
	tcase_add_test(tc, semaphore_cancel_head_lets_others_in);
	tcase_add_test(tc, semaphore_capacity_mismatch);
	tcase_add_test(tc, semaphore_bad_requests);
	tcase_add_test(tc, semaphore_not_reentrant);
	tcase_add_test(tc, semaphore_partial_release);
	tcase_add_test(tc, semaphore_owner_end_returns_permits);
	tcase_add_test(tc, release_owner_keeps_waits);
	tcase_add_test(tc, ordered_listing);
	tcase_add_test(tc, binary_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("values and changes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, value_goes_with_the_hold);
	tcase_add_test(tc, changes_reported_once_per_operation);
	tcase_add_test(tc, random_changes_reported_exactly);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, limits_holds_and_waits);
	suite_add_tcase(s, tc);

	tc = tcase_create("cluster");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, token_range_exhausted_waits);
	tcase_add_test(tc, grant_window);
	tcase_add_test(tc, install_keeps_token_and_count);
	tcase_add_test(tc, install_conflict_goes_to_the_higher_token);
	tcase_add_test(tc, install_floor_remembers_displaced_claims);
	tcase_add_test(tc, install_before_waiters_are_served);
	tcase_add_test(tc, install_semaphore_claims);
	tcase_add_test(tc, install_semaphore_claims_that_never_met);
	tcase_add_test(tc, install_semaphore_grants_waiters);
	suite_add_tcase(s, tc);

	tc = tcase_create("delay");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, delay_after_force_release);
	tcase_add_test(tc, delay_not_after_clean_release);
	tcase_add_test(tc, delay_keeps_an_empty_lock);
	tcase_add_test(tc, delay_extends_never_shortens);
	tcase_add_test(tc, delay_reentrant_takes_the_larger);
	tcase_add_test(tc, delay_and_install);
	tcase_add_test(tc, delay_empty_lock_takes_any_kind);
	suite_add_tcase(s, tc);

	tc = tcase_create("contended");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, contended_once_per_queue);
	tcase_add_test(tc, contended_shared_holders);
	tcase_add_test(tc, contended_at_grant_and_reentry);
	tcase_add_test(tc, contended_not_by_own_convert);
	suite_add_tcase(s, tc);

	tc = tcase_create("deadlock");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, deadlock_two_party);
	tcase_add_test(tc, deadlock_three_party);
	tcase_add_test(tc, deadlock_shared_and_exclusive);
	tcase_add_test(tc, deadlock_through_waiters_ahead);
	tcase_add_test(tc, deadlock_ignores_expired_owners);
	tcase_add_test(tc, refused_cycles_checked_by_brute_force);
	suite_add_tcase(s, tc);

	tc = tcase_create("convert");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, convert_down_lets_shared_in);
	tcase_add_test(tc, convert_up_alone_at_once);
	tcase_add_test(tc, convert_up_waits_ahead_of_waiters);
	tcase_add_test(tc, convert_two_converters_deadlock);
	tcase_add_test(tc, convert_refusals);
	tcase_add_test(tc, convert_cancel_and_hold_end);
	tcase_add_test(tc, convert_closes_cycles);
	tcase_add_test(tc, convert_closes_cycle_through_waiters_behind);
	suite_add_tcase(s, tc);

	tc = tcase_create("random");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_operations_keep_invariants);
	tcase_add_test(tc, random_deadlocks_match_brute_force);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(locktab_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
