/* dlmd: options, signals and the event loop. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlmd.h"
#include "tokenfile.h"
#include "xmalloc.h"

enum {
	OPT_LEASE_MIN = 256,
	OPT_LEASE_MAX,
	OPT_LEASE_DEFAULT,
	OPT_LINGER_MAX,
	OPT_MAX_CLIENTS,
	OPT_MAX_HOLDS,
	OPT_MAX_WAITS,
	OPT_MAX_NAME_LEN,
	OPT_MAX_REQUEST,
	OPT_MAX_OUTPUT,
	OPT_SOCKET_MODE,
	OPT_ADMIN_UID,
	OPT_TOKEN_FILE,
	OPT_ADMIN_TOKEN_FILE,
	OPT_LOG_LEVEL,
};

static const struct option long_options[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "listen", required_argument, NULL, 'l' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "lease-min", required_argument, NULL, OPT_LEASE_MIN },
	{ "lease-max", required_argument, NULL, OPT_LEASE_MAX },
	{ "lease-default", required_argument, NULL, OPT_LEASE_DEFAULT },
	{ "linger-max", required_argument, NULL, OPT_LINGER_MAX },
	{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
	{ "max-holds", required_argument, NULL, OPT_MAX_HOLDS },
	{ "max-waits", required_argument, NULL, OPT_MAX_WAITS },
	{ "max-name-len", required_argument, NULL, OPT_MAX_NAME_LEN },
	{ "max-request", required_argument, NULL, OPT_MAX_REQUEST },
	{ "max-output", required_argument, NULL, OPT_MAX_OUTPUT },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "admin-uid", required_argument, NULL, OPT_ADMIN_UID },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn))
usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;

	fprintf(f,
"usage: dlmd [-fhvV] [-l ADDRESS]... [options]\n"
"  -f, --foreground         run in the foreground (the default for now)\n"
"  -l, --listen ADDRESS     unix:PATH or tcp:HOST:PORT; repeatable\n"
"                           (default: the default Unix socket)\n"
"  -v, --verbose            log debug messages\n"
"      --log-level LEVEL    error, warning, info (default) or debug\n"
"      --lease-min MS       shortest lease a client may ask for (1000)\n"
"      --lease-max MS       longest lease (300000)\n"
"      --lease-default MS   lease when the client names none (10000)\n"
"      --linger-max MS      longest linger (300000)\n"
"      --max-clients N      sessions at once (65536)\n"
"      --max-holds N        holds plus waits per session (100000)\n"
"      --max-waits N        waits per session (10000)\n"
"      --max-name-len N     bytes in a lock or client name (255)\n"
"      --max-request BYTES  largest request (65536)\n"
"      --max-output BYTES   unread output before a client is dropped (1048576)\n"
"      --socket-mode MODE   file mode of Unix sockets, octal (0666)\n"
"      --admin-uid UID      also an admin over the Unix socket; repeatable\n"
"      --token-file FILE    token TCP clients must present\n"
"      --admin-token-file FILE  token that makes a client an admin\n"
"  -h, --help               this text\n"
"  -V, --version            the version\n"
"See dlmd(8).\n");
	exit(status);
}

static uint32_t
parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < min || v > max) {
		fprintf(stderr, "dlmd: --%s: '%s' is not a number from %u to "
		    "%u\n", opt, s, min, max);
		exit(2);
	}
	return (uint32_t)v;
}

static uid_t
parse_uid(const char *s)
{
	struct passwd *pw;
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == 0 && end != s && *end == '\0')
		return (uid_t)v;
	if ((pw = getpwnam(s)) != NULL)
		return pw->pw_uid;
	fprintf(stderr, "dlmd: --admin-uid: no user '%s'\n", s);
	exit(2);
}

/* A token file: its first line, which must not be empty. */
static char *
read_token(const char *opt, const char *path)
{
	const char *why;
	char *token;

	if (dlm_read_token_file(path, &token, &why) != 0) {
		fprintf(stderr, "dlmd: --%s: %s: %s\n", opt, path, why);
		exit(2);
	}
	return token;
}

static void
config_defaults(struct dlmd_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->lease_min_ms = 1000;
	cfg->lease_max_ms = 300000;
	cfg->lease_default_ms = 10000;
	cfg->linger_max_ms = 300000;
	cfg->max_clients = 65536;
	cfg->max_holds = 100000;
	cfg->max_waits = 10000;
	cfg->max_name_len = 255;
	cfg->max_request = 65536;
	cfg->max_output = 1048576;
	cfg->socket_mode = 0666;
}

static void
config_parse(struct dlmd_config *cfg, int argc, char **argv)
{
	int ch;
	char *end;
	unsigned long mode;

	while ((ch = getopt_long(argc, argv, "fhl:vV", long_options,
	    NULL)) != -1) {
		switch (ch) {
		case 'f':
			break;
		case 'l':
			cfg->listen = xrealloc(cfg->listen,
			    (size_t)(cfg->nlisten + 1) * sizeof *cfg->listen);
			cfg->listen[cfg->nlisten++] = optarg;
			break;
		case 'v':
			cfg->log_level = LOG_LEVEL_DEBUG;
			break;
		case OPT_LOG_LEVEL:
			if ((cfg->log_level = log_level_parse(optarg)) < 0) {
				fprintf(stderr, "dlmd: --log-level: '%s' is "
				    "not error, warning, info or debug\n",
				    optarg);
				exit(2);
			}
			break;
		case OPT_LEASE_MIN:
			cfg->lease_min_ms = parse_u32("lease-min", optarg, 10,
			    INT32_MAX);
			break;
		case OPT_LEASE_MAX:
			cfg->lease_max_ms = parse_u32("lease-max", optarg, 10,
			    INT32_MAX);
			break;
		case OPT_LEASE_DEFAULT:
			cfg->lease_default_ms = parse_u32("lease-default",
			    optarg, 10, INT32_MAX);
			break;
		case OPT_LINGER_MAX:
			cfg->linger_max_ms = parse_u32("linger-max", optarg, 0,
			    INT32_MAX);
			break;
		case OPT_MAX_CLIENTS:
			cfg->max_clients = parse_u32("max-clients", optarg, 1,
			    UINT32_MAX);
			break;
		case OPT_MAX_HOLDS:
			cfg->max_holds = parse_u32("max-holds", optarg, 1,
			    UINT32_MAX);
			break;
		case OPT_MAX_WAITS:
			cfg->max_waits = parse_u32("max-waits", optarg, 1,
			    UINT32_MAX);
			break;
		case OPT_MAX_NAME_LEN:
			cfg->max_name_len = parse_u32("max-name-len", optarg, 1,
			    1000);
			break;
		case OPT_MAX_REQUEST:
			cfg->max_request = parse_u32("max-request", optarg, 512,
			    16 * 1024 * 1024);
			break;
		case OPT_MAX_OUTPUT:
			cfg->max_output = parse_u32("max-output", optarg, 4096,
			    UINT32_MAX);
			break;
		case OPT_SOCKET_MODE:
			errno = 0;
			mode = strtoul(optarg, &end, 8);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    mode > 0777) {
				fprintf(stderr, "dlmd: --socket-mode: '%s' is "
				    "not an octal mode\n", optarg);
				exit(2);
			}
			cfg->socket_mode = (mode_t)mode;
			break;
		case OPT_ADMIN_UID:
			if (cfg->nadmin_uids == DLMD_MAX_ADMIN_UIDS) {
				fprintf(stderr, "dlmd: at most %d --admin-uid\n",
				    DLMD_MAX_ADMIN_UIDS);
				exit(2);
			}
			cfg->admin_uids[cfg->nadmin_uids++] = parse_uid(optarg);
			break;
		case OPT_TOKEN_FILE:
			free(cfg->client_token);
			cfg->client_token = read_token("token-file", optarg);
			break;
		case OPT_ADMIN_TOKEN_FILE:
			free(cfg->admin_token);
			cfg->admin_token = read_token("admin-token-file",
			    optarg);
			break;
		case 'h':
			usage(0);
		case 'V':
			printf("dlmd %s (protocol %d)\n", PACKAGE_VERSION,
			    DLM_PROTO_VERSION);
			exit(0);
		default:
			usage(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dlmd: unexpected argument '%s'\n",
		    argv[optind]);
		usage(2);
	}
	if (cfg->lease_min_ms > cfg->lease_max_ms) {
		fprintf(stderr, "dlmd: --lease-min is above --lease-max\n");
		exit(2);
	}
	if (cfg->lease_default_ms < cfg->lease_min_ms ||
	    cfg->lease_default_ms > cfg->lease_max_ms) {
		fprintf(stderr, "dlmd: --lease-default must lie between "
		    "--lease-min and --lease-max\n");
		exit(2);
	}
}

/*
 * Debian's default soft limit of 1024 descriptors would cap a daemon meant
 * for tens of thousands of clients without a word: raise the soft limit
 * towards max-clients (plus room for listeners and logs), up to the hard
 * limit, and say so when the hard limit is lower.
 */
static void
raise_fd_limit(uint32_t max_clients)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_clients + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		/* Root may raise the hard limit too; others keep theirs. */
		struct rlimit both = { want, want };

		if (setrlimit(RLIMIT_NOFILE, &both) == 0)
			return;
		rl.rlim_cur = rl.rlim_max;
	} else
		rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
		    (unsigned long long)rl.rlim_cur);
	if (rl.rlim_cur < want)
		log_warnx("only %llu file descriptors allowed (hard limit); "
		    "fewer than --max-clients %u clients can connect",
		    (unsigned long long)rl.rlim_cur, max_clients);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		server_shutdown();
		break;
	case SIGHUP:
		log_info("SIGHUP: nothing to reload in this version");
		break;
	}
}

int
main(int argc, char **argv)
{
	struct dlmd_config cfg;
	struct event_config *ecfg;
	struct event_base *base;
	struct event *sigs[3];
	static const int signums[3] = { SIGTERM, SIGINT, SIGHUP };
	int failed = 0;

	config_defaults(&cfg);
	config_parse(&cfg, argc, argv);
	log_init(cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(cfg.max_clients);

	/* Precise monotonic timers: leases are promises measured in ms. */
	if ((ecfg = event_config_new()) == NULL)
		fatalx("event_config_new failed");
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	if ((base = event_base_new_with_config(ecfg)) == NULL)
		fatalx("event_base_new failed");
	event_config_free(ecfg);

	server_init(base, &cfg);
	/*
	 * Handlers first: a SIGTERM that comes as soon as the socket accepts
	 * (a service manager stopping a fresh daemon) must drain, not kill.
	 */
	for (int i = 0; i < 3; i++) {
		if ((sigs[i] = evsignal_new(base, signums[i], signal_cb,
		    NULL)) == NULL || evsignal_add(sigs[i], NULL) != 0)
			fatalx("cannot handle signal %d", signums[i]);
	}
	if (cfg.nlisten == 0)
		failed = server_listen("default") != 0;
	for (int i = 0; i < cfg.nlisten && !failed; i++)
		failed = server_listen(cfg.listen[i]) != 0;
	if (failed)
		log_warnx("cannot listen; exiting");
	else {
		log_info("dlmd %s ready (lease %u..%u ms, default %u)",
		    PACKAGE_VERSION, cfg.lease_min_ms, cfg.lease_max_ms,
		    cfg.lease_default_ms);
		event_base_dispatch(base);
		log_info("exiting");
	}
	/* A second SIGTERM during clean-up must not kill us. */
	for (int i = 0; i < 3; i++) {
		event_free(sigs[i]);
		signal(signums[i], SIG_IGN);
	}

	server_free();
	event_base_free(base);
	free(cfg.listen);
	free(cfg.client_token);
	free(cfg.admin_token);
	return failed ? 1 : 0;
}
