/* Unit tests of the one address parser every program uses. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "addr.h"

static struct addr a;
static char err[256];

static void
parse_ok(const char *spec, int flags)
{
	err[0] = '\0';
	ck_assert_msg(addr_parse(spec, flags, &a, err, sizeof err) == 0,
	    "'%s' refused: %s", spec, err);
}

/*
 * spec must be refused, with a sentence that names the problem: each of
 * want, a "|"-separated list, must appear in it.
 */
static void
parse_bad(const char *spec, int flags, const char *want)
{
	char words[256], *w, *save = NULL;

	memset(err, 0, sizeof err);
	ck_assert_msg(addr_parse(spec, flags, &a, err, sizeof err) == -1,
	    "'%s' accepted", spec);
	ck_assert_msg(err[0] != '\0', "'%s': no sentence", spec);
	snprintf(words, sizeof words, "%s", want);
	for (w = strtok_r(words, "|", &save); w != NULL;
	    w = strtok_r(NULL, "|", &save))
		ck_assert_msg(strstr(err, w) != NULL,
		    "'%s': \"%s\" does not say \"%s\"", spec, err, w);
}

START_TEST(unix_paths)
{
	char path[200];

	parse_ok("unix:/run/dlmd/dlmd.sock", 0);
	ck_assert_int_eq(a.type, ADDR_UNIX);
	ck_assert_str_eq(a.path, "/run/dlmd/dlmd.sock");
	parse_ok("/tmp/d.sock", 0);
	ck_assert_int_eq(a.type, ADDR_UNIX);
	ck_assert_str_eq(a.path, "/tmp/d.sock");
	/* A space is a legal byte of a path. */
	parse_ok("unix:/tmp/a b", 0);
	ck_assert_str_eq(a.path, "/tmp/a b");

	/* sun_path holds 107 bytes and the NUL. */
	memset(path, 'p', sizeof path);
	path[0] = '/';
	path[107] = '\0';
	parse_ok(path, 0);
	ck_assert_uint_eq(strlen(a.path), 107);
	path[107] = 'p';
	path[108] = '\0';
	parse_bad(path, 0, "path|longer than 107");
	parse_bad("unix:", 0, "path is missing");
}
END_TEST

START_TEST(tcp_names_and_ipv4)
{
	parse_ok("tcp:localhost:7411", 0);
	ck_assert_int_eq(a.type, ADDR_TCP);
	ck_assert_str_eq(a.host, "localhost");
	ck_assert_str_eq(a.port, "7411");
	ck_assert_uint_eq(a.portnum, 7411);
	ck_assert(!a.v6);
	parse_ok("tcp:db-1.example.org:80", 0);
	ck_assert_str_eq(a.host, "db-1.example.org");
	parse_ok("tcp:127.0.0.1:1", 0);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_uint_eq(a.portnum, 1);
	parse_ok("tcp:127.0.0.1:65535", 0);
	ck_assert_uint_eq(a.portnum, 65535);
	ck_assert_str_eq(a.port, "65535");
}
END_TEST

START_TEST(tcp_ipv6)
{
	parse_ok("tcp:[::1]:7411", 0);
	ck_assert_int_eq(a.type, ADDR_TCP);
	ck_assert_str_eq(a.host, "::1");
	ck_assert_uint_eq(a.portnum, 7411);
	ck_assert(a.v6);
	parse_ok("tcp:[fe80::1%eth0]:80", 0);
	ck_assert_str_eq(a.host, "fe80::1%eth0");
	parse_ok("tcp:[2001:db8::7]:65535", 0);
	ck_assert_str_eq(a.host, "2001:db8::7");
}
END_TEST

START_TEST(listener_only_forms)
{
	parse_ok("tcp:127.0.0.1:0", ADDR_LISTENER);
	ck_assert_uint_eq(a.portnum, 0);
	ck_assert_str_eq(a.port, "0");
	parse_ok("tcp::7411", ADDR_LISTENER);
	ck_assert_str_eq(a.host, "");
	parse_ok("tcp::0", ADDR_LISTENER);
	parse_ok("tcp:[::]:0", ADDR_LISTENER);
	ck_assert(a.v6);

	parse_bad("tcp:127.0.0.1:0", 0, "port 0|listener");
	parse_bad("tcp::7411", 0, "host is missing");
	parse_bad("tcp::0", 0, "missing");
}
END_TEST

START_TEST(bad_ports)
{
	parse_bad("tcp:127.0.0.1:99999", 0, "99999|out of range");
	parse_bad("tcp:127.0.0.1:65536", 0, "65536|out of range");
	parse_bad("tcp:127.0.0.1:65536", ADDR_LISTENER, "out of range");
	parse_bad("tcp:127.0.0.1:123456", 0, "out of range");
	parse_bad("tcp:127.0.0.1:-1", 0, "'-1'|not a decimal");
	parse_bad("tcp:127.0.0.1:+1", 0, "'+1'|not a decimal");
	parse_bad("tcp:127.0.0.1:1e3", 0, "'1e3'|not a decimal");
	parse_bad("tcp:127.0.0.1:abc", 0, "'abc'|not a decimal");
	parse_bad("tcp:127.0.0.1:0x50", 0, "not a decimal");
	parse_bad("tcp:127.0.0.1:", 0, "port is missing");
	parse_bad("tcp:[::1]:", 0, "port is missing");
	parse_bad("tcp:[::1]:99999", 0, "out of range");
}
END_TEST

START_TEST(bad_hosts)
{
	char spec[400];

	parse_bad("tcp:localhost", 0, "HOST:PORT");
	parse_bad("tcp:", 0, "HOST:PORT");
	parse_bad("tcp:::1:80", 0, "brackets");
	parse_bad("tcp:fe80::1:80", 0, "brackets");
	parse_bad("tcp:[::1", 0, "without its ']'");
	parse_bad("tcp:[::1]80", 0, "colon after ']'");
	parse_bad("tcp:[]:80", 0, "brackets hold an IPv6");
	parse_bad("tcp:[1.2.3.4]:80", 0, "brackets hold an IPv6");
	parse_bad("tcp:[[::1]:80", 0, "stray '['");
	parse_bad("tcp:host]:80", 0, "stray ']'");
	parse_bad("tcp:a[b:80", 0, "stray '['");

	memset(spec, 0, sizeof spec);
	memcpy(spec, "tcp:", 4);
	memset(spec + 4, 'h', 255);
	strcat(spec, ":80");
	parse_ok(spec, 0);
	ck_assert_uint_eq(strlen(a.host), 255);
	memset(spec + 4, 'h', 256);
	strcpy(spec + 4 + 256, ":80");
	parse_bad(spec, 0, "host is too long");
}
END_TEST

START_TEST(spaces_and_control_bytes)
{
	parse_bad("tcp:local host:80", 0, "space");
	parse_bad("tcp: localhost:80", 0, "space");
	parse_bad("tcp:localhost\t:80", 0, "space");
	parse_bad("tcp:[::1 ]:80", 0, "space");
	/* A newline would split the log line that names the address. */
	parse_bad("tcp:localhost\n:80", 0, "control");
	ck_assert_ptr_null(strchr(err, '\n'));
	parse_bad("tcp:localhost:8\n0", 0, "not a decimal");
	ck_assert_ptr_null(strchr(err, '\n'));
	parse_bad("tcp:local\x1bhost:80", 0, "control");
	parse_bad("tcp:localhost: 80", 0, "not a decimal");
	parse_bad("tcp:localhost:80 ", 0, "not a decimal");
	parse_bad(" tcp:localhost:80", 0, "use unix:PATH");
}
END_TEST

START_TEST(unknown_schemes)
{
	parse_bad("udp:localhost:80", 0, "'udp:localhost:80'|use unix:PATH");
	parse_bad("localhost:80", 0, "use unix:PATH");
	parse_bad("TCP:localhost:80", 0, "use unix:PATH");
	parse_bad("", 0, "use unix:PATH");
	parse_bad("unix", 0, "use unix:PATH");
}
END_TEST

START_TEST(hostport_without_scheme)
{
	err[0] = '\0';
	ck_assert_int_eq(addr_parse_hostport("127.0.0.1:9100", 0, &a, err,
	    sizeof err), 0);
	ck_assert_str_eq(a.host, "127.0.0.1");
	ck_assert_uint_eq(a.portnum, 9100);
	ck_assert_int_eq(addr_parse_hostport("[::1]:9100", 0, &a, err,
	    sizeof err), 0);
	ck_assert(a.v6);
	ck_assert_int_eq(addr_parse_hostport(":0", ADDR_LISTENER, &a, err,
	    sizeof err), 0);
	ck_assert_int_eq(addr_parse_hostport("127.0.0.1:99999", 0, &a, err,
	    sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(addr_parse_hostport("tcp:127.0.0.1:80", 0, &a, err,
	    sizeof err), -1);
}
END_TEST

START_TEST(error_buffer_limits)
{
	char small[8];

	/* A short buffer is cut, still terminated; none at all is allowed. */
	memset(small, 'x', sizeof small);
	ck_assert_int_eq(addr_parse("tcp:h:99999", 0, &a, small, sizeof small),
	    -1);
	ck_assert_uint_eq(strlen(small), sizeof small - 1);
	ck_assert_int_eq(addr_parse("tcp:h:99999", 0, &a, NULL, 0), -1);
}
END_TEST

START_TEST(format_round_trips)
{
	static const char *const specs[] = {
		"unix:/run/dlmd/dlmd.sock", "tcp:localhost:7411",
		"tcp:127.0.0.1:1", "tcp:[::1]:65535", "tcp::0",
		"tcp:[::]:0",
	};
	char buf[400];
	struct addr again;

	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		parse_ok(specs[i], ADDR_LISTENER);
		addr_format(&a, buf, sizeof buf);
		ck_assert_str_eq(buf, specs[i]);
		ck_assert_int_eq(addr_parse(buf, ADDR_LISTENER, &again, err,
		    sizeof err), 0);
		ck_assert_int_eq(memcmp(&a, &again, sizeof a), 0);
	}
	/* "/PATH" is written back in its explicit form. */
	parse_ok("/tmp/d.sock", 0);
	addr_format(&a, buf, sizeof buf);
	ck_assert_str_eq(buf, "unix:/tmp/d.sock");
	/* A leading zero is not kept: the port is a number. */
	parse_ok("tcp:h:0080", 0);
	ck_assert_str_eq(a.port, "80");
}
END_TEST

START_TEST(lists)
{
	struct addr l[ADDR_LIST_MAX + 1];
	char buf[400], many[ADDR_LIST_MAX * 24 + 32] = "";

	ck_assert_int_eq(addr_parse_list("tcp:a:1", 0, l, 4, err, sizeof err),
	    1);
	ck_assert_int_eq(addr_parse_list("tcp:a:1,tcp:[::1]:2,unix:/x,/y", 0,
	    l, 4, err, sizeof err), 4);
	addr_format(&l[1], buf, sizeof buf);
	ck_assert_str_eq(buf, "tcp:[::1]:2");
	ck_assert_str_eq(l[3].path, "/y");
	/* A comma inside a path, not before a scheme, is the path's. */
	ck_assert_int_eq(addr_parse_list("/tmp/a,b.sock,tcp:h:3", 0, l, 4,
	    err, sizeof err), 2);
	ck_assert_str_eq(l[0].path, "/tmp/a,b.sock");
	/* Empty items, a bad item, too many. */
	ck_assert_int_eq(addr_parse_list("", 0, l, 4, err, sizeof err), -1);
	ck_assert_int_eq(addr_parse_list("tcp:a:1,", 0, l, 4, err,
	    sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	ck_assert_int_eq(addr_parse_list("tcp:a:1,,tcp:b:2", 0, l, 4, err,
	    sizeof err), -1);
	ck_assert_int_eq(addr_parse_list("tcp:a:1,tcp:b:99999", 0, l, 4, err,
	    sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "99999"));
	for (int i = 0; i <= ADDR_LIST_MAX; i++) {
		snprintf(buf, sizeof buf, "%stcp:h:%d", i ? "," : "", i + 1);
		strcat(many, buf);
	}
	ck_assert_int_eq(addr_parse_list(many, 0, l, ADDR_LIST_MAX, err,
	    sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than"));
}
END_TEST

static Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("forms");

	tcase_add_test(tc, unix_paths);
	tcase_add_test(tc, tcp_names_and_ipv4);
	tcase_add_test(tc, tcp_ipv6);
	tcase_add_test(tc, listener_only_forms);
	tcase_add_test(tc, hostport_without_scheme);
	tcase_add_test(tc, format_round_trips);
	tcase_add_test(tc, lists);
	suite_add_tcase(s, tc);
	tc = tcase_create("refused");
	tcase_add_test(tc, bad_ports);
	tcase_add_test(tc, bad_hosts);
	tcase_add_test(tc, spaces_and_control_bytes);
	tcase_add_test(tc, unknown_schemes);
	tcase_add_test(tc, error_buffer_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(addr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
