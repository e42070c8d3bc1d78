/*
 * Which sessions may hold locks, as etcd knows it: the bookkeeping behind
 * an early end of the grace after a fail-over (doc/HA.md).
 *
 * - Before a session's first acquire the active puts PREFIX/sessions/NAME
 *   = its lease in ms, with no etcd lease: the record must outlive the
 *   active that wrote it, since the next active reads it. One write per
 *   session, not per lock; the acquire waits for it (dispatch.c holds the
 *   connection's frames meanwhile), later ones never wait for etcd.
 * - When a session ends while its active still is, the record is deleted
 *   lazily, by a txn that compares its mod_revision, so that it never
 *   deletes the record of a newer session of the same name.
 * - A new active reads every record at the start of its term. A record is
 *   settled once its session has reclaimed here, or once its lease has run
 *   out counted from the start of the term (later than the old active's
 *   last answer), plus a margin; the grace ends when every record is
 *   settled. Lapsed records are deleted, compared by revision as above.
 *
 * A session's lease may not grow beyond what its record says (hello clamps
 * it), or the new active could count it lapsed too soon.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dlmd.h"
#include "xmalloc.h"

#define RECORDS_RETRY_MS	100	/* a failed put or read, again */
#define RECORDS_MAX		100000	/* more: no early end of the grace */

struct record {
	char		*name;
	size_t		 namelen;
	uint32_t	 lease_ms;	/* UINT32_MAX: unreadable */
	int64_t		 rev;
	bool		 reclaimed;
	bool		 deleted;	/* lapsed, and its delete was sent */
};

/* A put in flight or waiting to be retried. */
struct record_put {
	TAILQ_ENTRY(record_put)	 link;
	uint64_t		 session_id;
	char			*name;
	uint64_t		 gen;
	uint64_t		 retry_at;	/* 0: in flight */
};

static struct {
	struct etcd		*etcd;
	char			*prefix;	/* PREFIX/sessions/ */
	void			(*changed)(void);
	uint64_t		 gen;		/* one per term as active */
	bool			 active;
	bool			 loading;
	bool			 loaded;
	bool			 overflow;	/* too many to know them all */
	bool			 load_failed;	/* said once per term */
	uint64_t		 retry_at;
	uint64_t		 term_start;
	uint64_t		 margin_ms;
	struct record		*recs;
	size_t			 nrecs;
	size_t			 unsettled;
	/* cppcheck-suppress unusedStructMember ; used through TAILQ macros */
	TAILQ_HEAD(, record_put) puts;
} rc;

static char *
record_key(const char *name)
{
	size_t len = strlen(rc.prefix) + strlen(name) + 1;
	char *k = xmalloc(len);

	snprintf(k, len, "%s%s", rc.prefix, name);
	return k;
}

static void
ignore_cb(const struct etcd_reply *r, void *arg)
{
	(void)arg;
	if (r->ok)
		metrics_observe_etcd(r->rtt_ms);
}

/* Delete name's record if it is still the one of revision rev. */
static void
record_delete(const char *name, int64_t rev)
{
	char *key = record_key(name);

	etcd_call(rc.etcd, "/v3/kv/txn", etcd_txn_body(
	    etcd_one(etcd_cmp(key, "MOD", rev)),
	    etcd_one(etcd_op("request_delete_range", etcd_req_range(key,
	    false))), NULL), ignore_cb, NULL);
	free(key);
}

static void
put_free(struct record_put *p)
{
	TAILQ_REMOVE(&rc.puts, p, link);
	free(p->name);
	free(p);
}

static void	put_send(struct record_put *, const struct session *);

static void
put_cb(const struct etcd_reply *r, void *arg)
{
	struct record_put *p = arg;
	struct session *s = session_find(p->name, strlen(p->name));
	char err[200];
	int64_t rev;
	bool ok;

	metrics_observe_etcd(r->rtt_ms);
	ok = r->ok && etcd_parse_header(r->json, &rev, err, sizeof err) == 0;
	if (p->gen != rc.gen || !rc.active) {
		/* Another term: the record stays for the next active. */
		put_free(p);
		return;
	}
	if (s == NULL || s->id != p->session_id) {
		/* The session ended meanwhile: nothing of it may be held. */
		if (ok)
			record_delete(p->name, rev);
		put_free(p);
		return;
	}
	if (!ok) {
		log_debug("records: recording session %s: %s",
		    safe_str0(p->name), r->why != NULL ? r->why : err);
		p->retry_at = now_ms() + RECORDS_RETRY_MS;
		return;
	}
	s->record = RECORD_DONE;
	s->record_rev = rev;
	put_free(p);
	rc.changed();
}

static void
put_send(struct record_put *p, const struct session *s)
{
	char *key = record_key(p->name), value[16];

	snprintf(value, sizeof value, "%u", s->record_lease_ms);
	p->retry_at = 0;
	etcd_call(rc.etcd, "/v3/kv/put", etcd_req_put(key, value,
	    strlen(value), 0), put_cb, p);
	free(key);
}

bool
records_ensure(struct session *s)
{
	struct record_put *p;

	if (!srv->cluster.enabled || s->record == RECORD_DONE)
		return true;
	if (s->record == RECORD_PUTTING || !rc.active)
		return false;
	s->record = RECORD_PUTTING;
	s->record_lease_ms = s->lease_ms;
	p = xcalloc(1, sizeof *p);
	p->session_id = s->id;
	p->name = xstrdup(s->name);
	p->gen = rc.gen;
	TAILQ_INSERT_TAIL(&rc.puts, p, link);
	put_send(p, s);
	return false;
}

void
records_session_ended(const struct session *s)
{
	if (rc.active && s->record == RECORD_DONE)
		record_delete(s->name, s->record_rev);
}

static int
record_cmp(const void *a, const void *b)
{
	const struct record *x = a, *y = b;
	size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

static struct record *
record_find(const char *name, size_t len)
{
	struct record key;

	if (rc.nrecs == 0)
		return NULL;
	memset(&key, 0, sizeof key);
	key.name = (char *)(uintptr_t)name;
	key.namelen = len;
	return bsearch(&key, rc.recs, rc.nrecs, sizeof *rc.recs, record_cmp);
}

static void
records_clear(void)
{
	for (size_t i = 0; i < rc.nrecs; i++)
		free(rc.recs[i].name);
	free(rc.recs);
	rc.recs = NULL;
	rc.nrecs = rc.unsettled = 0;
	rc.loaded = rc.loading = rc.overflow = rc.load_failed = false;
}

/* A record's lease in ms, from its value; UINT32_MAX if unreadable. */
static uint32_t
record_lease(const struct etcd_kv *kv)
{
	char *end;
	unsigned long v;

	if (kv->valuelen == 0 || kv->valuelen > 10 || kv->value[0] < '0' ||
	    kv->value[0] > '9')
		return UINT32_MAX;
	v = strtoul(kv->value, &end, 10);
	if (*end != '\0' || v >= UINT32_MAX)
		return UINT32_MAX;
	return (uint32_t)v;
}

static void
load_cb(const struct etcd_reply *r, void *arg)
{
	const json_t *kvs;
	struct etcd_kv *kv;
	size_t n = 0, want, plen = strlen(rc.prefix);
	char err[200];

	if ((uint64_t)(uintptr_t)arg != rc.gen || !rc.active)
		return;
	rc.loading = false;
	metrics_observe_etcd(r->rtt_ms);
	kvs = r->ok ? json_object_get(r->json, "kvs") : NULL;
	want = json_is_array(kvs) ? json_array_size(kvs) : 0;
	if (want > RECORDS_MAX) {
		log_warnx("records: %zu sessions recorded in etcd, more than "
		    "%d: the grace runs its full length", want, RECORDS_MAX);
		rc.overflow = true;
		rc.loaded = true;
		return;
	}
	kv = xcalloc(want + 1, sizeof *kv);
	if (!r->ok || etcd_parse_kvs(r->json, kv, want, &n, err,
	    sizeof err) != 0) {
		if (!rc.load_failed)
			log_warnx("records: reading %s: %s; retrying",
			    rc.prefix, r->ok ? err : r->why);
		rc.load_failed = true;
		rc.retry_at = now_ms() + RECORDS_RETRY_MS;
		free(kv);
		return;
	}
	rc.recs = xcalloc(n + 1, sizeof *rc.recs);
	for (size_t i = 0; i < n; i++) {
		struct record *rec;

		if (kv[i].keylen <= plen ||
		    memcmp(kv[i].key, rc.prefix, plen) != 0)
			continue;
		rec = &rc.recs[rc.nrecs++];
		rec->namelen = kv[i].keylen - plen;
		rec->name = xstrndup(kv[i].key + plen, rec->namelen);
		rec->lease_ms = record_lease(&kv[i]);
		rec->rev = kv[i].mod_revision;
	}
	etcd_kv_clear(kv, n);
	free(kv);
	qsort(rc.recs, rc.nrecs, sizeof *rc.recs, record_cmp);
	rc.unsettled = rc.nrecs;
	rc.loaded = true;
	log_info("records: %zu sessions may hold locks of the previous "
	    "active", rc.nrecs);
	rc.changed();
}

static void
load(void)
{
	rc.loading = true;
	rc.retry_at = 0;
	etcd_call(rc.etcd, "/v3/kv/range", etcd_req_range(rc.prefix, true),
	    load_cb, (void *)(uintptr_t)rc.gen);
}

void
records_term_begin(uint64_t now, uint64_t margin_ms)
{
	records_clear();
	rc.gen++;
	rc.active = true;
	rc.term_start = now;
	rc.margin_ms = margin_ms;
	load();
}

void
records_term_end(void)
{
	rc.gen++;
	rc.active = false;
	records_clear();
}

bool
records_loaded(void)
{
	return rc.loaded;
}

/* Has the record's lease run out, counted from the start of the term? */
static bool
record_lapsed(const struct record *rec, uint64_t now)
{
	return rec->lease_ms != UINT32_MAX &&
	    now >= rc.term_start + rec->lease_ms + rc.margin_ms;
}

void
records_tick(uint64_t now)
{
	struct record_put *p, *next;
	bool lapsed = false;

	if (!rc.active)
		return;
	if (!rc.loaded && !rc.loading && now >= rc.retry_at)
		load();
	for (p = TAILQ_FIRST(&rc.puts); p != NULL; p = next) {
		struct session *s = session_find(p->name, strlen(p->name));

		next = TAILQ_NEXT(p, link);
		if (p->retry_at == 0 || now < p->retry_at)
			continue;
		if (s == NULL || s->id != p->session_id || p->gen != rc.gen)
			put_free(p);
		else
			put_send(p, s);
	}
	for (size_t i = 0; i < rc.nrecs; i++) {
		struct record *rec = &rc.recs[i];

		if (!rec->reclaimed && !rec->deleted &&
		    record_lapsed(rec, now)) {
			rec->deleted = true;
			rc.unsettled--;
			log_debug("records: session %s did not reclaim within "
			    "its lease", safe_str(rec->name, rec->namelen));
			record_delete(rec->name, rec->rev);
			lapsed = true;
		}
	}
	if (lapsed)
		rc.changed();
}

bool
records_settled(void)
{
	return rc.loaded && !rc.overflow && rc.unsettled == 0;
}

int
records_claim(const char *name, size_t len, uint64_t now, uint32_t *lease_ms,
    int64_t *rev, const char **why)
{
	struct record *rec = record_find(name, len);

	if (rec == NULL) {
		*why = "no record of this session in etcd: it held no lock";
		return -1;
	}
	if (rec->reclaimed) {
		*why = "this session has already reclaimed";
		return -1;
	}
	if (rec->deleted || record_lapsed(rec, now)) {
		*why = "the session's lease has run out since the fail-over";
		return -1;
	}
	rec->reclaimed = true;
	rc.unsettled--;
	*lease_ms = rec->lease_ms;
	*rev = rec->rev;
	return 0;
}

bool
records_pending(const char *name, size_t len, uint64_t now)
{
	const struct record *rec = record_find(name, len);

	return rec != NULL && !rec->reclaimed && !rec->deleted &&
	    !record_lapsed(rec, now);
}

void
records_init(struct etcd *etcd, const char *cluster, void (*changed)(void))
{
	size_t len = strlen(cluster) + sizeof "/sessions/";

	memset(&rc, 0, sizeof rc);
	TAILQ_INIT(&rc.puts);
	rc.etcd = etcd;
	rc.changed = changed;
	rc.prefix = xmalloc(len);
	snprintf(rc.prefix, len, "%s/sessions/", cluster);
}

void
records_free(void)
{
	struct record_put *p;

	while ((p = TAILQ_FIRST(&rc.puts)) != NULL)
		put_free(p);
	records_clear();
	free(rc.prefix);
	rc.prefix = NULL;
}
