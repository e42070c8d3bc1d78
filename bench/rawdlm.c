/* A bare dlmd client for the many-session workloads: see rawdlm.h. */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "addr.h"
#include "frame.h"
#include "lockbench.h"
#include "mpack.h"
#include "rawdlm.h"

static int
dial_tcp(const struct addr *a)
{
	struct addrinfo hints, *res;
	int fd = -1, one = 1;

	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(a->host, a->port, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

int
rawdlm_dial(struct rawconn *rc, const char *spec)
{
	struct addr a;
	char err[200];

	memset(rc, 0, sizeof *rc);
	rc->next_id = 1;
	rc->fd = -1;
	if (addr_parse(spec, 0, &a, err, sizeof err) != 0) {
		fprintf(stderr, "dlmd address %s\n", err);
		return -1;
	}
	if (a.type == ADDR_TLS) {
		/*
		 * Only workload 5 dials here, and bench/compare runs it over
		 * the Unix socket alone: a TLS client of its own is not
		 * worth keeping for a figure nobody reads.
		 */
		fprintf(stderr, "rawdlm: %s: workload 5 has no TLS client\n",
		    spec);
		return -1;
	}
	if (a.type == ADDR_TCP) {
		rc->fd = dial_tcp(&a);
	} else {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, a.path, strlen(a.path));
		rc->fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (rc->fd >= 0 &&
		    connect(rc->fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			close(rc->fd);
			rc->fd = -1;
		}
	}
	return rc->fd;
}

void
rawdlm_close(struct rawconn *rc)
{
	if (rc->fd >= 0)
		close(rc->fd);
	free(rc->buf);
	memset(rc, 0, sizeof *rc);
	rc->fd = -1;
}

int
rawdlm_send(struct rawconn *rc, const char *method, ...)
{
	msgpack_sbuffer sb;
	struct mpw w;
	va_list ap;
	const char *key;
	uint32_t n = 0;
	const char *p;
	size_t left;
	int ok;

	va_start(ap, method);
	while ((key = va_arg(ap, const char *)) != NULL) {
		if (key[0] == 's')
			(void)va_arg(ap, const char *);
		else
			(void)va_arg(ap, long long);
		n++;
	}
	va_end(ap);
	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, rc->next_id++);
	mpw_str(&w, method);
	mpw_array(&w, 1);
	mpw_map(&w, n);
	va_start(ap, method);
	while ((key = va_arg(ap, const char *)) != NULL) {
		mpw_key(&w, key + 1);
		if (key[0] == 's')
			mpw_str(&w, va_arg(ap, const char *));
		else
			mpw_i64(&w, va_arg(ap, long long));
	}
	va_end(ap);
	ok = w.err == 0;
	for (p = sb.data, left = sb.size; ok && left > 0;) {
		ssize_t k = send(rc->fd, p, left, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		ok = k > 0;
		if (ok) {
			p += k;
			left -= (size_t)k;
		}
	}
	msgpack_sbuffer_destroy(&sb);
	return ok ? 0 : -1;
}

int
rawdlm_reply(struct rawconn *rc)
{
	for (;;) {
		struct pollfd pfd = { rc->fd, POLLIN, 0 };
		size_t flen;
		enum frame_status st = frame_scan(rc->buf, rc->len, 1 << 20, 16,
		    &flen);
		ssize_t k;

		if (st == FRAME_COMPLETE) {
			msgpack_zone zone;
			msgpack_object o;
			size_t off = 0;
			int code = -1;

			msgpack_zone_init(&zone, 2048);
			if (msgpack_unpack(rc->buf, flen, &off, &zone, &o) ==
			    MSGPACK_UNPACK_SUCCESS &&
			    o.type == MSGPACK_OBJECT_ARRAY &&
			    o.via.array.size == 4) {
				const msgpack_object *e = &o.via.array.ptr[2];
				uint64_t c;

				code = e->type == MSGPACK_OBJECT_NIL ? 0 :
				    mpr_uint(mpr_get(e, "code"), &c) ? (int)c :
				    -1;
			}
			msgpack_zone_destroy(&zone);
			memmove(rc->buf, rc->buf + flen, rc->len - flen);
			rc->len -= flen;
			return code;
		}
		if (st != FRAME_INCOMPLETE || poll(&pfd, 1, 30000) != 1)
			return -1;
		if (rc->cap - rc->len < 4096) {
			char *nb = realloc(rc->buf, rc->cap * 2 + 4096);

			if (nb == NULL)
				return -1;
			rc->buf = nb;
			rc->cap = rc->cap * 2 + 4096;
		}
		k = read(rc->fd, rc->buf + rc->len, rc->cap - rc->len);
		if (k <= 0)
			return -1;
		rc->len += (size_t)k;
	}
}

/* A renewal as libdlm makes it when idle: a ping, answered. */
static int
rawdlm_renew(void *ctx, int i)
{
	struct rawconn *rc = (struct rawconn *)ctx + i;

	return rawdlm_send(rc, "ping", (char *)NULL) == 0 &&
	    rawdlm_reply(rc) == 0 ? 0 : -1;
}

/*
 * n sessions, each holding one lock, renewing their leases as libdlm does:
 * a ping when a third of the lease has passed in silence.
 */
int
rawdlm_idle(const char *addr, int n, int seconds, int lease_ms, pid_t server,
    struct idle_cost *cost)
{
	struct rawconn *rc = calloc((size_t)n, sizeof *rc);
	long rss0 = proc_rss_kib(server);
	char name[64];
	int rc_err = 0;

	if (rc == NULL)
		return -1;
	for (int i = 0; i < n; i++)
		rc[i].fd = -1;		/* closed as such if never dialled */
	for (int i = 0; i < n && rc_err == 0; i++) {
		snprintf(name, sizeof name, "idle-%d", i);
		if (rawdlm_dial(&rc[i], addr) < 0 ||
		    rawdlm_send(&rc[i], "hello", "iproto", 1LL, "sclient", name,
		    "ilease_ms", (long long)lease_ms, (char *)NULL) != 0 ||
		    rawdlm_reply(&rc[i]) != 0)
			rc_err = -1;
		snprintf(name, sizeof name, "idle/%d", i);
		if (rc_err == 0 && (rawdlm_send(&rc[i], "acquire", "slock", name,
		    "itimeout_ms", 0LL, (char *)NULL) != 0 ||
		    rawdlm_reply(&rc[i]) != 0))
			rc_err = -1;
	}
	if (rc_err != 0)
		fprintf(stderr, "idle: could not open %d sessions\n", n);
	else
		rc_err = idle_measure(n, seconds, lease_ms, server, rss0,
		    rawdlm_renew, rc, cost);
	for (int i = 0; i < n; i++)
		rawdlm_close(&rc[i]);
	free(rc);
	return rc_err;
}

/* n locks held at once, by as few sessions as dlmd's max-holds allows. */
int
rawdlm_many(const char *addr, long n, pid_t server, double *rss_per_lock)
{
	enum { PER_SESSION = 100000, WINDOW = 1000 };
	int nsess = (int)((n + PER_SESSION - 1) / PER_SESSION);
	struct rawconn *rc = calloc((size_t)nsess, sizeof *rc);
	long rss0 = proc_rss_kib(server), rss1;
	char name[64];
	long done = 0;
	int err = 0;

	if (rc == NULL)
		return -1;
	for (int s = 0; s < nsess; s++)
		rc[s].fd = -1;		/* closed as such if never dialled */
	for (int s = 0; s < nsess && err == 0; s++) {
		if (rawdlm_dial(&rc[s], addr) < 0 ||
		    rawdlm_send(&rc[s], "hello", "iproto", 1LL, (char *)NULL) != 0 ||
		    rawdlm_reply(&rc[s]) != 0) {
			err = -1;
			break;
		}
		for (long i = 0; i < PER_SESSION && done < n && err == 0;) {
			long k = 0;

			for (; k < WINDOW && i + k < PER_SESSION &&
			    done + k < n; k++) {
				snprintf(name, sizeof name, "m/%07ld", done + k);
				if (rawdlm_send(&rc[s], "acquire", "slock", name,
				    "itimeout_ms", 0LL, (char *)NULL) != 0)
					err = -1;
			}
			for (long j = 0; j < k; j++)
				if (rawdlm_reply(&rc[s]) != 0)
					err = -1;
			i += k;
			done += k;
		}
	}
	sleep_ms(500);
	rss1 = proc_rss_kib(server);
	/* The names are "m/" and seven digits: nine bytes each. */
	*rss_per_lock = (double)(rss1 - rss0) * 1024.0 / (double)n - 9.0;
	if (err != 0)
		fprintf(stderr, "many: acquires failed (is max-holds at least "
		    "%d?)\n", PER_SESSION);
	for (int s = 0; s < nsess; s++)
		rawdlm_close(&rc[s]);
	free(rc);
	return err;
}
