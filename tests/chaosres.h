/*
 * The chaos checkers' shared resource: a file that accepts a step of work
 * only under a fencing token at least as new as the newest it has seen,
 * as a database that checks tokens would, and keeps a log of what it
 * accepted so that a checker can look for overlaps afterwards. Used by
 * tests/chaos.c (one dlmd) and tests/chaos_cluster.c (a cluster); it
 * knows nothing of dlm and takes no test framework, so either can link it.
 */
#ifndef DLM_CHAOSRES_H
#define DLM_CHAOSRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct chaosres {
	char	file[320];	/* the newest token, in decimal */
	char	log[320];	/* "WHAT TOKEN NS" per accepted step */
};

/* One accepted step, as read back from the log. */
struct chaosres_step {
	char		what;	/* 'A' begins a piece, 'C' commits it */
	uint64_t	token;
	uint64_t	ns;	/* mono_ns() when it was accepted */
};

/* The resource NAME kept in directory dir (which must exist). */
void	chaosres_init(struct chaosres *, const char *dir, const char *name);
/*
 * One step under token: accepted (and logged) when token is at least the
 * newest seen. Serialized with flock(), so any process may call it.
 */
bool	chaosres_step(const struct chaosres *, uint64_t token, char what);
/* The newest token the resource has accepted (0: none). */
uint64_t chaosres_newest(const struct chaosres *);
/* Every accepted step in order; *out to free(). Returns the count. */
size_t	chaosres_read(const struct chaosres *, struct chaosres_step **out);
/*
 * How many pairs of committed pieces (from 'A' to the 'C' of the same
 * token) under different tokens overlapped in time; report, when not
 * NULL, is called with the two tokens of each.
 */
unsigned long chaosres_overlaps(const struct chaosres *,
	    void (*report)(unsigned long long, unsigned long long));

#endif
