/*
 * The monotonic clock, for every program of the project.
 *
 * Leases, timeouts and measurements must not move when an operator or NTP
 * steps the wall clock, so every "now" that is compared with another "now"
 * comes from CLOCK_MONOTONIC through these helpers. Header-only so that the
 * benchmarks and tests, which do not all link the common library, share it.
 */
#ifndef DLM_CLOCK_H
#define DLM_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t
mono_ms(void)
{
	return mono_ns() / 1000000u;
}

/* Seconds as a double, for rates and printed durations. */
static inline double
mono_sec(void)
{
	return (double)mono_ns() / 1e9;
}

/*
 * An absolute CLOCK_MONOTONIC deadline ms from now, for a condition
 * variable whose clock attribute is CLOCK_MONOTONIC.
 */
static inline void
mono_deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

#endif
