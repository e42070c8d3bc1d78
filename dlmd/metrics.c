/*
 * Prometheus metrics over HTTP (--metrics-listen): gauges and counters
 * from the server's own figures, and histograms of how long acquires waited
 * and locks were held. Served by libevent's evhttp on the daemon's loop;
 * off unless asked for.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "addr.h"
#include "dlmd.h"
#include "xmalloc.h"

/* Bucket bounds in seconds: 1 ms to about an hour. */
static const double bounds[] = {
	0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600,
};
#define NBOUNDS	(sizeof bounds / sizeof bounds[0])

struct histogram {
	uint64_t	buckets[NBOUNDS];	/* not cumulative here */
	uint64_t	count;
	uint64_t	sum_ms;
};

static struct histogram wait_hist, hold_hist, etcd_hist;
static struct evhttp *http;

static void
observe(struct histogram *hist, uint64_t ms)
{
	for (size_t i = 0; i < NBOUNDS; i++)
		if ((double)ms / 1000.0 <= bounds[i]) {
			hist->buckets[i]++;
			break;
		}
	hist->count++;
	hist->sum_ms += ms;
}

void
metrics_observe_wait(uint64_t ms)
{
	observe(&wait_hist, ms);
}

void
metrics_observe_hold(uint64_t ms)
{
	observe(&hold_hist, ms);
}

void
metrics_observe_etcd(uint64_t ms)
{
	observe(&etcd_hist, ms);
}

static void
put_metric(struct evbuffer *b, const char *name, const char *type,
    const char *help, uint64_t value)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name,
	    help, name, type, name, (unsigned long long)value);
}

static void
put_histogram(struct evbuffer *b, const char *name, const char *help,
    const struct histogram *hist)
{
	uint64_t cum = 0;

	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name,
	    help, name);
	for (size_t i = 0; i < NBOUNDS; i++) {
		cum += hist->buckets[i];
		evbuffer_add_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    bounds[i], (unsigned long long)cum);
	}
	evbuffer_add_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)hist->count);
	evbuffer_add_printf(b, "%s_sum %.3f\n%s_count %llu\n", name,
	    (double)hist->sum_ms / 1000.0, name,
	    (unsigned long long)hist->count);
}

/* Cluster mode only: the role machine's figures (cluster.c writes them). */
static void
render_cluster(struct evbuffer *b)
{
	const struct cluster_status *cs = &srv->cluster;
	static const char *roles[] = { "starting", "standby", "active" };
	static const int codes[] = { CLUSTER_STARTING, CLUSTER_STANDBY,
	    CLUSTER_ACTIVE };
	uint64_t now = now_ms();

	evbuffer_add_printf(b, "# HELP dlmd_cluster_role This dlmd's role in "
	    "its cluster (1 for the current one).\n"
	    "# TYPE dlmd_cluster_role gauge\n");
	for (size_t i = 0; i < 3; i++)
		evbuffer_add_printf(b, "dlmd_cluster_role{role=\"%s\"} %d\n",
		    roles[i], cs->role == codes[i]);
	put_metric(b, "dlmd_cluster_epoch", "gauge",
	    "Epoch of the active dlmd known (0: none).",
	    cs->epoch > 0 ? (uint64_t)cs->epoch : 0);
	put_metric(b, "dlmd_cluster_failovers_total", "counter",
	    "Times this dlmd became the active one.", cs->failovers);
	put_metric(b, "dlmd_cluster_stepdowns_total", "counter",
	    "Times this dlmd stopped being active.", cs->fences);
	put_metric(b, "dlmd_cluster_etcd_failures_total", "counter",
	    "etcd requests that failed or timed out.", cs->etcd_failures);
	put_metric(b, "dlmd_cluster_reclaims_total", "counter",
	    "Sessions reclaimed here after a fail-over.", cs->reclaims);
	put_metric(b, "dlmd_cluster_reclaimed_holds_total", "counter",
	    "Holds proven and kept by reclaims here.", cs->reclaimed_holds);
	put_metric(b, "dlmd_cluster_grace_remaining_ms", "gauge",
	    "Milliseconds left of the fail-over grace period.",
	    cs->role == CLUSTER_ACTIVE && cs->grace_until > now ?
	    cs->grace_until - now : 0);
	put_histogram(b, "dlmd_cluster_etcd_seconds",
	    "Round trips of etcd requests that were answered.", &etcd_hist);
}

static void
render(struct evbuffer *b)
{
	const struct stats *st = &srv->stats;
	struct lt_stats lts;

	locktab_stats(srv->lt, &lts);
	evbuffer_add_printf(b, "# HELP dlmd_build_info The running dlmd.\n"
	    "# TYPE dlmd_build_info gauge\n"
	    "dlmd_build_info{version=\"%s\",protocol=\"%d\"} 1\n",
	    PACKAGE_VERSION, DLM_PROTO_VERSION);
	put_metric(b, "dlmd_uptime_seconds", "gauge",
	    "Seconds since dlmd started.",
	    (now_ms() - srv->start_ms) / 1000);
	put_metric(b, "dlmd_sessions", "gauge",
	    "Sessions, connected or lingering.", srv->nsessions);
	put_metric(b, "dlmd_sessions_lingering", "gauge",
	    "Sessions whose connection is gone, awaiting resume.",
	    srv->nlingering);
	put_metric(b, "dlmd_connections", "gauge", "Open connections.",
	    conn_count());
	put_metric(b, "dlmd_locks", "gauge", "Locks held or awaited.",
	    lts.locks);
	put_metric(b, "dlmd_holds", "gauge", "Holds of locks.", lts.holds);
	put_metric(b, "dlmd_waiters", "gauge", "Acquires waiting.", lts.waits);
	put_metric(b, "dlmd_watches", "gauge", "Watches of locks.",
	    watch_count());

	evbuffer_add_printf(b, "# HELP dlmd_acquires_total Acquire requests "
	    "by how they ended.\n# TYPE dlmd_acquires_total counter\n");
	evbuffer_add_printf(b, "dlmd_acquires_total{result=\"granted\"} %llu\n"
	    "dlmd_acquires_total{result=\"would_block\"} %llu\n"
	    "dlmd_acquires_total{result=\"timeout\"} %llu\n"
	    "dlmd_acquires_total{result=\"cancelled\"} %llu\n"
	    "dlmd_acquires_total{result=\"refused\"} %llu\n",
	    (unsigned long long)st->grants,
	    (unsigned long long)st->would_blocks,
	    (unsigned long long)st->timeouts,
	    (unsigned long long)st->cancels,
	    (unsigned long long)st->refused);
	put_metric(b, "dlmd_releases_total", "counter",
	    "Releases asked for by holders.", st->releases);
	put_metric(b, "dlmd_deadlocks_total", "counter",
	    "Acquires and converts refused because their wait would close a "
	    "cycle of waits.", st->deadlocks);
	put_metric(b, "dlmd_expiries_total", "counter",
	    "Sessions ended because their lease or linger ran out.",
	    st->expiries);
	put_metric(b, "dlmd_forced_releases_total", "counter",
	    "Holds ended by an admin's force_release, reset_client or "
	    "reset_all.", st->forced);
	put_metric(b, "dlmd_lock_delays_total", "counter",
	    "Holds with a lock-delay that ended without a release, delaying "
	    "their lock.", lts.delays);
	put_metric(b, "dlmd_delayed_locks", "gauge",
	    "Locks whose lock-delay is pending.", lts.delayed);
	put_metric(b, "dlmd_contended_notices_total", "counter",
	    "Contention notices sent to holders.", st->contended);
	put_metric(b, "dlmd_requests_total", "counter", "Requests read.",
	    st->requests);
	put_metric(b, "dlmd_errors_total", "counter",
	    "Requests answered with an error.", st->errors);
	put_metric(b, "dlmd_protocol_errors_total", "counter",
	    "Connections closed for unreadable or oversized frames.",
	    st->protocol_errors);
	put_metric(b, "dlmd_output_overflows_total", "counter",
	    "Connections closed for not reading their replies.",
	    st->output_overflows);
	put_metric(b, "dlmd_connections_total", "counter",
	    "Connections accepted.", st->connections);
	put_metric(b, "dlmd_sessions_total", "counter", "Sessions opened.",
	    st->sessions_total);
	put_metric(b, "dlmd_resumes_total", "counter",
	    "Sessions resumed on a new connection.", st->resumes);
	put_metric(b, "dlmd_received_bytes_total", "counter",
	    "Bytes read from clients.", st->bytes_in);
	put_metric(b, "dlmd_sent_bytes_total", "counter",
	    "Bytes written to clients.", st->bytes_out);
	put_metric(b, "dlmd_watch_notices_total", "counter",
	    "Notices of changed holders queued to watchers.",
	    watch_notices());
	put_histogram(b, "dlmd_acquire_wait_seconds",
	    "How long granted acquires waited (0 when free at once).",
	    &wait_hist);
	put_histogram(b, "dlmd_hold_seconds",
	    "How long holds lasted, however they ended.", &hold_hist);
	if (srv->cluster.enabled)
		render_cluster(b);
}

static void
metrics_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b;

	(void)arg;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evhttp_send_error(req, 405, "only GET");
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	render(b);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
other_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, "metrics are at /metrics");
}

/* The port a bound socket really got (port 0 asks for any). */
static unsigned
bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/*
 * HOST:PORT or [V6]:PORT; an empty HOST is every address. The settings
 * were checked with the same parser when they were read.
 */
int
metrics_listen(struct event_base *base, const char *spec)
{
	struct evhttp_bound_socket *bound;
	struct addr a;
	char err[256];

	if (addr_parse_hostport(spec, ADDR_LISTENER, &a, err,
	    sizeof err) != 0) {
		log_warnx("--metrics-listen: %s", err);
		return -1;
	}
	if ((http = evhttp_new(base)) == NULL)
		fatalx("evhttp_new failed");
	/* A scraper has no business sending much, or hanging about. */
	evhttp_set_max_headers_size(http, 8192);
	evhttp_set_max_body_size(http, 0);
	evhttp_set_timeout(http, 10);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_cb(http, "/metrics", metrics_cb, NULL);
	evhttp_set_gencb(http, other_cb, NULL);
	if ((bound = evhttp_bind_socket_with_handle(http,
	    a.host[0] != '\0' ? a.host : NULL, a.portnum)) == NULL) {
		log_warn("--metrics-listen %s", spec);
		return -1;
	}
	log_info("metrics on http://%s%s%s:%u/metrics", a.v6 ? "[" : "",
	    a.host[0] != '\0' ? a.host : "*", a.v6 ? "]" : "",
	    bound_port(evhttp_bound_socket_get_fd(bound)));
	return 0;
}

void
metrics_free(void)
{
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
}
