/*
 * A bare dlmd client speaking the protocol from one thread, for the
 * workloads where libdlm's thread per client would cost more than the
 * thing measured: ten thousand sessions, a million locks.
 */
#ifndef RAWDLM_H
#define RAWDLM_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

struct idle_cost;

struct rawconn {
	int	 fd;
	uint32_t next_id;
	char	*buf;
	size_t	 len, cap;
};

/* Connect to "unix:PATH" or "tcp:HOST:PORT"; -1 on failure (errno). */
int	rawdlm_dial(struct rawconn *, const char *addr);
void	rawdlm_close(struct rawconn *);
/*
 * Queue a request [0, id, method, [{...}]] in buf; params alternate a key
 * and a value, a string when the key starts with 's', else a long long
 * (the first byte is a type mark and not sent). NULL ends them.
 */
int	rawdlm_send(struct rawconn *, const char *method, ...);
/* Read one reply; 0 on success, the error code, or -1 when none came. */
int	rawdlm_reply(struct rawconn *);

int	rawdlm_idle(const char *addr, int n, int seconds, int lease_ms,
	    pid_t server, struct idle_cost *);
int	rawdlm_many(const char *addr, long n, pid_t server,
	    double *rss_per_lock);

#endif
