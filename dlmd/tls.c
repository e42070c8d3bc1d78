/*
 * TLS on tls: listeners, with OpenSSL used directly on each connection's
 * non-blocking socket.
 *
 * Why directly and not through libevent's bufferevent_openssl: conn.c
 * reads into one shared buffer, scans frames in place, and writes replies
 * from an evbuffer it measures against max-output. A bufferevent would
 * bring its own input and output buffers, watermarks and callbacks, a
 * second path for framing and for the output limit beside the plain one.
 * Here a TLS connection differs from a plain one only in the two calls
 * that move bytes (tls_conn_read for read(), tls_conn_write for
 * evbuffer_write()) and in a handshake before the first frame; everything
 * above them is the same code.
 *
 * The context (certificate chain, key, CA) is built whole before it
 * replaces the running one, so a reload with a bad file keeps the old; an
 * SSL holds a reference to the context it was made from, so connections
 * open across a reload keep theirs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dlmd.h"
#include "tlsclient.h"

static SSL_CTX *tls_ctx;

/* Build a server context from the settings; NULL with why in err. */
static SSL_CTX *
tls_ctx_build(const struct dlmd_config *cfg, char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx;

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tlsclient_why(why, sizeof why, "out of memory");
		snprintf(err, errlen, "cannot make a TLS context: %s", why);
		return NULL;
	}
	/* 1.2 at least; 1.3 is chosen whenever the client offers it. */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * Partial writes: a reply is written as far as the socket takes it,
	 * as on a plain connection; the evbuffer may move its bytes between
	 * a write that wanted more room and its retry. Renegotiation is a
	 * cheap way for a client to make the server work: refused.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
		tlsclient_why(why, sizeof why, "unreadable");
		snprintf(err, errlen, "tls-cert %s: %s", cfg->tls_cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
	    SSL_FILETYPE_PEM) != 1) {
		tlsclient_why(why, sizeof why, "unreadable");
		snprintf(err, errlen, "tls-key %s: %s", cfg->tls_key, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tlsclient_why(why, sizeof why, "does not match");
		snprintf(err, errlen, "tls-key %s does not belong to tls-cert "
		    "%s: %s", cfg->tls_key, cfg->tls_cert, why);
		goto fail;
	}
	if (cfg->tls_ca != NULL) {
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca,
		    NULL) != 1 ||
		    (names = SSL_load_client_CA_file(cfg->tls_ca)) == NULL) {
			tlsclient_why(why, sizeof why, "no certificates");
			snprintf(err, errlen, "tls-ca %s: %s", cfg->tls_ca,
			    why);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		/* Mutual TLS: a client without a good certificate is out. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Whether the settings' files make a context (--check-config, a reload). */
int
tls_check(const struct dlmd_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (cfg->tls_cert == NULL && cfg->tls_key == NULL && cfg->tls_ca == NULL)
		return 0;
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		snprintf(err, errlen, "tls-cert and tls-key go together");
		return -1;
	}
	if ((ctx = tls_ctx_build(cfg, err, errlen)) == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

/* The context for tls: listeners, made at the first one. */
int
tls_setup(const struct dlmd_config *cfg)
{
	char err[600];

	if (tls_ctx != NULL)
		return 0;
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		log_warnx("a tls: listener needs tls-cert and tls-key");
		return -1;
	}
	if ((tls_ctx = tls_ctx_build(cfg, err, sizeof err)) == NULL) {
		log_warnx("%s", err);
		return -1;
	}
	return 0;
}

/*
 * SIGHUP: new handshakes use the files as they are now; open connections
 * keep what they agreed. A file that does not load keeps the running ones.
 */
void
tls_reload(const struct dlmd_config *cfg)
{
	char err[600];
	SSL_CTX *ctx;

	if (tls_ctx == NULL)
		return;		/* no tls: listener */
	if (cfg->tls_cert == NULL || cfg->tls_key == NULL) {
		log_warnx("reload: tls-cert and tls-key are gone; keeping the "
		    "running certificate");
		return;
	}
	if ((ctx = tls_ctx_build(cfg, err, sizeof err)) == NULL) {
		log_warnx("reload: %s; keeping the running certificate", err);
		return;
	}
	SSL_CTX_free(tls_ctx);
	tls_ctx = ctx;
	log_info("reload: TLS certificate %s%s%s loaded", cfg->tls_cert,
	    cfg->tls_ca != NULL ? ", clients verified against " : "",
	    cfg->tls_ca != NULL ? cfg->tls_ca : "");
}

void
tls_free(void)
{
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
}

/* Give c an SSL on its socket, to accept a handshake. */
int
tls_conn_start(struct conn *c)
{
	if (tls_ctx == NULL || (c->ssl = SSL_new(tls_ctx)) == NULL)
		return -1;
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		return -1;
	}
	SSL_set_accept_state(c->ssl);
	return 0;
}

/* Why a handshake failed, in words an operator can act on. */
static void
tls_handshake_why(struct conn *c, int err, char *why, size_t len)
{
	long vr = SSL_get_verify_result(c->ssl);
	char lib[256];

	tlsclient_why(lib, sizeof lib, err == SSL_ERROR_SYSCALL ?
	    "the peer closed the connection" : "unknown error");
	if (err == SSL_ERROR_SSL && vr != X509_V_OK)
		snprintf(why, len, "client certificate refused: %s",
		    X509_verify_cert_error_string(vr));
	else
		snprintf(why, len, "%s", lib);
}

static void	cert_identity(X509 *, char *name, size_t len);

/*
 * One step of the handshake: 1 done, 0 waiting for the socket (*want_write
 * set when it must become writable), -1 failed with why. Once done, name
 * is the identity of a verified client certificate, or "".
 */
int
tls_conn_handshake(struct conn *c, bool *want_write, char *name,
    size_t namelen, char *why, size_t len)
{
	int rc, err;

	*want_write = false;
	name[0] = '\0';
	ERR_clear_error();
	if ((rc = SSL_do_handshake(c->ssl)) == 1) {
		X509 *peer = SSL_get1_peer_certificate(c->ssl);

		if (peer != NULL &&
		    SSL_get_verify_result(c->ssl) == X509_V_OK)
			cert_identity(peer, name, namelen);
		X509_free(peer);
		return 1;
	}
	err = SSL_get_error(c->ssl, rc);
	if (err == SSL_ERROR_WANT_READ)
		return 0;
	if (err == SSL_ERROR_WANT_WRITE) {
		*want_write = true;
		return 0;
	}
	tls_handshake_why(c, err, why, len);
	return -1;
}

/*
 * read() for a TLS connection: bytes, 0 at the end, or -1 with errno
 * (EAGAIN: nothing yet; EPROTO: *why says what broke).
 */
ssize_t
tls_conn_read(struct conn *c, void *buf, size_t len, char *why, size_t wlen)
{
	int n, err;

	ERR_clear_error();
	if ((n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX :
	    (int)len)) > 0)
		return n;
	err = SSL_get_error(c->ssl, n);
	switch (err) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0)
			return 0;	/* closed without close_notify */
		return -1;
	default:
		tlsclient_why(why, wlen, "TLS error");
		errno = EPROTO;
		return -1;
	}
}

/* Whether decrypted bytes wait inside the SSL, unseen by poll. */
bool
tls_conn_pending(struct conn *c)
{
	return c->ssl != NULL && SSL_pending(c->ssl) > 0;
}

/*
 * evbuffer_write() for a TLS connection: what the socket takes now, in
 * records of up to 16 KiB; bytes written, or -1 with errno (EAGAIN when
 * nothing could be).
 */
int
tls_conn_write(struct conn *c, struct evbuffer *out)
{
	int total = 0;

	for (;;) {
		size_t left = evbuffer_get_length(out);
		size_t chunk = left < 16384 ? left : 16384;
		unsigned char *p;
		int n, err;

		if (left == 0)
			return total;
		if ((p = evbuffer_pullup(out, (ev_ssize_t)chunk)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		ERR_clear_error();
		if ((n = SSL_write(c->ssl, p, (int)chunk)) > 0) {
			evbuffer_drain(out, (size_t)n);
			total += n;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
			if (total > 0)
				return total;
			errno = EAGAIN;
			return -1;
		}
		ERR_clear_error();
		if (err != SSL_ERROR_SYSCALL || errno == 0)
			errno = EPROTO;
		return -1;
	}
}

/* Before the socket closes: a close_notify if it goes out at once. */
void
tls_conn_end(struct conn *c, bool handshaken)
{
	if (c->ssl == NULL)
		return;
	if (handshaken) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);
	}
	ERR_clear_error();
}

void
tls_conn_free(struct conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
}

/* Copy an ASN.1 string as UTF-8, refusing controls; 0 or -1. */
static int
tls_name_copy(const ASN1_STRING *s, char *out, size_t outlen)
{
	unsigned char *utf8 = NULL;
	int n = ASN1_STRING_to_UTF8(&utf8, s);

	if (n <= 0 || (size_t)n >= outlen) {
		OPENSSL_free(utf8);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (utf8[i] < 0x20 || utf8[i] == 0x7f) {
			OPENSSL_free(utf8);
			return -1;
		}
	memcpy(out, utf8, (size_t)n);
	out[n] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

/*
 * The identity a verified certificate gives: its subject CN, else its
 * first DNS or email name; "" when it has none that can be a name.
 */
static void
cert_identity(X509 *cert, char *name, size_t len)
{
	const X509_NAME *subj = X509_get_subject_name(cert);
	GENERAL_NAMES *sans;
	int i;

	name[0] = '\0';
	if (subj != NULL &&
	    (i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1)) >= 0 &&
	    tls_name_copy(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj,
	    i)), name, len) == 0)
		return;
	name[0] = '\0';
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);

		if ((gn->type == GEN_DNS || gn->type == GEN_EMAIL) &&
		    tls_name_copy(gn->d.ia5, name, len) == 0)
			break;
		name[0] = '\0';
	}
	GENERAL_NAMES_free(sans);
}
