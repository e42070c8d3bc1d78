/*
 * TLS for the engine's connection to a tls: server, with OpenSSL on the
 * engine's own non-blocking socket: the handshake is one more step of
 * ENGINE_CONNECTING, driven like the connect before it by whoever drives
 * the engine (the I/O thread, or dlm_loop_process in the event-loop
 * mode), and OpenSSL's WANT_READ / WANT_WRITE become engine_events().
 *
 * The server's certificate is verified against the CA given (or the
 * system's) and must name the host dialled. The socket is read and written
 * through a BIO of our own so that a write to a closed peer is EPIPE and
 * never SIGPIPE, as with the plain connection's send(MSG_NOSIGNAL): a
 * library must not kill its program.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "engine.h"
#include "tlsclient.h"

static BIO_METHOD *sock_method;
static pthread_once_t sock_once = PTHREAD_ONCE_INIT;

static int
sock_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send((int)(intptr_t)BIO_get_data(b), buf, (size_t)len,
	    MSG_NOSIGNAL | MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int
sock_read(BIO *b, char *buf, int len)
{
	ssize_t n = recv((int)(intptr_t)BIO_get_data(b), buf, (size_t)len,
	    MSG_DONTWAIT);

	BIO_clear_retry_flags(b);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long
sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void
sock_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() |
	    BIO_TYPE_SOURCE_SINK, "dlm socket");

	if (m == NULL)
		return;
	if (BIO_meth_set_write(m, sock_write) != 1 ||
	    BIO_meth_set_read(m, sock_read) != 1 ||
	    BIO_meth_set_ctrl(m, sock_ctrl) != 1 ||
	    BIO_meth_set_create(m, sock_create) != 1) {
		BIO_meth_free(m);
		return;
	}
	sock_method = m;
}

int
tls_client_ctx(struct engine *e, const char *ca, const char *cert,
    const char *key, char *err, size_t errlen)
{
	char why[400];
	SSL_CTX *ctx = tlsclient_ctx(ca, cert, key, why, sizeof why);

	if (ctx == NULL) {
		snprintf(err, errlen, "TLS %s", why);
		return DLM_E_CONNECT;
	}
	SSL_CTX_free(e->tls_ctx);
	e->tls_ctx = ctx;
	return 0;
}

/* Start a handshake on the connected fd, to the host of e->addr. */
int
tls_client_start(struct engine *e, int fd, char *err, size_t errlen)
{
	const char *host = e->addr.host;
	BIO *bio;
	SSL *ssl;

	(void)pthread_once(&sock_once, sock_method_make);
	if (e->tls_ctx == NULL) {
		snprintf(err, errlen, "TLS: no context (set no TLS options?)");
		return -1;
	}
	ERR_clear_error();
	if (sock_method == NULL || (ssl = SSL_new(e->tls_ctx)) == NULL) {
		snprintf(err, errlen, "TLS: out of memory");
		return -1;
	}
	if ((bio = BIO_new(sock_method)) == NULL) {
		SSL_free(ssl);
		snprintf(err, errlen, "TLS: out of memory");
		return -1;
	}
	BIO_set_data(bio, (void *)(intptr_t)fd);
	SSL_set_bio(ssl, bio, bio);
	SSL_set_connect_state(ssl);
	/* An address is checked against the certificate's IP names. */
	if (tlsclient_expect_host(ssl, host) != 0)
		goto fail;
	e->ssl = ssl;
	e->fd = fd;
	e->tls_handshaking = true;
	e->tls_want_write = false;
	return 0;
fail:
	SSL_free(ssl);
	snprintf(err, errlen, "TLS: cannot check the name %s", host);
	return -1;
}

/*
 * One handshake step: 1 done, 0 waiting (e->tls_want_write says for
 * what), -1 failed with why in err.
 */
int
tls_client_step(struct engine *e, char *err, size_t errlen)
{
	int rc, code;

	ERR_clear_error();
	if ((rc = SSL_do_handshake(e->ssl)) == 1) {
		e->tls_handshaking = false;
		e->tls_want_write = false;
		return 1;
	}
	code = SSL_get_error(e->ssl, rc);
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
		e->tls_want_write = code == SSL_ERROR_WANT_WRITE;
		return 0;
	}
	tlsclient_handshake_why(e->ssl, code, e->addr.host, err, errlen);
	return -1;
}

/*
 * Read what the connection has into b: bytes read (0 when none yet), or
 * -1 when it ended, with why in err (empty for a plain end).
 */
int
tls_client_read(struct engine *e, struct rbuf *b, char *err, size_t errlen)
{
	int total = 0;

	err[0] = '\0';
	do {
		char *dst;
		size_t room;
		int n, code;

		if (rbuf_room(b, &dst, &room) != 0)
			return -1;
		ERR_clear_error();
		if ((n = SSL_read(e->ssl, dst, room > INT32_MAX ? INT32_MAX :
		    (int)room)) > 0) {
			rbuf_commit(b, (size_t)n);
			total += n;
			continue;
		}
		code = SSL_get_error(e->ssl, n);
		if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
			return total;
		if (code == SSL_ERROR_SSL)
			tlsclient_why(err, errlen, "TLS error");
		ERR_clear_error();
		return total > 0 ? total : -1;
	} while (SSL_pending(e->ssl) > 0);
	return total;
}

/* send() for the TLS connection: bytes, or -1 with errno (EAGAIN). */
ssize_t
tls_client_write(struct engine *e, const void *buf, size_t len)
{
	int n, code;

	ERR_clear_error();
	if ((n = SSL_write(e->ssl, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) > 0)
		return n;
	code = SSL_get_error(e->ssl, n);
	ERR_clear_error();
	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		errno = EAGAIN;
	else if (code != SSL_ERROR_SYSCALL || errno == 0)
		errno = EPIPE;
	return -1;
}

/* Forget the connection's SSL (the socket is closed by the caller). */
void
tls_client_drop(struct engine *e)
{
	SSL_free(e->ssl);
	e->ssl = NULL;
	e->tls_handshaking = false;
	e->tls_want_write = false;
	ERR_clear_error();
}

void
tls_client_free(struct engine *e)
{
	tls_client_drop(e);
	SSL_CTX_free(e->tls_ctx);
	e->tls_ctx = NULL;
}
