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

#define ETCDFIX_MEMBERS	3

struct etcd_member {
	pid_t	pid;
	int	client_port;
	int	peer_port;
	char	name[8];
	char	data[320];
	char	log[320];
};

struct etcd_cluster {
	char			dir[256];
	char			endpoints[256];	/* http://127.0.0.1:P,... */
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

#endif
