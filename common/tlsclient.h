/*
 * The client side of TLS as libdlm, dlmctl and dlmd (to etcd) all do it:
 * a context that verifies the server against a CA (or the system's) and
 * may present a certificate, and a connection that requires the server's
 * certificate to name the host dialled.
 */
#ifndef DLM_TLSCLIENT_H
#define DLM_TLSCLIENT_H

#include <stddef.h>

#include <openssl/ssl.h>

/*
 * TLS 1.2 at least, the server verified against ca (NULL: the system's
 * CAs), cert (a PEM chain; NULL: none) presented with key (NULL: in
 * cert's file). NULL with why in err ("CA FILE: reason", "certificate
 * FILE: reason", "key FILE: reason").
 */
SSL_CTX	*tlsclient_ctx(const char *ca, const char *cert, const char *key,
	    char *err, size_t errlen);
/*
 * The certificate must name host: an IP address as an IP SAN, a name as a
 * DNS SAN (or CN), which is also sent as SNI. -1 when out of memory.
 */
int	 tlsclient_expect_host(SSL *, const char *host);
/* The newest error OpenSSL queued, in words (none when there is none). */
void	 tlsclient_why(char *buf, size_t len, const char *none);
/*
 * Why a handshake to host failed, in one sentence: code is what
 * SSL_get_error() said of it.
 */
void	 tlsclient_handshake_why(SSL *, int code, const char *host,
	    char *err, size_t errlen);

#endif
