/*
 * dlmd through libdlm: dlm_acquire (dlmd queues waiters, FIFO, and answers
 * when granted), dlm_release; the batch uses the asynchronous calls.
 */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlm.h"
#include "lockbench.h"
#include "rawdlm.h"

static const char *
dlmd_recipe(void)
{
	return "libdlm: dlm_acquire (waits in dlmd's FIFO queue), dlm_release; "
	    "batch: dlm_acquire_async/dlm_release_async; semaphore: "
	    "dlm_acquire_ex with DLM_SEMAPHORE (FIFO in dlmd), dlm_release";
}

static void *
dlmd_open(const char *addr, int lease_ms)
{
	struct dlm_options o;
	int err;
	struct dlm_client *c;

	dlm_options_init(&o);
	o.lease_ms = lease_ms;
	o.label = "lockbench";
	if ((c = dlm_connect(addr, &o, &err)) == NULL)
		fprintf(stderr, "dlm_connect %s: %s\n", addr,
		    dlm_strerror(err));
	return c;
}

static void
dlmd_close(void *conn)
{
	dlm_close(conn);
}

static int
dlmd_acquire(void *conn, const char *lock, int timeout_ms)
{
	int err = dlm_acquire(conn, lock, 0, timeout_ms, NULL);

	if (err == 0)
		return PEER_GRANTED;
	if (err == DLM_E_WOULD_BLOCK || err == DLM_E_TIMEOUT)
		return PEER_BUSY;
	fprintf(stderr, "dlm_acquire %s: %s\n", lock, dlm_strerror(err));
	return PEER_ERROR;
}

static int
dlmd_release(void *conn, const char *lock)
{
	int err = dlm_release(conn, lock);

	if (err != 0)
		fprintf(stderr, "dlm_release %s: %s\n", lock, dlm_strerror(err));
	return err == 0 ? 0 : PEER_ERROR;
}

static void
count_acquire(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	int *left = arg;

	if (err != 0)
		left[1]++;
	left[0]--;
}

static void
count_release(struct dlm_client *c, int err, void *arg)
{
	int *left = arg;

	if (err != 0)
		left[1]++;
	left[0]--;
}

static int
wait_all(struct dlm_client *c, const int *left)
{
	struct pollfd pfd = { dlm_async_fd(c), POLLIN, 0 };

	while (left[0] > 0) {
		if (poll(&pfd, 1, 10000) != 1)
			return PEER_ERROR;
		dlm_async_dispatch(c);
	}
	return left[1] == 0 ? 0 : PEER_ERROR;
}

static int
dlmd_batch(void *conn, const char *const *locks, int n)
{
	int left[2] = { n, 0 };	/* outstanding, failed */

	for (int i = 0; i < n; i++)
		if (dlm_acquire_async(conn, locks[i], 0, DLM_TRY,
		    count_acquire, left) != 0)
			return PEER_ERROR;
	if (wait_all(conn, left) != 0)
		return PEER_ERROR;
	left[0] = n;
	for (int i = 0; i < n; i++)
		if (dlm_release_async(conn, locks[i], count_release, left) != 0)
			return PEER_ERROR;
	return wait_all(conn, left);
}

static int
dlmd_sem_acquire(void *conn, const char *sem, int capacity, int timeout_ms)
{
	struct dlm_acquire_opts o;
	int err;

	dlm_acquire_opts_init(&o);
	o.flags = DLM_SEMAPHORE;
	o.capacity = (uint32_t)capacity;
	o.timeout_ms = timeout_ms;
	if ((err = dlm_acquire_ex(conn, sem, &o, NULL)) == 0)
		return PEER_GRANTED;
	if (err == DLM_E_WOULD_BLOCK || err == DLM_E_TIMEOUT)
		return PEER_BUSY;
	fprintf(stderr, "dlm_acquire_ex %s: %s\n", sem, dlm_strerror(err));
	return PEER_ERROR;
}

const struct peer peer_dlmd = {
	.name = "dlmd",
	.recipe = dlmd_recipe,
	.open = dlmd_open,
	.close = dlmd_close,
	.acquire = dlmd_acquire,
	.release = dlmd_release,
	.batch = dlmd_batch,
	.idle = rawdlm_idle,
	.many = rawdlm_many,
	.sem_acquire = dlmd_sem_acquire,
	.sem_release = dlmd_release,
};
