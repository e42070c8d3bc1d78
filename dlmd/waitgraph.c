/* The wait-for graph and deadlock detection: see waitgraph.h. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "waitgraph.h"
#include "xmalloc.h"

/*
 * What the search visits. Besides owners, two kinds of shared nodes stand
 * for sets of owners, so that a long queue is walked once, not once per
 * waiter in it:
 *
 *   WG_AHEAD (w, m)	the owners of w and of every waiter ahead of it that
 *			conflict with m, and the holders that conflict with
 *			m: what a waiter in mode m right behind w waits for;
 *   WG_HOLDERS (l, m)	the holders of l that conflict with m: what the
 *			waiter at the head waits for.
 */
enum wg_type {
	WG_OWNER,
	WG_AHEAD,
	WG_HOLDERS,
};

struct wg_item {
	void			*node;
	/* The wait of the owner expanded that led here; NULL: the new one. */
	const struct lt_wait	*via;
	uint8_t			 type;
	uint8_t			 mode;
};

struct wg_search {
	struct waitgraph	*g;
	size_t			 n;	/* items on the stack */
	uint64_t		 epoch;
	uint64_t		 now;
	struct lt_owner		*found;	/* a goal reached */
	const struct lt_wait	*found_via;
};

void
wg_free(struct waitgraph *g)
{
	free(g->stack);
	g->stack = NULL;
	g->cap = 0;
}

bool
wg_lock_counts(const struct lt_lock *l)
{
	return l->kind == LT_MUTEX || l->kind == LT_RLOCK;
}

bool
wg_conflicts(enum lt_mode want, enum lt_mode other)
{
	return want == LT_EXCLUSIVE || other == LT_EXCLUSIVE;
}

static bool
wg_owner_expired(const struct lt_owner *o, uint64_t now)
{
	return o->deadline != 0 && o->deadline <= now;
}

static void
wg_push(struct wg_search *s, enum wg_type type, void *node,
    enum lt_mode mode, const struct lt_wait *via)
{
	struct waitgraph *g = s->g;

	if (s->n == g->cap) {
		g->cap = g->cap == 0 ? 64 : g->cap * 2;
		g->stack = xrealloc(g->stack, g->cap * sizeof *g->stack);
	}
	g->stack[s->n++] = (struct wg_item){ node, via, (uint8_t)type,
	    (uint8_t)mode };
}

/* Reach owner o through via: a goal ends the search, a new one is expanded. */
static void
wg_reach(struct wg_search *s, struct lt_owner *o, const struct lt_wait *via)
{
	if (s->found != NULL)
		return;
	if (o->wg_goal == s->epoch) {
		s->found = o;
		s->found_via = via;
		return;
	}
	if (o->wg_mark == s->epoch)
		return;
	o->wg_mark = s->epoch;
	o->wg_via = via;
	wg_push(s, WG_OWNER, o, LT_EXCLUSIVE, NULL);
}

/* What a waiter in mode, queued right behind ahead (NULL: first), waits for. */
static void
wg_push_behind(struct wg_search *s, struct lt_lock *l, struct lt_wait *ahead,
    enum lt_mode mode, const struct lt_wait *via)
{
	if (ahead != NULL)
		wg_push(s, WG_AHEAD, ahead, mode, via);
	else
		wg_push(s, WG_HOLDERS, l, mode, via);
}

/* The other holders a conversion by h's owner waits for. */
static void
wg_reach_sharers(struct wg_search *s, const struct lt_lock *l,
    const struct lt_owner *self, const struct lt_wait *via)
{
	const struct lt_hold *h;

	TAILQ_FOREACH(h, &l->holders, lock_link)
		if (h->owner != self)
			wg_reach(s, h->owner, via);
}

/* The edges of one wait w (of an owner being expanded). */
static void
wg_push_wait(struct wg_search *s, struct lt_wait *w)
{
	if (!wg_lock_counts(w->lock))
		return;
	if (w->convert)
		wg_reach_sharers(s, w->lock, w->owner, w);
	else
		wg_push_behind(s, w->lock, TAILQ_PREV(w, lt_waitq, lock_link),
		    w->mode, w);
}

static void
wg_expand(struct wg_search *s, const struct wg_item *it)
{
	const enum lt_mode m = it->mode;

	switch (it->type) {
	case WG_OWNER: {
		struct lt_owner *o = it->node;
		struct lt_wait *w;

		if (wg_owner_expired(o, s->now))
			return;
		LIST_FOREACH(w, &o->waits, owner_link)
			wg_push_wait(s, w);
		break;
	}
	case WG_AHEAD: {
		struct lt_wait *w = it->node;

		if (w->wg_mark[m] == s->epoch)
			return;
		w->wg_mark[m] = s->epoch;
		if (wg_conflicts(m, (enum lt_mode)w->mode))
			wg_reach(s, w->owner, it->via);
		wg_push_behind(s, w->lock, TAILQ_PREV(w, lt_waitq, lock_link),
		    m, it->via);
		break;
	}
	case WG_HOLDERS: {
		struct lt_lock *l = it->node;
		const struct lt_hold *h;

		if (l->wg_mark[m] == s->epoch)
			return;
		l->wg_mark[m] = s->epoch;
		TAILQ_FOREACH(h, &l->holders, lock_link)
			if (wg_conflicts(m, (enum lt_mode)h->mode))
				wg_reach(s, h->owner, it->via);
		break;
	}
	}
}

static bool
wg_run(struct wg_search *s)
{
	while (s->n > 0 && s->found == NULL) {
		struct wg_item it = s->g->stack[--s->n];

		wg_expand(s, &it);
	}
	return s->found != NULL;
}

static void
wg_begin(struct wg_search *s, struct waitgraph *g, uint64_t now)
{
	memset(s, 0, sizeof *s);
	s->g = g;
	s->epoch = ++g->epoch;
	s->now = now;
}

static void
wg_step(struct lt_cycle *c, uint32_t i, const struct lt_owner *o,
    const struct lt_lock *l, uint8_t mode)
{
	if (i < LT_CYCLE_MAX)
		c->steps[i] = (struct lt_cycle_step){ o, l, mode };
}

/*
 * Write the cycle found: start's new wait (first, as (start, l, mode))
 * or one of its waits, the waits that led from it to the goal reached,
 * and, when the goal is not start itself, last the goal's wait on l.
 */
static void
wg_tell(const struct wg_search *s, const struct lt_owner *start,
    const struct lt_lock *l, enum lt_mode mode, struct lt_cycle *c)
{
	const struct lt_wait *v, *last = NULL;
	uint32_t n = 0, i;

	if (c == NULL)
		return;
	if (s->found != start) {
		LIST_FOREACH(v, &s->found->waits, owner_link)
			if (v->lock == l)
				last = v;
	}
	/* Count the path back from the goal, then fill it in order. */
	for (v = s->found_via; ; v = v->owner->wg_via) {
		n++;
		if (v == NULL || v->owner == start)
			break;
	}
	c->len = n + (last != NULL);
	i = n;
	for (v = s->found_via; ; v = v->owner->wg_via) {
		i--;
		if (v == NULL) {
			wg_step(c, i, start, l, (uint8_t)mode);
			break;
		}
		wg_step(c, i, v->owner, v->lock, v->mode);
		if (v->owner == start)
			break;
	}
	if (last != NULL)
		wg_step(c, n, last->owner, last->lock, last->mode);
}

bool
wg_acquire_closes(struct waitgraph *g, struct lt_owner *o, struct lt_lock *l,
    enum lt_mode mode, uint64_t now, struct lt_cycle *cycle)
{
	struct wg_search s;

	/*
	 * Nobody can wait for an owner that holds nothing and waits for
	 * nothing else (its new wait goes last in its queue): the common
	 * case of a contended lock costs nothing more.
	 */
	if (!wg_lock_counts(l) || wg_owner_expired(o, now) ||
	    (o->nholds == 0 && o->nwaits == 0))
		return false;
	wg_begin(&s, g, now);
	/* Only the new wait leads from o: any cycle it closes starts there. */
	o->wg_goal = s.epoch;
	o->wg_mark = s.epoch;
	wg_push_behind(&s, l, TAILQ_LAST(&l->waiters, lt_waitq), mode, NULL);
	if (!wg_run(&s))
		return false;
	wg_tell(&s, o, l, mode, cycle);
	return true;
}

bool
wg_convert_closes(struct waitgraph *g, struct lt_hold *h, uint64_t now,
    struct lt_cycle *cycle)
{
	struct lt_lock *l = h->lock;
	struct lt_owner *o = h->owner;
	struct lt_wait *w;
	struct wg_search s;

	if (!wg_lock_counts(l) || wg_owner_expired(o, now))
		return false;
	wg_begin(&s, g, now);
	/*
	 * The goals: o itself, and the owners of the waiters that gain an
	 * edge to o, those whose mode conflicts with the exclusive wait
	 * ahead of them but not with o's shared hold.
	 */
	o->wg_goal = s.epoch;
	o->wg_mark = s.epoch;
	TAILQ_FOREACH(w, &l->waiters, lock_link)
		if (wg_conflicts((enum lt_mode)w->mode, LT_EXCLUSIVE) &&
		    !wg_conflicts((enum lt_mode)w->mode, (enum lt_mode)h->mode) &&
		    !wg_owner_expired(w->owner, now))
			w->owner->wg_goal = s.epoch;
	/* Every wait of o leads on: the new one, and those it had. */
	wg_reach_sharers(&s, l, o, NULL);
	LIST_FOREACH(w, &o->waits, owner_link)
		wg_push_wait(&s, w);
	if (!wg_run(&s))
		return false;
	wg_tell(&s, o, l, LT_EXCLUSIVE, cycle);
	return true;
}

/*
 * The brute force. Owners of checked waits are the nodes, numbered by
 * their place in a sorted array; the edges are found by walking every
 * queue anew, and Warshall's transitive closure says whether any owner
 * reaches itself. Quadratic in a queue and cubic in the owners: for tests
 * and fuzzers, and skipped past WG_CHECK_MAX owners.
 */
#define WG_CHECK_MAX	2048

static int
wg_ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a;
	uintptr_t y = (uintptr_t)*(const void *const *)b;

	return (x > y) - (x < y);
}

/* The node of owner o, or -1 when o has no checked wait. */
static long
wg_index(const struct lt_owner **nodes, size_t n, const struct lt_owner *o)
{
	const struct lt_owner **p = bsearch(&o, nodes, n, sizeof *nodes,
	    wg_ptr_cmp);

	return p != NULL ? (long)(p - nodes) : -1;
}

static bool
wg_checked_wait(const struct lt_wait *w, uint64_t now)
{
	return w->checked && wg_lock_counts(w->lock) &&
	    !wg_owner_expired(w->owner, now);
}

static void
wg_edge(uint64_t *m, size_t words, long from, long to)
{
	if (from >= 0 && to >= 0)
		m[(size_t)from * words + (size_t)to / 64] |=
		    UINT64_C(1) << ((size_t)to % 64);
}

/* Whether step s (a wait, or the request refused) waits for owner next. */
static bool
wg_step_real(const struct lt_cycle_step *s, const struct lt_owner *next,
    bool first, const struct lt_lock *converting,
    const struct lt_owner *converter)
{
	enum lt_mode mode = (enum lt_mode)s->mode;
	const struct lt_hold *h;
	const struct lt_wait *v;
	bool convert = first && converting != NULL;

	TAILQ_FOREACH(h, &s->lock->holders, lock_link)
		if (h->owner == next && h->owner != s->owner &&
		    (convert || wg_conflicts(mode, (enum lt_mode)h->mode)))
			return true;
	/* A conversion goes to the head: nobody waits ahead of it. */
	if (convert)
		return false;
	TAILQ_FOREACH(v, &s->lock->waiters, lock_link) {
		if (v->owner == s->owner)
			break;		/* only the waits ahead of its own */
		if (v->owner == next &&
		    wg_conflicts(mode, (enum lt_mode)v->mode))
			return true;
	}
	/* A shared waiter behind a conversion would wait for the converter. */
	return converting != NULL && s->lock == converting &&
	    mode == LT_SHARED && next == converter;
}

bool
wg_cycle_real(const struct lt_cycle *c, const struct lt_lock *converting)
{
	if (c->len == 0)
		return false;
	if (c->len > LT_CYCLE_MAX)
		return true;	/* cut short: the rest is not there to see */
	for (uint32_t k = 0; k < c->len; k++) {
		const struct lt_owner *next = c->steps[(k + 1) % c->len].owner;

		if (!wg_step_real(&c->steps[k], next, k == 0, converting,
		    c->steps[0].owner))
			return false;
	}
	return true;
}

const char *
wg_check(struct locktab *lt, uint64_t now)
{
	const struct lt_owner **nodes = NULL;
	struct lt_lock *l;
	const struct lt_wait *w, *v;
	const struct lt_hold *h;
	uint64_t *m;
	size_t n = 0, cap = 0, k, words;
	const char *why = NULL;

	for (l = locktab_first_from(lt, "", 0); l != NULL;
	    l = locktab_next(lt, l))
		TAILQ_FOREACH(w, &l->waiters, lock_link) {
			if (!wg_checked_wait(w, now))
				continue;
			if (n == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				nodes = xrealloc(nodes, cap * sizeof *nodes);
			}
			nodes[n++] = w->owner;
		}
	if (n == 0)
		return NULL;
	qsort(nodes, n, sizeof *nodes, wg_ptr_cmp);
	for (size_t i = k = 1; i < n; i++)
		if (nodes[i] != nodes[k - 1])
			nodes[k++] = nodes[i];
	n = k;
	if (n > WG_CHECK_MAX) {
		free(nodes);
		return NULL;
	}
	words = (n + 63) / 64;
	m = xcalloc(n * words, sizeof *m);
	for (l = locktab_first_from(lt, "", 0); l != NULL;
	    l = locktab_next(lt, l))
		TAILQ_FOREACH(w, &l->waiters, lock_link) {
			long u;

			if (!wg_checked_wait(w, now))
				continue;
			u = wg_index(nodes, n, w->owner);
			TAILQ_FOREACH(h, &l->holders, lock_link)
				if (w->convert ? h->owner != w->owner :
				    wg_conflicts((enum lt_mode)w->mode,
				    (enum lt_mode)h->mode))
					wg_edge(m, words, u,
					    wg_index(nodes, n, h->owner));
			for (v = TAILQ_FIRST(&l->waiters); v != w;
			    v = TAILQ_NEXT(v, lock_link))
				if (wg_conflicts((enum lt_mode)w->mode,
				    (enum lt_mode)v->mode))
					wg_edge(m, words, u,
					    wg_index(nodes, n, v->owner));
		}
	for (k = 0; k < n; k++)
		for (size_t i = 0; i < n; i++)
			if (m[i * words + k / 64] & (UINT64_C(1) << (k % 64)))
				for (size_t j = 0; j < words; j++)
					m[i * words + j] |= m[k * words + j];
	for (k = 0; k < n && why == NULL; k++)
		if (m[k * words + k / 64] & (UINT64_C(1) << (k % 64)))
			why = "the wait-for graph has a cycle of checked waits";
	free(m);
	free(nodes);
	return why;
}
