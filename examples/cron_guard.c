/*
 * cron_guard: run a command only if no other host is running it.
 *
 *   cron_guard LOCK COMMAND [ARGS...]
 *
 * Takes LOCK without waiting; if another process holds it, exits 0 quietly
 * (the job is already being done). Otherwise runs COMMAND and exits with its
 * status, holding the lock until it ends. If this process dies, dlmd
 * releases the lock at once.
 *
 * Build: cc cron_guard.c $(pkg-config --cflags --libs dlm) -o cron_guard
 */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <dlm.h>

int
main(int argc, char **argv)
{
	struct dlm_client *c;
	int err, status = 1;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: cron_guard LOCK COMMAND [ARGS...]\n");
		return 2;
	}
	/* NULL: $DLM_SERVER, else the default local socket. */
	if ((c = dlm_connect(NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "cron_guard: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	DLM_LOCKED(lock, c, argv[1], 0, DLM_TRY) {
		if ((pid = fork()) == 0) {
			execvp(argv[2], argv + 2);
			perror(argv[2]);
			_exit(127);
		}
		if (pid > 0 && waitpid(pid, &status, 0) == pid)
			status = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
	} else if (lock.err == DLM_E_WOULD_BLOCK) {
		status = 0;	/* somebody else is on it */
	} else {
		/* The server's words: who holds it, which limit. */
		fprintf(stderr, "cron_guard: %s: %s\n", argv[1],
		    dlm_errmsg(c));
	}
	dlm_close(c);
	return status;
}
