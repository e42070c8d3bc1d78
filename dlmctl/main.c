/*
 * dlmctl: inspect dlmd, break what is stuck, run a command under a lock.
 * This file parses the command line, connects, and maps errors to exit
 * statuses; each command lives in its own file.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "dlmctl.h"
#include "paths.h"
#include "tokenfile.h"

static const char usage_text[] =
"usage: dlmctl [-s SERVER] [--token-file FILE] [--tls-ca FILE]\n"
"              [--tls-cert FILE [--tls-key FILE]] [--json] COMMAND [ARGS]\n"
"\n"
"commands:\n"
"  status                     the server's version, uptime and counters, and\n"
"                             its role in a cluster\n"
"  cluster                    the members of the server's cluster\n"
"  locks [PREFIX]             every lock, its holders and waiters\n"
"  show LOCK                  one lock with its whole wait queue\n"
"  clients [PREFIX]           every session\n"
"  ping [-c COUNT]            round-trip time to the server\n"
"  release LOCK [--client NAME]  force-release a lock (admin)\n"
"  reset CLIENT               end a client's session (admin)\n"
"  reset --all --yes          end every other session (admin)\n"
"  run LOCK [--timeout MS] [--shared] [--rlock] [--kill-after MS]\n"
"      [--semaphore N [--permits P]] [--lease MS] [--timeout-status N]\n"
"      [--lost-status N] -- COMMAND [ARG...]\n"
"                             hold LOCK (or a permit of a semaphore of N)\n"
"                             while COMMAND runs\n"
"  watch LOCK                 a line for LOCK's holders, then one per change\n"
"  elect NAME VALUE [--timeout MS] [--kill-after MS] [--lease MS]\n"
"      [--timeout-status N] [--lost-status N] -- COMMAND [ARG...]\n"
"                             run COMMAND while leader of election NAME\n"
"\n"
"options:\n"
"  -s, --server SERVER   unix:/path, tcp:host:port or tls:host:port, or a\n"
"                        comma-separated\n"
"                        list of a cluster's members (default $DLM_SERVER,\n"
"                        else the local socket)\n"
"      --token-file FILE the admin or client token for TCP (default\n"
"                        $DLM_TOKEN_FILE)\n"
"      --tls-ca FILE     CA certificates a tls: server's must chain to\n"
"                        (default $DLM_TLS_CA, else the system's)\n"
"      --tls-cert FILE   client certificate for a tls: server (default\n"
"                        $DLM_TLS_CERT)\n"
"      --tls-key FILE    its key (default $DLM_TLS_KEY, else in the cert file)\n"
"  -j, --json            print one JSON document (watch: one per line)\n"
"  -h, --help            this text\n"
"  -V, --version         the version\n"
"\n"
"exit status: 0 done, 1 refused by the server, 2 usage, 3 server unreachable,\n"
"4 permission denied, 5 not found; run: COMMAND's status, 75 lock not taken\n"
"in time, 76 hold lost while COMMAND ran (elect: the same). See dlmctl(1).\n";

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, int, char **);
} commands[] = {
	{ "status", cmd_status },
	{ "cluster", cmd_cluster },
	{ "locks", cmd_locks },
	{ "show", cmd_show },
	{ "clients", cmd_clients },
	{ "ping", cmd_ping },
	{ "release", cmd_release },
	{ "reset", cmd_reset },
	{ "run", cmd_run },
	{ "elect", cmd_elect },
	{ "watch", cmd_watch },
};

void
ctl_error(const char *fmt, ...)
{
	va_list ap;

	fputs("dlmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_exit_status(int err)
{
	switch (err) {
	case DLM_OK:
		return EXIT_OK;
	case DLM_E_CONNECT:
	case DLM_E_DISCONNECTED:
	case DLM_E_CLOSED:
	case DLM_E_SHUTTING_DOWN:
		return EXIT_UNREACHABLE;
	case DLM_E_PERMISSION:
		return EXIT_PERMISSION;
	case DLM_E_NOT_FOUND:
		return EXIT_NOT_FOUND;
	case DLM_E_ADDRESS:
	case DLM_E_INVALID:
		return EXIT_USAGE;
	default:
		return EXIT_FAILED;
	}
}

const char *
ctl_server_name(const struct ctl *ctl)
{
	static char buf[300];
	const char *env = getenv("DLM_SERVER");

	if (ctl->server != NULL)
		return ctl->server;
	if (env != NULL && *env != '\0')
		return env;
	memcpy(buf, "unix:", 5);
	if (dlm_default_client_socket(buf + 5, sizeof buf - 5) != 0)
		return "the default socket";
	return buf;
}

/* The token's first line; never from the command line, never echoed. */
static int
read_token(struct ctl *ctl, const char *path)
{
	const char *why;

	free(ctl->auth);
	if (dlm_read_token_file(path, &ctl->auth, &why) != 0) {
		ctl_error("token file %s: %s", path, why);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int
ctl_addresses(const struct ctl *ctl, struct addr *a, int max)
{
	const char *env = getenv("DLM_SERVER");
	char why[300];
	int n;

	if (ctl->server == NULL && (env == NULL || *env == '\0')) {
		/* The default socket: one address, as dlmctl names it. */
		return addr_parse(ctl_server_name(ctl), 0, a, why,
		    sizeof why) == 0 ? 1 : 0;
	}
	if ((n = addr_parse_list(ctl_server_name(ctl), 0, a, max, why,
	    sizeof why)) > 0)
		return n;
	ctl_error("bad server address%s: %s",
	    ctl->server == NULL ? " in $DLM_SERVER" : "", why);
	return -1;
}

/*
 * The addresses from -s or $DLM_SERVER, every one of the list checked
 * before anything is dialled: the resolver would take a port past 65535
 * modulo 65536 and reach some other service. Returns EXIT_OK or
 * EXIT_USAGE.
 */
static int
check_address(const struct ctl *ctl)
{
	struct addr a[ADDR_LIST_MAX];

	return ctl_addresses(ctl, a, ADDR_LIST_MAX) < 0 ? EXIT_USAGE : EXIT_OK;
}

/* The TLS files given on the command line, into o (else libdlm's $DLM_TLS_*). */
void
ctl_tls_options(const struct ctl *ctl, struct dlm_options *o)
{
	if (ctl->tls_ca != NULL)
		o->tls_ca = ctl->tls_ca;
	if (ctl->tls_cert != NULL)
		o->tls_cert = ctl->tls_cert;
	if (ctl->tls_key != NULL)
		o->tls_key = ctl->tls_key;
}

int
ctl_open(struct ctl *ctl, const char *server, const struct dlm_options *given)
{
	struct dlm_options o;
	int err = 0;

	if (given != NULL)
		o = *given;
	else {
		dlm_options_init(&o);
		o.label = "dlmctl";
	}
	o.auth = ctl->auth;
	ctl_tls_options(ctl, &o);
	ctl->client = dlm_connect(server, &o, &err);
	return ctl->client != NULL ? DLM_OK : err;
}

void
ctl_connect_error(const struct ctl *ctl, const char *name, int err)
{
	switch (err) {
	case DLM_E_CONNECT:
		/* The library's words say why: no socket, refused, timed out. */
		ctl_error("cannot reach dlmd at %s (is it running?): %s",
		    name, dlm_errmsg(NULL));
		break;
	case DLM_E_PERMISSION:
		ctl_error("dlmd at %s refused the connection: %s", name,
		    ctl->auth != NULL ? "the token is wrong" :
		    "it wants a token (--token-file)");
		break;
	case DLM_E_ADDRESS:
		/* Checked before: a list, refused by a libdlm older than lists. */
		ctl_error("bad server address '%s' (this libdlm takes one "
		    "address, unix:/path or tcp:host:port, not a list)", name);
		break;
	default:
		ctl_error("cannot connect to %s: %s", name, dlm_errmsg(NULL));
		break;
	}
}

int
ctl_connect(struct ctl *ctl, const struct dlm_options *given)
{
	int err, rc;

	if ((rc = check_address(ctl)) != EXIT_OK)
		return rc;
	if ((err = ctl_open(ctl, ctl->server, given)) == DLM_OK)
		return EXIT_OK;
	ctl_connect_error(ctl, ctl_server_name(ctl), err);
	return ctl_exit_status(err);
}

/*
 * The server's own words say best why it refused (which lock, which
 * limit); they go out as the one line dlmctl(1) promises.
 */
static void
print_refusal(const char *message)
{
	char *line = text_escape(message);

	ctl_error("%s", line);
	free(line);
}

/*
 * A PERMISSION refusal in one line: what was asked, then the server's
 * sentence (which identity may not use which right on which lock, and
 * the rule that said so, or that none grants it).
 */
static void
print_permission(const char *message)
{
	char *line = text_escape(message);

	ctl_error("permission denied: %s", line);
	free(line);
}

int
ctl_call(struct ctl *ctl, const char *method, json_t *params,
    json_t **result)
{
	char *packed = NULL, *message = NULL;
	void *raw = NULL;
	size_t plen = 0, rlen = 0;
	int err;

	*result = NULL;
	if (params != NULL && value_to_msgpack(params, &packed, &plen) != 0) {
		ctl_error("out of memory");
		return EXIT_FAILED;
	}
	err = dlm_call(ctl->client, method, packed, plen, &raw, &rlen,
	    &message);
	free(packed);
	if (err != 0) {
		/* The server's words name the identity, the right, the lock. */
		if (message != NULL && err == DLM_E_PERMISSION)
			print_permission(message);
		else if (message != NULL)
			print_refusal(message);
		else if (err == DLM_E_DISCONNECTED || err == DLM_E_CLOSED)
			ctl_error("lost the connection to dlmd at %s",
			    ctl_server_name(ctl));
		else
			ctl_error("%s: %s", method, dlm_strerror(err));
		dlm_free(message);
		return ctl_exit_status(err);
	}
	*result = value_from_msgpack(raw, rlen);
	dlm_free(raw);
	if (*result == NULL || !json_is_object(*result)) {
		json_decref(*result);
		*result = NULL;
		ctl_error("%s: the server's answer is unreadable", method);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

int
ctl_print_json(json_t *doc)
{
	if (json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
	    putchar('\n') == EOF || fflush(stdout) != 0) {
		ctl_error("cannot write the output: %s", strerror(errno));
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .server = NULL, .json = false };
	const char *token_file = getenv("DLM_TOKEN_FILE");
	int ch, rc;

	/* '+': options after the command belong to the command. */
	while ((ch = getopt_long(argc, argv, "+s:jhV", options, NULL)) != -1) {
		switch (ch) {
		case 's':
			ctl.server = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'A':
			ctl.tls_ca = optarg;
			break;
		case 'C':
			ctl.tls_cert = optarg;
			break;
		case 'K':
			ctl.tls_key = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_OK;
		case 'V':
			printf("dlmctl %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			fputs(usage_text, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (token_file != NULL && *token_file != '\0' &&
		    (rc = read_token(&ctl, token_file)) != EXIT_OK)
			return rc;
		/* The command parses its own options from its name on. */
		argc -= optind;
		argv += optind;
		optind = 0;
		rc = commands[i].fn(&ctl, argc, argv);
		dlm_close(ctl.client);
		if (ctl.auth != NULL)
			explicit_bzero(ctl.auth, strlen(ctl.auth));
		free(ctl.auth);
		return rc;
	}
	ctl_error("unknown command '%s' (see dlmctl --help)", argv[optind]);
	return EXIT_USAGE;
}

/*
 * A lock or client name from the command line, in the escaped form the
 * tables show; a bad one is a usage error, said here where errors are.
 */
int
name_from_arg(const char *what, const char *arg, struct name *nm)
{
	char why[100];

	memset(nm, 0, sizeof *nm);
	if (name_unescape(arg, &nm->bytes, &nm->len, why, sizeof why) != 0) {
		char *shown = text_escape(arg);

		ctl_error("%s '%s': %s", what, shown, why);
		free(shown);
		return EXIT_USAGE;
	}
	if (nm->len == 0) {
		ctl_error("the %s is empty", what);
		name_free(nm);
		return EXIT_USAGE;
	}
	nm->shown = name_escape(nm->bytes, nm->len);
	return EXIT_OK;
}
