/*
 * dlmctl, the real binary, against a real dlmd: every command, its table
 * and its JSON (parsed with jansson), its exit statuses, and `run` with
 * signal forwarding, non-overlap, lost holds and leftover processes.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <dirent.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "dlm.h"
#include "testutil.h"

static struct dlmd_proc d;
static char server[400];	/* unix:... */
static char tcp_server[64];	/* tcp:127.0.0.1:PORT */
static char admin_token_file[400];

static const char *
dlmctl_path(void)
{
	const char *p = getenv("DLMCTL");

	return p != NULL ? p : "dlmctl/dlmctl";
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void
setup(void)
{
	char path[400];

	snprintf(path, sizeof path, "/tmp/dlmctl-admin-token.%d", getpid());
	write_file(path, "s3cret-admin\n");
	snprintf(admin_token_file, sizeof admin_token_file, "%s", path);
	dlmd_start_tcp(&d, "--lease-min", "100", "--admin-token-file", path,
	    (char *)NULL);
	snprintf(server, sizeof server, "unix:%s", d.sock);
	snprintf(tcp_server, sizeof tcp_server, "tcp:127.0.0.1:%d", d.port);
	unsetenv("DLM_SERVER");
	unsetenv("DLM_TOKEN_FILE");
}

/* What the tests wrote into dlmd's directory, so that it can go. */
static void
clean_dir(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	char path[700];

	if (dp == NULL)
		return;
	while ((e = readdir(dp)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (strcmp(path, d.log) != 0 && strcmp(path, d.sock) != 0 &&
		    unlink(path) != 0)
			rmdir(path);
	}
	closedir(dp);
}

static void
teardown(void)
{
	clean_dir(d.dir);
	dlmd_stop_clean(&d);
	unlink(admin_token_file);
}

/* After a test killed dlmd: clear its directory, start another. */
static void
restart_dlmd(void)
{
	clean_dir(d.dir);
	unlink(d.log);
	unlink(d.sock);
	rmdir(d.dir);
	dlmd_start(&d, (char *)NULL);
}

/* What one dlmctl run printed and how it exited. */
struct out {
	int	 status;	/* exit status, or 128 + signal */
	char	*out;
	char	*err;
};

static char *
slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			char *more = realloc(buf, cap * 2);

			ck_assert_ptr_nonnull(more);
			buf = more;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	return buf;
}

static void
out_free(struct out *o)
{
	free(o->out);
	free(o->err);
}

static int
decode_status(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Start dlmctl with argv (NULL-terminated) writing to files; its pid. */
static pid_t
ctl_spawn(const char *out_path, const char *err_path, char **argv)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(o, 1);
		dup2(e, 2);
		execv(dlmctl_path(), argv);
		_exit(99);
	}
	return pid;
}

static char **
vargs(const char *first, va_list ap)
{
	static char *argv[64];
	int n = 0;

	argv[n++] = (char *)"dlmctl";
	for (const char *a = first; a != NULL && n < 63;
	    a = va_arg(ap, const char *))
		argv[n++] = (char *)a;
	argv[n] = NULL;
	return argv;
}

/* Run dlmctl to the end; args end with NULL. */
static struct out
ctl(const char *first, ...)
{
	char out_path[400], err_path[400];
	struct out o;
	va_list ap;
	pid_t pid;
	int st, fd;

	snprintf(out_path, sizeof out_path, "%s/ctl.out", d.dir);
	snprintf(err_path, sizeof err_path, "%s/ctl.err", d.dir);
	va_start(ap, first);
	pid = ctl_spawn(out_path, err_path, vargs(first, ap));
	va_end(ap);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	o.status = decode_status(st);
	fd = open(out_path, O_RDONLY);
	o.out = slurp(fd);
	close(fd);
	fd = open(err_path, O_RDONLY);
	o.err = slurp(fd);
	close(fd);
	return o;
}

/* A dlmctl left running in the background (for run). */
struct bg {
	pid_t	 pid;
	char	 out_path[400];
	char	 err_path[400];
};

static void
bg_start(struct bg *b, const char *tag, const char *first, ...)
{
	va_list ap;

	snprintf(b->out_path, sizeof b->out_path, "%s/%s.out", d.dir, tag);
	snprintf(b->err_path, sizeof b->err_path, "%s/%s.err", d.dir, tag);
	va_start(ap, first);
	b->pid = ctl_spawn(b->out_path, b->err_path, vargs(first, ap));
	va_end(ap);
}

/* Wait up to ms for it to exit; its status, or -1 if still running. */
static int
bg_wait(struct bg *b, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;
	int st;

	for (;;) {
		pid_t p = waitpid(b->pid, &st, WNOHANG);

		if (p == b->pid)
			return decode_status(st);
		if (mono_ms() >= end)
			return -1;
		sleep_ms(10);
	}
}

static char *
bg_err(struct bg *b)
{
	int fd = open(b->err_path, O_RDONLY);
	char *s = slurp(fd);

	close(fd);
	return s;
}

static json_t *
parse_json(const struct out *o)
{
	json_error_t e;
	json_t *v = json_loads(o->out, 0, &e);

	ck_assert_msg(v != NULL, "not JSON (%s): %s", e.text, o->out);
	return v;
}

static struct dlm_client *
client(const char *name)
{
	struct dlm_options opt;
	struct dlm_client *c;
	int err = -1;

	dlm_options_init(&opt);
	opt.client = name;
	c = dlm_connect(server, &opt, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_strerror(err));
	return c;
}

/* A thread that waits for a lock, so that it shows as a waiter. */
struct waiter {
	struct dlm_client *c;
	const char	*lock;
	int		 flags;
	int		 rc;
	pthread_t	 th;
};

static void *
waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->rc = dlm_acquire(w->c, w->lock, w->flags, 10000, NULL);
	return NULL;
}

static void
waiter_start(struct waiter *w, const char *name, const char *lock,
    int flags)
{
	w->c = client(name);
	w->lock = lock;
	w->flags = flags;
	w->rc = -1;
	pthread_create(&w->th, NULL, waiter_main, w);
}

static void
waiter_end(struct waiter *w)
{
	pthread_join(w->th, NULL);
	dlm_close(w->c);
}

/* Wait until the lock shows n waiters. */
static void
wait_waiters(struct dlm_client *c, const char *lock, int n)
{
	struct out o;

	for (int i = 0; i < 300; i++) {
		o = ctl("-s", server, "--json", "show", lock, (char *)NULL);
		if (o.status == 0) {
			json_t *v = parse_json(&o);
			json_t *l = json_object_get(v, "nwaiters");

			if (json_integer_value(l) == n) {
				json_decref(v);
				out_free(&o);
				return;
			}
			json_decref(v);
		}
		out_free(&o);
		sleep_ms(10);
	}
	(void)c;
	ck_abort_msg("lock %s never had %d waiters", lock, n);
}

static int
count_lines(const char *s)
{
	int n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

/* The line of s that contains needle, copied (static). */
static const char *
line_with(const char *s, const char *needle)
{
	static char line[1024];
	const char *p = strstr(s, needle), *b, *e;

	if (p == NULL)
		return NULL;
	for (b = p; b > s && b[-1] != '\n'; b--)
		;
	e = strchr(p, '\n');
	if (e == NULL)
		e = p + strlen(p);
	snprintf(line, sizeof line, "%.*s", (int)(e - b), b);
	return line;
}

START_TEST(status_human_and_json)
{
	struct out o = ctl("-s", server, "status", (char *)NULL);
	json_t *v;

	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "dlmd "));
	ck_assert_ptr_nonnull(line_with(o.out, "uptime"));
	ck_assert_ptr_nonnull(line_with(o.out, "sessions"));
	ck_assert_ptr_nonnull(line_with(o.out, "waiters"));
	ck_assert_str_eq(o.err, "");
	out_free(&o);

	o = ctl("-s", server, "--json", "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert(json_is_integer(json_object_get(v, "sessions")));
	ck_assert_int_ge(json_integer_value(json_object_get(v, "sessions")), 1);
	ck_assert(json_is_integer(json_object_get(v, "uptime_ms")));
	ck_assert(json_is_string(json_object_get(v, "server")));
	json_decref(v);
	out_free(&o);

	/* $DLM_SERVER stands in for -s. */
	setenv("DLM_SERVER", server, 1);
	o = ctl("status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	unsetenv("DLM_SERVER");
}
END_TEST

static void
ignore_answer(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	(void)c;
	(void)err;
	(void)token;
	(void)arg;
}

/* status counts refused deadlocks; show marks a converting holder. */
START_TEST(status_deadlocks_and_show_converting)
{
	struct dlm_client *a = client("alice"), *b = client("bob");
	struct out o;
	const char *line;
	json_t *v;

	o = ctl("-s", server, "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	line = line_with(o.out, "deadlocks refused");
	ck_assert_msg(line != NULL && strstr(line, " 0") != NULL, "%s",
	    o.out);
	out_free(&o);
	ck_assert_int_eq(dlm_acquire(a, "x", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "y", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire_async(a, "y", 0, DLM_FOREVER,
	    ignore_answer, NULL), 0);
	wait_waiters(b, "y", 1);
	ck_assert_int_eq(dlm_acquire(b, "x", 0, DLM_FOREVER, NULL),
	    DLM_E_DEADLOCK);
	o = ctl("-s", server, "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	line = line_with(o.out, "deadlocks refused");
	ck_assert_msg(line != NULL && strstr(line, " 1") != NULL, "%s",
	    o.out);
	out_free(&o);
	o = ctl("-s", server, "--json", "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "deadlocks")),
	    1);
	json_decref(v);
	out_free(&o);

	ck_assert_int_eq(dlm_acquire(a, "s", DLM_SHARED, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "s", DLM_SHARED, 0, NULL), 0);
	ck_assert_int_eq(dlm_convert_async(a, "s", 0, DLM_FOREVER,
	    ignore_answer, NULL), 0);
	wait_waiters(b, "s", 1);
	o = ctl("-s", server, "show", "s", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_msg(strstr(o.out, "exclusive (converting)") != NULL, "%s",
	    o.out);
	out_free(&o);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

START_TEST(locks_table_and_json)
{
	struct dlm_client *a = client("alice"), *b = client("bob");
	struct waiter w;
	struct out o;
	const char *line;
	json_t *v, *locks, *l;
	uint64_t t;
	size_t i;

	ck_assert_int_eq(dlm_acquire(a, "db/primary", 0, 0, &t), 0);
	ck_assert_int_eq(dlm_acquire(a, "cache", DLM_SHARED, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "cache", DLM_SHARED, 0, NULL), 0);
	waiter_start(&w, "carol", "db/primary", 0);
	wait_waiters(a, "db/primary", 1);

	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_int_eq(count_lines(o.out), 3);	/* header + 2 */
	ck_assert_ptr_nonnull(strstr(o.out, "LOCK"));
	ck_assert_ptr_nonnull(strstr(o.out, "LONGEST-WAIT"));
	line = line_with(o.out, "db/primary");
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, "alice"));
	ck_assert_ptr_nonnull(strstr(line, "mutex"));
	ck_assert_ptr_nonnull(strstr(line, "exclusive"));
	{
		char tok[32];

		snprintf(tok, sizeof tok, "%llu", (unsigned long long)t);
		ck_assert_ptr_nonnull(strstr(line, tok));
	}
	line = line_with(o.out, "cache");
	ck_assert_ptr_nonnull(strstr(line, "shared"));
	ck_assert_ptr_nonnull(strstr(line, "+1 more"));
	/* Aligned: every column starts where the header's does. */
	{
		const char *hdr = o.out, *row = strstr(o.out, "\n") + 1;
		const char *hk = strstr(hdr, "KIND"), *rk = strstr(row, "mutex");

		if (rk == NULL || rk > strchr(row, '\n'))
			rk = strstr(row, "rlock");
		ck_assert_int_eq((int)(hk - hdr), (int)(rk - row));
	}
	out_free(&o);

	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	locks = json_object_get(v, "locks");
	ck_assert_int_eq((int)json_array_size(locks), 2);
	json_array_foreach(locks, i, l) {
		const char *name = json_string_value(json_object_get(l,
		    "name"));

		if (strcmp(name, "db/primary") == 0) {
			json_t *h = json_array_get(json_object_get(l,
			    "holders"), 0);

			ck_assert_str_eq(json_string_value(json_object_get(h,
			    "client")), "alice");
			ck_assert_uint_eq((uint64_t)json_integer_value(
			    json_object_get(h, "token")), t);
			ck_assert_int_eq((int)json_array_size(json_object_get(l,
			    "waiters")), 1);
		} else {
			ck_assert_str_eq(name, "cache");
			ck_assert_int_eq((int)json_integer_value(
			    json_object_get(l, "nholders")), 2);
		}
	}
	json_decref(v);
	out_free(&o);

	/* A prefix narrows the list. */
	o = ctl("-s", server, "--json", "locks", "db/", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_int_eq((int)json_array_size(json_object_get(v, "locks")), 1);
	json_decref(v);
	out_free(&o);

	ck_assert_int_eq(dlm_release(a, "db/primary"), 0);
	waiter_end(&w);
	ck_assert_int_eq(w.rc, 0);
	dlm_close(a);
	dlm_close(b);

	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_str_eq(o.out, "no locks held or awaited\n");
	out_free(&o);
}
END_TEST

/* More locks than one page of the server's: every one is listed. */
START_TEST(locks_follow_the_cursor)
{
	struct dlm_client *a = client("many");
	struct out o;
	json_t *v;
	char name[32];

	for (int i = 0; i < 2500; i++) {
		snprintf(name, sizeof name, "job/%05d", i);
		ck_assert_int_eq(dlm_acquire(a, name, 0, 0, NULL), 0);
	}
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_int_eq((int)json_array_size(json_object_get(v, "locks")),
	    2500);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
	    json_object_get(v, "locks"), 2499), "name")), "job/02499");
	json_decref(v);
	out_free(&o);
	o = ctl("-s", server, "locks", "job/", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_int_eq(count_lines(o.out), 2501);
	out_free(&o);
	dlm_close(a);
}
END_TEST

START_TEST(show_lists_the_whole_queue)
{
	struct dlm_client *a = client("holder");
	struct waiter w[5];
	struct out o;
	json_t *v, *ws;
	char name[32];

	ck_assert_int_eq(dlm_acquire(a, "q", 0, 0, NULL), 0);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "w%d", i);
		waiter_start(&w[i], name, "q", i == 2 ? DLM_SHARED : 0);
		wait_waiters(a, "q", i + 1);
	}
	o = ctl("-s", server, "show", "q", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "holder"));
	for (int i = 0; i < 5; i++) {
		char want[16];
		const char *line;

		snprintf(name, sizeof name, "w%d", i);
		line = line_with(o.out, name);
		ck_assert_msg(line != NULL, "%s missing", name);
		snprintf(want, sizeof want, "%d", i + 1);
		ck_assert_msg(strncmp(line + strspn(line, " "), want, 1) == 0,
		    "position of %s: %s", name, line);
	}
	ck_assert_ptr_nonnull(strstr(line_with(o.out, "w2"), "shared"));
	out_free(&o);

	o = ctl("-s", server, "--json", "show", "q", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ws = json_object_get(v, "waiters");
	ck_assert_int_eq((int)json_array_size(ws), 5);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "w%d", i);
		ck_assert_str_eq(json_string_value(json_object_get(
		    json_array_get(ws, (size_t)i), "client")), name);
	}
	json_decref(v);
	out_free(&o);

	ck_assert_int_eq(dlm_release(a, "q"), 0);
	for (int i = 0; i < 5; i++) {
		/* Each releases as soon as it has it, in turn. */
		waiter_end(&w[i]);
	}
	dlm_close(a);

	o = ctl("-s", server, "show", "nope", (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	ck_assert_str_eq(o.out, "");
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "nope"));
	out_free(&o);
}
END_TEST

/* Take permits of semaphore lock (capacity cap) on c, at once. */
static void
sem_take(struct dlm_client *c, const char *lock, uint32_t cap,
    uint32_t permits)
{
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.flags = DLM_SEMAPHORE;
	o.capacity = cap;
	o.permits = permits;
	o.timeout_ms = 0;
	ck_assert_int_eq(dlm_acquire_ex(c, lock, &o, NULL), 0);
}

/* A thread that waits for permits of a semaphore, to show as a waiter. */
static void *
sem_waiter_main(void *arg)
{
	struct waiter *w = arg;
	struct dlm_acquire_opts o;

	dlm_acquire_opts_init(&o);
	o.flags = DLM_SEMAPHORE;
	o.capacity = 5;
	o.permits = (uint32_t)w->flags;
	o.timeout_ms = 10000;
	w->rc = dlm_acquire_ex(w->c, w->lock, &o, NULL);
	return NULL;
}


/* The k-th whitespace-separated field of line from its end (0: the last). */
static const char *
field_from_end(const char *line, int k)
{
	static char f[64];
	const char *end = line + strlen(line), *p;

	for (;;) {
		while (end > line && end[-1] == ' ')
			end--;
		p = end;
		while (p > line && p[-1] != ' ')
			p--;
		if (k-- == 0 || p == line)
			break;
		end = p;
	}
	snprintf(f, sizeof f, "%.*s", (int)(end - p), p);
	return f;
}

/* locks and show: a semaphore's capacity, permits in use, each one's. */
START_TEST(semaphore_listings)
{
	struct dlm_client *a = client("sem-a"), *b = client("sem-b");
	struct waiter w = { NULL, "pool", 4, -1, 0 };
	struct out o;
	const char *line;
	json_t *v, *l, *h;

	sem_take(a, "pool", 5, 3);
	sem_take(b, "pool", 5, 1);
	ck_assert_int_eq(dlm_acquire(a, "plain", 0, 0, NULL), 0);
	w.c = client("sem-w");
	pthread_create(&w.th, NULL, sem_waiter_main, &w);
	wait_waiters(a, "pool", 1);

	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "PERMITS"));
	line = line_with(o.out, "pool");
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, "semaphore"));
	ck_assert_msg(strstr(line, " 4/5 ") != NULL, "%s", line);
	ck_assert_ptr_nonnull(strstr(line, "+1 more"));
	line = line_with(o.out, "plain");
	ck_assert_ptr_nonnull(strstr(line, " - "));
	out_free(&o);

	o = ctl("-s", server, "show", "pool", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_msg(strstr(o.out, "capacity  5\n") != NULL, "%s", o.out);
	ck_assert_msg(strstr(o.out, "in use    4\n") != NULL, "%s", o.out);
	/* Holders: PERMITS, then VALUE ("-": none); waiters end in it. */
	line = line_with(o.out, "sem-a");
	ck_assert_msg(strcmp(field_from_end(line, 1), "3") == 0, "%s", line);
	line = line_with(o.out, "sem-b");
	ck_assert_msg(strcmp(field_from_end(line, 1), "1") == 0, "%s", line);
	line = line_with(o.out, "sem-w");
	ck_assert_msg(strcmp(field_from_end(line, 0), "4") == 0, "%s", line);
	out_free(&o);
	/* A mutex's show has no permits. */
	o = ctl("-s", server, "show", "plain", (char *)NULL);
	ck_assert_ptr_null(strstr(o.out, "PERMITS"));
	ck_assert_ptr_null(strstr(o.out, "capacity"));
	out_free(&o);

	o = ctl("-s", server, "--json", "show", "pool", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_str_eq(json_string_value(json_object_get(v, "kind")),
	    "semaphore");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "capacity")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(v, "in_use")), 4);
	h = json_array_get(json_object_get(v, "holders"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(h, "permits")), 3);
	h = json_array_get(json_object_get(v, "waiters"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(h, "permits")), 4);
	json_decref(v);
	out_free(&o);
	o = ctl("-s", server, "--json", "locks", "po", (char *)NULL);
	v = parse_json(&o);
	l = json_array_get(json_object_get(v, "locks"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(l, "in_use")), 4);
	json_decref(v);
	out_free(&o);

	/* Release from one holder: its permits go to the waiter. */
	o = ctl("-s", server, "release", "pool", "--client", "sem-a",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	waiter_end(&w);
	ck_assert_int_eq(w.rc, 0);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

START_TEST(clients_connected_and_lingering)
{
	struct dlm_client *a = client("present");
	struct dlm_options opt;
	struct dlm_client *gone;
	struct out o;
	const char *line;
	json_t *v, *c;
	size_t i;
	int seen = 0;

	dlm_options_init(&opt);
	opt.client = "away";
	opt.linger_ms = 60000;
	opt.label = "nightly backup";
	gone = dlm_connect(server, &opt, NULL);
	ck_assert_ptr_nonnull(gone);
	ck_assert_int_eq(dlm_acquire(gone, "tape", 0, 0, NULL), 0);
	/* A child that dies holding the session's socket would be simpler;
	 * closing the socket without bye is what the fork handler does. */
	{
		pid_t pid = fork();

		if (pid == 0) {
			/* The child's copy is closed by libdlm at fork. */
			_exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	o = ctl("-s", server, "clients", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	line = line_with(o.out, "present");
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_nonnull(strstr(line, "connected"));
	ck_assert_ptr_nonnull(strstr(line, "unix:pid="));
	line = line_with(o.out, "away");
	ck_assert_ptr_nonnull(strstr(line, "nightly backup"));
	out_free(&o);

	o = ctl("-s", server, "--json", "clients", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	json_array_foreach(json_object_get(v, "clients"), i, c) {
		const char *name = json_string_value(json_object_get(c,
		    "name"));

		if (strcmp(name, "away") == 0) {
			ck_assert_int_eq((int)json_integer_value(
			    json_object_get(c, "holds")), 1);
			seen++;
		} else if (strcmp(name, "present") == 0) {
			ck_assert(json_is_true(json_object_get(c,
			    "connected")));
			seen++;
		}
	}
	ck_assert_int_eq(seen, 2);
	json_decref(v);
	out_free(&o);

	/* A session whose connection is gone shows as lingering. */
	{
		struct tc *t = tc_connect(&d);

		tc_call(t, "hello", "client:s linger_ms:i proto:i", "ghost",
		    60000LL, 1LL);
		tc_close(t);
	}
	for (int k = 0; k < 100; k++) {
		o = ctl("-s", server, "clients", "ghost", (char *)NULL);
		line = line_with(o.out, "ghost");
		if (line != NULL && strstr(line, "lingering") != NULL)
			break;
		out_free(&o);
		o.out = NULL;
		o.err = NULL;
		sleep_ms(10);
	}
	ck_assert_ptr_nonnull(o.out);
	ck_assert_ptr_nonnull(strstr(line_with(o.out, "ghost"), "lingering"));
	ck_assert_ptr_null(strstr(o.out, "present"));	/* prefix */
	out_free(&o);
	dlm_close(gone);
	dlm_close(a);
}
END_TEST

/*
 * Names with bytes a terminal must not see and JSON cannot hold: NUL, ESC,
 * a byte that is not UTF-8, a backslash; and the form dlmctl shows each in.
 */
static const char odd_lock[] = "x\xff\x00tail";
#define ODD_LOCK_LEN	(sizeof odd_lock - 1)
static const char odd_lock_shown[] = "x\\xff\\x00tail";
static const char utf8_lock[] = "caf\xc3\xa9\\dir";
static const char utf8_lock_shown[] = "caf\xc3\xa9\\\\dir";
static const char odd_client[] = "odd\\\x1bone";
static const char odd_client_shown[] = "odd\\\\\\x1bone";

/* Over a raw connection: acquire a lock whose name is any n bytes. */
static void
raw_acquire(struct tc *t, const char *name, size_t n)
{
	msgpack_sbuffer sb;
	struct reply *r;
	struct mpw w;
	uint32_t id = t->next_id++;

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, id);
	mpw_str(&w, "acquire");
	mpw_array(&w, 1);
	mpw_map(&w, 1);
	mpw_key(&w, "lock");
	mpw_strn(&w, name, n);
	ck_assert_int_eq(w.err, 0);
	tc_send_raw(t, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	r = tc_wait(t, id, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_msg(r->err == 0, "acquire: %s", reply_errname(r));
}

/* A raw session named odd_client holding odd_lock and utf8_lock. */
static struct tc *
odd_holder(void)
{
	struct tc *t = tc_connect(&d);

	tc_hello(t, odd_client);
	raw_acquire(t, odd_lock, ODD_LOCK_LEN);
	raw_acquire(t, utf8_lock, strlen(utf8_lock));
	return t;
}

/* The test's own reading of dlmctl(1)'s escapes: \xNN and \\. */
static size_t
unescape(const char *s, char *out, size_t cap)
{
	size_t o = 0;
	unsigned int byte;

	for (; *s != '\0' && o < cap; o++) {
		if (s[0] == '\\' && s[1] == '\\') {
			out[o] = '\\';
			s += 2;
		} else if (s[0] == '\\' && s[1] == 'x' &&
		    sscanf(s + 2, "%2x", &byte) == 1) {
			out[o] = (char)byte;
			s += 4;
		} else {
			ck_assert_msg(*s != '\\', "a stray backslash: %s", s);
			out[o] = *s++;
		}
	}
	return o;
}

/* Nothing a terminal would obey: no control byte but newlines. */
static void
assert_terminal_safe(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		ck_assert_msg(*p == '\n' || (*p >= 0x20 && *p != 0x7f),
		    "byte 0x%02x in output: %s", *p, s);
}

START_TEST(odd_names_shown_escaped)
{
	struct tc *t = odd_holder();
	struct out o;
	const char *line;

	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	assert_terminal_safe(o.out);
	line = line_with(o.out, odd_lock_shown);
	ck_assert_msg(line != NULL, "no %s in %s", odd_lock_shown, o.out);
	ck_assert_ptr_nonnull(strstr(line, odd_client_shown));
	ck_assert_ptr_nonnull(line_with(o.out, utf8_lock_shown));
	out_free(&o);

	o = ctl("-s", server, "clients", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	assert_terminal_safe(o.out);
	ck_assert_ptr_nonnull(line_with(o.out, odd_client_shown));
	out_free(&o);

	/* What the table shows is what show takes. */
	o = ctl("-s", server, "show", odd_lock_shown, (char *)NULL);
	ck_assert_msg(o.status == 0, "show: %d %s", o.status, o.err);
	assert_terminal_safe(o.out);
	ck_assert_ptr_nonnull(line_with(o.out, odd_lock_shown));
	ck_assert_ptr_nonnull(line_with(o.out, odd_client_shown));
	out_free(&o);

	/* And the prefixes of locks and clients. */
	o = ctl("-s", server, "locks", "x\\xff", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_int_eq(count_lines(o.out), 2);
	ck_assert_ptr_nonnull(line_with(o.out, odd_lock_shown));
	out_free(&o);
	o = ctl("-s", server, "clients", "odd\\\\", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_int_eq(count_lines(o.out), 2);
	ck_assert_ptr_nonnull(line_with(o.out, odd_client_shown));
	out_free(&o);

	/* A backslash that starts no escape is refused, not guessed at. */
	o = ctl("-s", server, "show", "x\\q", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_int_eq(count_lines(o.err), 1);
	out_free(&o);
	tc_close(t);
}
END_TEST

START_TEST(odd_names_lossless_in_json)
{
	struct tc *t = odd_holder();
	char bytes[300];
	struct out o;
	json_t *v, *l;
	size_t i;
	int seen = 0;

	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	json_array_foreach(json_object_get(v, "locks"), i, l) {
		const char *name = json_string_value(json_object_get(l,
		    "name"));
		const char *who = json_string_value(json_object_get(
		    json_array_get(json_object_get(l, "holders"), 0),
		    "client"));

		size_t n;

		ck_assert_ptr_nonnull(name);
		n = unescape(name, bytes, sizeof bytes);
		if (n == ODD_LOCK_LEN &&
		    memcmp(bytes, odd_lock, ODD_LOCK_LEN) == 0)
			seen++;
		else {
			ck_assert_uint_eq(n, strlen(utf8_lock));
			ck_assert(memcmp(bytes, utf8_lock, n) == 0);
			/* Printable UTF-8 stays as it is. */
			ck_assert_str_eq(name, utf8_lock_shown);
			seen++;
		}
		n = unescape(who, bytes, sizeof bytes);
		ck_assert_uint_eq(n, strlen(odd_client));
		ck_assert(memcmp(bytes, odd_client, n) == 0);
	}
	ck_assert_int_eq(seen, 2);
	json_decref(v);
	out_free(&o);

	o = ctl("-s", server, "--json", "show", odd_lock_shown, (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_str_eq(json_string_value(json_object_get(v, "name")),
	    odd_lock_shown);
	json_decref(v);
	out_free(&o);
	tc_close(t);
}
END_TEST

START_TEST(ping_reports_round_trips)
{
	struct out o = ctl("-s", server, "ping", (char *)NULL);
	json_t *v;

	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "pong from"));
	ck_assert_ptr_nonnull(strstr(o.out, " ms"));
	out_free(&o);
	o = ctl("-s", server, "--json", "ping", "-c", "5", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_int_eq((int)json_array_size(json_object_get(v, "rtt_ms")), 5);
	ck_assert(json_real_value(json_object_get(v, "min_ms")) > 0);
	ck_assert(json_real_value(json_object_get(v, "max_ms")) >=
	    json_real_value(json_object_get(v, "min_ms")));
	json_decref(v);
	out_free(&o);
	o = ctl("-s", server, "ping", "-c", "0", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
}
END_TEST

/* What a holder's on_lost heard. */
struct heard {
	pthread_mutex_t	mu;
	int		n;
	int		reason;
};

static void
heard_lost(struct dlm_client *c, const char *lock, uint64_t token,
    int reason, void *arg)
{
	struct heard *h = arg;

	(void)c;
	(void)lock;
	(void)token;
	pthread_mutex_lock(&h->mu);
	h->n++;
	h->reason = reason;
	pthread_mutex_unlock(&h->mu);
}

static int
heard_count(struct heard *h)
{
	for (int i = 0; i < 300; i++) {
		int n;

		pthread_mutex_lock(&h->mu);
		n = h->n;
		pthread_mutex_unlock(&h->mu);
		if (n > 0)
			return n;
		sleep_ms(10);
	}
	return 0;
}

START_TEST(release_forces_and_tells_the_holder)
{
	struct heard h = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	struct dlm_options opt;
	struct dlm_client *a, *b = client("other");
	struct out o;
	json_t *v;

	dlm_options_init(&opt);
	opt.client = "stuck";
	opt.on_lost = heard_lost;
	opt.on_lost_arg = &h;
	a = dlm_connect(server, &opt, NULL);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(dlm_acquire(a, "wedged", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "shared", DLM_SHARED, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(a, "shared", DLM_SHARED, 0, NULL), 0);

	o = ctl("-s", server, "release", "wedged", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "released 1 hold"));
	out_free(&o);
	ck_assert_int_eq(heard_count(&h), 1);
	ck_assert_int_eq(h.reason, DLM_LOST_FORCED);
	ck_assert_int_eq(dlm_holds(a, "wedged", NULL), 0);

	/* --client takes one holder out of a shared lock. */
	o = ctl("-s", server, "--json", "release", "shared", "--client",
	    "other", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	v = parse_json(&o);
	ck_assert_int_eq((int)json_integer_value(json_object_get(v,
	    "released")), 1);
	json_decref(v);
	out_free(&o);
	ck_assert_int_eq(dlm_holds(a, "shared", NULL), 1);

	/* A client that holds no part of the lock: not found, nothing freed. */
	o = ctl("-s", server, "release", "shared", "--client", "other",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	ck_assert_str_eq(o.out, "");
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "other"));
	out_free(&o);
	o = ctl("-s", server, "--json", "release", "shared", "--client",
	    "other", (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	ck_assert_str_eq(o.out, "");
	out_free(&o);
	ck_assert_int_eq(dlm_holds(a, "shared", NULL), 1);

	o = ctl("-s", server, "release", "no-such-lock", (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	ck_assert_int_eq(count_lines(o.err), 1);
	out_free(&o);
	o = ctl("-s", server, "release", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	dlm_close(a);
	dlm_close(b);
}
END_TEST

/* An operator can act on any name the table shows, as it shows it. */
START_TEST(odd_names_released_as_shown)
{
	struct tc *t = odd_holder();
	struct reply *lost;
	struct out o;

	o = ctl("-s", server, "release", odd_lock_shown, "--client",
	    odd_client_shown, (char *)NULL);
	ck_assert_msg(o.status == 0, "release: %d %s", o.status, o.err);
	ck_assert_ptr_nonnull(strstr(o.out, odd_lock_shown));
	ck_assert_ptr_nonnull(strstr(o.out, "released 1 hold"));
	out_free(&o);
	lost = tc_wait_notify(t, 5000);
	ck_assert_ptr_nonnull(lost);
	ck_assert_str_eq(lost->method, "lost");
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_null(strstr(o.out, "tail"));
	out_free(&o);

	o = ctl("-s", server, "reset", odd_client_shown, (char *)NULL);
	ck_assert_msg(o.status == 0, "reset: %d %s", o.status, o.err);
	ck_assert_ptr_nonnull(strstr(o.out, odd_client_shown));
	out_free(&o);
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_nonnull(strstr(o.out, "\"locks\": []"));
	out_free(&o);
	tc_close(t);
}
END_TEST

START_TEST(reset_one_and_all)
{
	struct heard h = { PTHREAD_MUTEX_INITIALIZER, 0, 0 };
	struct dlm_options opt;
	struct dlm_client *a, *b = client("b"), *c = client("c");
	struct out o;

	dlm_options_init(&opt);
	opt.client = "a";
	opt.on_lost = heard_lost;
	opt.on_lost_arg = &h;
	a = dlm_connect(server, &opt, NULL);
	ck_assert_int_eq(dlm_acquire(a, "x", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(b, "y", 0, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(c, "z", 0, 0, NULL), 0);

	o = ctl("-s", server, "reset", "a", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "released 1 hold"));
	out_free(&o);
	ck_assert_int_eq(heard_count(&h), 1);
	ck_assert_int_eq(h.reason, DLM_LOST_RESET);

	/* --all refuses without --yes, and changes nothing. */
	o = ctl("-s", server, "reset", "--all", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_ptr_nonnull(strstr(o.err, "--yes"));
	out_free(&o);
	ck_assert_int_eq(dlm_holds(b, "y", NULL), 1);

	o = ctl("-s", server, "--json", "reset", "--all", "--yes", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	{
		json_t *v = parse_json(&o);

		ck_assert_int_eq((int)json_integer_value(json_object_get(v,
		    "released")), 2);
		json_decref(v);
	}
	out_free(&o);
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_nonnull(strstr(o.out, "\"locks\": []"));
	out_free(&o);

	o = ctl("-s", server, "reset", "nobody", (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	out_free(&o);
	dlm_close(a);
	dlm_close(b);
	dlm_close(c);
}
END_TEST

/* Over TCP only the admin token makes an admin; never on the command line. */
/*
 * With access rules, a refusal is one line naming the identity, the right,
 * the lock and the rule (dlmctl(1), EXIT STATUS), exit 4, for each kind
 * of command: run (lock), show (view), release (admin).
 */
START_TEST(rules_refusals_in_one_line)
{
	char acl[400], tokens[400], ci[400];
	static const struct {
		const char	*argv[6];
		const char	*says;
	} refused[] = {
		{ { "run", "prod/db", "--", "true" },
		    "permission denied: token:ci has no lock right on lock "
		    "'prod/db': no rule in " },
		{ { "show", "prod/db" },
		    "permission denied: token:ci has no view right on lock "
		    "'prod/db': no rule in " },
		{ { "release", "ci/job" },
		    "permission denied: token:ci has no admin right on lock "
		    "'ci/job': denied by rule " },
	};
	struct out o;

	snprintf(acl, sizeof acl, "/tmp/dlmctl-acl.%d", getpid());
	snprintf(tokens, sizeof tokens, "/tmp/dlmctl-tokens.%d", getpid());
	snprintf(ci, sizeof ci, "/tmp/dlmctl-ci.%d", getpid());
	write_file(acl, "deny token:ci admin *\nallow token:ci all ci/\n");
	write_file(tokens, "ci ci-secret-3141\n");
	write_file(ci, "ci-secret-3141\n");
	clean_dir(d.dir);
	dlmd_stop_clean(&d);
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	snprintf(tcp_server, sizeof tcp_server, "tcp:127.0.0.1:%d", d.port);

	o = ctl("-s", tcp_server, "--token-file", ci, "run", "ci/job", "--",
	    "true", (char *)NULL);
	ck_assert_msg(o.status == 0, "%s", o.err);
	out_free(&o);
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		const char *const *a = refused[i].argv;

		o = ctl("-s", tcp_server, "--token-file", ci, a[0], a[1], a[2],
		    a[3], (char *)NULL);
		ck_assert_msg(o.status == 4, "%s: exit %d: %s", a[0], o.status,
		    o.err);
		ck_assert_msg(count_lines(o.err) == 1 &&
		    strstr(o.err, refused[i].says) != NULL &&
		    strstr(o.err, acl) != NULL, "%s: %s", a[0], o.err);
		ck_assert_ptr_null(strstr(o.err, "ci-secret"));
		ck_assert_ptr_null(strstr(o.out, "ci-secret"));
		out_free(&o);
	}
	unlink(acl);
	unlink(tokens);
	unlink(ci);
}
END_TEST

START_TEST(tcp_admin_token)
{
	struct dlm_client *a = client("held");
	char wrong[400];
	struct out o;

	ck_assert_int_eq(dlm_acquire(a, "t", 0, 0, NULL), 0);
	o = ctl("-s", tcp_server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);		/* inspecting is open */
	out_free(&o);
	o = ctl("-s", tcp_server, "release", "t", (char *)NULL);
	ck_assert_int_eq(o.status, 4);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "admin"));
	out_free(&o);

	snprintf(wrong, sizeof wrong, "%s/wrong-token", d.dir);
	write_file(wrong, "guess\n");
	o = ctl("-s", tcp_server, "--token-file", wrong, "release", "t", (char *)NULL);
	ck_assert_int_eq(o.status, 4);
	ck_assert_ptr_null(strstr(o.err, "guess"));
	out_free(&o);

	o = ctl("-s", tcp_server, "--token-file", admin_token_file,
	    "release", "t", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_null(strstr(o.out, "s3cret"));
	ck_assert_ptr_null(strstr(o.err, "s3cret"));
	out_free(&o);

	/* The lost notice reaches a's thread soon after; then take it again. */
	for (int i = 0; i < 300 && dlm_holds(a, "t", NULL); i++)
		sleep_ms(10);
	ck_assert_int_eq(dlm_acquire(a, "t", 0, 0, NULL), 0);
	setenv("DLM_TOKEN_FILE", admin_token_file, 1);
	setenv("DLM_SERVER", tcp_server, 1);
	o = ctl("release", "t", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	unsetenv("DLM_TOKEN_FILE");
	unsetenv("DLM_SERVER");

	o = ctl("-s", tcp_server, "--token-file", "/nonexistent/token",
	    "status", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	{
		char log[8192];
		int fd = open(d.log, O_RDONLY);
		ssize_t n = read(fd, log, sizeof log - 1);

		close(fd);
		log[n > 0 ? n : 0] = '\0';
		ck_assert_ptr_null(strstr(log, "s3cret"));
	}
	dlm_close(a);
}
END_TEST

START_TEST(errors_and_usage)
{
	char path[400];
	struct out o;

	snprintf(path, sizeof path, "unix:%s/nothing-here.sock", d.dir);
	o = ctl("-s", path, "status", (char *)NULL);
	ck_assert_int_eq(o.status, 3);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "cannot reach dlmd"));
	ck_assert_ptr_nonnull(strstr(o.err, "nothing-here.sock"));
	/* And why, in the system's words. */
	ck_assert_ptr_nonnull(strstr(o.err, "No such file"));
	out_free(&o);

	o = ctl("-s", "carrier-pigeon:x", "status", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_int_eq(count_lines(o.err), 1);
	out_free(&o);

	o = ctl("-s", server, "frobnicate", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_ptr_nonnull(strstr(o.err, "frobnicate"));
	out_free(&o);
	o = ctl("-s", server, "show", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "status", "extra", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl((char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("--help", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "run LOCK"));
	out_free(&o);
	o = ctl("--version", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "dlmctl "));
	out_free(&o);
	o = ctl("-s", server, "run", "lock-only", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "run", "l", "--timeout", "soon", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
}
END_TEST

/* A non-blocking TCP listener on 127.0.0.1; its port in *port. */
static int
listen_loopback(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* dlmctl ping with this address (from -s, or $DLM_SERVER): refused. */
static void
assert_bad_address(const char *addr, bool from_env, const char *why)
{
	struct bg b = { 0, "", "" };
	char *err;
	int st;

	if (from_env) {
		setenv("DLM_SERVER", addr, 1);
		bg_start(&b, "badaddr", "ping", (char *)NULL);
		unsetenv("DLM_SERVER");
	} else
		bg_start(&b, "badaddr", "-s", addr, "ping", (char *)NULL);
	st = bg_wait(&b, 5000);
	if (st < 0) {
		kill(b.pid, SIGKILL);
		waitpid(b.pid, NULL, 0);
	}
	ck_assert_msg(st == 2, "%s: exit %d, not 2", addr, st);
	err = bg_err(&b);
	ck_assert_msg(count_lines(err) == 1, "%s: %s", addr, err);
	ck_assert_msg(strncmp(err, "dlmctl: ", 8) == 0, "%s: %s", addr, err);
	ck_assert_msg(strstr(err, addr) != NULL, "%s: %s", addr, err);
	ck_assert_msg(strstr(err, why) != NULL, "%s: no '%s' in %s", addr,
	    why, err);
	if (from_env)
		ck_assert_msg(strstr(err, "DLM_SERVER") != NULL, "%s", err);
	free(err);
}

/*
 * A port that does not fit 16 bits once wrapped around to another port:
 * every address is checked whole before anything is dialled.
 */
START_TEST(bad_addresses_are_refused_before_connecting)
{
	char wrapped[64];
	int port, fd = listen_loopback(&port);

	snprintf(wrapped, sizeof wrapped, "tcp:127.0.0.1:%d", port + 65536);
	assert_bad_address(wrapped, false, "out of range");
	assert_bad_address(wrapped, true, "out of range");
	ck_assert_msg(accept(fd, NULL, NULL) < 0 && errno == EAGAIN,
	    "something connected to port %d", port);
	close(fd);

	assert_bad_address("tcp:127.0.0.1:99999", false, "out of range");
	assert_bad_address("tcp:127.0.0.1:0", false, "port 0");
	assert_bad_address("tcp:127.0.0.1:", false, "port is missing");
	assert_bad_address("tcp:127.0.0.1:http", false, "not a decimal");
	assert_bad_address("tcp:127.0.0.1:-1", false, "not a decimal");
	assert_bad_address("tcp:[::1:7411", false, "without its ']'");
	assert_bad_address("tcp:[::1]7411", false, "colon after ']'");
	assert_bad_address("tcp:::1:7411", false, "brackets");
	assert_bad_address("unix:", false, "path is missing");
}
END_TEST

/*
 * The server going away between two commands: the one that cannot reach
 * it says so, with the documented status.
 */
START_TEST(server_down_mid_use)
{
	struct out o = ctl("-s", server, "status", (char *)NULL);

	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 3);
	ck_assert_int_eq(count_lines(o.err), 1);
	out_free(&o);
	restart_dlmd();	/* the fixture wants a live daemon to stop */
}
END_TEST

START_TEST(run_exit_status_and_token)
{
	char envfile[400], script[2000];
	struct out o;
	FILE *f;
	unsigned long long tok = 0;
	char lockname[64] = "";

	snprintf(envfile, sizeof envfile, "%s/env", d.dir);
	snprintf(script, sizeof script,
	    "echo \"$DLM_LOCK_TOKEN $DLM_LOCK\" > %s; exit 7", envfile);
	o = ctl("-s", server, "run", "deploy", "--", "sh", "-c", script, (char *)NULL);
	ck_assert_int_eq(o.status, 7);
	out_free(&o);
	f = fopen(envfile, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%llu %63s", &tok, lockname), 2);
	fclose(f);
	ck_assert_uint_gt(tok, 0);
	ck_assert_str_eq(lockname, "deploy");

	/* Released after: the lock is free. */
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_nonnull(strstr(o.out, "\"locks\": []"));
	out_free(&o);

	/* While COMMAND runs, the lock shows held under its token. */
	snprintf(script, sizeof script,
	    "echo $DLM_LOCK_TOKEN > %s/tok; %s -s %s --json show deploy > "
	    "%s/during", d.dir, dlmctl_path(), server, d.dir);
	o = ctl("-s", server, "run", "deploy", "--shared", "--", "sh", "-c",
	    script, (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	{
		char path[500];
		json_t *v, *h;
		json_error_t e;

		snprintf(path, sizeof path, "%s/tok", d.dir);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		ck_assert_int_eq(fscanf(f, "%llu", &tok), 1);
		fclose(f);
		snprintf(path, sizeof path, "%s/during", d.dir);
		v = json_load_file(path, 0, &e);
		ck_assert_ptr_nonnull(v);
		ck_assert_str_eq(json_string_value(json_object_get(v, "mode")),
		    "shared");
		h = json_array_get(json_object_get(v, "holders"), 0);
		ck_assert_uint_eq((uint64_t)json_integer_value(
		    json_object_get(h, "token")), tok);
		json_decref(v);
	}

	/* Options after LOCK, and no "--" needed before a plain COMMAND. */
	o = ctl("-s", server, "run", "x", "--rlock", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);

	/* Killed by a signal: 128 + its number, as a shell says. */
	o = ctl("-s", server, "run", "x", "--", "sh", "-c", "kill -9 $$",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 128 + SIGKILL);
	out_free(&o);

	o = ctl("-s", server, "run", "x", "--", "/nonexistent/cmd", (char *)NULL);
	ck_assert_int_eq(o.status, 127);
	ck_assert_ptr_nonnull(strstr(o.err, "/nonexistent/cmd"));
	out_free(&o);
	o = ctl("-s", server, "run", "x", "--", d.dir, (char *)NULL);
	ck_assert_int_eq(o.status, 126);
	out_free(&o);
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_nonnull(strstr(o.out, "\"locks\": []"));
	out_free(&o);
}
END_TEST

/*
 * run takes the escaped form too, and hands COMMAND the name's bytes;
 * a NUL it cannot hold is a usage error, not a different lock.
 */
START_TEST(run_takes_escaped_names)
{
	static const char raw[] = "r\xfe\x01un\\";
	char script[2000], path[500], got[64];
	struct out o;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "%s/dlm_lock", d.dir);
	snprintf(script, sizeof script, "printf %%s \"$DLM_LOCK\" > %s; "
	    "%s -s %s locks > %s/during", path, dlmctl_path(), server, d.dir);
	o = ctl("-s", server, "run", "r\\xfe\\x01un\\\\", "--", "sh", "-c",
	    script, (char *)NULL);
	ck_assert_msg(o.status == 0, "run: %d %s", o.status, o.err);
	out_free(&o);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	n = read(fd, got, sizeof got);
	close(fd);
	ck_assert_int_eq((int)n, (int)strlen(raw));
	ck_assert(memcmp(got, raw, strlen(raw)) == 0);
	snprintf(path, sizeof path, "%s/during", d.dir);
	fd = open(path, O_RDONLY);
	{
		char *during = slurp(fd);

		ck_assert_msg(line_with(during, "r\\xfe\\x01un\\\\") != NULL,
		    "%s", during);
		free(during);
	}
	close(fd);

	o = ctl("-s", server, "run", "a\\x00b", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "NUL"));
	out_free(&o);
}
END_TEST

START_TEST(run_not_acquired_in_time)
{
	struct dlm_client *a = client("owner");
	struct out o;
	uint64_t t0;

	ck_assert_int_eq(dlm_acquire(a, "busy", 0, 0, NULL), 0);
	t0 = mono_ms();
	o = ctl("-s", server, "run", "busy", "--timeout", "200", "--",
	    "sh", "-c", "exit 0", (char *)NULL);
	ck_assert_int_eq(o.status, 75);
	ck_assert_uint_ge(mono_ms() - t0, 200);
	ck_assert_ptr_nonnull(strstr(o.err, "busy"));
	out_free(&o);
	o = ctl("-s", server, "run", "busy", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 75);
	/* The server's sentence names the holder. */
	ck_assert_msg(strstr(o.err, "owner") != NULL, "%s", o.err);
	ck_assert_int_eq(count_lines(o.err), 1);
	out_free(&o);
	o = ctl("-s", server, "run", "busy", "--timeout", "0",
	    "--timeout-status", "9", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 9);
	out_free(&o);
	dlm_close(a);
}
END_TEST

/* A lock held as the other kind: refused at once, saying which kind. */
START_TEST(run_kind_mismatch_says_which)
{
	struct dlm_client *a = client("kinds");
	struct out o;

	ck_assert_int_eq(dlm_acquire(a, "re", DLM_RLOCK, 0, NULL), 0);
	ck_assert_int_eq(dlm_acquire(a, "mu", 0, 0, NULL), 0);
	o = ctl("-s", server, "run", "re", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_msg(strstr(o.err, "held as an rlock") != NULL, "%s", o.err);
	out_free(&o);
	o = ctl("-s", server, "run", "mu", "--rlock", "--timeout", "0", "--",
	    "true", (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_msg(strstr(o.err, "held as a mutex") != NULL, "%s", o.err);
	out_free(&o);
	dlm_close(a);
}
END_TEST

/* Several runs on one lock at once: one at a time, in token order. */
START_TEST(runs_never_overlap)
{
	enum { N = 6 };
	struct bg b[N] = { { 0, "", "" } };
	char script[1000], tag[16], path[500];
	unsigned long long prev = 0, tok;
	int n = 0;
	FILE *f;

	snprintf(script, sizeof script,
	    "mkdir %s/inside || exit 99; echo $DLM_LOCK_TOKEN >> %s/tokens; "
	    "sleep 0.1; rmdir %s/inside", d.dir, d.dir, d.dir);
	for (int i = 0; i < N; i++) {
		snprintf(tag, sizeof tag, "r%d", i);
		bg_start(&b[i], tag, "-s", server, "run", "one-at-a-time", "--",
		    "sh", "-c", script, (char *)NULL);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(bg_wait(&b[i], 20000), 0);
	snprintf(path, sizeof path, "%s/tokens", d.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	while (fscanf(f, "%llu", &tok) == 1) {
		ck_assert_uint_gt(tok, prev);
		prev = tok;
		n++;
	}
	fclose(f);
	ck_assert_int_eq(n, N);
}
END_TEST

/*
 * Three `run --semaphore 2` at once: never more than two inside, and two
 * at once indeed. Each command makes a file of its own in a directory
 * while it holds its permit, and writes how many it finds there: on
 * arrival (a third inside would see 3), and once it has waited for a
 * second to arrive (up to 3 s; the third never sees one).
 */
START_TEST(run_semaphore_at_most_n)
{
	enum { N = 3 };
	struct bg b[N] = { { 0, "", "" } };
	char script[1200], tag[16], path[500];
	int n = 0, most = 0, arrivals = 0, c;
	FILE *f;

	snprintf(script, sizeof script,
	    "d=%s/inside; mkdir -p $d; : > $d/$$; "
	    "echo arrive $(ls $d | wc -l) >> %s/counts; i=0; "
	    "while [ $(ls $d | wc -l) -lt 2 ] && [ $i -lt 30 ]; do "
	    "sleep 0.1; i=$((i+1)); done; "
	    "echo stay $(ls $d | wc -l) >> %s/counts; rm $d/$$",
	    d.dir, d.dir, d.dir);
	for (int i = 0; i < N; i++) {
		snprintf(tag, sizeof tag, "s%d", i);
		bg_start(&b[i], tag, "-s", server, "run", "--semaphore", "2",
		    "slots", "--", "sh", "-c", script, (char *)NULL);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(bg_wait(&b[i], 30000), 0);
	snprintf(path, sizeof path, "%s/counts", d.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	{
		char what[16];

		while (fscanf(f, "%15s %d", what, &c) == 2) {
			ck_assert_msg(c >= 1 && c <= 2, "%s with %d inside",
			    what, c);
			arrivals += strcmp(what, "arrive") == 0;
			if (c > most)
				most = c;
			n++;
		}
	}
	fclose(f);
	ck_assert_int_eq(n, 2 * N);
	ck_assert_int_eq(arrivals, N);
	ck_assert_int_eq(most, 2);
}
END_TEST

/* --semaphore's checks, and a name held as another kind or capacity. */
START_TEST(run_semaphore_usage)
{
	struct dlm_client *a = client("sem-kinds");
	struct out o;

	o = ctl("-s", server, "run", "--semaphore", "0", "s", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "run", "--semaphore", "2", "--shared", "s", "--",
	    "true", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_ptr_nonnull(strstr(o.err, "--shared"));
	out_free(&o);
	o = ctl("-s", server, "run", "--semaphore", "2", "--permits", "3",
	    "s", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "run", "--permits", "1", "s", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	/* Two permits of two: a second run cannot get in at once. */
	sem_take(a, "s2", 2, 1);
	o = ctl("-s", server, "run", "--semaphore", "2", "--permits", "2",
	    "--timeout", "0", "s2", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 75);
	ck_assert_msg(strstr(o.err, "1 of its 2 permits") != NULL, "%s",
	    o.err);
	out_free(&o);
	o = ctl("-s", server, "run", "--semaphore", "3", "--timeout", "0",
	    "s2", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_msg(strstr(o.err, "capacity 2") != NULL, "%s", o.err);
	out_free(&o);
	ck_assert_int_eq(dlm_acquire(a, "mu", 0, 0, NULL), 0);
	o = ctl("-s", server, "run", "--semaphore", "3", "--timeout", "0",
	    "mu", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_msg(strstr(o.err, "mutex") != NULL, "%s", o.err);
	out_free(&o);
	o = ctl("-s", server, "run", "mu", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 75);
	out_free(&o);
	o = ctl("-s", server, "run", "s2", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_msg(strstr(o.err, "semaphore of capacity 2") != NULL, "%s",
	    o.err);
	out_free(&o);
	dlm_close(a);
}
END_TEST

/* A pid written by the command into path, once it is there. */
static pid_t
read_pid(const char *path)
{
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(path, "r");
		int pid = 0;

		if (f != NULL) {
			int got = fscanf(f, "%d", &pid);

			fclose(f);
			if (got == 1 && pid > 0)
				return pid;
		}
		sleep_ms(10);
	}
	ck_abort_msg("no pid in %s", path);
	return -1;
}

static bool
gone_within(pid_t pid, int ms)
{
	uint64_t end = mono_ms() + (uint64_t)ms;

	while (mono_ms() < end) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		sleep_ms(10);
	}
	return false;
}

START_TEST(run_forwards_signals_to_the_group)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGQUIT, SIGHUP };
	char script[1000], pidfile[400], got[400], tag[16];

	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		struct bg b = { 0, "", "" };
		pid_t grandchild;
		char *text;
		int fd;

		snprintf(pidfile, sizeof pidfile, "%s/pid%zu", d.dir, i);
		snprintf(got, sizeof got, "%s/got%zu", d.dir, i);
		/*
		 * sh records the signal and exits 42; the sleep it started
		 * is in the same group and dies of the signal too.
		 */
		snprintf(script, sizeof script,
		    "trap 'echo got > %s; exit 42' INT TERM QUIT HUP; "
		    "sleep 60 & echo $! > %s; wait; wait", got, pidfile);
		snprintf(tag, sizeof tag, "sig%zu", i);
		bg_start(&b, tag, "-s", server, "run", "sig", "--", "sh", "-c",
		    script, (char *)NULL);
		grandchild = read_pid(pidfile);
		ck_assert_int_eq(kill(b.pid, sigs[i]), 0);
		ck_assert_int_eq(bg_wait(&b, 10000), 42);
		fd = open(got, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		text = slurp(fd);
		close(fd);
		ck_assert_str_eq(text, "got\n");
		free(text);
		ck_assert(gone_within(grandchild, 5000));
	}
}
END_TEST

/*
 * A forced release while COMMAND runs: the whole group gets SIGTERM at
 * once and SIGKILL after --kill-after, even when it ignores SIGTERM; the
 * waiting run gets the lock.
 */
START_TEST(forced_release_kills_the_group_in_time)
{
	char script[1000], pidfile[400];
	struct bg b = { 0, "", "" }, next = { 0, "", "" };
	pid_t grandchild;
	struct out o;
	uint64_t t0, took;
	char *err;

	snprintf(pidfile, sizeof pidfile, "%s/pid", d.dir);
	snprintf(script, sizeof script,
	    "trap '' TERM; sleep 60 & echo $! > %s; wait; wait", pidfile);
	bg_start(&b, "victim", "-s", server, "run", "stuck", "--kill-after",
	    "300", "--", "sh", "-c", script, (char *)NULL);
	grandchild = read_pid(pidfile);
	bg_start(&next, "next", "-s", server, "run", "stuck", "--", "true",
	    (char *)NULL);
	wait_waiters(NULL, "stuck", 1);

	t0 = mono_ms();
	o = ctl("-s", server, "release", "stuck", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	ck_assert(gone_within(grandchild, 10000));
	took = mono_ms() - t0;
	ck_assert_int_eq(bg_wait(&b, 10000), 76);
	/* It ignored SIGTERM, so SIGKILL did it: not before --kill-after. */
	ck_assert_uint_ge(took, 290);
	err = bg_err(&b);
	ck_assert_ptr_nonnull(strstr(err, "force-released"));
	free(err);
	ck_assert_int_eq(bg_wait(&next, 10000), 0);
}
END_TEST

/*
 * dlmctl run holding lock with a COMMAND that records its pid and sleeps;
 * the pid of COMMAND once it runs. lease (may be NULL) is --lease.
 */
static pid_t
run_sleeper(struct bg *b, const char *tag, const char *lock,
    const char *lease)
{
	char script[1000], pidfile[400];

	snprintf(pidfile, sizeof pidfile, "%s/%s.pid", d.dir, tag);
	snprintf(script, sizeof script, "echo $$ > %s; exec sleep 60",
	    pidfile);
	if (lease != NULL)
		bg_start(b, tag, "-s", server, "run", lock, "--lease", lease,
		    "--kill-after", "200", "--", "sh", "-c", script,
		    (char *)NULL);
	else
		bg_start(b, tag, "-s", server, "run", lock, "--", "sh", "-c",
		    script, (char *)NULL);
	return read_pid(pidfile);
}

/* The lease runs out while dlmctl cannot renew it (stopped). */
START_TEST(expired_lease_ends_the_command)
{
	struct bg b = { 0, "", "" };
	pid_t child;
	char *err;

	child = run_sleeper(&b, "paused", "leased", "300");
	kill(b.pid, SIGSTOP);
	sleep_ms(1000);
	kill(b.pid, SIGCONT);
	ck_assert_int_eq(bg_wait(&b, 10000), 76);
	ck_assert(gone_within(child, 5000));
	err = bg_err(&b);
	ck_assert_msg(strstr(err, "lease") != NULL ||
	    strstr(err, "connection") != NULL, "%s", err);
	free(err);
}
END_TEST

/* dlmd dies: the hold is gone with the connection; so is the command. */
START_TEST(lost_server_ends_the_command)
{
	struct bg b = { 0, "", "" };
	pid_t child;

	child = run_sleeper(&b, "orphan", "l", NULL);
	kill(d.pid, SIGKILL);
	waitpid(d.pid, NULL, 0);
	d.pid = 0;
	ck_assert_int_eq(bg_wait(&b, 10000), 76);
	ck_assert(gone_within(child, 5000));
	restart_dlmd();
}
END_TEST

/* dlmctl itself killed: its session ends, and COMMAND must not run on. */
START_TEST(killed_dlmctl_takes_the_command_along)
{
	struct bg b = { 0, "", "" };
	pid_t child;

	child = run_sleeper(&b, "k", "l", NULL);
	kill(b.pid, SIGKILL);
	ck_assert_int_eq(bg_wait(&b, 5000), 128 + SIGKILL);
	ck_assert(gone_within(child, 5000));
}
END_TEST

/* COMMAND exits leaving a process in its group: not left running unlocked. */
START_TEST(leftovers_are_stopped_before_release)
{
	char script[1000], pidfile[400];
	struct out o;
	pid_t left;

	snprintf(pidfile, sizeof pidfile, "%s/pid", d.dir);
	snprintf(script, sizeof script,
	    "sleep 60 & echo $! > %s; exit 3", pidfile);
	o = ctl("-s", server, "run", "l", "--kill-after", "500", "--", "sh",
	    "-c", script, (char *)NULL);
	ck_assert_int_eq(o.status, 3);
	ck_assert_ptr_nonnull(strstr(o.err, "left processes"));
	out_free(&o);
	left = read_pid(pidfile);
	ck_assert(gone_within(left, 1000));
}
END_TEST

/*
 * An init that reaps orphans late (some container inits do): this test
 * process stands in for it, adopting what dlmctl's command leaves behind
 * and never reaping it. A leftover that dlmctl stopped must not then hold
 * the lock as an unreaped zombie that kill(-pgid, 0) still finds.
 */
static void
adopt_orphans_and_never_reap(void)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
}

START_TEST(leftovers_are_reaped_and_the_lock_freed_at_once)
{
	char script[1000], pidfile[400];
	struct out o;
	uint64_t t0, took;
	pid_t left;

	adopt_orphans_and_never_reap();
	snprintf(pidfile, sizeof pidfile, "%s/pid", d.dir);
	snprintf(script, sizeof script, "sleep 20 & echo $! > %s; exit 0",
	    pidfile);
	t0 = mono_ms();
	o = ctl("-s", server, "run", "prompt", "--", "sh", "-c", script,
	    (char *)NULL);
	took = mono_ms() - t0;
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	ck_assert_msg(took < 1500, "run took %llu ms",
	    (unsigned long long)took);
	left = read_pid(pidfile);
	/* Gone, not a zombie: dlmctl reaped it before it let go. */
	ck_assert_msg(kill(left, 0) != 0 && errno == ESRCH,
	    "leftover %d still there", (int)left);
	o = ctl("-s", server, "--json", "locks", (char *)NULL);
	ck_assert_ptr_nonnull(strstr(o.out, "\"locks\": []"));
	out_free(&o);
}
END_TEST

/*
 * Runs whose commands leave a process behind that cleans up after itself
 * when stopped: each run ends only after that cleanup, so the next one
 * never finds the last one's work unfinished; and without delay.
 */
START_TEST(runs_with_leftovers_never_overlap)
{
	enum { N = 4 };
	struct bg b[N] = { { 0, "", "" } };
	char script[2000], tag[16];
	uint64_t t0, took;

	adopt_orphans_and_never_reap();
	snprintf(script, sizeof script,
	    "mkdir %s/inside || exit 99; "
	    "(trap 'sleep 0.05; rmdir %s/inside; exit 0' TERM; "
	    "touch %s/ready.$$; sleep 30 & wait) & "
	    "while [ ! -e %s/ready.$$ ]; do sleep 0.01; done; exit 0",
	    d.dir, d.dir, d.dir, d.dir);
	t0 = mono_ms();
	for (int i = 0; i < N; i++) {
		snprintf(tag, sizeof tag, "lo%d", i);
		bg_start(&b[i], tag, "-s", server, "run", "tidy", "--kill-after",
		    "3000", "--", "sh", "-c", script, (char *)NULL);
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(bg_wait(&b[i], 30000), 0);
	took = mono_ms() - t0;
	ck_assert_msg(took < 4000, "%d runs took %llu ms", N,
	    (unsigned long long)took);
}
END_TEST

/*
 * cluster against a single dlmd: one clear line and exit 5, JSON or not;
 * status through a list walks past a dead address, and refuses a bad one.
 */
START_TEST(cluster_on_a_single_dlmd)
{
	char list[900];
	struct out o = ctl("-s", server, "cluster", (char *)NULL);

	ck_assert_int_eq(o.status, 5);
	ck_assert_str_eq(o.out, "");
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "not a member of a cluster"));
	out_free(&o);
	o = ctl("-s", server, "--json", "cluster", (char *)NULL);
	ck_assert_int_eq(o.status, 5);
	ck_assert_str_eq(o.out, "");
	out_free(&o);
	o = ctl("-s", server, "cluster", "extra", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);

	/* A single dlmd's status has no cluster lines. */
	o = ctl("-s", server, "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_null(line_with(o.out, "role"));
	ck_assert_ptr_null(line_with(o.out, "epoch"));
	out_free(&o);

	snprintf(list, sizeof list, "unix:%s/nothing-here.sock,%s", d.dir,
	    server);
	o = ctl("-s", list, "status", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(line_with(o.out, "address"), server));
	out_free(&o);
	snprintf(list, sizeof list, "unix:%s/a.sock,unix:%s/b.sock", d.dir,
	    d.dir);
	o = ctl("-s", list, "cluster", (char *)NULL);
	ck_assert_int_eq(o.status, 3);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "a.sock"));
	ck_assert_ptr_nonnull(strstr(o.err, "b.sock"));
	out_free(&o);
	/* Every item checked first, whichever command. */
	snprintf(list, sizeof list, "%s,tcp:127.0.0.1:99999", server);
	o = ctl("-s", list, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_int_eq(count_lines(o.err), 1);
	ck_assert_ptr_nonnull(strstr(o.err, "tcp:127.0.0.1:99999"));
	ck_assert_ptr_nonnull(strstr(o.err, "out of range"));
	out_free(&o);
	setenv("DLM_SERVER", list, 1);
	o = ctl("cluster", (char *)NULL);
	unsetenv("DLM_SERVER");
	ck_assert_int_eq(o.status, 2);
	ck_assert_ptr_nonnull(strstr(o.err, "DLM_SERVER"));
	out_free(&o);
}
END_TEST

/* What a background dlmctl has printed so far. */
static char *
bg_out(struct bg *b)
{
	int fd = open(b->out_path, O_RDONLY);
	char *s = slurp(fd);

	close(fd);
	return s;
}

/* Wait up to 10 s for b's output to have n lines; that output. */
static char *
bg_lines(struct bg *b, int n)
{
	char *s = NULL;

	for (int i = 0; i < 1000; i++) {
		free(s);
		s = bg_out(b);
		if (count_lines(s) >= n)
			return s;
		sleep_ms(10);
	}
	ck_abort_msg("dlmctl printed %d lines, not %d: %s", count_lines(s), n,
	    s);
	return s;
}

/* The n-th line (from 0) of s, copied (static). */
static const char *
nth_line(const char *s, int n)
{
	static char line[1024];
	const char *e;

	for (; n > 0 && s != NULL; n--)
		if ((s = strchr(s, '\n')) != NULL)
			s++;
	ck_assert_ptr_nonnull(s);
	e = strchr(s, '\n');
	snprintf(line, sizeof line, "%.*s", (int)(e != NULL ? e - s :
	    (long)strlen(s)), s);
	return line;
}

/* watch streams a line per change until interrupted, and exits 0. */
START_TEST(watch_streams_changes)
{
	struct bg w = { 0, "", "" }, j = { 0, "", "" };
	struct dlm_client *c = client("streamer");
	struct dlm_acquire_opts o;
	json_t *v, *h;
	json_error_t e;
	char *out;
	uint64_t t;

	bg_start(&w, "watch", "-s", server, "watch", "job", (char *)NULL);
	bg_start(&j, "watchj", "-s", server, "--json", "watch", "job",
	    (char *)NULL);
	free(bg_lines(&w, 1));
	free(bg_lines(&j, 1));
	dlm_acquire_opts_init(&o);
	o.value = "10.0.0.7:443";
	o.value_len = strlen(o.value);
	ck_assert_int_eq(dlm_acquire_ex(c, "job", &o, &t), 0);
	free(bg_lines(&w, 2));
	ck_assert_int_eq(dlm_release(c, "job"), 0);
	out = bg_lines(&w, 3);
	ck_assert_ptr_nonnull(strstr(nth_line(out, 0), "job: free, 0 waiting"));
	ck_assert_ptr_nonnull(strstr(nth_line(out, 1), "job: held by streamer "
	    "(token "));
	ck_assert_ptr_nonnull(strstr(nth_line(out, 1), "exclusive, value "
	    "10.0.0.7:443)"));
	ck_assert_ptr_nonnull(strstr(nth_line(out, 2), "job: free"));
	free(out);
	/* JSON: one object a line, the protocol's shape. */
	out = bg_lines(&j, 3);
	v = json_loads(nth_line(out, 1), 0, &e);
	ck_assert_msg(v != NULL, "not JSON: %s", nth_line(out, 1));
	ck_assert_str_eq(json_string_value(json_object_get(v, "lock")), "job");
	h = json_array_get(json_object_get(v, "holders"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(h, "client")),
	    "streamer");
	ck_assert_uint_eq(json_integer_value(json_object_get(h, "token")), t);
	ck_assert_str_eq(json_string_value(json_object_get(h, "mode")),
	    "exclusive");
	ck_assert_str_eq(json_string_value(json_object_get(h, "value")),
	    "10.0.0.7:443");
	ck_assert_int_eq(json_integer_value(json_object_get(v, "waiters")), 0);
	json_decref(v);
	v = json_loads(nth_line(out, 2), 0, &e);
	ck_assert_uint_eq(json_array_size(json_object_get(v, "holders")), 0);
	json_decref(v);
	free(out);
	/* Interrupted: the normal end. */
	kill(w.pid, SIGINT);
	kill(j.pid, SIGTERM);
	ck_assert_int_eq(bg_wait(&w, 5000), 0);
	ck_assert_int_eq(bg_wait(&j, 5000), 0);
	dlm_close(c);
}
END_TEST

/* A watch whose server goes away says so and exits 3; bad use exits 2. */
START_TEST(watch_errors)
{
	struct bg w = { 0, "", "" };
	struct out o;
	char *err;

	o = ctl("-s", server, "watch", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "watch", "a", "b", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", "unix:/nonexistent/dlmd.sock", "watch", "x",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 3);
	ck_assert_ptr_nonnull(strstr(o.err, "cannot reach dlmd"));
	out_free(&o);
	bg_start(&w, "watch", "-s", server, "watch", "gone", (char *)NULL);
	free(bg_lines(&w, 1));
	ck_assert_int_eq(dlmd_stop(&d), 0);
	ck_assert_int_eq(bg_wait(&w, 10000), 3);
	err = bg_err(&w);
	ck_assert_ptr_nonnull(strstr(err, "lost the connection"));
	free(err);
	restart_dlmd();
}
END_TEST

/* Values in listings: text when printable, hex when not; JSON escaped. */
START_TEST(values_shown_in_listings)
{
	struct tc *t = tc_connect(&d);
	struct out o;
	json_t *v, *h;

	tc_hello(t, "valued");
	ck_assert_int_eq(tc_call(t, "acquire", "lock:s value:s", "text",
	    "leader at 10.0.0.1")->err, 0);
	ck_assert_int_eq(tc_call(t, "acquire", "lock:s value:y", "binary",
	    "\x01\xff", (size_t)2)->err, 0);
	o = ctl("-s", server, "show", "text", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "VALUE"));
	ck_assert_ptr_nonnull(strstr(o.out, "leader at 10.0.0.1"));
	out_free(&o);
	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(line_with(o.out, "binary"), "0x01ff"));
	ck_assert_ptr_nonnull(strstr(line_with(o.out, "text"),
	    "leader at 10.0.0.1"));
	out_free(&o);
	o = ctl("-s", server, "--json", "show", "binary", (char *)NULL);
	v = parse_json(&o);
	h = json_array_get(json_object_get(v, "holders"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(h, "value")),
	    "\\x01\\xff");
	json_decref(v);
	out_free(&o);
	tc_close(t);
}
END_TEST

/*
 * Two elect at once: one leads and runs COMMAND, the other waits and takes
 * over when the first is done; a watch sees each leader's value.
 */
START_TEST(elect_one_leader_at_a_time)
{
	struct bg a = { 0, "", "" }, b = { 0, "", "" }, w = { 0, "", "" };
	char script[1000], path[500], first[64], second[64];
	char *out;
	FILE *f;

	bg_start(&w, "watch", "-s", server, "watch", "leader", (char *)NULL);
	free(bg_lines(&w, 1));
	snprintf(script, sizeof script,
	    "mkdir %s/inside || exit 99; echo $1 >> %s/leaders; "
	    "sleep 0.3; rmdir %s/inside", d.dir, d.dir, d.dir);
	bg_start(&a, "ea", "-s", server, "elect", "leader", "node-a:80", "--",
	    "sh", "-c", script, "sh", "node-a", (char *)NULL);
	bg_start(&b, "eb", "-s", server, "elect", "leader", "node-b:80", "--",
	    "sh", "-c", script, "sh", "node-b", (char *)NULL);
	ck_assert_int_eq(bg_wait(&a, 20000), 0);
	ck_assert_int_eq(bg_wait(&b, 20000), 0);
	snprintf(path, sizeof path, "%s/leaders", d.dir);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%63s %63s", first, second), 2);
	fclose(f);
	ck_assert_str_ne(first, second);
	/* free, the first leader, the second, free. */
	out = bg_lines(&w, 4);
	ck_assert_ptr_nonnull(strstr(nth_line(out, 1), first));
	ck_assert_ptr_nonnull(strstr(nth_line(out, 2), second));
	ck_assert_ptr_nonnull(strstr(nth_line(out, 3), "free"));
	free(out);
	kill(w.pid, SIGINT);
	ck_assert_int_eq(bg_wait(&w, 5000), 0);
}
END_TEST

/* A leader whose hold is forced away stops its command: status 76. */
START_TEST(elect_lost_stops_the_command)
{
	struct bg b = { 0, "", "" };
	char script[600], pidfile[400], *err;
	struct out o;
	pid_t pid;

	snprintf(pidfile, sizeof pidfile, "%s/pid", d.dir);
	snprintf(script, sizeof script, "echo $$ > %s; exec sleep 60",
	    pidfile);
	bg_start(&b, "leader", "-s", server, "elect", "boss", "me", "--",
	    "sh", "-c", script, (char *)NULL);
	pid = read_pid(pidfile);
	o = ctl("-s", server, "release", "boss", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	ck_assert(gone_within(pid, 10000));
	ck_assert_int_eq(bg_wait(&b, 10000), 76);
	err = bg_err(&b);
	ck_assert_ptr_nonnull(strstr(err, "lost lock 'boss'"));
	free(err);
	/* Usage. */
	o = ctl("-s", server, "elect", "boss", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "elect", "boss", "--", "true", (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "elect", "--shared", "boss", "v", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	out_free(&o);
	o = ctl("-s", server, "elect", "boss", "v", "--timeout", "0", "--",
	    "true", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
}
END_TEST

/*
 * A lock-delay and contention notices as the listings show them: per
 * holder in `show`, and a lock delayed after a forced release in `locks`,
 * `show` and `status`. The delay is long, so that it still runs while
 * this test looks; the server's stop ends it.
 */
START_TEST(delays_and_notices_shown)
{
	struct dlm_client *a = client("cautious");
	struct dlm_acquire_opts ao;
	struct out o;
	json_t *v, *h;
	const char *line;

	dlm_acquire_opts_init(&ao);
	ao.lock_delay_ms = 30000;
	ao.flags = DLM_NOTIFY_CONTENDED;
	ck_assert_int_eq(dlm_acquire_ex(a, "careful", &ao, NULL), 0);
	o = ctl("-s", server, "show", "careful", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	ck_assert_ptr_nonnull(strstr(o.out, "LOCK-DELAY"));
	line = line_with(o.out, "cautious");
	ck_assert_ptr_nonnull(line);
	ck_assert_msg(strstr(line, "30.0s") != NULL &&
	    strstr(line, "yes") != NULL, "%s", line);
	ck_assert_ptr_null(strstr(o.out, "delayed"));
	out_free(&o);
	o = ctl("-s", server, "--json", "show", "careful", (char *)NULL);
	v = parse_json(&o);
	h = json_array_get(json_object_get(v, "holders"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(h,
	    "lock_delay_ms")), 30000);
	ck_assert(json_is_true(json_object_get(h, "notify_contended")));
	json_decref(v);
	out_free(&o);

	/* Taken from it: delayed, with nobody holding. */
	o = ctl("-s", server, "release", "careful", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	o = ctl("-s", server, "locks", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	line = line_with(o.out, "careful");
	ck_assert_msg(line != NULL && strstr(line, "(delayed ") != NULL,
	    "%s", o.out);
	out_free(&o);
	o = ctl("-s", server, "show", "careful", (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	line = line_with(o.out, "delayed");
	ck_assert_msg(line != NULL && strstr(line, "granted to nobody") !=
	    NULL, "%s", o.out);
	out_free(&o);
	o = ctl("-s", server, "--json", "show", "careful", (char *)NULL);
	v = parse_json(&o);
	ck_assert_int_gt(json_integer_value(json_object_get(v, "delayed_ms")),
	    0);
	ck_assert_int_le(json_integer_value(json_object_get(v, "delayed_ms")),
	    30000);
	json_decref(v);
	out_free(&o);
	o = ctl("-s", server, "status", (char *)NULL);
	ck_assert_msg(strstr(line_with(o.out, "delayed locks"), "1") != NULL,
	    "%s", o.out);
	ck_assert_msg(strstr(line_with(o.out, "lock delays"), "1") != NULL,
	    "%s", o.out);
	out_free(&o);
	/* A run is refused while it lasts. */
	o = ctl("-s", server, "run", "careful", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 75);	/* not acquired */
	ck_assert_ptr_nonnull(strstr(o.err, "delayed"));
	out_free(&o);
	dlm_close(a);
}
END_TEST

/* run --lock-delay: the hold carries it; bad values are refused. */
START_TEST(run_with_lock_delay)
{
	char script[2000], path[500];
	struct out o;
	json_t *v, *h;
	json_error_t e;

	snprintf(script, sizeof script, "%s -s %s --json show dly > %s/during",
	    dlmctl_path(), server, d.dir);
	o = ctl("-s", server, "run", "dly", "--lock-delay", "700", "--", "sh",
	    "-c", script, (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);
	snprintf(path, sizeof path, "%s/during", d.dir);
	v = json_load_file(path, 0, &e);
	ck_assert_ptr_nonnull(v);
	h = json_array_get(json_object_get(v, "holders"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(h,
	    "lock_delay_ms")), 700);
	json_decref(v);
	/* Released cleanly at the end: no delay. */
	o = ctl("-s", server, "run", "dly", "--timeout", "0", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 0);
	out_free(&o);

	o = ctl("-s", server, "run", "dly", "--lock-delay", "-1", "--", "true",
	    (char *)NULL);
	ck_assert_int_eq(o.status, 2);
	ck_assert_ptr_nonnull(strstr(o.err, "lock-delay"));
	out_free(&o);
	o = ctl("-s", server, "run", "dly", "--lock-delay", "60001", "--",
	    "true", (char *)NULL);
	ck_assert_int_eq(o.status, 1);
	ck_assert_ptr_nonnull(strstr(o.err, "max-lock-delay"));
	out_free(&o);
}
END_TEST

static Suite *
dlmctl_suite(void)
{
	Suite *s = suite_create("dlmctl");
	TCase *tc = tcase_create("inspect");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, status_human_and_json);
	tcase_add_test(tc, status_deadlocks_and_show_converting);
	tcase_add_test(tc, locks_table_and_json);
	tcase_add_test(tc, locks_follow_the_cursor);
	tcase_add_test(tc, show_lists_the_whole_queue);
	tcase_add_test(tc, semaphore_listings);
	tcase_add_test(tc, clients_connected_and_lingering);
	tcase_add_test(tc, ping_reports_round_trips);
	tcase_add_test(tc, odd_names_shown_escaped);
	tcase_add_test(tc, odd_names_lossless_in_json);
	tcase_add_test(tc, delays_and_notices_shown);
	suite_add_tcase(s, tc);

	tc = tcase_create("act");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, release_forces_and_tells_the_holder);
	tcase_add_test(tc, reset_one_and_all);
	tcase_add_test(tc, odd_names_released_as_shown);
	tcase_add_test(tc, tcp_admin_token);
	tcase_add_test(tc, rules_refusals_in_one_line);
	tcase_add_test(tc, errors_and_usage);
	tcase_add_test(tc, bad_addresses_are_refused_before_connecting);
	tcase_add_test(tc, cluster_on_a_single_dlmd);
	tcase_add_test(tc, server_down_mid_use);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, run_exit_status_and_token);
	tcase_add_test(tc, run_not_acquired_in_time);
	tcase_add_test(tc, run_takes_escaped_names);
	tcase_add_test(tc, run_kind_mismatch_says_which);
	tcase_add_test(tc, runs_never_overlap);
	tcase_add_test(tc, run_semaphore_at_most_n);
	tcase_add_test(tc, run_semaphore_usage);
	tcase_add_test(tc, run_forwards_signals_to_the_group);
	tcase_add_test(tc, forced_release_kills_the_group_in_time);
	tcase_add_test(tc, expired_lease_ends_the_command);
	tcase_add_test(tc, lost_server_ends_the_command);
	tcase_add_test(tc, killed_dlmctl_takes_the_command_along);
	tcase_add_test(tc, leftovers_are_stopped_before_release);
	tcase_add_test(tc, leftovers_are_reaped_and_the_lock_freed_at_once);
	tcase_add_test(tc, runs_with_leftovers_never_overlap);
	tcase_add_test(tc, run_with_lock_delay);
	suite_add_tcase(s, tc);

	tc = tcase_create("watch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, watch_streams_changes);
	tcase_add_test(tc, watch_errors);
	tcase_add_test(tc, values_shown_in_listings);
	tcase_add_test(tc, elect_one_leader_at_a_time);
	tcase_add_test(tc, elect_lost_stops_the_command);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	/*
	 * A shell starts background jobs with SIGINT and SIGQUIT ignored,
	 * and an ignored signal stays ignored across exec (dlmctl run keeps
	 * it so, as it should): the commands that the signal tests run must
	 * start with the defaults, however this suite was started.
	 */
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	return run_suite(dlmctl_suite());
}
