/*
 * An asynchronous etcd v3 client on the daemon's loop, through etcd's JSON
 * gateway (POST /v3/...). It knows nothing of locks: it sends a JSON body,
 * and calls back exactly once with the parsed answer or with why there is
 * none. Each request has its own deadline (1 s by default); a request that
 * fails for want of an answer (refused, reset, timed out, a 5xx) moves the
 * client to the next endpoint, since etcd's gateway does not forward for us
 * and a member without quorum hangs for seconds before it says so.
 *
 * The client never retries on its own: whoever asked knows whether a
 * request may be sent again, and when.
 *
 * https:// endpoints go through libevent's OpenSSL bufferevent under the
 * same evhttp code. evhttp reconnects a closed connection by giving its
 * bufferevent a new socket, which would reuse an SSL whose session has
 * ended; so a TLS connection that closed or failed is marked stale, and
 * the next request made while none of ours is pending on it frees it and
 * makes a new one, with a new SSL from the context of that moment (a
 * reload's).
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>

#include "dlmd.h"
#include "xmalloc.h"

#define ETCD_BODY_MAX	(1024 * 1024)	/* the largest answer read */

struct etcd_ep {
	char			*url;
	char			 host[256];
	uint16_t		 port;
	bool			 tls;		/* https:// */
	bool			 stale;		/* TLS: remake before use */
	struct evhttp_connection *conn;
};

struct etcd_req {
	TAILQ_ENTRY(etcd_req)	 link;
	struct etcd		*etcd;
	struct evhttp_request	*http;	/* NULL once answered or failed */
	struct event		*timer;
	etcd_cb			 cb;
	void			*arg;
	int			 ep;
	uint64_t		 sent_ms;
	char			*path;
	char			 tls_why[200];	/* a TLS failure's reason */
};

struct etcd {
	struct event_base	*base;
	struct evdns_base	*dns;		/* NULL: numeric hosts only */
	struct etcd_ep		*eps;
	int			 neps;
	int			 cur;		/* where requests go */
	uint32_t		 timeout_ms;
	SSL_CTX			*tls;		/* https://: a reference */
	/* cppcheck-suppress unusedStructMember ; used through TAILQ macros */
	TAILQ_HEAD(, etcd_req)	 reqs;
	uint64_t		 requests;
	uint64_t		 failures;
};

/* Split a comma-separated list of URLs; the caller frees it. */
struct etcd *
etcd_new(struct event_base *base, const char *urls, uint32_t timeout_ms,
    SSL_CTX *tls, char *err, size_t errlen)
{
	struct etcd *e = xcalloc(1, sizeof *e);
	char *list = xstrdup(urls), *tok, *save = NULL;

	e->base = base;
	e->timeout_ms = timeout_ms;
	TAILQ_INIT(&e->reqs);
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		struct etcd_ep *ep;

		if (e->neps == ETCD_MAX_ENDPOINTS) {
			snprintf(err, errlen, "at most %d etcd endpoints",
			    ETCD_MAX_ENDPOINTS);
			goto fail;
		}
		e->eps = xrealloc(e->eps, (size_t)(e->neps + 1) *
		    sizeof *e->eps);
		ep = &e->eps[e->neps];
		memset(ep, 0, sizeof *ep);
		if (etcd_endpoint_parse(tok, ep->host, sizeof ep->host,
		    &ep->port, &ep->tls, err, errlen) != 0)
			goto fail;
		if (ep->tls && tls == NULL) {
			snprintf(err, errlen, "%s: https:// without a TLS "
			    "context", tok);
			goto fail;
		}
		ep->url = xstrdup(tok);
		e->neps++;
	}
	if (e->neps == 0) {
		snprintf(err, errlen, "no etcd endpoint given");
		goto fail;
	}
	etcd_set_tls(e, tls);
	/*
	 * A host name is resolved by evdns, on the loop: the blocking
	 * resolver would stall every client at each reconnect.
	 */
	for (int i = 0; i < e->neps && e->dns == NULL; i++) {
		struct in6_addr a6;
		struct in_addr a4;

		if (inet_pton(AF_INET, e->eps[i].host, &a4) != 1 &&
		    inet_pton(AF_INET6, e->eps[i].host, &a6) != 1 &&
		    (e->dns = evdns_base_new(base,
		    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL)
			log_warnx("etcd: no asynchronous resolver; %s is "
			    "resolved by the system's, which blocks",
			    e->eps[i].host);
	}
	free(list);
	return e;
fail:
	free(list);
	etcd_free(e);
	return NULL;
}

static void
req_free(struct etcd_req *r)
{
	if (r->timer != NULL)
		event_free(r->timer);
	free(r->path);
	free(r);
}

/* Forget every request without calling back: the caller is going away. */
void
etcd_free(struct etcd *e)
{
	struct etcd_req *r;

	if (e == NULL)
		return;
	while ((r = TAILQ_FIRST(&e->reqs)) != NULL) {
		TAILQ_REMOVE(&e->reqs, r, link);
		if (r->http != NULL)
			evhttp_cancel_request(r->http);
		req_free(r);
	}
	for (int i = 0; i < e->neps; i++) {
		if (e->eps[i].conn != NULL)
			evhttp_connection_free(e->eps[i].conn);
		free(e->eps[i].url);
	}
	free(e->eps);
	SSL_CTX_free(e->tls);
	if (e->dns != NULL)
		evdns_base_free(e->dns, 0);
	free(e);
}

/*
 * The context new TLS connections are made from (a reload's); connections
 * open now keep theirs until they close. Takes a reference of its own.
 */
void
etcd_set_tls(struct etcd *e, SSL_CTX *tls)
{
	if (tls != NULL)
		SSL_CTX_up_ref(tls);
	SSL_CTX_free(e->tls);
	e->tls = tls;
}

const char *
etcd_endpoint(const struct etcd *e)
{
	return e->eps[e->cur].url;
}

int
etcd_nendpoints(const struct etcd *e)
{
	return e->neps;
}

const char *
etcd_endpoint_at(const struct etcd *e, int i)
{
	return i >= 0 && i < e->neps ? e->eps[i].url : NULL;
}

/* Answer the caller once, then forget the request. */
static void
req_finish(struct etcd_req *r, int status, json_t *json, const char *why)
{
	struct etcd *e = r->etcd;
	struct etcd_reply reply;

	TAILQ_REMOVE(&e->reqs, r, link);
	memset(&reply, 0, sizeof reply);
	reply.status = status;
	reply.json = json;
	reply.why = why;
	reply.sent_ms = r->sent_ms;
	reply.rtt_ms = now_ms() - r->sent_ms;
	reply.endpoint = e->eps[r->ep].url;
	reply.ok = why == NULL;
	if (!reply.ok) {
		e->failures++;
		if (status == 0 && e->eps[r->ep].tls)
			e->eps[r->ep].stale = true;
		/* Move on, unless another failure moved us already. */
		if (r->ep == e->cur && (status == 0 || status >= 500))
			e->cur = (e->cur + 1) % e->neps;
	}
	r->cb(&reply, r->arg);
	json_decref(json);
	req_free(r);
}

static void
req_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct etcd_req *r = arg;
	char why[128];

	if (r->http != NULL) {
		evhttp_cancel_request(r->http);
		r->http = NULL;
	}
	snprintf(why, sizeof why, "no answer within %u ms",
	    r->etcd->timeout_ms);
	req_finish(r, 0, NULL, why);
}

static void
req_done_cb(struct evhttp_request *http, void *arg)
{
	struct etcd_req *r = arg;
	struct evbuffer *in;
	json_error_t jerr;
	json_t *json = NULL;
	char why[300];
	size_t len;
	int status;

	r->http = NULL;
	if (http == NULL || (status = evhttp_request_get_response_code(http))
	    == 0) {
		snprintf(why, sizeof why, "%s", r->tls_why[0] != '\0' ?
		    r->tls_why : "connection failed");
		req_finish(r, 0, NULL, why);
		return;
	}
	in = evhttp_request_get_input_buffer(http);
	len = evbuffer_get_length(in);
	if (len > 0 && len <= ETCD_BODY_MAX) {
		const char *body = (const char *)evbuffer_pullup(in, -1);

		json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	}
	if (status == 200 && json_is_object(json)) {
		req_finish(r, status, json, NULL);
		return;
	}
	if (json_is_object(json) &&
	    json_is_string(json_object_get(json, "message")))
		snprintf(why, sizeof why, "HTTP %d: %s", status,
		    safe_str0(json_string_value(json_object_get(json,
		    "message"))));
	else
		snprintf(why, sizeof why, "HTTP %d and %s", status,
		    len == 0 ? "no body" : "not a JSON object");
	req_finish(r, status, json, why);
}

/*
 * Keep TLS's reason for the failure. evhttp (2.1) calls this after it has
 * reset the connection, but the reset leaves the SSL's errors and
 * verification result in place; where it does not, the reason is
 * "connection failed".
 */
static void
req_error_cb(enum evhttp_request_error what, void *arg)
{
	struct etcd_req *r = arg;
	struct etcd_ep *ep = &r->etcd->eps[r->ep];

	if (ep->tls && ep->conn != NULL)
		etcd_tls_why(evhttp_connection_get_bufferevent(ep->conn),
		    r->tls_why, sizeof r->tls_why);
}

static void
req_fail_later_cb(evutil_socket_t fd, short what, void *arg)
{
	req_finish(arg, 0, NULL, "the request could not be sent");
}

static void
conn_closed_cb(struct evhttp_connection *conn, void *arg)
{
	struct etcd_ep *ep = arg;

	ep->stale = true;
}

/* Whether a request of ours waits on endpoint i's connection. */
static bool
endpoint_busy(const struct etcd *e, int i)
{
	const struct etcd_req *r;

	TAILQ_FOREACH(r, &e->reqs, link)
		if (r->ep == i && r->http != NULL)
			return true;
	return false;
}

/* A new connection to ep: plain, or TLS with a new SSL. */
static struct evhttp_connection *
endpoint_connect(struct etcd *e, struct etcd_ep *ep)
{
	struct evhttp_connection *conn;
	struct bufferevent *bev;
	SSL *ssl;

	if (!ep->tls)
		return evhttp_connection_base_new(e->base, e->dns, ep->host,
		    ep->port);
	if ((ssl = etcd_tls_ssl(e->tls, ep->host)) == NULL)
		return NULL;
	/* The bufferevent owns the SSL from here, freed with it. */
	bev = bufferevent_openssl_socket_new(e->base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	/* etcd may close an idle connection without a close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if ((conn = evhttp_connection_base_bufferevent_new(e->base, e->dns,
	    bev, ep->host, ep->port)) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	evhttp_connection_set_closecb(conn, conn_closed_cb, ep);
	ep->stale = false;
	return conn;
}

/*
 * POST body (taken) to path on the current endpoint. cb is called exactly
 * once, never from inside this call.
 */
void
etcd_call(struct etcd *e, const char *path, json_t *body, etcd_cb cb,
    void *arg)
{
	struct etcd_req *r = xcalloc(1, sizeof *r);
	struct etcd_ep *ep = &e->eps[e->cur];
	struct evkeyvalq *hdr;
	struct timeval tv;
	char *text;

	r->etcd = e;
	r->cb = cb;
	r->arg = arg;
	r->ep = e->cur;
	r->path = xstrdup(path);
	r->sent_ms = now_ms();
	TAILQ_INSERT_TAIL(&e->reqs, r, link);
	e->requests++;
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (text == NULL)
		fatalx("%s: out of memory", __func__);

	if (ep->conn != NULL && ep->stale && !endpoint_busy(e, r->ep)) {
		evhttp_connection_free(ep->conn);
		ep->conn = NULL;
	}
	if (ep->conn == NULL) {
		ep->conn = endpoint_connect(e, ep);
		if (ep->conn == NULL)
			fatalx("%s: cannot make a connection to %s", __func__,
			    ep->url);
		evhttp_connection_set_retries(ep->conn, 0);
		evhttp_connection_set_max_body_size(ep->conn, ETCD_BODY_MAX);
		evhttp_connection_set_timeout(ep->conn,
		    (int)(e->timeout_ms / 1000 + 1));
	}
	r->http = evhttp_request_new(req_done_cb, r);
	if (r->http == NULL)
		fatalx("%s: evhttp_request_new failed", __func__);
	evhttp_request_set_error_cb(r->http, req_error_cb);
	hdr = evhttp_request_get_output_headers(r->http);
	evhttp_add_header(hdr, "Host", ep->host);
	evhttp_add_header(hdr, "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(r->http), text,
	    strlen(text));
	free(text);

	tv.tv_sec = e->timeout_ms / 1000;
	tv.tv_usec = (e->timeout_ms % 1000) * 1000;
	if (evhttp_make_request(ep->conn, r->http, EVHTTP_REQ_POST, path)
	    != 0) {
		r->http = NULL;
		r->timer = evtimer_new(e->base, req_fail_later_cb, r);
		tv.tv_sec = 0;
		tv.tv_usec = 0;
	} else {
		/*
		 * Without TCP_NODELAY a request on a kept-alive connection
		 * can wait ~40 ms for a delayed ACK. The socket exists once
		 * the request is made (the connect is under way).
		 */
		int one = 1, fd = bufferevent_getfd(
		    evhttp_connection_get_bufferevent(ep->conn));

		if (fd >= 0)
			(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof one);
		r->timer = evtimer_new(e->base, req_timeout_cb, r);
	}
	if (r->timer == NULL || evtimer_add(r->timer, &tv) != 0)
		fatalx("%s: cannot add a timer", __func__);
}

