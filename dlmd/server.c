/*
 * The server: listeners on Unix, TCP and TLS sockets, start and shutdown. It
 * wires the connection layer to the protocol: whole frames go to
 * dispatch.c, a closed connection to its session.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <errno.h>
#include <libgen.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>

#include "addr.h"
#include "dlmd.h"
#include "paths.h"
#include "xmalloc.h"

struct listener {
	TAILQ_ENTRY(listener)	 link;
	struct evconnlistener	*evl;
	struct event		*resume;	/* re-enable after EMFILE */
	char			*unix_path;	/* unlinked at exit */
	char			*name;
	bool			 is_unix;
	bool			 tls;
};

/* Everything written: free what ended, and leave once all is said. */
static void
server_flushed(void)
{
	struct session *s;

	/* Ended sessions no longer hold anything: forget their records. */
	TAILQ_FOREACH(s, &srv->dead_sessions, dead_link)
		records_session_ended(s);
	session_reap();
	if (srv->shutting_down && conn_count() == 0)
		event_base_loopbreak(srv->base);
}

static void
server_conn_closed(struct conn *c)
{
	dispatch_conn_closed(c);
	session_conn_closed(c);
}

static const struct conn_handlers server_conn_handlers = {
	.frame = dispatch_frame,
	.bad_frame = dispatch_bad_frame,
	.closed = server_conn_closed,
	.flushed = server_flushed,
};

int
server_init(struct event_base *base, struct dlmd_config *cfg)
{
	struct timespec ts;
	struct lt_limits limits;
	uint64_t first_token;

	srv = xcalloc(1, sizeof *srv);
	srv->base = base;
	srv->cfg = cfg;
	srv->uid = geteuid();
	srv->start_ms = now_ms();
	TAILQ_INIT(&srv->listeners);
	TAILQ_INIT(&srv->dead_sessions);
	RB_INIT(&srv->sessions);
	msgpack_zone_init(&srv->zone, 8192);
	msgpack_sbuffer_init(&srv->result);
	if (gethostname(srv->hostname, sizeof srv->hostname) != 0)
		snprintf(srv->hostname, sizeof srv->hostname, "localhost");
	srv->hostname[sizeof srv->hostname - 1] = '\0';
	conn_init(base, cfg, &srv->stats, &server_conn_handlers);
	timers_init(base);
	memory_init(base);

	/*
	 * Fencing tokens must grow across restarts without storage: start from
	 * the realtime clock in microseconds. This assumes the clock does not
	 * step back between runs by more than the time the daemon was down,
	 * and that fewer than a million grants a second are made on average.
	 */
	clock_gettime(CLOCK_REALTIME, &ts);
	first_token = (uint64_t)ts.tv_sec * 1000000 +
	    (uint64_t)ts.tv_nsec / 1000;
	srv->lt = locktab_new(first_token, &session_lt_ops, NULL);
	evtimer_assign(&srv->delay_timer, base, session_delay_timer_cb, NULL);
	limits.max_holds = cfg->max_holds;
	limits.max_waits = cfg->max_waits;
	locktab_set_limits(srv->lt, &limits);
	return 0;
}

/* New limits from a reload; the rest of srv->cfg is read where used. */
void
server_limits_changed(void)
{
	struct lt_limits limits;

	limits.max_holds = srv->cfg->max_holds;
	limits.max_waits = srv->cfg->max_waits;
	locktab_set_limits(srv->lt, &limits);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	evconnlistener_enable(l->evl);
}

/*
 * Out of file descriptors: stop accepting for a second instead of spinning on
 * a listening socket that stays readable.
 */
static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		struct timeval one = { 1, 0 };

		log_warnx("accept on %s: %s; pausing for a second", l->name,
		    strerror(err));
		evconnlistener_disable(evl);
		evtimer_add(l->resume, &one);
		return;
	}
	log_warnx("accept on %s: %s", l->name, strerror(err));
}

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct listener *l = arg;

	if (l->tls)
		conn_accept_tls(fd, sa, socklen);
	else
		conn_accept(fd, sa, socklen, l->is_unix);
}

static struct listener *
listener_add(int fd, const char *name, bool is_unix, bool tls,
    const char *path)
{
	struct listener *l = xcalloc(1, sizeof *l);

	l->evl = evconnlistener_new(srv->base, listener_accept_cb, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 511, fd);
	if (l->evl == NULL)
		fatalx("%s: evconnlistener_new failed", __func__);
	evconnlistener_set_error_cb(l->evl, listener_error_cb);
	l->resume = evtimer_new(srv->base, listener_resume_cb, l);
	l->name = xstrdup(name);
	l->is_unix = is_unix;
	l->tls = tls;
	l->unix_path = path != NULL ? xstrdup(path) : NULL;
	TAILQ_INSERT_TAIL(&srv->listeners, l, link);
	log_info("listening on %s", name);
	return l;
}

/* Refuse to steal the socket of a running dlmd; remove a stale one. */
static int
unix_path_prepare(const char *path)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("%s exists and is not a socket", path);
		errno = EEXIST;
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	close(fd);
	if (rc == 0) {
		log_warnx("another server is listening on %s", path);
		errno = EADDRINUSE;
		return -1;
	}
	return unlink(path);
}

static int
listen_unix(const char *path)
{
	struct sockaddr_un sun;
	char name[sizeof sun.sun_path + 8], dir[sizeof sun.sun_path];
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		log_warnx("socket path too long: %s", path);
		return -1;
	}
	/*
	 * Make the parent directory if it is missing: world-readable for the
	 * system socket, private otherwise. A directory that is a symlink or
	 * belongs to another user (say, planted in /tmp) is refused.
	 */
	snprintf(dir, sizeof dir, "%s", path);
	dirname(dir);
	if (mkdir(dir, strcmp(dir, DLM_SYSTEM_SOCKET_DIR) == 0 ? 0755 : 0700)
	    != 0 && errno != EEXIST) {
		log_warn("mkdir %s", dir);
		return -1;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    (st.st_uid != geteuid() && st.st_uid != 0)) {
		log_warnx("%s is not a directory owned by this user or root",
		    dir);
		return -1;
	}
	if (unix_path_prepare(path) != 0) {
		log_warn("cannot use %s", path);
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) < 0) {
		log_warn("socket");
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0 ||
	    chmod(path, srv->cfg->socket_mode) != 0) {
		log_warn("bind %s", path);
		close(fd);
		return -1;
	}
	snprintf(name, sizeof name, "unix:%s", path);
	listener_add(fd, name, true, false, path);
	return 0;
}

/* The name a TCP listener is known by, with the port it really got. */
static void
tcp_listener_name(int fd, const struct addr *a, char *name, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	struct addr got = *a;
	unsigned port = a->portnum;

	if (port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	snprintf(got.port, sizeof got.port, "%u", port);
	addr_format(&got, name, len);
}

static int
listen_tcp(const struct addr *a)
{
	char name[ADDR_HOST_MAX + 16];
	struct addrinfo hints, *res, *ai;
	int rc, bound = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	addr_format(a, name, sizeof name);
	if ((rc = getaddrinfo(a->host[0] != '\0' ? a->host : NULL, a->port,
	    &hints, &res)) != 0) {
		log_warnx("%s: %s", name, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd, one = 1;

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			    sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			log_warn("bind %s", name);
			close(fd);
			continue;
		}
		tcp_listener_name(fd, a, name, sizeof name);
		listener_add(fd, name, false, a->type == ADDR_TLS, NULL);
		bound++;
	}
	freeaddrinfo(res);
	return bound > 0 ? 0 : -1;
}

/*
 * unix:PATH, a bare absolute PATH, tcp:HOST:PORT, tcp:[V6]:PORT,
 * tls:HOST:PORT, tls:[V6]:PORT, or "default". The settings were checked with the same parser when they
 * were read (options.c), so a bad address fails there, with exit 2.
 */
int
server_listen(const char *spec)
{
	struct addr a;
	char err[256];

	if (strcmp(spec, "default") == 0) {
		char path[4096];

		if (dlm_default_socket(path, sizeof path) != 0) {
			log_warnx("default socket path is too long");
			return -1;
		}
		return listen_unix(path);
	}
	if (addr_parse(spec, ADDR_LISTENER, &a, err, sizeof err) != 0) {
		log_warnx("listen: %s", err);
		return -1;
	}
	if (a.type == ADDR_UNIX)
		return listen_unix(a.path);
	if (a.type == ADDR_TLS && tls_setup(srv->cfg) != 0)
		return -1;
	return listen_tcp(&a);
}

static void
listeners_close(void)
{
	struct listener *l;

	while ((l = TAILQ_FIRST(&srv->listeners)) != NULL) {
		TAILQ_REMOVE(&srv->listeners, l, link);
		evconnlistener_free(l->evl);
		event_free(l->resume);
		if (l->unix_path != NULL && unlink(l->unix_path) != 0)
			log_warn("unlink %s", l->unix_path);
		free(l->unix_path);
		free(l->name);
		free(l);
	}
}

static void
shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("clients did not read their last replies in time");
	event_base_loopbreak(srv->base);
}

/*
 * SIGTERM: stop accepting, answer every pending acquire with SHUTTING_DOWN,
 * give clients a moment to read their replies, then leave the loop.
 */
void
server_shutdown(void)
{
	struct timeval grace = { 2, 0 };

	if (srv->shutting_down)
		return;
	log_info("shutting down: %u sessions, %u connections", srv->nsessions,
	    conn_count());
	srv->shutting_down = true;
	listeners_close();
	session_end_all(DLM_E_SHUTTING_DOWN);
	conn_close_all_after_flush();
	srv->shutdown_timer = evtimer_new(srv->base, shutdown_timeout_cb, NULL);
	evtimer_add(srv->shutdown_timer, &grace);
}

void
server_free(void)
{
	if (srv == NULL)
		return;
	listeners_close();
	session_end_all(DLM_E_SHUTTING_DOWN);
	conn_free_all();
	session_reap();
	watch_free_all();
	event_del(&srv->delay_timer);
	locktab_free(srv->lt);
	if (srv->shutdown_timer != NULL)
		event_free(srv->shutdown_timer);
	memory_free();
	tls_free();
	msgpack_zone_destroy(&srv->zone);
	msgpack_sbuffer_destroy(&srv->result);
	free(srv);
	srv = NULL;
}
