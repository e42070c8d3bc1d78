/*
 * dlmctl run: hold a lock while a command runs; dlmctl elect: lead an
 * election (hold its lock, with a value watchers see) while one runs.
 *
 * COMMAND gets its own process group, so that signals and kills reach
 * everything it started in that group. dlmctl forwards the signals a
 * person or a supervisor sends, ends the group the moment the hold is lost
 * (SIGTERM, then SIGKILL after --kill-after), and releases the lock only
 * when nothing is left in the group, so that two runs never overlap.
 *
 * "Nothing left" includes zombies: kill(-pgid, 0) finds a dead process
 * until its parent reaps it. COMMAND's orphans would go to init, which may
 * reap late or never, and hold the lock meanwhile; dlmctl is a child
 * subreaper instead, so they come to it and it reaps them at once.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "dlmctl.h"

extern char **environ;

#define KILL_AFTER_DEFAULT	5000

/* "run" or "elect", for messages: one command per process. */
static const char *what = "run";

struct run {
	bool		 elect;		/* elect NAME VALUE: the hold's value */
	const char	*value_arg;	/* VALUE, as given (its bytes) */
	const char	*lock_arg;	/* as given, escaped or not */
	struct name	 lock;
	int		 flags;
	int		 capacity;	/* --semaphore N; 0: none */
	int		 permits;	/* --permits, of the semaphore */
	int		 timeout_ms;	/* DLM_FOREVER unless --timeout */
	int		 lock_delay_ms;	/* --lock-delay; 0: none */
	int		 kill_after_ms;
	int		 lease_ms;
	int		 timeout_status;
	int		 lost_status;
	char		**cmd;

	int		 sfd;		/* signalfd for the signals below */
	sigset_t	 sigs;
	sigset_t	 old_mask;
	int		 lost_pipe[2];	/* written by the lost callback */

	/* Acquire. */
	bool		 acquired_done;
	int		 acquire_err;
	char		 acquire_msg[256];	/* the server's words, or "" */
	uint64_t	 token;

	/* The command. */
	pid_t		 pgid;		/* its leader's pid */
	bool		 leader_alive;
	int		 leader_status;
	int		 lost_reason;	/* 0: not lost */
	bool		 ending;	/* SIGTERM sent to the group */
	bool		 killed;	/* SIGKILL sent */
	uint64_t	 kill_at;
	uint64_t	 give_up_at;
};

/* Signals forwarded to the command's group as they are. */
static const int forwarded[] = {
	SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM,
};

static bool
is_forwarded(int sig)
{
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		if (forwarded[i] == sig)
			return true;
	return false;
}

static const char *
lost_words(int reason)
{
	switch (reason) {
	case DLM_LOST_FORCED:
		return "an admin force-released it";
	case DLM_LOST_RESET:
		return "an admin reset this client";
	case DLM_LOST_EXPIRED:
		return "its lease ran out";
	case DLM_LOST_SESSION:
		return "the connection to dlmd was lost";
	case DLM_LOST_FAILOVER:
		return "the cluster's new active dlmd did not let it be kept";
	default:
		return "dlmd ended it";
	}
}

/* libdlm's thread: only a byte down a pipe; the main loop acts on it. */
static void
on_lost(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    void *arg)
{
	struct run *r = arg;
	unsigned char b = (unsigned char)reason;

	(void)c;
	(void)token;
	if (strcmp(lock, r->lock.bytes) == 0 &&
	    write(r->lost_pipe[1], &b, 1) < 0) {
		/* Full: a byte is already waiting, which is all it takes. */
	}
}

/* The server's sentence, on the one line dlmctl(1) promises. */
static void
print_server_words(const char *msg)
{
	char *line = text_escape(msg);

	ctl_error("%s", line != NULL ? line : msg);
	free(line);
}

static void
on_acquired(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	struct run *r = arg;

	r->acquired_done = true;
	r->acquire_err = err;
	r->token = token;
	/* Valid only in here: keep it for the message after the wait. */
	snprintf(r->acquire_msg, sizeof r->acquire_msg, "%s",
	    err != 0 ? dlm_errmsg(c) : "");
}

static int
parse_num(const char *opt, const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		ctl_error("%s: --%s wants a number from %ld to %ld", what, opt,
		    min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/*
 * LOCK in the escaped form that dlmctl shows names in. libdlm takes a
 * name as a C string, and DLM_LOCK is one too: a NUL cannot be carried.
 */
static int
parse_lock_name(struct run *r)
{
	int rc;

	if ((rc = name_from_arg("lock name", r->lock_arg, &r->lock)) !=
	    EXIT_OK)
		return rc;
	if (memchr(r->lock.bytes, '\0', r->lock.len) != NULL) {
		ctl_error("%s: lock name '%s' holds a NUL byte; %s cannot "
		    "take such a lock", what, r->lock.shown, what);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static const char run_usage[] =
"usage: dlmctl run LOCK [--timeout MS] [--shared] [--rlock] [--kill-after MS]\n"
"           [--semaphore N [--permits P]] [--lease MS] [--lock-delay MS]\n"
"           [--timeout-status N] [--lost-status N] -- COMMAND [ARG...]\n";

static const char elect_usage[] =
"usage: dlmctl elect NAME VALUE [--timeout MS] [--kill-after MS] [--lease MS]\n"
"           [--timeout-status N] [--lost-status N] -- COMMAND [ARG...]\n";

/*
 * --semaphore N: one permit (or --permits) of a semaphore of capacity N,
 * so that at most N such commands run at once, wherever they run.
 */
static int
semaphore_args(struct run *r)
{
	if (r->capacity == 0) {
		if (r->permits != 0) {
			ctl_error("run: --permits is for --semaphore");
			return EXIT_USAGE;
		}
		return EXIT_OK;
	}
	if (r->flags & (DLM_SHARED | DLM_RLOCK)) {
		ctl_error("run: --semaphore takes neither --shared nor "
		    "--rlock");
		return EXIT_USAGE;
	}
	if (r->permits > r->capacity) {
		ctl_error("run: --permits %d is more than the semaphore's "
		    "capacity of %d", r->permits, r->capacity);
		return EXIT_USAGE;
	}
	r->flags |= DLM_SEMAPHORE;
	return EXIT_OK;
}

static int
parse(struct run *r, int argc, char **argv)
{
	static const struct option options[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "shared", no_argument, NULL, 'S' },
		{ "rlock", no_argument, NULL, 'R' },
		{ "semaphore", required_argument, NULL, 'M' },
		{ "permits", required_argument, NULL, 'P' },
		{ "kill-after", required_argument, NULL, 'k' },
		{ "lease", required_argument, NULL, 'l' },
		{ "lock-delay", required_argument, NULL, 'D' },
		{ "timeout-status", required_argument, NULL, 'T' },
		{ "lost-status", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = r->elect ? elect_usage : run_usage;

	int rc;

	/*
	 * Options may come before or after LOCK (and VALUE); scanning stops
	 * at "--" or at the first word after them, which starts COMMAND.
	 */
	for (;;) {
		int ch;

		while ((ch = getopt_long(argc, argv, "+h", options,
		    NULL)) != -1) {
			switch (ch) {
			case 't':
				if (parse_num("timeout", optarg, -1,
				    INT32_MAX, &r->timeout_ms) != 0)
					return EXIT_USAGE;
				break;
			case 'S':
				r->flags |= DLM_SHARED;
				break;
			case 'R':
				r->flags |= DLM_RLOCK;
				break;
			case 'M':
				if (parse_num("semaphore", optarg, 1,
				    INT32_MAX, &r->capacity) != 0)
					return EXIT_USAGE;
				break;
			case 'P':
				if (parse_num("permits", optarg, 1,
				    INT32_MAX, &r->permits) != 0)
					return EXIT_USAGE;
				break;
			case 'k':
				if (parse_num("kill-after", optarg, 0,
				    3600000, &r->kill_after_ms) != 0)
					return EXIT_USAGE;
				break;
			case 'l':
				if (parse_num("lease", optarg, 1,
				    INT32_MAX, &r->lease_ms) != 0)
					return EXIT_USAGE;
				break;
			case 'D':
				if (parse_num("lock-delay", optarg, 0,
				    INT32_MAX, &r->lock_delay_ms) != 0)
					return EXIT_USAGE;
				break;
			case 'T':
				if (parse_num("timeout-status", optarg, 1, 255,
				    &r->timeout_status) != 0)
					return EXIT_USAGE;
				break;
			case 'L':
				if (parse_num("lost-status", optarg, 1, 255,
				    &r->lost_status) != 0)
					return EXIT_USAGE;
				break;
			case 'h':
				fputs(usage, stdout);
				exit(EXIT_OK);
			default:
				fputs(usage, stderr);
				return EXIT_USAGE;
			}
		}
		if (optind >= argc || strcmp(argv[optind - 1], "--") == 0)
			break;
		if (r->lock_arg == NULL)
			r->lock_arg = argv[optind++];
		else if (r->elect && r->value_arg == NULL)
			r->value_arg = argv[optind++];
		else
			break;
	}
	if (r->lock_arg == NULL || optind >= argc || *r->lock_arg == '\0' ||
	    (r->elect && (r->value_arg == NULL || *r->value_arg == '\0'))) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	/* A leader holds its election alone. */
	if (r->elect && r->flags != 0) {
		ctl_error("elect: --shared and --rlock are for run");
		return EXIT_USAGE;
	}
	if ((rc = semaphore_args(r)) != EXIT_OK)
		return rc;
	r->cmd = argv + optind;
	return parse_lock_name(r);
}

/* COMMAND's environment: ours, with the lock's name and token. */
static char **
child_env(const struct run *r)
{
	size_t n = 0, o = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 3, sizeof *env)) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "DLM_LOCK_TOKEN=", 15) != 0 &&
		    strncmp(environ[i], "DLM_LOCK=", 9) != 0)
			env[o++] = environ[i];
	if (asprintf(&env[o++], "DLM_LOCK_TOKEN=%llu",
	    (unsigned long long)r->token) < 0 ||
	    asprintf(&env[o++], "DLM_LOCK=%s", r->lock.bytes) < 0) {
		free(env);
		return NULL;
	}
	return env;
}

static void
free_env(char **env)
{
	if (env == NULL)
		return;
	for (size_t i = 0; env[i] != NULL; i++)
		if (strncmp(env[i], "DLM_LOCK_TOKEN=", 15) == 0 ||
		    strncmp(env[i], "DLM_LOCK=", 9) == 0)
			free(env[i]);
	free(env);
}

/*
 * Start COMMAND as the leader of a new process group. Between fork() and
 * exec only async-signal-safe calls: this process has libdlm's thread.
 * Returns 0, or an exit status after saying why it could not start.
 */
static int
spawn(struct run *r)
{
	int errpipe[2], child_errno = 0, rc = EXIT_OK;
	pid_t parent = getpid(), pid;
	char **env;
	ssize_t n;

	if ((env = child_env(r)) == NULL) {
		ctl_error("%s: out of memory", what);
		return EXIT_FAILED;
	}
	if (pipe2(errpipe, O_CLOEXEC) != 0) {
		ctl_error("%s: pipe: %s", what, strerror(errno));
		free_env(env);
		return EXIT_FAILED;
	}
	if ((pid = fork()) < 0) {
		ctl_error("%s: fork: %s", what, strerror(errno));
		close(errpipe[0]);
		close(errpipe[1]);
		free_env(env);
		return EXIT_FAILED;
	}
	if (pid == 0) {
		int e;

		(void)setpgid(0, 0);
		/*
		 * If dlmctl dies (SIGKILL), its session and so the lock go
		 * with it: COMMAND must not run on unprotected.
		 */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(EXIT_LOST);
		(void)sigprocmask(SIG_SETMASK, &r->old_mask, NULL);
		execvpe(r->cmd[0], r->cmd, env);
		e = errno;
		if (write(errpipe[1], &e, sizeof e) < 0) {
			/* Nothing more a child can do. */
		}
		_exit(e == ENOENT ? EXIT_NO_COMMAND : EXIT_CANNOT_EXEC);
	}
	(void)setpgid(pid, pid);	/* as well, so no signal beats it */
	close(errpipe[1]);
	free_env(env);
	do
		n = read(errpipe[0], &child_errno, sizeof child_errno);
	while (n < 0 && errno == EINTR);
	close(errpipe[0]);
	if (n == (ssize_t)sizeof child_errno) {
		(void)waitpid(pid, NULL, 0);
		ctl_error("%s: %s: %s", what, r->cmd[0],
		    strerror(child_errno));
		rc = child_errno == ENOENT ? EXIT_NO_COMMAND :
		    EXIT_CANNOT_EXEC;
	} else {
		r->pgid = pid;
		r->leader_alive = true;
	}
	return rc;
}

static bool
group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno == EPERM;
}

/* Stop everything in COMMAND's group: SIGTERM now, SIGKILL later. */
static void
end_group(struct run *r)
{
	/* No group yet: kill(-0) would signal dlmctl's own group. */
	if (r->ending || r->pgid <= 0)
		return;
	r->ending = true;
	(void)kill(-r->pgid, SIGTERM);
	(void)kill(-r->pgid, SIGCONT);	/* a stopped process cannot die */
	r->kill_at = mono_ms() + (uint64_t)r->kill_after_ms;
}

/* Every child that ended: COMMAND, and the orphans dlmctl adopted. */
static void
reap(struct run *r)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (pid == r->pgid) {
			r->leader_alive = false;
			r->leader_status = status;
		}
}

static void
handle_signal(struct run *r, int sig)
{
	switch (sig) {
	case SIGCHLD:
		reap(r);
		break;
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		/* Job control: the command stops with us, and goes on too. */
		(void)kill(-r->pgid, SIGSTOP);
		(void)raise(SIGSTOP);
		break;
	case SIGCONT:
		(void)kill(-r->pgid, SIGCONT);
		break;
	default:
		if (is_forwarded(sig))
			(void)kill(-r->pgid, sig);
		break;
	}
}

/* Read what signalfd holds; returns a terminating signal seen, or 0. */
static int
drain_signals(struct run *r, bool waiting)
{
	struct signalfd_siginfo si;
	int term = 0;

	while (read(r->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;

		if (!waiting)
			handle_signal(r, sig);
		else if (sig == SIGINT || sig == SIGTERM || sig == SIGQUIT ||
		    sig == SIGHUP)
			term = sig;
		else if (sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
			(void)raise(SIGSTOP);
	}
	return term;
}

/* Orphans of COMMAND's processes become dlmctl's, for reap() to take. */
static int
adopt_orphans(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
		ctl_error("%s: cannot adopt orphaned processes: %s", what,
		    strerror(errno));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* Wait for the lock; returns EXIT_OK when held, else the exit status. */
static int
acquire(struct ctl *ctl, struct run *r)
{
	struct dlm_acquire_opts o;
	int err, afd = dlm_async_fd(ctl->client);

	dlm_acquire_opts_init(&o);
	o.flags = r->flags;
	o.timeout_ms = r->timeout_ms;
	o.lock_delay_ms = r->lock_delay_ms;
	if (r->flags & DLM_SEMAPHORE) {
		o.capacity = (uint32_t)r->capacity;
		o.permits = (uint32_t)r->permits;
	}
	if (r->value_arg != NULL) {
		o.value = r->value_arg;
		o.value_len = strlen(r->value_arg);
	}
	err = dlm_acquire_ex_async(ctl->client, r->lock.bytes, &o,
	    on_acquired, r, NULL);
	if (err != 0) {
		ctl_error("%s: %s", what, dlm_errmsg(ctl->client));
		return ctl_exit_status(err);
	}
	while (!r->acquired_done) {
		struct pollfd p[2] = { { r->sfd, POLLIN, 0 }, { afd, POLLIN, 0 } };
		int sig;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if ((sig = drain_signals(r, true)) != 0)
			return 128 + sig;	/* closing cancels the wait */
		if (p[1].revents != 0)
			(void)dlm_async_dispatch(ctl->client);
	}
	switch (r->acquire_err) {
	case 0:
		return EXIT_OK;
	case DLM_E_WOULD_BLOCK:
		/* The server's words name the holder. */
		if (r->acquire_msg[0] != '\0')
			print_server_words(r->acquire_msg);
		else
			ctl_error("lock '%s' is held by another client",
			    r->lock.shown);
		return r->timeout_status;
	case DLM_E_TIMEOUT:
		ctl_error("lock '%s' not acquired within %d ms", r->lock.shown,
		    r->timeout_ms);
		return r->timeout_status;
	case DLM_E_KIND_MISMATCH:
		/* A semaphore's capacity is in the server's words. */
		if ((r->flags & DLM_SEMAPHORE) ||
		    strstr(r->acquire_msg, "semaphore") != NULL)
			print_server_words(r->acquire_msg);
		else
			ctl_error("lock '%s' is held as %s", r->lock.shown,
			    r->flags & DLM_RLOCK ? "a mutex" : "an rlock");
		return EXIT_FAILED;
	case DLM_E_PERMISSION: {
		/* The server's words: which identity, which right, which rule. */
		char *line = text_escape(r->acquire_msg);

		ctl_error("%s: permission denied: %s", what,
		    line != NULL && line[0] != '\0' ? line :
		    dlm_strerror(r->acquire_err));
		free(line);
		return EXIT_PERMISSION;
	}
	default:
		ctl_error("%s: cannot acquire '%s': %s", what, r->lock.shown,
		    r->acquire_msg[0] != '\0' ? r->acquire_msg :
		    dlm_strerror(r->acquire_err));
		return ctl_exit_status(r->acquire_err);
	}
}

static void
note_lost(struct run *r)
{
	unsigned char b;

	while (read(r->lost_pipe[0], &b, 1) == 1)
		if (r->lost_reason == 0) {
			r->lost_reason = b != 0 ? b : DLM_LOST_SESSION;
			if (r->pgid > 0)
				ctl_error("lost lock '%s': %s; stopping %s",
				    r->lock.shown, lost_words(r->lost_reason),
				    r->cmd[0]);
			else
				ctl_error("lost lock '%s': %s", r->lock.shown,
				    lost_words(r->lost_reason));
			end_group(r);
		}
}

/* Run until COMMAND and everything left in its group is gone. */
static void
supervise(struct run *r)
{
	for (;;) {
		struct pollfd p[2] = {
			{ r->sfd, POLLIN, 0 }, { r->lost_pipe[0], POLLIN, 0 },
		};
		uint64_t now = mono_ms(), next = UINT64_MAX;
		int timeout;

		if (!r->leader_alive) {
			reap(r);	/* a zombie still counts as alive */
			if (!group_alive(r->pgid))
				return;
			if (!r->ending) {
				ctl_error("%s exited and left processes in "
				    "its group; stopping them", r->cmd[0]);
				end_group(r);
			}
			next = now + 20;	/* no signal tells us when */
		}
		if (r->ending && !r->killed && r->kill_at < next)
			next = r->kill_at;
		if (r->killed && r->give_up_at < next)
			next = r->give_up_at;
		timeout = next == UINT64_MAX ? -1 :
		    next > now ? (int)(next - now) : 0;
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			return;
		(void)drain_signals(r, false);
		note_lost(r);
		now = mono_ms();
		if (r->ending && !r->killed && now >= r->kill_at) {
			(void)kill(-r->pgid, SIGKILL);
			r->killed = true;
			r->give_up_at = now + (uint64_t)r->kill_after_ms + 1000;
		}
		if (r->killed && now >= r->give_up_at) {
			ctl_error("processes of group %d outlive SIGKILL "
			    "(stuck in the kernel?); giving up on them",
			    (int)r->pgid);
			reap(r);
			return;
		}
	}
}

/* run, and elect with elect set. */
static int
run_or_elect(struct ctl *ctl, int argc, char **argv, bool elect)
{
	struct run r;
	struct dlm_options o;
	int rc;

	memset(&r, 0, sizeof r);
	r.elect = elect;
	what = elect ? "elect" : "run";
	r.sfd = r.lost_pipe[0] = r.lost_pipe[1] = -1;
	r.timeout_ms = DLM_FOREVER;
	r.kill_after_ms = KILL_AFTER_DEFAULT;
	r.timeout_status = EXIT_NOT_ACQUIRED;
	r.lost_status = EXIT_LOST;
	if ((rc = parse(&r, argc, argv)) != EXIT_OK)
		goto out;
	if (ctl->json) {
		ctl_error("%s: --json is for the inspecting commands", what);
		rc = EXIT_USAGE;
		goto out;
	}

	/*
	 * Block the signals before libdlm starts its thread, so that they
	 * all come to the signalfd rather than to whichever thread.
	 */
	sigemptyset(&r.sigs);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&r.sigs, forwarded[i]);
	sigaddset(&r.sigs, SIGCHLD);
	sigaddset(&r.sigs, SIGTSTP);
	sigaddset(&r.sigs, SIGTTIN);
	sigaddset(&r.sigs, SIGTTOU);
	sigaddset(&r.sigs, SIGCONT);
	if (sigprocmask(SIG_BLOCK, &r.sigs, &r.old_mask) != 0 ||
	    (r.sfd = signalfd(-1, &r.sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(r.lost_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		ctl_error("%s: cannot set up signals: %s", what,
		    strerror(errno));
		rc = EXIT_FAILED;
		goto out;
	}
	if ((rc = adopt_orphans()) != EXIT_OK)
		goto out;

	dlm_options_init(&o);
	o.label = elect ? "dlmctl elect" : "dlmctl run";
	o.lease_ms = r.lease_ms;
	o.on_lost = on_lost;
	o.on_lost_arg = &r;
	if ((rc = ctl_connect(ctl, &o)) != EXIT_OK ||
	    (rc = acquire(ctl, &r)) != EXIT_OK)
		goto out;
	if (!dlm_holds(ctl->client, r.lock.bytes, NULL)) {
		note_lost(&r);
		ctl_error("%s was not started", r.cmd[0]);
		rc = r.lost_status;
		goto out;
	}
	if ((rc = spawn(&r)) != EXIT_OK) {
		(void)dlm_release(ctl->client, r.lock.bytes);
		goto out;
	}
	supervise(&r);
	note_lost(&r);
	if (r.lost_reason != 0)
		rc = r.lost_status;
	else {
		int err = dlm_release(ctl->client, r.lock.bytes);

		if (err != 0 && err != DLM_E_NOT_HELD)
			ctl_error("releasing '%s': %s", r.lock.shown,
			    dlm_errmsg(ctl->client));
		if (WIFEXITED(r.leader_status))
			rc = WEXITSTATUS(r.leader_status);
		else if (WIFSIGNALED(r.leader_status))
			rc = 128 + WTERMSIG(r.leader_status);
		else
			rc = EXIT_FAILED;
	}
out:
	/* Ends the session (the lock is free), and with it on_lost calls. */
	dlm_close(ctl->client);
	ctl->client = NULL;
	if (r.sfd >= 0)
		close(r.sfd);
	if (r.lost_pipe[0] >= 0) {
		close(r.lost_pipe[0]);
		close(r.lost_pipe[1]);
	}
	name_free(&r.lock);
	return rc;
}

int
cmd_run(struct ctl *ctl, int argc, char **argv)
{
	return run_or_elect(ctl, argc, argv, false);
}

/*
 * elect NAME VALUE -- COMMAND: run's machinery on the election's lock,
 * exclusive, its hold carrying VALUE (what watchers and dlm_observe()
 * see): COMMAND runs while this is the leader, and is stopped if the
 * leadership is lost.
 */
int
cmd_elect(struct ctl *ctl, int argc, char **argv)
{
	return run_or_elect(ctl, argc, argv, true);
}
