/*
 * async_loop: a program with its own poll() loop takes many locks at once.
 *
 * Requests are sent without waiting; their completions are queued and the
 * client's async descriptor turns readable. The loop then calls
 * dlm_async_dispatch(), which runs the callbacks in the loop's own thread.
 *
 * Build: cc async_loop.c $(pkg-config --cflags --libs dlm) -o async_loop
 */
#include <poll.h>
#include <stdio.h>

#include <dlm.h>

#define LOCKS	100

static int granted, released, failed;

static void
on_released(struct dlm_client *c, int err, void *arg)
{
	(void)c;
	(void)arg;
	if (err == 0)
		released++;
	else
		failed++;
}

static void
on_granted(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	const char *name = arg;

	(void)token;
	if (err != 0) {
		fprintf(stderr, "%s: %s\n", name, dlm_errmsg(c));
		failed++;
		return;
	}
	granted++;
	/* Done with it: give it back, also without waiting. */
	if (dlm_release_async(c, name, on_released, NULL) != 0)
		failed++;
}

int
main(void)
{
	static char names[LOCKS][32];
	struct dlm_client *c;
	int err;

	if ((c = dlm_connect(NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "async_loop: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	for (int i = 0; i < LOCKS; i++) {
		snprintf(names[i], sizeof names[i], "batch/%d", i);
		if (dlm_acquire_async(c, names[i], 0, 5000, on_granted,
		    names[i]) != 0)
			failed++;
	}
	while (released + failed < LOCKS) {
		struct pollfd pfd = { dlm_async_fd(c), POLLIN, 0 };

		/* A real program would poll its other descriptors here too. */
		if (poll(&pfd, 1, 1000) > 0)
			dlm_async_dispatch(c);
	}
	printf("%d granted, %d released, %d failed\n", granted, released,
	    failed);
	dlm_close(c);
	return failed == 0 ? 0 : 1;
}
