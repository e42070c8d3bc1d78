/*
 * A real three-member etcd cluster for tests: members on free 127.0.0.1
 * ports, data in a temporary directory, started and waited for within
 * bounds. Every process gets SIGKILL when the test process dies, and
 * etcdfix_cleanup() (run by the test's parent) removes what is left, so
 * nothing outlives a test however it ends.
 */
#ifndef DLM_ETCDFIX_H
#define DLM_ETCDFIX_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>

#include "testutil.h"

#define ETCDFIX_MEMBERS	3

struct etcd_member {
	pid_t	pid;
	int	client_port;
	int	peer_port;
	int	metrics_port;	/* TLS clusters: /health in clear text */
	char	name[8];
	char	data[320];
	char	log[320];
};

struct etcd_cluster {
	char			dir[256];
	/*
	 * Set before etcd_cluster_init/start: clients reach the members
	 * over TLS and must present a certificate signed by CERTDIR/ca.pem;
	 * the members serve CERTDIR/etcd.pem (an IP SAN 127.0.0.1).
	 */
	char			certdir[256];
	char			endpoints[256];	/* http(s)://127.0.0.1:P,... */
	char			initial[512];	/* --initial-cluster */
	struct etcd_member	m[ETCDFIX_MEMBERS];
};

/* The etcd binary ($ETCD, else etcd on the PATH), or NULL if none. */
const char	*etcdfix_binary(void);
/*
 * The directory the tests of one process keep their etcd data in; made by
 * etcdfix_prepare() in the parent, removed by etcdfix_cleanup() with every
 * process whose pid was recorded there.
 */
void		 etcdfix_prepare(void);
void		 etcdfix_cleanup(void);
/*
 * Have etcdfix_cleanup() SIGKILL this process (a dlmd a test started,
 * perhaps stopped) and remove this directory, should the test not.
 */
void		 etcdfix_record(pid_t, const char *dir);
/* Ports, data directory, and the members started; healthy within 20 s. */
void		 etcd_cluster_start(struct etcd_cluster *);
/* Allocate ports and directories only: the cluster is not running. */
void		 etcd_cluster_init(struct etcd_cluster *);
void		 etcd_member_start(struct etcd_cluster *, int i);
/* SIGKILL one member and wait for it to be gone. */
void		 etcd_member_kill(struct etcd_cluster *, int i);
/* SIGTERM one member, waiting at most 10 s before SIGKILL. */
void		 etcd_member_stop(struct etcd_cluster *, int i);
/* Wait up to ms for a member to answer its /health with true. */
bool		 etcd_member_healthy(const struct etcd_cluster *, int i, int ms);
/* GET path from 127.0.0.1:port into buf; false when nothing came. */
bool		 http_get(int port, const char *path, char *buf, size_t size);
/* Every member stopped and its data removed. */
void		 etcd_cluster_stop(struct etcd_cluster *);

/*
 * A clustered dlmd on those members: a Unix socket for the tests' raw
 * clients and a TCP listener it advertises, the same port across restarts.
 */
struct cluster_node {
	struct dlmd_proc	 p;
	char			 adv[64];
	char			 listen[64];
	bool			 up;
	bool			 stopped;	/* SIGSTOP: not asked */
};

/* What a node says of itself: its stats, asked without a session. */
struct cluster_view {
	char		role[16];	/* "active" when a session is had */
	char		active[64];
	char		status[400];
	uint64_t	epoch;
};

/*
 * Start n with --cluster-ttl ttl and --lease-max lease_max, and one extra
 * flag with its value (or NULL: none); recorded for etcdfix_cleanup().
 */
void		 cluster_node_start(struct cluster_node *,
		    const struct etcd_cluster *, const char *ttl,
		    const char *lease_max, const char *extra,
		    const char *extra_value);
/*
 * Stopped (or killed) already: remove its files. False when its log had a
 * sanitizer's report (then the log is kept, and named on stderr).
 */
bool		 cluster_node_clean(struct cluster_node *);
/* SIGKILL (after SIGCONT, should it be stopped): the host is gone. */
void		 cluster_node_kill(struct cluster_node *);
/*
 * SIGTERM every one of the n nodes that is up (woken first if stopped)
 * and clean it; adds to *bad_exit those that did not exit 0 and to
 * *reports those whose log had a sanitizer's report.
 */
void		 cluster_nodes_stop(struct cluster_node *, int n, int *bad_exit,
		    int *reports);
void		 cluster_node_view(struct cluster_node *, struct cluster_view *);
/*
 * A test's end: every node stopped, then etcd; the test fails after that
 * when a dlmd did not exit 0 or its log had a sanitizer's report.
 */
void		 cluster_teardown(struct cluster_node *, int n,
		    struct etcd_cluster *);
/*
 * Wait up to ms for exactly one of the n nodes that run (not stopped) to be
 * active, never seeing two; returns its index.
 */
int		 cluster_wait_one_active(struct cluster_node *, int n, int ms);

#endif
