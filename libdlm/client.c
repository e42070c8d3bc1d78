/*
 * libdlm: the connection, the session handshake, the I/O thread, and
 * matching replies to requests.
 *
 * A caller waiting for its reply reads the socket, or else the I/O thread.
 * Requests are queued in order and written by a synchronous caller or the
 * I/O thread; a generation number, changed only with both c->wmu and c->mu
 * held, and the queue emptied with it, keeps a request meant for a dropped
 * connection from going down its successor.
 */
#include "config.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "client.h"
#include "clock.h"
#include "frame.h"
#include "paths.h"
#include "proto.h"

#define READ_CHUNK	65536
/* A reading caller looks up from the socket this often. */
#define CALLER_SLICE_MS	100
#define MAX_REPLY	(64u * 1024 * 1024)

/* Every live client, so that a fork() child can close their sockets. */
__thread int dlm__hash_oom;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct dlm_client **registry;
static size_t nregistry, registry_cap;
static unsigned long name_counter;
/*
 * How many fork()s deep this process is, counted in each child: a call
 * compares it with its client's instead of asking the kernel for the pid
 * on every call. Written only in a child, while it has one thread.
 */
static unsigned long fork_depth;

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&registry_mu);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&registry_mu);
}

/*
 * In a child, the parent's sockets must not stay open: the parent's locks
 * would outlive the parent for as long as the child runs. The client objects
 * stay, so that the child's calls fail cleanly with DLM_E_FORKED.
 */
static void
atfork_child(void)
{
	fork_depth++;
	for (size_t i = 0; i < nregistry; i++) {
		int fd = atomic_load(&registry[i]->fork_fd);

		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&registry_mu);
}

static void
atfork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static int
registry_add(struct dlm_client *c)
{
	int rc = 0;

	pthread_once(&atfork_once, atfork_init);
	pthread_mutex_lock(&registry_mu);
	if (nregistry == registry_cap) {
		size_t cap = registry_cap ? registry_cap * 2 : 8;
		struct dlm_client **r = realloc(registry, cap * sizeof *r);

		if (r == NULL)
			rc = DLM_E_NOMEM;
		else {
			registry = r;
			registry_cap = cap;
		}
	}
	if (rc == 0)
		registry[nregistry++] = c;
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

static void
registry_remove(const struct dlm_client *c)
{
	pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < nregistry; i++)
		if (registry[i] == c) {
			registry[i] = registry[--nregistry];
			break;
		}
	if (nregistry == 0) {
		free(registry);
		registry = NULL;
		registry_cap = 0;
	}
	pthread_mutex_unlock(&registry_mu);
}

bool
dlm__forked(struct dlm_client *c)
{
	return fork_depth != c->fork_depth;
}

/* Enter a public call: returns 0 with c->mu held, or an error. */
int
dlm__enter(struct dlm_client *c)
{
	if (c == NULL)
		return DLM_E_INVALID;
	if (dlm__forked(c))
		return DLM_E_FORKED;
	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		pthread_mutex_unlock(&c->mu);
		return DLM_E_CLOSED;
	}
	c->users++;
	return 0;
}

void
dlm__leave(struct dlm_client *c)
{
	if (--c->users == 0 && c->closing)
		pthread_cond_broadcast(&c->state_cv);
	pthread_mutex_unlock(&c->mu);
}

void
dlm__req_free(struct dlm_req *req)
{
	if (req == NULL)
		return;
	free(req->lock);
	free(req);
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Connect to a parsed address within timeout_ms. */
static int
dial(const struct addr *addr, int timeout_ms, int *fdp)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1;

	if (addr->type == ADDR_UNIX) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		/* addr_parse() kept the path within sun_path. */
		memcpy(sun.sun_path, addr->path, strlen(addr->path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return DLM_E_CONNECT;
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			close(fd);
			return DLM_E_CONNECT;
		}
		*fdp = fd;
		return 0;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* A numeric service: no lookup can reinterpret the checked port. */
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(addr->host, addr->port, &hints, &res) != 0)
		return DLM_E_CONNECT;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		int err = 0, one = 1;
		socklen_t elen = sizeof err;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			close(fd);
			fd = -1;
			continue;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
		    err != 0) {
			close(fd);
			fd = -1;
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return DLM_E_CONNECT;
	*fdp = fd;
	return 0;
}

/* Room for another read in the I/O buffer; false when memory ran out. */
static bool
rbuf_reserve(struct dlm_client *c)
{
	size_t cap;
	char *b;

	if (c->rcap - c->rlen >= READ_CHUNK)
		return true;
	cap = c->rcap * 2 + READ_CHUNK;
	if ((b = realloc(c->rbuf, cap)) == NULL)
		return false;
	c->rbuf = b;
	c->rcap = cap;
	return true;
}

/*
 * Decode the whole frame at the start of rbuf into *obj (valid until the
 * frame is consumed): 1 with *flen set, 0 when incomplete, -1 when the
 * server sent something that is not a frame.
 */
static int
next_frame(struct dlm_client *c, msgpack_object *obj, size_t *flen)
{
	size_t off = 0;
	enum frame_status st = frame_scan(c->rbuf, c->rlen, MAX_REPLY, 8, flen);

	if (st == FRAME_INCOMPLETE)
		return 0;
	if (st != FRAME_COMPLETE)
		return -1;
	msgpack_zone_clear(&c->zone);
	if (msgpack_unpack(c->rbuf, *flen, &off, &c->zone, obj) !=
	    MSGPACK_UNPACK_SUCCESS)
		return -1;
	return 1;
}

/*
 * Read until rbuf starts with a whole frame; decode it into *obj (valid until
 * the frame is consumed). Returns the frame's length, 0 on timeout, -1 on
 * end of file, error or a malformed frame.
 */
static ssize_t
read_frame(struct dlm_client *c, int fd, int timeout_ms, msgpack_object *obj)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		size_t flen;
		int64_t left;
		ssize_t n;
		int got = next_frame(c, obj, &flen);

		if (got != 0)
			return got > 0 ? (ssize_t)flen : -1;
		left = (int64_t)deadline - (int64_t)mono_ms();
		if (left <= 0)
			return 0;
		if (poll(&pfd, 1, (int)left) != 1)
			continue;
		if (!rbuf_reserve(c))
			return -1;
		n = read(fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n <= 0)
			return -1;
		c->rlen += (size_t)n;
	}
}

static void
consume(struct dlm_client *c, size_t n)
{
	memmove(c->rbuf, c->rbuf + n, c->rlen - n);
	c->rlen -= n;
}

/* The error code of a response's error map. */
static int
error_code(const msgpack_object *e)
{
	int64_t code;

	const msgpack_object *o;

	if (e->type == MSGPACK_OBJECT_NIL)
		return 0;
	if ((o = mpr_get(e, "code")) == NULL || !mpr_int(o, &code) ||
	    code <= 0 || code > INT32_MAX)
		return DLM_E_PROTOCOL;
	return (int)code;
}

static char *
xstrdup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* What the server's hello said. */
struct session_info {
	uint64_t	session;
	char		secret[64];
	int		lease_ms;
	int		linger_ms;
	bool		resumed;
};

/*
 * Say hello on a fresh connection (blocking, before the I/O thread reads
 * it). With resume, presents the session's secret. The answer goes to *si,
 * not the client: other threads read those fields under c->mu, so the
 * caller applies them with session_apply().
 */
static int
session_open(struct dlm_client *c, int fd, bool resume,
    struct session_info *si)
{
	msgpack_sbuffer sb;
	msgpack_object obj;
	const msgpack_object *v, *res, *o;
	struct mpw w;
	char host[256];
	uint32_t n = 3;
	ssize_t flen;
	const char *p;
	size_t plen;
	uint64_t u;
	int rc;

	memset(si, 0, sizeof *si);
	si->linger_ms = c->linger_ms;
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	n += (c->ask_lease_ms > 0) + (c->ask_linger_ms > 0) +
	    (c->auth != NULL) + (resume && c->secret[0] != '\0');
	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_REQUEST);
	mpw_u64(&w, 0);
	mpw_str(&w, "hello");
	mpw_array(&w, 1);
	mpw_map(&w, n);
	mpw_key(&w, "proto");
	mpw_u64(&w, DLM_PROTO_VERSION);
	mpw_key(&w, "client");
	mpw_str(&w, c->name);
	mpw_key(&w, "info");
	mpw_map(&w, c->label != NULL ? 3 : 2);
	mpw_key(&w, "host");
	mpw_str(&w, host);
	mpw_key(&w, "pid");
	mpw_i64(&w, (int64_t)c->pid);
	if (c->label != NULL) {
		mpw_key(&w, "label");
		mpw_str(&w, c->label);
	}
	if (c->ask_lease_ms > 0) {
		mpw_key(&w, "lease_ms");
		mpw_i64(&w, c->ask_lease_ms);
	}
	if (c->ask_linger_ms > 0) {
		mpw_key(&w, "linger_ms");
		mpw_i64(&w, c->ask_linger_ms);
	}
	if (c->auth != NULL) {
		mpw_key(&w, "auth");
		mpw_str(&w, c->auth);
	}
	if (resume && c->secret[0] != '\0') {
		mpw_key(&w, "resume");
		mpw_str(&w, c->secret);
	}
	rc = w.err != 0 ? DLM_E_NOMEM : 0;
	if (rc == 0 && write_all(fd, sb.data, sb.size) != 0)
		rc = DLM_E_CONNECT;
	msgpack_sbuffer_destroy(&sb);
	if (rc != 0)
		return rc;

	c->rlen = 0;
	flen = read_frame(c, fd, c->connect_timeout_ms, &obj);
	if (flen <= 0)
		return flen == 0 ? DLM_E_CONNECT : DLM_E_PROTOCOL;
	rc = DLM_E_PROTOCOL;
	if (obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size != 4)
		goto out;
	v = obj.via.array.ptr;
	if ((rc = error_code(&v[2])) != 0)
		goto out;
	res = &v[3];
	rc = DLM_E_PROTOCOL;
	if ((o = mpr_get(res, "session")) == NULL || !mpr_uint(o, &si->session))
		goto out;
	if ((o = mpr_get(res, "secret")) == NULL || !mpr_str(o, &p, &plen) ||
	    plen >= sizeof si->secret)
		goto out;
	memcpy(si->secret, p, plen);
	si->secret[plen] = '\0';
	if ((o = mpr_get(res, "lease_ms")) == NULL || !mpr_uint(o, &u) ||
	    u == 0 || u > INT32_MAX)
		goto out;
	si->lease_ms = (int)u;
	if ((o = mpr_get(res, "linger_ms")) != NULL && mpr_uint(o, &u) &&
	    u <= INT32_MAX)
		si->linger_ms = (int)u;
	if ((o = mpr_get(res, "resumed")) != NULL)
		(void)mpr_bool(o, &si->resumed);
	rc = 0;
out:
	consume(c, (size_t)flen);
	return rc;
}

static void
remember_uncertain(struct dlm_client *c, const char *lock)
{
	struct uncertain *u = calloc(1, sizeof *u);

	if (u == NULL || (u->lock = strdup(lock)) == NULL) {
		free(u);
		return;
	}
	u->next = c->uncertain;
	c->uncertain = u;
}

static void
forget_uncertain(struct dlm_client *c)
{
	struct uncertain *u;

	while ((u = c->uncertain) != NULL) {
		c->uncertain = u->next;
		free(u->lock);
		free(u);
	}
}

/*
 * After a resume: release each mutex whose acquire the drop cut short,
 * unless the client holds it, so that a grant nobody heard of cannot keep
 * the lock from everyone for the rest of the session. Called with c->mu.
 */
static void
release_uncertain(struct dlm_client *c)
{
	struct uncertain *u, *list = c->uncertain;

	c->uncertain = NULL;
	while ((u = list) != NULL) {
		struct lockent *e;
		struct dlm_req *req;
		msgpack_sbuffer params;
		struct mpw w;

		list = u->next;
		HASH_FIND_STR(c->locks, u->lock, e);
		if ((e == NULL || e->count == 0) &&
		    (req = calloc(1, sizeof *req)) != NULL) {
			req->kind = REQ_PING;	/* freed on reply, result unused */
			msgpack_sbuffer_init(&params);
			mpw_init_sbuffer(&w, &params);
			mpw_map(&w, 1);
			mpw_key(&w, "lock");
			mpw_str(&w, u->lock);
			if (w.err != 0 ||
			    dlm__call(c, req, "release", &params) != 0)
				dlm__req_free(req);
			msgpack_sbuffer_destroy(&params);
		}
		free(u->lock);
		free(u);
	}
}

/*
 * After a lapse the holds were reported lost; if the server kept the
 * session after all, give back whatever it still holds for it, so that
 * nothing stays held that the program has been told it lost. c->mu held.
 */
static void
reset_after_lapse(struct dlm_client *c)
{
	struct dlm_req *req;

	forget_uncertain(c);
	if ((req = calloc(1, sizeof *req)) == NULL)
		return;
	req->kind = REQ_PING;	/* freed on reply, result unused */
	if (dlm__call(c, req, "reset", NULL) != 0)
		dlm__req_free(req);
}

/*
 * How long the I/O thread leaves the socket alone after a caller has read
 * from it, so that back-to-back calls do not wake it. Within this a lost
 * notification that arrives while nobody calls waits for the I/O thread.
 */
#define IO_PARK_MS	20

static int	read_and_handle(struct dlm_client *, bool io_thread);

static void
wake_io(struct dlm_client *c)
{
	if (write(c->wake[1], "x", 1) < 0) {
		/* Full: the I/O thread has wake-ups pending anyway. */
	}
}

/*
 * Keep callers off the socket and wait for the one reading, if any, to let
 * go: the I/O thread is about to close or replace it. c->mu held (and
 * c->wmu, by the callers of this).
 */
static void
fd_claim(struct dlm_client *c)
{
	c->fd_claimed = true;
	if (c->reading && c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);	/* its poll returns at once */
	while (c->reading)
		pthread_cond_wait(&c->state_cv, &c->mu);
}

/*
 * Wake a caller still waiting for its reply, other than self (which may be
 * NULL), so that it reads; false if there is none.
 */
static bool
wake_sync_waiter(struct dlm_client *c, const struct dlm_req *self)
{
	struct dlm_req *req, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->pending, req, tmp) {
		if (req != self && req->kind == REQ_SYNC) {
			pthread_cond_signal(req->cv);
			return true;
		}
	}
	return false;
}

/*
 * A caller stops reading (c->mu held): another caller still waiting takes
 * over, or the I/O thread when something only it handles is due.
 */
static void
hand_over_reading(struct dlm_client *c, const struct dlm_req *self)
{
	if (c->fd_claimed)
		pthread_cond_broadcast(&c->state_cv);
	if (!c->read_failed && !c->fd_claimed && wake_sync_waiter(c, self))
		return;
	if (c->read_failed || c->async_pending > 0 || c->lost_head != NULL)
		wake_io(c);
}

/*
 * A caller waiting for self's reply reads the socket itself, for up to a
 * slice, handling every frame that comes (c->mu held; dropped meanwhile).
 */
static void
caller_read(struct dlm_client *c, const struct dlm_req *self)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	int rc = 0;

	c->reading = true;
	pthread_mutex_unlock(&c->mu);
	if (poll(&pfd, 1, CALLER_SLICE_MS) > 0)
		rc = read_and_handle(c, false);
	pthread_mutex_lock(&c->mu);
	c->reading = false;
	c->caller_read_ms = mono_ms();
	if (rc != 0)
		c->read_failed = true;	/* the I/O thread takes it from here */
	if (self->done || rc != 0 || c->fd_claimed)
		hand_over_reading(c, self);
}

/*
 * A request has its answer (or its error): wake its caller, queue its
 * completion, or free it. Called with c->mu held.
 */
static void
req_finish(struct dlm_client *c, struct dlm_req *req)
{
	req->done = true;
	switch (req->kind) {
	case REQ_SYNC:
		pthread_cond_signal(req->cv);
		break;
	case REQ_ASYNC_ACQUIRE:
	case REQ_ASYNC_DONE:
		c->async_pending--;
		dlm__queue_completion(c, req);
		break;
	case REQ_PING:
		dlm__req_free(req);
		break;
	}
}

/* Adopt what the hello said (c->mu held, or no other thread yet). */
static void
session_apply(struct dlm_client *c, const struct session_info *si)
{
	c->session = si->session;
	memcpy(c->secret, si->secret, sizeof c->secret);
	c->lease_ms = si->lease_ms;
	c->linger_ms = si->linger_ms;
}

/* Fail every request in flight with err (the connection is gone). */
static void
fail_pending(struct dlm_client *c, int err)
{
	struct dlm_req *req, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->pending, req, tmp) {
		HASH_DEL(c->pending, req);
		if (req->is_acquire && !(req->flags & DLM_RLOCK) &&
		    err == DLM_E_DISCONNECTED)
			remember_uncertain(c, req->lock);
		req->r.err = err;
		req_finish(c, req);
	}
}

void
dlm__queue_completion(struct dlm_client *c, struct dlm_req *req)
{
	uint64_t one = 1;

	req->next = NULL;
	if (c->done_tail != NULL) {
		/*
		 * The queue was not empty, so the eventfd is still readable:
		 * dlm_async_dispatch() drains it before it takes the queue.
		 */
		c->done_tail->next = req;
		c->done_tail = req;
		return;
	}
	c->done_head = c->done_tail = req;
	if (write(c->evfd, &one, sizeof one) < 0) {
		/* The counter cannot overflow in practice; ignore. */
	}
}

/*
 * Close the socket (c->wmu and c->mu held). fork_fd goes first: a fork()
 * in between leaves the child a socket it does not close (shut by its
 * CLOEXEC at exec, or dropped with the lease), never a number the parent
 * has already reused for something else.
 */
static void
drop_fd(struct dlm_client *c)
{
	atomic_store(&c->fork_fd, -1);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The connection is being dropped (c->wmu and c->mu held): so is its output. */
static void
drop_output(struct dlm_client *c)
{
	c->out.size = 0;
	c->wbuf.size = 0;
	c->wbuf_off = 0;
	c->flush_asked = false;
	c->write_rest = false;
}

/*
 * Write the queued requests (c->mu held; dropped meanwhile). With block, all
 * of it, as a synchronous caller must before it waits for its reply. Else
 * (the I/O thread) what the socket takes now, and nothing at all while
 * another thread writes (flush_asked stays set: try again soon): the I/O
 * thread must go on reading replies, or a server that stops reading while
 * its replies back up would deadlock it and that writer.
 */
static void
flush_out(struct dlm_client *c, bool block)
{
	size_t len;
	int fd;

	pthread_mutex_unlock(&c->mu);
	if (block)
		pthread_mutex_lock(&c->wmu);
	else if (pthread_mutex_trylock(&c->wmu) != 0) {
		pthread_mutex_lock(&c->mu);
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->flush_asked = false;
	fd = c->fd;
	if (c->wbuf_off == c->wbuf.size) {
		/* Nothing left over: take the queue whole. */
		msgpack_sbuffer t = c->wbuf;

		c->wbuf = c->out;
		c->out = t;
		c->out.size = 0;
		c->wbuf_off = 0;
	} else if (c->out.size > 0) {
		if (msgpack_sbuffer_write(&c->wbuf, c->out.data,
		    c->out.size) != 0 && fd >= 0)
			shutdown(fd, SHUT_RDWR);	/* its requests fail */
		c->out.size = 0;
	}
	pthread_mutex_unlock(&c->mu);

	/* c->fd and c->gen cannot change while c->wmu is held. */
	while (fd >= 0 && c->wbuf_off < c->wbuf.size) {
		ssize_t n = send(fd, c->wbuf.data + c->wbuf_off,
		    c->wbuf.size - c->wbuf_off,
		    MSG_NOSIGNAL | (block ? 0 : MSG_DONTWAIT));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && !block && (errno == EAGAIN ||
		    errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* The I/O thread sees the end and fails the requests. */
			shutdown(fd, SHUT_RDWR);
			c->wbuf_off = c->wbuf.size;
			break;
		}
		c->wbuf_off += (size_t)n;
	}
	len = c->wbuf.size - c->wbuf_off;
	if (fd < 0 || len == 0) {
		c->wbuf.size = c->wbuf_off = 0;
		if (c->wbuf.alloc > 4 * READ_CHUNK) {
			/* A burst is over; do not keep its buffer. */
			msgpack_sbuffer_destroy(&c->wbuf);
			msgpack_sbuffer_init(&c->wbuf);
		}
	}
	pthread_mutex_lock(&c->mu);
	c->write_rest = len > 0;
	pthread_mutex_unlock(&c->wmu);
	c->last_send_ms = mono_ms();
}

int
dlm__call(struct dlm_client *c, struct dlm_req *req, const char *method,
    const msgpack_sbuffer *params)
{
	struct mpw w;
	uint64_t gen;
	size_t mark;
	/*
	 * Once queued, the request may be written, answered and (if nobody
	 * waits for it) freed by another thread as soon as c->mu is dropped:
	 * only a synchronous request is ours to look at after that.
	 */
	const bool sync = req->kind == REQ_SYNC;
	const bool io_thread = pthread_equal(pthread_self(), c->thread);

	/*
	 * A blocking call from the lost callback would wait for a reply only
	 * this very thread can read.
	 */
	if (sync && io_thread)
		return DLM_E_INVALID;
	while (c->state == CLIENT_RECONNECTING && !c->closing)
		pthread_cond_wait(&c->state_cv, &c->mu);
	if (c->state != CLIENT_CONNECTED || c->closing)
		return DLM_E_CLOSED;
	req->msgid = c->next_id++;
	req->sent_ms = mono_ms();
	req->done = false;
	dlm__hash_oom = 0;
	HASH_ADD(hh, c->pending, msgid, sizeof req->msgid, req);
	if (dlm__hash_oom)
		return DLM_E_NOMEM;
	if (req->kind == REQ_ASYNC_ACQUIRE || req->kind == REQ_ASYNC_DONE)
		c->async_pending++;

	mark = c->out.size;
	mpw_init_sbuffer(&w, &c->out);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_REQUEST);
	mpw_u64(&w, req->msgid);
	mpw_str(&w, method);
	mpw_array(&w, 1);
	if (params != NULL)
		w.err |= msgpack_sbuffer_write(&c->out, params->data,
		    params->size);
	else
		mpw_map(&w, 0);
	if (w.err != 0) {
		/* Out of memory: this request fails, the connection is fine. */
		c->out.size = mark;
		if (req->kind == REQ_ASYNC_ACQUIRE || req->kind == REQ_ASYNC_DONE)
			c->async_pending--;
		HASH_DEL(c->pending, req);
		return DLM_E_NOMEM;
	}
	gen = c->gen;
	if (!sync) {
		/* The I/O thread writes it, with whatever else comes by then. */
		if (!c->flush_asked) {
			c->flush_asked = true;
			if (!io_thread)
				wake_io(c);
		}
		return 0;
	}
	/*
	 * Written without c->mu, so that replies can be handled meanwhile.
	 * Should the connection drop first, this request is failed with the
	 * others, and dropped from the queue.
	 */
	flush_out(c, true);
	while (!req->done) {
		if (!c->reading && !c->fd_claimed && !c->read_failed &&
		    c->state == CLIENT_CONNECTED && c->gen == gen)
			caller_read(c, req);
		else
			pthread_cond_wait(req->cv, &c->mu);
	}
	return req->r.err;
}

/* Copy what a reply says into req->r. */
static void
reply_fill(struct dlm_req *req, const msgpack_object *err,
    const msgpack_object *res)
{
	const msgpack_object *o;

	memset(&req->r, 0, sizeof req->r);
	if ((req->r.err = error_code(err)) != 0) {
		if (req->want_raw && (o = mpr_get(err, "message")) != NULL &&
		    o->type == MSGPACK_OBJECT_STR)
			req->r.message = strndup(o->via.str.ptr,
			    o->via.str.size);
		return;
	}
	if (req->want_raw) {
		msgpack_sbuffer sb;
		msgpack_packer pk;

		/* The caller's copy must outlive this frame's zone. */
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		if (msgpack_pack_object(&pk, *res) != 0) {
			msgpack_sbuffer_destroy(&sb);
			req->r.err = DLM_E_NOMEM;
			return;
		}
		req->r.raw_len = sb.size;
		req->r.raw = msgpack_sbuffer_release(&sb);
		return;
	}
	if ((o = mpr_get(res, "token")) != NULL)
		(void)mpr_uint(o, &req->r.token);
	if ((o = mpr_get(res, "count")) != NULL)
		(void)mpr_uint(o, &req->r.count);
	if ((o = mpr_get(res, "valid_ms")) != NULL)
		(void)mpr_uint(o, &req->r.valid_ms);
	if ((o = mpr_get(res, "released")) != NULL)
		(void)mpr_uint(o, &req->r.released);
	if ((o = mpr_get(res, "held")) != NULL)
		(void)mpr_bool(o, &req->r.held);
}

struct lost_note {
	char		*lock;
	uint64_t	 token;
	int		 reason;
};

/*
 * Handle one frame from the server (I/O thread, c->mu held). A lost
 * notification is returned in *note for the caller to report without the
 * lock held.
 */
static int
handle_frame(struct dlm_client *c, const msgpack_object *obj,
    struct lost_note *note)
{
	const msgpack_object *v;
	uint64_t type, msgid;

	if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 3)
		return -1;
	v = obj->via.array.ptr;
	if (!mpr_uint(&v[0], &type))
		return -1;
	if (type == DLM_MSG_RESPONSE && obj->via.array.size == 4) {
		struct dlm_req *req;
		uint32_t id;

		if (!mpr_uint(&v[1], &msgid))
			return 0;	/* an error about an unreadable frame */
		id = (uint32_t)msgid;
		HASH_FIND(hh, c->pending, &id, sizeof id, req);
		if (req == NULL)
			return 0;
		HASH_DEL(c->pending, req);
		reply_fill(req, &v[2], &v[3]);
		/* Any answer means the server read the request: renewed. */
		if (req->sent_ms > c->lease_base_ms)
			c->lease_base_ms = req->sent_ms;
		dlm__reply_applied(c, req);
		req_finish(c, req);
		return 0;
	}
	if (type == DLM_MSG_NOTIFY && mpr_str_eq(&v[1], "lost") &&
	    v[2].type == MSGPACK_OBJECT_ARRAY && v[2].via.array.size == 1) {
		const msgpack_object *m = &v[2].via.array.ptr[0], *o;
		const char *p;
		size_t len;
		struct lockent *e;
		char *name;

		if ((o = mpr_get(m, "lock")) == NULL || !mpr_bytes(o, &p, &len) ||
		    (o = mpr_get(m, "token")) == NULL ||
		    !mpr_uint(o, &note->token))
			return -1;
		note->reason = DLM_LOST_EXPIRED;
		if ((o = mpr_get(m, "reason")) != NULL &&
		    o->type == MSGPACK_OBJECT_STR)
			note->reason = dlm_proto_lost_code(o->via.str.ptr,
			    o->via.str.size);
		if ((name = strndup(p, len)) == NULL)
			return 0;
		if ((e = dlm__lockent(c, name, false)) != NULL) {
			if (e->token == note->token) {
				e->count = 0;
				e->token = 0;
			}
			dlm__lockent_put(c, e);
		}
		note->lock = name;
		return 0;
	}
	return 0;	/* something newer than this library: ignore */
}

static void
report_lost(struct dlm_client *c, char **names, uint64_t *tokens, size_t n,
    int reason)
{
	for (size_t i = 0; i < n; i++) {
		if (c->on_lost != NULL)
			c->on_lost(c, names[i], tokens[i], reason,
			    c->on_lost_arg);
		free(names[i]);
	}
	free(names);
	free(tokens);
}

/* Wait up to ms for the wake pipe; true when woken (closing). */
static bool
nap(struct dlm_client *c, int ms)
{
	struct pollfd pfd = { c->wake[0], POLLIN, 0 };

	if (poll(&pfd, 1, ms) == 1) {
		char buf[64];

		while (read(c->wake[0], buf, sizeof buf) > 0)
			;
		return true;
	}
	return false;
}

/*
 * The connection is gone. Fail what was in flight; with a linger, try to
 * resume the session until it runs out; otherwise, or then, the client is
 * closed and its holds are lost.
 */
static void
disconnected(struct dlm_client *c)
{
	uint64_t deadline;
	int backoff = 20, linger_ms;
	char **names = NULL;
	uint64_t *tokens = NULL;
	size_t n;

	pthread_mutex_lock(&c->wmu);
	pthread_mutex_lock(&c->mu);
	fd_claim(c);
	drop_fd(c);
	c->gen++;
	drop_output(c);
	c->rlen = 0;
	c->fd_claimed = false;
	c->read_failed = false;
	fail_pending(c, c->closing ? DLM_E_CLOSED : DLM_E_DISCONNECTED);
	if (c->closing) {
		c->state = CLIENT_CLOSED;
		pthread_cond_broadcast(&c->state_cv);
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_unlock(&c->wmu);
		return;
	}
	linger_ms = c->linger_ms;
	deadline = mono_ms() + (uint64_t)linger_ms;
	c->state = linger_ms > 0 ? CLIENT_RECONNECTING : CLIENT_CLOSED;
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&c->wmu);

	while (linger_ms > 0 && mono_ms() < deadline) {
		struct session_info si;
		bool resumed;
		int fd;

		if (nap(c, backoff)) {
			bool closing;

			pthread_mutex_lock(&c->mu);
			closing = c->closing;
			pthread_mutex_unlock(&c->mu);
			if (closing)
				break;		/* dlm_close() */
		}
		backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
		if (dial(&c->addr, c->connect_timeout_ms, &fd) != 0)
			continue;
		if (session_open(c, fd, true, &si) != 0) {
			close(fd);
			continue;
		}
		resumed = si.resumed;
		pthread_mutex_lock(&c->wmu);
		pthread_mutex_lock(&c->mu);
		session_apply(c, &si);
		c->fd = fd;
		atomic_store(&c->fork_fd, fd);
		c->gen++;
		drop_output(c);
		c->state = CLIENT_CONNECTED;
		c->last_send_ms = c->last_recv_ms = c->lease_base_ms =
		    mono_ms();
		n = resumed ? 0 : dlm__drop_all_holds(c, &names, &tokens);
		if (!resumed)
			forget_uncertain(c);
		pthread_cond_broadcast(&c->state_cv);
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_unlock(&c->wmu);
		if (resumed) {
			pthread_mutex_lock(&c->mu);
			if (c->lapsed)
				reset_after_lapse(c);
			else
				release_uncertain(c);
			pthread_mutex_unlock(&c->mu);
		}
		c->lapsed = false;	/* only this thread uses it */
		/* Not resumed: the server lost the session, and the holds. */
		report_lost(c, names, tokens, n, DLM_LOST_SESSION);
		return;
	}

	pthread_mutex_lock(&c->mu);
	c->state = CLIENT_CLOSED;
	forget_uncertain(c);
	n = dlm__drop_all_holds(c, &names, &tokens);
	pthread_cond_broadcast(&c->state_cv);
	pthread_mutex_unlock(&c->mu);
	report_lost(c, names, tokens, n, DLM_LOST_SESSION);
}

/*
 * The lease ran out without a word from the server: the holds can no longer
 * be trusted. Report them lost now, not when the connection is given up,
 * so that the program stops using what they protect before another
 * holder can be granted them.
 */
static void
lapsed(struct dlm_client *c)
{
	char **names = NULL;
	uint64_t *tokens = NULL;
	size_t n;

	pthread_mutex_lock(&c->mu);
	c->lapsed = true;
	n = dlm__drop_all_holds(c, &names, &tokens);
	pthread_mutex_unlock(&c->mu);
	report_lost(c, names, tokens, n, DLM_LOST_EXPIRED);
}

/*
 * Read what the server sent and handle every whole frame; the caller holds
 * the reader role (c->reading). Lost notifications read by a caller's
 * thread are queued for the I/O thread: on_lost runs only there, where a
 * blocking call from it is refused instead of waiting for itself.
 */
static int
read_and_handle(struct dlm_client *c, bool io_thread)
{
	bool queued = false;
	int rc = 0;
	ssize_t n;

	if (!rbuf_reserve(c))
		return -1;
	/*
	 * Never block here: a caller and the I/O thread may both have been
	 * told the socket was readable, and the other one has read it.
	 * (A caller blocking in recv() instead of poll() and then recv()
	 * makes one system call less, yet measured slower: bench/lockbench
	 * workload 2 fell from 34,000 to 25,000 pairs/s.)
	 */
	n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0)
		return -1;
	c->rlen += (size_t)n;
	for (;;) {
		struct lost_note note = { NULL, 0, 0 };
		struct lost_item *li = NULL;
		msgpack_object obj;
		size_t flen;

		if ((rc = next_frame(c, &obj, &flen)) <= 0)
			break;
		pthread_mutex_lock(&c->mu);
		c->last_recv_ms = mono_ms();
		rc = handle_frame(c, &obj, &note);
		if (note.lock != NULL && !io_thread &&
		    (li = calloc(1, sizeof *li)) != NULL) {
			li->lock = note.lock;
			li->token = note.token;
			li->reason = note.reason;
			if (c->lost_tail != NULL)
				c->lost_tail->next = li;
			else
				c->lost_head = li;
			c->lost_tail = li;
			queued = true;
		}
		pthread_mutex_unlock(&c->mu);
		consume(c, flen);
		if (note.lock != NULL && li == NULL) {
			if (io_thread && c->on_lost != NULL)
				c->on_lost(c, note.lock, note.token, note.reason,
				    c->on_lost_arg);
			free(note.lock);
		}
		if (rc != 0) {
			rc = -1;
			break;
		}
	}
	if (queued)
		wake_io(c);
	return rc;
}

/* on_lost for the notifications callers read (I/O thread). */
static void
deliver_queued_lost(struct dlm_client *c)
{
	struct lost_item *li, *next;

	pthread_mutex_lock(&c->mu);
	li = c->lost_head;
	c->lost_head = c->lost_tail = NULL;
	pthread_mutex_unlock(&c->mu);
	for (; li != NULL; li = next) {
		next = li->next;
		if (c->on_lost != NULL)
			c->on_lost(c, li->lock, li->token, li->reason,
			    c->on_lost_arg);
		free(li->lock);
		free(li);
	}
}

/* Ping when idle for a third of the lease; the reply renews the lease. */
static void
maybe_ping(struct dlm_client *c, uint64_t now)
{
	struct dlm_req *req;

	pthread_mutex_lock(&c->mu);
	if (c->state == CLIENT_CONNECTED && !c->closing &&
	    now >= c->last_send_ms + (uint64_t)c->lease_ms / 3 &&
	    (req = calloc(1, sizeof *req)) != NULL) {
		req->kind = REQ_PING;
		if (dlm__call(c, req, "ping", NULL) != 0)
			dlm__req_free(req);
	}
	pthread_mutex_unlock(&c->mu);
}

static void *
io_main(void *arg)
{
	struct dlm_client *c = arg;

	for (;;) {
		struct pollfd pfd[2];
		uint64_t now, ping_at, lapse_at, wake_at;
		int timeout, fd;
		bool parked, failed, rest, busy_writer;
		short events;

		deliver_queued_lost(c);
		pthread_mutex_lock(&c->mu);
		if (c->closing || c->state == CLIENT_CLOSED) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		if (c->flush_asked)
			flush_out(c, false);
		rest = c->write_rest;
		busy_writer = c->flush_asked;	/* another thread writes */
		fd = c->fd;
		now = mono_ms();
		failed = c->read_failed;
		/*
		 * Leave the socket to callers while one reads, and for a
		 * moment after, unless async replies are awaited.
		 */
		parked = c->reading || (c->async_pending == 0 &&
		    now < c->caller_read_ms + IO_PARK_MS);
		ping_at = c->last_send_ms + (uint64_t)c->lease_ms / 3;
		/*
		 * No request answered for a whole lease, though pings went
		 * out every third of it: the server has expired the session,
		 * or will before it can tell us.
		 */
		lapse_at = c->lease_base_ms + (uint64_t)c->lease_ms;
		pthread_mutex_unlock(&c->mu);

		if (failed) {
			disconnected(c);
			continue;
		}
		wake_at = ping_at < lapse_at ? ping_at : lapse_at;
		if (parked && wake_at > now + IO_PARK_MS)
			wake_at = now + IO_PARK_MS;
		timeout = wake_at > now ? (int)(wake_at - now) : 0;
		if (busy_writer && timeout > 1)
			timeout = 1;
		pfd[0].fd = c->wake[0];
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		events = (short)((parked ? 0 : POLLIN) | (rest ? POLLOUT : 0));
		pfd[1].fd = fd;
		pfd[1].events = events;
		pfd[1].revents = 0;
		if (poll(pfd, events != 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		if (rest && pfd[1].revents != 0) {
			/* Writable, or the end, which the write finds too. */
			pthread_mutex_lock(&c->mu);
			flush_out(c, false);
			pthread_mutex_unlock(&c->mu);
		}
		if (pfd[0].revents != 0 && nap(c, 0)) {
			pthread_mutex_lock(&c->mu);
			if (c->closing) {
				pthread_mutex_unlock(&c->mu);
				break;
			}
			pthread_mutex_unlock(&c->mu);
		}
		if (!parked && (pfd[1].revents & ~POLLOUT) != 0) {
			int rc;

			pthread_mutex_lock(&c->mu);
			if (c->reading) {
				/* A caller took the socket meanwhile. */
				pthread_mutex_unlock(&c->mu);
				continue;
			}
			c->reading = true;
			pthread_mutex_unlock(&c->mu);
			rc = read_and_handle(c, true);
			pthread_mutex_lock(&c->mu);
			c->reading = false;
			/* A caller that found us reading may read for itself. */
			(void)wake_sync_waiter(c, NULL);
			pthread_mutex_unlock(&c->mu);
			if (rc != 0) {
				disconnected(c);
				continue;
			}
		}
		now = mono_ms();
		if (now >= lapse_at) {
			lapsed(c);
			disconnected(c);
			continue;
		}
		maybe_ping(c, now);
	}
	return NULL;
}

void
dlm_options_init(struct dlm_options *opts)
{
	if (opts != NULL)
		memset(opts, 0, sizeof *opts);
}

static void
client_free(struct dlm_client *c)
{
	struct lockent *e, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp) {
		HASH_DEL(c->locks, e);
		free(e->name);
		free(e);
	}
	forget_uncertain(c);
	while (c->lost_head != NULL) {
		struct lost_item *li = c->lost_head;

		c->lost_head = li->next;
		free(li->lock);
		free(li);
	}
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	if (c->evfd >= 0)
		close(c->evfd);
	if (c->fd >= 0)
		close(c->fd);
	msgpack_zone_destroy(&c->zone);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->wmu);
	pthread_cond_destroy(&c->state_cv);
	msgpack_sbuffer_destroy(&c->out);
	msgpack_sbuffer_destroy(&c->wbuf);
	free(c->rbuf);
	free(c->name);
	free(c->label);
	free(c->auth);
	free(c);
}

/*
 * The address to dial: server, else $DLM_SERVER, else the default socket
 * (into path); NULL when there is none.
 */
static const char *
server_address(const char *server, char *path, size_t len)
{
	if (server == NULL)
		server = getenv("DLM_SERVER");
	if (server != NULL && server[0] != '\0')
		return server;
	return dlm_default_client_socket(path, len) == 0 ? path : NULL;
}

struct dlm_client *
dlm_connect(const char *server, const struct dlm_options *opts, int *err)
{
	struct dlm_options defaults;
	struct session_info si;
	struct dlm_client *c;
	struct addr addr;
	char path[4096], host[200];
	int rc;

	if (opts == NULL) {
		dlm_options_init(&defaults);
		opts = &defaults;
	}
	if (opts->lease_ms < 0 || opts->linger_ms < 0 ||
	    opts->connect_timeout_ms < 0 ||
	    (opts->client != NULL && opts->client[0] == '\0')) {
		rc = DLM_E_INVALID;
		goto fail0;
	}
	/* A bad address is the caller's mistake: say so before dialling. */
	server = server_address(server, path, sizeof path);
	if (server == NULL || addr_parse(server, 0, &addr, NULL, 0) != 0) {
		rc = DLM_E_ADDRESS;
		goto fail0;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		rc = DLM_E_NOMEM;
		goto fail0;
	}
	c->addr = addr;
	c->fd = c->wake[0] = c->wake[1] = c->evfd = -1;
	atomic_init(&c->fork_fd, -1);
	msgpack_sbuffer_init(&c->out);
	msgpack_sbuffer_init(&c->wbuf);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->wmu, NULL);
	pthread_cond_init(&c->state_cv, NULL);
	msgpack_zone_init(&c->zone, 8192);
	c->pid = getpid();
	c->fork_depth = fork_depth;
	c->next_id = 1;
	c->ask_lease_ms = opts->lease_ms;
	c->ask_linger_ms = opts->linger_ms;
	c->connect_timeout_ms = opts->connect_timeout_ms > 0 ?
	    opts->connect_timeout_ms : 10000;
	c->on_lost = opts->on_lost;
	c->on_lost_arg = opts->on_lost_arg;
	if (opts->client != NULL)
		c->name = strdup(opts->client);
	else {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		if (asprintf(&c->name, "%s:%ld:%lu", host, (long)c->pid,
		    __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED)) < 0)
			c->name = NULL;
	}
	c->label = xstrdup_or_null(opts->label);
	c->auth = xstrdup_or_null(opts->auth);
	if (c->name == NULL ||
	    (opts->label != NULL && c->label == NULL) ||
	    (opts->auth != NULL && c->auth == NULL)) {
		rc = DLM_E_NOMEM;
		goto fail;
	}
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		rc = DLM_E_NOMEM;
		goto fail;
	}
	if ((rc = dial(&c->addr, c->connect_timeout_ms, &c->fd)) != 0)
		goto fail;
	if ((rc = session_open(c, c->fd, false, &si)) != 0)
		goto fail;
	atomic_store(&c->fork_fd, c->fd);
	session_apply(c, &si);
	c->state = CLIENT_CONNECTED;
	c->last_send_ms = c->last_recv_ms = c->lease_base_ms = mono_ms();
	if ((rc = registry_add(c)) != 0)
		goto fail;
	if (pthread_create(&c->thread, NULL, io_main, c) != 0) {
		registry_remove(c);
		rc = DLM_E_NOMEM;
		goto fail;
	}
	if (err != NULL)
		*err = 0;
	return c;
fail:
	client_free(c);
fail0:
	if (err != NULL)
		*err = rc;
	return NULL;
}

/* End the session with bye, so that a linger does not keep its locks. */
static void
send_bye(struct dlm_client *c)
{
	static const char bye[] = "\x94\x00\x00\xa3" "bye\x91\x80";

	/* After what is queued: a release sent just before closing counts. */
	pthread_mutex_lock(&c->mu);
	if (msgpack_sbuffer_write(&c->out, bye, sizeof bye - 1) == 0)
		flush_out(c, true);
	pthread_mutex_unlock(&c->mu);
}

/* Run the callbacks of a list of finished async requests, and free them. */
static int
run_completions(struct dlm_client *c, struct dlm_req *req)
{
	struct dlm_req *next;
	int n = 0;

	for (; req != NULL; req = next, n++) {
		next = req->next;
		if (req->kind == REQ_ASYNC_ACQUIRE && req->acb != NULL)
			req->acb(c, req->r.err, req->r.token, req->arg);
		else if (req->kind == REQ_ASYNC_DONE && req->dcb != NULL)
			req->dcb(c, req->r.err, req->arg);
		dlm__req_free(req);
	}
	return n;
}

void
dlm_close(struct dlm_client *c)
{
	struct dlm_req *req;
	struct lockent *e, *tmp;

	if (c == NULL)
		return;
	if (dlm__forked(c)) {
		/*
		 * A child's copy: the socket was closed at fork(), and the
		 * parent's thread and locks are not ours to touch.
		 */
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	pthread_cond_broadcast(&c->state_cv);
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp)
		dlm__lockent_wake_all(e);
	pthread_mutex_unlock(&c->mu);
	send_bye(c);
	if (write(c->wake[1], "x", 1) < 0) {
		/* The pipe is non-blocking and nearly empty; ignore. */
	}
	pthread_join(c->thread, NULL);

	pthread_mutex_lock(&c->wmu);
	pthread_mutex_lock(&c->mu);
	fd_claim(c);
	drop_fd(c);
	c->gen++;
	drop_output(c);
	fail_pending(c, DLM_E_CLOSED);
	c->state = CLIENT_CLOSED;
	pthread_mutex_unlock(&c->wmu);
	/* Calls still inside the library see CLOSED and leave. */
	while (c->users > 0)
		pthread_cond_wait(&c->state_cv, &c->mu);
	req = c->done_head;
	c->done_head = c->done_tail = NULL;
	pthread_mutex_unlock(&c->mu);
	registry_remove(c);

	/* Every async callback runs exactly once: the rest run here. */
	run_completions(c, req);
	client_free(c);
}

const char *
dlm_client_name(struct dlm_client *c)
{
	return c != NULL ? c->name : NULL;
}

int
dlm_async_fd(struct dlm_client *c)
{
	return c != NULL ? c->evfd : -1;
}

int
dlm_async_dispatch(struct dlm_client *c)
{
	struct dlm_req *req;
	uint64_t count;

	if (c == NULL || dlm__forked(c))
		return 0;
	if (read(c->evfd, &count, sizeof count) < 0) {
		/* Nothing queued (EAGAIN); the list below says the same. */
	}
	pthread_mutex_lock(&c->mu);
	req = c->done_head;
	c->done_head = c->done_tail = NULL;
	pthread_mutex_unlock(&c->mu);
	return run_completions(c, req);
}
