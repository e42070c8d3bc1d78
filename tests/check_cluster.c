/*
 * dlmd in cluster mode against a real three-member etcd on 127.0.0.1:
 * election, NOT_ACTIVE and its hint, fail-over after SIGKILL and SIGSTOP,
 * tokens that only grow, etcd members lost and back, etcd missing at
 * start. Skipped (status 77) when etcd is not installed.
 *
 * Clients speak the raw protocol over each dlmd's Unix socket; the address
 * a dlmd advertises is its TCP listener's. The libdlm cases use the
 * library as a service would, given every member's address.
 */
#include "config.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "dlm.h"
#include "etcdfix.h"
#include "testutil.h"

#define NODES		3
#define TTL		"3000"	/* the shortest that rides out a busy host */
#define LEASE_MAX	"2000"	/* so the grace is 3 s */
#define GRACE_MS	3000

static struct etcd_cluster ec;
static struct cluster_node nodes[NODES];

/* Started with extra, a flag and its value (or NULL: none). */
static void
node_start_with(struct cluster_node *n, const char *ttl, const char *lease_max,
    const char *extra, const char *extra_value)
{
	cluster_node_start(n, &ec, ttl, lease_max, extra, extra_value);
}

static void
node_start_lease(struct cluster_node *n, const char *ttl, const char *lease_max)
{
	node_start_with(n, ttl, lease_max, NULL, NULL);
}

static void
node_start(struct cluster_node *n, const char *ttl)
{
	node_start_lease(n, ttl, LEASE_MAX);
}

static void
setup(void)
{
	memset(&ec, 0, sizeof ec);
	memset(nodes, 0, sizeof nodes);
}

/* Everything stopped first, then what went wrong said. */
static void
teardown(void)
{
	cluster_teardown(nodes, NODES, &ec);
}

static int
wait_one_active(int ms)
{
	return cluster_wait_one_active(nodes, NODES, ms);
}

/*
 * etcd and two dlmd with the tests' TTL: the active's index, and in
 * *standby (when not NULL) the other's.
 */
static int
two_nodes_up(int *standby)
{
	int a;

	etcd_cluster_start(&ec);
	node_start(&nodes[0], TTL);
	node_start(&nodes[1], TTL);
	a = wait_one_active(15000);
	if (standby != NULL)
		*standby = 1 - a;
	return a;
}

/* A session on n with a lease of ms; NULL when n answers NOT_ACTIVE. */
static struct tc *
session_lease(struct cluster_node *n, const char *name, long long ms)
{
	struct tc *c = tc_connect(&n->p);
	struct reply *r = tc_call(c, "hello", "proto:i client:s lease_ms:i",
	    1LL, name, ms);

	if (r->err != 0) {
		ck_assert_str_eq(reply_errname(r), "NOT_ACTIVE");
		tc_close(c);
		return NULL;
	}
	return c;
}

static struct tc *
session_on(struct cluster_node *n, const char *name)
{
	return session_lease(n, name, 2000);
}

/*
 * Acquire lock on c waiting up to wait_ms, pinging meanwhile as a client
 * library does (the session's lease is shorter than a grace period); the
 * token, or 0 if refused.
 */
static uint64_t
acquire(struct tc *c, const char *lock, long long wait_ms)
{
	uint32_t id = tc_send(c, "acquire", "lock:s timeout_ms:i", lock,
	    wait_ms);
	uint64_t deadline = mono_ms() + (uint64_t)wait_ms + 5000;
	struct reply *r;

	while ((r = tc_wait(c, id, 500)) == NULL) {
		ck_assert_msg(!c->eof, "the connection closed during acquire");
		ck_assert_msg(mono_ms() < deadline, "no answer to acquire");
		tc_send(c, "ping", NULL);
	}
	if (r->err != 0) {
		fprintf(stderr, "check_cluster: acquire %s: %s\n", lock,
		    reply_errmsg(r));
		return 0;
	}
	return reply_u64(r, "token");
}

/* A grant from node n (retrying hello until it is active). */
static uint64_t
grant_on(struct cluster_node *n, const char *lock, int ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)ms, token;
	struct tc *c;

	while ((c = session_on(n, "granter")) == NULL) {
		ck_assert_msg(mono_ms() < deadline, "%s never took a session",
		    n->adv);
		sleep_ms(100);
	}
	token = acquire(c, lock, ms);
	ck_assert_msg(token != 0, "no grant from %s", n->adv);
	tc_call(c, "bye", NULL);
	tc_close(c);
	return token;
}

START_TEST(one_active_and_the_others_point_at_it)
{
	static char page[65536];
	char metrics[64];
	struct reply *r;
	struct tc *c;
	int a, members = 0, mport = free_tcp_port();
	uint64_t deadline;

	etcd_cluster_start(&ec);
	snprintf(metrics, sizeof metrics, "127.0.0.1:%d", mport);
	for (int i = 0; i < NODES; i++)
		node_start_with(&nodes[i], TTL, LEASE_MAX, i == 0 ?
		    "--metrics-listen" : NULL, metrics);
	a = wait_one_active(15000);
	/* Still one, a little later. */
	sleep_ms(500);
	ck_assert_int_eq(wait_one_active(1000), a);

	for (int i = 0; i < NODES; i++) {
		if (i == a)
			continue;
		/* A standby learns the active within a poll or two. */
		deadline = mono_ms() + 5000;
		for (;;) {
			c = tc_connect(&nodes[i].p);
			r = tc_call(c, "hello", "proto:i", 1LL);
			ck_assert_str_eq(reply_errname(r), "NOT_ACTIVE");
			ck_assert_int_eq(r->err, 16);
			if (mpr_get(r->error, "active") != NULL &&
			    strcmp(obj_str(r->error, "active"),
			    nodes[a].adv) == 0) {
				tc_close(c);
				break;
			}
			tc_close(c);
			ck_assert_msg(mono_ms() < deadline, "standby %d never "
			    "named the active %s", i, nodes[a].adv);
			sleep_ms(100);
		}
		/* Nothing but hello, stats and cluster without a session. */
		c = tc_connect(&nodes[i].p);
		r = tc_call(c, "acquire", "lock:s", "x");
		ck_assert_str_eq(reply_errname(r), "NO_SESSION");
		tc_close(c);
	}

	/* The members, as the active lists them after a renewal or two. */
	deadline = mono_ms() + 5000;
	while (members < NODES && mono_ms() < deadline) {
		c = session_on(&nodes[a], "lister");
		ck_assert_ptr_nonnull(c);
		r = tc_call(c, "cluster", NULL);
		ck_assert_int_eq(r->err, 0);
		ck_assert_str_eq(reply_str(r, "active"), nodes[a].adv);
		members = (int)reply_get(r, "members")->via.array.size;
		tc_close(c);
		if (members < NODES)
			sleep_ms(200);
	}
	ck_assert_int_eq(members, NODES);

	/* The active grants, and says what tokens it may give. */
	c = session_on(&nodes[a], "user");
	ck_assert_ptr_nonnull(c);
	{
		uint64_t t = acquire(c, "lock", 10000), lo, hi;

		r = tc_call(c, "stats", NULL);
		lo = reply_u64(r, "token_lo");
		hi = reply_u64(r, "token_hi");
		ck_assert_str_eq(reply_str(r, "role"), "active");
		ck_assert_uint_gt(t, 0);
		ck_assert_msg(lo <= t && t <= hi, "token %llu outside the "
		    "reserved %llu..%llu", (unsigned long long)t,
		    (unsigned long long)lo, (unsigned long long)hi);
	}
	tc_close(c);

	/* Metrics say the same, and time etcd's answers. */
	ck_assert(http_get(mport, "/metrics", page, sizeof page));
	ck_assert_msg(strstr(page, a == 0 ?
	    "dlmd_cluster_role{role=\"active\"} 1" :
	    "dlmd_cluster_role{role=\"standby\"} 1") != NULL, "%s", page);
	ck_assert(strstr(page, "dlmd_cluster_epoch ") != NULL);
	ck_assert(strstr(page, "dlmd_cluster_grace_remaining_ms ") != NULL);
	ck_assert(strstr(page, "dlmd_cluster_reclaims_total ") != NULL);
	ck_assert(strstr(page, "dlmd_cluster_etcd_seconds_count ") != NULL);
	ck_assert(strstr(page, "dlmd_cluster_etcd_seconds_count 0\n") == NULL);
}
END_TEST

START_TEST(sigkill_the_active)
{
	uint64_t t1, t2, killed, took;
	int a, b;

	a = two_nodes_up(&b);
	t1 = grant_on(&nodes[a], "job", 10000);

	killed = mono_ms();
	cluster_node_kill(&nodes[a]);
	t2 = grant_on(&nodes[b], "job", 30000);
	took = mono_ms() - killed;
	fprintf(stderr, "check_cluster: SIGKILL of the active to the first "
	    "grant by the next: %llu ms (TTL " TTL " ms, grace %d ms)\n",
	    (unsigned long long)took, GRACE_MS);
	ck_assert_uint_gt(t2, t1);
	/* At worst: the TTL, its expiry slack, a poll, the grace, slack. */
	ck_assert_uint_lt(took, 3000 + 1000 + 500 + GRACE_MS + 3000);
	/*
	 * The granter said bye: once its record is gone nobody may hold a
	 * lock, and the grace may end at once; if the kill came before the
	 * record's lazy delete, the grace waits for its lease instead.
	 */
}
END_TEST

/* What a session must keep to reclaim: its name, secret and receipt. */
struct ident {
	struct tc	*c;
	char		 name[64];
	char		 secret[64];
	uint8_t		 receipt[32];
};

/* A hold as a client keeps it, with the receipt of its last grant. */
struct held {
	char		 lock[64];
	const char	*kind;
	const char	*mode;
	uint64_t	 token;
	uint64_t	 count;
	uint64_t	 proven;	/* the receipt's count */
	uint8_t		 receipt[32];
	/* A semaphore's (capacity not 0): held, and proven by the receipt. */
	uint64_t	 capacity;
	uint64_t	 permits;
	uint64_t	 proven_permits;
};

static void
copy_bin(const struct reply *r, const char *key, uint8_t *out)
{
	const msgpack_object *o = reply_get(r, key);

	ck_assert_msg(o != NULL && o->type == MSGPACK_OBJECT_BIN &&
	    o->via.bin.size == 32, "no 32-byte '%s' in the result", key);
	memcpy(out, o->via.bin.ptr, 32);
}

/* A session on the active n (waiting for one), keeping its identity. */
static void
ident_open_lease(struct ident *id, struct cluster_node *n, const char *name,
    long long lease_ms)
{
	uint64_t deadline = mono_ms() + 15000;
	struct reply *r;

	memset(id, 0, sizeof *id);
	snprintf(id->name, sizeof id->name, "%s", name);
	for (;;) {
		id->c = tc_connect(&n->p);
		r = tc_call(id->c, "hello", "proto:i client:s lease_ms:i", 1LL,
		    name, lease_ms);
		if (r->err == 0)
			break;
		ck_assert_str_eq(reply_errname(r), "NOT_ACTIVE");
		tc_close(id->c);
		ck_assert_msg(mono_ms() < deadline, "no session on %s",
		    n->adv);
		sleep_ms(100);
	}
	snprintf(id->secret, sizeof id->secret, "%s", reply_str(r, "secret"));
	copy_bin(r, "receipt", id->receipt);
}

static void
ident_open(struct ident *id, struct cluster_node *n, const char *name)
{
	ident_open_lease(id, n, name, 2000);
}

/* Acquire on id's session at once; the hold with its receipt. */
static void
hold_take(struct ident *id, struct held *h, const char *lock,
    const char *kind, const char *mode)
{
	struct reply *r = tc_call(id->c, "acquire", "lock:s kind:s mode:s "
	    "timeout_ms:i", lock, kind, mode, 0LL);

	ck_assert_msg(r->err == 0, "acquire %s: %s", lock, reply_errmsg(r));
	memset(h, 0, sizeof *h);
	snprintf(h->lock, sizeof h->lock, "%s", lock);
	h->kind = kind;
	h->mode = mode;
	h->token = reply_u64(r, "token");
	h->count = h->proven = reply_u64(r, "count");
	copy_bin(r, "receipt", h->receipt);
}

/* Take permits of semaphore lock of capacity cap on id's session. */
static void
hold_take_sem(struct ident *id, struct held *h, const char *lock,
    long long cap, long long permits)
{
	struct reply *r = tc_call(id->c, "acquire", "lock:s kind:s "
	    "capacity:i permits:i timeout_ms:i", lock, "semaphore", cap,
	    permits, 0LL);

	ck_assert_msg(r->err == 0, "acquire %s: %s", lock, reply_errmsg(r));
	memset(h, 0, sizeof *h);
	snprintf(h->lock, sizeof h->lock, "%s", lock);
	h->kind = "semaphore";
	h->mode = "exclusive";
	h->token = reply_u64(r, "token");
	h->count = h->proven = reply_u64(r, "count");
	h->capacity = (uint64_t)cap;
	h->permits = h->proven_permits = reply_u64(r, "permits");
	ck_assert_uint_eq(h->permits, (uint64_t)permits);
	copy_bin(r, "receipt", h->receipt);
}

static void
pack_s(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Send reclaim for id on c with n holds (as given: they may be forged). */
static uint32_t
reclaim_send(struct tc *c, const struct ident *id, const struct held *h,
    int n)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint32_t msgid = c->next_id++;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint32(&pk, 0);
	msgpack_pack_uint32(&pk, msgid);
	pack_s(&pk, "reclaim");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 6);
	pack_s(&pk, "proto");
	msgpack_pack_uint32(&pk, 1);
	pack_s(&pk, "client");
	pack_s(&pk, id->name);
	pack_s(&pk, "secret");
	pack_s(&pk, id->secret);
	pack_s(&pk, "receipt");
	msgpack_pack_bin_with_body(&pk, id->receipt, 32);
	pack_s(&pk, "lease_ms");
	msgpack_pack_uint32(&pk, 2000);
	pack_s(&pk, "holds");
	msgpack_pack_array(&pk, (uint32_t)n);
	for (int i = 0; i < n; i++) {
		msgpack_pack_map(&pk, h[i].capacity != 0 ? 10 : 7);
		if (h[i].capacity != 0) {
			pack_s(&pk, "capacity");
			msgpack_pack_uint64(&pk, h[i].capacity);
			pack_s(&pk, "permits");
			msgpack_pack_uint64(&pk, h[i].permits);
			pack_s(&pk, "receipt_permits");
			msgpack_pack_uint64(&pk, h[i].proven_permits);
		}
		pack_s(&pk, "lock");
		pack_s(&pk, h[i].lock);
		pack_s(&pk, "kind");
		pack_s(&pk, h[i].kind);
		pack_s(&pk, "mode");
		pack_s(&pk, h[i].mode);
		pack_s(&pk, "token");
		msgpack_pack_uint64(&pk, h[i].token);
		pack_s(&pk, "count");
		msgpack_pack_uint64(&pk, h[i].count);
		pack_s(&pk, "receipt_count");
		msgpack_pack_uint64(&pk, h[i].proven);
		pack_s(&pk, "receipt");
		msgpack_pack_bin_with_body(&pk, h[i].receipt, 32);
	}
	tc_send_raw(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return msgid;
}

/*
 * Reclaim on n, retrying while it is not active yet; the answer (an
 * error, or the result), its connection left in *out.
 */
static struct reply *
reclaim_on(struct cluster_node *n, const struct ident *id, const struct held *h,
    int nh, struct tc **out)
{
	uint64_t deadline = mono_ms() + 20000;
	struct reply *r;
	struct tc *c;

	for (;;) {
		c = tc_connect(&n->p);
		r = tc_wait(c, reclaim_send(c, id, h, nh), 5000);
		ck_assert_msg(r != NULL, "no answer to reclaim");
		if (r->err != 16)
			break;
		tc_close(c);
		ck_assert_msg(mono_ms() < deadline, "%s never became active",
		    n->adv);
		sleep_ms(50);
	}
	*out = c;
	return r;
}

/* The outcome of claim i in a reclaim's result. */
static const msgpack_object *
outcome(const struct reply *r, uint32_t i)
{
	const msgpack_object *holds = reply_get(r, "holds");

	ck_assert_ptr_nonnull(holds);
	ck_assert_int_eq(holds->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_gt(holds->via.array.size, i);
	return &holds->via.array.ptr[i];
}

static bool
kept(const msgpack_object *o)
{
	const msgpack_object *k = mpr_get(o, "kept");

	return k != NULL && k->type == MSGPACK_OBJECT_BOOLEAN &&
	    k->via.boolean;
}

/* Who holds lock with token, as n's check says; "" if nobody. */
static const char *
holder_of(struct tc *c, const char *lock, uint64_t token)
{
	struct reply *r = tc_call(c, "check", "lock:s token:i", lock,
	    (long long)token);

	ck_assert_int_eq(r->err, 0);
	return reply_bool(r, "held") ? reply_str(r, "client") : "";
}

/*
 * Holders keep their locks through a SIGKILL of the active: they reclaim
 * on the next with their receipts, same tokens and counts; the grace ends
 * as soon as every recorded session has reclaimed, and a waiter that
 * re-sends its acquire is served once the holder releases.
 */
START_TEST(holders_reclaim_after_sigkill)
{
	struct ident holder, waiter;
	struct held hl[2], r2;
	struct reply *r;
	struct tc *hc, *wc, *fc;
	uint64_t killed, active_at, took, fresh, first_ns, later_ns;
	uint32_t wid;
	int a, b;

	a = two_nodes_up(&b);

	ident_open(&holder, &nodes[a], "holder");
	/* The first acquire waits for the session's record in etcd. */
	first_ns = mono_ns();
	hold_take(&holder, &hl[0], "L", "mutex", "exclusive");
	first_ns = mono_ns() - first_ns;
	/* An rlock entered twice, left once: a count below its receipt's. */
	later_ns = mono_ns();
	hold_take(&holder, &hl[1], "R", "rlock", "shared");
	later_ns = mono_ns() - later_ns;
	fprintf(stderr, "check_cluster: a session's first acquire %.2f ms "
	    "(with its record in etcd), its next %.2f ms\n",
	    (double)first_ns / 1e6, (double)later_ns / 1e6);
	hold_take(&holder, &r2, "R", "rlock", "shared");
	ck_assert_uint_eq(r2.count, 2);
	ck_assert_uint_eq(r2.token, hl[1].token);
	hl[1] = r2;
	r = tc_call(holder.c, "release", "lock:s", "R");
	ck_assert_uint_eq(reply_u64(r, "count"), 1);
	hl[1].count = 1;
	ident_open(&waiter, &nodes[a], "waiter");
	wid = tc_send(waiter.c, "acquire", "lock:s timeout_ms:i", "L",
	    60000LL);
	ck_assert_ptr_null(tc_wait(waiter.c, wid, 200));

	killed = mono_ms();
	cluster_node_kill(&nodes[a]);
	tc_close(holder.c);
	tc_close(waiter.c);

	r = reclaim_on(&nodes[b], &holder, hl, 2, &hc);
	active_at = mono_ms();
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(kept(outcome(r, 0)));
	ck_assert(kept(outcome(r, 1)));
	ck_assert_uint_eq(obj_u64(outcome(r, 0), "token"), hl[0].token);
	ck_assert_uint_eq(obj_u64(outcome(r, 1), "count"), 1);
	ck_assert_str_eq(holder_of(hc, "L", hl[0].token), "holder");
	ck_assert_str_eq(holder_of(hc, "R", hl[1].token), "holder");
	/* The waiter reclaims its session (no holds) and asks again. */
	r = reclaim_on(&nodes[b], &waiter, NULL, 0, &wc);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	wid = tc_send(wc, "acquire", "lock:s timeout_ms:i", "L", 20000LL);

	/* Every recorded session is back: the grace is over, grants go. */
	fc = session_on(&nodes[b], "fresh");
	ck_assert_ptr_nonnull(fc);
	fresh = acquire(fc, "fresh-lock", 20000);
	took = mono_ms() - killed;
	fprintf(stderr, "check_cluster: SIGKILL of the active to the first "
	    "new grant with reclaiming holders: %llu ms (%llu ms after the "
	    "new active answered the first reclaim; TTL " TTL " ms, full "
	    "grace %d ms)\n", (unsigned long long)took,
	    (unsigned long long)(mono_ms() - active_at), GRACE_MS);
	ck_assert_uint_gt(fresh, hl[0].token);
	ck_assert_uint_lt(mono_ms() - active_at, GRACE_MS / 2);

	/* The waiter is served when the holder lets go, above its token. */
	ck_assert_ptr_null(tc_wait(wc, wid, 200));
	r = tc_call(hc, "release", "lock:s", "L");
	ck_assert_int_eq(r->err, 0);
	r = tc_wait(wc, wid, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_gt(reply_u64(r, "token"), hl[0].token);
	/* The rlock's count is as claimed: one release ends it. */
	r = tc_call(hc, "release", "lock:s", "R");
	ck_assert_uint_eq(reply_u64(r, "count"), 0);
	tc_close(hc);
	tc_close(wc);
	tc_close(fc);
}
END_TEST

/*
 * Forged or altered claims are refused: a wrong secret or session
 * receipt, a hold's token, count, lock, mode or kind altered, a receipt
 * of another hold, a session that never held a lock, and any reclaim
 * outside the grace or on a standby.
 */
START_TEST(forged_reclaims_refused)
{
	struct ident holder, idle, late, brief, forged;
	struct held h, m, bad[7], x;
	struct reply *r;
	struct tc *c, *stranger;
	uint64_t active_at;
	uint32_t sid;
	uint64_t deadline;
	int a, b;

	a = two_nodes_up(&b);
	ident_open(&holder, &nodes[a], "holder");
	hold_take(&holder, &h, "L", "mutex", "exclusive");
	hold_take(&holder, &m, "M", "mutex", "exclusive");
	ident_open(&idle, &nodes[a], "idle");	/* never acquires */
	ident_open(&late, &nodes[a], "late");
	hold_take(&late, &x, "X", "mutex", "exclusive");
	/* A lease of 1 s: it lapses a second before "late" does. */
	ident_open_lease(&brief, &nodes[a], "brief", 1000);
	hold_take(&brief, &x, "Y", "mutex", "exclusive");
	cluster_node_kill(&nodes[a]);

	/* Standby or active: a wrong secret is refused by the receipt. */
	forged = holder;
	forged.secret[0] = forged.secret[0] == 'a' ? 'b' : 'a';
	r = reclaim_on(&nodes[b], &forged, &h, 1, &c);
	active_at = mono_ms();
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	tc_close(c);
	forged = holder;
	forged.receipt[5] ^= 1;
	r = reclaim_on(&nodes[b], &forged, &h, 1, &c);
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	tc_close(c);
	/* A receipt for the right session under another name. */
	forged = holder;
	snprintf(forged.name, sizeof forged.name, "idle");
	r = reclaim_on(&nodes[b], &forged, &h, 1, &c);
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	tc_close(c);
	/* A true session that never held a lock has nothing to reclaim. */
	r = reclaim_on(&nodes[b], &idle, NULL, 0, &c);
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	tc_close(c);

	/* A stranger's hello of the name waits for its reclaim. */
	stranger = tc_connect(&nodes[b].p);
	sid = tc_send(stranger, "hello", "proto:i client:s", 1LL, "holder");
	ck_assert_ptr_null(tc_wait(stranger, sid, 300));

	/* Each claim altered one way; then the true ones. */
	for (int i = 0; i < 5; i++)
		bad[i] = h;
	bad[0].token++;
	bad[1].count = bad[1].proven = 2;
	snprintf(bad[2].lock, sizeof bad[2].lock, "L2");
	bad[3].mode = "shared";
	bad[4].kind = "rlock";
	bad[5] = m;
	memcpy(bad[5].receipt, h.receipt, 32);
	bad[6] = h;
	{
		struct held all[8];

		memcpy(all, bad, sizeof bad);
		all[7] = m;
		r = reclaim_on(&nodes[b], &holder, all, 8, &c);
	}
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	for (uint32_t i = 0; i < 6; i++) {
		ck_assert_msg(!kept(outcome(r, i)), "altered claim %u kept", i);
		ck_assert_str_eq(obj_str(outcome(r, i), "error"),
		    "PERMISSION");
	}
	ck_assert(kept(outcome(r, 6)));
	ck_assert(kept(outcome(r, 7)));
	r = tc_wait(stranger, sid, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "NAME_IN_USE");
	tc_close(stranger);
	ck_assert_str_eq(holder_of(c, "L", h.token), "holder");
	ck_assert_str_eq(holder_of(c, "M", m.token), "holder");
	/* Not twice. */
	{
		struct tc *c2;

		r = reclaim_on(&nodes[b], &holder, &h, 1, &c2);
		ck_assert_str_eq(reply_errname(r), "NAME_IN_USE");
		tc_close(c2);
	}
	tc_close(c);

	/*
	 * Past brief's lease since the fail-over (plus the margin), though
	 * still in the grace that "late" keeps open: too late for brief.
	 */
	while (mono_ms() < active_at + 1000 + 1000 + 400)
		sleep_ms(50);
	r = reclaim_on(&nodes[b], &brief, &x, 1, &c);
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	ck_assert_msg(strstr(reply_errmsg(r), "lease has run out") != NULL,
	    "%s", reply_errmsg(r));
	tc_close(c);

	/* "late" lapses; once the grace is over no claim is taken. */
	deadline = mono_ms() + 10000;
	for (;;) {
		c = session_on(&nodes[b], "probe");
		ck_assert_ptr_nonnull(c);
		r = tc_call(c, "stats", NULL);
		uint64_t grace_ms = reply_u64(r, "grace_ms");
		/* Without bye a clustered session lingers for its lease. */
		tc_call(c, "bye", NULL);
		tc_close(c);
		if (grace_ms == 0)
			break;
		ck_assert_msg(mono_ms() < deadline, "the grace never ended");
		sleep_ms(200);
	}
	r = reclaim_on(&nodes[b], &late, &x, 0, &c);
	ck_assert_str_eq(reply_errname(r), "NOT_FOUND");
	ck_assert_msg(strstr(reply_errmsg(r), "grace") != NULL, "%s",
	    reply_errmsg(r));
	tc_close(c);
	/* Their server is gone; what is left is this process's memory. */
	tc_close(holder.c);
	tc_close(idle.c);
	tc_close(late.c);
	tc_close(brief.c);
}
END_TEST

/*
 * Two sessions claim one exclusive lock (as when a loss notice died with
 * the old active): the higher token keeps it, whichever claims first, and
 * a holder that loses it is told "lost".
 */
START_TEST(conflicting_reclaims_go_to_the_higher_token)
{
	struct ident A, B;
	struct held ap, aq, bp, bq, ha[2], hb[2];
	struct reply *r;
	struct tc *ac, *bc;
	int a, b;

	a = two_nodes_up(&b);
	ident_open(&A, &nodes[a], "A");
	ident_open(&B, &nodes[a], "B");
	/* P: A's grant, then B's; Q: B's, then A's. */
	hold_take(&A, &ap, "P", "mutex", "exclusive");
	tc_call(A.c, "release", "lock:s", "P");
	hold_take(&B, &bp, "P", "mutex", "exclusive");
	hold_take(&B, &bq, "Q", "mutex", "exclusive");
	tc_call(B.c, "release", "lock:s", "Q");
	hold_take(&A, &aq, "Q", "mutex", "exclusive");
	ck_assert_uint_gt(bp.token, ap.token);
	ck_assert_uint_gt(aq.token, bq.token);
	cluster_node_kill(&nodes[a]);

	ha[0] = ap;
	ha[1] = aq;
	r = reclaim_on(&nodes[b], &A, ha, 2, &ac);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(kept(outcome(r, 0)));
	ck_assert(kept(outcome(r, 1)));
	hb[0] = bp;
	hb[1] = bq;
	r = reclaim_on(&nodes[b], &B, hb, 2, &bc);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(kept(outcome(r, 0)));
	ck_assert(!kept(outcome(r, 1)));
	ck_assert_str_eq(obj_str(outcome(r, 1), "error"), "WOULD_BLOCK");
	/* A is told it lost P. */
	r = tc_wait_notify(ac, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(obj_str(r->params, "lock"), "P");
	ck_assert_uint_eq(obj_u64(r->params, "token"), ap.token);
	ck_assert_str_eq(obj_str(r->params, "reason"), "failover");
	ck_assert_str_eq(holder_of(bc, "P", bp.token), "B");
	ck_assert_str_eq(holder_of(bc, "P", ap.token), "");
	ck_assert_str_eq(holder_of(bc, "Q", aq.token), "A");
	ck_assert_str_eq(holder_of(bc, "Q", bq.token), "");
	tc_close(ac);
	tc_close(bc);
	tc_close(A.c);
	tc_close(B.c);
}
END_TEST

/*
 * Semaphore holds through a fail-over: reclaimed with their permits (fewer
 * than the receipt's after a partial release), side by side up to the
 * capacity; a claim altered in its permits or capacity is refused; of two
 * claims that could never be held at once, the newer token wins.
 */
START_TEST(semaphore_reclaims)
{
	struct ident A, B;
	struct held as, au, bs, bu, ha[4], hb[2];
	const msgpack_object *holders;
	struct reply *r;
	struct tc *ac, *bc;
	int a, b;

	a = two_nodes_up(&b);
	ident_open(&A, &nodes[a], "A");
	ident_open(&B, &nodes[a], "B");
	/* S: A's 2 permits, one given back; then B's 2. Full. */
	hold_take_sem(&A, &as, "S", 3, 2);
	r = tc_call(A.c, "release", "lock:s permits:i", "S", 1LL);
	ck_assert_uint_eq(reply_u64(r, "permits"), 1);
	as.permits = 1;
	hold_take_sem(&B, &bs, "S", 3, 2);
	/* U: A's 2 of 2, ended; then B's 1. A's receipt still proves 2. */
	hold_take_sem(&A, &au, "U", 2, 2);
	tc_call(A.c, "release", "lock:s", "U");
	hold_take_sem(&B, &bu, "U", 2, 1);
	cluster_node_kill(&nodes[a]);

	/* Altered permits and capacity, then the true claim, then U. */
	ha[0] = as;
	ha[0].permits = ha[0].proven_permits = 3;
	ha[1] = as;
	ha[1].capacity = 4;
	ha[2] = as;
	ha[3] = au;
	r = reclaim_on(&nodes[b], &A, ha, 4, &ac);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(!kept(outcome(r, 0)));
	ck_assert_str_eq(obj_str(outcome(r, 0), "error"), "PERMISSION");
	ck_assert(!kept(outcome(r, 1)));
	ck_assert_str_eq(obj_str(outcome(r, 1), "error"), "PERMISSION");
	ck_assert(kept(outcome(r, 2)));
	ck_assert_uint_eq(obj_u64(outcome(r, 2), "permits"), 1);
	ck_assert(kept(outcome(r, 3)));
	hb[0] = bs;
	hb[1] = bu;
	r = reclaim_on(&nodes[b], &B, hb, 2, &bc);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(kept(outcome(r, 0)));
	ck_assert_msg(kept(outcome(r, 1)), "U: %s",
	    obj_str(outcome(r, 1), "message"));
	/* A's stale 2 permits of U never met B's newer one: A lost it. */
	r = tc_wait_notify(ac, 2000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(r->method, "lost");
	ck_assert_str_eq(obj_str(r->params, "lock"), "U");
	ck_assert_uint_eq(obj_u64(r->params, "token"), au.token);
	ck_assert_str_eq(holder_of(bc, "U", bu.token), "B");
	ck_assert_str_eq(holder_of(bc, "S", as.token), "A");
	ck_assert_str_eq(holder_of(bc, "S", bs.token), "B");
	r = tc_call(bc, "lock", "lock:s", "S");
	ck_assert_uint_eq(reply_u64(r, "capacity"), 3);
	ck_assert_uint_eq(reply_u64(r, "in_use"), 3);
	holders = reply_get(r, "holders");
	ck_assert_uint_eq(holders->via.array.size, 2);
	/* U: B's one permit, A's claim gone. */
	r = tc_call(bc, "lock", "lock:s", "U");
	ck_assert_uint_eq(reply_u64(r, "in_use"), 1);
	/* The reclaimed holds work as any: a partial release, then all. */
	r = tc_call(bc, "release", "lock:s permits:i", "S", 1LL);
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_eq(reply_u64(r, "permits"), 1);
	ck_assert_str_eq(holder_of(bc, "S", bs.token), "B");
	ck_assert_int_eq(tc_call(ac, "release", "lock:s", "S")->err, 0);
	tc_close(ac);
	tc_close(bc);
	tc_close(A.c);
	tc_close(B.c);
}
END_TEST

/*
 * The active is stopped past its deadline and woken while the new active is
 * still in its grace period, with sessions whose leases have not run out:
 * it must not answer anything they sent meanwhile (an answer would renew a
 * lease past the new active's grace), nor grant, and it must drop them.
 */
START_TEST(sigstop_the_active_past_its_lease)
{
	struct tc *holder, *waiter, *other;
	struct reply *r;
	struct cluster_view v;
	uint64_t t1, t2, deadline, stopped;
	uint32_t wid, rid, pid;
	int a, b;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "10000");
	node_start_lease(&nodes[1], TTL, "10000");
	a = wait_one_active(15000);
	b = 1 - a;
	holder = NULL;
	deadline = mono_ms() + 10000;
	while ((holder = session_lease(&nodes[a], "holder", 10000)) == NULL &&
	    mono_ms() < deadline)
		sleep_ms(100);
	ck_assert_ptr_nonnull(holder);
	t1 = acquire(holder, "L", 15000);
	ck_assert_uint_gt(t1, 0);
	waiter = session_lease(&nodes[a], "waiter", 10000);
	ck_assert_ptr_nonnull(waiter);
	wid = tc_send(waiter, "acquire", "lock:s timeout_ms:i", "L", 60000LL);
	ck_assert_ptr_null(tc_wait(waiter, wid, 200));

	kill(nodes[a].p.pid, SIGSTOP);
	nodes[a].stopped = true;
	stopped = mono_ms();
	/* Read by the stopped dlmd when it wakes. */
	rid = tc_send(holder, "release", "lock:s", "L");
	pid = tc_send(holder, "ping", NULL);
	ck_assert_int_eq(wait_one_active(15000), b);
	ck_assert_uint_lt(mono_ms() - stopped, 9000);
	kill(nodes[a].p.pid, SIGCONT);
	nodes[a].stopped = false;

	/* The old active answers nothing and drops its clients. */
	ck_assert(tc_closed(holder, 5000));
	ck_assert(tc_closed(waiter, 5000));
	r = tc_wait(holder, rid, 0);
	ck_assert_msg(r == NULL, "the woken dlmd answered a release");
	r = tc_wait(holder, pid, 0);
	ck_assert_msg(r == NULL, "the woken dlmd answered a ping");
	r = tc_wait(waiter, wid, 0);
	ck_assert_msg(r == NULL || r->err != 0, "the old active granted L "
	    "after waking up");
	tc_close(holder);
	tc_close(waiter);
	ck_assert(dlmd_log_has(&nodes[a].p, "stepping down from active"));

	/* It is a standby now, and says who is active. */
	deadline = mono_ms() + 5000;
	do {
		cluster_node_view(&nodes[a], &v);
		if (strcmp(v.role, "standby") == 0 &&
		    strcmp(v.active, nodes[b].adv) == 0)
			break;
		sleep_ms(100);
	} while (mono_ms() < deadline);
	ck_assert_str_eq(v.role, "standby");
	ck_assert_str_eq(v.active, nodes[b].adv);
	ck_assert_ptr_null(session_on(&nodes[a], "late"));

	/* The new active grants L once its grace is over, above t1. */
	other = session_lease(&nodes[b], "after", 10000);
	ck_assert_ptr_nonnull(other);
	t2 = acquire(other, "L", 30000);
	ck_assert_uint_gt(t2, t1);
	ck_assert_uint_ge(mono_ms() - stopped, 10000);
	tc_close(other);
}
END_TEST

START_TEST(tokens_only_grow)
{
	uint64_t t[4];
	int a;

	a = two_nodes_up(NULL);
	t[0] = grant_on(&nodes[a], "tok", 10000);
	cluster_node_kill(&nodes[a]);
	a = 1 - a;
	t[1] = grant_on(&nodes[a], "tok", 30000);
	ck_assert_uint_gt(t[1], t[0]);

	/* Everything down, then up again on the same data. */
	cluster_node_kill(&nodes[a]);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		etcd_member_kill(&ec, i);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		etcd_member_start(&ec, i);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		ck_assert(etcd_member_healthy(&ec, i, 20000));
	node_start(&nodes[0], TTL);
	node_start(&nodes[1], TTL);
	a = wait_one_active(20000);
	t[2] = grant_on(&nodes[a], "tok", 30000);
	ck_assert_uint_gt(t[2], t[1]);
	/* A graceful stop hands over at once (the lease is revoked). */
	ck_assert_int_eq(dlmd_stop(&nodes[a].p), 0);
	ck_assert(cluster_node_clean(&nodes[a]));
	t[3] = grant_on(&nodes[1 - a], "tok", 30000);
	ck_assert_uint_gt(t[3], t[2]);
}
END_TEST

START_TEST(etcd_members_lost_and_back)
{
	struct tc *c;
	struct cluster_view v;
	uint64_t until, deadline;
	int a, rounds = 0;

	etcd_cluster_start(&ec);
	/* The default TTL: it must ride out etcd's own leader election. */
	node_start(&nodes[0], "6000");
	node_start(&nodes[1], "6000");
	a = wait_one_active(15000);
	deadline = mono_ms() + 10000;
	while ((c = session_on(&nodes[a], "steady")) == NULL &&
	    mono_ms() < deadline)
		sleep_ms(100);
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_gt(acquire(c, "warm", 10000), 0);

	/* One member of three: no interruption at all. */
	etcd_member_kill(&ec, 0);
	until = mono_ms() + 8000;
	while (mono_ms() < until) {
		struct reply *r = tc_call(c, "acquire", "lock:s timeout_ms:i",
		    "k", 0LL);

		ck_assert_msg(r->err == 0, "acquire %d with one etcd member "
		    "down: %s", rounds, reply_errmsg(r));
		r = tc_call(c, "release", "lock:s", "k");
		ck_assert_int_eq(r->err, 0);
		rounds++;
		sleep_ms(200);
	}
	tc_close(c);

	/* Two of three: no quorum, the active steps down within its TTL. */
	etcd_member_kill(&ec, 1);
	deadline = mono_ms() + 6000 + 3000;
	do {
		cluster_node_view(&nodes[a], &v);
		if (strcmp(v.role, "active") != 0)
			break;
		sleep_ms(100);
	} while (mono_ms() < deadline);
	ck_assert_str_ne(v.role, "active");
	ck_assert_msg(strstr(v.status, "etcd") != NULL, "status says '%s'",
	    v.status);
	ck_assert(dlmd_log_has(&nodes[a].p, "stepping down from active"));
	ck_assert(dlmd_log_has(&nodes[a].p, "was not renewed"));
	ck_assert_ptr_null(session_on(&nodes[0], "none"));
	ck_assert_ptr_null(session_on(&nodes[1], "none"));

	/* Quorum back: service resumes by itself. */
	etcd_member_start(&ec, 0);
	etcd_member_start(&ec, 1);
	a = wait_one_active(30000);
	ck_assert_uint_gt(grant_on(&nodes[a], "k", 30000), 0);
}
END_TEST

START_TEST(etcd_unreachable_at_start)
{
	struct cluster_view v;
	int a;

	etcd_cluster_init(&ec);
	node_start(&nodes[0], TTL);
	ck_assert(dlmd_log_has(&nodes[0].p, "retrying"));
	ck_assert_ptr_null(session_on(&nodes[0], "early"));
	cluster_node_view(&nodes[0], &v);
	ck_assert_str_eq(v.role, "starting");
	ck_assert_msg(strstr(v.status, "etcd") != NULL, "status says '%s'",
	    v.status);
	sleep_ms(1500);
	ck_assert_int_eq(kill(nodes[0].p.pid, 0), 0);

	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		etcd_member_start(&ec, i);
	a = wait_one_active(30000);
	ck_assert_int_eq(a, 0);
	ck_assert(dlmd_log_has(&nodes[0].p, "etcd answers again"));
	/* A new cluster: no lock was ever granted, so no grace. */
	ck_assert(dlmd_log_has(&nodes[0].p, "no grace period"));
	ck_assert_uint_gt(grant_on(&nodes[0], "first", 5000), 0);
}
END_TEST

/*
 * In a cluster a session whose connection closes without bye keeps its
 * holds for the rest of its lease (its client keeps believing in them
 * that long), then they go; after bye they go at once.
 */
START_TEST(dropped_session_keeps_its_holds_for_its_lease)
{
	struct tc *gone, *next;
	struct reply *r;
	uint32_t id;
	int a;

	etcd_cluster_start(&ec);
	node_start(&nodes[0], TTL);
	a = wait_one_active(15000);

	gone = session_lease(&nodes[a], "dropper", 2000);
	ck_assert_ptr_nonnull(gone);
	ck_assert_uint_gt(acquire(gone, "D", 1000), 0);
	tc_close(gone);
	next = session_lease(&nodes[a], "next", 2000);
	ck_assert_ptr_nonnull(next);
	id = tc_send(next, "acquire", "lock:s timeout_ms:i", "D", 10000LL);
	/* Not before the dropped session's lease is over... */
	ck_assert_ptr_null(tc_wait(next, id, 1000));
	tc_send(next, "ping", NULL);
	/* ...but once it is. */
	r = tc_wait(next, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);

	/* bye ends it at once. */
	gone = session_lease(&nodes[a], "leaver", 2000);
	ck_assert_uint_gt(acquire(gone, "E", 1000), 0);
	tc_call(gone, "bye", NULL);
	tc_close(gone);
	id = tc_send(next, "acquire", "lock:s timeout_ms:i", "E", 10000LL);
	r = tc_wait(next, id, 1000);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->err, 0);
	tc_close(next);
}
END_TEST

/* What a libdlm client was told: its lost holds, its async grant. */
struct told {
	int		lost;
	int		reason;
	int		granted;	/* an async acquire's answer came */
	int		err;
	uint64_t	token;
};

static void
told_lost(struct dlm_client *c, const char *lock, uint64_t token,
    int reason, void *arg)
{
	struct told *t = arg;

	(void)c;
	fprintf(stderr, "check_cluster: lost %s (token %llu, reason %d)\n",
	    lock, (unsigned long long)token, reason);
	__atomic_add_fetch(&t->lost, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&t->reason, reason, __ATOMIC_SEQ_CST);
}

static void
told_granted(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct told *t = arg;

	(void)c;
	t->err = err;
	t->token = token;
	__atomic_store_n(&t->granted, 1, __ATOMIC_SEQ_CST);
}

/* A libdlm client of the servers in list, or NULL with *err set. */
static struct dlm_client *
lib_connect(const char *list, const char *name, int lease_ms,
    struct told *t, int *err)
{
	struct dlm_options o;

	dlm_options_init(&o);
	o.client = name;
	o.lease_ms = lease_ms;
	o.connect_timeout_ms = 20000;
	if (t != NULL) {
		o.on_lost = told_lost;
		o.on_lost_arg = t;
	}
	return dlm_connect(list, &o, err);
}

/* The running nodes' addresses, standbys first, then the active's. */
static void
member_list(char *buf, size_t len, int active)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < NODES; i++)
			if (nodes[i].up && (i == active) == (pass == 1))
				n += (size_t)snprintf(buf + n, len - n, "%s%s",
				    n > 0 ? "," : "", nodes[i].adv);
}

/*
 * libdlm given several members (or one standby, or a dead address first)
 * ends up on the active one, following NOT_ACTIVE's hint.
 */
START_TEST(libdlm_finds_the_active)
{
	char list[512], dead[64];
	struct dlm_client *c;
	uint64_t token;
	int a, err, s;

	etcd_cluster_start(&ec);
	for (int i = 0; i < NODES; i++)
		node_start(&nodes[i], TTL);
	a = wait_one_active(15000);
	s = (a + 1) % NODES;
	/* Standbys learn the active within a poll or two. */
	sleep_ms(1000);

	member_list(list, sizeof list, a);
	c = lib_connect(list, "finder", 0, NULL, &err);
	ck_assert_msg(c != NULL, "connect %s: %s", list, dlm_strerror(err));
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 5000, &token), 0);
	ck_assert_int_eq(dlm_release(c, "x"), 0);
	dlm_close(c);

	/* One standby alone names the active, and the client goes there. */
	c = lib_connect(nodes[s].adv, "follower", 0, NULL, &err);
	ck_assert_msg(c != NULL, "connect %s: %s", nodes[s].adv,
	    dlm_strerror(err));
	ck_assert_int_eq(dlm_acquire(c, "x", 0, 5000, &token), 0);
	dlm_close(c);

	/* A member that is gone is skipped. */
	snprintf(dead, sizeof dead, "tcp:127.0.0.1:%d", free_tcp_port());
	snprintf(list, sizeof list, "%s,%s", dead, nodes[s].adv);
	c = lib_connect(list, "skipper", 0, NULL, &err);
	ck_assert_msg(c != NULL, "connect %s: %s", list, dlm_strerror(err));
	dlm_close(c);

	/* A list of nothing but dead members fails, naming the last. */
	c = lib_connect(dead, "nobody", 0, NULL, &err);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err, DLM_E_CONNECT);
}
END_TEST

/*
 * SIGKILL of the active: libdlm clients reclaim on the new one by
 * themselves. A holder keeps its mutex and its rlock (same token, same
 * depth) and is told nothing; a waiter's acquire is sent again and served
 * when the holder lets go, above the old token; a client whose lease is
 * shorter than the fail-over is told its hold expired, and the lock is
 * free after it. The time from the kill to a new client's first grant is
 * printed.
 */
START_TEST(libdlm_holders_keep_their_locks)
{
	struct told ht = { 0 }, wt = { 0 }, st = { 0 };
	struct dlm_client *holder, *waiter, *brief, *fresh;
	char list[512];
	uint64_t t_l, t_r, t_s, tok, killed, back, took;
	int a, err, held = 0, rc;

	etcd_cluster_start(&ec);
	/*
	 * Leases of 6 s against a TTL of 3 s: a holder has most of its
	 * lease left when the new active is elected.
	 */
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	a = wait_one_active(15000);
	member_list(list, sizeof list, -1);

	holder = lib_connect(list, "holder", 6000, &ht, &err);
	ck_assert_msg(holder != NULL, "connect: %s", dlm_strerror(err));
	waiter = lib_connect(list, "waiter", 6000, &wt, &err);
	ck_assert_ptr_nonnull(waiter);
	brief = lib_connect(list, "brief", 1000, &st, &err);
	ck_assert_ptr_nonnull(brief);
	ck_assert_int_eq(dlm_acquire(holder, "L", 0, 5000, &t_l), 0);
	ck_assert_int_eq(dlm_acquire(holder, "R", DLM_RLOCK, 5000, &t_r), 0);
	ck_assert_int_eq(dlm_acquire(holder, "R", DLM_RLOCK, 5000, &tok), 0);
	ck_assert_int_eq(dlm_release(holder, "R"), 0);
	ck_assert_int_eq(dlm_acquire(brief, "S", 0, 5000, &t_s), 0);
	ck_assert_int_eq(dlm_acquire_async(waiter, "L", 0, 60000,
	    told_granted, &wt), 0);
	sleep_ms(300);
	dlm_async_dispatch(waiter);
	ck_assert_int_eq(wt.granted, 0);

	killed = mono_ms();
	cluster_node_kill(&nodes[a]);
	/* Held still, for the lease, while no server answers. */
	sleep_ms(200);
	ck_assert_int_eq(dlm_holds(holder, "L", &tok), 1);

	/* The holder's next call is answered by the new active. */
	while ((rc = dlm_check(holder, "L", t_l, &held)) != 0) {
		ck_assert_msg(rc == DLM_E_DISCONNECTED, "check: %s",
		    dlm_strerror(rc));
		ck_assert_msg(mono_ms() - killed < 30000, "no new active");
		sleep_ms(50);
	}
	back = mono_ms() - killed;
	ck_assert_msg(held == 1, "the holder's mutex was not kept");
	ck_assert_int_eq(dlm_holds(holder, "L", &tok), 1);
	ck_assert_uint_eq(tok, t_l);
	ck_assert_int_eq(dlm_holds(holder, "R", &tok), 1);
	ck_assert_uint_eq(tok, t_r);

	/* Once every recorded session is settled, grants go. */
	fresh = lib_connect(list, "fresh", 5000, NULL, &err);
	ck_assert_msg(fresh != NULL, "connect: %s", dlm_strerror(err));
	ck_assert_int_eq(dlm_acquire(fresh, "F", 0, 30000, &tok), 0);
	took = mono_ms() - killed;
	fprintf(stderr, "check_cluster: libdlm: SIGKILL of the active to "
	    "the holder's reclaim %llu ms, to a new client's first grant "
	    "%llu ms (TTL " TTL " ms)\n", (unsigned long long)back,
	    (unsigned long long)took);
	ck_assert_uint_gt(tok, t_l);
	/* The brief one's lease ran out first: its hold went, and is free. */
	ck_assert_int_eq(dlm_acquire(fresh, "S", 0, 10000, &tok), 0);
	ck_assert_uint_gt(tok, t_s);
	ck_assert_int_ge(__atomic_load_n(&st.lost, __ATOMIC_SEQ_CST), 1);
	ck_assert_int_eq(st.reason, DLM_LOST_EXPIRED);

	/* The waiter was not served while the holder held on. */
	dlm_async_dispatch(waiter);
	ck_assert_int_eq(wt.granted, 0);
	ck_assert_int_eq(dlm_release(holder, "L"), 0);
	for (int i = 0; i < 100 && !wt.granted; i++) {
		sleep_ms(50);
		dlm_async_dispatch(waiter);
	}
	ck_assert_msg(wt.granted, "the waiter's acquire was not sent again");
	ck_assert_int_eq(wt.err, 0);
	ck_assert_uint_gt(wt.token, t_l);
	/* The rlock's depth came back as it was: one release ends it. */
	ck_assert_int_eq(dlm_release(holder, "R"), 0);
	ck_assert_int_eq(dlm_holds(holder, "R", NULL), 0);
	ck_assert_int_eq(ht.lost, 0);
	ck_assert_int_eq(wt.lost, 0);
	dlm_close(fresh);
	dlm_close(brief);
	dlm_close(waiter);
	dlm_close(holder);
}
END_TEST

/*
 * libdlm's semaphore holds through a SIGKILL of the active: reclaimed by
 * themselves with their permits (one given back before), same tokens,
 * counted against the capacity; a waiter's acquire is sent again and
 * served only when permits are given back.
 */
START_TEST(libdlm_semaphore_failover)
{
	struct told ht = { 0 }, h2t = { 0 }, wt = { 0 };
	struct dlm_client *h1, *h2, *waiter;
	struct dlm_acquire_opts o;
	char list[512];
	uint64_t t1, t2, tok, killed;
	int a, err, held = 0, rc;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	a = wait_one_active(15000);
	member_list(list, sizeof list, -1);
	h1 = lib_connect(list, "h1", 6000, &ht, &err);
	ck_assert_msg(h1 != NULL, "connect: %s", dlm_strerror(err));
	h2 = lib_connect(list, "h2", 6000, &h2t, &err);
	ck_assert_ptr_nonnull(h2);
	waiter = lib_connect(list, "waiter", 6000, &wt, &err);
	ck_assert_ptr_nonnull(waiter);

	dlm_acquire_opts_init(&o);
	o.flags = DLM_SEMAPHORE;
	o.capacity = 3;
	o.permits = 2;
	o.timeout_ms = 5000;
	ck_assert_int_eq(dlm_acquire_ex(h1, "S", &o, &t1), 0);
	ck_assert_int_eq(dlm_release_permits(h1, "S", 1), 0);
	ck_assert_int_eq(dlm_acquire_ex(h2, "S", &o, &t2), 0);
	o.permits = 1;
	o.timeout_ms = 60000;
	ck_assert_int_eq(dlm_acquire_ex_async(waiter, "S", &o, told_granted,
	    &wt, NULL), 0);
	sleep_ms(300);
	dlm_async_dispatch(waiter);
	ck_assert_int_eq(wt.granted, 0);

	killed = mono_ms();
	cluster_node_kill(&nodes[a]);
	while ((rc = dlm_check(h1, "S", t1, &held)) != 0) {
		ck_assert_msg(rc == DLM_E_DISCONNECTED, "check: %s",
		    dlm_strerror(rc));
		ck_assert_msg(mono_ms() - killed < 30000, "no new active");
		sleep_ms(50);
	}
	ck_assert_msg(held == 1, "h1's permit was not kept");
	ck_assert_int_eq(dlm_check(h2, "S", t2, &held), 0);
	ck_assert_msg(held == 1, "h2's permits were not kept");
	ck_assert_int_eq(dlm_holds(h1, "S", &tok), 1);
	ck_assert_uint_eq(tok, t1);
	ck_assert_int_eq(dlm_holds(h2, "S", &tok), 1);
	ck_assert_uint_eq(tok, t2);
	/* 1 + 2 of 3 reclaimed: the waiter's one does not fit yet. */
	sleep_ms(GRACE_MS + 500);
	dlm_async_dispatch(waiter);
	ck_assert_int_eq(wt.granted, 0);
	ck_assert_int_eq(dlm_release_permits(h2, "S", 1), 0);
	for (int i = 0; i < 100 && !wt.granted; i++) {
		sleep_ms(50);
		dlm_async_dispatch(waiter);
	}
	ck_assert_msg(wt.granted, "the waiter's acquire was not served");
	ck_assert_int_eq(wt.err, 0);
	ck_assert_uint_gt(wt.token, t2);
	ck_assert_msg(dlm_holds(h2, "S", &tok) == 1, "h2 lost its permit "
	    "(told lost %d times, reason %d)", h2t.lost, h2t.reason);
	ck_assert_uint_eq(tok, t2);
	ck_assert_int_eq(ht.lost + h2t.lost + wt.lost, 0);
	ck_assert_int_eq(dlm_release(h1, "S"), 0);
	ck_assert_int_eq(dlm_release(h2, "S"), 0);
	dlm_close(waiter);
	dlm_close(h2);
	dlm_close(h1);
}
END_TEST

/* What an observer was told last, and how often. */
struct observed {
	pthread_mutex_t	 mu;
	int		 n;
	char		 leader[64];	/* "" for none */
	char		 value[64];
	uint64_t	 token;
};

static void
on_leader(struct dlm_client *c, const char *election,
    const struct dlm_holder *leader, void *arg)
{
	struct observed *o = arg;

	(void)c;
	(void)election;
	pthread_mutex_lock(&o->mu);
	o->n++;
	snprintf(o->leader, sizeof o->leader, "%s",
	    leader != NULL ? leader->client : "");
	snprintf(o->value, sizeof o->value, "%.*s",
	    leader != NULL && leader->value != NULL ? (int)leader->value_len :
	    0, leader != NULL && leader->value != NULL ?
	    (const char *)leader->value : "");
	o->token = leader != NULL ? leader->token : 0;
	pthread_mutex_unlock(&o->mu);
}

/* Wait up to ms for a call after the first `after` naming leader. */
static bool
observed(struct observed *o, int after, const char *leader, int ms)
{
	uint64_t until = mono_ms() + (uint64_t)ms;
	bool ok = false;

	while (!ok && mono_ms() < until) {
		pthread_mutex_lock(&o->mu);
		ok = o->n > after && strcmp(o->leader, leader) == 0;
		pthread_mutex_unlock(&o->mu);
		if (!ok)
			sleep_ms(20);
	}
	return ok;
}

/*
 * Leader election over a fail-over: the leader's hold is reclaimed with
 * its value, and an observer, watching again on the new active, sees the
 * same leader and value. A standby refuses watch with NOT_ACTIVE.
 */
START_TEST(libdlm_election_survives_failover)
{
	struct observed o = { PTHREAD_MUTEX_INITIALIZER, 0, "", "", 0 };
	struct dlm_client *leader, *obs;
	struct reply *r;
	struct tc *t;
	char list[512];
	uint64_t token, tok;
	int a, s, err, held = 0, before, rc;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	a = wait_one_active(15000);
	s = a == 0 ? 1 : 0;
	member_list(list, sizeof list, -1);
	leader = lib_connect(list, "leader", 6000, NULL, &err);
	ck_assert_msg(leader != NULL, "connect: %s", dlm_strerror(err));
	obs = lib_connect(list, "observer", 6000, NULL, &err);
	ck_assert_msg(obs != NULL, "connect: %s", dlm_strerror(err));
	ck_assert_int_eq(dlm_observe(obs, "E", on_leader, &o), 0);
	ck_assert(observed(&o, 0, "", 5000));
	ck_assert_int_eq(dlm_campaign(leader, "E", "10.1.1.1:80", 11, 5000,
	    &token), 0);
	ck_assert(observed(&o, 1, "leader", 5000));
	ck_assert_str_eq(o.value, "10.1.1.1:80");

	/* A standby: NOT_ACTIVE, with or without a session. */
	t = tc_connect(&nodes[s].p);
	r = tc_call(t, "watch", "lock:s", "E");
	ck_assert_str_eq(reply_errname(r), "NOT_ACTIVE");
	tc_close(t);

	pthread_mutex_lock(&o.mu);
	before = o.n;
	pthread_mutex_unlock(&o.mu);
	cluster_node_kill(&nodes[a]);
	while ((rc = dlm_check(leader, "E", token, &held)) != 0) {
		ck_assert_msg(rc == DLM_E_DISCONNECTED, "check: %s",
		    dlm_strerror(rc));
		sleep_ms(50);
	}
	ck_assert_int_eq(held, 1);
	ck_assert_int_eq(dlm_holds(leader, "E", &tok), 1);
	ck_assert_uint_eq(tok, token);
	ck_assert_msg(observed(&o, before, "leader", 30000),
	    "the observer never saw the leader on the new active");
	pthread_mutex_lock(&o.mu);
	ck_assert_str_eq(o.value, "10.1.1.1:80");
	ck_assert_uint_eq(o.token, token);
	pthread_mutex_unlock(&o.mu);
	/* And goes on seeing changes there. */
	pthread_mutex_lock(&o.mu);
	before = o.n;
	pthread_mutex_unlock(&o.mu);
	ck_assert_int_eq(dlm_resign(leader, "E"), 0);
	ck_assert(observed(&o, before, "", 5000));
	dlm_close(obs);
	dlm_close(leader);
}
END_TEST

static int contended_seen;

static void
saw_contended(struct dlm_client *c, const char *lock, uint64_t token,
    uint32_t waiters, void *arg)
{
	(void)c;
	(void)lock;
	(void)token;
	(void)waiters;
	(void)arg;
	__atomic_add_fetch(&contended_seen, 1, __ATOMIC_SEQ_CST);
}

/*
 * A hold's lock-delay and its wish for contention notices go with it
 * through a fail-over: libdlm claims them in its reclaim, the new active
 * lists them, tells the holder of a waiter, and delays the lock after a
 * forced release.
 */
START_TEST(delay_and_notices_survive_failover)
{
	struct dlm_acquire_opts ao;
	struct dlm_options o;
	struct dlm_client *holder;
	struct tc *w, *op;
	struct reply *r;
	const msgpack_object *h;
	char list[512];
	uint64_t token, killed, start;
	uint32_t id;
	int a, b, err, held = 0, rc;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	a = wait_one_active(15000);
	b = 1 - a;
	member_list(list, sizeof list, -1);
	dlm_options_init(&o);
	o.client = "careful";
	o.lease_ms = 6000;
	o.connect_timeout_ms = 20000;
	o.on_contended = saw_contended;
	holder = dlm_connect(list, &o, &err);
	ck_assert_msg(holder != NULL, "connect: %s", dlm_strerror(err));
	dlm_acquire_opts_init(&ao);
	ao.flags = DLM_NOTIFY_CONTENDED;
	ao.lock_delay_ms = 1500;
	ao.timeout_ms = 5000;
	ck_assert_int_eq(dlm_acquire_ex(holder, "D", &ao, &token), 0);

	killed = mono_ms();
	cluster_node_kill(&nodes[a]);
	while ((rc = dlm_check(holder, "D", token, &held)) != 0) {
		ck_assert_msg(rc == DLM_E_DISCONNECTED, "check: %s",
		    dlm_strerror(rc));
		ck_assert_msg(mono_ms() - killed < 30000, "no new active");
		sleep_ms(50);
	}
	ck_assert_msg(held == 1, "the hold was not kept");

	op = tc_connect(&nodes[b].p);
	tc_hello(op, "operator");
	r = tc_call(op, "lock", "lock:s", "D");
	ck_assert_int_eq(r->err, 0);
	h = &reply_get(r, "holders")->via.array.ptr[0];
	ck_assert_uint_eq(obj_u64(h, "lock_delay_ms"), 1500);
	ck_assert_ptr_nonnull(mpr_get(h, "notify_contended"));

	/* A waiter, once the grace is over: the holder is told. */
	w = tc_connect(&nodes[b].p);
	tc_hello(w, "waiter");
	id = tc_send(w, "acquire", "lock:s timeout_ms:i", "D", 30000LL);
	for (int i = 0; i < 600 && __atomic_load_n(&contended_seen,
	    __ATOMIC_SEQ_CST) == 0; i++) {
		sleep_ms(50);
		tc_send(w, "ping", NULL);
	}
	ck_assert_int_eq(__atomic_load_n(&contended_seen, __ATOMIC_SEQ_CST),
	    1);
	/* Taken from the holder: the waiter waits out the delay. */
	start = mono_ms();
	r = tc_call(op, "force_release", "lock:s", "D");
	ck_assert_uint_eq(reply_u64(r, "released"), 1);
	while ((r = tc_wait(w, id, 500)) == NULL) {
		ck_assert_msg(mono_ms() - start < 20000, "never granted");
		tc_send(w, "ping", NULL);
		tc_send(op, "ping", NULL);
	}
	ck_assert_int_eq(r->err, 0);
	ck_assert_uint_ge(mono_ms() - start, 1500);
	tc_close(w);
	tc_close(op);
	dlm_close(holder);
}
END_TEST

/*
 * Converted holds survive a fail-over as converted: a convert's answer
 * carries the receipt of the hold with its new mode and token, which the
 * library keeps and reclaims with.
 */
START_TEST(libdlm_converted_holds_keep_their_mode)
{
	struct told at = { 0 }, bt = { 0 };
	struct dlm_client *a, *b, *fresh;
	char list[512];
	uint64_t t_u, t_u2, t_w, t_w2, t_wb, tok, killed;
	int k, err, held = 0, rc;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	k = wait_one_active(15000);
	member_list(list, sizeof list, -1);
	a = lib_connect(list, "a", 6000, &at, &err);
	ck_assert_msg(a != NULL, "connect: %s", dlm_strerror(err));
	b = lib_connect(list, "b", 6000, &bt, &err);
	ck_assert_ptr_nonnull(b);
	/* U: shared, then exclusive (a new token). */
	ck_assert_int_eq(dlm_acquire(a, "U", DLM_SHARED, 5000, &t_u), 0);
	ck_assert_int_eq(dlm_convert(a, "U", 0, 5000, &t_u2), 0);
	ck_assert_uint_gt(t_u2, t_u);
	/* W: exclusive, then shared (the same token), shared with b. */
	ck_assert_int_eq(dlm_acquire(a, "W", 0, 5000, &t_w), 0);
	ck_assert_int_eq(dlm_convert(a, "W", DLM_SHARED, 5000, &t_w2), 0);
	ck_assert_uint_eq(t_w2, t_w);
	ck_assert_int_eq(dlm_acquire(b, "W", DLM_SHARED, 5000, &t_wb), 0);

	killed = mono_ms();
	cluster_node_kill(&nodes[k]);
	while ((rc = dlm_check(a, "U", t_u2, &held)) != 0) {
		ck_assert_msg(rc == DLM_E_DISCONNECTED, "check: %s",
		    dlm_strerror(rc));
		ck_assert_msg(mono_ms() - killed < 30000, "no new active");
		sleep_ms(50);
	}
	ck_assert_msg(held == 1, "the upgraded hold was not kept");
	ck_assert_int_eq(dlm_holds(a, "U", &tok), 1);
	ck_assert_uint_eq(tok, t_u2);
	while ((rc = dlm_check(b, "W", t_wb, &held)) != 0) {
		ck_assert_int_eq(rc, DLM_E_DISCONNECTED);
		ck_assert_msg(mono_ms() - killed < 30000, "b never back");
		sleep_ms(50);
	}
	ck_assert_msg(held == 1, "the other sharer's hold was not kept");
	ck_assert_int_eq(dlm_check(a, "W", t_w, &held), 0);
	ck_assert_msg(held == 1, "the downgraded hold was not kept");

	/* Kept in their modes: U exclusive, W shared. */
	fresh = lib_connect(list, "fresh", 5000, NULL, &err);
	ck_assert_msg(fresh != NULL, "connect: %s", dlm_strerror(err));
	ck_assert_int_eq(dlm_acquire(fresh, "W", DLM_SHARED, 30000, &tok), 0);
	ck_assert_uint_gt(tok, t_wb);
	ck_assert_int_eq(dlm_acquire(fresh, "U", DLM_SHARED, DLM_TRY, NULL),
	    DLM_E_WOULD_BLOCK);
	ck_assert_int_eq(at.lost, 0);
	ck_assert_int_eq(bt.lost, 0);
	/* And they convert on the new active too. */
	ck_assert_int_eq(dlm_convert(a, "U", DLM_SHARED, 5000, &tok), 0);
	ck_assert_uint_eq(tok, t_u2);
	ck_assert_int_eq(dlm_acquire(fresh, "U", DLM_SHARED, DLM_TRY, NULL), 0);
	dlm_close(fresh);
	dlm_close(b);
	dlm_close(a);
}
END_TEST

/* A loop-mode client's states as its state callback saw them. */
struct states {
	int	connected;	/* times the session opened */
	int	reconnecting;
	int	closed;
};

static void
saw_state(struct dlm_client *c, int state, int err, void *arg)
{
	struct states *st = arg;

	(void)c;
	(void)err;
	if (state == DLM_STATE_CONNECTED)
		st->connected++;
	else if (state == DLM_STATE_RECONNECTING)
		st->reconnecting++;
	else
		st->closed++;
}

/* Drive a loop-mode client with poll() until *flag >= want, up to ms. */
static bool
loop_until(struct dlm_client *c, const int *flag, int want, int ms)
{
	uint64_t until = mono_ms() + (uint64_t)ms;

	while (*flag < want && mono_ms() < until) {
		struct pollfd p = { dlm_loop_fd(c), 0, 0 };
		int ev = dlm_loop_events(c), t = dlm_loop_timeout_ms(c), got = 0;

		if (ev > 0 && (ev & DLM_EV_READ))
			p.events |= POLLIN;
		if (ev > 0 && (ev & DLM_EV_WRITE))
			p.events |= POLLOUT;
		if (t < 0 || t > 50)
			t = 50;
		if (poll(&p, p.fd >= 0 ? 1 : 0, t) > 0) {
			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				got |= DLM_EV_READ;
			if (p.revents & POLLOUT)
				got |= DLM_EV_WRITE;
		}
		(void)dlm_loop_process(c, got);
	}
	return *flag >= want;
}

/*
 * The same in the event-loop mode: a client driven by the program's loop
 * reclaims its hold through a SIGKILL of the active, its state going
 * RECONNECTING then CONNECTED, told of no loss; an async acquire sent
 * while no server answered is served by the new active.
 */
START_TEST(libdlm_loop_mode_keeps_its_lock)
{
	struct told t = { 0 }, later = { 0 };
	struct states st = { 0 };
	struct dlm_options o;
	struct dlm_client *c;
	char list[512];
	uint64_t token, tok;
	int a, err;

	etcd_cluster_start(&ec);
	node_start_lease(&nodes[0], TTL, "6000");
	node_start_lease(&nodes[1], TTL, "6000");
	a = wait_one_active(15000);
	member_list(list, sizeof list, a);

	dlm_options_init(&o);
	o.client = "looper";
	o.lease_ms = 6000;
	o.on_lost = told_lost;
	o.on_lost_arg = &t;
	c = dlm_connect_loop(list, &o, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_strerror(err));
	dlm_loop_set_state_cb(c, saw_state, &st);
	ck_assert(loop_until(c, &st.connected, 1, 10000));
	ck_assert_int_eq(dlm_acquire_async(c, "L", 0, 5000, told_granted, &t),
	    0);
	ck_assert(loop_until(c, &t.granted, 1, 5000));
	ck_assert_int_eq(t.err, 0);
	token = t.token;

	cluster_node_kill(&nodes[a]);
	ck_assert(loop_until(c, &st.reconnecting, 1, 5000));
	/* Asked while no server answers: sent once one does. */
	ck_assert_int_eq(dlm_acquire_async(c, "M", 0, 20000, told_granted,
	    &later), 0);
	ck_assert_msg(loop_until(c, &st.connected, 2, 20000),
	    "not connected again after the fail-over");
	ck_assert_int_eq(dlm_holds(c, "L", &tok), 1);
	ck_assert_uint_eq(tok, token);
	ck_assert(loop_until(c, &later.granted, 1, 20000));
	ck_assert_int_eq(later.err, 0);
	ck_assert_uint_gt(later.token, token);
	ck_assert_int_eq(t.lost, 0);
	ck_assert_int_eq(st.closed, 0);
	dlm_close(c);
}
END_TEST

/*
 * Run the dlmctl under test ($DLMCTL) with args (safe for the shell: our
 * own addresses), its stdout and stderr in out; its exit status.
 */
static int
run_dlmctl(char *out, size_t size, const char *args)
{
	const char *bin = getenv("DLMCTL");
	char cmd[1024];
	size_t len = 0, n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof cmd, "'%s' %s 2>&1",
	    bin != NULL ? bin : "dlmctl/dlmctl", args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (len + 1 < size && (n = fread(out + len, 1, size - len - 1,
	    p)) > 0)
		len += n;
	out[len] = '\0';
	st = pclose(p);
	ck_assert_msg(WIFEXITED(st), "dlmctl %s: killed", args);
	return WEXITSTATUS(st);
}

/* The value on status's line for key ("role   standby"), or "". */
static const char *
status_line(const char *out, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	buf[0] = '\0';
	for (const char *l = out; l != NULL && *l != '\0';
	    l = strchr(l, '\n') != NULL ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, klen) == 0 && l[klen] == ' ') {
			const char *v = l + klen + strspn(l + klen, " ");

			snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
			break;
		}
	return buf;
}

/* How many of cluster's table rows name adv, and how many say active. */
static void
cluster_rows(const char *out, const char *adv, int *rows_adv, int *actives)
{
	const char *table = strstr(out, "\nMEMBER ");

	*rows_adv = *actives = 0;
	for (const char *l = table != NULL ? strchr(table + 1, '\n') : NULL;
	    l != NULL && l[1] != '\0'; l = strchr(l + 1, '\n')) {
		char id[32], addr[64], role[16];

		if (sscanf(l + 1, "%31s %63s %15s", id, addr, role) != 3)
			continue;
		*rows_adv += strcmp(addr, adv) == 0;
		*actives += strcmp(role, "active") == 0;
	}
}

/*
 * dlmctl against both members: status from the standby (which opens no
 * session) names the active; cluster lists both, one active; a bad item
 * in -s's list is a usage error before anything is dialled.
 */
START_TEST(dlmctl_status_and_cluster_from_any_member)
{
	static char out[16384];
	char args[512], v[128];
	int a, b, st, rows_a = 0, rows_b = 0, actives = 0;
	uint64_t deadline;

	a = two_nodes_up(&b);

	/* The standby learns the active within a poll or two. */
	deadline = mono_ms() + 5000;
	snprintf(args, sizeof args, "-s %s status", nodes[b].adv);
	for (;;) {
		st = run_dlmctl(out, sizeof out, args);
		ck_assert_msg(st == 0, "dlmctl %s: %d: %s", args, st, out);
		if (strcmp(status_line(out, "active", v, sizeof v),
		    nodes[a].adv) == 0)
			break;
		ck_assert_msg(mono_ms() < deadline, "the standby never named "
		    "the active %s: %s", nodes[a].adv, out);
		sleep_ms(100);
	}
	ck_assert_str_eq(status_line(out, "role", v, sizeof v), "standby");
	ck_assert_str_eq(status_line(out, "address", v, sizeof v),
	    nodes[b].adv);
	ck_assert_uint_gt(strtoull(status_line(out, "epoch", v, sizeof v),
	    NULL, 10), 0);
	ck_assert_str_eq(status_line(out, "etcd", v, sizeof v), ec.endpoints);
	/* Only an active has tokens to tell of. */
	ck_assert_str_eq(status_line(out, "tokens from", v, sizeof v), "");

	/* Over its Unix socket too, and from a list led by a dead address. */
	snprintf(args, sizeof args, "-s tcp:127.0.0.1:%d,unix:%s status",
	    free_tcp_port(), nodes[b].p.sock);
	ck_assert_int_eq(run_dlmctl(out, sizeof out, args), 0);
	ck_assert_str_eq(status_line(out, "role", v, sizeof v), "standby");

	/* The active: its session, its role and its tokens. */
	snprintf(args, sizeof args, "-s %s status", nodes[a].adv);
	ck_assert_int_eq(run_dlmctl(out, sizeof out, args), 0);
	ck_assert_str_eq(status_line(out, "role", v, sizeof v), "active");
	ck_assert_str_ne(status_line(out, "tokens from", v, sizeof v), "");

	/* Both members, one active, once the active has read them. */
	deadline = mono_ms() + 5000;
	snprintf(args, sizeof args, "-s %s cluster", nodes[a].adv);
	while (rows_a != 1 || rows_b != 1) {
		ck_assert_msg(mono_ms() < deadline, "cluster never listed "
		    "both members: %s", out);
		st = run_dlmctl(out, sizeof out, args);
		ck_assert_msg(st == 0, "dlmctl %s: %d: %s", args, st, out);
		cluster_rows(out, nodes[a].adv, &rows_a, &actives);
		cluster_rows(out, nodes[b].adv, &rows_b, &actives);
		if (rows_a != 1 || rows_b != 1)
			sleep_ms(200);
	}
	ck_assert_int_eq(actives, 1);
	ck_assert_str_eq(status_line(out, "active", v, sizeof v),
	    nodes[a].adv);
	ck_assert_str_eq(status_line(out, "cluster", v, sizeof v), "t");

	/* The standby answers cluster too, first of the list. */
	snprintf(args, sizeof args, "-s %s,%s cluster", nodes[b].adv,
	    nodes[a].adv);
	ck_assert_int_eq(run_dlmctl(out, sizeof out, args), 0);
	ck_assert_ptr_nonnull(strstr(status_line(out, "asked", v, sizeof v),
	    nodes[b].adv));

	/* A bad item anywhere in the list: exit 2, and which one. */
	snprintf(args, sizeof args, "-s %s,tcp:127.0.0.1:99999 status",
	    nodes[a].adv);
	ck_assert_int_eq(run_dlmctl(out, sizeof out, args), 2);
	ck_assert_msg(strstr(out, "99999 is out of range") != NULL, "%s", out);
	snprintf(args, sizeof args, "-s %s,,%s cluster", nodes[a].adv,
	    nodes[b].adv);
	ck_assert_int_eq(run_dlmctl(out, sizeof out, args), 2);
	ck_assert_msg(strstr(out, "empty address") != NULL, "%s", out);
}
END_TEST

/* Write text to path, whole. */
static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/*
 * Taking a hold back is taking it: with a rules file, a reclaim needs the
 * lock right on every hold it claims, as the new active's rules say then.
 * One hold no longer allowed refuses the whole reclaim (PERMISSION, naming
 * the lock); the holds still allowed are reclaimed without it.
 */
START_TEST(reclaim_refused_by_rules)
{
	char acl[] = "/tmp/dlm-acl-XXXXXX", rules[256];
	struct ident holder;
	struct held hl[2];
	struct reply *r;
	struct tc *hc;
	int fd, a, b;

	ck_assert_int_ge(fd = mkstemp(acl), 0);
	close(fd);
	snprintf(rules, sizeof rules, "allow uid:%u all *\n",
	    (unsigned)getuid());
	write_text(acl, rules);
	etcd_cluster_start(&ec);
	node_start_with(&nodes[0], TTL, LEASE_MAX, "--acl-file", acl);
	node_start_with(&nodes[1], TTL, LEASE_MAX, "--acl-file", acl);
	a = wait_one_active(15000);
	b = 1 - a;

	ident_open(&holder, &nodes[a], "holder");
	hold_take(&holder, &hl[0], "app/1", "mutex", "exclusive");
	hold_take(&holder, &hl[1], "billing/1", "mutex", "exclusive");
	cluster_node_kill(&nodes[a]);
	tc_close(holder.c);

	/* Meanwhile billing/ is taken from this user, on the standby too. */
	snprintf(rules, sizeof rules, "deny uid:%u lock billing/\n"
	    "allow uid:%u all *\n", (unsigned)getuid(), (unsigned)getuid());
	write_text(acl, rules);
	kill(nodes[b].p.pid, SIGHUP);
	ck_assert(dlmd_log_has(&nodes[b].p, "reloaded"));

	r = reclaim_on(&nodes[b], &holder, hl, 2, &hc);
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	ck_assert_msg(strstr(reply_errmsg(r), "billing/1") != NULL &&
	    strstr(reply_errmsg(r), acl) != NULL, "%s", reply_errmsg(r));
	tc_close(hc);
	r = reclaim_on(&nodes[b], &holder, hl, 1, &hc);
	ck_assert_msg(r->err == 0, "reclaim: %s", reply_errmsg(r));
	ck_assert(kept(outcome(r, 0)));
	ck_assert_str_eq(holder_of(hc, "app/1", hl[0].token), "holder");
	tc_close(hc);
	unlink(acl);
}
END_TEST

/*
 * A standby of a cluster whose clients must show a named token answers
 * stats without a session over its Unix socket, but tells a TCP peer that
 * showed nothing nothing (it has no hello to show a token in).
 */
START_TEST(standby_with_named_tokens_tells_strangers_nothing)
{
	char tokens[] = "/tmp/dlm-tokens-XXXXXX";
	struct cluster_view v;
	struct reply *r;
	struct tc *c;
	int fd, a, b, port;

	ck_assert_int_ge(fd = mkstemp(tokens), 0);
	close(fd);
	write_text(tokens, "ops s3cret-ops-token-0123456789\n");
	etcd_cluster_start(&ec);
	node_start_with(&nodes[0], TTL, LEASE_MAX, "--tokens-file", tokens);
	node_start_with(&nodes[1], TTL, LEASE_MAX, "--tokens-file", tokens);
	a = wait_one_active(15000);
	b = 1 - a;
	cluster_node_view(&nodes[b], &v);
	ck_assert_str_eq(v.role, "standby");

	ck_assert_int_eq(sscanf(nodes[b].adv, "tcp:127.0.0.1:%d", &port), 1);
	c = tc_connect_tcp(port);
	r = tc_call(c, "stats", NULL);
	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	r = tc_call(c, "cluster", NULL);
	ck_assert_str_eq(reply_errname(r), "NO_SESSION");
	tc_close(c);
	unlink(tokens);
	(void)a;
}
END_TEST

/* One case per test, so that CK_RUN_CASE can pick one. */
static void
add_case(Suite *s, const char *name, const TTest *test)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, etcdfix_prepare, etcdfix_cleanup);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test);
	suite_add_tcase(s, tc);
}

static Suite *
cluster_suite(void)
{
	Suite *s = suite_create("cluster");

	add_case(s, "election", one_active_and_the_others_point_at_it);
	add_case(s, "sigkill", sigkill_the_active);
	add_case(s, "reclaim", holders_reclaim_after_sigkill);
	add_case(s, "reclaim_forged", forged_reclaims_refused);
	add_case(s, "reclaim_conflict", conflicting_reclaims_go_to_the_higher_token);
	add_case(s, "reclaim_semaphore", semaphore_reclaims);
	add_case(s, "sigstop", sigstop_the_active_past_its_lease);
	add_case(s, "tokens", tokens_only_grow);
	add_case(s, "etcd_quorum", etcd_members_lost_and_back);
	add_case(s, "etcd_late", etcd_unreachable_at_start);
	add_case(s, "dropped", dropped_session_keeps_its_holds_for_its_lease);
	add_case(s, "libdlm_find", libdlm_finds_the_active);
	add_case(s, "libdlm_failover", libdlm_holders_keep_their_locks);
	add_case(s, "libdlm_convert", libdlm_converted_holds_keep_their_mode);
	add_case(s, "libdlm_loop", libdlm_loop_mode_keeps_its_lock);
	add_case(s, "libdlm_semaphore", libdlm_semaphore_failover);
	add_case(s, "libdlm_election", libdlm_election_survives_failover);
	add_case(s, "delay_failover", delay_and_notices_survive_failover);
	add_case(s, "dlmctl", dlmctl_status_and_cluster_from_any_member);
	add_case(s, "reclaim_rules", reclaim_refused_by_rules);
	add_case(s, "standby_tokens",
	    standby_with_named_tokens_tells_strangers_nothing);
	return s;
}

int
main(void)
{
	if (etcdfix_binary() == NULL) {
		printf("check_cluster: etcd is not installed (Debian: "
		    "etcd-server); skipping\n");
		return 77;
	}
	return run_suite(cluster_suite());
}
