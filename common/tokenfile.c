/* Reading a token from a file, the one way tokens reach dlmd and dlmctl. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenfile.h"

int
dlm_read_token_file(const char *path, char **token, const char **why)
{
	char buf[4096];
	FILE *f;
	size_t n;

	*token = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		*why = strerror(errno);
		return -1;
	}
	if (fgets(buf, sizeof buf, f) == NULL)
		buf[0] = '\0';
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		*why = "it holds no token";
		return -1;
	}
	*token = strdup(buf);
	/* The stack copy must not outlive its use. */
	explicit_bzero(buf, sizeof buf);
	if (*token == NULL) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

/* A name or a secret: printable bytes but space, at most max of them. */
static bool
token_word(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

void
dlm_named_tokens_free(struct dlm_named_token *t, int n)
{
	for (int i = 0; t != NULL && i < n; i++) {
		free(t[i].name);
		if (t[i].secret != NULL)
			explicit_bzero(t[i].secret, strlen(t[i].secret));
		free(t[i].secret);
	}
	free(t);
}

int
dlm_read_named_tokens(const char *path, struct dlm_named_token **out,
    int *nout, char *err, size_t errlen)
{
	char buf[4096];
	struct dlm_named_token *t = NULL, *nt;
	FILE *f;
	int n = 0, line = 0, rc = -1;

	*out = NULL;
	*nout = 0;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof buf, f) != NULL) {
		size_t len = strcspn(buf, "\r\n"), nl, sp;
		const char *name, *secret;

		line++;
		if (len == strlen(buf) && !feof(f)) {
			snprintf(err, errlen, "%s:%d: longer than %zu bytes",
			    path, line, sizeof buf - 2);
			goto out;
		}
		buf[len] = '\0';
		name = buf + strspn(buf, " \t");
		if (*name == '\0' || *name == '#')
			continue;
		nl = strcspn(name, " \t");
		secret = name + nl + strspn(name + nl, " \t");
		sp = strcspn(secret, " \t");
		/* The secret is never quoted back: only the line is named. */
		if (!token_word(name, nl, DLM_TOKEN_NAME_MAX) ||
		    !token_word(secret, sp, 4096) ||
		    secret[sp + strspn(secret + sp, " \t")] != '\0') {
			snprintf(err, errlen, "%s:%d: a line is NAME SECRET "
			    "(a name of 1 to %d printable bytes, a secret "
			    "without spaces)", path, line, DLM_TOKEN_NAME_MAX);
			goto out;
		}
		for (int i = 0; i < n; i++)
			if (strlen(t[i].name) == nl &&
			    memcmp(t[i].name, name, nl) == 0) {
				snprintf(err, errlen, "%s:%d: token '%.*s' is "
				    "named twice", path, line, (int)nl, name);
				goto out;
			}
		if (n == DLM_TOKENS_MAX) {
			snprintf(err, errlen, "%s:%d: more than %d tokens",
			    path, line, DLM_TOKENS_MAX);
			goto out;
		}
		if ((nt = realloc(t, (size_t)(n + 1) * sizeof *t)) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		t = nt;
		t[n].name = strndup(name, nl);
		t[n].secret = strndup(secret, sp);
		n++;
		if (t[n - 1].name == NULL || t[n - 1].secret == NULL) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read it", path);
		goto out;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: it names no token", path);
		goto out;
	}
	*out = t;
	*nout = n;
	t = NULL;
	rc = 0;
out:
	explicit_bzero(buf, sizeof buf);
	fclose(f);
	if (rc != 0)
		dlm_named_tokens_free(t, n);
	return rc;
}
