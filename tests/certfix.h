/*
 * Certificates for the TLS tests, made by the openssl command in a
 * temporary directory: CAs, and keys with certificates signed by them.
 * Every key is EC P-256 (fast to make); every file is NAME.pem and
 * NAME.key in the directory.
 */
#ifndef DLM_CERTFIX_H
#define DLM_CERTFIX_H

/* A new directory for this process's certificates. */
void		 certfix_init(void);
/* Remove the directory and all in it. */
void		 certfix_cleanup(void);
/* A self-signed CA NAME with subject CN, valid 2 days. */
void		 certfix_ca(const char *name, const char *cn);
/*
 * A key and certificate NAME signed by CA, for subject subj ("/CN=alice"),
 * valid DAYS (a negative number: expired), with the X.509v3 extensions in
 * ext ("subjectAltName=IP:127.0.0.1", say).
 */
void		 certfix_cert(const char *name, const char *ca, const char *subj,
		    int days, const char *ext);
/* A shell command run in the directory; the test fails when it fails. */
void		 certfix_sh(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));
/* DIR/file; four results are valid at a time. */
const char	*certfix_path(const char *file);

#endif
