/*
 * Watches: a session asks to be told whenever a lock's holders change
 * (watch, unwatch), and is sent [2, "changed", [{lock, holders, nholders,
 * waiters}]] each time, on its connection. doc/PROTOCOL.md gives the
 * shapes.
 *
 * A watch is on a name, not on a lock object: it is kept while the lock
 * comes and goes. The registry is a tree of watched names, each with its
 * sessions' watches; the lock table reaches it only through its
 * ops->changed callback (session.c wires it), once per lock and table
 * operation, with the holders as they are after it. A session's watches
 * belong to its connection: they end with it (a lingering session has
 * none), with the session, or by unwatch.
 *
 * A notice is packed once and copied to every watcher's output, where it
 * counts against max-output like any reply: a watcher that does not read
 * is dropped as any other.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"
#include "xmalloc.h"

/* Holders listed in one state at most; nholders says how many there are. */
#define WATCH_HOLDERS_MAX	1000

/* A name some session watches. */
struct watched {
	RB_ENTRY(watched)	 entry;
	/* cppcheck-suppress unusedStructMember ; used through LIST macros */
	LIST_HEAD(, watch)	 watches;
	TAILQ_ENTRY(watched)	 pending_link;
	bool			 pending;	/* changed while held */
	uint16_t		 namelen;
	char			 name[];
};

/* One session's watch of one name. */
struct watch {
	LIST_ENTRY(watch)	 by_name;
	LIST_ENTRY(watch)	 by_session;
	struct watched		*wd;
	struct session		*s;
};

RB_HEAD(watched_tree, watched);

static int
watched_cmp(const struct watched *a, const struct watched *b)
{
	size_t n = a->namelen < b->namelen ? a->namelen : b->namelen;
	int c = memcmp(a->name, b->name, n);

	if (c != 0)
		return c;
	return (a->namelen > b->namelen) - (a->namelen < b->namelen);
}

/* libbsd's tree.h has no RB_GENERATE_STATIC; not every function is used. */
RB_PROTOTYPE_INTERNAL(watched_tree, watched, entry, watched_cmp,
    __attribute__((__unused__)) static)
RB_GENERATE_INTERNAL(watched_tree, watched, entry, watched_cmp,
    __attribute__((__unused__)) static)

static struct {
	struct watched_tree	 tree;
	/* cppcheck-suppress unusedStructMember ; used through TAILQ macros */
	TAILQ_HEAD(, watched)	 pending;
	int			 held;		/* watch_hold() depth */
	uint64_t		 nwatches;
	uint64_t		 notices;
	msgpack_sbuffer		 notice;	/* one notice, being sent */
	bool			 ready;
} wr = {
	RB_INITIALIZER(&wr.tree), TAILQ_HEAD_INITIALIZER(wr.pending), 0, 0, 0,
	{ 0, NULL, 0 }, false
};

static struct watched *
watched_find(const char *name, size_t namelen)
{
	union {
		struct watched	w;
		/* cppcheck-suppress unusedStructMember ; room for the name */
		char		space[sizeof(struct watched) + 1024];
	} key;

	if (RB_EMPTY(&wr.tree) || namelen > sizeof key - sizeof key.w)
		return NULL;
	key.w.namelen = (uint16_t)namelen;
	memcpy(key.w.name, name, namelen);
	return RB_FIND(watched_tree, &wr.tree, &key.w);
}

static void
watched_maybe_free(struct watched *wd)
{
	if (!LIST_EMPTY(&wd->watches))
		return;
	if (wd->pending)
		TAILQ_REMOVE(&wr.pending, wd, pending_link);
	RB_REMOVE(watched_tree, &wr.tree, wd);
	free(wd);
}

/* How many of l's holders one state lists: see WATCH_HOLDERS_MAX. */
static uint32_t
holders_fit(const struct lt_lock *l)
{
	const struct lt_hold *h;
	size_t bytes = 0, cap = srv->cfg->max_output / 4;
	uint32_t n = 0;

	TAILQ_FOREACH(h, &l->holders, lock_link) {
		if (n == WATCH_HOLDERS_MAX)
			break;
		bytes += strlen(session_of_owner(h->owner)->name) +
		    h->value_len + 48;
		if (n > 0 && bytes > cap)
			break;
		n++;
	}
	return n;
}

/*
 * A lock's state as watch answers it and "changed" tells it: {lock,
 * holders: [{client, token, mode, permits?, value?}], nholders, waiters}
 * (permits: a semaphore holder's). l is NULL when the lock does not exist.
 */
static void
pack_state(struct mpw *w, const char *name, size_t namelen,
    const struct lt_lock *l)
{
	uint32_t n = l != NULL ? holders_fit(l) : 0;

	mpw_map(w, 4);
	mpw_key(w, "lock");
	mpw_strn(w, name, namelen);
	mpw_key(w, "holders");
	mpw_array(w, n);
	if (l != NULL) {
		const struct lt_hold *h;
		uint32_t i = 0;

		TAILQ_FOREACH(h, &l->holders, lock_link) {
			if (i++ == n)
				break;
			mpw_map(w, 3 + (h->value != NULL) +
			    (l->kind == LT_SEMAPHORE));
			mpw_key(w, "client");
			mpw_str(w, session_of_owner(h->owner)->name);
			mpw_key(w, "token");
			mpw_u64(w, h->token);
			mpw_key(w, "mode");
			mpw_str(w, h->mode == LT_SHARED ? "shared" :
			    "exclusive");
			if (l->kind == LT_SEMAPHORE) {
				mpw_key(w, "permits");
				mpw_u64(w, h->permits);
			}
			if (h->value != NULL) {
				mpw_key(w, "value");
				mpw_bin(w, h->value, h->value_len);
			}
		}
	}
	mpw_key(w, "nholders");
	mpw_u64(w, l != NULL ? l->nholders : 0);
	mpw_key(w, "waiters");
	mpw_u64(w, l != NULL ? l->nwaiters : 0);
}

/* Tell every watcher of wd the lock's state now (l, or NULL: none). */
static void
send_changed(const struct watched *wd, const struct lt_lock *l)
{
	const struct watch *w;
	struct mpw pk;

	if (!wr.ready) {
		msgpack_sbuffer_init(&wr.notice);
		wr.ready = true;
	}
	msgpack_sbuffer_clear(&wr.notice);
	mpw_init_sbuffer(&pk, &wr.notice);
	mpw_array(&pk, 3);
	mpw_u64(&pk, DLM_MSG_NOTIFY);
	mpw_str(&pk, "changed");
	mpw_array(&pk, 1);
	pack_state(&pk, wd->name, wd->namelen, l);
	if (pk.err != 0)
		fatalx("%s: cannot pack a notice", __func__);
	LIST_FOREACH(w, &wd->watches, by_name) {
		struct conn *c = w->s->conn;
		struct evbuffer *out = conn_output(c);

		/*
		 * Rights are checked at each notice too: a reload that takes
		 * view away stops the notices at once (the watch stays, and
		 * they resume if the right comes back).
		 */
		if (out == NULL || !auth_may(c, ACL_VIEW, wd->name,
		    wd->namelen))
			continue;
		if (evbuffer_add(out, wr.notice.data, wr.notice.size) != 0)
			fatalx("%s: cannot queue a notice", __func__);
		conn_queued(c);
		wr.notices++;
	}
}

void
watch_changed(void *arg, const struct lt_lock *l)
{
	struct watched *wd;

	(void)arg;
	if ((wd = watched_find(l->name, l->namelen)) == NULL)
		return;
	if (wr.held > 0) {
		if (!wd->pending) {
			wd->pending = true;
			TAILQ_INSERT_TAIL(&wr.pending, wd, pending_link);
		}
		return;
	}
	send_changed(wd, l);
}

void
watch_hold(void)
{
	wr.held++;
}

void
watch_release(void)
{
	struct watched *wd;

	if (--wr.held > 0)
		return;
	while ((wd = TAILQ_FIRST(&wr.pending)) != NULL) {
		TAILQ_REMOVE(&wr.pending, wd, pending_link);
		wd->pending = false;
		send_changed(wd, locktab_find(srv->lt, wd->name,
		    wd->namelen));
	}
}

static void
watch_free(struct watch *w)
{
	struct watched *wd = w->wd;

	LIST_REMOVE(w, by_name);
	LIST_REMOVE(w, by_session);
	w->s->nwatches--;
	wr.nwatches--;
	free(w);
	watched_maybe_free(wd);
}

void
watch_drop_session(struct session *s)
{
	struct watch *w;

	while ((w = LIST_FIRST(&s->watches)) != NULL)
		watch_free(w);
}

/* The session's watch of wd, or NULL. */
static struct watch *
watch_of(const struct session *s, const struct watched *wd)
{
	struct watch *w;

	if (wd == NULL)
		return NULL;
	LIST_FOREACH(w, &s->watches, by_session)
		if (w->wd == wd)
			return w;
	return NULL;
}

/*
 * watch {lock}: the lock's state, and from now on a notice on each
 * change. Watching a name already watched is no error: the state again,
 * and still one notice per change.
 */
int
watch_method(struct request *req)
{
	struct session *s = req->conn->session;
	struct watched *wd;
	struct watch *w;
	const char *name;
	size_t namelen;
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0 ||
	    (rc = request_right(req, ACL_VIEW, name, namelen)) != 0)
		return rc;
	wd = watched_find(name, namelen);
	if (watch_of(s, wd) == NULL) {
		if (s->nwatches >= srv->cfg->max_watches)
			return request_error(req, DLM_E_LIMIT, "this session "
			    "watches %u locks; the limit is %u (max-watches)",
			    s->nwatches, srv->cfg->max_watches);
		if (wd == NULL) {
			wd = xcalloc(1, sizeof *wd + namelen);
			LIST_INIT(&wd->watches);
			wd->namelen = (uint16_t)namelen;
			memcpy(wd->name, name, namelen);
			RB_INSERT(watched_tree, &wr.tree, wd);
		}
		w = xcalloc(1, sizeof *w);
		w->wd = wd;
		w->s = s;
		LIST_INSERT_HEAD(&wd->watches, w, by_name);
		LIST_INSERT_HEAD(&s->watches, w, by_session);
		s->nwatches++;
		wr.nwatches++;
	}
	pack_state(&req->res, name, namelen, locktab_find(srv->lt, name,
	    namelen));
	return 0;
}

/* unwatch {lock}: no more notices of it; NOT_FOUND if it was not watched. */
int
unwatch_method(struct request *req)
{
	struct session *s = req->conn->session;
	struct watch *w;
	const char *name;
	size_t namelen;
	int rc;

	if ((rc = param_name(req, "lock", true, &name, &namelen,
	    srv->cfg->max_name_len)) != 0)
		return rc;
	if ((w = watch_of(s, watched_find(name, namelen))) == NULL)
		return request_error(req, DLM_E_NOT_FOUND, "this session does "
		    "not watch lock '%s'", safe_str(name, namelen));
	watch_free(w);
	mpw_map(&req->res, 0);
	return 0;
}

uint64_t
watch_count(void)
{
	return wr.nwatches;
}

uint64_t
watch_notices(void)
{
	return wr.notices;
}

/* At exit, after every session ended: the notice buffer. */
void
watch_free_all(void)
{
	if (wr.ready)
		msgpack_sbuffer_destroy(&wr.notice);
	wr.ready = false;
}
