/*
 * dlmctl watch LOCK: a line for the lock's state, then one for each
 * change of its holders, until interrupted (or, with --json, one JSON
 * object per line).
 *
 * The client is libdlm's event-loop mode, driven by poll() here beside a
 * signalfd: one thread, so a state line is never cut by another, and the
 * state callback says when the connection is gone for good. In a
 * cluster libdlm follows a fail-over and watches again on the new active;
 * the line after that is the state there.
 */
#include "config.h"

#include <sys/signalfd.h>
#include <sys/time.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlmctl.h"
#include "xmalloc.h"

struct watching {
	struct ctl	*ctl;
	struct name	 lock;
	int		 state;		/* the last DLM_STATE_* */
	int		 closed_err;
	bool		 write_failed;
};

static const char watch_usage[] = "usage: dlmctl watch LOCK\n";

/* The holders as JSON: the shape of the protocol's state, names escaped. */
static json_t *
state_json(const struct watching *w, const struct dlm_holder *hs, size_t n,
    size_t waiters)
{
	json_t *doc = json_object(), *holders = json_array();

	for (size_t i = 0; i < n; i++) {
		json_t *h = json_object();
		char *client = name_escape(hs[i].client, strlen(hs[i].client));

		json_object_set_new(h, "client", json_string(client));
		free(client);
		json_object_set_new(h, "token", hs[i].token > INT64_MAX ?
		    json_real((double)hs[i].token) :
		    json_integer((json_int_t)hs[i].token));
		json_object_set_new(h, "mode", json_string(hs[i].shared ?
		    "shared" : "exclusive"));
		if (hs[i].value != NULL) {
			char *v = name_escape(hs[i].value, hs[i].value_len);

			json_object_set_new(h, "value", json_string(v));
			free(v);
		}
		json_array_append_new(holders, h);
	}
	json_object_set_new(doc, "lock", json_string(w->lock.shown));
	json_object_set_new(doc, "holders", holders);
	json_object_set_new(doc, "waiters", json_integer((json_int_t)waiters));
	return doc;
}

/* "12:03:07.123 job: held by web-1 (token 17, exclusive), 2 waiting" */
static void
print_line(const struct watching *w, const struct dlm_holder *hs, size_t n,
    size_t waiters)
{
	struct timeval tv;
	struct tm tm;
	char when[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(when, sizeof when, "%H:%M:%S", &tm);
	printf("%s.%03ld %s: ", when, (long)(tv.tv_usec / 1000),
	    w->lock.shown);
	if (n == 0)
		printf("free");
	else
		printf("held by ");
	for (size_t i = 0; i < n; i++) {
		char *client = name_escape(hs[i].client, strlen(hs[i].client));

		printf("%s%s (token %llu, %s", i > 0 ? ", " : "", client,
		    (unsigned long long)hs[i].token, hs[i].shared ? "shared" :
		    "exclusive");
		free(client);
		if (hs[i].value != NULL) {
			char *v = value_text(hs[i].value, hs[i].value_len, 0);

			printf(", value %s", v);
			free(v);
		}
		putchar(')');
	}
	printf(", %zu waiting\n", waiters);
}

static void
on_changed(struct dlm_client *c, const char *lock, const struct dlm_holder *hs,
    size_t n, size_t waiters, void *arg)
{
	struct watching *w = arg;

	(void)c;
	(void)lock;
	if (w->ctl->json) {
		json_t *doc = state_json(w, hs, n, waiters);

		if (json_dumpf(doc, stdout, JSON_COMPACT |
		    JSON_SORT_KEYS) != 0 || putchar('\n') == EOF)
			w->write_failed = true;
		json_decref(doc);
	} else
		print_line(w, hs, n, waiters);
	/* A pipe's reader sees each change as it comes. */
	if (fflush(stdout) != 0 || ferror(stdout))
		w->write_failed = true;
}

static void
on_state(struct dlm_client *c, int state, int err, void *arg)
{
	struct watching *w = arg;

	(void)c;
	if (state == DLM_STATE_RECONNECTING && w->state != state)
		ctl_error("watch: the connection to dlmd was lost; "
		    "reconnecting");
	if (state == DLM_STATE_CLOSED)
		w->closed_err = err;
	w->state = state;
}

/* Poll the client and the signals until a signal or the end. */
static int
watch_loop(struct dlm_client *c, struct watching *w, int sfd)
{
	for (;;) {
		int events = dlm_loop_events(c), ev = 0, rc;
		struct pollfd p[2] = {
			{ sfd, POLLIN, 0 },
			{ dlm_loop_fd(c), (short)(((events & DLM_EV_READ) ?
			    POLLIN : 0) | ((events & DLM_EV_WRITE) ? POLLOUT :
			    0)), 0 },
		};

		if (poll(p, p[1].fd >= 0 ? 2 : 1, dlm_loop_timeout_ms(c)) < 0 &&
		    errno != EINTR) {
			ctl_error("watch: poll: %s", strerror(errno));
			return EXIT_FAILED;
		}
		if (p[0].revents != 0) {
			struct signalfd_siginfo si;

			/* Interrupted: the normal end of a watch. */
			if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
				return EXIT_OK;
		}
		if (p[1].fd >= 0 && (p[1].revents & (POLLIN | POLLHUP |
		    POLLERR)))
			ev |= DLM_EV_READ;
		if (p[1].fd >= 0 && (p[1].revents & (POLLOUT | POLLHUP |
		    POLLERR)))
			ev |= DLM_EV_WRITE;
		rc = dlm_loop_process(c, ev);
		if (w->write_failed) {
			ctl_error("watch: cannot write the output: %s",
			    strerror(errno));
			return EXIT_FAILED;
		}
		if (rc == DLM_E_CLOSED) {
			ctl_error("watch: lost the connection to dlmd at "
			    "%s%s%s", ctl_server_name(w->ctl),
			    dlm_errmsg(c)[0] != '\0' ? ": " : "",
			    dlm_errmsg(c));
			return EXIT_UNREACHABLE;
		}
	}
}

int
cmd_watch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct addr addrs[ADDR_LIST_MAX];
	struct watching w;
	struct dlm_options o;
	struct dlm_client *c;
	sigset_t sigs;
	int ch, err = 0, rc, sfd;

	while ((ch = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (ch == 'h') {
			fputs(watch_usage, stdout);
			return EXIT_OK;
		}
		fputs(watch_usage, stderr);
		return EXIT_USAGE;
	}
	if (argc - optind != 1) {
		fputs(watch_usage, stderr);
		return EXIT_USAGE;
	}
	memset(&w, 0, sizeof w);
	w.ctl = ctl;
	if ((rc = name_from_arg("lock name", argv[optind], &w.lock)) !=
	    EXIT_OK)
		return rc;
	if (memchr(w.lock.bytes, '\0', w.lock.len) != NULL) {
		ctl_error("watch: lock name '%s' holds a NUL byte; watch "
		    "cannot watch such a lock", w.lock.shown);
		name_free(&w.lock);
		return EXIT_USAGE;
	}
	if (ctl_addresses(ctl, addrs, ADDR_LIST_MAX) < 0) {
		name_free(&w.lock);
		return EXIT_USAGE;
	}
	/* The signals that end a watch come to the signalfd. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		ctl_error("watch: cannot set up signals: %s", strerror(errno));
		name_free(&w.lock);
		return EXIT_FAILED;
	}
	dlm_options_init(&o);
	o.label = "dlmctl watch";
	o.auth = ctl->auth;
	ctl_tls_options(ctl, &o);
	if ((c = dlm_connect_loop(ctl->server, &o, &err)) == NULL) {
		ctl_connect_error(ctl, ctl_server_name(ctl), err);
		rc = ctl_exit_status(err);
		goto out;
	}
	dlm_loop_set_state_cb(c, on_state, &w);
	/* Blocks, driving the connection, until the server answers. */
	if ((err = dlm_watch(c, w.lock.bytes, on_changed, &w)) != 0) {
		switch (err) {
		case DLM_E_CONNECT:
		case DLM_E_CLOSED:
			/* The loop's last turn says why, in its words. */
			(void)dlm_loop_process(c, 0);
			ctl_error("cannot reach dlmd at %s (is it running?): "
			    "%s", ctl_server_name(ctl), dlm_errmsg(c));
			break;
		case DLM_E_PERMISSION:
			/* The hello, or the rules refusing to show the lock. */
			if (strstr(dlm_errmsg(c), " right on lock ") != NULL)
				ctl_error("permission denied for watch: %s",
				    dlm_errmsg(c));
			else
				ctl_connect_error(ctl, ctl_server_name(ctl),
				    err);
			break;
		default:
			ctl_error("watch: %s", dlm_errmsg(c));
		}
		rc = ctl_exit_status(err);
	} else
		rc = watch_loop(c, &w, sfd);
	dlm_close(c);
out:
	close(sfd);
	name_free(&w.lock);
	return rc;
}
