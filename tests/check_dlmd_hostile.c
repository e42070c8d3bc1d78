/*
 * What a hostile client or a careless operator found, each against a real
 * dlmd: strings that forged log lines, ports that wrapped, settings that
 * --check-config approved but could not start, a client that never reads
 * running past max-output, and an out-of-memory death nobody heard of.
 */
#include "config.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "testutil.h"

static char tmpdir[64];

static void
setup(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/dlmhostile.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* The whole of dlmd's log, NUL-terminated (static buffer). */
static const char *
log_text(const struct dlmd_proc *d, size_t *lenp)
{
	static char buf[1 << 20];
	int fd = open(d->log, O_RDONLY);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (lenp != NULL)
		*lenp = (size_t)n;
	return buf;
}

/*
 * Run dlmd with args (a NULL-terminated list); its exit status, or -1 when
 * it was still running after ms (it started: it is then stopped). Its
 * standard output and error go to out, when not NULL.
 */
static int
run_dlmd_bounded(int ms, const char *out, const char *const *args)
{
	const char *argv[32];
	int argc = 0, status;
	uint64_t deadline = mono_ms() + (uint64_t)ms;
	pid_t pid;

	argv[argc++] = dlmd_path();
	argv[argc++] = "-c";
	argv[argc++] = "/dev/null";
	for (; *args != NULL && argc < 31; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	if ((pid = fork()) == 0) {
		int fd = open(out != NULL ? out : "/dev/null",
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	while (mono_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static const char *
file_text(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/*
 * A client name, info strings and a lock name made of newlines and escape
 * sequences: no log line may start with the forged text, and no raw
 * control byte may reach the log at all.
 */
START_TEST(client_strings_cannot_forge_log_lines)
{
	static const char *forged_name = "exp\nFORGED-EXPIRY \x1b[31mred";
	static const char *forged_lock = "lk\nFORGED-RELEASE\x1b]0;title\x07";
	struct dlmd_proc d;
	struct tc *evil, *admin;
	struct reply *r;
	const char *log;
	size_t len;

	dlmd_start(&d, "--lease-min", "100", (char *)NULL);
	evil = tc_connect(&d);
	r = tc_call(evil, "hello", "proto:i client:s lease_ms:i", 1LL,
	    forged_name, 300LL);
	ck_assert_str_eq(reply_errname(r), "");
	r = tc_call(evil, "acquire", "lock:s", forged_lock);
	ck_assert_str_eq(reply_errname(r), "");

	/* The admin's force-release logs the lock's name and its own. */
	admin = tc_connect(&d);
	r = tc_call(admin, "hello", "proto:i client:s", 1LL,
	    "adm\nFORGED-ADMIN");
	ck_assert_str_eq(reply_errname(r), "");
	r = tc_call(admin, "force_release", "lock:s", forged_lock);
	ck_assert_str_eq(reply_errname(r), "");
	r = tc_call(evil, "acquire", "lock:s", forged_lock);
	ck_assert_str_eq(reply_errname(r), "");

	/* Then the evil client falls silent and expires: the expiry line. */
	ck_assert(dlmd_log_has(&d, "expired"));
	tc_close(evil);
	tc_close(admin);
	ck_assert_int_eq(dlmd_stop(&d), 0);

	log = log_text(&d, &len);
	ck_assert_msg(strstr(log, "\nFORGED") == NULL,
	    "a client forged a log line:\n%s", log);
	for (size_t i = 0; i < len; i++)
		ck_assert_msg(log[i] == '\n' || ((unsigned char)log[i] >= 0x20 &&
		    log[i] != 0x7f), "raw byte 0x%02x in the log at %zu",
		    (unsigned char)log[i], i);
	/* Escaped, the strings are still there for the operator. */
	ck_assert_ptr_nonnull(strstr(log, "exp\\x0aFORGED-EXPIRY \\x1b[31mred"));
	ck_assert_ptr_nonnull(strstr(log, "lk\\x0aFORGED-RELEASE\\x1b]0;title"));
	unlink(d.log);
	unlink(d.sock);
	rmdir(d.dir);
}
END_TEST

/*
 * Ports outside 1..65535, non-numeric and empty ports, and broken [v6]
 * forms: dlmd refuses them with exit 2 and a sentence, at start and in
 * --check-config alike, instead of wrapping 99999 to 34463.
 */
START_TEST(bad_addresses_exit_2)
{
	static const char *bad_listen[] = {
		"tcp:127.0.0.1:99999", "tcp:127.0.0.1:65536",
		"tcp:127.0.0.1:-1", "tcp:127.0.0.1:abc", "tcp:127.0.0.1:",
		"tcp:127.0.0.1", "tcp:[::1", "tcp:[::1]7411", "tcp:::1:7411",
		"tcp:foo", "bogus", "unix:",
	};
	static const char *bad_metrics[] = {
		"127.0.0.1:99999", "127.0.0.1:65536", "foo", "127.0.0.1:x",
		"[::1:9100",
	};
	char out[128], sock[128];

	snprintf(out, sizeof out, "%s/out", tmpdir);
	snprintf(sock, sizeof sock, "unix:%s/s.sock", tmpdir);
	for (size_t i = 0; i < sizeof bad_listen / sizeof *bad_listen; i++) {
		const char *start[] = { "-f", "-l", bad_listen[i], NULL };
		const char *check[] = { "--check-config", "-l", bad_listen[i],
		    NULL };

		ck_assert_msg(run_dlmd_bounded(3000, out, start) == 2,
		    "-l %s: not refused with 2 (%s)", bad_listen[i],
		    file_text(out));
		ck_assert_msg(strstr(file_text(out), "listen") != NULL,
		    "-l %s: %s", bad_listen[i], file_text(out));
		ck_assert_msg(run_dlmd_bounded(3000, out, check) == 2,
		    "--check-config -l %s: not refused", bad_listen[i]);
	}
	for (size_t i = 0; i < sizeof bad_metrics / sizeof *bad_metrics;
	    i++) {
		const char *start[] = { "-f", "-l", sock, "--metrics-listen",
		    bad_metrics[i], NULL };
		const char *check[] = { "--check-config", "--metrics-listen",
		    bad_metrics[i], NULL };

		ck_assert_msg(run_dlmd_bounded(3000, out, start) == 2,
		    "--metrics-listen %s: not refused with 2 (%s)",
		    bad_metrics[i], file_text(out));
		ck_assert_msg(strstr(file_text(out), "metrics-listen") != NULL,
		    "%s", file_text(out));
		ck_assert_msg(run_dlmd_bounded(3000, out, check) == 2,
		    "--check-config --metrics-listen %s: not refused",
		    bad_metrics[i]);
	}
	/* The message names the problem. */
	{
		const char *start[] = { "-f", "-l", "tcp:127.0.0.1:99999",
		    NULL };

		ck_assert_int_eq(run_dlmd_bounded(3000, out, start), 2);
		ck_assert_ptr_nonnull(strstr(file_text(out),
		    "99999 is out of range 1..65535"));
	}
}
END_TEST

/* --check-config approves good addresses and names no missing file. */
START_TEST(check_config_accepts_good_addresses)
{
	const char *args[] = { "--check-config", "-l", "tcp:127.0.0.1:0",
	    "-l", "tcp:[::1]:7411", "-l", "unix:/tmp/x.sock", "-l", "default",
	    "--metrics-listen", "127.0.0.1:9100", NULL };
	char out[128];
	const char *p;

	snprintf(out, sizeof out, "%s/out", tmpdir);
	ck_assert_int_eq(run_dlmd_bounded(3000, out, args), 0);
	ck_assert_ptr_nonnull(strstr(file_text(out), "settings are good"));

	/*
	 * Without -c the default settings file is read if it exists; the
	 * answer may name a file only if there is one.
	 */
	{
		pid_t pid;
		int status;

		if ((pid = fork()) == 0) {
			const char *argv[] = { dlmd_path(), "--check-config",
			    NULL };
			int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			dup2(fd, 1);
			dup2(fd, 2);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	}
	p = file_text(out);
	if ((p = strstr(p, "good (/")) != NULL) {
		char path[512];

		ck_assert_int_eq(sscanf(p, "good (%511s", path), 1);
		ck_assert_msg(access(path, F_OK) == 0,
		    "--check-config names %s, which does not exist", path);
	}
}
END_TEST

/* A listener on port 0 says which port it got, and that port works. */
START_TEST(port_zero_listener_logs_its_port)
{
	struct dlmd_proc d;
	const char *p;
	struct tc *c;
	int port = 0;

	dlmd_start(&d, "-l", "tcp:127.0.0.1:0", (char *)NULL);
	ck_assert(dlmd_log_has(&d, "listening on tcp:127.0.0.1:"));
	p = strstr(log_text(&d, NULL), "listening on tcp:127.0.0.1:");
	ck_assert_int_eq(sscanf(p, "listening on tcp:127.0.0.1:%d", &port), 1);
	ck_assert_int_gt(port, 0);
	c = tc_connect_tcp(port);
	tc_hello(c, "zero");
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/* The size of one frame the server sends, read off a raw connection. */
static size_t
one_locks_reply_size(const struct dlmd_proc *d)
{
	struct tc *c = tc_connect(d);
	struct reply *r;
	msgpack_sbuffer sb;
	size_t n;

	tc_hello(c, "measure");
	r = tc_call(c, "locks", "");
	ck_assert_str_eq(reply_errname(r), "");
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(msgpack_pack_object(&(msgpack_packer){ &sb,
	    msgpack_sbuffer_write }, r->obj), 0);
	n = sb.size;
	msgpack_sbuffer_destroy(&sb);
	tc_close(c);
	return n;
}

/*
 * A client that sends a burst of listing requests and never reads: dlmd
 * closes it before its unread output passes max-output by more than one
 * reply (it once let 13 pages pile up in one turn of the loop).
 */
START_TEST(max_output_holds_per_reply)
{
	struct dlmd_proc d;
	struct tc *owner, *deaf;
	char name[260];
	const char *p;
	size_t reply_size, unread = 0;

	dlmd_start(&d, "--max-output", "4096", "--max-holds", "5000", (char *)NULL);
	owner = tc_connect(&d);
	tc_hello(owner, "owner");
	for (int i = 0; i < 1200; i++) {
		memset(name, 'n', 250);
		snprintf(name, sizeof name, "%04d", i);
		name[4] = 'n';
		name[250] = '\0';
		ck_assert_str_eq(reply_errname(tc_call(owner, "acquire",
		    "lock:s", name)), "");
	}
	reply_size = one_locks_reply_size(&d);
	ck_assert_uint_le(reply_size, 4096);

	deaf = tc_connect(&d);
	tc_hello(deaf, "deaf");
	{
		/* 2,000 requests in one write; then never a read. */
		msgpack_sbuffer sb;
		msgpack_packer pk;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		for (uint32_t id = 100; id < 2100; id++) {
			msgpack_pack_array(&pk, 4);
			msgpack_pack_uint8(&pk, 0);
			msgpack_pack_uint32(&pk, id);
			msgpack_pack_str_with_body(&pk, "locks", 5);
			msgpack_pack_array(&pk, 0);
		}
		ck_assert_int_eq(send(deaf->fd, sb.data, sb.size,
		    MSG_NOSIGNAL), (ssize_t)sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	ck_assert(dlmd_log_has(&d, "bytes of output unread"));
	{
		const char *log = log_text(&d, NULL);

		p = strstr(log, " bytes of output unread");
		while (p > log && p[-1] >= '0' && p[-1] <= '9')
			p--;
	}
	ck_assert_int_eq(sscanf(p, "%zu", &unread), 1);
	ck_assert_msg(unread <= 4096 + reply_size,
	    "closed with %zu bytes unread; limit 4096 + one reply of %zu",
	    unread, reply_size);
	tc_close(deaf);
	tc_close(owner);
	dlmd_stop_clean(&d);
}
END_TEST

/* An integer parameter past INT64_MAX is out of range, not "not an integer". */
START_TEST(huge_lease_is_out_of_range)
{
	struct dlmd_proc d;
	struct tc *c;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	struct reply *r;

	dlmd_start(&d, (char *)NULL);
	c = tc_connect(&d);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, 0);
	msgpack_pack_uint32(&pk, 7);
	msgpack_pack_str_with_body(&pk, "hello", 5);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	msgpack_pack_str_with_body(&pk, "proto", 5);
	msgpack_pack_uint8(&pk, 1);
	msgpack_pack_str_with_body(&pk, "lease_ms", 8);
	msgpack_pack_uint64(&pk, (uint64_t)1 << 63);
	tc_send_raw(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	r = tc_wait(c, 7, 5000);
	ck_assert_ptr_nonnull(r);
	ck_assert_str_eq(reply_errname(r), "BAD_REQUEST");
	ck_assert_msg(strstr(reply_errmsg(r), "between") != NULL, "%s",
	    reply_errmsg(r));
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/* A reload says the log level by name, as the settings spell it. */
START_TEST(reload_names_the_log_level)
{
	struct dlmd_proc d;

	dlmd_start(&d, "--log-level", "info", (char *)NULL);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "reloaded"));
	ck_assert(dlmd_log_has(&d, "log level info"));
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * The fd-limit warning is for a max-clients the user set and the hard
 * limit cannot meet, not for the default in a container.
 */
START_TEST(fd_limit_warning_only_for_a_set_limit)
{
	struct rlimit rl;
	struct dlmd_proc d;
	char want[32];

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 60000 ||
	    geteuid() == 0) {
		/* Root raises the hard limit, and a high one is met. */
		rl.rlim_max = rl.rlim_cur = 4096;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	/* The default max-clients (65536) is above the hard limit. */
	dlmd_start(&d, (char *)NULL);
	ck_assert(dlmd_log_has(&d, "ready"));
	ck_assert_ptr_null(strstr(log_text(&d, NULL), "fewer than"));
	dlmd_stop_clean(&d);

	snprintf(want, sizeof want, "%llu",
	    (unsigned long long)rl.rlim_max + 1000);
	dlmd_start(&d, "--max-clients", want, (char *)NULL);
	ck_assert(dlmd_log_has(&d, "fewer than --max-clients"));
	dlmd_stop_clean(&d);
}
END_TEST

/* Bind a datagram socket at /dev/log; -1 when the test cannot own it. */
static int
fake_syslog(void)
{
	struct sockaddr_un sun;
	int fd;

	if (geteuid() != 0 || access("/dev/log", F_OK) == 0)
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/dev/log");
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static long
vm_size_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmSize: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static bool
maps_have(pid_t pid, const char *what)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/*
 * Detached, dlmd's stderr is /dev/null: running out of memory must still
 * be said, through syslog, before it dies. The test owns /dev/log for the
 * while (root, and only on a machine without a syslog daemon), caps the
 * daemon's address space, and feeds it a frame too big to buffer.
 */
START_TEST(out_of_memory_reaches_syslog_when_detached)
{
	char sock[128], listen[140], pidfile[128], buf[2048];
	const char *args[] = { "-d", "-l", listen, "--pidfile", pidfile,
	    "--max-request", "16777216", NULL };
	struct rlimit rl;
	struct sockaddr_un sun;
	bool heard = false;
	int logfd, fd;
	long vm;
	pid_t pid;

	if ((logfd = fake_syslog()) < 0) {
		fprintf(stderr, "skipped: needs root and no /dev/log\n");
		return;
	}
	snprintf(sock, sizeof sock, "%s/s.sock", tmpdir);
	snprintf(listen, sizeof listen, "unix:%s", sock);
	snprintf(pidfile, sizeof pidfile, "%s/dlmd.pid", tmpdir);
	ck_assert_int_eq(run_dlmd_bounded(10000, NULL, args), 0);
	pid = (pid_t)atol(file_text(pidfile));
	ck_assert_int_gt(pid, 0);
	if (maps_have(pid, "libasan") || maps_have(pid, "libtsan") ||
	    maps_have(pid, "vgpreload")) {
		/* Their allocators own the address space; no cap works. */
		kill(pid, SIGTERM);
		close(logfd);
		unlink("/dev/log");
		return;
	}
	vm = vm_size_kib(pid);
	ck_assert_int_gt(vm, 0);
	rl.rlim_cur = rl.rlim_max = (rlim_t)(vm + 2048) * 1024;
	ck_assert_int_eq(prlimit(pid, RLIMIT_AS, &rl, NULL), 0);

	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sock);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof sun), 0);
	{
		/* A str of 16 MB - 16 bytes: the frame is whole only at the end. */
		static char chunk[65536];
		const unsigned char head[] = { 0xdb, 0x00, 0xff, 0xff, 0xf0 };
		size_t sent = 0;

		ck_assert_int_eq(write(fd, head, sizeof head), sizeof head);
		memset(chunk, 'x', sizeof chunk);
		while (sent < 16u * 1024 * 1024 - 64 && kill(pid, 0) == 0) {
			ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			sent += (size_t)n;
		}
	}
	close(fd);
	for (int i = 0; i < 500 && !heard; i++) {
		struct pollfd pfd = { logfd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, 10) != 1)
			continue;
		n = recv(logfd, buf, sizeof buf - 1, 0);
		if (n > 0) {
			buf[n] = '\0';
			heard = strstr(buf, "out of memory") != NULL;
		}
	}
	kill(pid, SIGKILL);
	close(logfd);
	unlink("/dev/log");
	ck_assert_msg(heard, "dlmd died of no memory without a word to syslog");
}
END_TEST

static Suite *
hostile_suite(void)
{
	Suite *s = suite_create("dlmd_hostile");
	TCase *tc = tcase_create("hostile");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, client_strings_cannot_forge_log_lines);
	tcase_add_test(tc, bad_addresses_exit_2);
	tcase_add_test(tc, check_config_accepts_good_addresses);
	tcase_add_test(tc, port_zero_listener_logs_its_port);
	tcase_add_test(tc, max_output_holds_per_reply);
	tcase_add_test(tc, huge_lease_is_out_of_range);
	tcase_add_test(tc, reload_names_the_log_level);
	tcase_add_test(tc, fd_limit_warning_only_for_a_set_limit);
	tcase_add_test(tc, out_of_memory_reaches_syslog_when_detached);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(hostile_suite());
}
