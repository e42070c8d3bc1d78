/*
 * Identities and access rules against a real dlmd: rights granted and
 * refused by the test's own Unix uid, user and group names (a group's
 * listed members too, and ids with no names), and by named tokens over
 * TCP; the first-match rule, listings filtered, watch refused, a reload
 * that takes a right away at once while a held lock stays held and a
 * queued acquire waits on, a watch silenced until its view right comes
 * back; secrets kept out of replies, metrics and the log; a reset's
 * refusal that names no lock the caller may not view; bad rules files at
 * start and at reload, hostile rules files (the fuzz seeds), and no rules
 * file behaving as before. TLS certificate identities are in check_tls.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
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
	snprintf(tmpdir, sizeof tmpdir, "/tmp/dlmacl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	char cmd[128];

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

static void __attribute__((format(printf, 2, 3)))
write_file(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	ck_assert_ptr_nonnull(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
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

static void
assert_refused(struct reply *r, const char *needle)
{
	ck_assert_str_eq(reply_errname(r), "PERMISSION");
	ck_assert_msg(strstr(reply_errmsg(r), needle) != NULL,
	    "'%s' not in '%s'", needle, reply_errmsg(r));
}

static void
assert_ok(struct reply *r)
{
	ck_assert_msg(r->err == 0, "unexpected error: %s", reply_errmsg(r));
}

/* The names in a locks listing, space-separated. */
static const char *
listed(struct reply *r)
{
	static char buf[1024];
	const msgpack_object *a = reply_get(r, "locks");

	buf[0] = '\0';
	ck_assert_ptr_nonnull(a);
	for (uint32_t i = 0; i < a->via.array.size; i++) {
		strcat(buf, obj_str(&a->via.array.ptr[i], "name"));
		strcat(buf, " ");
	}
	return buf;
}

/* A TCP connection that says hello with a named token's secret. */
static struct tc *
token_client(const struct dlmd_proc *d, const char *name, const char *secret)
{
	struct tc *c = tc_connect_tcp(d->port);

	assert_ok(tc_call(c, "hello", "proto:i client:s auth:s", 1LL, name,
	    secret));
	return c;
}

START_TEST(no_rules_file_is_as_before)
{
	struct dlmd_proc d;
	struct tc *a, *b;

	dlmd_start_tcp(&d, (char *)NULL);
	a = tc_connect(&d);
	tc_hello(a, "a");
	b = tc_connect_tcp(d.port);
	tc_hello(b, "b");
	assert_ok(tc_call(b, "acquire", "lock:s", "any/x"));
	assert_ok(tc_call(b, "lock", "lock:s", "any/x"));
	ck_assert_str_eq(listed(tc_call(b, "locks", "")), "any/x ");
	/* Over TCP without the admin token: no admin, as before. */
	ck_assert_str_eq(reply_errname(tc_call(b, "force_release",
	    "lock:s", "any/x")), "PERMISSION");
	/* The server's own user over the Unix socket is an admin. */
	assert_ok(tc_call(a, "force_release", "lock:s", "any/x"));
	tc_close(a);
	tc_close(b);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(unix_uid_rights)
{
	const char *acl = tmp_path("acl");
	struct dlmd_proc d;
	struct tc *c;
	struct reply *r;

	write_file(acl, "# the test's own uid\n"
	    "allow uid:%lu lock,view app/\n"
	    "allow gid:%lu view shared/\n"
	    "allow uid:%lu admin app/adm/\n",
	    (unsigned long)getuid(), (unsigned long)getgid(),
	    (unsigned long)getuid());
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	assert_ok(tc_call(c, "acquire", "lock:s", "app/x"));
	r = tc_call(c, "acquire", "lock:s", "other/x");
	assert_refused(r, "has no lock right on lock 'other/x': no rule in");
	ck_assert(strstr(reply_errmsg(r), "uid") != NULL);
	/* View by the group rule, not lock. */
	assert_refused(tc_call(c, "acquire", "lock:s", "shared/x"), "lock");
	ck_assert_int_eq(tc_call(c, "check", "lock:s token:i", "shared/x",
	    1LL)->err, 0);
	assert_refused(tc_call(c, "check", "lock:s token:i", "other/x", 1LL),
	    "has no view right on lock 'other/x'");
	assert_refused(tc_call(c, "lock", "lock:s", "other/x"), "view");
	assert_refused(tc_call(c, "watch", "lock:s", "other/x"),
	    "has no view right on lock 'other/x'");
	assert_ok(tc_call(c, "watch", "lock:s", "app/x"));
	/* Admin: only under app/adm/, even for the server's own user. */
	assert_refused(tc_call(c, "force_release", "lock:s", "app/x"),
	    "has no admin right on lock 'app/x'");
	assert_ok(tc_call(c, "acquire", "lock:s", "app/adm/1"));
	assert_ok(tc_call(c, "force_release", "lock:s", "app/adm/1"));
	/* Letting go is never refused. */
	assert_ok(tc_call(c, "release", "lock:s", "app/x"));
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * Connect over dlmd's Unix socket as uid and gid: as ourselves directly,
 * else (as root) with those as the effective ids for the connect, which
 * is when the kernel takes the credentials SO_PEERCRED tells.
 */
static struct tc *
connect_as(struct dlmd_proc *d, uid_t uid, gid_t gid)
{
	struct tc *c;

	if (uid == geteuid() && gid == getegid())
		return tc_connect(d);
	ck_assert_int_eq(geteuid(), 0);
	/* The other user must reach the socket in the test's directory. */
	ck_assert_int_eq(chmod(d->dir, 0711), 0);
	ck_assert_int_eq(setegid(gid), 0);
	ck_assert_int_eq(seteuid(uid), 0);
	c = tc_connect(d);
	ck_assert_int_eq(seteuid(0), 0);
	ck_assert_int_eq(setegid(0), 0);
	return c;
}

/* user:NAME and group:NAME, named as the user and group databases do. */
START_TEST(unix_user_and_group_names)
{
	const char *acl = tmp_path("acl");
	const struct passwd *pw = getpwuid(getuid());
	const struct group *gr = getgrgid(getgid());
	char me[256], mygroup[256], other[256] = "", othergroup[256] = "";
	char why[512];
	struct dlmd_proc d;
	struct tc *c;
	struct reply *r;

	ck_assert_ptr_nonnull(pw);
	ck_assert_ptr_nonnull(gr);
	snprintf(me, sizeof me, "%s", pw->pw_name);
	snprintf(mygroup, sizeof mygroup, "%s", gr->gr_name);
	/* Another user, and a group we are not in (neither primary nor member). */
	setpwent();
	while ((pw = getpwent()) != NULL && other[0] == '\0')
		if (pw->pw_uid != getuid())
			snprintf(other, sizeof other, "%s", pw->pw_name);
	endpwent();
	setgrent();
	while ((gr = getgrent()) != NULL && othergroup[0] == '\0') {
		bool member = gr->gr_gid == getgid();

		for (char **m = gr->gr_mem; *m != NULL; m++)
			member |= strcmp(*m, me) == 0;
		if (!member)
			snprintf(othergroup, sizeof othergroup, "%s",
			    gr->gr_name);
	}
	endgrent();
	ck_assert_msg(other[0] != '\0' && othergroup[0] != '\0',
	    "no other user or group in the databases");

	write_file(acl, "deny user:%s lock u/no/\n"
	    "allow user:%s lock,view u/\n"
	    "allow user:%s all *\n"
	    "allow group:%s all *\n"
	    "deny group:%s view g/hidden/\n"
	    "allow group:%s lock,view g/\n",
	    me, me, other, othergroup, mygroup, mygroup);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	assert_ok(tc_call(c, "acquire", "lock:s", "u/1"));
	assert_ok(tc_call(c, "lock", "lock:s", "u/1"));
	r = tc_call(c, "acquire", "lock:s", "u/no/1");
	snprintf(why, sizeof why, "user:%s (uid %lu) has no lock right on "
	    "lock 'u/no/1': denied by rule %s:1", me, (unsigned long)getuid(),
	    acl);
	assert_refused(r, why);
	/* Rules for another user and a group we are not in grant us nothing. */
	assert_refused(tc_call(c, "acquire", "lock:s", "x/1"), "no rule in");
	assert_refused(tc_call(c, "check", "lock:s token:i", "x/1", 1LL),
	    "no rule in");
	/* Our primary group's rules: first match, view denied under hidden/. */
	assert_ok(tc_call(c, "acquire", "lock:s", "g/1"));
	assert_ok(tc_call(c, "acquire", "lock:s", "g/hidden/1"));
	assert_ok(tc_call(c, "lock", "lock:s", "g/1"));
	assert_refused(tc_call(c, "lock", "lock:s", "g/hidden/1"),
	    "has no view right on lock 'g/hidden/1': denied by rule");
	ck_assert_str_eq(listed(tc_call(c, "locks", "prefix:s", "g/")), "g/1 ");
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * A group matches its members as the group database lists them, not only
 * those whose primary group it is (dlmd.conf(5)). This needs a user listed
 * in a group other than their primary one: ourselves, or as root anyone.
 */
START_TEST(unix_supplementary_group)
{
	const char *acl = tmp_path("acl");
	const struct group *gr;
	char user[256] = "", group[256] = "";
	uid_t uid = 0;
	gid_t gid = 0;
	struct dlmd_proc d;
	struct tc *c;

	setgrent();
	while ((gr = getgrent()) != NULL) {
		for (char **m = gr->gr_mem; *m != NULL; m++) {
			const struct passwd *pw = getpwnam(*m);

			if (pw == NULL || pw->pw_gid == gr->gr_gid ||
			    (pw->pw_uid != getuid() && geteuid() != 0))
				continue;
			/* Ourselves if we can, else the first one found. */
			if (user[0] == '\0' || pw->pw_uid == getuid()) {
				snprintf(user, sizeof user, "%s", pw->pw_name);
				snprintf(group, sizeof group, "%s",
				    gr->gr_name);
				uid = pw->pw_uid;
				gid = pw->pw_gid;
			}
		}
	}
	endgrent();
	if (user[0] == '\0') {
		fprintf(stderr, "unix_supplementary_group: skipped: no user "
		    "listed in a group besides their primary one%s\n",
		    geteuid() != 0 ? " (or not root)" : "");
		return;
	}

	write_file(acl, "allow group:%s lock,view sup/\n", group);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = connect_as(&d, uid, gid);
	tc_hello(c, "member");
	assert_ok(tc_call(c, "acquire", "lock:s", "sup/1"));
	assert_ok(tc_call(c, "lock", "lock:s", "sup/1"));
	assert_refused(tc_call(c, "acquire", "lock:s", "elsewhere/1"),
	    "no rule in");
	tc_close(c);
	/* As root, the control: a user not in that group is refused. */
	if (uid != getuid()) {
		c = tc_connect(&d);
		tc_hello(c, "outsider");
		assert_refused(tc_call(c, "acquire", "lock:s", "sup/2"),
		    "no rule in");
		tc_close(c);
	}
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * A peer whose uid and gid have no entry: named uid:N, matched by uid:N and
 * gid:N rules (a gid with no group still matches primary groups). Root only.
 */
START_TEST(unix_ids_without_names)
{
	const char *acl = tmp_path("acl");
	uid_t uid = 54321;
	char why[256];
	struct dlmd_proc d;
	struct tc *c;

	if (geteuid() != 0) {
		fprintf(stderr, "unix_ids_without_names: skipped: not root\n");
		return;
	}
	while (getpwuid(uid) != NULL || getgrgid((gid_t)uid) != NULL)
		uid++;
	write_file(acl, "allow uid:%lu lock nameless/\n"
	    "allow gid:%lu view nameless/\n",
	    (unsigned long)uid, (unsigned long)uid);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = connect_as(&d, uid, (gid_t)uid);
	tc_hello(c, "nameless");
	assert_ok(tc_call(c, "acquire", "lock:s", "nameless/1"));
	assert_ok(tc_call(c, "lock", "lock:s", "nameless/1"));
	snprintf(why, sizeof why, "uid:%lu has no admin right on lock "
	    "'nameless/1': no rule in", (unsigned long)uid);
	assert_refused(tc_call(c, "force_release", "lock:s", "nameless/1"),
	    why);
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(first_match_decides)
{
	const char *acl = tmp_path("acl");
	unsigned long me = (unsigned long)getuid();
	struct dlmd_proc d;
	struct tc *c;

	write_file(acl, "deny uid:%lu lock app/secret/\n"
	    "allow uid:%lu lock,view app/\n", me, me);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	assert_refused(tc_call(c, "acquire", "lock:s", "app/secret/1"),
	    ":1");
	assert_ok(tc_call(c, "acquire", "lock:s", "app/1"));
	/* The deny names lock only: view falls through to the allow. */
	assert_ok(tc_call(c, "lock", "lock:s", "app/1"));
	ck_assert_str_eq(reply_errname(tc_call(c, "lock", "lock:s",
	    "app/secret/1")), "NOT_FOUND");
	tc_close(c);
	dlmd_stop_clean(&d);

	/* The other order: the broader allow comes first and wins. */
	write_file(acl, "allow uid:%lu lock,view app/\n"
	    "deny uid:%lu lock app/secret/\n", me, me);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	assert_ok(tc_call(c, "acquire", "lock:s", "app/secret/1"));
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(listings_filtered)
{
	const char *acl = tmp_path("acl");
	struct dlmd_proc d;
	struct tc *c;

	write_file(acl, "allow * lock *\nallow * view pub/\n");
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	assert_ok(tc_call(c, "acquire", "lock:s", "priv/a"));
	assert_ok(tc_call(c, "acquire", "lock:s", "pub/b"));
	assert_ok(tc_call(c, "acquire", "lock:s", "priv/c"));
	assert_ok(tc_call(c, "acquire", "lock:s", "pub/d"));
	ck_assert_str_eq(listed(tc_call(c, "locks", "")), "pub/b pub/d ");
	ck_assert_str_eq(listed(tc_call(c, "locks", "prefix:s", "priv/")), "");
	/* A page of one: the hidden ones between are skipped, not counted. */
	ck_assert_str_eq(listed(tc_call(c, "locks", "limit:i", 1LL)), "pub/b ");
	ck_assert_str_eq(listed(tc_call(c, "locks", "after:s", "pub/b")),
	    "pub/d ");
	assert_refused(tc_call(c, "lock", "lock:s", "priv/a"), "no rule");
	tc_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(named_tokens_over_tcp)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	struct dlmd_proc d;
	struct tc *anon, *alice, *bob;
	struct reply *r;
	char cmd[600];

	write_file(tokens, "# name secret\nalice s3cr3t-alice-0123\n"
	    "bob s3cr3t-bob-4567\n");
	write_file(acl, "allow token:alice all *\nallow token:bob view *\n"
	    "deny token:bob lock *\n");
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	anon = tc_connect_tcp(d.port);
	r = tc_call(anon, "hello", "proto:i", 1LL);
	assert_refused(r, "requires a token");
	r = tc_call(anon, "hello", "proto:i auth:s", 1LL, "s3cr3t-wrong-0000");
	assert_refused(r, "not one of its tokens");
	tc_close(anon);

	alice = tc_connect_tcp(d.port);
	assert_ok(tc_call(alice, "hello", "proto:i client:s auth:s", 1LL,
	    "alice", "s3cr3t-alice-0123"));
	bob = tc_connect_tcp(d.port);
	assert_ok(tc_call(bob, "hello", "proto:i client:s auth:s", 1LL,
	    "bob", "s3cr3t-bob-4567"));
	assert_ok(tc_call(alice, "acquire", "lock:s", "x"));
	r = tc_call(bob, "acquire", "lock:s", "y");
	assert_refused(r, "token:bob has no lock right on lock 'y': denied by rule");
	ck_assert(strstr(reply_errmsg(r), ":3") != NULL);
	assert_ok(tc_call(bob, "lock", "lock:s", "x"));
	assert_refused(tc_call(bob, "force_release", "lock:s", "x"),
	    "token:bob has no admin right");
	assert_refused(tc_call(bob, "reset_client", "client:s", "alice"),
	    "token:bob has no admin right on lock 'x'");
	assert_refused(tc_call(bob, "reset_all", ""), "admin");
	assert_ok(tc_call(alice, "force_release", "lock:s", "x"));
	assert_ok(tc_call(alice, "reset_client", "client:s", "bob"));
	tc_close(alice);
	tc_close(bob);
	/* No secret in the log (it has lines: the hello refusals). */
	ck_assert(dlmd_log_has(&d, "named tokens: 2"));
	snprintf(cmd, sizeof cmd, "grep -q s3cr3t %s", d.log);
	ck_assert_int_eq(system(cmd), 256);
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * "A waiting acquire waits on" (PROTOCOL.md): a reload that takes the lock
 * right away does not cancel a wait queued before it, which is granted
 * when the holder lets go; the next request that needs the right, a
 * convert of that very hold, is refused, and letting go is not.
 */
START_TEST(reload_leaves_a_waiting_acquire_waiting)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	unsigned long me = (unsigned long)getuid();
	struct dlmd_proc d;
	struct tc *h, *w;
	struct reply *r;
	uint32_t id;

	write_file(tokens, "waiter waiter-secret-7070\n");
	write_file(acl, "allow uid:%lu all *\nallow token:waiter lock app/\n",
	    me);
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	h = tc_connect(&d);
	tc_hello(h, "holder");
	w = token_client(&d, "waiter", "waiter-secret-7070");
	assert_ok(tc_call(h, "acquire", "lock:s", "app/q"));
	id = tc_send(w, "acquire", "lock:s timeout_ms:i", "app/q", 20000LL);
	/* The holder's watch says when the waiter is queued. */
	for (int i = 0; i < 500; i++) {
		r = tc_call(h, "watch", "lock:s", "app/q");
		if (reply_u64(r, "waiters") == 1)
			break;
		sleep_ms(10);
	}
	ck_assert_uint_eq(reply_u64(r, "waiters"), 1);

	write_file(acl, "allow uid:%lu all *\n", me);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "access rules: 1 from"));
	assert_ok(tc_call(h, "release", "lock:s", "app/q"));
	r = tc_wait(w, id, 5000);
	ck_assert_msg(r != NULL, "the waiting acquire had no answer");
	assert_ok(r);
	ck_assert_uint_gt(reply_u64(r, "token"), 0);
	assert_refused(tc_call(w, "convert", "lock:s mode:s", "app/q",
	    "shared"), "token:waiter has no lock right on lock 'app/q': no "
	    "rule in");
	assert_ok(tc_call(w, "release", "lock:s", "app/q"));
	tc_close(h);
	tc_close(w);
	dlmd_stop_clean(&d);
}
END_TEST

/* Does any string, binary or map key in o hold the bytes of secret? */
static bool
obj_holds(const msgpack_object *o, const char *secret)
{
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		return memmem(o->via.str.ptr, o->via.str.size, secret,
		    strlen(secret)) != NULL;
	case MSGPACK_OBJECT_BIN:
		return memmem(o->via.bin.ptr, o->via.bin.size, secret,
		    strlen(secret)) != NULL;
	case MSGPACK_OBJECT_ARRAY:
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (obj_holds(&o->via.array.ptr[i], secret))
				return true;
		return false;
	case MSGPACK_OBJECT_MAP:
		for (uint32_t i = 0; i < o->via.map.size; i++)
			if (obj_holds(&o->via.map.ptr[i].key, secret) ||
			    obj_holds(&o->via.map.ptr[i].val, secret))
				return true;
		return false;
	default:
		return false;
	}
}

/* Does the whole frame r hold the bytes of secret anywhere? */
static bool
reply_holds(const struct reply *r, const char *secret)
{
	return obj_holds(&r->obj, secret);
}

/* The page GET path on 127.0.0.1:port gives, headers and all. */
static const char *
http_page(int port, const char *path)
{
	static char page[65536];
	char req[256];
	size_t len = 0;
	ssize_t n;
	int fd = loopback_connect(port);

	ck_assert_int_ge(fd, 0);
	snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
	    path);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (len < sizeof page - 1 &&
	    (n = read(fd, page + len, sizeof page - 1 - len)) > 0)
		len += (size_t)n;
	page[len] = '\0';
	close(fd);
	ck_assert_msg(strstr(page, " 200 ") != NULL, "%s", page);
	return page;
}

/*
 * Secrets (named tokens, the client and admin tokens, and a near miss of
 * one) appear nowhere dlmd shows or writes: replies, the clients listing,
 * stats, metrics, or its log at the debug level, through a refused hello,
 * a reload and a reload refused for a bad tokens file.
 */
START_TEST(secrets_stay_out_of_sight)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	const char *client = tmp_path("client"), *admin = tmp_path("admin");
	static const char *secrets[] = {
		"Alice-Secret-7741", "Client-Secret-5512", "Admin-Secret-9023",
		"Alice-Secret-7742", "Bob-Secret-3390", "Carol-Secret-1187",
	};
	struct dlmd_proc d;
	struct tc *alice, *anon, *adm, *typo;
	struct reply *rs[8];
	char metrics[32], cmd[600];
	int mport = free_tcp_port(), n = 0;

	write_file(tokens, "alice %s\n", secrets[0]);
	write_file(client, "%s\n", secrets[1]);
	write_file(admin, "%s\n", secrets[2]);
	write_file(acl, "allow * all *\n");
	snprintf(metrics, sizeof metrics, "127.0.0.1:%d", mport);
	dlmd_start_tcp(&d, "-v", "--acl-file", acl, "--tokens-file", tokens,
	    "--token-file", client, "--admin-token-file", admin,
	    "--metrics-listen", metrics, (char *)NULL);
	ck_assert(dlmd_log_has(&d, "metrics on http://"));

	/* One char off alice's: refused, and the refusal quotes nothing. */
	typo = tc_connect_tcp(d.port);
	rs[n] = tc_call(typo, "hello", "proto:i client:s auth:s", 1LL,
	    "typo", secrets[3]);
	assert_refused(rs[n++], "not one of its tokens");
	alice = token_client(&d, "alice", secrets[0]);
	anon = token_client(&d, "anon", secrets[1]);
	adm = token_client(&d, "adm", secrets[2]);
	rs[n++] = tc_call(alice, "acquire", "lock:s", "s/1");
	rs[n++] = tc_call(adm, "clients", "");
	ck_assert_uint_eq(reply_get(rs[n - 1], "clients")->via.array.size, 3);
	rs[n++] = tc_call(alice, "stats", "");
	rs[n++] = tc_call(anon, "locks", "");
	rs[n++] = tc_call(adm, "reset_client", "client:s", "alice");
	assert_ok(rs[n - 1]);
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < sizeof secrets / sizeof *secrets; j++)
			ck_assert_msg(!reply_holds(rs[i], secrets[j]),
			    "reply %d holds secret %zu", i, j);
	for (size_t j = 0; j < sizeof secrets / sizeof *secrets; j++)
		ck_assert_msg(strstr(http_page(mport, "/metrics"),
		    secrets[j]) == NULL, "metrics hold secret %zu", j);
	/* Replies live until their connection is closed. */
	tc_close(typo);

	/* A reload with a new token, then one refused for a bad line. */
	write_file(tokens, "alice %s\nbob %s\n", secrets[0], secrets[4]);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "named tokens: 2"));
	write_file(tokens, "alice %s\ncarol %s extra\n", secrets[0],
	    secrets[5]);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "tokens:2: a line is NAME SECRET"));
	tc_close(alice);
	tc_close(anon);
	tc_close(adm);
	ck_assert(dlmd_log_has(&d, "hello from"));	/* debug lines are in */
	for (size_t j = 0; j < sizeof secrets / sizeof *secrets; j++) {
		snprintf(cmd, sizeof cmd, "grep -q -- %s %s", secrets[j],
		    d.log);
		ck_assert_msg(system(cmd) == 256, "the log holds secret %zu",
		    j);
	}
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * reset_client and reset_all need admin on every lock the client holds;
 * refused for one the caller may not even view, the refusal must not name
 * it (listings would not have shown it either).
 */
START_TEST(reset_refusal_hides_unviewable_locks)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	struct dlmd_proc d;
	struct tc *alice, *bob;
	struct reply *r;

	write_file(tokens, "alice alice-secret-4410\nbob bob-secret-8812\n");
	write_file(acl, "allow token:alice all *\n"
	    "allow token:bob all pub/\n");
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	alice = token_client(&d, "alice", "alice-secret-4410");
	bob = token_client(&d, "bob", "bob-secret-8812");
	assert_ok(tc_call(alice, "acquire", "lock:s", "pub/open"));
	assert_ok(tc_call(alice, "acquire", "lock:s", "zz/secret-plan"));
	ck_assert_str_eq(listed(tc_call(bob, "locks", "")), "pub/open ");
	r = tc_call(bob, "reset_client", "client:s", "alice");
	assert_refused(r, "token:bob has no admin right on a lock it may not "
	    "view: no rule in");
	ck_assert_msg(strstr(reply_errmsg(r), "secret-plan") == NULL, "%s",
	    reply_errmsg(r));
	r = tc_call(bob, "reset_all", "");
	assert_refused(r, "a lock it may not view");
	ck_assert_msg(strstr(reply_errmsg(r), "secret-plan") == NULL, "%s",
	    reply_errmsg(r));
	/* One it may view is still named, as any refusal names its lock. */
	assert_ok(tc_call(alice, "release", "lock:s", "zz/secret-plan"));
	write_file(acl, "allow token:alice all *\n"
	    "allow token:bob lock,view pub/\n");
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "reloaded"));
	assert_refused(tc_call(bob, "reset_client", "client:s", "alice"),
	    "token:bob has no admin right on lock 'pub/open': no rule in");
	tc_close(alice);
	tc_close(bob);
	dlmd_stop_clean(&d);
}
END_TEST

/*
 * A DEADLOCK refusal names another session's lock in its cycle only to a
 * caller who may view it: alice may lock anything but view only pub/, so
 * the cycle through bob's wait for hidden/c shows her no name there.
 */
START_TEST(deadlock_refusal_hides_unviewable_locks)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	const msgpack_object *cycle;
	struct tc *alice, *bob, *carol;
	struct dlmd_proc d;
	struct reply *r;

	write_file(tokens, "alice alice-secret-5501\nbob bob-secret-5502\n"
	    "carol carol-secret-5503\n");
	write_file(acl, "allow token:alice lock *\n"
	    "allow token:alice view pub/\n"
	    "allow token:bob all *\n"
	    "allow token:carol all *\n");
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	alice = token_client(&d, "alice", "alice-secret-5501");
	bob = token_client(&d, "bob", "bob-secret-5502");
	carol = token_client(&d, "carol", "carol-secret-5503");
	assert_ok(tc_call(alice, "acquire", "lock:s", "pub/a"));
	assert_ok(tc_call(bob, "acquire", "lock:s", "hidden/b"));
	assert_ok(tc_call(carol, "acquire", "lock:s", "hidden/c"));
	/* bob waits behind carol, carol behind alice. */
	(void)tc_send(bob, "acquire", "lock:s timeout_ms:i", "hidden/c",
	    30000LL);
	(void)tc_send(carol, "acquire", "lock:s timeout_ms:i", "pub/a",
	    30000LL);
	sleep_ms(100);
	r = tc_call(alice, "acquire", "lock:s timeout_ms:i", "hidden/b",
	    30000LL);
	ck_assert_str_eq(reply_errname(r), "DEADLOCK");
	ck_assert_msg(strstr(reply_errmsg(r), "hidden/c") == NULL &&
	    strstr(reply_errmsg(r), "a lock it may not view") != NULL &&
	    strstr(reply_errmsg(r), "'hidden/b'") != NULL &&
	    strstr(reply_errmsg(r), "'pub/a'") != NULL, "%s",
	    reply_errmsg(r));
	cycle = mpr_get(r->error, "cycle");
	ck_assert_ptr_nonnull(cycle);
	ck_assert_int_eq(cycle->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_eq(cycle->via.array.size, 3);
	for (uint32_t i = 0; i < 3; i++) {
		const char *who = obj_str(&cycle->via.array.ptr[i], "client");
		const msgpack_object *lock = mpr_get(&cycle->via.array.ptr[i],
		    "lock");

		ck_assert_ptr_nonnull(lock);
		if (strcmp(who, "bob") == 0)
			ck_assert_int_eq(lock->type, MSGPACK_OBJECT_NIL);
		else
			ck_assert_int_eq(lock->type, MSGPACK_OBJECT_STR);
	}
	tc_close(alice);
	tc_close(bob);
	tc_close(carol);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(reload_takes_a_right_away)
{
	const char *acl = tmp_path("acl");
	unsigned long me = (unsigned long)getuid();
	struct dlmd_proc d;
	struct tc *c, *w;
	struct reply *r;

	write_file(acl, "allow uid:%lu lock,view app/\n", me);
	dlmd_start(&d, "--acl-file", acl, (char *)NULL);
	c = tc_connect(&d);
	tc_hello(c, "me");
	w = tc_connect(&d);
	tc_hello(w, "watcher");
	assert_ok(tc_call(c, "acquire", "lock:s", "app/held"));
	assert_ok(tc_call(w, "watch", "lock:s", "app/w"));

	write_file(acl, "# view only now\nallow uid:%lu view app/held\n"
	    "deny * all *\n", me);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "access rules: 2 from"));
	/* At once, on the connection already open. */
	assert_refused(tc_call(c, "acquire", "lock:s", "app/other"),
	    "denied by rule");
	/* The held lock stays held, and may be released. */
	r = tc_call(c, "lock", "lock:s", "app/held");
	assert_ok(r);
	ck_assert_uint_eq(reply_u64(r, "nholders"), 1);
	assert_ok(tc_call(c, "release", "lock:s", "app/held"));
	/* A new watch of what may not be viewed now is refused. */
	assert_refused(tc_call(w, "watch", "lock:s", "app/x"), "view");

	/* A bad file at reload: said in the log, the rules stay. */
	write_file(acl, "allow uid:%lu lock app/\nallow nobody\n", me);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "keeping the running settings"));
	ck_assert(dlmd_log_has(&d, ":2: a rule is four fields"));
	assert_refused(tc_call(c, "acquire", "lock:s", "app/other"),
	    "denied by rule");
	tc_close(c);
	tc_close(w);
	dlmd_stop_clean(&d);
}
END_TEST

/* The next notice on c: "changed" for lock, with nholders holders. */
static void
assert_changed(struct tc *c, const char *lock, uint64_t nholders)
{
	struct reply *r = tc_wait_notify(c, 5000);

	ck_assert_msg(r != NULL, "no notice of a change of %s", lock);
	ck_assert_str_eq(r->method, "changed");
	ck_assert_str_eq(obj_str(r->params, "lock"), lock);
	ck_assert_uint_eq(obj_u64(r->params, "nholders"), nholders);
}

/*
 * No notice waits for c: a ping's answer comes after anything queued
 * before it on the connection, and a short wait more for good measure.
 */
static void
assert_no_notice(struct tc *c)
{
	struct reply *r;

	assert_ok(tc_call(c, "ping", ""));
	r = tc_wait_notify(c, 300);
	ck_assert_msg(r == NULL, "an unexpected notice: %s",
	    r != NULL ? r->method : "");
}

/*
 * PROTOCOL.md: "A watch whose view right is gone gets no more changed
 * notices until the right comes back." Two watchers of one lock with
 * their own tokens; a reload takes view from one of them only, and a
 * second reload gives it back.
 */
START_TEST(reload_silences_a_watch_until_view_returns)
{
	const char *acl = tmp_path("acl"), *tokens = tmp_path("tokens");
	unsigned long me = (unsigned long)getuid();
	struct dlmd_proc d;
	struct tc *c, *w, *k;

	write_file(tokens, "watcher watcher-secret-0001\n"
	    "control control-secret-0002\n");
	write_file(acl, "allow uid:%lu all *\n"
	    "allow token:control view app/\n"
	    "allow token:watcher view app/\n", me);
	dlmd_start_tcp(&d, "--acl-file", acl, "--tokens-file", tokens,
	    (char *)NULL);
	ck_assert(dlmd_log_has(&d, "access rules: 3 from"));
	c = tc_connect(&d);
	tc_hello(c, "changer");
	w = token_client(&d, "watcher", "watcher-secret-0001");
	k = token_client(&d, "control", "control-secret-0002");
	assert_ok(tc_call(w, "watch", "lock:s", "app/w"));
	assert_ok(tc_call(k, "watch", "lock:s", "app/w"));
	assert_ok(tc_call(c, "acquire", "lock:s", "app/w"));
	assert_changed(w, "app/w", 1);
	assert_changed(k, "app/w", 1);

	/* The watcher's rule goes: it no longer matches any rule. */
	write_file(acl, "allow uid:%lu all *\n"
	    "allow token:control view app/\n", me);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "access rules: 2 from"));
	/* A change of holder: the control watcher is told, the other not. */
	assert_ok(tc_call(c, "release", "lock:s", "app/w"));
	assert_changed(k, "app/w", 0);
	assert_no_notice(w);
	/* A new holder with a value: the same. */
	assert_ok(tc_call(c, "acquire", "lock:s value:s", "app/w",
	    "10.0.0.9:80"));
	assert_changed(k, "app/w", 1);
	assert_no_notice(w);
	/* Watching it again is refused like any view. */
	assert_refused(tc_call(w, "watch", "lock:s", "app/w"),
	    "token:watcher has no view right on lock 'app/w': no rule");

	/* The right comes back: so do the notices, on the same watch. */
	write_file(acl, "allow uid:%lu all *\n"
	    "allow token:control view app/\n"
	    "allow token:watcher view app/\n"
	    "allow token:watcher view more/\n", me);
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "access rules: 4 from"));
	assert_ok(tc_call(c, "release", "lock:s", "app/w"));
	assert_changed(k, "app/w", 0);
	assert_changed(w, "app/w", 0);
	assert_ok(tc_call(c, "acquire", "lock:s", "app/w"));
	assert_changed(w, "app/w", 1);
	assert_changed(k, "app/w", 1);
	/* It was one watch all along: unwatch finds it. */
	assert_ok(tc_call(w, "unwatch", "lock:s", "app/w"));
	assert_ok(tc_call(c, "release", "lock:s", "app/w"));
	assert_changed(k, "app/w", 0);
	assert_no_notice(w);
	tc_close(c);
	tc_close(w);
	tc_close(k);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(bad_rules_file_refuses_to_start)
{
	const char *acl = tmp_path("acl");
	char err[2048];

	write_file(acl, "allow * lock app/\nallow * lock app/*\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null", "-l",
	    tmp_path("s"), "--acl-file", acl, (char *)NULL), 2);
	ck_assert_msg(strstr(err, "acl-file:") != NULL &&
	    strstr(err, "acl:2: a prefix is *") != NULL, "%s", err);
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null", "-l",
	    tmp_path("s"), "--acl-file", tmp_path("none"), (char *)NULL), 2);
	ck_assert_msg(strstr(err, "No such file") != NULL, "%s", err);
	write_file(acl, "allow user:no-such-user-dlm lock x\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null",
	    "--check-config", "--acl-file", acl, (char *)NULL), 2);
	ck_assert_msg(strstr(err, "no user 'no-such-user-dlm'") != NULL, "%s",
	    err);
	write_file(tmp_path("tokens"), "alice\n");
	ck_assert_int_eq(run_dlmd(err, sizeof err, "-c", "/dev/null",
	    "--check-config", "--tokens-file", tmp_path("tokens"),
	    (char *)NULL), 2);
	ck_assert_msg(strstr(err, "tokens:1: a line is NAME SECRET") != NULL,
	    "%s", err);
}
END_TEST

/* Every fuzz seed as a rules file: accepted or refused, never a crash. */
START_TEST(hostile_rules_files)
{
	DIR *dir = opendir(ACL_SEEDS);
	struct dirent *de;
	char err[2048], path[1024];
	int n = 0;

	ck_assert_ptr_nonnull(dir);
	while ((de = readdir(dir)) != NULL) {
		int st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", ACL_SEEDS, de->d_name);
		st = run_dlmd(err, sizeof err, "-c", "/dev/null",
		    "--check-config", "--acl-file", path, (char *)NULL);
		ck_assert_msg(st == 0 || st == 2, "%s: exit %d: %s",
		    de->d_name, st, err);
		/* A refusal names the file and the line. */
		if (st == 2)
			ck_assert_msg(strstr(err, path) != NULL, "%s", err);
		n++;
	}
	closedir(dir);
	ck_assert_int_gt(n, 10);
}
END_TEST

static Suite *
acl_suite(void)
{
	Suite *s = suite_create("acl");
	TCase *tc = tcase_create("rules");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, no_rules_file_is_as_before);
	tcase_add_test(tc, unix_uid_rights);
	tcase_add_test(tc, unix_user_and_group_names);
	tcase_add_test(tc, unix_supplementary_group);
	tcase_add_test(tc, unix_ids_without_names);
	tcase_add_test(tc, first_match_decides);
	tcase_add_test(tc, listings_filtered);
	tcase_add_test(tc, named_tokens_over_tcp);
	tcase_add_test(tc, secrets_stay_out_of_sight);
	tcase_add_test(tc, reset_refusal_hides_unviewable_locks);
	tcase_add_test(tc, deadlock_refusal_hides_unviewable_locks);
	tcase_add_test(tc, reload_takes_a_right_away);
	tcase_add_test(tc, reload_silences_a_watch_until_view_returns);
	tcase_add_test(tc, reload_leaves_a_waiting_acquire_waiting);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bad_rules_file_refuses_to_start);
	tcase_add_test(tc, hostile_rules_files);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(acl_suite());
}
