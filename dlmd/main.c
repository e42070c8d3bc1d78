/*
 * dlmd: start-up (settings, detaching, pidfile, readiness), signals
 * (SIGTERM drains, SIGHUP reloads) and the event loop.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "dlmd.h"
#include "paths.h"
#include "xmalloc.h"

#define SWAP(type, a, b)	do { type swap_ = (a); (a) = (b); (b) = swap_; } while (0)

/* srv->cfg points here; a reload changes it in place. */
static struct dlmd_config cfg;
static int saved_argc;
static char **saved_argv;

/*
 * Debian's default soft limit of 1024 descriptors would cap a daemon meant
 * for tens of thousands of clients without a word: raise the soft limit
 * towards max-clients (plus room for listeners and logs), up to the hard
 * limit. A hard limit below the default max-clients is common (containers)
 * and not worth a warning at every start; below a max-clients the user
 * asked for, it is.
 */
static void
raise_fd_limit(uint32_t max_clients, bool user_set)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_clients + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		/* Root may raise the hard limit too; others keep theirs. */
		struct rlimit both = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &both) == 0)
			return;
		rl.rlim_cur = rl.rlim_max;
	} else
		rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
		    (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < want && user_set)
		log_warnx("only %llu file descriptors allowed (hard limit); "
		    "fewer than --max-clients %u clients can connect",
		    (unsigned long long)rl.rlim_cur, max_clients);
	else if (rl.rlim_cur < want)
		log_debug("%llu file descriptors allowed (hard limit)",
		    (unsigned long long)rl.rlim_cur);
}

/* Two optional settings are the same. */
static bool
opt_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL &&
	    strcmp(a, b) == 0);
}

/*
 * SIGHUP: build the settings again from the file and the command line, as
 * a restart would, and take what can change without one. A bad file keeps
 * the running settings.
 */
static void
reload(void)
{
	struct dlmd_config next;
	char err[600];
	bool same_listen;

	(void)sd_notify(0, "RELOADING=1");
	if (config_build(&next, saved_argc, saved_argv, err, sizeof err) != 0) {
		log_warnx("reload: %s; keeping the running settings", err);
		config_free(&next);
		(void)sd_notify(0, "READY=1");
		return;
	}
	same_listen = next.nlisten == cfg.nlisten;
	for (int i = 0; same_listen && i < cfg.nlisten; i++)
		same_listen = strcmp(next.listen[i], cfg.listen[i]) == 0;
	if (!same_listen || next.socket_mode != cfg.socket_mode ||
	    next.daemon != cfg.daemon ||
	    (next.metrics_listen == NULL) != (cfg.metrics_listen == NULL) ||
	    (next.metrics_listen != NULL &&
	    strcmp(next.metrics_listen, cfg.metrics_listen) != 0))
		log_warnx("reload: listen, socket-mode, daemon and "
		    "metrics-listen change only with a restart");
	if (!opt_eq(next.cluster_etcd, cfg.cluster_etcd) ||
	    !opt_eq(next.cluster_name, cfg.cluster_name) ||
	    !opt_eq(next.advertise, cfg.advertise) ||
	    next.cluster_ttl_ms != cfg.cluster_ttl_ms ||
	    (cfg.cluster_etcd != NULL && next.lease_max_ms != cfg.lease_max_ms))
		log_warnx("reload: cluster-etcd, cluster-name, cluster-ttl, "
		    "advertise and, in a cluster, lease-max change only with a "
		    "restart");

	/*
	 * Take every setting from next but those that need a restart, which
	 * keep their running values; then what is left in next (the old
	 * live settings, the new restart-only ones) is freed.
	 */
	SWAP(char **, next.listen, cfg.listen);
	SWAP(int, next.nlisten, cfg.nlisten);
	SWAP(char *, next.pidfile, cfg.pidfile);
	SWAP(char *, next.metrics_listen, cfg.metrics_listen);
	SWAP(char *, next.cluster_etcd, cfg.cluster_etcd);
	SWAP(char *, next.cluster_name, cfg.cluster_name);
	SWAP(char *, next.advertise, cfg.advertise);
	next.cluster_ttl_ms = cfg.cluster_ttl_ms;
	/* The grace a new active keeps depends on it: see cluster.c. */
	if (cfg.cluster_etcd != NULL)
		next.lease_max_ms = cfg.lease_max_ms;
	next.socket_mode = cfg.socket_mode;
	next.daemon = cfg.daemon;
	SWAP(struct dlmd_config, next, cfg);
	config_free(&next);

	server_limits_changed();
	tls_reload(&cfg);
	cluster_reload_tls(&cfg);
	log_init(cfg.log_level, cfg.syslog || cfg.daemon);
	log_reopen();
	log_info("reloaded %s (lease %u..%u ms, default %u; log level %s)",
	    cfg.config_file_read ? cfg.config_file : "the command line",
	    cfg.lease_min_ms, cfg.lease_max_ms, cfg.lease_default_ms,
	    log_level_name(cfg.log_level));
	auth_log_rules();
	(void)sd_notify(0, "READY=1");
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		(void)sd_notify(0, "STOPPING=1");
		cluster_stop();
		server_shutdown();
		break;
	case SIGHUP:
		reload();
		break;
	}
}

/*
 * -d: the parent stays until the daemon is listening (or has failed), so
 * that its exit status tells a script or an init system which it was.
 * Returns in the daemon with the descriptor to report readiness on.
 */
static int
detach(void)
{
	int pfd[2], null;
	char ok;
	pid_t pid;

	if (pipe(pfd) != 0)
		fatal("pipe");
	if ((pid = fork()) < 0)
		fatal("fork");
	if (pid > 0) {
		close(pfd[1]);
		_exit(read(pfd[0], &ok, 1) == 1 ? 0 : 1);
	}
	close(pfd[0]);
	if (setsid() < 0)
		fatal("setsid");
	/* Not a session leader: it can never get a controlling terminal. */
	if ((pid = fork()) < 0)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (chdir("/") != 0)
		fatal("chdir /");
	umask(022);
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		/* stderr stays until ready: start-up errors reach the user. */
		if (null > STDERR_FILENO)
			close(null);
	}
	return pfd[1];
}

static void
detach_done(int fd)
{
	int null;

	if (write(fd, "R", 1) != 1)
		log_warn("cannot tell the parent we are ready");
	close(fd);
	if ((null = open("/dev/null", O_RDWR)) >= 0) {
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* The pidfile's path: given, or next to the default socket with -d. */
static char *
pidfile_path(void)
{
	char path[PATH_MAX], *dir, *out;
	size_t len;

	if (cfg.pidfile != NULL)
		return xstrdup(cfg.pidfile);
	if (!cfg.daemon || dlm_default_socket(path, sizeof path) != 0)
		return NULL;
	dir = dirname(path);
	/* Listening elsewhere, the default socket's directory may not be. */
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		log_warn("mkdir %s", dir);
	len = strlen(dir) + sizeof "/dlmd.pid";
	out = xmalloc(len);
	snprintf(out, len, "%s/dlmd.pid", dir);
	return out;
}

static bool
pidfile_write(const char *path)
{
	char buf[32];
	int fd, n;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) < 0) {
		log_warn("pidfile %s", path);
		return false;
	}
	n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_warn("pidfile %s", path);
		close(fd);
		unlink(path);
		return false;
	}
	close(fd);
	return true;
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct event *sigs[3];
	static const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
	char err[600], *pidfile = NULL;
	int failed = 0, ready_fd = -1;

	saved_argc = argc;
	saved_argv = argv;
	if (config_build(&cfg, argc, argv, err, sizeof err) != 0) {
		fprintf(stderr, "dlmd: %s\n", err);
		config_free(&cfg);
		return 2;
	}
	if (cfg.check_only) {
		if (cfg.config_file_read)
			printf("dlmd: settings are good (%s and the command "
			    "line)\n", cfg.config_file);
		else
			printf("dlmd: settings are good (the command line; no "
			    "settings file at %s)\n", cfg.config_file);
		config_free(&cfg);
		return 0;
	}
	log_init(cfg.log_level, cfg.syslog);
	/* Detached, stderr is /dev/null: the logger must hear of it. */
	xmalloc_set_reporter(log_out_of_memory);
	signal(SIGPIPE, SIG_IGN);
	if (cfg.daemon)
		ready_fd = detach();
	raise_fd_limit(cfg.max_clients, cfg.max_clients_set);

	/* libevent's coarse clock: see timers.c for why, and how it is safe. */
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");

	server_init(base, &cfg);
	/*
	 * Handlers first: a SIGTERM that comes as soon as the socket accepts
	 * (a service manager stopping a fresh daemon) must drain, not kill.
	 */
	for (int i = 0; i < 3; i++) {
		if ((sigs[i] = evsignal_new(base, signums[i], signal_cb,
		    NULL)) == NULL || evsignal_add(sigs[i], NULL) != 0)
			fatalx("cannot handle signal %d", signums[i]);
	}
	if (cfg.nlisten == 0)
		failed = server_listen("default") != 0;
	for (int i = 0; i < cfg.nlisten && !failed; i++)
		failed = server_listen(cfg.listen[i]) != 0;
	if (!failed && cfg.metrics_listen != NULL)
		failed = metrics_listen(base, cfg.metrics_listen) != 0;
	if (!failed)
		failed = cluster_start(base, &cfg, dispatch_resume) != 0;
	if (!failed && (pidfile = pidfile_path()) != NULL &&
	    !pidfile_write(pidfile)) {
		free(pidfile);
		pidfile = NULL;
		failed = 1;
	}
	if (failed)
		log_warnx("cannot start; exiting");
	else {
		log_info("dlmd %s ready (lease %u..%u ms, default %u)",
		    PACKAGE_VERSION, cfg.lease_min_ms, cfg.lease_max_ms,
		    cfg.lease_default_ms);
		auth_log_rules();
		if (ready_fd >= 0) {
			log_init(cfg.log_level, true);
			detach_done(ready_fd);
		}
		(void)sd_notify(0, "READY=1");
		event_base_dispatch(base);
		log_info("exiting");
	}
	/* A second SIGTERM during clean-up must not kill us. */
	for (int i = 0; i < 3; i++) {
		event_free(sigs[i]);
		signal(signums[i], SIG_IGN);
	}

	metrics_free();
	server_free();
	cluster_free();
	event_base_free(base);
	if (pidfile != NULL) {
		unlink(pidfile);
		free(pidfile);
	}
	config_free(&cfg);
	return failed ? 1 : 0;
}
