#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "certfix.h"

#define KEYGEN	"-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

static char certdir[256];

void
certfix_sh(const char *fmt, ...)
{
	char cmd[2048];
	int n;
	va_list ap;

	n = snprintf(cmd, sizeof cmd, "cd %s && (", certdir);
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof cmd - (size_t)n, ") >/dev/null 2>&1");
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

void
certfix_init(void)
{
	snprintf(certdir, sizeof certdir, "/tmp/dlm-certs-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(certdir));
}

void
certfix_cleanup(void)
{
	char cmd[400];

	if (certdir[0] == '\0')
		return;
	snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", certdir);
	certdir[0] = '\0';
}

void
certfix_ca(const char *name, const char *cn)
{
	certfix_sh("openssl req -x509 " KEYGEN " -keyout %s.key -out %s.pem -days 2 "
	    "-subj /CN=%s", name, name, cn);
}

void
certfix_cert(const char *name, const char *ca, const char *subj, int days,
    const char *ext)
{
	certfix_sh("openssl req " KEYGEN " -keyout %s.key -out %s.csr -subj %s && "
	    "printf '%s\\n' > %s.ext && "
	    "openssl x509 -req -in %s.csr -CA %s.pem -CAkey %s.key "
	    "-CAcreateserial -out %s.pem -days %d -extfile %s.ext",
	    name, name, subj, ext, name, name, ca, ca, name, days, name);
}

const char *
certfix_path(const char *file)
{
	static char buf[4][400];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof buf[i], "%s/%s", certdir, file);
	return buf[i];
}
