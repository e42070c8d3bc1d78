/*
 * <dlm/libuv.h>: run a client of dlm_connect_loop() on a libuv loop.
 * Header-only: it needs libdlm and libuv, nothing more.
 *
 *	struct dlm_client *c = dlm_connect_loop(NULL, &opts, &err);
 *	dlm_libuv_attach(c, uv_default_loop());
 *	... dlm_acquire_async(c, ...); uv_run(uv_default_loop(), UV_RUN_DEFAULT);
 *
 * The client's socket is polled with a uv_poll_t, replaced when a
 * reconnect brings a new socket, and its deadline is a uv_timer_t;
 * dlm_close() closes both. See dlm_loop(3).
 */
#ifndef DLM_LIBUV_H
#define DLM_LIBUV_H

#include <stdlib.h>

#include <uv.h>

#include <dlm.h>

struct dlm_libuv {
	struct dlm_client	*client;
	uv_loop_t		*loop;
	uv_poll_t		*poll;	/* on fd, or NULL */
	uv_timer_t		 timer;
	int			 fd;
	int			 events;
};

static void
dlm_libuv_io_(uv_poll_t *h, int status, int events)
{
	struct dlm_libuv *a = (struct dlm_libuv *)h->data;

	/* An error: let the client find it on the socket. */
	if (status < 0)
		events = UV_READABLE | UV_WRITABLE;
	(void)dlm_loop_process(a->client,
	    ((events & UV_READABLE) ? DLM_EV_READ : 0) |
	    ((events & UV_WRITABLE) ? DLM_EV_WRITE : 0));
}

static void
dlm_libuv_timer_(uv_timer_t *h)
{
	struct dlm_libuv *a = (struct dlm_libuv *)h->data;

	(void)dlm_loop_process(a->client, 0);
}

static void
dlm_libuv_free_poll_(uv_handle_t *h)
{
	free(h);
}

/* The timer is the last handle closed: then the adapter goes. */
static void
dlm_libuv_free_(uv_handle_t *h)
{
	free(h->data);
}

static void
dlm_libuv_drop_poll_(struct dlm_libuv *a)
{
	if (a->poll != NULL)
		uv_close((uv_handle_t *)a->poll, dlm_libuv_free_poll_);
	a->poll = NULL;
	a->fd = -1;
	a->events = 0;
}

static void
dlm_libuv_watch_(struct dlm_client *c, int fd, int events, int timeout_ms,
    void *arg)
{
	struct dlm_libuv *a = (struct dlm_libuv *)arg;
	int uvev;

	(void)c;
	if (events & DLM_EV_FREE) {
		dlm_libuv_drop_poll_(a);
		uv_close((uv_handle_t *)&a->timer, dlm_libuv_free_);
		return;
	}
	if (fd != a->fd) {
		/* A new socket (a reconnect), or none for now. */
		dlm_libuv_drop_poll_(a);
		if (fd >= 0 &&
		    (a->poll = (uv_poll_t *)malloc(sizeof *a->poll)) != NULL) {
			if (uv_poll_init(a->loop, a->poll, fd) != 0) {
				free(a->poll);
				a->poll = NULL;
			} else {
				a->poll->data = a;
				a->fd = fd;
			}
		}
	}
	uvev = ((events & DLM_EV_READ) ? UV_READABLE : 0) |
	    ((events & DLM_EV_WRITE) ? UV_WRITABLE : 0);
	if (a->poll != NULL && uvev != a->events) {
		if (uvev != 0)
			uv_poll_start(a->poll, uvev, dlm_libuv_io_);
		else
			uv_poll_stop(a->poll);
		a->events = uvev;
	}
	if (timeout_ms < 0)
		uv_timer_stop(&a->timer);
	else
		uv_timer_start(&a->timer, dlm_libuv_timer_,
		    (uint64_t)timeout_ms, 0);
}

/* Attach c to loop: 0, or DLM_E_NOMEM, DLM_E_INVALID (not a loop client). */
static inline int
dlm_libuv_attach(struct dlm_client *c, uv_loop_t *loop)
{
	struct dlm_libuv *a;

	if (c == NULL || loop == NULL || dlm_loop_events(c) < 0)
		return DLM_E_INVALID;
	if ((a = (struct dlm_libuv *)calloc(1, sizeof *a)) == NULL)
		return DLM_E_NOMEM;
	a->client = c;
	a->loop = loop;
	a->fd = -1;
	uv_timer_init(loop, &a->timer);
	a->timer.data = a;
	dlm_loop_set_watch(c, dlm_libuv_watch_, a);
	return 0;
}

#endif
