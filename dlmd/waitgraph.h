/*
 * The wait-for graph of the lock table, for deadlock detection: pure logic
 * over the table's structures (locktab.h), no clock, no I/O.
 *
 * Nodes are owners (sessions, not threads). A wait W of owner O on lock L
 * in mode M gives O an edge to:
 *
 * - every holder of L whose mode conflicts with M (wg_conflicts());
 * - since the queue is strict FIFO, every waiter ahead of W whose mode
 *   conflicts with M;
 * - for a conversion (W->convert, at the head of the queue, waiting in
 *   exclusive mode while holding shared): every other holder of L.
 *
 * Only mutexes and rlocks are in the graph. A semaphore's waiter may be
 * freed by any holder giving permits back (an OR-wait), so a cycle through
 * one is no deadlock; semaphore waits rely on their timeouts. Waits of an
 * owner whose lease has run out at now are not in it either: that owner is
 * never granted anything again and is about to be ended.
 *
 * When edges appear. A cycle can only be closed by a new edge, and only
 * two things add edges: a new wait (an acquire that queues, whose edges
 * all leave its owner, and a conversion), and a conversion's effect on the
 * shared waiters behind it, which now wait for the converter too. Every
 * other change keeps or removes edges:
 *
 * - a grant turns a waiter into a holder of the same mode: whoever had an
 *   edge to it as a conflicting waiter ahead has the same edge to it as a
 *   conflicting holder, and nobody gains one (a waiter passed over ahead of
 *   it has an expired owner, whose waits are out of the graph);
 * - a completed conversion turns a wait ahead in exclusive mode into an
 *   exclusive hold: the same edges again;
 * - a cancel, timeout, release, reset, expiry or end of a session only
 *   removes waits and holds;
 * - a downgrade (exclusive to shared) removes the edges of shared waiters;
 * - locktab_install() adds edges only into the owner it installs for,
 *   which dlmd only does for a session that reclaim is opening and that
 *   has no waits yet, so no cycle can pass through it.
 *
 * So checking each acquire that queues, and each conversion, for the
 * cycles its new edges close keeps the graph of the checked waits free of
 * cycles; locktab_check() verifies that by brute force (wg_check()).
 *
 * Cost: nothing unless an acquire is about to queue (and nothing at all
 * while no other wait exists, or when its owner holds nothing and waits
 * for nothing else, so that nobody can wait for it); then one depth-first
 * search over the owners
 * reachable from its targets, where the "waiters ahead of W in conflict
 * with M" of a queue are shared prefixes, so the search is linear in the
 * waits and holds it reaches, not quadratic in a long queue.
 */
#ifndef DLM_WAITGRAPH_H
#define DLM_WAITGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "locktab.h"

struct wg_item;

/* The search's state, kept by the table between searches. */
struct waitgraph {
	uint64_t	 epoch;		/* of the last search: marks equal to it */
	struct wg_item	*stack;
	size_t		 cap;
};

void		 wg_free(struct waitgraph *);

/* Whether waits on l are in the graph: mutexes and rlocks. */
bool		 wg_lock_counts(const struct lt_lock *l);
/*
 * Whether a wait in mode want must wait for a hold or an earlier wait in
 * mode other: the one rule for the graph's edges. Exclusive conflicts with
 * everything; shared with exclusive only.
 */
bool		 wg_conflicts(enum lt_mode want, enum lt_mode other);

/*
 * Whether owner o, starting to wait for l in mode (at the tail of its
 * queue), would close a cycle. If so, and cycle is not NULL, it is told
 * there, starting with o's new wait.
 */
bool		 wg_acquire_closes(struct waitgraph *, struct lt_owner *o,
		    struct lt_lock *l, enum lt_mode mode, uint64_t now,
		    struct lt_cycle *cycle);
/*
 * Whether the holder of h, starting to convert it to exclusive (a wait at
 * the head of the queue), would close a cycle: through its own new wait,
 * or through the shared waiters of the lock, which would then wait for
 * it. The cycle starts with one of its owner's waits.
 */
bool		 wg_convert_closes(struct waitgraph *, struct lt_hold *h,
		    uint64_t now, struct lt_cycle *cycle);

/*
 * Brute force, sharing nothing with the search above but wg_conflicts():
 * the transitive closure of the graph of the waits that asked for
 * checking (locktab_check() calls it). NULL, or what is wrong.
 */
struct locktab;
const char	*wg_check(struct locktab *, uint64_t now);
/*
 * Brute force too, for a refusal: whether every step of cycle, told by
 * the search for a request not yet queued (an acquire, or with converting
 * the lock of a conversion), waits for the next step's owner, the last
 * for the first. So a DEADLOCK names a cycle that is there.
 */
bool		 wg_cycle_real(const struct lt_cycle *cycle,
		    const struct lt_lock *converting);

#endif
