/* The lock table: see locktab.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "locktab.h"
#include "proto.h"
#include "waitgraph.h"
#include "xmalloc.h"

struct locktab {
	struct lt_tree		 tree;
	const struct lt_ops	*ops;
	void			*arg;
	struct lt_limits	 limits;
	struct lt_stats		 stats;
	uint64_t		 next_token;
	uint64_t		 token_end;	/* 0: no end */
	uint64_t		 grant_from;	/* grants only in [from, until) */
	uint64_t		 grant_until;
	/* cppcheck-suppress unusedStructMember ; used through TAILQ macros */
	TAILQ_HEAD(, lt_lock)	 dirty;
	/* Locks with a lock-delay, by its end: see struct lt_lock. */
	/* cppcheck-suppress unusedStructMember ; used through RB macros */
	RB_HEAD(lt_delays, lt_lock) delays;
	struct waitgraph	 wg;		/* deadlock detection's */
	/*
	 * locktab_set_verify(): each refused cycle is checked by brute force,
	 * and the first that is not one is what locktab_check() reports.
	 */
	bool			 verify;
	const char		*verify_error;
};

static void	lt_convert_drop(struct locktab *, const struct lt_hold *);
static bool	lt_convert_step(struct locktab *, struct lt_lock *,
		    struct lt_wait *, uint64_t);
static const char *lt_check_converts(struct locktab *, struct lt_lock *,
		    uint64_t);

static int
lt_cmp(const struct lt_lock *a, const struct lt_lock *b)
{
	size_t n = a->namelen < b->namelen ? a->namelen : b->namelen;
	int c = memcmp(a->name, b->name, n);

	if (c != 0)
		return c;
	return (a->namelen > b->namelen) - (a->namelen < b->namelen);
}

/* libbsd's tree.h has no RB_GENERATE_STATIC; not every function is used. */
RB_PROTOTYPE_INTERNAL(lt_tree, lt_lock, entry, lt_cmp,
    __attribute__((__unused__)) static)
RB_GENERATE_INTERNAL(lt_tree, lt_lock, entry, lt_cmp,
    __attribute__((__unused__)) static)

/* A copy of a value, or NULL for none (0 bytes). */
static void *
lt_value_dup(const void *value, size_t len)
{
	void *p;

	if (value == NULL || len == 0)
		return NULL;
	p = xmalloc(len);
	memcpy(p, value, len);
	return p;
}

static void
lt_wait_free(struct lt_wait *w)
{
	free(w->value);
	free(w);
}

/* l's holders changed: ops->changed hears of it when lt_report() runs. */
static void
lt_note_change(struct lt_lock *l)
{
	l->changed = 1;
}

/*
 * An operation is done with l: tell ops->changed, once, if its holders
 * changed. Called before l may be freed, after every grant it allowed.
 */
static void
lt_report(struct locktab *lt, struct lt_lock *l)
{
	if (!l->changed)
		return;
	l->changed = 0;
	if (lt->ops->changed != NULL)
		lt->ops->changed(lt->arg, l);
}

/* See struct locktab's verify. */
static void
lt_verify_refusal(struct locktab *lt, const struct lt_cycle *cycle,
    const struct lt_lock *converting)
{
	if (lt->verify && cycle != NULL && lt->verify_error == NULL &&
	    !wg_cycle_real(cycle, converting))
		lt->verify_error = "a DEADLOCK named a cycle that is not there";
}

void
locktab_set_verify(struct locktab *lt, bool on)
{
	lt->verify = on;
}

/* The delay index's order: by the delay's end, then by address. */
static int
lt_delay_cmp(const struct lt_lock *a, const struct lt_lock *b)
{
	if (a->delayed_until != b->delayed_until)
		return a->delayed_until < b->delayed_until ? -1 : 1;
	return ((uintptr_t)a > (uintptr_t)b) - ((uintptr_t)a < (uintptr_t)b);
}

RB_PROTOTYPE_INTERNAL(lt_delays, lt_lock, delay_entry, lt_delay_cmp,
    __attribute__((__unused__)) static)
RB_GENERATE_INTERNAL(lt_delays, lt_lock, delay_entry, lt_delay_cmp,
    __attribute__((__unused__)) static)

struct locktab *
locktab_new(uint64_t first_token, const struct lt_ops *ops, void *arg)
{
	struct locktab *lt = xcalloc(1, sizeof *lt);

	RB_INIT(&lt->tree);
	TAILQ_INIT(&lt->dirty);
	RB_INIT(&lt->delays);
	lt->ops = ops;
	lt->arg = arg;
	lt->next_token = first_token != 0 ? first_token : 1;
	lt->grant_until = UINT64_MAX;
	return lt;
}

void
locktab_free(struct locktab *lt)
{
	struct lt_lock *l, *tmp;

	if (lt == NULL)
		return;
	/* Owners should have been ended; free what is left regardless. */
	RB_FOREACH_SAFE(l, lt_tree, &lt->tree, tmp) {
		struct lt_hold *h;
		struct lt_wait *w;

		while ((h = TAILQ_FIRST(&l->holders)) != NULL) {
			TAILQ_REMOVE(&l->holders, h, lock_link);
			LIST_REMOVE(h, owner_link);
			h->owner->nholds--;
			free(h->value);
			free(h);
		}
		while ((w = TAILQ_FIRST(&l->waiters)) != NULL) {
			TAILQ_REMOVE(&l->waiters, w, lock_link);
			LIST_REMOVE(w, owner_link);
			w->owner->nwaits--;
			lt_wait_free(w);
		}
		RB_REMOVE(lt_tree, &lt->tree, l);
		free(l);
	}
	wg_free(&lt->wg);
	free(lt);
}

void
locktab_set_limits(struct locktab *lt, const struct lt_limits *limits)
{
	lt->limits = *limits;
}

void
locktab_owner_init(struct lt_owner *o)
{
	memset(o, 0, sizeof *o);
	LIST_INIT(&o->holds);
	LIST_INIT(&o->waits);
}

/*
 * Look a name up: exactly (RB_FIND) or the first name >= it (RB_NFIND). The
 * tree compares whole lt_lock objects with the name inline, so the key is
 * built on the stack for ordinary names and on the heap for long ones.
 */
static struct lt_lock *
lt_lookup(struct locktab *lt, const char *name, size_t namelen, bool nfind)
{
	union {
		struct lt_lock	l;
		/* cppcheck-suppress unusedStructMember ; room for the name */
		char		space[sizeof(struct lt_lock) + 256];
	} stack_key;
	struct lt_lock *key = &stack_key.l, *found;

	if (namelen > UINT16_MAX)
		return NULL;
	if (namelen > sizeof stack_key - sizeof(struct lt_lock))
		key = xmalloc(sizeof *key + namelen);
	key->namelen = (uint16_t)namelen;
	memcpy(key->name, name, namelen);
	found = nfind ? RB_NFIND(lt_tree, &lt->tree, key) :
	    RB_FIND(lt_tree, &lt->tree, key);
	if (key != &stack_key.l)
		free(key);
	return found;
}

struct lt_lock *
locktab_find(struct locktab *lt, const char *name, size_t namelen)
{
	return lt_lookup(lt, name, namelen, false);
}

struct lt_lock *
locktab_first_from(struct locktab *lt, const char *key, size_t keylen)
{
	if (keylen == 0)
		return RB_MIN(lt_tree, &lt->tree);
	if (keylen > UINT16_MAX)
		keylen = UINT16_MAX;
	return lt_lookup(lt, key, keylen, true);
}

struct lt_lock *
locktab_next(struct locktab *lt, struct lt_lock *l)
{
	(void)lt;
	return RB_NEXT(lt_tree, &lt->tree, l);
}

struct lt_hold *
locktab_hold_of(struct lt_lock *l, struct lt_owner *o)
{
	struct lt_hold *h;

	/* Walk whichever list is shorter: a hot shared lock or a busy owner. */
	if (l->nholders <= o->nholds) {
		TAILQ_FOREACH(h, &l->holders, lock_link)
			if (h->owner == o)
				return h;
	} else {
		LIST_FOREACH(h, &o->holds, owner_link)
			if (h->lock == l)
				return h;
	}
	return NULL;
}

static struct lt_wait *
lt_wait_of(struct lt_lock *l, struct lt_owner *o)
{
	struct lt_wait *w;

	if (l->nwaiters <= o->nwaits) {
		TAILQ_FOREACH(w, &l->waiters, lock_link)
			if (w->owner == o)
				return w;
	} else {
		LIST_FOREACH(w, &o->waits, owner_link)
			if (w->lock == l)
				return w;
	}
	return NULL;
}

struct lt_hold *
locktab_hold_by_token(struct lt_lock *l, uint64_t token)
{
	struct lt_hold *h;

	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (h->token == token)
			return h;
	return NULL;
}

static bool
lt_compatible(const struct lt_lock *l, enum lt_mode mode)
{
	if (l->nholders == 0)
		return true;
	return l->mode == LT_SHARED && mode == LT_SHARED;
}

/*
 * Whether a waiter can be granted as far as the lock's holders go: a
 * semaphore's when its permits fit in what is free, another's when its mode
 * is compatible.
 */
static bool
lt_wait_fits(const struct lt_lock *l, const struct lt_wait *w)
{
	if (l->kind == LT_SEMAPHORE)
		return (uint64_t)l->in_use + w->permits <= l->capacity;
	return lt_compatible(l, w->mode);
}

/* May a new hold be made now: inside the window, with a token left? */
static bool
lt_may_grant(const struct locktab *lt, uint64_t now)
{
	return now >= lt->grant_from && now < lt->grant_until &&
	    (lt->token_end == 0 || lt->next_token < lt->token_end);
}

/* Whether a lock-delay keeps lock l from being granted at now. */
static bool
lt_lock_delayed(const struct lt_lock *l, uint64_t now)
{
	return l->delayed_until > now;
}

static bool
lt_owner_expired(const struct lt_owner *o, uint64_t now)
{
	return o->deadline != 0 && o->deadline <= now;
}

/* Replace h's value with a copy of value (none for NULL or 0 bytes). */
static void
lt_set_value(struct lt_hold *h, const void *value, size_t len)
{
	free(h->value);
	h->value = lt_value_dup(value, len);
	h->value_len = h->value != NULL ? (uint32_t)len : 0;
	lt_note_change(h->lock);
}

static struct lt_hold *
lt_hold_new(struct locktab *lt, struct lt_lock *l, struct lt_owner *o,
    enum lt_mode mode, uint64_t token, uint32_t count, uint64_t now)
{
	struct lt_hold *h = xcalloc(1, sizeof *h);

	h->lock = l;
	h->owner = o;
	h->token = token;
	h->since = now;
	h->count = count;
	h->mode = (uint8_t)mode;
	TAILQ_INSERT_TAIL(&l->holders, h, lock_link);
	LIST_INSERT_HEAD(&o->holds, h, owner_link);
	l->nholders++;
	l->mode = (uint8_t)mode;
	o->nholds++;
	lt->stats.holds++;
	lt_note_change(l);
	return h;
}

static void
lt_hold_free(struct locktab *lt, struct lt_hold *h, uint64_t now)
{
	struct lt_lock *l = h->lock;

	lt_convert_drop(lt, h);
	if (lt->ops->ended != NULL)
		lt->ops->ended(lt->arg, h, now);
	TAILQ_REMOVE(&l->holders, h, lock_link);
	LIST_REMOVE(h, owner_link);
	l->nholders--;
	l->in_use -= h->permits;	/* a semaphore's permits come back */
	if (h->notify_contended)
		l->nnotify--;
	h->owner->nholds--;
	lt->stats.holds--;
	lt_note_change(l);
	free(h->value);
	free(h);
}

/*
 * The choices of an acquire, on a new hold or added to a hold the owner
 * has (a reentrant acquire): the larger delay, and notices once asked.
 */
static void
lt_hold_set_options(struct lt_hold *h, uint32_t lock_delay,
    bool notify_contended)
{
	if (lock_delay > h->lock_delay)
		h->lock_delay = lock_delay;
	if (notify_contended && !h->notify_contended) {
		h->notify_contended = true;
		h->lock->nnotify++;
	}
}

/*
 * How many wait for h's lock other than h's own conversion: a holder
 * converting is not contended by itself.
 */
static uint32_t
lt_others_waiting(const struct lt_hold *h)
{
	return h->lock->nwaiters - (locktab_converting(h) != NULL);
}

/*
 * Tell each holder that asked and was not told yet that the lock has
 * waiters. No cost on a lock whose holders never asked.
 */
static void
lt_contention(struct locktab *lt, struct lt_lock *l)
{
	struct lt_hold *h;

	if (l->nwaiters == 0 || l->nnotify == 0)
		return;
	TAILQ_FOREACH(h, &l->holders, lock_link) {
		uint32_t n = lt_others_waiting(h);

		if (!h->notify_contended || h->contended_told || n == 0)
			continue;
		h->contended_told = true;
		if (lt->ops->contended != NULL)
			lt->ops->contended(lt->arg, h, n);
	}
}

/* The queue emptied: the next waiter is news to every holder again. */
static void
lt_contention_over(struct lt_lock *l)
{
	struct lt_hold *h;

	TAILQ_FOREACH(h, &l->holders, lock_link)
		h->contended_told = false;
}

/*
 * A hold ends without its holder letting go (it is revoked): if it asked
 * for a lock-delay, nothing is granted on its lock for that long from now,
 * so that what the dead holder still had in flight reaches the resource
 * first. A delay already pending is extended, never shortened.
 */
static void
lt_hold_delay(struct locktab *lt, struct lt_hold *h, uint64_t now)
{
	struct lt_lock *l = h->lock;
	uint64_t until = now + h->lock_delay;

	if (h->lock_delay == 0)
		return;
	lt->stats.delays++;
	if (lt_lock_delayed(l, now) && until <= l->delayed_until)
		return;
	if (l->delayed_until != 0)
		RB_REMOVE(lt_delays, &lt->delays, l);
	else
		lt->stats.delayed++;
	if (!lt_lock_delayed(l, now))
		l->delayed_from = now;
	l->delayed_until = until;
	RB_INSERT(lt_delays, &lt->delays, l);
	if (lt->ops->delayed != NULL)
		lt->ops->delayed(lt->arg, l, until);
}

static void
lt_wait_unlink(struct locktab *lt, struct lt_wait *w)
{
	TAILQ_REMOVE(&w->lock->waiters, w, lock_link);
	LIST_REMOVE(w, owner_link);
	w->lock->nwaiters--;
	w->owner->nwaits--;
	lt->stats.waits--;
	if (w->lock->nwaiters == 0 && w->lock->nnotify != 0)
		lt_contention_over(w->lock);
}

/*
 * Free a lock nobody holds or awaits, unless a lock-delay keeps it (so
 * that a later acquire sees the delay): locktab_delays_due() frees it.
 */
static void
lt_lock_maybe_free(struct locktab *lt, struct lt_lock *l)
{
	if (l->nholders != 0 || l->nwaiters != 0 || l->dirty ||
	    l->delayed_until != 0)
		return;
	RB_REMOVE(lt_tree, &lt->tree, l);
	lt->stats.locks--;
	free(l);
}

/* A semaphore's new hold takes its permits. */
static void
lt_hold_take_permits(struct lt_lock *l, struct lt_hold *h, uint32_t permits)
{
	h->permits = permits;
	l->in_use += permits;
}

/*
 * Grant the head of the queue, and those behind it while they are compatible,
 * in strict FIFO order: a shared waiter behind an exclusive one waits too,
 * and a semaphore's small request behind a large one that does not fit.
 * A waiter whose owner's lease has run out is passed over (its owner is about
 * to be expired), never granted.
 */
static void
lt_grant_pass(struct locktab *lt, struct lt_lock *l, uint64_t now)
{
	struct lt_wait *w, *next;

	for (w = TAILQ_FIRST(&l->waiters); w != NULL; w = next) {
		struct lt_hold *h;

		next = TAILQ_NEXT(w, lock_link);
		if (lt_owner_expired(w->owner, now))
			continue;
		if (w->convert) {
			if (!lt_convert_step(lt, l, w, now))
				break;
			continue;
		}
		if (!lt_wait_fits(l, w) || !lt_may_grant(lt, now) ||
		    lt_lock_delayed(l, now))
			break;
		lt_wait_unlink(lt, w);
		h = lt_hold_new(lt, l, w->owner, w->mode, lt->next_token++, 1,
		    now);
		lt_hold_take_permits(l, h, w->permits);
		/* The wait's value becomes the hold's. */
		h->value = w->value;
		h->value_len = w->value_len;
		w->value = NULL;
		lt_hold_set_options(h, w->lock_delay, w->notify_contended);
		lt->ops->granted(lt->arg, w, h);
		lt_wait_free(w);
	}
	/* Whoever holds now, granted here or before, and others wait. */
	lt_contention(lt, l);
}

static void
lt_mark_dirty(struct locktab *lt, struct lt_lock *l)
{
	if (!l->dirty) {
		l->dirty = 1;
		TAILQ_INSERT_TAIL(&lt->dirty, l, dirty_link);
	}
}

static void
lt_settle_dirty(struct locktab *lt, uint64_t now)
{
	struct lt_lock *l;

	while ((l = TAILQ_FIRST(&lt->dirty)) != NULL) {
		TAILQ_REMOVE(&lt->dirty, l, dirty_link);
		l->dirty = 0;
		lt_grant_pass(lt, l, now);
		lt_report(lt, l);
		lt_lock_maybe_free(lt, l);
	}
}

/* A lock nobody holds or awaits yet, in the index. */
static struct lt_lock *
lt_lock_new(struct locktab *lt, const char *name, size_t namelen,
    enum lt_kind kind)
{
	struct lt_lock *l = xcalloc(1, sizeof *l + namelen);

	TAILQ_INIT(&l->holders);
	TAILQ_INIT(&l->waiters);
	l->kind = (uint8_t)kind;
	l->namelen = (uint16_t)namelen;
	memcpy(l->name, name, namelen);
	RB_INSERT(lt_tree, &lt->tree, l);
	lt->stats.locks++;
	return l;
}

/*
 * A semaphore's request, checked: its permits (0 means 1) into *permits.
 * Other kinds ask for no permits.
 */
static int
lt_want_permits(const struct lt_want *want, uint32_t *permits)
{
	*permits = 0;
	if (want->kind != LT_SEMAPHORE)
		return 0;
	if (want->capacity == 0 || want->capacity > LT_CAPACITY_MAX ||
	    want->permits > want->capacity || want->mode != LT_EXCLUSIVE)
		return DLM_E_BAD_REQUEST;
	*permits = want->permits != 0 ? want->permits : 1;
	return 0;
}

/* Whether a request of this mode or permits fits the lock's holders now. */
static bool
lt_want_fits(const struct lt_lock *l, enum lt_mode mode, uint32_t permits)
{
	if (l->kind == LT_SEMAPHORE)
		return (uint64_t)l->in_use + permits <= l->capacity;
	return lt_compatible(l, mode);
}

int
locktab_acquire(struct locktab *lt, struct lt_owner *o, const char *name,
    size_t namelen, const struct lt_want *want, uint64_t now,
    struct lt_hold **hold, struct lt_wait **wait)
{
	enum lt_kind kind = want->kind;
	enum lt_mode mode = want->mode;
	struct lt_lock *l;
	struct lt_wait *w;
	uint32_t permits;
	bool grantable;

	*hold = NULL;
	*wait = NULL;
	if (namelen == 0 || namelen > UINT16_MAX ||
	    lt_want_permits(want, &permits) != 0 ||
	    want->value_len > UINT32_MAX)
		return DLM_E_BAD_REQUEST;
	l = locktab_find(lt, name, namelen);
	if (l != NULL) {
		struct lt_hold *h;

		/*
		 * Kept only for a lock-delay: nobody holds or awaits it, so
		 * it is whatever the next acquire asks for, after the delay.
		 */
		if (l->nholders == 0 && l->nwaiters == 0) {
			l->kind = (uint8_t)kind;
			l->capacity = kind == LT_SEMAPHORE ? want->capacity : 0;
		}
		if (l->kind != kind || (kind == LT_SEMAPHORE &&
		    l->capacity != want->capacity))
			return DLM_E_KIND_MISMATCH;
		if ((h = locktab_hold_of(l, o)) != NULL) {
			/* One grant of a semaphore per session, as a mutex. */
			if (kind == LT_MUTEX || kind == LT_SEMAPHORE)
				return DLM_E_ALREADY_HELD;
			/* Upgrading shared to exclusive could deadlock. */
			if (h->mode == LT_SHARED && mode == LT_EXCLUSIVE)
				return DLM_E_ALREADY_HELD;
			if (h->count == UINT32_MAX)
				return DLM_E_LIMIT;
			h->count++;
			lt_hold_set_options(h, want->lock_delay_ms,
			    want->notify_contended);
			lt_contention(lt, l);
			*hold = h;
			return LT_GRANTED;
		}
		if (lt_wait_of(l, o) != NULL)
			return DLM_E_ALREADY_HELD;
		grantable = l->nwaiters == 0 && lt_want_fits(l, mode, permits);
	} else
		grantable = true;
	/* Free but not grantable now: it waits like any other acquire. */
	if (grantable && (!lt_may_grant(lt, now) ||
	    (l != NULL && lt_lock_delayed(l, now))))
		grantable = false;

	if (grantable) {
		if (lt->limits.max_holds != 0 &&
		    o->nholds + o->nwaits >= lt->limits.max_holds)
			return DLM_E_LIMIT;
	} else {
		if (!want->may_wait)
			return DLM_E_WOULD_BLOCK;
		if ((lt->limits.max_waits != 0 &&
		    o->nwaits >= lt->limits.max_waits) ||
		    (lt->limits.max_holds != 0 &&
		    o->nholds + o->nwaits >= lt->limits.max_holds))
			return DLM_E_LIMIT;
		/* No cycle without another wait: nothing to search then. */
		if (want->deadlock_check && l != NULL && lt->stats.waits != 0 &&
		    wg_acquire_closes(&lt->wg, o, l, mode, now, want->cycle)) {
			lt_verify_refusal(lt, want->cycle, NULL);
			return DLM_E_DEADLOCK;
		}
	}

	if (l == NULL) {
		l = lt_lock_new(lt, name, namelen, kind);
		if (kind == LT_SEMAPHORE)
			l->capacity = want->capacity;
	}
	if (grantable) {
		*hold = lt_hold_new(lt, l, o, mode, lt->next_token++, 1, now);
		lt_hold_take_permits(l, *hold, permits);
		lt_set_value(*hold, want->value, want->value_len);
		lt_report(lt, l);
		lt_hold_set_options(*hold, want->lock_delay_ms,
		    want->notify_contended);
		return LT_GRANTED;
	}
	w = xcalloc(1, sizeof *w);
	w->lock = l;
	w->owner = o;
	w->udata = want->udata;
	w->since = now;
	w->mode = (uint8_t)mode;
	w->permits = permits;
	if ((w->value = lt_value_dup(want->value, want->value_len)) != NULL)
		w->value_len = (uint32_t)want->value_len;
	w->lock_delay = want->lock_delay_ms;
	w->notify_contended = want->notify_contended;
	w->checked = want->deadlock_check;
	TAILQ_INSERT_TAIL(&l->waiters, w, lock_link);
	LIST_INSERT_HEAD(&o->waits, w, owner_link);
	l->nwaiters++;
	o->nwaits++;
	lt->stats.waits++;
	lt_contention(lt, l);
	*wait = w;
	return LT_QUEUED;
}

/* May a and b be held at once: the same kind, both shared. */
static bool
lt_claims_compatible(enum lt_kind ka, enum lt_mode ma, enum lt_kind kb,
    enum lt_mode mb)
{
	return ka == kb && ma == LT_SHARED && mb == LT_SHARED;
}

int
locktab_install(struct locktab *lt, struct lt_owner *o, const char *name,
    size_t namelen, enum lt_kind kind, enum lt_mode mode, uint32_t count,
    uint64_t token, int reason, uint64_t now, struct lt_hold **hold)
{
	struct lt_lock *l;
	struct lt_hold *h, *next;

	*hold = NULL;
	if (namelen == 0 || namelen > UINT16_MAX || token == 0 ||
	    token >= lt->next_token || count == 0 ||
	    (kind == LT_MUTEX && count != 1) || kind == LT_SEMAPHORE)
		return DLM_E_BAD_REQUEST;
	l = locktab_find(lt, name, namelen);
	if (l != NULL) {
		if (locktab_hold_of(l, o) != NULL || lt_wait_of(l, o) != NULL ||
		    locktab_hold_by_token(l, token) != NULL)
			return DLM_E_ALREADY_HELD;
		if (token < l->floor)
			return DLM_E_WOULD_BLOCK;
		TAILQ_FOREACH(h, &l->holders, lock_link)
			if (h->token > token && !lt_claims_compatible(l->kind,
			    h->mode, kind, mode))
				return DLM_E_WOULD_BLOCK;
	}
	if (lt->limits.max_holds != 0 &&
	    o->nholds + o->nwaits >= lt->limits.max_holds)
		return DLM_E_LIMIT;

	if (l == NULL)
		l = lt_lock_new(lt, name, namelen, kind);
	/* Every conflicting hold is older: it had ended when token was given. */
	for (h = TAILQ_FIRST(&l->holders); h != NULL; h = next) {
		next = TAILQ_NEXT(h, lock_link);
		if (lt_claims_compatible(l->kind, h->mode, kind, mode))
			continue;
		if (h->token > l->floor)
			l->floor = h->token;
		lt->ops->revoked(lt->arg, h, reason);
		lt_hold_free(lt, h, now);
	}
	if (l->kind != kind) {
		struct lt_wait *w;

		/* Waiters asked for the other kind, which no longer exists. */
		while ((w = TAILQ_FIRST(&l->waiters)) != NULL) {
			lt_wait_unlink(lt, w);
			lt->ops->cancelled(lt->arg, w);
			lt_wait_free(w);
		}
		l->kind = (uint8_t)kind;
		l->capacity = 0;	/* a semaphore's, if it was one */
	}
	if (mode == LT_EXCLUSIVE && token > l->floor)
		l->floor = token;
	h = lt_hold_new(lt, l, o, mode, token, count, now);
	/* Granted before, elsewhere: not a grant of this table's delays. */
	h->installed = true;
	/* A shared hold in place of an exclusive one may let waiters go. */
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	*hold = h;
	return LT_GRANTED;
}

/*
 * Make room for a semaphore's claim of another capacity (or of a lock of
 * another kind): every holder is a conflicting one, and goes when the claim
 * is newer than all of them, as in locktab_install(). Waiters asked for
 * what no longer exists. DLM_E_WOULD_BLOCK when a holder is newer.
 */
static int
lt_install_replace(struct locktab *lt, struct lt_lock *l, uint64_t token,
    int reason, uint64_t now)
{
	struct lt_hold *h;
	struct lt_wait *w;

	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (h->token > token)
			return DLM_E_WOULD_BLOCK;
	while ((h = TAILQ_FIRST(&l->holders)) != NULL) {
		if (h->token > l->floor)
			l->floor = h->token;
		lt->ops->revoked(lt->arg, h, reason);
		lt_hold_free(lt, h, now);
	}
	while ((w = TAILQ_FIRST(&l->waiters)) != NULL) {
		lt_wait_unlink(lt, w);
		lt->ops->cancelled(lt->arg, w);
		lt_wait_free(w);
	}
	return 0;
}

/*
 * Two semaphore holds whose permits add up past the capacity were never
 * held at once: the one with the higher token was granted after the other
 * ended (or shrank, and claims more than it holds), as for a mutex. Other
 * claims were granted side by side and no token says which ended, so one
 * that does not fit beside them is refused, whichever came first.
 * 0 when a claim of permits with token may be installed, displacing only
 * older holds it conflicts with; else DLM_E_WOULD_BLOCK.
 */
static int
lt_sem_claim_fits(const struct lt_lock *l, uint32_t permits, uint64_t token)
{
	const struct lt_hold *h;
	uint64_t kept = l->in_use;

	TAILQ_FOREACH(h, &l->holders, lock_link) {
		if ((uint64_t)h->permits + permits <= l->capacity)
			continue;
		if (h->token > token)
			return DLM_E_WOULD_BLOCK;
		kept -= h->permits;
	}
	return kept + permits <= l->capacity ? 0 : DLM_E_WOULD_BLOCK;
}

/* End the older holds a fitting claim conflicts with (see above). */
static void
lt_sem_claim_displace(struct locktab *lt, struct lt_lock *l, uint32_t permits,
    uint64_t token, int reason, uint64_t now)
{
	struct lt_hold *h, *next;

	for (h = TAILQ_FIRST(&l->holders); h != NULL; h = next) {
		next = TAILQ_NEXT(h, lock_link);
		if ((uint64_t)h->permits + permits <= l->capacity ||
		    h->token > token)
			continue;
		/*
		 * No floor: holds below this one's token may still be held
		 * beside the claim, unlike a mutex's.
		 */
		lt->ops->revoked(lt->arg, h, reason);
		lt_hold_free(lt, h, now);
	}
}

int
locktab_install_semaphore(struct locktab *lt, struct lt_owner *o,
    const char *name, size_t namelen, uint32_t capacity, uint32_t permits,
    uint64_t token, int reason, uint64_t now, struct lt_hold **hold)
{
	struct lt_lock *l;
	struct lt_hold *h;

	*hold = NULL;
	if (namelen == 0 || namelen > UINT16_MAX || token == 0 ||
	    token >= lt->next_token || capacity == 0 ||
	    capacity > LT_CAPACITY_MAX || permits == 0 || permits > capacity)
		return DLM_E_BAD_REQUEST;
	l = locktab_find(lt, name, namelen);
	if (l != NULL) {
		if (locktab_hold_of(l, o) != NULL || lt_wait_of(l, o) != NULL ||
		    locktab_hold_by_token(l, token) != NULL)
			return DLM_E_ALREADY_HELD;
		if (token < l->floor)
			return DLM_E_WOULD_BLOCK;
		if (l->kind == LT_SEMAPHORE && l->capacity == capacity) {
			if (lt_sem_claim_fits(l, permits, token) != 0)
				return DLM_E_WOULD_BLOCK;
		} else {
			TAILQ_FOREACH(h, &l->holders, lock_link)
				if (h->token > token)
					return DLM_E_WOULD_BLOCK;
		}
	}
	if (lt->limits.max_holds != 0 &&
	    o->nholds + o->nwaits >= lt->limits.max_holds)
		return DLM_E_LIMIT;

	if (l == NULL)
		l = lt_lock_new(lt, name, namelen, LT_SEMAPHORE);
	else if (l->kind == LT_SEMAPHORE && l->capacity == capacity)
		lt_sem_claim_displace(lt, l, permits, token, reason, now);
	else {
		/* Checked above: every holder is older. */
		(void)lt_install_replace(lt, l, token, reason, now);
		l->kind = LT_SEMAPHORE;
	}
	l->capacity = capacity;
	h = lt_hold_new(lt, l, o, LT_EXCLUSIVE, token, 1, now);
	h->installed = true;	/* as in locktab_install() */
	lt_hold_take_permits(l, h, permits);
	/* Holds displaced may have made room for waiters. */
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	*hold = h;
	return LT_GRANTED;
}

void
locktab_set_value(struct locktab *lt, struct lt_hold *h, const void *value,
    size_t value_len)
{
	if (value_len > UINT32_MAX)
		value_len = 0;
	lt_set_value(h, value, value_len);
	lt_report(lt, h->lock);
}

int
locktab_release(struct locktab *lt, struct lt_owner *o, const char *name,
    size_t namelen, uint64_t now, uint32_t *remaining)
{
	struct lt_lock *l = locktab_find(lt, name, namelen);
	struct lt_hold *h;

	if (l == NULL || (h = locktab_hold_of(l, o)) == NULL)
		return DLM_E_NOT_HELD;
	if (h->count > 1) {
		*remaining = --h->count;
		return 0;
	}
	*remaining = 0;
	lt_hold_free(lt, h, now);
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	lt_lock_maybe_free(lt, l);
	return 0;
}

int
locktab_release_permits(struct locktab *lt, struct lt_owner *o,
    const char *name, size_t namelen, uint32_t permits, uint64_t now,
    uint32_t *left)
{
	struct lt_lock *l = locktab_find(lt, name, namelen);
	struct lt_hold *h;

	*left = 0;
	if (l == NULL || (h = locktab_hold_of(l, o)) == NULL)
		return DLM_E_NOT_HELD;
	if (l->kind != LT_SEMAPHORE || permits > h->permits)
		return DLM_E_BAD_REQUEST;
	if (permits != 0 && permits < h->permits) {
		/* The hold stays, token and all, with fewer permits. */
		h->permits -= permits;
		l->in_use -= permits;
		*left = h->permits;
		lt_note_change(l);	/* watchers see each holder's permits */
	} else
		lt_hold_free(lt, h, now);
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	lt_lock_maybe_free(lt, l);
	return 0;
}

void
locktab_cancel(struct locktab *lt, struct lt_wait *w, uint64_t now)
{
	struct lt_lock *l = w->lock;

	lt_wait_unlink(lt, w);
	lt_wait_free(w);
	/* The waiter may have been what kept shared waiters behind it out. */
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	lt_lock_maybe_free(lt, l);
}

uint32_t
locktab_release_owner(struct locktab *lt, struct lt_owner *o, uint64_t now)
{
	struct lt_hold *h;
	uint32_t n = 0;

	while ((h = LIST_FIRST(&o->holds)) != NULL) {
		lt_mark_dirty(lt, h->lock);
		lt_hold_free(lt, h, now);
		n++;
	}
	lt_settle_dirty(lt, now);
	return n;
}

uint32_t
locktab_end_owner(struct locktab *lt, struct lt_owner *o, int reason,
    uint64_t now)
{
	struct lt_wait *w;
	struct lt_hold *h;
	uint32_t n = 0;

	/*
	 * Waits first: releasing a hold must not grant a lock to a wait of
	 * the very owner that is going away.
	 */
	while ((w = LIST_FIRST(&o->waits)) != NULL) {
		lt_mark_dirty(lt, w->lock);
		lt_wait_unlink(lt, w);
		lt->ops->cancelled(lt->arg, w);
		lt_wait_free(w);
	}
	while ((h = LIST_FIRST(&o->holds)) != NULL) {
		lt_mark_dirty(lt, h->lock);
		if (reason != 0) {
			lt->ops->revoked(lt->arg, h, reason);
			lt_hold_delay(lt, h, now);
		}
		lt_hold_free(lt, h, now);
		n++;
	}
	lt_settle_dirty(lt, now);
	return n;
}

uint32_t
locktab_force_release(struct locktab *lt, const char *name, size_t namelen,
    const struct lt_owner *only, int reason, uint64_t now)
{
	struct lt_lock *l = locktab_find(lt, name, namelen);
	struct lt_hold *h, *next;
	uint32_t n = 0;

	if (l == NULL)
		return 0;
	for (h = TAILQ_FIRST(&l->holders); h != NULL; h = next) {
		next = TAILQ_NEXT(h, lock_link);
		if (only != NULL && h->owner != only)
			continue;
		lt->ops->revoked(lt->arg, h, reason);
		lt_hold_delay(lt, h, now);
		lt_hold_free(lt, h, now);
		n++;
	}
	if (n != 0) {
		lt_grant_pass(lt, l, now);
		lt_report(lt, l);
		lt_lock_maybe_free(lt, l);
	}
	return n;
}

void
locktab_regrant(struct locktab *lt, struct lt_lock *l, uint64_t now)
{
	lt_grant_pass(lt, l, now);
	lt_report(lt, l);
	lt_lock_maybe_free(lt, l);
}

uint64_t
locktab_delays_due(struct locktab *lt, uint64_t now)
{
	struct lt_lock *l;

	while ((l = RB_MIN(lt_delays, &lt->delays)) != NULL) {
		if (lt_lock_delayed(l, now))
			return l->delayed_until;
		RB_REMOVE(lt_delays, &lt->delays, l);
		l->delayed_until = 0;
		lt->stats.delayed--;
		lt_grant_pass(lt, l, now);
		lt_report(lt, l);
		lt_lock_maybe_free(lt, l);
	}
	return 0;
}

uint64_t
locktab_delay_left(const struct lt_lock *l, uint64_t now)
{
	return lt_lock_delayed(l, now) ? l->delayed_until - now : 0;
}

void
locktab_hold_options(struct locktab *lt, struct lt_hold *h,
    uint32_t lock_delay_ms, bool notify_contended)
{
	lt_hold_set_options(h, lock_delay_ms, notify_contended);
	lt_contention(lt, h->lock);
}

void
locktab_stats(struct locktab *lt, struct lt_stats *st)
{
	*st = lt->stats;
}

uint64_t
locktab_next_token(struct locktab *lt)
{
	return lt->next_token;
}

void
locktab_set_tokens(struct locktab *lt, uint64_t next, uint64_t end)
{
	if (next > lt->next_token)
		lt->next_token = next;
	lt->token_end = end;
}

uint64_t
locktab_tokens_left(struct locktab *lt)
{
	if (lt->token_end == 0)
		return UINT64_MAX;
	return lt->token_end > lt->next_token ?
	    lt->token_end - lt->next_token : 0;
}

void
locktab_set_window(struct locktab *lt, uint64_t from, uint64_t until)
{
	lt->grant_from = from;
	lt->grant_until = until;
}

void
locktab_regrant_all(struct locktab *lt, uint64_t now)
{
	struct lt_lock *l, *tmp;

	RB_FOREACH_SAFE(l, lt_tree, &lt->tree, tmp) {
		if (l->nwaiters == 0)
			continue;
		if (!lt_may_grant(lt, now))
			break;
		lt_grant_pass(lt, l, now);
		lt_report(lt, l);
		lt_lock_maybe_free(lt, l);
	}
}

/*
 * A lock's permits: a semaphore's holds each have 1..capacity of them and
 * one level, they add up to what is in use, which fits the capacity, and
 * no waiter asks more than it; other kinds have none.
 */
static const char *
lt_check_permits(const struct lt_lock *l)
{
	const struct lt_hold *h;
	const struct lt_wait *w;
	uint64_t sum = 0;

	if (l->kind != LT_SEMAPHORE) {
		if (l->capacity != 0 || l->in_use != 0)
			return "a lock other than a semaphore has permits";
		TAILQ_FOREACH(h, &l->holders, lock_link)
			if (h->permits != 0)
				return "a hold of a lock other than a "
				    "semaphore has permits";
		TAILQ_FOREACH(w, &l->waiters, lock_link)
			if (w->permits != 0)
				return "a waiter for a lock other than a "
				    "semaphore asks for permits";
		return NULL;
	}
	if (l->capacity == 0 || l->capacity > LT_CAPACITY_MAX)
		return "a semaphore's capacity is out of range";
	if (l->mode != LT_EXCLUSIVE)
		return "a semaphore has a mode";
	TAILQ_FOREACH(h, &l->holders, lock_link) {
		if (h->permits == 0 || h->permits > l->capacity)
			return "a semaphore hold has permits out of range";
		if (h->count != 1)
			return "a semaphore hold has a count other than one";
		sum += h->permits;
	}
	if (sum != l->in_use)
		return "a semaphore's permits in use are not its holds' sum";
	if (l->in_use > l->capacity)
		return "a semaphore has more permits in use than its capacity";
	TAILQ_FOREACH(w, &l->waiters, lock_link)
		if (w->permits == 0 || w->permits > l->capacity)
			return "a semaphore waiter asks for permits out of "
			    "range";
	return NULL;
}

/*
 * Conversion (locktab_convert). A waiting conversion is its owner's wait
 * at the head of the lock's queue, marked convert: so ordinary waiters
 * stay behind it and new acquires queue (the queue is not empty), and
 * cancel, timeouts and the end of its owner withdraw it as any wait. Its
 * owner keeps its shared hold meanwhile.
 */

/* The conversion waiting at the head of l's queue, or NULL. */
static struct lt_wait *
lt_convert_head(const struct lt_lock *l)
{
	struct lt_wait *w = TAILQ_FIRST(&l->waiters);

	return w != NULL && w->convert ? w : NULL;
}

struct lt_wait *
locktab_converting(const struct lt_hold *h)
{
	struct lt_wait *w = lt_convert_head(h->lock);

	return w != NULL && w->owner == h->owner ? w : NULL;
}

/*
 * A hold is about to be freed (released, revoked, displaced): its
 * conversion has nothing left to convert, and is withdrawn as the table
 * withdraws waits, through ops->cancelled.
 */
static void
lt_convert_drop(struct locktab *lt, const struct lt_hold *h)
{
	struct lt_wait *w = locktab_converting(h);

	if (w == NULL)
		return;
	lt_wait_unlink(lt, w);
	lt->ops->cancelled(lt->arg, w);
	lt_wait_free(w);
}

/*
 * Shared to exclusive, the other holders gone. A new token: the exclusive
 * hold is a new epoch for the resource, which must be able to refuse
 * every earlier holder, the sharers waited out included. The floor stays,
 * as for every grant but an install's: the new token is above every
 * hold's, and a claim installed later is compared with it while it lasts.
 */
static void
lt_upgrade(struct locktab *lt, struct lt_lock *l, struct lt_hold *h)
{
	h->prev_token = h->token;
	h->token = lt->next_token++;
	h->mode = LT_EXCLUSIVE;
	l->mode = LT_EXCLUSIVE;
	lt_note_change(l);	/* watchers see the new mode and token */
}

/*
 * Whether o, holding l, may have it exclusive now: alone, a token left,
 * and no lock-delay running (an upgrade is a new grant, which a delay
 * keeps off until a dead holder's requests have landed).
 */
static bool
lt_upgradable(const struct locktab *lt, const struct lt_lock *l,
    const struct lt_owner *o, uint64_t now)
{
	return l->nholders == 1 && TAILQ_FIRST(&l->holders)->owner == o &&
	    lt_may_grant(lt, now) && !lt_lock_delayed(l, now);
}

/*
 * The grant pass met the conversion w at the head: complete it if its
 * owner is the only holder left (true: the pass goes on), else false.
 */
static bool
lt_convert_step(struct locktab *lt, struct lt_lock *l, struct lt_wait *w,
    uint64_t now)
{
	struct lt_hold *h;

	if (!lt_upgradable(lt, l, w->owner, now))
		return false;
	h = TAILQ_FIRST(&l->holders);
	lt_wait_unlink(lt, w);
	lt_upgrade(lt, l, h);
	lt->ops->granted(lt->arg, w, h);
	lt_wait_free(w);
	return true;
}

int
locktab_convert(struct locktab *lt, struct lt_owner *o, const char *name,
    size_t namelen, const struct lt_convert *cv, uint64_t now,
    struct lt_hold **hold, struct lt_wait **wait)
{
	struct lt_lock *l;
	struct lt_hold *h;
	struct lt_wait *w, *other;

	*hold = NULL;
	*wait = NULL;
	if (namelen == 0 || namelen > UINT16_MAX)
		return DLM_E_BAD_REQUEST;
	if ((l = locktab_find(lt, name, namelen)) == NULL ||
	    (h = locktab_hold_of(l, o)) == NULL)
		return DLM_E_NOT_HELD;
	if (l->kind != LT_MUTEX && l->kind != LT_RLOCK)
		return DLM_E_KIND_MISMATCH;
	if ((other = lt_convert_head(l)) != NULL && other->owner == o)
		return DLM_E_ALREADY_HELD;
	if (cv->mode == (enum lt_mode)h->mode) {
		*hold = h;
		return LT_GRANTED;
	}
	if (cv->mode == LT_SHARED) {
		/* Atomic: the hold never lapses; the compatible waiters go. */
		h->mode = LT_SHARED;
		l->mode = LT_SHARED;
		lt_note_change(l);
		lt_grant_pass(lt, l, now);
		lt_report(lt, l);
		*hold = h;
		return LT_GRANTED;
	}
	if (lt_upgradable(lt, l, o, now)) {
		lt_upgrade(lt, l, h);
		lt_report(lt, l);
		*hold = h;
		return LT_GRANTED;
	}
	if (!cv->may_wait)
		return DLM_E_WOULD_BLOCK;
	if ((lt->limits.max_waits != 0 && o->nwaits >= lt->limits.max_waits) ||
	    (lt->limits.max_holds != 0 &&
	    o->nholds + o->nwaits >= lt->limits.max_holds))
		return DLM_E_LIMIT;
	if (other != NULL) {
		/* Each would wait for the other's shared hold to go. */
		if (cv->cycle != NULL) {
			cv->cycle->len = 2;
			cv->cycle->steps[0] = (struct lt_cycle_step){ o, l,
			    LT_EXCLUSIVE };
			cv->cycle->steps[1] = (struct lt_cycle_step){
			    other->owner, l, LT_EXCLUSIVE };
		}
		lt_verify_refusal(lt, cv->cycle, l);
		return DLM_E_DEADLOCK;
	}
	if (lt->stats.waits != 0 &&
	    wg_convert_closes(&lt->wg, h, now, cv->cycle)) {
		lt_verify_refusal(lt, cv->cycle, l);
		return DLM_E_DEADLOCK;
	}
	w = xcalloc(1, sizeof *w);
	w->lock = l;
	w->owner = o;
	w->udata = cv->udata;
	w->since = now;
	w->mode = LT_EXCLUSIVE;
	w->convert = 1;
	w->checked = 1;
	TAILQ_INSERT_HEAD(&l->waiters, w, lock_link);
	LIST_INSERT_HEAD(&o->waits, w, owner_link);
	l->nwaiters++;
	o->nwaits++;
	lt->stats.waits++;
	lt_contention(lt, l);
	*wait = w;
	return LT_QUEUED;
}

/* The invariants of conversions on l, for locktab_check(). */
static const char *
lt_check_converts(struct locktab *lt, struct lt_lock *l, uint64_t now)
{
	const struct lt_hold *h;
	const struct lt_wait *w;

	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (h->prev_token != 0 && h->prev_token >= h->token)
			return "a converted hold's token is not above its last";
	TAILQ_FOREACH(w, &l->waiters, lock_link) {
		if (!w->convert)
			continue;
		if (w != TAILQ_FIRST(&l->waiters))
			return "a conversion waits behind another waiter";
		if (l->kind != LT_MUTEX && l->kind != LT_RLOCK)
			return "a conversion waits on a lock of another kind";
		if (w->mode != LT_EXCLUSIVE || !w->checked)
			return "a conversion waits for another mode, unchecked";
		if ((h = locktab_hold_of(l, w->owner)) == NULL)
			return "a converting waiter does not hold the lock";
		if (h->mode != LT_SHARED)
			return "a converting holder does not hold it shared";
		/* An ended delay holds it until locktab_delays_due(). */
		if (!lt_owner_expired(w->owner, now) &&
		    lt_upgradable(lt, l, w->owner, now) &&
		    l->delayed_until == 0)
			return "a conversion could be granted but waits";
	}
	return NULL;
}

const char *
locktab_check(struct locktab *lt, uint64_t now)
{
	struct lt_lock *l, *prev = NULL;
	uint64_t locks = 0, holds = 0, waits = 0, delayed = 0, indexed = 0;

	if (lt->verify_error != NULL)
		return lt->verify_error;

	RB_FOREACH(l, lt_tree, &lt->tree) {
		struct lt_hold *h;
		struct lt_wait *w;
		const char *why;
		uint32_t nh = 0, nw = 0, nn = 0;

		locks++;
		if (prev != NULL && lt_cmp(prev, l) >= 0)
			return "locks are not in name order";
		prev = l;
		if (l->nholders == 0 && l->nwaiters == 0 &&
		    l->delayed_until == 0)
			return "a lock with no holder and no waiter was kept";
		if (l->changed)
			return "a change of holders was never reported";
		if (l->delayed_until != 0) {
			delayed++;
			if (RB_FIND(lt_delays, &lt->delays, l) != l)
				return "a delayed lock is not in the delay index";
			if (l->delayed_from >= l->delayed_until)
				return "a lock-delay ends before it began";
		}
		TAILQ_FOREACH(h, &l->holders, lock_link) {
			nh++;
			if (h->lock != l)
				return "a hold points at another lock";
			if (h->token == 0 || h->token >= lt->next_token)
				return "a hold has a token never issued";
			if (lt->token_end != 0 && lt->next_token > lt->token_end)
				return "a token past the end of the range was issued";
			if (h->count == 0)
				return "a hold has a count of zero";
			if (l->kind == LT_MUTEX && h->count != 1)
				return "a mutex hold has a count other than one";
			if (h->mode != l->mode)
				return "a holder's mode differs from the lock's";
			if (h->token < l->floor)
				return "a hold lies below a claim that ended it";
			if ((h->value == NULL) != (h->value_len == 0))
				return "a hold's value and its length disagree";
			if (l->delayed_until != 0 && !h->installed &&
			    h->since > l->delayed_from &&
			    h->since < l->delayed_until)
				return "a hold was granted while its lock was "
				    "delayed";
			if (h->notify_contended)
				nn++;
			else if (h->contended_told)
				return "a hold that did not ask was told of "
				    "contention";
			if (h->contended_told && l->nwaiters == 0)
				return "a hold is marked told of contention "
				    "with nobody waiting";
			if (h->notify_contended && !h->contended_told &&
			    lt_others_waiting(h) != 0)
				return "a hold that asked was not told of its "
				    "lock's waiters";
		}
		if (nh != l->nholders)
			return "a lock's holder count is wrong";
		if (nn != l->nnotify)
			return "a lock's count of holders asking for notices "
			    "is wrong";
		if (nh > 1 && l->mode != LT_SHARED && l->kind != LT_SEMAPHORE)
			return "an exclusive lock has more than one holder";
		if ((why = lt_check_permits(l)) != NULL)
			return why;
		TAILQ_FOREACH(w, &l->waiters, lock_link) {
			nw++;
			if (w->lock != l)
				return "a waiter points at another lock";
			if (!w->convert && locktab_hold_of(l, w->owner) != NULL)
				return "a holder also waits for its own lock";
			if ((w->value == NULL) != (w->value_len == 0))
				return "a waiter's value and length disagree";
		}
		if (nw != l->nwaiters)
			return "a lock's waiter count is wrong";
		TAILQ_FOREACH(w, &l->waiters, lock_link) {
			if (lt_owner_expired(w->owner, now))
				continue;
			/*
			 * A delay keeps it waiting, and one that is over
			 * until the caller's locktab_delays_due() ends it.
			 */
			if (lt_wait_fits(l, w) &&
			    lt_may_grant(lt, now) && l->delayed_until == 0)
				return "a waiter could be granted but waits";
			break;
		}
		if ((why = lt_check_converts(lt, l, now)) != NULL)
			return why;
		holds += nh;
		waits += nw;
	}
	if (locks != lt->stats.locks || holds != lt->stats.holds ||
	    waits != lt->stats.waits)
		return "the table's counters disagree with its contents";
	RB_FOREACH(l, lt_delays, &lt->delays) {
		indexed++;
		if (l->delayed_until == 0)
			return "a lock in the delay index has no delay";
	}
	if (delayed != indexed || delayed != lt->stats.delayed)
		return "the delay index disagrees with the delayed locks";
	return wg_check(lt, now);
}
