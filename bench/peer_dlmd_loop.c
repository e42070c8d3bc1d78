/*
 * dlmd through libdlm's event-loop mode: no library thread. Each
 * connection is driven by a plain poll() loop over the generic interface
 * (dlm_loop_fd, dlm_loop_events, dlm_loop_timeout_ms, dlm_loop_process):
 * the cheapest driver there is, with nothing between the socket and the
 * client but poll(), where libevent or libuv would add their own
 * bookkeeping per wake. Requests are written as soon as they are made
 * (dlm_loop_process with DLM_EV_WRITE), not on the loop's next turn.
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "dlm.h"
#include "lockbench.h"
#include "rawdlm.h"

static const char *
loop_recipe(void)
{
	return "libdlm event-loop mode (no library thread; a poll() loop "
	    "drives it): dlm_acquire_async (waits in dlmd's FIFO queue), "
	    "dlm_release_async; batch: the same, many in flight";
}

static void *
loop_open(const char *addr, int lease_ms)
{
	struct dlm_options o;
	struct dlm_client *c;
	int err;

	dlm_options_init(&o);
	o.lease_ms = lease_ms;
	o.label = "lockbench";
	if ((c = dlm_connect_loop(addr, &o, &err)) == NULL)
		fprintf(stderr, "dlm_connect_loop %s: %s\n", addr,
		    dlm_strerror(err));
	return c;
}

static void
loop_close(void *conn)
{
	dlm_close(conn);
}

/* Answers outstanding, the last error, and for an acquire, its result. */
struct pending {
	int	left;
	int	failed;
	int	err;
};

/* Run the loop until every request of p is answered: 0, or PEER_ERROR. */
static int
loop_wait(struct dlm_client *c, const struct pending *p)
{
	/* Written now, not when the loop next finds the socket writable. */
	if (dlm_loop_process(c, DLM_EV_WRITE) != 0)
		return PEER_ERROR;
	while (p->left > 0) {
		int ev = dlm_loop_events(c), n;
		struct pollfd pfd;

		pfd.fd = dlm_loop_fd(c);
		pfd.events = (short)(((ev & DLM_EV_READ) ? POLLIN : 0) |
		    ((ev & DLM_EV_WRITE) ? POLLOUT : 0));
		pfd.revents = 0;
		n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, dlm_loop_timeout_ms(c));
		if (n < 0)
			return PEER_ERROR;
		if (dlm_loop_process(c, n == 0 ? 0 :
		    ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) ?
		    DLM_EV_READ : 0) |
		    ((pfd.revents & POLLOUT) ? DLM_EV_WRITE : 0)) != 0)
			return PEER_ERROR;
	}
	return 0;
}

static void
acquired(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct pending *p = arg;

	p->left--;
	if (err != 0) {
		p->failed++;
		p->err = err;
	}
}

static void
released(struct dlm_client *c, int err, void *arg)
{
	acquired(c, err, 0, arg);
}

static int
loop_acquire(void *conn, const char *lock, int timeout_ms)
{
	struct pending p = { 1, 0, 0 };

	if (dlm_acquire_async(conn, lock, 0, timeout_ms, acquired, &p) != 0 ||
	    loop_wait(conn, &p) != 0)
		return PEER_ERROR;
	if (p.err == 0)
		return PEER_GRANTED;
	if (p.err == DLM_E_WOULD_BLOCK || p.err == DLM_E_TIMEOUT)
		return PEER_BUSY;
	fprintf(stderr, "acquire %s: %s\n", lock, dlm_strerror(p.err));
	return PEER_ERROR;
}

static int
loop_release(void *conn, const char *lock)
{
	struct pending p = { 1, 0, 0 };

	if (dlm_release_async(conn, lock, released, &p) != 0 ||
	    loop_wait(conn, &p) != 0 || p.failed != 0) {
		fprintf(stderr, "release %s: %s\n", lock, dlm_strerror(p.err));
		return PEER_ERROR;
	}
	return 0;
}

static int
loop_batch(void *conn, const char *const *locks, int n)
{
	struct pending p = { n, 0, 0 };

	for (int i = 0; i < n; i++)
		if (dlm_acquire_async(conn, locks[i], 0, DLM_TRY, acquired,
		    &p) != 0)
			return PEER_ERROR;
	if (loop_wait(conn, &p) != 0 || p.failed != 0)
		return PEER_ERROR;
	p.left = n;
	for (int i = 0; i < n; i++)
		if (dlm_release_async(conn, locks[i], released, &p) != 0)
			return PEER_ERROR;
	return loop_wait(conn, &p) != 0 || p.failed != 0 ? PEER_ERROR : 0;
}

const struct peer peer_dlmd_loop = {
	.name = "dlmd-loop",
	.recipe = loop_recipe,
	.open = loop_open,
	.close = loop_close,
	.acquire = loop_acquire,
	.release = loop_release,
	.batch = loop_batch,
	.idle = rawdlm_idle,
	.many = rawdlm_many,
};
