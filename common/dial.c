/*
 * Nonblocking connect to unix:PATH or tcp:HOST:PORT. See dial.h.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dial.h"
#include "dlm.h"

/* Say why an attempt failed, from errno or err. */
static void
dial_why(struct dial *d, int err)
{
	char buf[100];
	const char *msg = strerror_r(err, buf, sizeof buf);

	snprintf(d->why, sizeof d->why, "%s", msg);
}

/* Start connecting to the next address of d->next; false when none is left. */
static bool
try_next(struct dial *d)
{
	while (d->next != NULL) {
		struct addrinfo *ai = d->next;
		int fd;

		d->next = ai->ai_next;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			dial_why(d, errno);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			dial_why(d, errno);
			close(fd);
			continue;
		}
		d->fd = fd;
		return true;
	}
	return false;
}

int
dial_start(struct dial *d, const struct addr *addr)
{
	struct addrinfo hints;
	int rc;

	memset(d, 0, sizeof *d);
	d->fd = -1;
	if (addr->type == ADDR_UNIX) {
		struct sockaddr_un sun;
		int fd;

		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		/* addr_parse() kept the path within sun_path. */
		memcpy(sun.sun_path, addr->path, strlen(addr->path));
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
		if (fd < 0) {
			dial_why(d, errno);
			return DLM_E_CONNECT;
		}
		/*
		 * A Unix socket connects at once or fails (EAGAIN: the
		 * server's backlog is full; counted as a failure, as a
		 * blocking connect would have waited only on that).
		 */
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
			dial_why(d, errno);
			close(fd);
			return DLM_E_CONNECT;
		}
		d->fd = fd;
		return 1;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* A numeric service: no lookup can reinterpret the checked port. */
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(addr->host, addr->port, &hints, &d->res)) != 0) {
		snprintf(d->why, sizeof d->why, "%s", gai_strerror(rc));
		d->res = NULL;
		return DLM_E_CONNECT;
	}
	d->next = d->res;
	if (!try_next(d)) {
		dial_abort(d);
		return DLM_E_CONNECT;
	}
	return 0;
}

int
dial_done(struct dial *d, int *fdp)
{
	struct pollfd pfd = { d->fd, POLLOUT, 0 };
	int err = 0, one = 1;
	socklen_t elen = sizeof err;

	/*
	 * Told by a loop that may be wrong (an adapter's guess, a spurious
	 * wake): while the connect is still in progress, SO_ERROR says 0 too.
	 */
	if (poll(&pfd, 1, 0) == 0)
		return 0;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
	    err == 0) {
		if (d->res != NULL)
			setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one,
			    sizeof one);
		*fdp = d->fd;
		d->fd = -1;
		dial_abort(d);
		return 1;
	}
	dial_why(d, err != 0 ? err : errno);
	close(d->fd);
	d->fd = -1;
	if (try_next(d))
		return 0;
	dial_abort(d);
	return DLM_E_CONNECT;
}

void
dial_abort(struct dial *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	if (d->res != NULL)
		freeaddrinfo(d->res);
	d->res = d->next = NULL;
}
