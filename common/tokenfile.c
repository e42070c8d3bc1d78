/* Reading a token from a file, the one way tokens reach dlmd and dlmctl. */
#include "config.h"

#include <errno.h>
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
