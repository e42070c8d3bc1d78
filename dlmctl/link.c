/*
 * One connection to one address, plain or TLS, driven by poll() against a
 * deadline: what member.c needs to ask a standby a question without a
 * session, which libdlm (always a session) cannot.
 *
 * A TLS link verifies the server as libdlm does (common/tlsclient.c): the
 * same files (--tls-ca, --tls-cert, --tls-key, else $DLM_TLS_*), the same
 * name check. OpenSSL writes with write(), so SIGPIPE is held back while
 * it does and a pending one discarded: a server that hangs up must not
 * kill dlmctl.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "dial.h"
#include "dlmctl.h"
#include "tlsclient.h"

static int
left_ms(uint64_t deadline)
{
	uint64_t now = mono_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Wait for events on fd until deadline; false on timeout or failure. */
static bool
wait_fd(int fd, short events, uint64_t deadline, char *why, size_t whylen)
{
	struct pollfd p = { fd, events, 0 };
	int n;

	do {
		int ms = left_ms(deadline);

		if (ms == 0) {
			snprintf(why, whylen, "timed out");
			return false;
		}
		n = poll(&p, 1, ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		snprintf(why, whylen, "poll: %s", strerror(errno));
		return false;
	}
	if (n == 0) {
		snprintf(why, whylen, "timed out");
		return false;
	}
	return true;
}

/* A connection to a by deadline (dial.c's steps), or -1 with why. */
static int
dial_by(const struct addr *a, uint64_t deadline, char *why, size_t whylen)
{
	struct dial d;
	int fd = -1, rc = dial_start(&d, a);

	while (rc == 0) {
		if (!wait_fd(d.fd, POLLOUT, deadline, why, whylen)) {
			dial_abort(&d);
			return -1;
		}
		rc = dial_done(&d, &fd);
	}
	if (rc != 1) {
		snprintf(why, whylen, "%s", d.why);
		return -1;
	}
	if (fd < 0) {
		/* A Unix socket: connected at the start. */
		fd = d.fd;
		d.fd = -1;
	}
	dial_abort(&d);
	return fd;
}

static void
pipe_hold(sigset_t *old)
{
	sigset_t pipe;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe, old);
}

/* A SIGPIPE raised while held is taken off, then the old mask is back. */
static void
pipe_release(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipe, pending;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	sigpending(&pending);
	if (sigismember(&pending, SIGPIPE) && !sigismember(old, SIGPIPE))
		(void)sigtimedwait(&pipe, NULL, &zero);
	sigprocmask(SIG_SETMASK, old, NULL);
}

/*
 * The server asked for a certificate and we have none: under TLS 1.3 the
 * handshake ends on our side before the server refuses, and its alert can
 * be lost to the reset that follows it, so the reason is noted here.
 */
static int
cert_asked(SSL *ssl, X509 **cert, EVP_PKEY **key)
{
	struct link *l = SSL_get_app_data(ssl);

	l->cert_asked = true;
	return 0;
}

static void
cert_refusal(char *why, size_t whylen)
{
	snprintf(why, whylen, "TLS: client certificate required by the "
	    "server, and none given (--tls-cert, $DLM_TLS_CERT)");
}

/*
 * One SSL call's outcome: 1 done, 0 wait (for *events), -1 failed with
 * why in err (EOF: "closed").
 */
static int
ssl_outcome(struct link *l, int rc, short *events, char *why, size_t whylen)
{
	int code;

	if (rc > 0)
		return 1;
	code = SSL_get_error(l->ssl, rc);
	if (code == SSL_ERROR_WANT_READ) {
		*events = POLLIN;
		return 0;
	}
	if (code == SSL_ERROR_WANT_WRITE) {
		*events = POLLOUT;
		return 0;
	}
	/* Once the server has spoken, its refusal is not the reason. */
	if (l->cert_asked && !l->answered)
		cert_refusal(why, whylen);
	else if (code == SSL_ERROR_ZERO_RETURN)
		snprintf(why, whylen, "closed");
	else {
		char lib[200];

		tlsclient_why(lib, sizeof lib, code == SSL_ERROR_SYSCALL ?
		    "closed" : "TLS error");
		if (strcmp(lib, "closed") == 0)
			snprintf(why, whylen, "closed");
		else
			snprintf(why, whylen, "TLS: %s", lib);
	}
	return -1;
}

static int
tls_start(struct link *l, const struct addr *a, const struct ctl *ctl,
    uint64_t deadline, char *why, size_t whylen)
{
	const char *ca = ctl->tls_ca != NULL ? ctl->tls_ca :
	    getenv("DLM_TLS_CA");
	const char *cert = ctl->tls_cert != NULL ? ctl->tls_cert :
	    getenv("DLM_TLS_CERT");
	const char *key = ctl->tls_key != NULL ? ctl->tls_key :
	    getenv("DLM_TLS_KEY");
	char err[400];
	sigset_t old;

	if ((l->ctx = tlsclient_ctx(ca, cert, key, err, sizeof err)) == NULL) {
		snprintf(why, whylen, "TLS %s", err);
		return -1;
	}
	if (cert == NULL)
		SSL_CTX_set_client_cert_cb(l->ctx, cert_asked);
	if ((l->ssl = SSL_new(l->ctx)) == NULL ||
	    SSL_set_app_data(l->ssl, l) != 1 ||
	    SSL_set_fd(l->ssl, l->fd) != 1 ||
	    tlsclient_expect_host(l->ssl, a->host) != 0) {
		snprintf(why, whylen, "TLS: out of memory");
		return -1;
	}
	for (;;) {
		short events = 0;
		int rc, code;

		ERR_clear_error();
		pipe_hold(&old);
		rc = SSL_connect(l->ssl);
		code = SSL_get_error(l->ssl, rc);
		if (rc != 1 && code != SSL_ERROR_WANT_READ &&
		    code != SSL_ERROR_WANT_WRITE) {
			/* TLS 1.2 refuses a missing certificate here. */
			if (l->cert_asked)
				cert_refusal(why, whylen);
			else
				tlsclient_handshake_why(l->ssl, code, a->host,
				    why, whylen);
			pipe_release(&old);
			return -1;
		}
		rc = ssl_outcome(l, rc, &events, why, whylen);
		pipe_release(&old);
		if (rc == 1)
			return 0;
		if (!wait_fd(l->fd, events, deadline, why, whylen))
			return -1;
	}
}

int
link_open(struct link *l, const struct addr *a, const struct ctl *ctl,
    uint64_t deadline, char *why, size_t whylen)
{
	memset(l, 0, sizeof *l);
	if ((l->fd = dial_by(a, deadline, why, whylen)) < 0)
		return -1;
	if (a->type == ADDR_TLS &&
	    tls_start(l, a, ctl, deadline, why, whylen) != 0) {
		link_close(l);
		return -1;
	}
	return 0;
}

/*
 * One SSL_write (write) or SSL_read of at most len bytes, SIGPIPE held
 * back: ssl_outcome()'s answer, *n the bytes moved when it is 1.
 */
static int
ssl_io(struct link *l, bool write, char *buf, size_t len, ssize_t *n,
    short *events, char *why, size_t whylen)
{
	int chunk = len > INT32_MAX ? INT32_MAX : (int)len, rc;
	sigset_t old;

	ERR_clear_error();
	pipe_hold(&old);
	rc = write ? SSL_write(l->ssl, buf, chunk) : SSL_read(l->ssl, buf,
	    chunk);
	*n = rc;
	rc = ssl_outcome(l, rc, events, why, whylen);
	pipe_release(&old);
	return rc;
}

bool
link_send_all(struct link *l, const char *buf, size_t len, uint64_t deadline,
    char *why, size_t whylen)
{
	while (len > 0) {
		short events = POLLOUT;
		ssize_t n;

		if (l->ssl != NULL) {
			int rc = ssl_io(l, true, (char *)buf, len, &n, &events,
			    why, whylen);

			if (rc < 0)
				return false;
			if (rc == 0)
				n = 0;
		} else if ((n = send(l->fd, buf, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				snprintf(why, whylen, "%s", strerror(errno));
				return false;
			}
			n = 0;
		}
		buf += n;
		len -= (size_t)n;
		if (len > 0 && n == 0 &&
		    !wait_fd(l->fd, events, deadline, why, whylen))
			return false;
	}
	return true;
}

ssize_t
link_recv(struct link *l, char *buf, size_t len, uint64_t deadline,
    char *why, size_t whylen)
{
	for (;;) {
		short events = POLLIN;
		ssize_t n;

		if (l->ssl != NULL) {
			int rc = ssl_io(l, false, buf, len, &n, &events, why,
			    whylen);

			if (rc > 0) {
				l->answered = true;
				return n;
			}
			if (rc < 0)
				return strcmp(why, "closed") == 0 ? 0 : -1;
		} else if ((n = recv(l->fd, buf, len, 0)) >= 0)
			return n;
		else if (errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			snprintf(why, whylen, "%s", strerror(errno));
			return -1;
		}
		if (!wait_fd(l->fd, events, deadline, why, whylen))
			return -1;
	}
}

void
link_close(struct link *l)
{
	SSL_free(l->ssl);
	SSL_CTX_free(l->ctx);
	if (l->fd >= 0)
		close(l->fd);
	memset(l, 0, sizeof *l);
	l->fd = -1;
}
