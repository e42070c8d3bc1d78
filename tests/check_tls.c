/*
 * TLS: dlmd's tls: listeners, libdlm's and dlmctl's tls: servers. The
 * certificates are made here, with the openssl command, in a temporary
 * directory: a CA, a second CA nobody trusts, server certificates for
 * 127.0.0.1 and localhost, and client certificates: good, expired,
 * self-signed, signed by the wrong CA, and one with no CN (named by its
 * DNS name).
 */
#include "config.h"

#include <sys/socket.h>

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "certfix.h"
#include "dlm.h"
#include "testutil.h"

static void
setup_certs(void)
{
	certfix_init();
	certfix_ca("ca", "dlm-test-ca");
	certfix_ca("ca2", "dlm-other-ca");
	certfix_cert("srv", "ca", "/CN=localhost", 2,
	    "subjectAltName=DNS:localhost,IP:127.0.0.1");
	certfix_cert("srv2", "ca2", "/CN=localhost", 2,
	    "subjectAltName=DNS:localhost,IP:127.0.0.1");
	certfix_cert("other", "ca", "/CN=elsewhere", 2,
	    "subjectAltName=DNS:elsewhere.example");
	certfix_cert("alice", "ca", "/CN=alice", 2,
	    "keyUsage=digitalSignature");
	certfix_cert("expired", "ca", "/CN=old", -1,
	    "keyUsage=digitalSignature");
	certfix_cert("wrongca", "ca2", "/CN=mallory", 2,
	    "keyUsage=digitalSignature");
	/* No CN: the identity is the first DNS name. */
	certfix_cert("svc", "ca", "/O=dlm-test", 2,
	    "subjectAltName=DNS:svc.example");
	certfix_ca("self", "selfie");
	certfix_sh("cp srv.pem live.pem && cp srv.key live.key");
}

static struct dlmd_proc d;
static int port;
static char addr[64];

/* dlmd on tls:127.0.0.1:port with the live certificate; mutual with ca. */
static void
start(bool mutual)
{
	char listen[64], hs[16];

	port = free_tcp_port();
	snprintf(listen, sizeof listen, "tls:127.0.0.1:%d", port);
	snprintf(addr, sizeof addr, "tls:127.0.0.1:%d", port);
	snprintf(hs, sizeof hs, "%d", 700);
	if (mutual)
		dlmd_start(&d, "-l", listen, "--tls-cert", certfix_path("live.pem"),
		    "--tls-key", certfix_path("live.key"), "--tls-ca", certfix_path("ca.pem"),
		    "--tls-handshake-timeout", hs, (char *)NULL);
	else
		dlmd_start(&d, "-l", listen, "--tls-cert", certfix_path("live.pem"),
		    "--tls-key", certfix_path("live.key"),
		    "--tls-handshake-timeout", hs, (char *)NULL);
	ck_assert(dlmd_log_has(&d, "listening on tls:127.0.0.1:"));
}

static struct dlm_client *
tls_client(const char *server, const char *ca, const char *cert, int *err)
{
	struct dlm_options o;

	dlm_options_init(&o);
	o.connect_timeout_ms = 3000;
	o.tls_ca = ca != NULL ? certfix_path(ca) : NULL;
	if (cert != NULL) {
		char key[64];

		snprintf(key, sizeof key, "%.*s.key",
		    (int)(strlen(cert) - 4), cert);
		o.tls_cert = certfix_path(cert);
		o.tls_key = certfix_path(key);
	}
	return dlm_connect(server != NULL ? server : addr, &o, err);
}

/* The client works: takes and gives back a lock. */
static void
assert_works(struct dlm_client *c, const char *lock)
{
	uint64_t token = 0;

	ck_assert_int_eq(dlm_acquire(c, lock, 0, 2000, &token), DLM_OK);
	ck_assert_uint_gt(token, 0);
	ck_assert_int_eq(dlm_release(c, lock), DLM_OK);
}

START_TEST(test_acquire_release)
{
	struct dlm_client *c;
	int err = -1;

	start(false);
	c = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_errmsg(NULL));
	assert_works(c, "tls-lock");
	dlm_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(test_mutual_ok_and_no_cert)
{
	struct dlm_client *c, *bad;
	int err = -1;

	start(true);
	c = tls_client(NULL, "ca.pem", "alice.pem", &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_errmsg(NULL));
	assert_works(c, "m1");
	ck_assert(dlmd_log_has(&d, "is \"alice\""));
	bad = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_ptr_null(bad);
	ck_assert_int_eq(err, DLM_E_CONNECT);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "certificate required") != NULL,
	    "%s", dlm_errmsg(NULL));
	ck_assert(dlmd_log_has(&d, "peer did not return a certificate"));
	assert_works(c, "m2");
	dlm_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/* A client certificate refused: the log names the reason. */
static void
refused_cert(const char *cert, const char *reason)
{
	struct dlm_client *c;
	int err = -1;

	c = tls_client(NULL, "ca.pem", cert, &err);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err, DLM_E_CONNECT);
	ck_assert_msg(dlmd_log_has(&d, reason), "no '%s' in the log", reason);
}

START_TEST(test_bad_client_certs)
{
	struct dlm_client *good;
	int err = -1;

	start(true);
	good = tls_client(NULL, "ca.pem", "alice.pem", &err);
	ck_assert_ptr_nonnull(good);
	refused_cert("expired.pem", "client certificate refused: certificate "
	    "has expired");
	refused_cert("self.pem", "client certificate refused: self-signed "
	    "certificate");
	refused_cert("wrongca.pem", "client certificate refused: unable to "
	    "get local issuer certificate");
	assert_works(good, "still");
	dlm_close(good);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(test_server_name)
{
	struct dlm_client *c;
	char other[64];
	int err = -1;

	/* dlmd presents a certificate for elsewhere.example only. */
	certfix_sh("cp other.pem live.pem && cp other.key live.key");
	start(false);
	c = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(err, DLM_E_CONNECT);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "does not name the address "
	    "127.0.0.1") != NULL, "%s", dlm_errmsg(NULL));
	snprintf(other, sizeof other, "tls:localhost:%d", port);
	c = tls_client(other, "ca.pem", NULL, &err);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "does not name localhost") !=
	    NULL, "%s", dlm_errmsg(NULL));
	/* A CA that did not sign it: unknown. */
	c = tls_client(NULL, "ca2.pem", NULL, &err);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(dlm_errmsg(NULL), "not trusted") != NULL, "%s",
	    dlm_errmsg(NULL));
	dlmd_stop_clean(&d);
	certfix_sh("cp srv.pem live.pem && cp srv.key live.key");
}
END_TEST

/* Bytes that are not a ClientHello; the server closes, the log says so. */
static void
hostile(const char *bytes, size_t len)
{
	int fd = loopback_connect(port);
	char buf[256];
	struct pollfd p = { fd, POLLIN, 0 };
	bool closed = false;

	ck_assert_int_ge(fd, 0);
	if (len > 0)
		ck_assert_int_eq(send(fd, bytes, len, MSG_NOSIGNAL),
		    (ssize_t)len);
	for (int i = 0; i < 30 && !closed; i++) {
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = recv(fd, buf, sizeof buf, 0);

			closed = n <= 0 || buf[0] == 0x15;	/* an alert */
		}
	}
	ck_assert_msg(closed, "the server kept the connection");
	close(fd);
}

START_TEST(test_hostile_handshakes)
{
	static const char garbage[] = "\x16\x03\x01\x00\x10\xde\xad\xbe\xef"
	    "0123456789ab";
	struct dlm_client *good;
	int err = -1;

	start(false);
	good = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_ptr_nonnull(good);
	hostile("GET / HTTP/1.0\r\n\r\n", 18);
	ck_assert(dlmd_log_has(&d, "failed: http request"));
	/* dlm's own protocol in clear: a hello frame. */
	hostile("\x94\x00\x00\xa5hello\x80", 10);
	hostile(garbage, sizeof garbage - 1);
	/* Connect and say nothing: the handshake's deadline closes it. */
	hostile(NULL, 0);
	ck_assert(dlmd_log_has(&d, "not finished within 700 ms"));
	assert_works(good, "unaffected");
	dlm_close(good);
	dlmd_stop_clean(&d);
}
END_TEST

START_TEST(test_sighup_reload)
{
	struct dlm_client *old, *c;
	int err = -1;

	start(false);
	old = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_ptr_nonnull(old);
	/* New files signed by another CA: new clients see the new one. */
	certfix_sh("cp srv2.pem live.pem && cp srv2.key live.key");
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "TLS certificate"));
	c = tls_client(NULL, "ca2.pem", NULL, &err);
	ck_assert_msg(c != NULL, "after reload: %s", dlm_errmsg(NULL));
	assert_works(c, "new");
	dlm_close(c);
	c = tls_client(NULL, "ca.pem", NULL, &err);
	ck_assert_ptr_null(c);
	/* The connection from before the reload is kept. */
	assert_works(old, "old");
	/* A bad file: the running certificate stays. */
	certfix_sh("echo garbage > live.pem");
	kill(d.pid, SIGHUP);
	ck_assert(dlmd_log_has(&d, "keeping the running settings"));
	c = tls_client(NULL, "ca2.pem", NULL, &err);
	ck_assert_msg(c != NULL, "after a bad reload: %s", dlm_errmsg(NULL));
	assert_works(c, "kept");
	dlm_close(c);
	assert_works(old, "old2");
	dlm_close(old);
	dlmd_stop_clean(&d);
	certfix_sh("cp srv.pem live.pem && cp srv.key live.key");
}
END_TEST

START_TEST(test_dlmctl)
{
	const char *dlmctl = getenv("DLMCTL");
	char cmd[1200];
	int rc;

	ck_assert_ptr_nonnull(dlmctl);
	start(true);
	snprintf(cmd, sizeof cmd, "%s -s %s --tls-ca %s --tls-cert %s "
	    "--tls-key %s status >/dev/null 2>&1", dlmctl, addr,
	    certfix_path("ca.pem"), certfix_path("alice.pem"), certfix_path("alice.key"));
	ck_assert_int_eq(system(cmd), 0);
	/* The same from the environment. */
	snprintf(cmd, sizeof cmd, "DLM_TLS_CA=%s DLM_TLS_CERT=%s "
	    "DLM_TLS_KEY=%s %s -s %s locks >/dev/null 2>&1", certfix_path("ca.pem"),
	    certfix_path("alice.pem"), certfix_path("alice.key"), dlmctl, addr);
	ck_assert_int_eq(system(cmd), 0);
	/* No certificate: unreachable (3), and one line says why. */
	snprintf(cmd, sizeof cmd, "%s -s %s --tls-ca %s status 2>&1 | "
	    "grep -q 'certificate required'", dlmctl, addr, certfix_path("ca.pem"));
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s -s %s --tls-ca %s status >/dev/null "
	    "2>&1", dlmctl, addr, certfix_path("ca.pem"));
	rc = system(cmd);
	ck_assert(WIFEXITED(rc) && WEXITSTATUS(rc) == 3);
	dlmd_stop_clean(&d);
}
END_TEST

static int granted;

static void
on_grant(struct dlm_client *c, int err, uint64_t token, void *arg)
{
	granted = err == DLM_OK ? 1 : -1;
}

/* Drive a loop-mode client with poll() until *flag or ms pass. */
static void
loop_until(struct dlm_client *c, const int *flag, int ms)
{
	uint64_t until = mono_ms() + (uint64_t)ms;

	while (*flag == 0 && mono_ms() < until) {
		int ev = dlm_loop_events(c), t = dlm_loop_timeout_ms(c);
		struct pollfd p = { dlm_loop_fd(c), (short)(((ev &
		    DLM_EV_READ) ? POLLIN : 0) | ((ev & DLM_EV_WRITE) ?
		    POLLOUT : 0)), 0 };
		int got = 0;

		(void)poll(&p, p.fd >= 0 ? 1 : 0, t < 0 || t > 50 ? 50 : t);
		if (p.revents & (POLLIN | POLLHUP | POLLERR))
			got |= DLM_EV_READ;
		if (p.revents & (POLLOUT | POLLHUP | POLLERR))
			got |= DLM_EV_WRITE;
		ck_assert_int_eq(dlm_loop_process(c, got), 0);
	}
}

START_TEST(test_loop_mode)
{
	struct dlm_options o;
	struct dlm_client *c;
	int err = -1;

	start(true);
	dlm_options_init(&o);
	o.tls_ca = certfix_path("ca.pem");
	o.tls_cert = certfix_path("alice.pem");
	o.tls_key = certfix_path("alice.key");
	c = dlm_connect_loop(addr, &o, &err);
	ck_assert_ptr_nonnull(c);
	granted = 0;
	ck_assert_int_eq(dlm_acquire_async(c, "loop-lock", 0, 2000, on_grant,
	    NULL), DLM_OK);
	loop_until(c, &granted, 5000);
	ck_assert_int_eq(granted, 1);
	dlm_close(c);
	dlmd_stop_clean(&d);
}
END_TEST

/* A request refused with PERMISSION, its message holding needle. */
static void
assert_refused(struct dlm_client *c, int rc, const char *needle)
{
	ck_assert_int_eq(rc, DLM_E_PERMISSION);
	ck_assert_msg(strstr(dlm_errmsg(c), needle) != NULL, "'%s' not in "
	    "'%s'", needle, dlm_errmsg(c));
}

/*
 * A client certificate is the identity cert:NAME that access rules name:
 * its CN, or with no CN its first DNS name.
 */
START_TEST(test_cert_identity_in_rules)
{
	struct dlm_client *alice, *svc;
	char listen[64], acl[400], why[600];
	uint64_t token = 0, t2 = 0;
	int err = -1, held = -1;

	port = free_tcp_port();
	snprintf(listen, sizeof listen, "tls:127.0.0.1:%d", port);
	snprintf(addr, sizeof addr, "tls:127.0.0.1:%d", port);
	snprintf(acl, sizeof acl, "%s", certfix_path("acl"));
	certfix_sh("printf 'allow cert:alice lock,view app/\\n"
	    "allow cert:svc.example view *\\ndeny * all *\\n' > acl");
	dlmd_start(&d, "-l", listen, "--tls-cert", certfix_path("srv.pem"),
	    "--tls-key", certfix_path("srv.key"), "--tls-ca",
	    certfix_path("ca.pem"), "--acl-file", acl, (char *)NULL);
	/* The Unix socket answers first; the TLS listener may come after. */
	ck_assert(dlmd_log_has(&d, "listening on tls:127.0.0.1:"));
	alice = tls_client(NULL, "ca.pem", "alice.pem", &err);
	ck_assert_msg(alice != NULL, "alice: %s", dlm_errmsg(NULL));
	svc = tls_client(NULL, "ca.pem", "svc.pem", &err);
	ck_assert_msg(svc != NULL, "svc: %s", dlm_errmsg(NULL));

	ck_assert_int_eq(dlm_acquire(alice, "app/1", 0, 2000, &token), DLM_OK);
	snprintf(why, sizeof why, "cert:alice has no lock right on lock "
	    "'other/1': denied by rule %s:3", acl);
	assert_refused(alice, dlm_acquire(alice, "other/1", 0, 2000, &t2),
	    why);
	/* View, not lock: it may check alice's hold, not take one. */
	ck_assert_int_eq(dlm_check(svc, "app/1", token, &held), DLM_OK);
	ck_assert_int_eq(held, 1);
	assert_refused(svc, dlm_acquire(svc, "app/2", 0, 2000, &t2),
	    "cert:svc.example has no lock right on lock 'app/2': denied by "
	    "rule");
	ck_assert_int_eq(dlm_release(alice, "app/1"), DLM_OK);
	dlm_close(alice);
	dlm_close(svc);
	dlmd_stop_clean(&d);
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	tcase_add_unchecked_fixture(tc, setup_certs, certfix_cleanup);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_acquire_release);
	tcase_add_test(tc, test_mutual_ok_and_no_cert);
	tcase_add_test(tc, test_bad_client_certs);
	tcase_add_test(tc, test_server_name);
	tcase_add_test(tc, test_hostile_handshakes);
	tcase_add_test(tc, test_sighup_reload);
	tcase_add_test(tc, test_dlmctl);
	tcase_add_test(tc, test_loop_mode);
	tcase_add_test(tc, test_cert_identity_in_rules);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(tls_suite());
}
