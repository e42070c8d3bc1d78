/*
 * <dlm/libevent.h>: run a client of dlm_connect_loop() on a libevent
 * event_base. Header-only: it needs libdlm and libevent, nothing more.
 *
 *	struct dlm_client *c = dlm_connect_loop(NULL, &opts, &err);
 *	dlm_libevent_attach(c, base);
 *	... dlm_acquire_async(c, ...); event_base_dispatch(base);
 *
 * The client's socket and timer are then the base's events, replaced when
 * a reconnect brings a new socket; dlm_close() removes them. See
 * dlm_loop(3).
 */
#ifndef DLM_LIBEVENT_H
#define DLM_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include <dlm.h>

struct dlm_libevent {
	struct dlm_client	*client;
	struct event_base	*base;
	struct event		*rev;	/* persistent, on fd */
	struct event		*wev;	/* added while there is output */
	struct event		*timer;
	int			 fd;
};

static void
dlm_libevent_io_(evutil_socket_t fd, short what, void *arg)
{
	struct dlm_libevent *a = (struct dlm_libevent *)arg;

	(void)fd;
	/* a may be freed inside: dlm_close() from a callback. */
	(void)dlm_loop_process(a->client,
	    ((what & EV_READ) ? DLM_EV_READ : 0) |
	    ((what & EV_WRITE) ? DLM_EV_WRITE : 0));
}

static void
dlm_libevent_timer_(evutil_socket_t fd, short what, void *arg)
{
	struct dlm_libevent *a = (struct dlm_libevent *)arg;

	(void)fd;
	(void)what;
	(void)dlm_loop_process(a->client, 0);
}

static void
dlm_libevent_drop_io_(struct dlm_libevent *a)
{
	if (a->rev != NULL)
		event_free(a->rev);
	if (a->wev != NULL)
		event_free(a->wev);
	a->rev = a->wev = NULL;
	a->fd = -1;
}

static void
dlm_libevent_watch_(struct dlm_client *c, int fd, int events, int timeout_ms,
    void *arg)
{
	struct dlm_libevent *a = (struct dlm_libevent *)arg;

	(void)c;
	if (events & DLM_EV_FREE) {
		dlm_libevent_drop_io_(a);
		event_free(a->timer);
		free(a);
		return;
	}
	if (fd != a->fd) {
		/* A new socket (a reconnect), or none for now. */
		dlm_libevent_drop_io_(a);
		if (fd >= 0) {
			a->rev = event_new(a->base, fd, EV_READ | EV_PERSIST,
			    dlm_libevent_io_, a);
			a->wev = event_new(a->base, fd, EV_WRITE,
			    dlm_libevent_io_, a);
			a->fd = fd;
		}
	}
	if (a->rev != NULL) {
		if (events & DLM_EV_READ)
			event_add(a->rev, NULL);
		else
			event_del(a->rev);
	}
	if (a->wev != NULL) {
		if (events & DLM_EV_WRITE)
			event_add(a->wev, NULL);
		else
			event_del(a->wev);
	}
	if (timeout_ms < 0)
		event_del(a->timer);
	else {
		struct timeval tv;

		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		event_add(a->timer, &tv);
	}
}

/* Attach c to base: 0, or DLM_E_NOMEM, DLM_E_INVALID (not a loop client). */
static inline int
dlm_libevent_attach(struct dlm_client *c, struct event_base *base)
{
	struct dlm_libevent *a;

	if (c == NULL || base == NULL || dlm_loop_events(c) < 0)
		return DLM_E_INVALID;
	if ((a = (struct dlm_libevent *)calloc(1, sizeof *a)) == NULL)
		return DLM_E_NOMEM;
	a->client = c;
	a->base = base;
	a->fd = -1;
	if ((a->timer = evtimer_new(base, dlm_libevent_timer_, a)) == NULL) {
		free(a);
		return DLM_E_NOMEM;
	}
	dlm_loop_set_watch(c, dlm_libevent_watch_, a);
	return 0;
}

#endif
