/*
 * Running dlmd as a system daemon: the settings file and flags over it,
 * SIGHUP reloads, -d with a pidfile, systemd readiness notifications, and
 * the Prometheus endpoint read by a real HTTP client.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "testutil.h"

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/dlmops.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[128], path[128];
	FILE *f;
	int pid;

	/* A daemon test that failed halfway leaves no daemon behind. */
	snprintf(path, sizeof path, "%s/d.pid", tmpdir);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%d", &pid) == 1 && pid > 0)
			kill(pid, SIGKILL);
		fclose(f);
	}

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *
tmp_path(const char *name)
{
	static char buf[4][256];
	static int which;
	char *p = buf[which++ & 3];

	snprintf(p, 256, "%s/%s", tmpdir, name);
	return p;
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* The lease a fresh session asking for lease_ms is given. */
static uint64_t
granted_lease(struct dlmd_proc *d, long long lease_ms)
{
	struct tc *c = tc_connect(d);
	struct reply *r = tc_call(c, "hello", "proto:i lease_ms:i", 1LL,
	    lease_ms);
	uint64_t v;

	ck_assert_int_eq(r->err, 0);
	v = reply_u64(r, "lease_ms");
	tc_close(c);
	return v;
}

/* Run dlmd to its exit; its status, and its stderr in err. */
static int
run_dlmd(char *err, size_t errlen, const char *arg, ...)
{
	const char *argv[32];
	int argc = 0, pfd[2], st;
	va_list ap;
	ssize_t n;
	pid_t pid;

	argv[argc++] = dlmd_path();
	va_start(ap, arg);
	for (; arg != NULL && argc < 31; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	va_end(ap);
	argv[argc] = NULL;
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	/* To the end: a detached daemon writes its start-up errors too. */
	for (size_t len = 0;; len += (size_t)n) {
		n = read(pfd[0], err + len, errlen - 1 - len);
		if (n <= 0) {
			err[len] = '\0';
			break;
		}
	}
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(config_file_sets_options)
{
	const char *conf = tmp_path("dlmd.conf");
	struct dlmd_proc d;
	struct tc *c;
	struct reply *r;

	write_file(conf,
	    "# dlmd settings\n"
	    "; also a comment\n"
	    "lease-min = 100\n"
	    "lease-max = 20000   ; inline comment\n"
	    "max-name-len = 8\n"
	    "verbose = yes\n");
	dlmd_start(&d, "-c", conf, (char *)NULL);
	ck_assert_uint_eq(granted_lease(&d, 999999), 20000);
	ck_assert_uint_eq(granted_lease(&d, 150), 150);
	c = tc_connect(&d);
	tc_hello(c, "n");
	r = tc_call(c, "acquire", "lock:s timeout_ms:i", "123456789", 0LL);
	ck_assert_str_eq(reply_errname(r), "LIMIT");
	r = tc_call(c, "acquire", "lock:s timeout_ms:i", "12345678", 0LL);
	ck_assert_int_eq(r->err, 0);
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * Flags beat the file: --lease-max over the file's, and the fixture's
 * --listen instead of the file's (which could not even be bound).
 */
START_TEST(flags_override_the_file)
{
	const char *conf = tmp_path("dlmd.conf");
	struct dlmd_proc d;

	write_file(conf,
	    "lease-max = 20000\n"
	    "listen = unix:/nonexistent/dir/dlmd.sock\n");
	dlmd_start(&d, "-c", conf, "--lease-max", "30000", (char *)NULL);
	ck_assert_uint_eq(granted_lease(&d, 999999), 30000);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(bad_settings_are_refused_with_file_and_line)
{
	const char *conf = tmp_path("bad.conf");
	char err[2048], want[512];

	write_file(conf, "lease-max = 20000\n\nfrobnicate = 3\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	snprintf(want, sizeof want, "%s:3: unknown key 'frobnicate'", conf);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);

	write_file(conf, "# ok\nlease-max = soon\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	snprintf(want, sizeof want, "%s:2: lease-max: 'soon' is not a number",
	    conf);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);

	write_file(conf, "socket-mode = 0999\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	ck_assert_ptr_nonnull(strstr(err, ":1: socket-mode:"));

	write_file(conf, "[server]\nlease-max = 20000\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	ck_assert_ptr_nonnull(strstr(err, ":2: sections are not used"));

	write_file(conf, "lease-max\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	ck_assert_ptr_nonnull(strstr(err, ":1: "));

	/* help and version are for the command line only. */
	write_file(conf, "help = yes\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, (char *)NULL),
	    2);
	ck_assert_ptr_nonnull(strstr(err, "unknown key 'help'"));

	/* A file named on the command line must exist. */
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c",
	    tmp_path("missing.conf"), (char *)NULL), 2);
	ck_assert_ptr_nonnull(strstr(err, "missing.conf"));

	/* --check-config says so without starting. */
	write_file(conf, "lease-max = 20000\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf,
	    "--check-config", (char *)NULL), 0);
	write_file(conf, "lease-max = 5\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf,
	    "--check-config", (char *)NULL), 2);
	ck_assert_ptr_nonnull(strstr(err, ":1: lease-max:"));

	/* A bad flag is refused too, and checked after the file. */
	write_file(conf, "lease-min = 5000\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", conf, "--lease-max",
	    "1000", (char *)NULL), 2);
	ck_assert_ptr_nonnull(strstr(err, "lease-min is above lease-max"));
}
END_TEST

START_TEST(sighup_reloads_the_file)
{
	const char *conf = tmp_path("dlmd.conf");
	struct dlmd_proc d;
	struct tc *c;

	write_file(conf, "lease-min = 100\nlease-max = 20000\n");
	dlmd_start(&d, "-c", conf, (char *)NULL);
	ck_assert_uint_eq(granted_lease(&d, 999999), 20000);

	write_file(conf, "lease-min = 100\nlease-max = 40000\nmax-holds = 2\n");
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "reloaded"));
	ck_assert_uint_eq(granted_lease(&d, 999999), 40000);
	/* A limit takes at once, for sessions already open too. */
	c = tc_connect(&d);
	tc_hello(c, "h");
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s", "a")->err, 0);
	ck_assert_int_eq(tc_call(c, "acquire", "lock:s", "b")->err, 0);
	ck_assert_str_eq(reply_errname(tc_call(c, "acquire", "lock:s", "c")),
	    "LIMIT");

	/* A broken file: said in the log, and the settings stay. */
	write_file(conf, "lease-max = 50000\nnonsense = 1\n");
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "unknown key 'nonsense'; keeping the running "
	    "settings"));
	ck_assert_uint_eq(granted_lease(&d, 999999), 40000);
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

static bool
alive(pid_t pid)
{
	return kill(pid, 0) == 0;
}

START_TEST(daemon_writes_and_removes_its_pidfile)
{
	const char *sock = tmp_path("d.sock"), *pidfile = tmp_path("d.pid");
	char listen[300], err[2048];
	struct tc *c;
	FILE *f;
	int pid = 0;

	snprintf(listen, sizeof listen, "unix:%s", sock);
	/* The parent returns 0 only once the daemon listens. */
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null", "-d",
	    "-l", listen, "--pidfile", pidfile, (char *)NULL), 0);
	f = fopen(pidfile, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	ck_assert(alive(pid));
	c = tc_connect_unix(sock);
	tc_hello(c, "after-detach");
	tc_close(c);
	/* Detached: its own session, not our child. */
	ck_assert_int_ne(getsid(pid), getsid(0));
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	for (int i = 0; i < 500 && alive(pid); i++)
		sleep_ms(10);
	ck_assert(!alive(pid));
	ck_assert_int_eq(access(pidfile, F_OK), -1);

	/* Cannot listen: the parent says so and exits 1, no pidfile. */
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null", "-d",
	    "-l", "unix:/nonexistent/dir/x.sock", "--pidfile", pidfile,
	    (char *)NULL), 1);
	ck_assert_ptr_nonnull(strstr(err, "cannot start"));
	ck_assert_int_eq(access(pidfile, F_OK), -1);
}
END_TEST

/* Receive one datagram from the notify socket, waiting up to 5 s. */
static void
notify_recv(int fd, char *buf, size_t len)
{
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;

	ck_assert_int_eq(poll(&p, 1, 5000), 1);
	n = recv(fd, buf, len - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
}

START_TEST(systemd_readiness_notifications)
{
	struct sockaddr_un sun;
	struct dlmd_proc d;
	char buf[512];
	int fd, status;

	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", tmp_path("notify"));
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	setenv("NOTIFY_SOCKET", sun.sun_path, 1);
	dlmd_start(&d, (char *)NULL);
	unsetenv("NOTIFY_SOCKET");

	/* READY only once listening (dlmd_start saw the socket accept). */
	notify_recv(fd, buf, sizeof buf);
	ck_assert_msg(strstr(buf, "READY=1") != NULL, "%s", buf);
	kill(d.pid, SIGHUP);
	notify_recv(fd, buf, sizeof buf);
	ck_assert_msg(strstr(buf, "RELOADING=1") != NULL, "%s", buf);
	notify_recv(fd, buf, sizeof buf);
	ck_assert_msg(strstr(buf, "READY=1") != NULL, "%s", buf);
	kill(d.pid, SIGTERM);
	notify_recv(fd, buf, sizeof buf);
	ck_assert_msg(strstr(buf, "STOPPING=1") != NULL, "%s", buf);
	ck_assert_int_eq(waitpid(d.pid, &status, 0), d.pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	d.pid = 0;
	unlink(d.sock);
	unlink(d.log);
	rmdir(d.dir);
	close(fd);
}
END_TEST

/* An HTTP exchange with libevent's client; the body and status. */
struct http_result {
	int	 status;
	char	*body;
};

static void
http_done(struct evhttp_request *req, void *arg)
{
	struct http_result *res = arg;
	struct evbuffer *b;
	size_t len;

	if (req == NULL) {
		res->status = -1;
		return;
	}
	res->status = evhttp_request_get_response_code(req);
	b = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(b);
	res->body = malloc(len + 1);
	evbuffer_remove(b, res->body, len);
	res->body[len] = '\0';
}

static struct http_result
http_request(int port, enum evhttp_cmd_type cmd, const char *path)
{
	struct http_result res = { 0, NULL };
	struct event_base *base = event_base_new();
	struct evhttp_connection *conn;
	struct evhttp_request *req;

	conn = evhttp_connection_base_new(base, NULL, "127.0.0.1",
	    (ev_uint16_t)port);
	evhttp_connection_set_timeout(conn, 5);
	req = evhttp_request_new(http_done, &res);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "localhost");
	ck_assert_int_eq(evhttp_make_request(conn, req, cmd, path), 0);
	event_base_dispatch(base);
	evhttp_connection_free(conn);
	event_base_free(base);
	return res;
}

/* The value of the sample named exactly `name` (labels included). */
static double
sample(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p != NULL && *p != '\0';
	    p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	ck_abort_msg("no sample %s", name);
	return -1;
}

START_TEST(metrics_endpoint_in_prometheus_format)
{
	struct dlmd_proc d;
	struct http_result res;
	struct tc *a, *b;
	char listen[64];
	regex_t sample_re, meta_re;
	int port = free_tcp_port();
	uint32_t wait_id;
	char *save = NULL;

	snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
	dlmd_start(&d, "--metrics-listen", listen, (char *)NULL);
	a = tc_connect(&d);
	tc_hello(a, "a");
	b = tc_connect(&d);
	tc_hello(b, "b");
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "m")->err, 0);
	ck_assert_str_eq(reply_errname(tc_call(b, "acquire",
	    "lock:s timeout_ms:i", "m", 0LL)), "WOULD_BLOCK");
	wait_id = tc_send(b, "acquire", "lock:s timeout_ms:i", "m", 5000LL);
	sleep_ms(50);
	ck_assert_int_eq(tc_call(a, "release", "lock:s", "m")->err, 0);
	ck_assert_int_eq(tc_wait(b, wait_id, 5000)->err, 0);
	ck_assert_int_eq(tc_call(a, "acquire", "lock:s", "n")->err, 0);

	res = http_request(port, EVHTTP_REQ_GET, "/metrics");
	ck_assert_int_eq(res.status, 200);
	/* Every line is a comment or "name{labels} value". */
	ck_assert_int_eq(regcomp(&sample_re, "^[a-zA-Z_:][a-zA-Z0-9_:]*"
	    "(\\{[a-zA-Z_]+=\"[^\"]*\"(,[a-zA-Z_]+=\"[^\"]*\")*\\})? "
	    "[-+0-9.eE]+|\\+Inf$", REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_int_eq(regcomp(&meta_re, "^# (HELP|TYPE) [a-z_]+ .+$",
	    REG_EXTENDED | REG_NOSUB), 0);
	for (char *line = strtok_r(res.body, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		ck_assert_msg(regexec(line[0] == '#' ? &meta_re : &sample_re,
		    line, 0, NULL, 0) == 0, "bad line: %s", line);
		line[strlen(line)] = '\n';	/* keep the text whole */
	}
	regfree(&sample_re);
	regfree(&meta_re);

	ck_assert(sample(res.body, "dlmd_sessions") == 2);
	ck_assert(sample(res.body, "dlmd_holds") == 2);
	ck_assert(sample(res.body, "dlmd_locks") == 2);
	ck_assert(sample(res.body, "dlmd_waiters") == 0);
	ck_assert(sample(res.body, "dlmd_watches") == 0);
	ck_assert(sample(res.body,
	    "dlmd_acquires_total{result=\"granted\"}") == 3);
	ck_assert(sample(res.body,
	    "dlmd_acquires_total{result=\"would_block\"}") == 1);
	ck_assert(sample(res.body, "dlmd_acquire_wait_seconds_count") == 3);
	/* The queued acquire waited about 50 ms: above the 10 ms bucket. */
	ck_assert(sample(res.body,
	    "dlmd_acquire_wait_seconds_bucket{le=\"0.01\"}") == 2);
	ck_assert(sample(res.body,
	    "dlmd_acquire_wait_seconds_bucket{le=\"+Inf\"}") == 3);
	ck_assert(sample(res.body, "dlmd_hold_seconds_count") == 1);
	ck_assert(sample(res.body, "dlmd_received_bytes_total") > 0);
	ck_assert_ptr_nonnull(strstr(res.body, "dlmd_build_info{version=\""));
	ck_assert(sample(res.body, "dlmd_deadlocks_total") == 0);
	free(res.body);

	/* An acquire refused for closing a cycle of waits is counted. */
	tc_send(a, "acquire", "lock:s", "m");
	ck_assert_str_eq(reply_errname(tc_call(b, "acquire", "lock:s", "n")),
	    "DEADLOCK");
	res = http_request(port, EVHTTP_REQ_GET, "/metrics");
	ck_assert(sample(res.body, "dlmd_deadlocks_total") == 1);
	free(res.body);

	/* A session that ends ends its holds: their times are counted. */
	tc_close(a);
	for (int i = 0; i < 100; i++) {
		double n;

		res = http_request(port, EVHTTP_REQ_GET, "/metrics");
		n = sample(res.body, "dlmd_hold_seconds_count");
		free(res.body);
		if (n == 2)
			break;
		ck_assert_msg(n == 1 && i < 99, "hold count %g", n);
		sleep_ms(10);
	}

	res = http_request(port, EVHTTP_REQ_GET, "/other");
	ck_assert_int_eq(res.status, 404);
	free(res.body);
	res = http_request(port, EVHTTP_REQ_POST, "/metrics");
	ck_assert_int_ge(res.status, 400);
	free(res.body);
	tc_close(b);
	dlmd_stop_clean(&d);
}
END_TEST

static Suite *
ops_suite(void)
{
	Suite *s = suite_create("dlmd_ops");
	TCase *tc = tcase_create("ops");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, config_file_sets_options);
	tcase_add_test(tc, flags_override_the_file);
	tcase_add_test(tc, bad_settings_are_refused_with_file_and_line);
	tcase_add_test(tc, sighup_reloads_the_file);
	tcase_add_test(tc, daemon_writes_and_removes_its_pidfile);
	tcase_add_test(tc, systemd_readiness_notifications);
	tcase_add_test(tc, metrics_endpoint_in_prometheus_format);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(ops_suite());
}
