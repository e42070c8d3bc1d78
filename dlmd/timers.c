/*
 * Time and timer durations.
 *
 * Lease, linger and wait timers mostly share a handful of durations, so each
 * distinct duration gets a libevent common-timeout queue: adding or removing
 * a timer on one is O(1) instead of a heap operation. libevent allows a
 * limited number of such queues; durations beyond the cache fall back to an
 * ordinary (heap) timer, which is still correct, only O(log n).
 *
 * libevent's clock here is the coarse monotonic one (a precise clock would
 * cost a timerfd_settime call on every turn of the loop, one more syscall
 * per request), so a timer may fire up to a clock tick early. The timers
 * whose time is a promise (leases, lingers, acquire timeouts) keep their
 * deadline in now_ms() and wait out the rest when they come early.
 */
#include "config.h"

#include <time.h>

#include "clock.h"
#include "dlmd.h"

#define TIMER_CACHE	192	/* libevent's cap is 256 queues per base */

static struct event_base *timer_base;
static struct {
	uint32_t		 ms;
	const struct timeval	*tv;
} timer_cache[TIMER_CACHE];
static int timer_ncache;

uint64_t
now_ms(void)
{
	return mono_ms();
}

void
timers_init(struct event_base *base)
{
	timer_base = base;
	timer_ncache = 0;
}

const struct timeval *
timer_tv(uint32_t ms)
{
	static struct timeval plain;
	const struct timeval *tv;
	struct timeval want;

	for (int i = 0; i < timer_ncache; i++)
		if (timer_cache[i].ms == ms)
			return timer_cache[i].tv;
	want.tv_sec = ms / 1000;
	want.tv_usec = (ms % 1000) * 1000;
	if (timer_ncache < TIMER_CACHE &&
	    (tv = event_base_init_common_timeout(timer_base, &want)) != NULL) {
		timer_cache[timer_ncache].ms = ms;
		timer_cache[timer_ncache].tv = tv;
		timer_ncache++;
		return tv;
	}
	plain = want;
	return &plain;
}

/* A timer fired before due_ms: add it again for the rest; true if so. */
bool
timer_rearm_if_early(struct event *ev, uint64_t due_ms)
{
	uint64_t now = now_ms();
	struct timeval rest;

	if (due_ms <= now)
		return false;
	rest.tv_sec = (time_t)((due_ms - now) / 1000);
	rest.tv_usec = (suseconds_t)((due_ms - now) % 1000) * 1000;
	event_add(ev, &rest);
	return true;
}
