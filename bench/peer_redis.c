/*
 * Redis, the way common Redis lock libraries do it: SET key token NX PX
 * lease to take, a compare-and-delete script to give back (so that a
 * holder whose lock expired cannot delete the next holder's), and waiting
 * as a loop of tries with a sleep between them (redis-py's Lock sleeps
 * 0.1 s; lockbench -r sets it). A batch is pipelined.
 *
 * A semaphore as Redisson's expirable-permit semaphore keeps one: a
 * sorted set of permit ids scored by when each lease ends, taken by a
 * script that first drops the lapsed ones (so a dead holder's permit
 * comes back after its lease) and adds one if fewer than the capacity
 * are left; given back by removing the id. Waiting is the same loop of
 * tries as for a lock.
 *
 * Over TLS (a tls:HOST:PORT address, the server's certificate checked
 * against $DLM_TLS_CA and the host): Debian 12's hiredis (0.14) has no
 * TLS of its own, so hiredis still formats every command and parses every
 * reply, and only the bytes go through OpenSSL instead of read() and
 * write(), which is what hiredis 1.x's own TLS does too.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "addr.h"
#include "lockbench.h"

/* Deletes the key only when it still holds this holder's token. */
static const char release_script[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";

/*
 * KEYS[1] the semaphore; ARGV: capacity, lease in ms, the permit's id.
 * The server's clock, not the client's, says when leases end.
 */
static const char sem_acquire_script[] =
    "local t = redis.call('time') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "redis.call('zremrangebyscore', KEYS[1], '-inf', now) "
    "if redis.call('zcard', KEYS[1]) < tonumber(ARGV[1]) then "
    "redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[3]) "
    "return 1 end return 0";

struct rconn {
	redisContext	*ctx;
	SSL		*ssl;		/* NULL: hiredis does the I/O */
	char		 sha[41];
	char		 sem_sha[41];
	char		 permit[64];	/* the semaphore permit held now */
	char		 token[64];	/* of the lock held now */
	unsigned long	 serial;
	int		 lease_ms;
	int		 pid;		/* in tokens; asked once, not per try */
};

static const char *
redis_recipe(void)
{
	static char line[300];

	snprintf(line, sizeof line, "SET key token NX PX lease; release: "
	    "EVALSHA compare-and-delete; waiting: retry every %d ms; "
	    "batch: pipelined; semaphore: a sorted set of leased permits, "
	    "taken by a script", bench_opts.redis_retry_ms);
	return line;
}

/* One client context for every TLS connection, made on first use. */
static SSL_CTX *tls_ctx;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void
tls_ctx_make(void)
{
	const char *ca = getenv("DLM_TLS_CA");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		fprintf(stderr, "redis TLS CA %s: unreadable\n",
		    ca != NULL ? ca : "(the system's)");
		SSL_CTX_free(ctx);
		return;
	}
	tls_ctx = ctx;
}

/* A handshake on ctx's connected socket, the certificate naming host. */
static SSL *
tls_start(redisContext *ctx, const char *host)
{
	SSL *ssl;

	pthread_once(&tls_once, tls_ctx_make);
	if (tls_ctx == NULL || (ssl = SSL_new(tls_ctx)) == NULL)
		return NULL;
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 &&
	    (SSL_set_tlsext_host_name(ssl, host) != 1 ||
	    SSL_set1_host(ssl, host) != 1))
		goto fail;
	if (SSL_set_fd(ssl, ctx->fd) != 1 || SSL_connect(ssl) != 1)
		goto fail;
	return ssl;
fail:
	ERR_print_errors_fp(stderr);
	SSL_free(ssl);
	return NULL;
}

static struct rconn *
redis_dial(const char *addr)
{
	struct rconn *rc = calloc(1, sizeof *rc);
	struct addr a;
	char err[200];

	if (rc == NULL)
		return NULL;
	if (addr_parse(addr, 0, &a, err, sizeof err) != 0) {
		fprintf(stderr, "redis address %s\n", err);
		free(rc);
		return NULL;
	}
	if (a.type == ADDR_UNIX)
		rc->ctx = redisConnectUnix(a.path);
	else
		rc->ctx = redisConnect(a.host, a.portnum);
	if (rc->ctx != NULL && rc->ctx->err != 0) {
		fprintf(stderr, "redis %s: %s\n", addr, rc->ctx->errstr);
		redisFree(rc->ctx);
		rc->ctx = NULL;
	}
	if (rc->ctx != NULL && a.type == ADDR_TLS &&
	    (rc->ssl = tls_start(rc->ctx, a.host)) == NULL) {
		fprintf(stderr, "redis %s: TLS handshake failed\n", addr);
		redisFree(rc->ctx);
		rc->ctx = NULL;
	}
	if (rc->ctx == NULL) {
		free(rc);
		return NULL;
	}
	return rc;
}

static void
redis_hangup(struct rconn *rc)
{
	if (rc->ssl != NULL) {
		SSL_shutdown(rc->ssl);
		SSL_free(rc->ssl);
	}
	redisFree(rc->ctx);
	free(rc);
}

/*
 * The next reply, as redisGetReply: first one already read, else the
 * commands appended so far are sent and replies read until one is whole.
 */
static int
redis_reply(struct rconn *rc, redisReply **reply)
{
	redisContext *c = rc->ctx;
	void *r = NULL;
	char buf[16384];
	int n;

	if (rc->ssl == NULL)
		return redisGetReply(c, (void **)reply);
	if (redisGetReplyFromReader(c, &r) != REDIS_OK)
		return REDIS_ERR;
	if (r == NULL) {
		size_t len = sdslen(c->obuf);

		for (size_t off = 0; off < len; off += (size_t)n)
			if ((n = SSL_write(rc->ssl, c->obuf + off,
			    (int)(len - off))) <= 0)
				return REDIS_ERR;
		sdsclear(c->obuf);
	}
	while (r == NULL) {
		if ((n = SSL_read(rc->ssl, buf, sizeof buf)) <= 0 ||
		    redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK ||
		    redisGetReplyFromReader(c, &r) != REDIS_OK)
			return REDIS_ERR;
	}
	*reply = r;
	return REDIS_OK;
}

/* One command and its reply, as redisCommand; NULL on failure. */
static redisReply *
redis_command(struct rconn *rc, const char *fmt, ...)
{
	redisReply *r = NULL;
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = redisvAppendCommand(rc->ctx, fmt, ap);
	va_end(ap);
	if (err != REDIS_OK || redis_reply(rc, &r) != REDIS_OK)
		return NULL;
	return r;
}

static void *
redis_open(const char *addr, int lease_ms)
{
	static unsigned long nconns;
	struct rconn *rc = redis_dial(addr);
	redisReply *r;

	if (rc == NULL)
		return NULL;
	rc->lease_ms = lease_ms > 0 ? lease_ms : 10000;
	rc->pid = (int)getpid();
	rc->serial = __atomic_add_fetch(&nconns, 1, __ATOMIC_RELAXED) << 32;
	r = redis_command(rc, "SCRIPT LOAD %s", release_script);
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "redis: SCRIPT LOAD failed\n");
		if (r != NULL)
			freeReplyObject(r);
		redis_hangup(rc);
		return NULL;
	}
	snprintf(rc->sha, sizeof rc->sha, "%s", r->str);
	freeReplyObject(r);
	r = redis_command(rc, "SCRIPT LOAD %s", sem_acquire_script);
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "redis: SCRIPT LOAD failed\n");
		if (r != NULL)
			freeReplyObject(r);
		redis_hangup(rc);
		return NULL;
	}
	snprintf(rc->sem_sha, sizeof rc->sem_sha, "%s", r->str);
	freeReplyObject(r);
	return rc;
}

static void
redis_close(void *conn)
{
	redis_hangup(conn);
}

/* One SET NX PX try; the token is unique to this acquisition. */
static int
redis_try(struct rconn *rc, const char *lock, char *token, size_t len)
{
	redisReply *r;
	int res;

	snprintf(token, len, "%d:%lx", rc->pid, ++rc->serial);
	r = redis_command(rc, "SET %s %s NX PX %d", lock, token,
	    rc->lease_ms);
	if (r == NULL)
		return PEER_ERROR;
	res = r->type == REDIS_REPLY_STATUS ? PEER_GRANTED :
	    r->type == REDIS_REPLY_NIL ? PEER_BUSY : PEER_ERROR;
	freeReplyObject(r);
	return res;
}

static int
redis_acquire(void *conn, const char *lock, int timeout_ms)
{
	struct rconn *rc = conn;
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		int res = redis_try(rc, lock, rc->token, sizeof rc->token);

		if (res != PEER_BUSY || timeout_ms == 0 ||
		    (timeout_ms > 0 && mono_ns() >= deadline))
			return res;
		sleep_ms(bench_opts.redis_retry_ms);
	}
}

static int
redis_release_token(struct rconn *rc, const char *lock, const char *token)
{
	redisReply *r = redis_command(rc, "EVALSHA %s 1 %s %s", rc->sha,
	    lock, token);
	int res = r != NULL && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 1 ? 0 : PEER_ERROR;

	if (r != NULL)
		freeReplyObject(r);
	return res;
}

static int
redis_release(void *conn, const char *lock)
{
	struct rconn *rc = conn;

	return redis_release_token(rc, lock, rc->token);
}

static int
redis_batch(void *conn, const char *const *locks, int n)
{
	struct rconn *rc = conn;
	char (*tokens)[32] = malloc((size_t)n * sizeof *tokens);
	int err = 0;

	if (tokens == NULL)
		return PEER_ERROR;
	for (int i = 0; i < n; i++) {
		snprintf(tokens[i], sizeof tokens[i], "%d:%lx", rc->pid,
		    ++rc->serial);
		redisAppendCommand(rc->ctx, "SET %s %s NX PX %d", locks[i],
		    tokens[i], rc->lease_ms);
	}
	for (int i = 0; i < n; i++) {
		redisReply *r;

		if (redis_reply(rc, &r) != REDIS_OK) {
			free(tokens);
			return PEER_ERROR;
		}
		if (r->type != REDIS_REPLY_STATUS)
			err = PEER_ERROR;
		freeReplyObject(r);
	}
	for (int i = 0; i < n; i++)
		redisAppendCommand(rc->ctx, "EVALSHA %s 1 %s %s", rc->sha,
		    locks[i], tokens[i]);
	for (int i = 0; i < n; i++) {
		redisReply *r;

		if (redis_reply(rc, &r) != REDIS_OK) {
			free(tokens);
			return PEER_ERROR;
		}
		if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
			err = PEER_ERROR;
		freeReplyObject(r);
	}
	free(tokens);
	return err;
}

/* What a lock library's watchdog does to extend a held lock. */
static int
redis_renew(void *ctx, int i)
{
	struct rconn *rc = ((struct rconn **)ctx)[i];
	redisReply *r;
	char name[64];

	snprintf(name, sizeof name, "idle/%d", i);
	if ((r = redis_command(rc, "PEXPIRE %s %d", name,
	    rc->lease_ms)) == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* n clients each holding one lock and keeping it: PEXPIRE, paced alike. */
static int
redis_idle(const char *addr, int n, int seconds, int lease_ms, pid_t server,
    struct idle_cost *cost)
{
	struct rconn **rc = calloc((size_t)n, sizeof *rc);
	long rss0 = proc_rss_kib(server);
	char name[64];
	int err = 0;

	if (rc == NULL)
		return -1;
	for (int i = 0; i < n && err == 0; i++) {
		snprintf(name, sizeof name, "idle/%d", i);
		if ((rc[i] = redis_open(addr, lease_ms)) == NULL ||
		    redis_acquire(rc[i], name, 0) != PEER_GRANTED)
			err = -1;
	}
	if (err != 0)
		fprintf(stderr, "redis idle: could not open %d clients\n", n);
	else
		err = idle_measure(n, seconds, lease_ms, server, rss0,
		    redis_renew, rc, cost);
	for (int i = 0; i < n; i++) {
		if (rc[i] == NULL)
			continue;
		snprintf(name, sizeof name, "idle/%d", i);
		redis_release(rc[i], name);
		redis_close(rc[i]);
	}
	free(rc);
	return err;
}

/* n keys set at once through one pipelined connection. */
static int
redis_many(const char *addr, long n, pid_t server, double *rss_per_lock)
{
	struct rconn *rc = redis_open(addr, 600000);
	long rss0 = proc_rss_kib(server);
	char name[64], token[32];
	int err = 0;

	if (rc == NULL)
		return -1;
	for (long i = 0; i < n && err == 0; i += 1000) {
		long k;

		for (k = 0; k < 1000 && i + k < n; k++) {
			snprintf(name, sizeof name, "m/%07ld", i + k);
			snprintf(token, sizeof token, "%d:%lx", rc->pid,
			    ++rc->serial);
			redisAppendCommand(rc->ctx, "SET %s %s NX PX %d", name,
			    token, rc->lease_ms);
		}
		for (long j = 0; j < k; j++) {
			redisReply *r;

			if (redis_reply(rc, &r) != REDIS_OK) {
				err = -1;
				break;
			}
			if (r->type != REDIS_REPLY_STATUS)
				err = -1;
			freeReplyObject(r);
		}
	}
	sleep_ms(500);
	*rss_per_lock = (double)(proc_rss_kib(server) - rss0) * 1024.0 /
	    (double)n - 9.0;
	freeReplyObject(redis_command(rc, "FLUSHALL"));
	redis_close(rc);
	return err;
}

static int
redis_sem_acquire(void *conn, const char *sem, int capacity, int timeout_ms)
{
	struct rconn *rc = conn;
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		redisReply *r;
		int res;

		snprintf(rc->permit, sizeof rc->permit, "%d:%lx", rc->pid,
		    ++rc->serial);
		r = redis_command(rc, "EVALSHA %s 1 %s %d %d %s",
		    rc->sem_sha, sem, capacity, rc->lease_ms, rc->permit);
		if (r == NULL)
			return PEER_ERROR;
		res = r->type != REDIS_REPLY_INTEGER ? PEER_ERROR :
		    r->integer == 1 ? PEER_GRANTED : PEER_BUSY;
		freeReplyObject(r);
		if (res != PEER_BUSY || timeout_ms == 0 ||
		    (timeout_ms > 0 && mono_ns() >= deadline))
			return res;
		sleep_ms(bench_opts.redis_retry_ms);
	}
}

static int
redis_sem_release(void *conn, const char *sem)
{
	struct rconn *rc = conn;
	redisReply *r = redis_command(rc, "ZREM %s %s", sem, rc->permit);
	int res = r != NULL && r->type == REDIS_REPLY_INTEGER &&
	    r->integer == 1 ? 0 : PEER_ERROR;

	if (r != NULL)
		freeReplyObject(r);
	return res;
}

const struct peer peer_redis = {
	.name = "redis",
	.recipe = redis_recipe,
	.open = redis_open,
	.close = redis_close,
	.acquire = redis_acquire,
	.release = redis_release,
	.batch = redis_batch,
	.idle = redis_idle,
	.many = redis_many,
	.sem_acquire = redis_sem_acquire,
	.sem_release = redis_sem_release,
};
