/*
 * lockbench: the same lock workloads against dlmd and the locks users would
 * pick instead (Redis, PostgreSQL). Each peer implements its own idiomatic
 * recipe behind this interface; the workloads know nothing of wire formats.
 */
#ifndef LOCKBENCH_H
#define LOCKBENCH_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"

/* What acquire says. */
#define PEER_GRANTED	0
#define PEER_BUSY	1	/* not granted within the timeout */
#define PEER_ERROR	(-1)

struct idle_cost {
	double	cpu_pct;	/* of one core, while idle */
	double	rss_per_session;	/* bytes */
	long	renewals;	/* messages sent to keep the locks */
};

struct peer {
	const char	*name;		/* "dlmd", "dlmd-loop", "redis"... */
	/* One line on what the peer does for acquire, release and waiting. */
	const char	*(*recipe)(void);
	/* A connection (a session for dlmd); NULL on failure. */
	void		*(*open)(const char *addr, int lease_ms);
	void		 (*close)(void *conn);
	/*
	 * Take one lock: timeout_ms 0 tries once, > 0 waits that long, -1
	 * waits until granted, each in the peer's own way of waiting.
	 */
	int		 (*acquire)(void *conn, const char *lock, int timeout_ms);
	int		 (*release)(void *conn, const char *lock);
	/* n try-acquires all in flight at once, then n releases likewise. */
	int		 (*batch)(void *conn, const char *const *locks, int n);
	/*
	 * Workload 5, NULL where the peer cannot: n connections each holding
	 * one lock and keeping it for seconds the peer's way; and n locks
	 * held at once. The server's cost is measured from outside.
	 */
	int		 (*idle)(const char *addr, int n, int seconds,
			    int lease_ms, pid_t server, struct idle_cost *);
	int		 (*many)(const char *addr, long n, pid_t server,
			    double *rss_per_lock);
	/*
	 * Workload 8, NULL where the peer has no semaphore: take one permit
	 * of the semaphore sem, of capacity permits in all, waiting as
	 * acquire does; give it back.
	 */
	int		 (*sem_acquire)(void *conn, const char *sem,
			    int capacity, int timeout_ms);
	int		 (*sem_release)(void *conn, const char *sem);
};

extern const struct peer peer_dlmd, peer_dlmd_loop, peer_redis,
		    peer_postgres;

/* Options a peer may read. */
struct bench_opts {
	int	 redis_retry_ms;	/* sleep between SET NX tries */
};
extern struct bench_opts bench_opts;

/* CPU seconds used so far, and resident KiB, of a process. */
double		proc_cpu_s(pid_t);
long		proc_rss_kib(pid_t);
void		sleep_ms(int ms);
/* FNV-1a of a lock name: PostgreSQL's advisory lock key. */
int64_t		lock_key(const char *name);
/*
 * Workload 5's measure, the same for every peer: with n sessions open and
 * holding their locks (the server's RSS was rss0 before), the RSS per
 * session, then renew(ctx, i) for each session every third of the lease,
 * spread evenly, for seconds, and the server's CPU meanwhile. -1 when a
 * renewal fails.
 */
int		idle_measure(int n, int seconds, int lease_ms, pid_t server,
		    long rss0, int (*renew)(void *ctx, int i), void *ctx,
		    struct idle_cost *);

#endif
