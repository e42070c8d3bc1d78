/*
 * A cluster whose every link is TLS: three real etcd members that serve
 * clients over TLS and demand a client certificate, two dlmd members that
 * reach them with --cluster-etcd https://... and serve their own clients on
 * tls: listeners with mutual TLS. Election, a fail-over (new connections
 * to etcd, new handshakes), dlmctl asking a standby over TLS, the refusals
 * on either side, the settings refused at start, and a reload whose bad
 * file keeps the running one. Skipped (77) without etcd.
 */
#include "config.h"

#include <sys/wait.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "certfix.h"
#include "dlm.h"
#include "etcdfix.h"
#include "testutil.h"

#define NODES		2
#define TTL		"3000"
#define LEASE_MAX	"2000"

static struct etcd_cluster ec;
static struct cluster_node nodes[NODES];

static void
make_certs(void)
{
	certfix_init();
	certfix_ca("ca", "dlm-test-ca");
	certfix_ca("ca2", "dlm-other-ca");
	/* etcd's and dlmd's server certificates name the address dialled. */
	certfix_cert("etcd", "ca", "/CN=etcd", 2, "subjectAltName=IP:127.0.0.1");
	certfix_cert("dlmd", "ca", "/CN=dlmd", 2, "subjectAltName=IP:127.0.0.1");
	/* What a member shows etcd, and what a client shows dlmd. */
	certfix_cert("member", "ca", "/CN=dlmd-member", 2,
	    "keyUsage=digitalSignature");
	certfix_cert("ops", "ca", "/CN=ops", 2, "keyUsage=digitalSignature");
	certfix_cert("stranger", "ca2", "/CN=stranger", 2,
	    "keyUsage=digitalSignature");
}

static void
setup(void)
{
	memset(&ec, 0, sizeof ec);
	memset(nodes, 0, sizeof nodes);
	snprintf(ec.certdir, sizeof ec.certdir, "%s", certfix_path(""));
	/* certfix_path("") ends in '/': etcdfix adds its own. */
	ec.certdir[strlen(ec.certdir) - 1] = '\0';
}

static void
teardown(void)
{
	cluster_teardown(nodes, NODES, &ec);
}

/*
 * A member on a tls: listener (mutual TLS under ca), reaching etcd over
 * TLS trusting etcd_ca, presenting member.pem unless bare.
 */
static void
node_start(struct cluster_node *n, const char *etcd_ca, bool bare)
{
	char dlmd_pem[300], dlmd_key[300], ca[300], mem_pem[300];
	char mem_key[300], eca[300];

	if (n->adv[0] == '\0') {
		int port = free_tcp_port();

		snprintf(n->adv, sizeof n->adv, "tls:127.0.0.1:%d", port);
		snprintf(n->listen, sizeof n->listen, "tls:127.0.0.1:%d",
		    port);
	}
	snprintf(dlmd_pem, sizeof dlmd_pem, "%s", certfix_path("dlmd.pem"));
	snprintf(dlmd_key, sizeof dlmd_key, "%s", certfix_path("dlmd.key"));
	snprintf(ca, sizeof ca, "%s", certfix_path("ca.pem"));
	snprintf(mem_pem, sizeof mem_pem, "%s", certfix_path("member.pem"));
	snprintf(mem_key, sizeof mem_key, "%s", certfix_path("member.key"));
	snprintf(eca, sizeof eca, "%s", certfix_path(etcd_ca));
	if (bare)
		dlmd_start(&n->p, "-l", n->listen, "--tls-cert", dlmd_pem,
		    "--tls-key", dlmd_key, "--tls-ca", ca,
		    "--cluster-etcd", ec.endpoints, "--cluster-etcd-ca", eca,
		    "--advertise", n->adv, "--cluster-ttl", TTL,
		    "--lease-max", LEASE_MAX, "--lease-default", "1500",
		    "--cluster-name", "t", (char *)NULL);
	else
		dlmd_start(&n->p, "-l", n->listen, "--tls-cert", dlmd_pem,
		    "--tls-key", dlmd_key, "--tls-ca", ca,
		    "--cluster-etcd", ec.endpoints, "--cluster-etcd-ca", eca,
		    "--cluster-etcd-cert", mem_pem,
		    "--cluster-etcd-key", mem_key,
		    "--advertise", n->adv, "--cluster-ttl", TTL,
		    "--lease-max", LEASE_MAX, "--lease-default", "1500",
		    "--cluster-name", "t", (char *)NULL);
	etcdfix_record(n->p.pid, n->p.dir);
	n->up = true;
	n->stopped = false;
}

/* A libdlm client over TLS to every member, showing ops.pem. */
static struct dlm_client *
client(void)
{
	char server[200];
	struct dlm_options o;
	struct dlm_client *c;
	int err = 0;

	snprintf(server, sizeof server, "%s,%s", nodes[0].adv, nodes[1].adv);
	dlm_options_init(&o);
	o.connect_timeout_ms = 10000;
	o.tls_ca = certfix_path("ca.pem");
	o.tls_cert = certfix_path("ops.pem");
	o.tls_key = certfix_path("ops.key");
	c = dlm_connect(server, &o, &err);
	ck_assert_msg(c != NULL, "connect: %s", dlm_errmsg(NULL));
	return c;
}

/* dlmctl with args (shell words), its output and exit status. */
static int
dlmctl(char *out, size_t size, const char *fmt, ...)
{
	const char *bin = getenv("DLMCTL");
	char cmd[1500], args[1000];
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(args, sizeof args, fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin != NULL ? bin :
	    "dlmctl/dlmctl", args);
	ck_assert_ptr_nonnull(p = popen(cmd, "r"));
	while (len + 1 < size && (n = fread(out + len, 1, size - len - 1,
	    p)) > 0)
		len += n;
	out[len] = '\0';
	st = pclose(p);
	ck_assert_msg(WIFEXITED(st), "dlmctl %s: killed", args);
	return WEXITSTATUS(st);
}

/* Up to ms, that node n is never active; its log then has needle. */
static void
never_active(struct cluster_node *n, int ms, const char *needle)
{
	uint64_t deadline = mono_ms() + (uint64_t)ms;
	struct cluster_view v;

	while (mono_ms() < deadline) {
		cluster_node_view(n, &v);
		ck_assert_msg(strcmp(v.role, "active") != 0, "became active "
		    "though etcd cannot be reached over TLS");
		sleep_ms(200);
	}
	if (!dlmd_log_has(&n->p, needle)) {
		char log[1000] = "";
		FILE *f = fopen(n->p.log, "r");

		/* Its last lines say what happened instead. */
		if (f != NULL && fseek(f, -(long)(sizeof log - 1), SEEK_END) !=
		    0)
			rewind(f);
		if (f != NULL) {
			log[fread(log, 1, sizeof log - 1, f)] = '\0';
			fclose(f);
		}
		ck_abort_msg("no '%s' in %s: ...%s", needle, n->p.log, log);
	}
}

START_TEST(elects_serves_and_fails_over_over_tls)
{
	char out[8192], tls[1200];
	struct dlm_client *c;
	uint64_t t1 = 0, t2 = 0;
	int a, s;

	etcd_cluster_start(&ec);
	node_start(&nodes[0], "ca.pem", false);
	node_start(&nodes[1], "ca.pem", false);
	a = cluster_wait_one_active(nodes, NODES, 20000);
	s = 1 - a;

	c = client();
	ck_assert_int_eq(dlm_acquire(c, "job", 0, 5000, &t1), DLM_OK);
	ck_assert_int_gt(t1, 0);

	/* The standby answers dlmctl over TLS, naming the active. */
	snprintf(tls, sizeof tls, "--tls-ca %s --tls-cert %s --tls-key %s",
	    certfix_path("ca.pem"), certfix_path("ops.pem"),
	    certfix_path("ops.key"));
	ck_assert_msg(dlmctl(out, sizeof out, "-s %s %s status",
	    nodes[s].adv, tls) == 0, "%s", out);
	ck_assert_msg(strstr(out, "standby") != NULL &&
	    strstr(out, nodes[a].adv) != NULL && strstr(out, "https://") !=
	    NULL, "%s", out);
	ck_assert_msg(dlmctl(out, sizeof out, "-s %s %s cluster",
	    nodes[s].adv, tls) == 0, "%s", out);
	ck_assert_msg(strstr(out, nodes[0].adv) != NULL &&
	    strstr(out, nodes[1].adv) != NULL, "%s", out);
	/* Without a client certificate the standby tells nothing. */
	ck_assert_int_ne(dlmctl(out, sizeof out, "-s %s --tls-ca %s status",
	    nodes[s].adv, certfix_path("ca.pem")), 0);

	/* The active's host is gone: the standby takes over through TLS. */
	cluster_node_kill(&nodes[a]);
	ck_assert_int_eq(cluster_wait_one_active(nodes, NODES, 20000), s);
	ck_assert_int_eq(dlm_acquire(c, "next", 0, 10000, &t2), DLM_OK);
	ck_assert_msg(t2 > t1, "token %llu after %llu", (unsigned long long)t2,
	    (unsigned long long)t1);
	dlm_close(c);
}
END_TEST

START_TEST(etcd_refuses_a_member_without_a_certificate)
{
	etcd_cluster_start(&ec);
	node_start(&nodes[0], "ca.pem", true);
	/* etcd's alert, as TLS 1.2 or 1.3 words it. */
	never_active(&nodes[0], 4000, ": TLS: ");
	ck_assert(dlmd_log_has(&nodes[0].p, "alert"));
}
END_TEST

START_TEST(member_refuses_etcd_of_another_ca)
{
	etcd_cluster_start(&ec);
	node_start(&nodes[0], "ca2.pem", false);
	never_active(&nodes[0], 4000, "etcd's certificate is not trusted");
}
END_TEST

/* The running files stay when a reload's do not load; good ones load. */
START_TEST(reload_keeps_running_files)
{
	char saved[300];

	etcd_cluster_start(&ec);
	node_start(&nodes[0], "ca.pem", false);
	ck_assert_int_eq(cluster_wait_one_active(nodes, 1, 20000), 0);
	snprintf(saved, sizeof saved, "%s", certfix_path("member.saved"));
	ck_assert_int_eq(rename(certfix_path("member.pem"), saved), 0);
	/* The settings are checked whole first: all of them stay. */
	kill(nodes[0].p.pid, SIGHUP);
	ck_assert(dlmd_log_has(&nodes[0].p, "reload: TLS to etcd: "
	    "certificate"));
	ck_assert(dlmd_log_has(&nodes[0].p, "keeping the running settings"));
	ck_assert_int_eq(cluster_wait_one_active(nodes, 1, 5000), 0);
	ck_assert_int_eq(rename(saved, certfix_path("member.pem")), 0);
	kill(nodes[0].p.pid, SIGHUP);
	ck_assert(dlmd_log_has(&nodes[0].p, "TLS files for etcd loaded"));
	ck_assert_int_eq(cluster_wait_one_active(nodes, 1, 5000), 0);
}
END_TEST

/* Settings that cannot work stop a start, saying why (no etcd needed). */
START_TEST(bad_settings_refused)
{
	static const struct {
		const char *args, *says;
	} bad[] = {
		{ "--cluster-etcd https://127.0.0.1:1 --cluster-etcd-cert "
		  "%1$s/member.pem", "go together" },
		{ "--cluster-etcd http://127.0.0.1:1 --cluster-etcd-ca "
		  "%1$s/ca.pem", "need https://" },
		{ "--cluster-etcd https://127.0.0.1:1,http://127.0.0.1:2",
		  "every endpoint as https://, or none" },
		{ "--cluster-etcd https://127.0.0.1:1 --cluster-etcd-ca "
		  "%1$s/none.pem", "CA" },
		{ "--cluster-etcd https://127.0.0.1:1 --cluster-etcd-ca "
		  "%1$s/ca.pem --cluster-etcd-cert %1$s/member.pem "
		  "--cluster-etcd-key %1$s/ops.key", "ops.key" },
		{ "--cluster-etcd ftp://127.0.0.1:1", "https://" },
	};
	char dir[300], fmt[400], args[1200], cmd[1600], out[2048];

	snprintf(dir, sizeof dir, "%s", certfix_path(""));
	dir[strlen(dir) - 1] = '\0';
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t len = 0, n;
		FILE *p;
		int st;

		snprintf(fmt, sizeof fmt, "%s", bad[i].args);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(args, sizeof args, fmt, dir);
#pragma GCC diagnostic pop
		snprintf(cmd, sizeof cmd, "'%s' -c /dev/null --check-config "
		    "--advertise tcp:127.0.0.1:1 %s 2>&1", dlmd_path(), args);
		ck_assert_ptr_nonnull(p = popen(cmd, "r"));
		while (len + 1 < sizeof out && (n = fread(out + len, 1,
		    sizeof out - len - 1, p)) > 0)
			len += n;
		out[len] = '\0';
		st = pclose(p);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		    "%s: exit %d: %s", args, WEXITSTATUS(st), out);
		ck_assert_msg(strstr(out, bad[i].says) != NULL, "%s: %s", args,
		    out);
	}
}
END_TEST

static Suite *
cluster_tls_suite(void)
{
	Suite *s = suite_create("cluster_tls");
	TCase *tc = tcase_create("tls");

	tcase_add_unchecked_fixture(tc, etcdfix_prepare, etcdfix_cleanup);
	tcase_add_unchecked_fixture(tc, make_certs, certfix_cleanup);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, bad_settings_refused);
	tcase_add_test(tc, elects_serves_and_fails_over_over_tls);
	tcase_add_test(tc, etcd_refuses_a_member_without_a_certificate);
	tcase_add_test(tc, member_refuses_etcd_of_another_ca);
	tcase_add_test(tc, reload_keeps_running_files);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (etcdfix_binary() == NULL) {
		printf("check_cluster_tls: etcd is not installed (Debian: "
		    "etcd-server); skipping\n");
		return 77;
	}
	return run_suite(cluster_tls_suite());
}
