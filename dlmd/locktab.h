/*
 * The lock table: named locks, their holders, FIFO waiters and fencing tokens.
 *
 * Pure logic. It never reads a clock ("now" is an argument, in milliseconds of
 * any monotonic clock), never does I/O and never allocates on behalf of its
 * caller's objects, so that it can be unit-tested directly and later replayed
 * under a replicated log. It tells its caller what happened through the
 * callbacks of struct lt_ops; callbacks must not call back into the table.
 */
#ifndef DLM_LOCKTAB_H
#define DLM_LOCKTAB_H

#include <sys/queue.h>
#include <bsd/sys/tree.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lt_kind {
	LT_MUTEX,
	LT_RLOCK,
	/*
	 * A counting semaphore: up to a capacity of permits held at once,
	 * each holder with its own number of them. Not reentrant; mode has
	 * no meaning (always LT_EXCLUSIVE).
	 */
	LT_SEMAPHORE,
};

/* The largest capacity a semaphore may have (the protocol's 2^31-1). */
#define LT_CAPACITY_MAX	0x7fffffffu

enum lt_mode {
	LT_EXCLUSIVE,
	LT_SHARED,
};

struct lt_hold;
struct lt_wait;

/*
 * Whoever holds and waits: a session, to the table. Embedded in the caller's
 * session object; the table only links holds and waits to it.
 */
struct lt_owner {
	LIST_HEAD(, lt_hold)	holds;
	LIST_HEAD(, lt_wait)	waits;
	uint32_t		nholds;
	uint32_t		nwaits;
	/*
	 * When the owner's lease runs out (0: never). The table does not grant
	 * to a waiter whose owner's deadline has passed, even if the caller has
	 * not yet expired it.
	 */
	uint64_t		deadline;
	/* The wait-for graph's search marks (waitgraph.c); 0 when idle. */
	uint64_t		wg_mark;
	uint64_t		wg_goal;
	const struct lt_wait	*wg_via;
};

struct lt_lock {
	RB_ENTRY(lt_lock)	entry;
	TAILQ_HEAD(, lt_hold)	holders;
	TAILQ_HEAD(lt_waitq, lt_wait) waiters;
	TAILQ_ENTRY(lt_lock)	dirty_link;
	/*
	 * The highest token of an exclusive hold installed here, or of a
	 * hold an install displaced: no claim below it can still be held.
	 */
	uint64_t		floor;
	uint32_t		nholders;
	uint32_t		nwaiters;
	uint8_t			kind;	/* enum lt_kind */
	uint8_t			mode;	/* enum lt_mode of the holders */
	uint8_t			dirty;
	uint16_t		namelen;
	/* A semaphore's: fixed while it exists, and the permits held. */
	uint32_t		capacity;
	uint32_t		in_use;
	/*
	 * Its holders changed during the operation under way: told once
	 * through ops->changed when the operation is done with the lock.
	 */
	uint8_t			changed;
	/*
	 * Lock-delay: a hold that asked for one ended without its holder
	 * letting go, so nothing is granted here while now < delayed_until.
	 * The lock is in the table's delay index while delayed_until is not
	 * 0, even once that time has passed, until locktab_delays_due()
	 * takes it out; delayed_from is when the delay began.
	 */
	RB_ENTRY(lt_lock)	delay_entry;
	uint64_t		delayed_until;
	uint64_t		delayed_from;
	/* Holders that asked for contention notices. */
	uint32_t		nnotify;
	uint64_t		wg_mark[2];	/* waitgraph.c's, per mode */
	char			name[];	/* stays last: the name's bytes */
};

struct lt_hold {
	TAILQ_ENTRY(lt_hold)	lock_link;
	LIST_ENTRY(lt_hold)	owner_link;
	struct lt_lock		*lock;
	struct lt_owner		*owner;
	uint64_t		token;
	uint64_t		since;	/* now at grant */
	uint32_t		count;	/* reentrant depth; 1 for a mutex */
	uint8_t			mode;
	uint32_t		permits;	/* a semaphore's; else 0 */
	/*
	 * What the holder said with it (a leader's address, say): the
	 * table's own copy, or NULL with value_len 0 for none.
	 */
	void			*value;
	uint32_t		value_len;
	/* ms the lock is delayed when this hold ends not let go; 0: none */
	uint32_t		lock_delay;
	bool			notify_contended;	/* asked for notices */
	bool			contended_told;	/* since the queue was empty */
	bool			installed;	/* by locktab_install(), not granted */
	/*
	 * The token the hold had before a conversion gave it its present one
	 * (0 until then): a release naming it still means this hold, since a
	 * client may not have heard of that conversion (its answer lost with
	 * a connection). At most one conversion of a hold is in flight.
	 */
	uint64_t		prev_token;
};

struct lt_wait {
	TAILQ_ENTRY(lt_wait)	lock_link;
	LIST_ENTRY(lt_wait)	owner_link;
	struct lt_lock		*lock;
	struct lt_owner		*owner;
	void			*udata;	/* the caller's pending request */
	uint64_t		since;
	uint8_t			mode;
	uint32_t		permits;	/* a semaphore's ask; else 0 */
	/* The value its hold will carry (the table's copy), or NULL. */
	void			*value;
	uint32_t		value_len;
	/* What its hold will have: see struct lt_want. */
	uint32_t		lock_delay;
	bool			notify_contended;
	/*
	 * A holder's conversion of its shared hold to exclusive: always the
	 * head of the queue, at most one per lock, mode LT_EXCLUSIVE.
	 */
	uint8_t			convert;
	/* It asked for deadlock detection (converts always do). */
	uint8_t			checked;
	uint64_t		wg_mark[2];	/* waitgraph.c's, per mode */
};

struct lt_ops {
	/*
	 * A waiter was granted, or a conversion done (w->convert: h is the
	 * hold converted); w is freed when this returns.
	 */
	void	(*granted)(void *arg, struct lt_wait *w, struct lt_hold *h);
	/*
	 * A waiter was removed by the table: by locktab_end_owner(), or a
	 * conversion whose hold ended (w->convert); w is freed after.
	 */
	void	(*cancelled)(void *arg, struct lt_wait *w);
	/*
	 * A hold was ended by someone other than its holder (force release,
	 * reset, expiry); h is freed when this returns.
	 */
	void	(*revoked)(void *arg, struct lt_hold *h, int reason);
	/* Optional: any hold is about to be freed, for whatever reason. */
	void	(*ended)(void *arg, const struct lt_hold *h, uint64_t now);
	/*
	 * Optional: l's holders changed (a grant, a release, an expiry, a
	 * forced release, an install, a value set). Called once per lock
	 * and table operation, when the operation is done with l: its
	 * holders are then the state after the change, all of it (a release
	 * and the grants it allowed are one call). l may have no holder and
	 * no waiter left; it is freed after this returns.
	 */
	void	(*changed)(void *arg, const struct lt_lock *l);
	/*
	 * Optional: h asked for contention notices and its lock has waiters
	 * (waiters of them): told once, and again only after the queue has
	 * been empty. Called after the grant of h when others wait behind it.
	 */
	void	(*contended)(void *arg, const struct lt_hold *h,
		    uint32_t waiters);
	/*
	 * Optional: lock l is delayed until `until` (a hold with a lock-delay
	 * ended not let go); call locktab_delays_due() at that time.
	 */
	void	(*delayed)(void *arg, const struct lt_lock *l, uint64_t until);
};

struct lt_limits {
	uint32_t	max_holds;	/* per owner; 0: none */
	uint32_t	max_waits;	/* per owner; 0: none */
};

struct lt_stats {
	uint64_t	locks;
	uint64_t	holds;
	uint64_t	waits;
	uint64_t	delays;		/* holds that ended with a lock-delay */
	uint64_t	delayed;	/* locks in the delay index now */
};

enum lt_result {
	LT_GRANTED = 0,
	LT_QUEUED = -1,
	/* otherwise a positive DLM_E_* error code */
};

/*
 * A cycle of waits that a request would close (DLM_E_DEADLOCK): each step
 * is an owner waiting for a lock in a mode, for the next step's owner
 * (which holds the lock or is ahead in its queue); the last waits for the
 * first. The first step is the refused request. len is the whole cycle's
 * length; only the first LT_CYCLE_MAX steps are kept.
 */
#define LT_CYCLE_MAX	64
struct lt_cycle_step {
	const struct lt_owner	*owner;
	const struct lt_lock	*lock;
	uint8_t			 mode;	/* enum lt_mode waited for */
};
struct lt_cycle {
	uint32_t		 len;
	struct lt_cycle_step	 steps[LT_CYCLE_MAX];
};

RB_HEAD(lt_tree, lt_lock);

struct locktab;

/* A new table whose first grant gets token first_token. */
struct locktab	*locktab_new(uint64_t first_token, const struct lt_ops *,
		    void *arg);
/* Free the table; every owner must have been ended first. */
void		 locktab_free(struct locktab *);
void		 locktab_set_limits(struct locktab *, const struct lt_limits *);
void		 locktab_owner_init(struct lt_owner *);

/*
 * What an acquire asks for. New kinds of request add fields here, each
 * meaning "as before" when zero, so callers that zero the struct ask what
 * they always did.
 */
struct lt_want {
	enum lt_kind	 kind;
	enum lt_mode	 mode;
	bool		 may_wait;
	void		*udata;	/* the caller's pending request, on a wait */
	/*
	 * LT_SEMAPHORE: permits asked (0 means 1, at most capacity) and the
	 * capacity (1..LT_CAPACITY_MAX, the lock's own when it exists).
	 */
	uint32_t	 permits;
	uint32_t	 capacity;
	/*
	 * The value a new hold carries (copied; NULL or 0 bytes: none). A
	 * reentrant acquire keeps the hold's value as it is.
	 */
	const void	*value;
	size_t		 value_len;
	/*
	 * Lock-delay in ms: when the hold ends without its holder letting go
	 * (locktab_end_owner() with a reason, locktab_force_release()),
	 * nothing is granted on the lock for that long. A reentrant acquire
	 * raises a hold's delay to the larger of the two.
	 */
	uint32_t	 lock_delay_ms;
	/* Tell the holder (ops->contended) when others wait for the lock. */
	bool		 notify_contended;
	/*
	 * Refuse a wait that would close a cycle of waits with
	 * DLM_E_DEADLOCK (waitgraph.h), telling it in *cycle when not NULL.
	 */
	bool		 deadlock_check;
	struct lt_cycle	*cycle;
};

/*
 * Ask for a lock. Returns LT_GRANTED with *hold set (a new hold, or the
 * holder's own for a reentrant acquire), LT_QUEUED with *wait set (only when
 * may_wait), or DLM_E_WOULD_BLOCK, DLM_E_ALREADY_HELD, DLM_E_KIND_MISMATCH,
 * DLM_E_LIMIT, DLM_E_DEADLOCK (only with deadlock_check). A semaphore also fails with DLM_E_BAD_REQUEST (a capacity
 * out of range, more permits than it, shared mode) and DLM_E_KIND_MISMATCH
 * when its capacity differs from the lock's; its holder asking again gets
 * DLM_E_ALREADY_HELD (one grant per session: release, then ask anew).
 */
int		 locktab_acquire(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen,
		    const struct lt_want *, uint64_t now,
		    struct lt_hold **hold, struct lt_wait **wait);
/*
 * Release one level of the owner's hold. 0 with *remaining set, or
 * DLM_E_NOT_HELD.
 */
int		 locktab_release(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen, uint64_t now,
		    uint32_t *remaining);
/*
 * Give back permits of the owner's semaphore hold: all of them when permits
 * is 0 or what it holds, else that many, keeping the hold (and its token)
 * with the rest. 0 with *left the permits still held, DLM_E_NOT_HELD, or
 * DLM_E_BAD_REQUEST (more permits than held, or not a semaphore).
 */
int		 locktab_release_permits(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen, uint32_t permits,
		    uint64_t now, uint32_t *left);
/*
 * Install a hold another table granted (a reclaim after a fail-over), with
 * its token and count, for an owner without a wait on that lock. Tokens
 * order grants: a hold with token t exists only if every conflicting hold
 * with a lower token had ended when t was given. So a claim that conflicts
 * with a present hold of a higher token, or lies below the lock's floor,
 * is refused (DLM_E_WOULD_BLOCK); one above the conflicting holds displaces
 * them (ops->revoked with reason, for each), whichever order claims come
 * in. Waiters of the other kind are cancelled (ops->cancelled) when the
 * claim changes the lock's kind. Returns LT_GRANTED with *hold set, or
 * DLM_E_BAD_REQUEST (token 0 or not below the next token, count 0, a mutex
 * count other than one), DLM_E_ALREADY_HELD (the owner holds or waits for
 * it, or the token is held), DLM_E_LIMIT, DLM_E_WOULD_BLOCK. A semaphore's
 * hold is installed with locktab_install_semaphore() (kind LT_SEMAPHORE is
 * DLM_E_BAD_REQUEST here).
 */
int		 locktab_install(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen, enum lt_kind,
		    enum lt_mode, uint32_t count, uint64_t token, int reason,
		    uint64_t now, struct lt_hold **hold);
/*
 * locktab_install() for a semaphore's hold of permits, of a semaphore of
 * capacity. Two claims whose permits add up past the capacity conflict,
 * as for a mutex: the higher token wins (ops->revoked for the other).
 * Others live together while their permits fit: a claim that would take
 * the permits in use past the capacity is refused (DLM_E_WOULD_BLOCK),
 * whichever came first, as no token tells which claim is stale. A claim
 * of another capacity or kind conflicts with every hold: the higher token
 * wins. Errors as locktab_install()'s, DLM_E_BAD_REQUEST also for a
 * capacity or permits out of range.
 */
int		 locktab_install_semaphore(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen, uint32_t capacity,
		    uint32_t permits, uint64_t token, int reason,
		    uint64_t now, struct lt_hold **hold);
/*
 * Give a hold a new value (copied; NULL or 0 bytes: none), as a reclaim
 * does after locktab_install(); ops->changed tells it.
 */
void		 locktab_set_value(struct locktab *, struct lt_hold *,
		    const void *value, size_t value_len);
/* Withdraw a waiter (timeout, cancel); it is freed. Grants whoever can go. */
void		 locktab_cancel(struct locktab *, struct lt_wait *, uint64_t now);
/* Release every hold of the owner, keeping its waits. Returns how many. */
uint32_t	 locktab_release_owner(struct locktab *, struct lt_owner *,
		    uint64_t now);
/*
 * End an owner in one step: drop its waits (ops->cancelled for each), then
 * its holds, then grant whoever can go. A reason that is not 0 means the
 * holds were not let go by their holder: ops->revoked is called for each,
 * and their lock-delays apply; 0 is a clean end (bye). Returns the number
 * of holds released.
 */
uint32_t	 locktab_end_owner(struct locktab *, struct lt_owner *,
		    int reason, uint64_t now);
/*
 * Release a lock from every holder, or from one owner when only is not NULL,
 * calling ops->revoked for each; each hold's lock-delay applies. Returns
 * the number of holds released; 0 also when the lock does not exist.
 */
uint32_t	 locktab_force_release(struct locktab *, const char *name,
		    size_t namelen, const struct lt_owner *only, int reason,
		    uint64_t now);
/*
 * What a conversion asks for: the mode the owner's hold is to have, and
 * whether it may wait (an upgrade that cannot be granted at once).
 */
struct lt_convert {
	enum lt_mode	 mode;
	bool		 may_wait;
	void		*udata;	/* the caller's pending request, on a wait */
	struct lt_cycle	*cycle;	/* filled on DLM_E_DEADLOCK, when not NULL */
};
/*
 * Convert the owner's hold of a mutex or rlock (the whole depth of an
 * rlock) to another mode, as the kernel DLM's convert does. Exclusive to
 * shared is done at once, keeping the hold's token, and grants the shared
 * waiters at the head of the queue. Shared to exclusive is done at once
 * when the owner is the only holder, else it waits at the head of the
 * queue, ahead of every ordinary waiter, still holding shared, until the
 * other holders are gone; it is then granted through ops->granted (w and
 * the converted hold). An upgrade gives the hold a new token, higher than
 * any before. The owner's own mode: LT_GRANTED, nothing changes. Returns
 * LT_GRANTED with *hold set, LT_QUEUED with *wait set, or
 * DLM_E_NOT_HELD, DLM_E_KIND_MISMATCH (not a mutex or rlock),
 * DLM_E_ALREADY_HELD (a conversion of it waits already),
 * DLM_E_WOULD_BLOCK (may not wait), DLM_E_LIMIT, DLM_E_DEADLOCK (another
 * holder converts already, or the wait would close a cycle: conversions
 * are always checked).
 */
int		 locktab_convert(struct locktab *, struct lt_owner *,
		    const char *name, size_t namelen, const struct lt_convert *,
		    uint64_t now, struct lt_hold **hold, struct lt_wait **wait);
/* The waiting conversion of hold h, or NULL. */
struct lt_wait	*locktab_converting(const struct lt_hold *h);
/* Re-examine a lock's queue, e.g. after an owner's deadline changed. */
void		 locktab_regrant(struct locktab *, struct lt_lock *,
		    uint64_t now);

struct lt_lock	*locktab_find(struct locktab *, const char *name,
		    size_t namelen);
/* The first lock whose name is >= key (bytewise), for ordered listings. */
struct lt_lock	*locktab_first_from(struct locktab *, const char *key,
		    size_t keylen);
struct lt_lock	*locktab_next(struct locktab *, struct lt_lock *);
/* The hold of owner on lock, or NULL. */
struct lt_hold	*locktab_hold_of(struct lt_lock *, struct lt_owner *);
/* The hold with this token on lock, or NULL. */
struct lt_hold	*locktab_hold_by_token(struct lt_lock *, uint64_t token);
void		 locktab_stats(struct locktab *, struct lt_stats *);
/* The token the next grant will get. */
uint64_t	 locktab_next_token(struct locktab *);
/*
 * The tokens the table may give: from next (ignored when it would go back)
 * up to, not including, end; 0 for no end. Out of tokens, acquires that
 * could be granted wait (or fail with DLM_E_WOULD_BLOCK when they may not
 * wait) until a later call gives more and locktab_regrant_all() runs: a
 * token is never given twice.
 */
void		 locktab_set_tokens(struct locktab *, uint64_t next,
		    uint64_t end);
/* Tokens left in the range; UINT64_MAX without an end. */
uint64_t	 locktab_tokens_left(struct locktab *);
/*
 * New holds are made only while from <= now < until (0 and UINT64_MAX, the
 * default, for always). Outside, acquires wait as for tokens; a reentrant
 * acquire of a hold the owner has still counts up, as it makes no hold.
 */
void		 locktab_set_window(struct locktab *, uint64_t from,
		    uint64_t until);
/* Grant every waiter that can go, after the tokens or window changed. */
void		 locktab_regrant_all(struct locktab *, uint64_t now);
/*
 * End the lock-delays that are over at now: grant their locks' waiters and
 * free the locks nobody holds or awaits. Returns when the earliest delay
 * still pending ends, or 0 when none is: the caller calls again then.
 */
uint64_t	 locktab_delays_due(struct locktab *, uint64_t now);
/* How long lock l stays delayed from now; 0 when it is not. */
uint64_t	 locktab_delay_left(const struct lt_lock *, uint64_t now);
/*
 * Give a hold the choices of an acquire (a reclaimed hold, installed
 * without them): its lock-delay is raised to lock_delay_ms, and it is
 * told of contention from now on when notify_contended.
 */
void		 locktab_hold_options(struct locktab *, struct lt_hold *,
		    uint32_t lock_delay_ms, bool notify_contended);
/*
 * For tests and fuzzers: check every cycle a DLM_E_DEADLOCK names by
 * brute force (wg_cycle_real()); locktab_check() then reports the first
 * that is not one. Off by default (it costs a walk per refusal).
 */
void		 locktab_set_verify(struct locktab *, bool);
/*
 * Check the table's invariants (for tests and fuzzers). Returns NULL, or a
 * sentence saying what is broken.
 */
const char	*locktab_check(struct locktab *, uint64_t now);

#endif
