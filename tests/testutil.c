/* Test fixtures: see testutil.h. */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "frame.h"
#include "mpack.h"
#include "testutil.h"

void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

const char *
dlmd_path(void)
{
	const char *p = getenv("DLMD");

	return p != NULL ? p : "../dlmd/dlmd";
}

int
free_tcp_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

int
loopback_connect(int port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static bool
tcp_accepts(int port)
{
	int fd = loopback_connect(port);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static void
print_log(const struct dlmd_proc *d)
{
	char line[1024];
	FILE *f = fopen(d->log, "r");

	if (f == NULL)
		return;
	fprintf(stderr, "---- dlmd log %s ----\n", d->log);
	while (fgets(line, sizeof line, f) != NULL)
		fputs(line, stderr);
	fprintf(stderr, "---- end of dlmd log ----\n");
	fclose(f);
}

static void
dlmd_vstart(struct dlmd_proc *d, bool tcp, const char *arg, va_list ap)
{
	const char *argv[64];
	char listen_unix[320], listen_tcp[64];
	int argc = 0;
	uint64_t deadline;

	memset(d, 0, sizeof *d);
	snprintf(d->dir, sizeof d->dir, "/tmp/dlmtest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->sock, sizeof d->sock, "%s/dlmd.sock", d->dir);
	snprintf(d->log, sizeof d->log, "%s/dlmd.log", d->dir);
	snprintf(listen_unix, sizeof listen_unix, "unix:%s", d->sock);
	argv[argc++] = dlmd_path();
	/* Not whatever settings file this machine has; a test may add -c. */
	argv[argc++] = "-c";
	argv[argc++] = "/dev/null";
	argv[argc++] = "-f";
	argv[argc++] = "-v";
	argv[argc++] = "-l";
	argv[argc++] = listen_unix;
	if (tcp) {
		d->port = free_tcp_port();
		snprintf(listen_tcp, sizeof listen_tcp, "tcp:127.0.0.1:%d",
		    d->port);
		argv[argc++] = "-l";
		argv[argc++] = listen_tcp;
	}
	for (; arg != NULL && argc < 62; arg = va_arg(ap, const char *))
		argv[argc++] = arg;
	argv[argc] = NULL;

	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		/* Never outlive the test, even one that fails halfway. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	/* Ready when the socket accepts (slow under valgrind). */
	deadline = mono_ms() + 20000;
	for (;;) {
		struct sockaddr_un sun;
		int fd, status;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			print_log(d);
			ck_abort_msg("dlmd exited at start (status %d)", status);
		}
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		ck_assert_uint_lt(strlen(d->sock), sizeof sun.sun_path);
		memcpy(sun.sun_path, d->sock, strlen(d->sock));
		if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0 &&
		    (!tcp || tcp_accepts(d->port))) {
			close(fd);
			break;
		}
		close(fd);
		if (mono_ms() > deadline) {
			print_log(d);
			ck_abort_msg("dlmd did not start listening");
		}
		sleep_ms(5);
	}
}

void
dlmd_start(struct dlmd_proc *d, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	dlmd_vstart(d, false, arg, ap);
	va_end(ap);
}

void
dlmd_start_tcp(struct dlmd_proc *d, const char *arg, ...)
{
	va_list ap;

	va_start(ap, arg);
	dlmd_vstart(d, true, arg, ap);
	va_end(ap);
}

int
dlmd_stop(struct dlmd_proc *d)
{
	uint64_t deadline = mono_ms() + 20000;
	int status;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	while (waitpid(d->pid, &status, WNOHANG) != d->pid) {
		if (mono_ms() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &status, 0);
			d->pid = 0;
			return -1;
		}
		sleep_ms(5);
	}
	d->pid = 0;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

bool
dlmd_log_has(const struct dlmd_proc *d, const char *needle)
{
	static char buf[1 << 20];

	for (int i = 0; i < 500; i++) {
		int fd = open(d->log, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;

		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, needle) != NULL)
			return true;
		sleep_ms(10);
	}
	return false;
}

static bool
log_has_sanitizer_report(const struct dlmd_proc *d)
{
	char line[1024];
	bool found = false;
	FILE *f = fopen(d->log, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, "AddressSanitizer") != NULL ||
		    strstr(line, "LeakSanitizer") != NULL ||
		    strstr(line, "runtime error:") != NULL;
	fclose(f);
	return found;
}

void
dlmd_stop_clean(struct dlmd_proc *d)
{
	int status = dlmd_stop(d);
	bool report = log_has_sanitizer_report(d);

	if (status != 0 || report)
		print_log(d);
	ck_assert_msg(status == 0, "dlmd exited with status %d", status);
	ck_assert_msg(!report, "dlmd's log has a sanitizer report");
	unlink(d->log);
	unlink(d->sock);
	rmdir(d->dir);
}

static struct tc *
tc_new(int fd)
{
	struct tc *c = calloc(1, sizeof *c);

	ck_assert_ptr_nonnull(c);
	c->fd = fd;
	c->next_id = 1;
	return c;
}

struct tc *
tc_connect_unix(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof sun.sun_path);
	memcpy(sun.sun_path, path, strlen(path));
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0,
	    "connect %s: %s", path, strerror(errno));
	return tc_new(fd);
}

struct tc *
tc_connect_tcp(int port)
{
	int fd = loopback_connect(port), one = 1;

	ck_assert_msg(fd >= 0, "connect 127.0.0.1:%d: %s", port,
	    strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return tc_new(fd);
}

struct tc *
tc_connect(const struct dlmd_proc *d)
{
	return tc_connect_unix(d->sock);
}

static void
reply_free_list(struct reply *r)
{
	while (r != NULL) {
		struct reply *next = r->next;

		msgpack_zone_free(r->zone);
		free(r);
		r = next;
	}
}

void
tc_close(struct tc *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	reply_free_list(c->queue);
	reply_free_list(c->owned);
	free(c->buf);
	free(c);
}

void
tc_send_raw(struct tc *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			/* Closed by the server: what waits for a reply says. */
			c->eof = true;
			return;
		}
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static uint32_t
tc_vsend(struct tc *c, const char *method, const char *fmt, va_list ap)
{
	msgpack_sbuffer sb;
	struct mpw w;
	uint32_t id = c->next_id++, nkeys = 0;
	char spec[512], *tok, *save = NULL;

	snprintf(spec, sizeof spec, "%s", fmt != NULL ? fmt : "");
	for (const char *p = spec; *p != '\0'; p++)
		if (*p == ':')
			nkeys++;
	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, id);
	mpw_str(&w, method);
	mpw_array(&w, 1);
	mpw_map(&w, nkeys);
	for (tok = strtok_r(spec, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(tok, ':');

		ck_assert_ptr_nonnull(colon);
		*colon = '\0';
		mpw_key(&w, tok);
		switch (colon[1]) {
		case 's':
			mpw_str(&w, va_arg(ap, const char *));
			break;
		case 'i':
			mpw_i64(&w, va_arg(ap, long long));
			break;
		case 'b':
			mpw_bool(&w, va_arg(ap, int) != 0);
			break;
		case 'n':
			mpw_nil(&w);
			break;
		case 'y': {
			const void *p = va_arg(ap, const void *);

			mpw_bin(&w, p, va_arg(ap, size_t));
			break;
		}
		default:
			ck_abort_msg("bad tc_send format '%s'", fmt);
		}
	}
	ck_assert_int_eq(w.err, 0);
	tc_send_raw(c, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return id;
}

uint32_t
tc_send(struct tc *c, const char *method, const char *fmt, ...)
{
	va_list ap;
	uint32_t id;

	va_start(ap, fmt);
	id = tc_vsend(c, method, fmt, ap);
	va_end(ap);
	return id;
}

/* Decode whole frames from the buffer into the queue. */
static void
tc_parse(struct tc *c)
{
	for (;;) {
		struct reply *r, **tail;
		size_t flen, off = 0;
		const msgpack_object *v;
		char *raw;
		enum frame_status st;

		st = frame_scan(c->buf, c->len, 64 * 1024 * 1024, 16, &flen);
		if (st == FRAME_INCOMPLETE)
			return;
		ck_assert_msg(st == FRAME_COMPLETE, "server sent bad frame: %s",
		    frame_status_str(st));
		r = calloc(1, sizeof *r);
		r->zone = msgpack_zone_new(8192);
		/* Keep the bytes: decoded strings point into them. */
		raw = msgpack_zone_malloc(r->zone, flen);
		memcpy(raw, c->buf, flen);
		memmove(c->buf, c->buf + flen, c->len - flen);
		c->len -= flen;
		ck_assert_int_eq(msgpack_unpack(raw, flen, &off, r->zone,
		    &r->obj), MSGPACK_UNPACK_SUCCESS);
		ck_assert_int_eq(r->obj.type, MSGPACK_OBJECT_ARRAY);
		v = r->obj.via.array.ptr;
		r->type = (int)v[0].via.u64;
		if (r->type == 1) {
			ck_assert_int_eq(r->obj.via.array.size, 4);
			r->has_msgid = v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
			r->msgid = (uint32_t)v[1].via.u64;
			if (v[2].type != MSGPACK_OBJECT_NIL) {
				r->error = &v[2];
				r->err = (int)obj_u64(&v[2], "code");
			}
			r->result = &v[3];
		} else {
			ck_assert_int_eq(r->type, 2);
			ck_assert_int_eq(r->obj.via.array.size, 3);
			snprintf(r->method, sizeof r->method, "%.*s",
			    (int)v[1].via.str.size, v[1].via.str.ptr);
			ck_assert_int_eq(v[2].via.array.size, 1);
			r->params = &v[2].via.array.ptr[0];
		}
		for (tail = &c->queue; *tail != NULL; tail = &(*tail)->next)
			;
		*tail = r;
	}
}

/* Read what arrives within timeout_ms; false on timeout or EOF. */
static bool
tc_fill(struct tc *c, int timeout_ms)
{
	struct pollfd pfd = { c->fd, POLLIN, 0 };
	ssize_t n;

	if (c->eof)
		return false;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return false;
	if (c->cap - c->len < 65536) {
		c->cap = c->cap * 2 + 65536;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	n = read(c->fd, c->buf + c->len, c->cap - c->len);
	if (n <= 0) {
		c->eof = true;
		return false;
	}
	c->len += (size_t)n;
	tc_parse(c);
	return true;
}

static struct reply *
tc_take(struct tc *c, bool (*match)(const struct reply *, uint32_t),
    uint32_t arg, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct reply **pp;
		int64_t left;

		for (pp = &c->queue; *pp != NULL; pp = &(*pp)->next) {
			struct reply *r = *pp;

			if (match(r, arg)) {
				*pp = r->next;
				r->next = c->owned;
				c->owned = r;
				return r;
			}
		}
		left = (int64_t)deadline - (int64_t)mono_ms();
		if (left <= 0 || !tc_fill(c, (int)left))
			if (left <= 0 || c->eof)
				return NULL;
	}
}

static bool
match_msgid(const struct reply *r, uint32_t id)
{
	return r->type == 1 && r->has_msgid && r->msgid == id;
}

static bool
match_notify(const struct reply *r, uint32_t unused)
{
	return r->type == 2;
}

static bool
match_any(const struct reply *r, uint32_t unused)
{
	return true;
}

struct reply *
tc_wait(struct tc *c, uint32_t msgid, int timeout_ms)
{
	return tc_take(c, match_msgid, msgid, timeout_ms);
}

struct reply *
tc_wait_notify(struct tc *c, int timeout_ms)
{
	return tc_take(c, match_notify, 0, timeout_ms);
}

struct reply *
tc_next(struct tc *c, int timeout_ms)
{
	return tc_take(c, match_any, 0, timeout_ms);
}

struct reply *
tc_call(struct tc *c, const char *method, const char *fmt, ...)
{
	struct reply *r;
	va_list ap;
	uint32_t id;

	va_start(ap, fmt);
	id = tc_vsend(c, method, fmt, ap);
	va_end(ap);
	r = tc_wait(c, id, 10000);
	ck_assert_msg(r != NULL, "no reply to %s%s", method, c->eof ?
	    ": the server closed the connection" : "");
	return r;
}

struct reply *
tc_hello(struct tc *c, const char *name)
{
	struct reply *r;

	if (name != NULL)
		r = tc_call(c, "hello", "proto:i client:s", 1LL, name);
	else
		r = tc_call(c, "hello", "proto:i", 1LL);
	ck_assert_msg(r->err == 0, "hello failed: %s", reply_errmsg(r));
	return r;
}

bool
tc_closed(struct tc *c, int timeout_ms)
{
	uint64_t deadline = mono_ms() + (uint64_t)timeout_ms;

	while (!c->eof) {
		int64_t left = (int64_t)deadline - (int64_t)mono_ms();

		if (left <= 0)
			return false;
		tc_fill(c, (int)left);
	}
	return true;
}

const msgpack_object *
reply_get(const struct reply *r, const char *key)
{
	return mpr_get(r->type == 2 ? r->params : r->result, key);
}

uint64_t
obj_u64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = mpr_get(m, key);
	uint64_t v;

	ck_assert_msg(o != NULL, "no key '%s'", key);
	ck_assert_msg(mpr_uint(o, &v), "key '%s' is no unsigned int", key);
	return v;
}

const char *
obj_str(const msgpack_object *m, const char *key)
{
	static char buf[4][1024];
	static int which;
	const msgpack_object *o = mpr_get(m, key);
	char *out = buf[which++ & 3];

	ck_assert_msg(o != NULL, "no key '%s'", key);
	ck_assert_msg(o->type == MSGPACK_OBJECT_STR, "key '%s' is no str", key);
	snprintf(out, 1024, "%.*s", (int)o->via.str.size, o->via.str.ptr);
	return out;
}

uint64_t
reply_u64(const struct reply *r, const char *key)
{
	ck_assert_msg(r->err == 0, "unexpected error: %s", reply_errmsg(r));
	return obj_u64(r->type == 2 ? r->params : r->result, key);
}

bool
reply_bool(const struct reply *r, const char *key)
{
	const msgpack_object *o = reply_get(r, key);
	bool v;

	ck_assert_msg(o != NULL && mpr_bool(o, &v), "no bool '%s'", key);
	return v;
}

const char *
reply_str(const struct reply *r, const char *key)
{
	ck_assert_msg(r->err == 0, "unexpected error: %s", reply_errmsg(r));
	return obj_str(r->type == 2 ? r->params : r->result, key);
}

const char *
reply_errname(const struct reply *r)
{
	return r->error != NULL ? obj_str(r->error, "name") : "";
}

const char *
reply_errmsg(const struct reply *r)
{
	return r->error != NULL ? obj_str(r->error, "message") : "";
}

int
run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
