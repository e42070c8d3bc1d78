/* The inspecting commands: status, cluster, locks, show, clients, ping. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "dlmctl.h"
#include "xmalloc.h"

#define PAGE_LIMIT	1000

/* Commands with no options of their own still answer -h and refuse junk. */
static int
no_options(int argc, char **argv, int min_args, int max_args,
    const char *usage)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (ch == 'h') {
			printf("usage: dlmctl %s\n", usage);
			exit(EXIT_OK);
		}
		fprintf(stderr, "usage: dlmctl %s\n", usage);
		return -1;
	}
	if (argc - optind < min_args || argc - optind > max_args) {
		fprintf(stderr, "usage: dlmctl %s\n", usage);
		return -1;
	}
	return 0;
}

/* What a member of a cluster is in it, from stats' cluster keys. */
static void
print_cluster_role(json_t *st)
{
	static const char *const texts[][2] = {
		{ "role", "role" }, { "member_id", "member id" },
		{ "etcd", "etcd" }, { "etcd_current", "etcd in use" },
		{ "cluster_status", "cluster status" },
	};
	/* Only an active grants: these are 0 on the others. */
	static const char *const granting[][2] = {
		{ "grace_ms", "grace left ms" },
		{ "lease_left_ms", "etcd lease left ms" },
		{ "token_lo", "tokens from" }, { "token_hi", "tokens to" },
	};
	bool active = strcmp(value_str(st, "role"), "active") == 0;

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
		if (json_is_string(json_object_get(st, texts[i][0])))
			printf("%-20s %s\n", texts[i][1],
			    value_str(st, texts[i][0]));
	/* Where clients must go, even when none is active yet. */
	printf("%-20s %s\n", "active", json_is_string(json_object_get(st,
	    "active")) ? value_str(st, "active") : "none known");
	printf("%-20s %llu\n", "epoch",
	    (unsigned long long)value_uint(st, "epoch"));
	for (size_t i = 0; active && i < sizeof granting / sizeof granting[0];
	    i++)
		printf("%-20s %llu\n", granting[i][1],
		    (unsigned long long)value_uint(st, granting[i][0]));
	printf("%-20s %llu\n", "times active",
	    (unsigned long long)value_uint(st, "failovers"));
}

int
cmd_status(struct ctl *ctl, int argc, char **argv)
{
	static const char *const gauges[][2] = {
		{ "sessions", "sessions" }, { "lingering", "lingering" },
		{ "connections", "connections" }, { "locks", "locks" },
		{ "holds", "holds" }, { "waiters", "waiters" },
		{ "watches", "watches" },
	};
	static const char *const counters[][2] = {
		{ "requests", "requests" }, { "acquires", "acquires" },
		{ "grants", "grants" }, { "releases", "releases" },
		{ "timeouts", "timeouts" }, { "cancels", "cancels" },
		{ "expiries", "lease expiries" },
		{ "deadlocks", "deadlocks refused" },
		{ "forced", "forced releases" }, { "errors", "errors" },
		{ "sessions_total", "sessions opened" },
		{ "connections_total", "connections opened" },
		{ "resumes", "resumes" },
		{ "protocol_errors", "protocol errors" },
		{ "output_overflows", "output overflows" },
		{ "bytes_in", "bytes in" }, { "bytes_out", "bytes out" },
		{ "next_token", "next token" },
		{ "watch_notices", "watch notices" },
		{ "delayed_locks", "delayed locks" },
		{ "lock_delays", "lock delays" },
		{ "contended_notices", "contention notices" },
	};
	json_t *st;
	char dur[64];
	int rc;

	if (no_options(argc, argv, 0, 0, "status") != 0)
		return EXIT_USAGE;
	/* Any member of a cluster answers, a standby too. */
	if ((rc = member_call(ctl, "stats", &st)) != EXIT_OK)
		return rc;
	if (ctl->json) {
		rc = ctl_print_json(st);
		json_decref(st);
		return rc;
	}
	printf("%-20s %s\n", "server", value_str(st, "server"));
	printf("%-20s %s\n", "address", ctl->answered[0] != '\0' ?
	    ctl->answered : ctl_server_name(ctl));
	printf("%-20s %s\n", "uptime",
	    fmt_duration(value_uint(st, "uptime_ms"), dur, sizeof dur));
	/* First, for it says whether the counters below mean anything. */
	if (json_is_string(json_object_get(st, "role")))
		print_cluster_role(st);
	for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
		printf("%-20s %llu\n", gauges[i][1],
		    (unsigned long long)value_uint(st, gauges[i][0]));
	for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
		if (json_object_get(st, counters[i][0]) != NULL)
			printf("%-20s %llu\n", counters[i][1],
			    (unsigned long long)value_uint(st,
			    counters[i][0]));
	json_decref(st);
	return EXIT_OK;
}

/* The members, and asked: the member that answered, as the user named it. */
static void
print_cluster(json_t *cl, const char *asked)
{
	static const char *const head[] = { "MEMBER", "ADDRESS", "ROLE",
	    "SINCE" };
	json_t *members = json_object_get(cl, "members"), *m;
	time_t now = time(NULL);
	struct table *t;
	char dur[32], ago[48];
	size_t i;

	printf("%-9s %s\n", "cluster", value_str(cl, "cluster"));
	printf("%-9s %llu\n", "epoch",
	    (unsigned long long)value_uint(cl, "epoch"));
	printf("%-9s %s\n", "active", json_is_string(json_object_get(cl,
	    "active")) ? value_str(cl, "active") : "none known");
	/* The list is what the member read at its last etcd renewal. */
	if (json_is_integer(json_object_get(cl, "age_ms")))
		printf("%-9s %s (member %s), as read from etcd %s ago\n",
		    "asked", asked, value_str(cl, "self"),
		    fmt_duration(value_uint(cl, "age_ms"), dur, sizeof dur));
	else
		printf("%-9s %s (member %s), which has not read etcd yet\n",
		    "asked", asked, value_str(cl, "self"));
	if (json_array_size(members) == 0) {
		puts("\nno members known yet");
		return;
	}
	putchar('\n');
	t = table_new(4, head, "llll");
	json_array_foreach(members, i, m) {
		json_t *since = json_object_get(m, "since");

		/* Each member's own clock: shown only when it makes sense. */
		if (json_is_integer(since) && json_integer_value(since) > 0 &&
		    json_integer_value(since) <= (json_int_t)now) {
			fmt_duration((uint64_t)(now - (time_t)json_integer_value(
			    since)) * 1000, dur, sizeof dur);
			snprintf(ago, sizeof ago, "%s ago", dur);
		} else
			snprintf(ago, sizeof ago, "-");
		table_add(t, value_str(m, "id"), value_str(m, "advertise"),
		    value_str(m, "role"), ago);
	}
	table_print(t);
	table_free(t);
}

int
cmd_cluster(struct ctl *ctl, int argc, char **argv)
{
	json_t *cl;
	int rc;

	if (no_options(argc, argv, 0, 0, "cluster") != 0)
		return EXIT_USAGE;
	/* A single dlmd answers NOT_FOUND, in its own words. */
	if ((rc = member_call(ctl, "cluster", &cl)) != EXIT_OK)
		return rc;
	if (ctl->json)
		rc = ctl_print_json(cl);
	else
		print_cluster(cl, ctl->answered[0] != '\0' ? ctl->answered :
		    ctl_server_name(ctl));
	json_decref(cl);
	return rc;
}

/*
 * Every entry of a paginated listing (locks, clients): follow the
 * server's cursor until it has no more, so a long list is never cut.
 */
static int
list_all(struct ctl *ctl, const char *method, const struct name *prefix,
    json_t **all)
{
	json_t *after = NULL;
	int rc = EXIT_OK;

	*all = json_array();
	for (;;) {
		json_t *params = json_object(), *res, *page, *next;

		if (prefix != NULL)
			json_object_set_new(params, "prefix",
			    value_bytes(prefix->bytes, prefix->len));
		if (after != NULL)
			json_object_set(params, "after", after);
		json_object_set_new(params, "limit", json_integer(PAGE_LIMIT));
		rc = ctl_call(ctl, method, params, &res);
		json_decref(params);
		if (rc != EXIT_OK)
			break;
		page = json_object_get(res, method);
		if (json_is_array(page))
			json_array_extend(*all, page);
		next = json_object_get(res, "next");
		json_decref(after);
		after = NULL;
		/* The cursor is a name: back to its bytes for the server. */
		if (json_is_string(next) && json_array_size(page) > 0 &&
		    (after = value_unescaped(next)) == NULL) {
			ctl_error("%s: the server's cursor is unreadable",
			    method);
			rc = EXIT_FAILED;
		}
		json_decref(res);
		if (after == NULL)
			break;
	}
	json_decref(after);
	if (rc != EXIT_OK) {
		json_decref(*all);
		*all = NULL;
	}
	return rc;
}

/* The holder held longest stands for the lock on its one line. */
static json_t *
longest_holder(json_t *holders)
{
	json_t *h, *best = json_array_get(holders, 0);
	size_t i;

	json_array_foreach(holders, i, h)
		if (value_uint(h, "held_ms") > value_uint(best, "held_ms"))
			best = h;
	return best;
}

/*
 * "web-1", or "web-1 +2 more" when others share the lock; "(delayed 2s)"
 * after it, or alone, while a lock-delay keeps the lock from everyone.
 */
static char *
holder_words(const char *who, uint64_t nholders, uint64_t delayed_ms)
{
	size_t len = strlen(who) + 96;
	char *s = xmalloc(len), delay[64] = "";
	size_t n;

	if (delayed_ms > 0) {
		char d[32];

		snprintf(delay, sizeof delay, "%s(delayed %s)",
		    nholders > 0 ? " " : "",
		    fmt_duration(delayed_ms, d, sizeof d));
	}
	if (nholders > 1)
		n = (size_t)snprintf(s, len, "%s +%llu more", who,
		    (unsigned long long)(nholders - 1));
	else
		n = (size_t)snprintf(s, len, "%s", nholders > 0 ? who : "");
	if (n < len)
		snprintf(s + n, len - n, "%s", delay);
	if (s[0] == '\0')
		snprintf(s, len, "-");
	return s;
}

/* A semaphore's permits in use of its capacity ("3/5"), else "-". */
static const char *
permits_words(json_t *l, char *buf, size_t len)
{
	if (json_object_get(l, "capacity") == NULL)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu/%llu",
		    (unsigned long long)value_uint(l, "in_use"),
		    (unsigned long long)value_uint(l, "capacity"));
	return buf;
}

static int
print_locks(json_t *locks)
{
	static const char *const head[] = { "LOCK", "KIND", "MODE", "PERMITS",
	    "HOLDER", "COUNT", "TOKEN", "HELD", "WAITERS", "LONGEST-WAIT",
	    "VALUE" };
	struct table *t;
	json_t *l;
	size_t i;

	if (json_array_size(locks) == 0) {
		puts("no locks held or awaited");
		return EXIT_OK;
	}
	t = table_new(11, head, "lllrlrrrrrl");
	json_array_foreach(locks, i, l) {
		json_t *h = longest_holder(json_object_get(l, "holders"));
		json_t *w = json_array_get(json_object_get(l, "waiters"), 0);
		uint64_t nh = value_uint(l, "nholders");
		char *holder, *value, count[32], token[32], held[32], nw[32],
		    waited[32], permits[48];

		/* A table's line: a long value is cut (show has it whole). */
		value = value_shown(h, 40);
		if (h == NULL) {
			holder = holder_words("", 0,
			    value_uint(l, "delayed_ms"));
			snprintf(count, sizeof count, "-");
			snprintf(token, sizeof token, "-");
			snprintf(held, sizeof held, "-");
		} else {
			holder = holder_words(value_str(h, "client"), nh,
			    value_uint(l, "delayed_ms"));
			snprintf(count, sizeof count, "%llu",
			    (unsigned long long)value_uint(h, "count"));
			snprintf(token, sizeof token, "%llu",
			    (unsigned long long)value_uint(h, "token"));
			fmt_duration(value_uint(h, "held_ms"), held,
			    sizeof held);
		}
		snprintf(nw, sizeof nw, "%llu",
		    (unsigned long long)value_uint(l, "nwaiters"));
		if (w != NULL)
			fmt_duration(value_uint(w, "waited_ms"), waited,
			    sizeof waited);
		else
			snprintf(waited, sizeof waited, "-");
		table_add(t, value_str(l, "name"), value_str(l, "kind"),
		    value_str(l, "mode"), permits_words(l, permits,
		    sizeof permits), holder, count, token, held, nw, waited,
		    value);
		free(holder);
		free(value);
	}
	table_print(t);
	table_free(t);
	return EXIT_OK;
}

/*
 * locks [PREFIX] and clients [PREFIX]: the whole list, as one JSON
 * document {"<method>": [...]} or through print.
 */
static int
list_command(struct ctl *ctl, int argc, char **argv, const char *method,
    int (*print)(json_t *))
{
	struct name prefix;
	bool has_prefix;
	json_t *list, *doc;
	char usage[64];
	int rc;

	snprintf(usage, sizeof usage, "%s [PREFIX]", method);
	if (no_options(argc, argv, 0, 1, usage) != 0)
		return EXIT_USAGE;
	has_prefix = argc > optind;
	if (has_prefix &&
	    (rc = name_from_arg("prefix", argv[optind], &prefix)) != EXIT_OK)
		return rc;
	if ((rc = ctl_connect(ctl, NULL)) == EXIT_OK)
		rc = list_all(ctl, method, has_prefix ? &prefix : NULL, &list);
	if (has_prefix)
		name_free(&prefix);
	if (rc != EXIT_OK)
		return rc;
	if (!ctl->json) {
		rc = print(list);
		json_decref(list);
		return rc;
	}
	doc = json_object();
	json_object_set_new(doc, method, list);
	rc = ctl_print_json(doc);
	json_decref(doc);
	return rc;
}

int
cmd_locks(struct ctl *ctl, int argc, char **argv)
{
	return list_command(ctl, argc, argv, "locks", print_locks);
}

static void
print_lock(json_t *l)
{
	/* A semaphore's holders and waiters each have a PERMITS column. */
	static const char *const hhead[] = { "HOLDER", "SESSION", "COUNT",
	    "TOKEN", "HELD", "LOCK-DELAY", "NOTIFY", "PERMITS", "VALUE" };
	static const char *const hhead_plain[] = { "HOLDER", "SESSION",
	    "COUNT", "TOKEN", "HELD", "LOCK-DELAY", "NOTIFY", "VALUE" };
	static const char *const whead[] = { "#", "WAITER", "MODE",
	    "WAITED", "PERMITS" };
	json_t *holders = json_object_get(l, "holders");
	json_t *waiters = json_object_get(l, "waiters");
	uint64_t nh = value_uint(l, "nholders"), nw = value_uint(l, "nwaiters");
	bool semaphore = json_object_get(l, "capacity") != NULL;
	uint64_t delayed = value_uint(l, "delayed_ms");
	struct table *t;
	json_t *e;
	size_t i;

	printf("%-9s %s\n", "lock", value_str(l, "name"));
	printf("%-9s %s\n", "kind", value_str(l, "kind"));
	printf("%-9s %s\n", "mode", value_str(l, "mode"));
	if (semaphore) {
		printf("%-9s %llu\n", "capacity",
		    (unsigned long long)value_uint(l, "capacity"));
		printf("%-9s %llu\n", "in use",
		    (unsigned long long)value_uint(l, "in_use"));
	}
	printf("%-9s %llu\n", "holders", (unsigned long long)nh);
	printf("%-9s %llu\n", "waiters", (unsigned long long)nw);
	if (delayed > 0) {
		char dur[32];

		printf("%-9s %s more: granted to nobody until then\n",
		    "delayed", fmt_duration(delayed, dur, sizeof dur));
	}
	if (json_array_size(holders) > 0) {
		putchar('\n');
		t = semaphore ? table_new(9, hhead, "lrrrrrlrl") :
		    table_new(8, hhead_plain, "lrrrrrll");
		json_array_foreach(holders, i, e) {
			char sess[32], count[32], token[32], held[32],
			    permits[32], delay[32];
			const char *notify;
			char *value = value_shown(e, 0);

			snprintf(sess, sizeof sess, "%llu",
			    (unsigned long long)value_uint(e, "session"));
			snprintf(count, sizeof count, "%llu",
			    (unsigned long long)value_uint(e, "count"));
			snprintf(token, sizeof token, "%llu",
			    (unsigned long long)value_uint(e, "token"));
			snprintf(permits, sizeof permits, "%llu",
			    (unsigned long long)value_uint(e, "permits"));
			fmt_duration(value_uint(e, "held_ms"), held,
			    sizeof held);
			if (value_uint(e, "lock_delay_ms") > 0)
				fmt_duration(value_uint(e, "lock_delay_ms"),
				    delay, sizeof delay);
			else
				snprintf(delay, sizeof delay, "-");
			notify = json_is_true(json_object_get(e,
			    "notify_contended")) ? "yes" : "-";
			if (semaphore)
				table_add(t, value_str(e, "client"), sess,
				    count, token, held, delay, notify, permits,
				    value);
			else
				table_add(t, value_str(e, "client"), sess,
				    count, token, held, delay, notify, value);
			free(value);
		}
		table_print(t);
		table_free(t);
	}
	if (json_array_size(waiters) > 0) {
		putchar('\n');
		t = table_new(semaphore ? 5 : 4, whead, "rllrr");
		json_array_foreach(waiters, i, e) {
			char pos[32], waited[32], permits[32];
			/* A holder converting its shared hold, at the head. */
			bool conv = json_is_true(json_object_get(e,
			    "converting"));

			snprintf(pos, sizeof pos, "%zu", i + 1);
			snprintf(permits, sizeof permits, "%llu",
			    (unsigned long long)value_uint(e, "permits"));
			table_add(t, pos, value_str(e, "client"),
			    conv ? "exclusive (converting)" :
			    value_str(e, "mode"),
			    fmt_duration(value_uint(e, "waited_ms"), waited,
			    sizeof waited), permits);
		}
		table_print(t);
		table_free(t);
	}
	if (nh > json_array_size(holders) || nw > json_array_size(waiters))
		printf("\n(the server listed %zu of %llu holders and %zu of "
		    "%llu waiters)\n", json_array_size(holders),
		    (unsigned long long)nh, json_array_size(waiters),
		    (unsigned long long)nw);
}

int
cmd_show(struct ctl *ctl, int argc, char **argv)
{
	struct name lock;
	json_t *params, *l;
	int rc;

	if (no_options(argc, argv, 1, 1, "show LOCK") != 0)
		return EXIT_USAGE;
	if ((rc = name_from_arg("lock name", argv[optind], &lock)) != EXIT_OK)
		return rc;
	if ((rc = ctl_connect(ctl, NULL)) != EXIT_OK) {
		name_free(&lock);
		return rc;
	}
	params = json_object();
	json_object_set_new(params, "lock", value_bytes(lock.bytes, lock.len));
	name_free(&lock);
	rc = ctl_call(ctl, "lock", params, &l);
	json_decref(params);
	if (rc != EXIT_OK)
		return rc;
	if (ctl->json)
		rc = ctl_print_json(l);
	else
		print_lock(l);
	json_decref(l);
	return rc;
}

static int
print_clients(json_t *clients)
{
	static const char *const head[] = { "CLIENT", "PEER", "STATE",
	    "EXPIRES-IN", "HOLDS", "WAITS", "HOST", "PID", "LABEL" };
	struct table *t;
	json_t *c;
	size_t i;

	if (json_array_size(clients) == 0) {
		puts("no sessions");
		return EXIT_OK;
	}
	t = table_new(9, head, "lllrrrlrl");
	json_array_foreach(clients, i, c) {
		json_t *info = json_object_get(c, "info");
		const char *host = value_str(info, "host");
		const char *label = value_str(info, "label");
		char left[32], holds[32], waits[32], pid[32];

		snprintf(holds, sizeof holds, "%llu",
		    (unsigned long long)value_uint(c, "holds"));
		snprintf(waits, sizeof waits, "%llu",
		    (unsigned long long)value_uint(c, "waits"));
		if (json_is_integer(json_object_get(info, "pid")))
			snprintf(pid, sizeof pid, "%llu",
			    (unsigned long long)value_uint(info, "pid"));
		else
			snprintf(pid, sizeof pid, "-");
		table_add(t, value_str(c, "name"), value_str(c, "peer"),
		    value_bool(c, "connected") ? "connected" : "lingering",
		    fmt_duration(value_uint(c, "expires_in_ms"), left,
		    sizeof left), holds, waits, host[0] ? host : "-", pid,
		    label[0] ? label : "-");
	}
	table_print(t);
	table_free(t);
	return EXIT_OK;
}

int
cmd_clients(struct ctl *ctl, int argc, char **argv)
{
	return list_command(ctl, argc, argv, "clients", print_clients);
}

int
cmd_ping(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = "usage: dlmctl ping [-c COUNT]\n";
	double min = 0, max = 0, sum = 0;
	json_t *rtts;
	long count = 1;
	int ch, rc = EXIT_OK;
	char *end;

	while ((ch = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (ch) {
		case 'c':
			count = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || count < 1 ||
			    count > 1000000) {
				ctl_error("ping: --count wants 1..1000000");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = ctl_connect(ctl, NULL)) != EXIT_OK)
		return rc;
	rtts = json_array();
	for (long i = 0; i < count; i++) {
		uint64_t t0 = mono_ns();
		double rtt;
		json_t *res;

		if ((rc = ctl_call(ctl, "ping", NULL, &res)) != EXIT_OK)
			break;
		rtt = (double)(mono_ns() - t0) / 1e6;
		json_decref(res);
		json_array_append_new(rtts, json_real(rtt));
		min = i == 0 || rtt < min ? rtt : min;
		max = rtt > max ? rtt : max;
		sum += rtt;
		if (!ctl->json)
			printf("pong from %s: %.3f ms\n", ctl_server_name(ctl),
			    rtt);
	}
	if (rc != EXIT_OK) {
		json_decref(rtts);
		return rc;
	}
	if (ctl->json) {
		json_t *doc = json_pack("{s:s, s:I, s:o, s:f, s:f, s:f}",
		    "server", ctl_server_name(ctl), "count", (json_int_t)count,
		    "rtt_ms", rtts, "min_ms", min, "avg_ms", sum / (double)count,
		    "max_ms", max);

		rc = ctl_print_json(doc);
		json_decref(doc);
		return rc;
	}
	if (count > 1)
		printf("%ld pings: min/avg/max = %.3f/%.3f/%.3f ms\n", count,
		    min, sum / (double)count, max);
	json_decref(rtts);
	return EXIT_OK;
}
