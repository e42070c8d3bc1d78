/*
 * Connections: bytes in, frames out of them, replies back.
 *
 * A connection reads into a shared buffer and keeps only a partial frame (or
 * frames left over by the per-wake-up cap) of its own, so an idle connection
 * costs no input buffer. Replies go into an evbuffer that is written once per
 * loop iteration for every connection that has something to send.
 *
 * The server closes a connection only for: end of file or a socket error, a
 * frame it cannot decode (too big, too deep, not MessagePack), output over
 * max_output, bye, session expiry or admin reset, no hello in time, and
 * shutdown. doc/PROTOCOL.md lists the same.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlmd.h"
#include "frame.h"
#include "xmalloc.h"

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_hello_timeout_cb(evutil_socket_t, short, void *);

static int
evbuffer_packer_write(void *data, const char *buf, size_t len)
{
	return evbuffer_add(data, buf, len);
}

static void
conn_peer_describe(struct conn *c, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN];

	if (c->is_unix) {
		struct ucred cred;
		socklen_t len = sizeof cred;

		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &len) == 0) {
			c->uid = cred.uid;
			c->pid = cred.pid;
			c->admin = server_uid_is_admin(cred.uid);
			snprintf(c->peer, sizeof c->peer, "unix:pid=%ld,uid=%ld",
			    (long)cred.pid, (long)cred.uid);
		} else {
			c->uid = (uid_t)-1;
			snprintf(c->peer, sizeof c->peer, "unix:unknown");
		}
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(c->peer, sizeof c->peer, "tcp:%s:%u", host,
		    ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(c->peer, sizeof c->peer, "tcp:[%s]:%u", host,
		    ntohs(in6->sin6_port));
	} else
		snprintf(c->peer, sizeof c->peer, "tcp:unknown");
}

void
conn_accept(int fd, const struct sockaddr *sa, int socklen, bool is_unix)
{
	struct conn *c;

	if (srv->shutting_down) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->fd = fd;
	c->is_unix = is_unix;
	c->uid = (uid_t)-1;
	c->pid = -1;
	if (!is_unix) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	conn_peer_describe(c, sa);
	if ((c->out = evbuffer_new()) == NULL)
		fatalx("%s: evbuffer_new failed", __func__);
	event_assign(&c->ev_read, srv->base, fd, EV_READ | EV_PERSIST,
	    conn_read_cb, c);
	event_assign(&c->ev_write, srv->base, fd, EV_WRITE, conn_write_cb, c);
	evtimer_assign(&c->hello_timer, srv->base, conn_hello_timeout_cb, c);
	event_add(&c->ev_read, NULL);
	event_add(&c->hello_timer, timer_tv(srv->cfg->lease_default_ms));
	TAILQ_INSERT_TAIL(&srv->conns, c, link);
	srv->nconns++;
	srv->stats.connections++;
	log_debug("connection from %s", c->peer);
}

static void
conn_hello_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->session == NULL && !c->closing)
		conn_close(c, "no hello in time");
}

static void
conn_schedule_flush(struct conn *c)
{
	if (!c->dirty && !c->dead) {
		c->dirty = true;
		TAILQ_INSERT_TAIL(&srv->flush_list, c, flush_link);
	}
	event_active(srv->flush_ev, EV_TIMEOUT, 0);
}

/* Stop reading; close once everything queued has been written. */
void
conn_close_after_flush(struct conn *c)
{
	if (c->dead || c->closing)
		return;
	c->closing = true;
	event_del(&c->ev_read);
	event_del(&c->hello_timer);
	conn_schedule_flush(c);
}

/*
 * Close now. The session is detached (it lingers or ends); the memory is
 * freed by conn_flush_all() so that callers up the stack stay safe.
 */
void
conn_close(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	log_debug("closing connection %s: %s", c->peer, why);
	c->dead = true;
	event_del(&c->ev_read);
	event_del(&c->ev_write);
	event_del(&c->hello_timer);
	close(c->fd);
	c->fd = -1;
	if (c->session != NULL) {
		struct session *s = c->session;

		c->session = NULL;
		session_detach(s);
	}
	if (!c->dirty) {
		c->dirty = true;
		TAILQ_INSERT_TAIL(&srv->flush_list, c, flush_link);
	}
	event_active(srv->flush_ev, EV_TIMEOUT, 0);
}

static void
conn_free(struct conn *c)
{
	TAILQ_REMOVE(&srv->conns, c, link);
	srv->nconns--;
	evbuffer_free(c->out);
	free(c->in);
	free(c);
	memory_released();
}

/* Write what is queued; returns false when the connection was closed. */
static bool
conn_flush(struct conn *c)
{
	size_t before = evbuffer_get_length(c->out), left;

	if (before != 0) {
		int n = evbuffer_write(c->out, c->fd);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c, strerror(errno));
			return false;
		}
		if (n > 0)
			srv->stats.bytes_out += (uint64_t)n;
	}
	left = evbuffer_get_length(c->out);
	if (left > srv->cfg->max_output) {
		srv->stats.output_overflows++;
		log_info("closing %s: %zu bytes of output unread (max %u)",
		    c->session != NULL ? c->session->name : c->peer, left,
		    srv->cfg->max_output);
		conn_close(c, "output over max_output");
		return false;
	}
	if (left != 0) {
		event_add(&c->ev_write, NULL);
		return true;
	}
	if (c->closing) {
		conn_close(c, "closing after last reply");
		return false;
	}
	return true;
}

/* The flush event: write every dirty connection, free dead ones. */
void
conn_flush_all(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->flush_list)) != NULL) {
		TAILQ_REMOVE(&srv->flush_list, c, flush_link);
		c->dirty = false;
		if (!c->dead)
			conn_flush(c);
		/* conn_flush() may have closed it and listed it again. */
		if (c->dead && !c->dirty)
			conn_free(c);
	}
	session_reap();
	if (srv->shutting_down && srv->nconns == 0)
		event_base_loopbreak(srv->base);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (!c->dead)
		conn_flush(c);
}

/*
 * Start a reply written straight into the connection's output:
 * [1, msgid, nil, then the result the caller packs into w. Used where a
 * reply is made while another is being built (a grant made by a release).
 */
void
conn_reply_start(struct conn *c, uint32_t msgid, struct mpw *w)
{
	mpw_init(w, c->out, evbuffer_packer_write);
	mpw_array(w, 4);
	mpw_u64(w, DLM_MSG_RESPONSE);
	mpw_u64(w, msgid);
	mpw_nil(w);
}

void
conn_reply_done(struct conn *c, struct mpw *w)
{
	if (w->err != 0)
		fatalx("%s: cannot queue a reply", __func__);
	conn_schedule_flush(c);
}

/* Append a reply: [1, msgid, nil, result]. */
void
conn_reply(struct conn *c, uint32_t msgid, const msgpack_sbuffer *result)
{
	struct mpw w;

	if (c == NULL || c->dead)
		return;
	conn_reply_start(c, msgid, &w);
	if (evbuffer_add(c->out, result->data, result->size) != 0)
		w.err = 1;
	conn_reply_done(c, &w);
}

/*
 * Append an error reply: [1, msgid, {code, name, message}, nil]. msgid is
 * NULL when the request's msgid could not be read; it is sent as nil.
 */
void
conn_reply_error(struct conn *c, const uint32_t *msgid, int code,
    const char *fmt, ...)
{
	char message[512];
	struct mpw w;
	va_list ap;

	if (c == NULL || c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	srv->stats.errors++;
	mpw_init(&w, c->out, evbuffer_packer_write);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_RESPONSE);
	if (msgid != NULL)
		mpw_u64(&w, *msgid);
	else
		mpw_nil(&w);
	mpw_error(&w, code, message);
	mpw_nil(&w);
	if (w.err != 0)
		fatalx("%s: cannot queue a reply", __func__);
	conn_schedule_flush(c);
}

/* [2, "lost", [{lock, token, reason}]] */
void
conn_notify_lost(struct conn *c, const struct lt_hold *h, int reason)
{
	struct mpw w;

	if (c == NULL || c->dead)
		return;
	mpw_init(&w, c->out, evbuffer_packer_write);
	mpw_array(&w, 3);
	mpw_u64(&w, DLM_MSG_NOTIFY);
	mpw_str(&w, "lost");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "lock");
	mpw_strn(&w, h->lock->name, h->lock->namelen);
	mpw_key(&w, "token");
	mpw_u64(&w, h->token);
	mpw_key(&w, "reason");
	mpw_str(&w, dlm_proto_lost_reason(reason));
	if (w.err != 0)
		fatalx("%s: cannot queue a notification", __func__);
	conn_schedule_flush(c);
}

/*
 * Serve whole frames from buf. Returns how many bytes were consumed; stops
 * after DLMD_BATCH frames so that one busy client cannot starve the rest.
 */
static size_t
conn_serve_frames(struct conn *c, const char *buf, size_t len, bool *more)
{
	size_t off = 0;

	*more = false;
	for (int served = 0; off < len && !c->dead && !c->closing; served++) {
		enum frame_status st;
		size_t flen;

		if (served == DLMD_BATCH) {
			*more = true;
			break;
		}
		st = frame_scan(buf + off, len - off, srv->cfg->max_request,
		    DLM_MAX_DEPTH, &flen);
		if (st == FRAME_INCOMPLETE)
			break;
		if (st != FRAME_COMPLETE) {
			srv->stats.protocol_errors++;
			log_info("closing %s: %s", c->peer,
			    frame_status_str(st));
			conn_reply_error(c, NULL, DLM_E_BAD_REQUEST, "%s",
			    frame_status_str(st));
			conn_close_after_flush(c);
			return len;
		}
		dispatch_frame(c, buf + off, flen);
		off += flen;
	}
	return off;
}

/* Keep the unconsumed tail of the input as this connection's own. */
static void
conn_keep_input(struct conn *c, const char *tail, size_t len)
{
	if (len == 0) {
		free(c->in);
		c->in = NULL;
		c->in_len = c->in_cap = 0;
		return;
	}
	if (c->in != NULL && tail >= c->in && tail < c->in + c->in_cap) {
		memmove(c->in, tail, len);
		c->in_len = len;
		return;
	}
	if (c->in_cap < len) {
		c->in_cap = len < 4096 ? 4096 : len;
		c->in = xrealloc(c->in, c->in_cap);
	}
	memcpy(c->in, tail, len);
	c->in_len = len;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	const char *buf;
	size_t len, used;
	bool more;

	if (c->backlog && c->in_len != 0) {
		/* Frames left from the last wake-up: serve them first. */
		buf = c->in;
		len = c->in_len;
	} else {
		char *dst;
		size_t room;
		ssize_t n;

		if (c->in_len == 0) {
			dst = srv->rbuf;
			room = DLMD_READ_CHUNK;
		} else {
			size_t want = c->in_len + DLMD_READ_CHUNK;

			if (c->in_cap < want) {
				c->in_cap = want;
				c->in = xrealloc(c->in, c->in_cap);
			}
			dst = c->in + c->in_len;
			room = c->in_cap - c->in_len;
		}
		n = read(fd, dst, room);
		if (n == 0) {
			conn_close(c, "end of file");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(c, strerror(errno));
			return;
		}
		srv->stats.bytes_in += (uint64_t)n;
		if (c->in_len == 0) {
			buf = srv->rbuf;
			len = (size_t)n;
		} else {
			c->in_len += (size_t)n;
			buf = c->in;
			len = c->in_len;
		}
	}
	used = conn_serve_frames(c, buf, len, &more);
	if (c->dead)
		return;
	conn_keep_input(c, buf + used, len - used);
	c->backlog = more;
	if (more)
		event_active(&c->ev_read, EV_READ, 0);
}

void
conn_free_all(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&srv->conns)) != NULL) {
		if (!c->dead)
			conn_close(c, "server exiting");
		if (c->dirty) {
			TAILQ_REMOVE(&srv->flush_list, c, flush_link);
			c->dirty = false;
		}
		conn_free(c);
	}
}
