/*
 * The cluster chaos checker (tests/chaos_cluster.c drives, chaos_worker.c
 * works): what the driver and its worker processes share, in one
 * anonymous shared mapping made before the workers are forked.
 */
#ifndef DLM_CHAOS_CLUSTER_H
#define DLM_CHAOS_CLUSTER_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chaosres.h"

#define CC_MAXWORKERS	32
#define CC_MAXLOCKS	16
#define CC_GRANTS	(1u << 20)	/* the grant log's ring */
#define CC_MAXERR	128

/* A grant as a worker received it. */
struct cc_grant {
	uint64_t	token;
	uint64_t	ns;		/* mono_ns() when dlm_acquire returned;
					   0 while being written */
	uint32_t	lock;
	uint32_t	slot;
};

/* What became of holds that were held when the driver disturbed the cluster. */
struct cc_ride {
	unsigned long	held;		/* held at the disturbance */
	unsigned long	kept;		/* still counted, and the resource agreed */
	unsigned long	told;		/* on_lost said it was lost */
	unsigned long	untold;		/* gone, and nobody said so */
};

struct cc_shared {
	/* The driver's: a disturbance begins and is over. */
	volatile uint64_t	disturb_seq;
	volatile uint64_t	settled_seq;
	volatile int		stop;
	/* The workers': counts. */
	unsigned long		committed, pieces, refused, violations;
	unsigned long		untold;		/* lost outside a ride, unsaid */
	unsigned long		connects, connect_fails, list_fallbacks;
	unsigned long		lost[8];		/* by reason */
	unsigned long		errs[CC_MAXERR];	/* calls' errors */
	struct cc_ride		ride[2];		/* [has a linger] */
	volatile int		no_list;	/* libdlm refused a list */
	uint64_t		ngrants;
	struct cc_grant		grants[CC_GRANTS];
};

/* What the workers are told at their fork. */
struct cc_config {
	int		 nlocks;
	int		 lease_ms;
	int		 ride_cap_ms;	/* the longest a hold rides a fault */
	const char	*servers;	/* "tcp:...,tcp:...,tcp:..." */
	struct chaosres	 res[CC_MAXLOCKS];
};

extern struct cc_shared	*cc_sh;
extern struct cc_config	 cc_cfg;

/* chaos_cluster.c */
void	cc_violation(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

/* chaos_worker.c */
void	cc_lock_name(int i, char *buf, size_t len);
/* Fork worker slot; it dies with its parent. */
pid_t	cc_worker_spawn(int slot);

#endif
