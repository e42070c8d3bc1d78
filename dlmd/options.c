/*
 * dlmd's settings: defaults, then /etc/dlmd.conf (keys are the long
 * options), then the command line, which wins. The same steps run again on
 * SIGHUP, so a reload sees the file as a restart would.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "acl.h"
#include "addr.h"
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
	OPT_MAX_LOCK_DELAY,
	OPT_SOCKET_MODE,
	OPT_ADMIN_UID,
	OPT_TOKEN_FILE,
	OPT_ADMIN_TOKEN_FILE,
	OPT_LOG_LEVEL,
	OPT_PIDFILE,
	OPT_METRICS_LISTEN,
	OPT_SYSLOG,
	OPT_CHECK_CONFIG,
	OPT_CLUSTER_ETCD,
	OPT_CLUSTER_NAME,
	OPT_CLUSTER_TTL,
	OPT_ADVERTISE,
	OPT_MAX_VALUE_LEN,
	OPT_MAX_WATCHES,
	/* Identities and access rules (issue 16). */
	OPT_TOKENS_FILE,
	OPT_ACL_FILE,
	/* TLS (tls.c) */
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_TLS_HANDSHAKE_TIMEOUT,
	/* TLS to etcd (etcd_tls.c) */
	OPT_CLUSTER_ETCD_CA,
	OPT_CLUSTER_ETCD_CERT,
	OPT_CLUSTER_ETCD_KEY,
};

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "daemon", no_argument, NULL, 'd' },
	{ "foreground", no_argument, NULL, 'f' },
	{ "listen", required_argument, NULL, 'l' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "syslog", no_argument, NULL, OPT_SYSLOG },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
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
	{ "max-value-len", required_argument, NULL, OPT_MAX_VALUE_LEN },
	{ "max-watches", required_argument, NULL, OPT_MAX_WATCHES },
	{ "max-lock-delay", required_argument, NULL, OPT_MAX_LOCK_DELAY },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "admin-uid", required_argument, NULL, OPT_ADMIN_UID },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN_FILE },
	{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
	{ "cluster-etcd", required_argument, NULL, OPT_CLUSTER_ETCD },
	{ "cluster-name", required_argument, NULL, OPT_CLUSTER_NAME },
	{ "cluster-ttl", required_argument, NULL, OPT_CLUSTER_TTL },
	{ "advertise", required_argument, NULL, OPT_ADVERTISE },
	{ "tokens-file", required_argument, NULL, OPT_TOKENS_FILE },
	{ "acl-file", required_argument, NULL, OPT_ACL_FILE },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
	{ "cluster-etcd-ca", required_argument, NULL, OPT_CLUSTER_ETCD_CA },
	{ "cluster-etcd-cert", required_argument, NULL, OPT_CLUSTER_ETCD_CERT },
	{ "cluster-etcd-key", required_argument, NULL, OPT_CLUSTER_ETCD_KEY },
	{ "tls-handshake-timeout", required_argument, NULL,
	    OPT_TLS_HANDSHAKE_TIMEOUT },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char short_options[] = "c:dfhl:vV";

static void __attribute__((noreturn))
usage(int status)
{
	FILE *f = status == 0 ? stdout : stderr;

	fprintf(f,
"usage: dlmd [-dfhvV] [-c FILE] [-l ADDRESS]... [options]\n"
"  -c, --config FILE        settings file (default " DLMD_CONFIG_FILE ")\n"
"  -d, --daemon             detach, log to syslog, write a pidfile\n"
"  -f, --foreground         stay in the foreground (the default)\n"
"  -l, --listen ADDRESS     unix:PATH, tcp:HOST:PORT or tls:HOST:PORT;\n"
"                           repeatable\n"
"                           (default: the default Unix socket)\n"
"  -v, --verbose            log debug messages\n"
"      --log-level LEVEL    error, warning, info (default) or debug\n"
"      --syslog             log to syslog, also in the foreground\n"
"      --pidfile FILE       write the pid there (default with -d: next to\n"
"                           the default socket)\n"
"      --lease-min MS       shortest lease a client may ask for (1000)\n"
"      --lease-max MS       longest lease (300000; 30000 in a cluster)\n"
"      --lease-default MS   lease when the client names none (10000)\n"
"      --linger-max MS      longest linger (300000)\n"
"      --max-clients N      sessions at once (65536)\n"
"      --max-holds N        holds plus waits per session (100000)\n"
"      --max-waits N        waits per session (10000)\n"
"      --max-name-len N     bytes in a lock or client name (255)\n"
"      --max-request BYTES  largest request (65536)\n"
"      --max-output BYTES   unread output before a client is dropped (1048576)\n"
"      --max-value-len BYTES  bytes in the value of a hold (1024; 0: none)\n"
"      --max-watches N      watches per session (64)\n"
"      --max-lock-delay MS  longest lock-delay an acquire may ask for;\n"
"                           0 refuses every delay (60000)\n"
"      --socket-mode MODE   file mode of Unix sockets, octal (0666)\n"
"      --admin-uid UID      also an admin over the Unix socket; repeatable\n"
"      --token-file FILE    token TCP clients must present\n"
"      --admin-token-file FILE  token that makes a client an admin\n"
"      --tokens-file FILE   named tokens, NAME SECRET a line: a client\n"
"                           giving SECRET in hello is token:NAME\n"
"      --acl-file FILE      access rules: who may lock, view, admin what\n"
"      --metrics-listen ADDR:PORT  serve Prometheus metrics over HTTP\n"
"      --cluster-etcd URLS  run as a member of a cluster coordinated by\n"
"                           these etcd endpoints (http:// or https://\n"
"                           HOST:PORT, comma-separated)\n"
"      --cluster-etcd-ca FILE  CAs that sign etcd's certificates (https://;\n"
"                           the system's CAs without it)\n"
"      --cluster-etcd-cert FILE  client certificate chain (PEM) for etcd\n"
"      --cluster-etcd-key FILE  its private key (PEM)\n"
"      --cluster-name NAME  the cluster's etcd key prefix (dlm)\n"
"      --cluster-ttl MS     the etcd lease behind the active's role (6000)\n"
"      --advertise ADDRESS  how clients reach this dlmd (cluster mode)\n"
"      --tls-cert FILE      certificate chain (PEM) for tls: listeners\n"
"      --tls-key FILE       its private key (PEM)\n"
"      --tls-ca FILE        require client certificates signed by these CAs\n"
"      --tls-handshake-timeout MS  time for a TLS handshake (10000)\n"
"      --check-config       check the settings file and options, then exit\n"
"  -h, --help               this text\n"
"  -V, --version            the version\n"
"See dlmd(8) and dlmd.conf(5).\n");
	exit(status);
}

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int
parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out,
    char *err, size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' ||
	    v < min || v > max)
		return fail(err, errlen, "'%s' is not a number from %u to %u",
		    s, min, max);
	*out = (uint32_t)v;
	return 0;
}

static int
parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	if (s == NULL || strcasecmp(s, "yes") == 0 ||
	    strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0)
		*out = true;
	else if (strcasecmp(s, "no") == 0 || strcasecmp(s, "false") == 0 ||
	    strcmp(s, "0") == 0)
		*out = false;
	else
		return fail(err, errlen, "'%s' is not yes or no", s);
	return 0;
}

static int
parse_uid(const char *s, uid_t *out, char *err, size_t errlen)
{
	struct passwd *pw;
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == 0 && end != s && *end == '\0') {
		*out = (uid_t)v;
		return 0;
	}
	if ((pw = getpwnam(s)) != NULL) {
		*out = pw->pw_uid;
		return 0;
	}
	return fail(err, errlen, "no user '%s'", s);
}

/*
 * Set one option from its text. value is NULL for a flag given on the
 * command line. Returns 0, or -1 with the reason in err.
 */
static int
option_set(struct dlmd_config *cfg, int code, const char *value, char *err,
    size_t errlen)
{
	const char *why;
	uint32_t *u32 = NULL, min = 0, max = UINT32_MAX;
	unsigned long mode;
	char *end, *token;
	bool b;

	switch (code) {
	case 'c':
		return 0;	/* read before the file; see config_build() */
	case OPT_CHECK_CONFIG:
		cfg->check_only = true;
		return 0;
	case 'd':
		if (parse_bool(value, &b, err, errlen) != 0)
			return -1;
		cfg->daemon = b;
		return 0;
	case 'f':
		if (parse_bool(value, &b, err, errlen) != 0)
			return -1;
		if (b)
			cfg->daemon = false;
		return 0;
	case 'v':
		if (parse_bool(value, &b, err, errlen) != 0)
			return -1;
		if (b)
			cfg->log_level = LOG_LEVEL_DEBUG;
		return 0;
	case OPT_SYSLOG:
		if (parse_bool(value, &b, err, errlen) != 0)
			return -1;
		cfg->syslog = b;
		return 0;
	case 'l':
		cfg->listen = xrealloc(cfg->listen,
		    (size_t)(cfg->nlisten + 1) * sizeof *cfg->listen);
		cfg->listen[cfg->nlisten++] = xstrdup(value);
		return 0;
	case OPT_LOG_LEVEL:
		if ((cfg->log_level = log_level_parse(value)) < 0)
			return fail(err, errlen, "'%s' is not error, warning, "
			    "info or debug", value);
		return 0;
	case OPT_PIDFILE:
		free(cfg->pidfile);
		cfg->pidfile = xstrdup(value);
		return 0;
	case OPT_METRICS_LISTEN:
		free(cfg->metrics_listen);
		cfg->metrics_listen = xstrdup(value);
		return 0;
	case OPT_CLUSTER_ETCD:
		free(cfg->cluster_etcd);
		cfg->cluster_etcd = xstrdup(value);
		return 0;
	case OPT_CLUSTER_NAME:
		if (value[0] == '\0' || strlen(value) > DLMD_CLUSTER_NAME_MAX ||
		    strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789._-/") !=
		    strlen(value))
			return fail(err, errlen, "'%s' is not 1 to %d letters, "
			    "digits and ._-/", value, DLMD_CLUSTER_NAME_MAX);
		free(cfg->cluster_name);
		cfg->cluster_name = xstrdup(value);
		return 0;
	case OPT_ADVERTISE:
		free(cfg->advertise);
		cfg->advertise = xstrdup(value);
		return 0;
	case OPT_CLUSTER_TTL:
		/* Below 2 s, etcd's own leader changes would fence us. */
		u32 = &cfg->cluster_ttl_ms, min = 2000, max = 600000;
		break;
	case OPT_LEASE_MIN:
		u32 = &cfg->lease_min_ms, min = 10, max = INT32_MAX;
		break;
	case OPT_LEASE_MAX:
		u32 = &cfg->lease_max_ms, min = 10, max = INT32_MAX;
		cfg->lease_max_set = true;
		break;
	case OPT_LEASE_DEFAULT:
		u32 = &cfg->lease_default_ms, min = 10, max = INT32_MAX;
		break;
	case OPT_LINGER_MAX:
		u32 = &cfg->linger_max_ms, max = INT32_MAX;
		break;
	case OPT_MAX_CLIENTS:
		u32 = &cfg->max_clients, min = 1;
		cfg->max_clients_set = true;
		break;
	case OPT_MAX_HOLDS:
		u32 = &cfg->max_holds, min = 1;
		break;
	case OPT_MAX_WAITS:
		u32 = &cfg->max_waits, min = 1;
		break;
	case OPT_MAX_NAME_LEN:
		u32 = &cfg->max_name_len, min = 1, max = 1000;
		break;
	case OPT_MAX_REQUEST:
		u32 = &cfg->max_request, min = 512, max = 16 * 1024 * 1024;
		break;
	case OPT_MAX_OUTPUT:
		u32 = &cfg->max_output, min = 4096;
		break;
	case OPT_MAX_VALUE_LEN:
		/* A value rides in a request: at most max-request's cap. */
		u32 = &cfg->max_value_len, max = 16 * 1024 * 1024;
		break;
	case OPT_MAX_WATCHES:
		u32 = &cfg->max_watches, max = 1000000;
		break;
	case OPT_MAX_LOCK_DELAY:
		u32 = &cfg->max_lock_delay_ms, max = INT32_MAX;
		break;
	case OPT_SOCKET_MODE:
		errno = 0;
		mode = strtoul(value, &end, 8);
		if (errno != 0 || end == value || *end != '\0' || mode > 0777)
			return fail(err, errlen, "'%s' is not an octal mode",
			    value);
		cfg->socket_mode = (mode_t)mode;
		return 0;
	case OPT_ADMIN_UID:
		if (cfg->nadmin_uids == DLMD_MAX_ADMIN_UIDS)
			return fail(err, errlen, "at most %d admin uids",
			    DLMD_MAX_ADMIN_UIDS);
		if (parse_uid(value, &cfg->admin_uids[cfg->nadmin_uids], err,
		    errlen) != 0)
			return -1;
		cfg->nadmin_uids++;
		return 0;
	case OPT_TOKEN_FILE:
	case OPT_ADMIN_TOKEN_FILE:
		if (dlm_read_token_file(value, &token, &why) != 0)
			return fail(err, errlen, "%s: %s", value, why);
		if (code == OPT_TOKEN_FILE) {
			free(cfg->client_token);
			cfg->client_token = token;
		} else {
			free(cfg->admin_token);
			cfg->admin_token = token;
		}
		return 0;
	case OPT_TOKENS_FILE:
		dlm_named_tokens_free(cfg->tokens, cfg->ntokens);
		cfg->tokens = NULL;
		cfg->ntokens = 0;
		return dlm_read_named_tokens(value, &cfg->tokens,
		    &cfg->ntokens, err, errlen);
	case OPT_ACL_FILE:
		/* Read by config_check(), once the last one given is known. */
		free(cfg->acl_file);
		cfg->acl_file = xstrdup(value);
		return 0;
	case OPT_TLS_CERT:
		free(cfg->tls_cert);
		cfg->tls_cert = xstrdup(value);
		return 0;
	case OPT_TLS_KEY:
		free(cfg->tls_key);
		cfg->tls_key = xstrdup(value);
		return 0;
	case OPT_TLS_CA:
		free(cfg->tls_ca);
		cfg->tls_ca = xstrdup(value);
		return 0;
	case OPT_CLUSTER_ETCD_CA:
		free(cfg->cluster_etcd_ca);
		cfg->cluster_etcd_ca = xstrdup(value);
		return 0;
	case OPT_CLUSTER_ETCD_CERT:
		free(cfg->cluster_etcd_cert);
		cfg->cluster_etcd_cert = xstrdup(value);
		return 0;
	case OPT_CLUSTER_ETCD_KEY:
		free(cfg->cluster_etcd_key);
		cfg->cluster_etcd_key = xstrdup(value);
		return 0;
	case OPT_TLS_HANDSHAKE_TIMEOUT:
		u32 = &cfg->tls_handshake_timeout_ms, min = 100, max = 600000;
		break;
	default:
		return fail(err, errlen, "unknown option");
	}
	return parse_u32(value, min, max, u32, err, errlen);
}

static const struct option *
option_named(const char *name)
{
	for (const struct option *o = long_options; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
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
	cfg->max_value_len = 1024;
	cfg->max_watches = 64;
	cfg->max_lock_delay_ms = 60000;
	cfg->socket_mode = 0666;
	cfg->cluster_ttl_ms = 6000;
	cfg->tls_handshake_timeout_ms = 10000;
}

void
config_free(struct dlmd_config *cfg)
{
	for (int i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	free(cfg->listen);
	free(cfg->pidfile);
	free(cfg->metrics_listen);
	free(cfg->config_file);
	free(cfg->cluster_etcd);
	free(cfg->cluster_name);
	free(cfg->advertise);
	if (cfg->client_token != NULL)
		explicit_bzero(cfg->client_token, strlen(cfg->client_token));
	if (cfg->admin_token != NULL)
		explicit_bzero(cfg->admin_token, strlen(cfg->admin_token));
	free(cfg->client_token);
	free(cfg->admin_token);
	dlm_named_tokens_free(cfg->tokens, cfg->ntokens);
	free(cfg->acl_file);
	acl_free(cfg->acl);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_ca);
	free(cfg->cluster_etcd_ca);
	free(cfg->cluster_etcd_cert);
	free(cfg->cluster_etcd_key);
	memset(cfg, 0, sizeof *cfg);
}

struct file_ctx {
	struct dlmd_config *cfg;
	char		 err[512];
};

/* inih calls this for every "key = value" line. */
static int
file_key(void *user, const char *section, const char *name,
    const char *value)
{
	struct file_ctx *ctx = user;
	const struct option *o;
	char why[400];

	if (ctx->err[0] != '\0')
		return 0;
	if (section[0] != '\0') {
		snprintf(ctx->err, sizeof ctx->err, "sections are not used "
		    "here ([%s])", section);
		return 0;
	}
	if ((o = option_named(name)) == NULL || o->val == 'h' ||
	    o->val == 'V' || o->val == 'c' || o->val == OPT_CHECK_CONFIG) {
		snprintf(ctx->err, sizeof ctx->err, "unknown key '%s'", name);
		return 0;
	}
	if (option_set(ctx->cfg, o->val, value, why, sizeof why) != 0) {
		snprintf(ctx->err, sizeof ctx->err, "%s: %s", name, why);
		return 0;
	}
	return 1;
}

static int
load_file(struct dlmd_config *cfg, const char *path, bool must_exist,
    char *err, size_t errlen)
{
	struct file_ctx ctx;
	FILE *f;
	int line;

	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	}
	cfg->config_file_read = true;
	ctx.cfg = cfg;
	ctx.err[0] = '\0';
	ini_allow_multiline = false;
	ini_stop_on_first_error = true;
	/* A heap line buffer that may grow: a stack one is fixed in size. */
	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = 4096;
	line = ini_parse_file(f, file_key, &ctx);
	fclose(f);
	if (line == 0)
		return 0;
	if (line < 0)
		return fail(err, errlen, "%s: cannot read it", path);
	return fail(err, errlen, "%s:%d: %s", path, line,
	    ctx.err[0] != '\0' ? ctx.err : "not a 'key = value' line");
}

/*
 * Every address is parsed here exactly as the start parses it, so that a
 * bad one stops dlmd (and --check-config, and a reload) with exit 2 before
 * anything is bound.
 */
static int
config_check(struct dlmd_config *cfg, char *err, size_t errlen)
{
	struct addr a;
	char why[600], tlswhy[600];
	bool tls_listener = false;

	for (int i = 0; i < cfg->nlisten; i++) {
		if (strcmp(cfg->listen[i], "default") == 0)
			continue;
		if (addr_parse(cfg->listen[i], ADDR_LISTENER, &a, why,
		    sizeof why) != 0)
			return fail(err, errlen, "listen: %s", why);
		tls_listener |= a.type == ADDR_TLS;
	}
	/* TLS: the files must load now, not at the first handshake. */
	if (tls_listener && (cfg->tls_cert == NULL || cfg->tls_key == NULL))
		return fail(err, errlen, "listen: a tls: listener needs "
		    "tls-cert and tls-key");
	if (tls_check(cfg, tlswhy, sizeof tlswhy) != 0)
		return fail(err, errlen, "%s", tlswhy);
	if (cfg->metrics_listen != NULL &&
	    addr_parse_hostport(cfg->metrics_listen, ADDR_LISTENER, &a, why,
	    sizeof why) != 0)
		return fail(err, errlen, "metrics-listen: %s", why);
	/*
	 * A new active grants nothing for the longest lease: in a cluster the
	 * default is what a fail-over in seconds allows, not five minutes.
	 */
	if (cfg->cluster_etcd != NULL && !cfg->lease_max_set)
		cfg->lease_max_ms = DLMD_CLUSTER_LEASE_MAX;
	if (cfg->lease_min_ms > cfg->lease_max_ms)
		return fail(err, errlen, "lease-min is above lease-max");
	if (cfg->lease_default_ms < cfg->lease_min_ms ||
	    cfg->lease_default_ms > cfg->lease_max_ms)
		return fail(err, errlen, "lease-default must lie between "
		    "lease-min and lease-max");
	if (cfg->cluster_etcd != NULL) {
		char host[256];
		uint16_t port;
		char *list = xstrdup(cfg->cluster_etcd), *tok, *save = NULL;
		int n = 0, ntls = 0, rc = 0;
		bool tls;

		for (tok = strtok_r(list, ",", &save); tok != NULL && rc == 0;
		    tok = strtok_r(NULL, ",", &save), n++) {
			rc = etcd_endpoint_parse(tok, host, sizeof host, &port,
			    &tls, why, sizeof why);
			ntls += tls;
		}
		free(list);
		if (rc != 0)
			return fail(err, errlen, "cluster-etcd: %s", why);
		if (n == 0 || n > ETCD_MAX_ENDPOINTS)
			return fail(err, errlen, "cluster-etcd: give 1 to %d "
			    "http:// or https:// URLs, separated by commas",
			    ETCD_MAX_ENDPOINTS);
		/*
		 * One scheme for all: a cluster whose members speak TLS to
		 * some endpoints and clear text to others protects nothing.
		 */
		if (ntls != 0 && ntls != n)
			return fail(err, errlen, "cluster-etcd: give every "
			    "endpoint as https://, or none");
		if (ntls == 0 && (cfg->cluster_etcd_ca != NULL ||
		    cfg->cluster_etcd_cert != NULL ||
		    cfg->cluster_etcd_key != NULL))
			return fail(err, errlen, "cluster-etcd-ca, -cert and "
			    "-key need https:// endpoints");
		if (ntls != 0 && etcd_tls_check(cfg, why, sizeof why) != 0)
			return fail(err, errlen, "%s", why);
		if (cfg->advertise == NULL)
			return fail(err, errlen, "advertise is required with "
			    "cluster-etcd: the address clients reach this dlmd "
			    "at");
	}
	/*
	 * The rules are read with the rest, so that a bad file stops a start
	 * (exit 2) and a reload keeps every running setting, rules included.
	 */
	if (cfg->acl_file != NULL &&
	    (cfg->acl = acl_load(cfg->acl_file, why, sizeof why)) == NULL)
		return fail(err, errlen, "acl-file: %s", why);
	if (cfg->advertise != NULL) {
		if (addr_parse(cfg->advertise, 0, &a, why, sizeof why) != 0)
			return fail(err, errlen, "advertise: %s", why);
		if (strlen(cfg->advertise) > DLMD_ADVERTISE_MAX)
			return fail(err, errlen, "advertise: longer than %d "
			    "bytes", DLMD_ADVERTISE_MAX);
	}
	return 0;
}

int
config_build(struct dlmd_config *cfg, int argc, char **argv, char *err,
    size_t errlen)
{
	const char *path = DLMD_CONFIG_FILE;
	bool explicit_path = false, cli_listen = false, cli_uid = false;
	char why[400];
	int ch;

	config_defaults(cfg);

	/* Where the file is, before reading it. */
	opterr = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, short_options, long_options,
	    NULL)) != -1)
		if (ch == 'c') {
			path = optarg;
			explicit_path = true;
		}
	cfg->config_file = xstrdup(path);
	if (load_file(cfg, path, explicit_path, err, errlen) != 0)
		return -1;

	/* The command line wins over the file. */
	opterr = 1;
	optind = 0;
	while ((ch = getopt_long(argc, argv, short_options, long_options,
	    NULL)) != -1) {
		const char *name;

		switch (ch) {
		case 'h':
			usage(0);
		case 'V':
			printf("dlmd %s (protocol %d)\n", PACKAGE_VERSION,
			    DLM_PROTO_VERSION);
			exit(0);
		case '?':
			usage(2);
		case 'l':
			/* Listed on the command line: instead of the file's. */
			if (!cli_listen) {
				for (int i = 0; i < cfg->nlisten; i++)
					free(cfg->listen[i]);
				cfg->nlisten = 0;
				cli_listen = true;
			}
			break;
		case OPT_ADMIN_UID:
			if (!cli_uid) {
				cfg->nadmin_uids = 0;
				cli_uid = true;
			}
			break;
		default:
			break;
		}
		name = NULL;
		for (const struct option *o = long_options; o->name; o++)
			if (o->val == ch)
				name = o->name;
		if (option_set(cfg, ch, optarg, why, sizeof why) != 0)
			return fail(err, errlen, "--%s: %s", name, why);
	}
	if (optind != argc)
		return fail(err, errlen, "unexpected argument '%s'",
		    argv[optind]);
	if (config_check(cfg, why, sizeof why) != 0)
		return fail(err, errlen, "%s", why);
	return 0;
}
