/*
 * One client context builder for every TLS client of the project, so
 * that libdlm, dlmctl and a cluster member's connection to etcd verify a
 * server the same way.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tlsclient.h"

void
tlsclient_why(char *buf, size_t len, const char *none)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		snprintf(buf, len, "%s", none);
	else if (ERR_reason_error_string(last) != NULL)
		snprintf(buf, len, "%s", ERR_reason_error_string(last));
	else
		ERR_error_string_n(last, buf, len);
}

/* Whether path can be read; else err says why, as the system does. */
static bool
readable(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return false;
	}
	fclose(f);
	return true;
}

SSL_CTX *
tlsclient_ctx(const char *ca, const char *cert, const char *key, char *err,
    size_t errlen)
{
	char why[200];
	SSL_CTX *ctx;

	/* OpenSSL would say only "system lib" of a missing file. */
	if ((ca != NULL && !readable("CA", ca, err, errlen)) ||
	    (cert != NULL && !readable("certificate", cert, err, errlen)) ||
	    (key != NULL && !readable("key", key, err, errlen)))
		return NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/*
	 * Partial writes: a frame is written as far as the socket takes it
	 * and the rest later, perhaps from a buffer that has moved since.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ca != NULL ? SSL_CTX_load_verify_locations(ctx, ca, NULL) :
	    SSL_CTX_set_default_verify_paths(ctx)) != 1) {
		tlsclient_why(why, sizeof why, "no certificates");
		snprintf(err, errlen, "CA %s: %s", ca != NULL ? ca :
		    "(the system's)", why);
		goto fail;
	}
	if (cert == NULL)
		return ctx;
	if (key == NULL)
		key = cert;	/* one PEM file with both */
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tlsclient_why(why, sizeof why, "unreadable");
		snprintf(err, errlen, "certificate %s: %s", cert, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tlsclient_why(why, sizeof why, "unreadable");
		snprintf(err, errlen, "key %s: %s", key, why);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tlsclient_why(why, sizeof why, "does not match");
		snprintf(err, errlen, "key %s does not belong to certificate "
		    "%s: %s", key, cert, why);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tlsclient_expect_host(SSL *ssl, const char *host)
{
	unsigned char ip[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
		    host) == 1 ? 0 : -1;
	return SSL_set_tlsext_host_name(ssl, host) == 1 &&
	    SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

void
tlsclient_handshake_why(SSL *ssl, int code, const char *host, char *err,
    size_t errlen)
{
	long vr = SSL_get_verify_result(ssl);
	char lib[200];

	tlsclient_why(lib, sizeof lib, code == SSL_ERROR_SYSCALL ?
	    "the server closed the connection" : "unknown error");
	if (code == SSL_ERROR_SSL && vr == X509_V_ERR_HOSTNAME_MISMATCH)
		snprintf(err, errlen, "TLS: the server's certificate does not "
		    "name %s", host);
	else if (code == SSL_ERROR_SSL && vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		snprintf(err, errlen, "TLS: the server's certificate does not "
		    "name the address %s", host);
	else if (code == SSL_ERROR_SSL && vr != X509_V_OK)
		snprintf(err, errlen, "TLS: the server's certificate is not "
		    "trusted: %s", X509_verify_cert_error_string(vr));
	else
		snprintf(err, errlen, "TLS handshake failed: %s", lib);
}
