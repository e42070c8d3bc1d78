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
 * shutdown; on a tls: listener also a failed or slow TLS handshake.
 * doc/PROTOCOL.md lists the same.
 *
 * A TLS connection (tls.c) goes through the same code: only conn_io_read()
 * and conn_io_write() differ, and no frame is read before its handshake
 * ends (see tls.c for why OpenSSL is used directly).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlmd.h"
#include "frame.h"
#include "xmalloc.h"

/* cppcheck-suppress unusedStructMember ; the TAILQ macros use them */
TAILQ_HEAD(conn_list, conn);

/* The connection layer's own state; it sees nothing of the server's. */
static struct {
	struct event_base		*base;
	const struct dlmd_config	*cfg;	/* read live: a reload edits it */
	struct stats			*stats;
	const struct conn_handlers	*h;
	struct conn_list		 conns;
	struct conn_list		 flush_list;
	struct event			*flush_ev;
	char				*rbuf;	/* DLMD_READ_CHUNK bytes */
	uint32_t			 nconns;
} cl;

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_hello_timeout_cb(evutil_socket_t, short, void *);
static void conn_handshake(struct conn *);

/*
 * A Unix peer's identity: its uid and gid as the kernel gives them, named
 * by its user's name, or "uid:N" when the user database has none.
 */
static void
conn_unix_identity(struct conn *c, uid_t uid, gid_t gid)
{
	/*
	 * A few uids make nearly every connection: their names are kept a
	 * minute, so that a storm of connects is not a storm of user-database
	 * look-ups (each one file reads and allocations that fragment the
	 * heap), and a renamed user is seen soon enough.
	 */
	static struct {
		uid_t		uid;
		uint64_t	when;	/* now_ms(); 0: empty */
		char		name[IDENT_NAME_MAX];
	} cache[8];
	static unsigned next;
	struct passwd pw, *found = NULL;
	char buf[4096];
	uint64_t now = now_ms();
	unsigned i;

	c->ident.kind = ID_UNIX;
	c->ident.uid = uid;
	c->ident.gid = gid;
	for (i = 0; i < 8; i++)
		if (cache[i].when != 0 && cache[i].uid == uid &&
		    now - cache[i].when < 60000) {
			conn_set_identity_name(c, cache[i].name);
			return;
		}
	i = next++ % 8;
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 &&
	    found != NULL && strlen(pw.pw_name) < sizeof cache[i].name)
		snprintf(cache[i].name, sizeof cache[i].name, "%s",
		    pw.pw_name);
	else
		snprintf(cache[i].name, sizeof cache[i].name, "uid:%lu",
		    (unsigned long)uid);
	cache[i].uid = uid;
	cache[i].when = now != 0 ? now : 1;
	conn_set_identity_name(c, cache[i].name);
}

static void
conn_peer_describe(struct conn *c, const struct sockaddr *sa)
{
	const char *scheme = c->ssl != NULL ? "tls" : "tcp";
	char host[INET6_ADDRSTRLEN];

	if (c->is_unix) {
		struct ucred cred;
		socklen_t len = sizeof cred;

		if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred,
		    &len) == 0) {
			c->uid = cred.uid;
			c->pid = cred.pid;
			conn_unix_identity(c, cred.uid, cred.gid);
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
		snprintf(c->peer, sizeof c->peer, "%s:%s:%u", scheme, host,
		    ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(c->peer, sizeof c->peer, "%s:[%s]:%u", scheme, host,
		    ntohs(in6->sin6_port));
	} else
		snprintf(c->peer, sizeof c->peer, "%s:unknown", scheme);
}

static void
conn_new(int fd, const struct sockaddr *sa, bool is_unix, bool tls)
{
	struct conn *c = xcalloc(1, sizeof *c);
	uint32_t first_ms = cl.cfg->lease_default_ms;

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
	if (tls) {
		if (tls_conn_start(c) != 0) {
			log_warnx("%s: no TLS for a new connection; closing it",
			    __func__);
			close(fd);
			free(c->ident.name);
			free(c);
			return;
		}
		/* Until it ends, the handshake's deadline stands for hello's. */
		c->handshaking = true;
		first_ms = cl.cfg->tls_handshake_timeout_ms;
	}
	conn_peer_describe(c, sa);
	if ((c->out = evbuffer_new()) == NULL)
		fatalx("%s: evbuffer_new failed", __func__);
	event_assign(&c->ev_read, cl.base, fd, EV_READ | EV_PERSIST,
	    conn_read_cb, c);
	event_assign(&c->ev_write, cl.base, fd, EV_WRITE, conn_write_cb, c);
	evtimer_assign(&c->hello_timer, cl.base, conn_hello_timeout_cb, c);
	event_add(&c->ev_read, NULL);
	event_add(&c->hello_timer, timer_tv(first_ms));
	TAILQ_INSERT_TAIL(&cl.conns, c, link);
	cl.nconns++;
	cl.stats->connections++;
	log_debug("connection from %s", c->peer);
}

void
conn_accept(int fd, const struct sockaddr *sa, int socklen, bool is_unix)
{
	conn_new(fd, sa, is_unix, false);
}

/* A connection on a tls: listener: a handshake comes first. */
void
conn_accept_tls(int fd, const struct sockaddr *sa, int socklen)
{
	conn_new(fd, sa, false, true);
}

static void
conn_hello_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->closing)
		return;
	if (c->handshaking) {
		log_info("TLS handshake with %s failed: not finished within "
		    "%u ms", c->peer, cl.cfg->tls_handshake_timeout_ms);
		conn_close(c, "TLS handshake timeout");
	} else
		conn_close(c, "no hello in time");
}

/* Drive a TLS handshake as its socket allows; frames follow it. */
static void
conn_handshake(struct conn *c)
{
	char why[300], name[IDENT_NAME_MAX];
	bool want_write;
	int rc = tls_conn_handshake(c, &want_write, name, sizeof name, why,
	    sizeof why);

	if (rc < 0) {
		log_info("TLS handshake with %s failed: %s", c->peer, why);
		conn_close(c, "TLS handshake failed");
		return;
	}
	if (rc == 0) {
		if (want_write)
			event_add(&c->ev_write, NULL);
		return;
	}
	c->handshaking = false;
	if (name[0] != '\0') {
		c->ident.kind = ID_TLS;
		conn_set_identity_name(c, name);
	}
	if (c->ident.kind == ID_TLS)
		log_debug("TLS connection %s is \"%s\"", c->peer,
		    c->ident.name);
	/* Now hello has its usual time, from the end of the handshake. */
	event_add(&c->hello_timer, timer_tv(cl.cfg->lease_default_ms));
	/* Frames may have come with the handshake's last flight. */
	event_active(&c->ev_read, EV_READ, 0);
}

/* read(), or its TLS equivalent; -1 with errno, and why for EPROTO. */
static ssize_t
conn_io_read(struct conn *c, void *buf, size_t len, char *why, size_t wlen)
{
	if (c->ssl != NULL)
		return tls_conn_read(c, buf, len, why, wlen);
	return read(c->fd, buf, len);
}

/* evbuffer_write(), or its TLS equivalent. */
static int
conn_io_write(struct conn *c)
{
	if (c->ssl != NULL)
		return tls_conn_write(c, c->out);
	return evbuffer_write(c->out, c->fd);
}

/*
 * The peer's hello waits for the server (a fail-over's grace): give it
 * ms more, counted from now, before the connection is closed unanswered.
 */
void
conn_hello_wait(struct conn *c, uint32_t ms)
{
	if (evtimer_pending(&c->hello_timer, NULL))
		event_add(&c->hello_timer, timer_tv(ms));
}

/* The peer said hello: it may now stay as long as its session does. */
void
conn_greeted(struct conn *c)
{
	event_del(&c->hello_timer);
}

static void
conn_schedule_flush(struct conn *c)
{
	if (!c->dirty && !c->dead) {
		c->dirty = true;
		TAILQ_INSERT_TAIL(&cl.flush_list, c, flush_link);
	}
	event_active(cl.flush_ev, EV_TIMEOUT, 0);
}

/* Run a flush pass at the end of this loop turn (frees what has ended). */
void
conn_kick(void)
{
	event_active(cl.flush_ev, EV_TIMEOUT, 0);
}

uint32_t
conn_count(void)
{
	return cl.nconns;
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
 * Close now. The handlers are told (the session lingers or ends); the
 * memory is freed by the flush pass so that callers up the stack stay safe.
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
	tls_conn_end(c, !c->handshaking);
	close(c->fd);
	c->fd = -1;
	cl.h->closed(c);
	if (!c->dirty) {
		c->dirty = true;
		TAILQ_INSERT_TAIL(&cl.flush_list, c, flush_link);
	}
	event_active(cl.flush_ev, EV_TIMEOUT, 0);
}

void
conn_set_identity_name(struct conn *c, const char *name)
{
	free(c->ident.name);
	c->ident.name = xstrdup(name);
}

static void
conn_free(struct conn *c)
{
	TAILQ_REMOVE(&cl.conns, c, link);
	cl.nconns--;
	evbuffer_free(c->out);
	tls_conn_free(c);
	free(c->ident.name);
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
		int n = conn_io_write(c);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(c, strerror(errno));
			return false;
		}
		if (n > 0)
			cl.stats->bytes_out += (uint64_t)n;
	}
	left = evbuffer_get_length(c->out);
	if (c->overflowed || left > cl.cfg->max_output) {
		cl.stats->output_overflows++;
		log_info("closing %s: %zu bytes of output unread (max %u)",
		    c->peer, left, cl.cfg->max_output);
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
static void
conn_flush_all(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c;

	(void)fd;
	(void)what;
	(void)arg;
	while ((c = TAILQ_FIRST(&cl.flush_list)) != NULL) {
		TAILQ_REMOVE(&cl.flush_list, c, flush_link);
		c->dirty = false;
		if (!c->dead)
			conn_flush(c);
		/* conn_flush() may have closed it and listed it again. */
		if (c->dead && !c->dirty)
			conn_free(c);
	}
	cl.h->flushed();
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (c->dead)
		return;
	if (c->handshaking)
		conn_handshake(c);
	else
		conn_flush(c);
}

/* Where a reply is written; NULL once the connection is closed. */
struct evbuffer *
conn_output(struct conn *c)
{
	if (c == NULL || c->dead)
		return NULL;
	return c->out;
}

/*
 * Something was added to the output: have it written this loop turn. The
 * output limit is checked here, for every reply, and not only when the
 * loop comes round to write: a client that sends a burst of requests and
 * never reads would otherwise pile up a whole burst of replies (64 listing
 * pages, say) before the check. Over the limit, what the socket takes is
 * written at once; if that is not enough the connection is marked and
 * closed by the flush pass, not here, since this runs inside handlers
 * that still use it.
 */
void
conn_queued(struct conn *c)
{
	if (c->dead)
		return;
	conn_schedule_flush(c);
	if (c->overflowed ||
	    evbuffer_get_length(c->out) <= cl.cfg->max_output)
		return;
	if (!c->closing) {
		int n = conn_io_write(c);

		if (n > 0)
			cl.stats->bytes_out += (uint64_t)n;
	}
	if (evbuffer_get_length(c->out) > cl.cfg->max_output) {
		c->overflowed = true;
		event_del(&c->ev_read);
	}
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
	for (int served = 0; off < len && !c->dead && !c->closing &&
	    !c->overflowed && !c->paused; served++) {
		enum frame_status st;
		size_t flen;

		if (served == DLMD_BATCH) {
			*more = true;
			break;
		}
		st = frame_scan(buf + off, len - off, cl.cfg->max_request,
		    DLM_MAX_DEPTH, &flen);
		if (st == FRAME_INCOMPLETE)
			break;
		if (st != FRAME_COMPLETE) {
			cl.stats->protocol_errors++;
			log_info("closing %s: %s", c->peer,
			    frame_status_str(st));
			cl.h->bad_frame(c, frame_status_str(st));
			conn_close_after_flush(c);
			return len;
		}
		cl.h->frame(c, buf + off, flen);
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

	if (c->handshaking) {
		conn_handshake(c);
		return;
	}
	if (c->backlog && c->in_len != 0) {
		/* Frames left from the last wake-up: serve them first. */
		buf = c->in;
		len = c->in_len;
	} else {
		char *dst, why[256];
		size_t room;
		ssize_t n;

		if (c->in_len == 0) {
			dst = cl.rbuf;
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
		n = conn_io_read(c, dst, room, why, sizeof why);
		if (n == 0) {
			conn_close(c, "end of file");
			return;
		}
		if (n < 0) {
			if (errno == EPROTO && c->ssl != NULL) {
				log_info("closing %s: %s", c->peer, why);
				conn_close(c, why);
			} else if (errno != EAGAIN && errno != EINTR)
				conn_close(c, strerror(errno));
			return;
		}
		cl.stats->bytes_in += (uint64_t)n;
		if (c->in_len == 0) {
			buf = cl.rbuf;
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
	/*
	 * Bytes a TLS record brought beyond what was read wait in the SSL,
	 * where poll cannot see them: read again as if the socket said so.
	 */
	if (more || (!c->paused && !c->closing && !c->overflowed &&
	    tls_conn_pending(c)))
		event_active(&c->ev_read, EV_READ, 0);
}

/*
 * Serve nothing more of c until conn_resume(): its handler must finish a
 * frame before the next one (a session's first acquire waits for etcd).
 * The frames that follow stay in its input, in order.
 */
void
conn_pause(struct conn *c)
{
	c->paused = true;
	event_del(&c->ev_read);
}

void
conn_resume(struct conn *c)
{
	if (!c->paused || c->dead)
		return;
	c->paused = false;
	if (c->closing)
		return;
	if (!c->overflowed)
		event_add(&c->ev_read, NULL);
	if (c->in_len != 0) {
		c->backlog = true;
		event_active(&c->ev_read, EV_READ, 0);
	} else if (tls_conn_pending(c))
		event_active(&c->ev_read, EV_READ, 0);
}

/* Shutdown: every connection stops reading and closes once written. */
void
conn_close_all_after_flush(void)
{
	struct conn *c;

	TAILQ_FOREACH(c, &cl.conns, link)
		conn_close_after_flush(c);
	conn_kick();
}

void
conn_init(struct event_base *base, const struct dlmd_config *cfg,
    struct stats *stats, const struct conn_handlers *h)
{
	cl.base = base;
	cl.cfg = cfg;
	cl.stats = stats;
	cl.h = h;
	TAILQ_INIT(&cl.conns);
	TAILQ_INIT(&cl.flush_list);
	cl.nconns = 0;
	cl.rbuf = xmalloc(DLMD_READ_CHUNK);
	if ((cl.flush_ev = event_new(base, -1, 0, conn_flush_all,
	    NULL)) == NULL)
		fatalx("%s: event_new failed", __func__);
}

/* Close and free every connection, telling the handlers; at exit. */
void
conn_free_all(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&cl.conns)) != NULL) {
		if (!c->dead)
			conn_close(c, "server exiting");
		if (c->dirty) {
			TAILQ_REMOVE(&cl.flush_list, c, flush_link);
			c->dirty = false;
		}
		conn_free(c);
	}
	if (cl.flush_ev != NULL)
		event_free(cl.flush_ev);
	cl.flush_ev = NULL;
	free(cl.rbuf);
	cl.rbuf = NULL;
}
