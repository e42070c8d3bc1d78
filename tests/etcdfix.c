/* The etcd fixture: see etcdfix.h. */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "etcdfix.h"
#include "testutil.h"

static char fixdir[200];

const char *
etcdfix_binary(void)
{
	static char found[4096];
	const char *env = getenv("ETCD"), *path = getenv("PATH");

	if (env != NULL && env[0] != '\0')
		return access(env, X_OK) == 0 ? env : NULL;
	if (path == NULL)
		path = "/usr/bin:/bin";
	while (*path != '\0') {
		size_t n = strcspn(path, ":");

		snprintf(found, sizeof found, "%.*s/etcd", (int)n, path);
		if (n > 0 && access(found, X_OK) == 0)
			return found;
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}

void
etcdfix_prepare(void)
{
	snprintf(fixdir, sizeof fixdir, "/tmp/dlmetcd.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fixdir));
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Does /proc/PID/cmdline name mark? Then pid is still ours to kill. */
static bool
still_ours(long pid, const char *mark)
{
	char path[64], buf[8192];
	size_t n;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, mark) != NULL;
}

/*
 * Every recorded process that is still ours killed, every recorded
 * directory removed, then the fixture's own.
 */
void
etcdfix_cleanup(void)
{
	char path[320];
	FILE *f;
	long pid;

	if (fixdir[0] == '\0')
		return;
	snprintf(path, sizeof path, "%s/record", fixdir);
	if ((f = fopen(path, "r")) != NULL) {
		char dir[300];

		while (fscanf(f, "%ld %299s", &pid, dir) == 2) {
			if (pid > 1 && still_ours(pid, dir) &&
			    kill((pid_t)pid, SIGKILL) == 0)
				(void)waitpid((pid_t)pid, NULL, 0);
			if (strncmp(dir, "/tmp/", 5) == 0 &&
			    strncmp(dir, fixdir, strlen(fixdir)) != 0)
				(void)nftw(dir, rm_entry, 16,
				    FTW_DEPTH | FTW_PHYS);
		}
		fclose(f);
	}
	/* A killed member may still be closing its files for a moment. */
	for (int i = 0; i < 50; i++) {
		if (nftw(fixdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ||
		    errno == ENOENT)
			break;
		sleep_ms(100);
	}
	fixdir[0] = '\0';
}

/* dir is in the process's command line; no spaces in either. */
void
etcdfix_record(pid_t pid, const char *dir)
{
	char path[320];
	FILE *f;

	snprintf(path, sizeof path, "%s/record", fixdir);
	if ((f = fopen(path, "a")) != NULL) {
		fprintf(f, "%ld %s\n", (long)pid, dir);
		fclose(f);
	}
}

/* GET path from 127.0.0.1:port into buf (NUL-terminated); false if none. */
bool
http_get(int port, const char *path, char *buf, size_t size)
{
	struct timeval tv = { 0, 500000 };
	char req[256];
	size_t len = 0;
	ssize_t n;
	int fd;

	buf[0] = '\0';
	/* To loopback, a connect is answered at once. */
	if ((fd = loopback_connect(port)) < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
	    path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return false;
	}
	while (len < size - 1 &&
	    (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(fd);
	return len > 0;
}

/* GET /health on a member: true when it says it is healthy. */
static bool
member_health(int port)
{
	char buf[2048];

	return http_get(port, "/health", buf, sizeof buf) &&
	    strstr(buf, "\"health\":\"true\"") != NULL;
}

bool
etcd_member_healthy(const struct etcd_cluster *ec, int i, int ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)ms;

	do {
		if (member_health(ec->certdir[0] != '\0' ?
		    ec->m[i].metrics_port : ec->m[i].client_port))
			return true;
		sleep_ms(100);
	} while (mono_ms() < deadline);
	return false;
}

void
etcd_cluster_init(struct etcd_cluster *ec)
{
	int ports[3 * ETCDFIX_MEMBERS];
	size_t off = 0, eoff = 0;
	char certdir[sizeof ec->certdir];

	ck_assert_msg(fixdir[0] != '\0', "etcdfix_prepare() was not run");
	memcpy(certdir, ec->certdir, sizeof certdir);
	memset(ec, 0, sizeof *ec);
	memcpy(ec->certdir, certdir, sizeof certdir);
	snprintf(ec->dir, sizeof ec->dir, "%s/c.XXXXXX", fixdir);
	ck_assert_ptr_nonnull(mkdtemp(ec->dir));
	/* Nine distinct ports, even if the kernel hands one out twice. */
	for (int n = 0; n < 3 * ETCDFIX_MEMBERS;) {
		bool dup = false;

		ports[n] = free_tcp_port();
		for (int k = 0; k < n; k++)
			dup = dup || ports[k] == ports[n];
		if (!dup)
			n++;
	}
	for (int i = 0; i < ETCDFIX_MEMBERS; i++) {
		struct etcd_member *m = &ec->m[i];

		m->client_port = ports[3 * i];
		m->peer_port = ports[3 * i + 1];
		m->metrics_port = ports[3 * i + 2];
		snprintf(m->name, sizeof m->name, "m%d", i);
		snprintf(m->data, sizeof m->data, "%s/%s", ec->dir, m->name);
		snprintf(m->log, sizeof m->log, "%s/%s.log", ec->dir, m->name);
	}
	for (int i = 0; i < ETCDFIX_MEMBERS; i++) {
		off += (size_t)snprintf(ec->initial + off,
		    sizeof ec->initial - off, "%s%s=http://127.0.0.1:%d",
		    i > 0 ? "," : "", ec->m[i].name, ec->m[i].peer_port);
		eoff += (size_t)snprintf(ec->endpoints + eoff,
		    sizeof ec->endpoints - eoff, "%s%s://127.0.0.1:%d",
		    i > 0 ? "," : "", ec->certdir[0] != '\0' ? "https" :
		    "http", ec->m[i].client_port);
	}
}

void
etcd_member_start(struct etcd_cluster *ec, int i)
{
	struct etcd_member *m = &ec->m[i];
	char client[64], peer[64], metrics[64], cert[300], key[300], ca[300];
	const char *bin = etcdfix_binary();
	bool tls = ec->certdir[0] != '\0';
	pid_t pid;

	ck_assert_ptr_nonnull(bin);
	ck_assert_int_eq(m->pid, 0);
	snprintf(client, sizeof client, "%s://127.0.0.1:%d", tls ? "https" :
	    "http", m->client_port);
	snprintf(metrics, sizeof metrics, "http://127.0.0.1:%d",
	    m->metrics_port);
	snprintf(cert, sizeof cert, "%s/etcd.pem", ec->certdir);
	snprintf(key, sizeof key, "%s/etcd.key", ec->certdir);
	snprintf(ca, sizeof ca, "%s/ca.pem", ec->certdir);
	snprintf(peer, sizeof peer, "http://127.0.0.1:%d", m->peer_port);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		/* Peers speak clear text: only the client side is tested. */
		const char *argv[40] = { bin, "--name", m->name, "--data-dir",
		    m->data, "--listen-client-urls", client,
		    "--advertise-client-urls", client, "--listen-peer-urls",
		    peer, "--initial-advertise-peer-urls", peer,
		    "--initial-cluster", ec->initial,
		    "--initial-cluster-state", "new",
		    "--initial-cluster-token", ec->dir, "--unsafe-no-fsync",
		    "--logger", "zap", "--log-level", "warn" };
		int argc = 24;

		if (tls) {
			const char *more[] = { "--listen-metrics-urls",
			    metrics, "--cert-file", cert, "--key-file", key,
			    "--trusted-ca-file", ca, "--client-cert-auth" };

			for (size_t k = 0; k < sizeof more / sizeof more[0];
			    k++)
				argv[argc++] = more[k];
		}
		argv[argc] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	m->pid = pid;
	etcdfix_record(pid, m->data);
}

void
etcd_cluster_start(struct etcd_cluster *ec)
{
	etcd_cluster_init(ec);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		etcd_member_start(ec, i);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		ck_assert_msg(etcd_member_healthy(ec, i, 20000),
		    "etcd member %d is not healthy after 20 s (see %s)", i,
		    ec->m[i].log);
}

static void
member_wait(struct etcd_member *m, int ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)ms;

	while (waitpid(m->pid, NULL, WNOHANG) != m->pid) {
		if (mono_ms() > deadline) {
			kill(m->pid, SIGKILL);
			waitpid(m->pid, NULL, 0);
			break;
		}
		sleep_ms(20);
	}
	m->pid = 0;
}

void
etcd_member_kill(struct etcd_cluster *ec, int i)
{
	struct etcd_member *m = &ec->m[i];

	if (m->pid <= 0)
		return;
	kill(m->pid, SIGKILL);
	member_wait(m, 10000);
}

void
etcd_member_stop(struct etcd_cluster *ec, int i)
{
	struct etcd_member *m = &ec->m[i];

	if (m->pid <= 0)
		return;
	kill(m->pid, SIGTERM);
	member_wait(m, 10000);
}

void
etcd_cluster_stop(struct etcd_cluster *ec)
{
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		if (ec->m[i].pid > 0)
			kill(ec->m[i].pid, SIGKILL);
	for (int i = 0; i < ETCDFIX_MEMBERS; i++)
		if (ec->m[i].pid > 0)
			member_wait(&ec->m[i], 10000);
	if (ec->dir[0] != '\0')
		(void)nftw(ec->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	ec->dir[0] = '\0';
}

void
cluster_node_start(struct cluster_node *n, const struct etcd_cluster *ec,
    const char *ttl, const char *lease_max, const char *extra,
    const char *extra_value)
{
	if (n->adv[0] == '\0') {
		int port = free_tcp_port();

		snprintf(n->adv, sizeof n->adv, "tcp:127.0.0.1:%d", port);
		snprintf(n->listen, sizeof n->listen, "tcp:127.0.0.1:%d",
		    port);
	}
	dlmd_start(&n->p, "-l", n->listen, "--cluster-etcd", ec->endpoints,
	    "--advertise", n->adv, "--cluster-ttl", ttl, "--lease-max",
	    lease_max, "--lease-default", "1500", "--cluster-name", "t",
	    extra, extra_value, (char *)NULL);
	etcdfix_record(n->p.pid, n->p.dir);
	n->up = true;
	n->stopped = false;
}

bool
cluster_node_clean(struct cluster_node *n)
{
	char line[1024];
	FILE *f = fopen(n->p.log, "r");
	bool report = false;

	while (f != NULL && !report && fgets(line, sizeof line, f) != NULL)
		report = strstr(line, "AddressSanitizer") != NULL ||
		    strstr(line, "LeakSanitizer") != NULL ||
		    strstr(line, "runtime error:") != NULL;
	if (f != NULL)
		fclose(f);
	if (report)
		fprintf(stderr, "etcdfix: a sanitizer report in %s; kept\n",
		    n->p.log);
	else
		unlink(n->p.log);
	unlink(n->p.sock);
	rmdir(n->p.dir);
	n->up = false;
	n->stopped = false;
	return !report;
}

void
cluster_node_kill(struct cluster_node *n)
{
	kill(n->p.pid, SIGCONT);
	kill(n->p.pid, SIGKILL);
	dlmd_stop(&n->p);
	ck_assert(cluster_node_clean(n));
}

void
cluster_nodes_stop(struct cluster_node *nodes, int n, int *bad_exit,
    int *reports)
{
	for (int i = 0; i < n; i++)
		if (nodes[i].up) {
			kill(nodes[i].p.pid, SIGCONT);
			*bad_exit += dlmd_stop(&nodes[i].p) != 0;
			*reports += !cluster_node_clean(&nodes[i]);
		}
}

void
cluster_teardown(struct cluster_node *nodes, int n, struct etcd_cluster *ec)
{
	int bad_exit = 0, reports = 0;

	cluster_nodes_stop(nodes, n, &bad_exit, &reports);
	etcd_cluster_stop(ec);
	ck_assert_msg(bad_exit == 0, "%d dlmd did not exit 0", bad_exit);
	ck_assert_msg(reports == 0, "%d dlmd logs have sanitizer reports",
	    reports);
}

void
cluster_node_view(struct cluster_node *n, struct cluster_view *v)
{
	struct tc *c;
	struct reply *r;
	int tries = 0;

	/*
	 * An active stepping down closes every connection, one accepted
	 * just then too: ask again on a new one.
	 */
	for (;;) {
		c = tc_connect(&n->p);
		r = tc_wait(c, tc_send(c, "stats", NULL), 10000);
		if (r != NULL || !c->eof || ++tries == 5)
			break;
		tc_close(c);
		sleep_ms(50);
	}
	ck_assert_msg(r != NULL, "no reply to stats%s", c->eof ?
	    ": the server closed the connection" : "");
	memset(v, 0, sizeof *v);
	if (r->err == 0) {
		snprintf(v->role, sizeof v->role, "%s", reply_str(r, "role"));
		snprintf(v->active, sizeof v->active, "%s",
		    reply_get(r, "active") != NULL &&
		    reply_get(r, "active")->type == MSGPACK_OBJECT_STR ?
		    reply_str(r, "active") : "");
		snprintf(v->status, sizeof v->status, "%s",
		    reply_get(r, "cluster_status") != NULL &&
		    reply_get(r, "cluster_status")->type == MSGPACK_OBJECT_STR ?
		    reply_str(r, "cluster_status") : "");
		v->epoch = reply_u64(r, "epoch");
	} else {
		/* Only the active refuses a sessionless stats. */
		ck_assert_str_eq(reply_errname(r), "NO_SESSION");
		snprintf(v->role, sizeof v->role, "active");
	}
	tc_close(c);
}

int
cluster_wait_one_active(struct cluster_node *nodes, int n, int ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)ms;

	do {
		int found = -1, count = 0;

		for (int i = 0; i < n; i++) {
			struct cluster_view v;

			if (!nodes[i].up || nodes[i].stopped)
				continue;
			cluster_node_view(&nodes[i], &v);
			if (strcmp(v.role, "active") == 0) {
				found = i;
				count++;
			}
		}
		ck_assert_msg(count <= 1, "%d dlmd are active at once", count);
		if (count == 1)
			return found;
		sleep_ms(100);
	} while (mono_ms() < deadline);
	ck_abort_msg("no dlmd became active within %d ms", ms);
	return -1;
}
