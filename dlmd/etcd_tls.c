/*
 * TLS from a cluster member to etcd's https:// endpoints: the client
 * context (the CAs etcd's certificates must chain to, and the certificate
 * this member presents when etcd runs with --client-cert-auth), and one SSL
 * per connection that checks the certificate names the endpoint's host.
 *
 * The context is built whole before it is used, at start (a bad file stops
 * the start) and at each SIGHUP (a bad file keeps the running context);
 * connections made before a reload keep the context they were made from.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "dlmd.h"
#include "tlsclient.h"

/* A new context from the settings; NULL with why in err. */
SSL_CTX *
etcd_tls_ctx(const struct dlmd_config *cfg, char *err, size_t errlen)
{
	char why[500];
	SSL_CTX *ctx;

	if ((cfg->cluster_etcd_cert == NULL) != (cfg->cluster_etcd_key ==
	    NULL)) {
		snprintf(err, errlen, "cluster-etcd-cert and cluster-etcd-key "
		    "go together");
		return NULL;
	}
	if ((ctx = tlsclient_ctx(cfg->cluster_etcd_ca, cfg->cluster_etcd_cert,
	    cfg->cluster_etcd_key, why, sizeof why)) == NULL)
		snprintf(err, errlen, "TLS to etcd: %s", why);
	return ctx;
}

/* Whether the settings' files make a context (start, --check-config). */
int
etcd_tls_check(const struct dlmd_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = etcd_tls_ctx(cfg, err, errlen);

	if (ctx == NULL)
		return -1;
	SSL_CTX_free(ctx);
	return 0;
}

void
etcd_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/*
 * An SSL for one connection to host: the certificate must name it (an IP
 * address as an IP SAN, a name as a DNS SAN or CN), and a name is sent as
 * SNI. NULL when out of memory.
 */
SSL *
etcd_tls_ssl(SSL_CTX *ctx, const char *host)
{
	SSL *ssl;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if (tlsclient_expect_host(ssl, host) != 0) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/*
 * Why a TLS connection to etcd failed, for the log: the certificate's
 * verification result when that is what failed, else OpenSSL's reason
 * (etcd's alert, say). Asked when evhttp reports the error, before it
 * resets the connection and the reasons with it.
 */
void
etcd_tls_why(struct bufferevent *bev, char *why, size_t len)
{
	SSL *ssl = bev != NULL ? bufferevent_openssl_get_ssl(bev) : NULL;
	const char *reason = NULL;
	unsigned long e;
	long vr;

	/* The first error that has words: what went wrong, not its echo. */
	while (bev != NULL && (e = bufferevent_get_openssl_error(bev)) != 0)
		if (reason == NULL)
			reason = ERR_reason_error_string(e);
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK)
		snprintf(why, len, "TLS: etcd's certificate is not trusted: "
		    "%s", X509_verify_cert_error_string(vr));
	else if (reason != NULL)
		snprintf(why, len, "TLS: %s", reason);
	else
		snprintf(why, len, "connection failed");
}
