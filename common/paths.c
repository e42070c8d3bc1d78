/* The default socket path: see paths.h. */
#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "paths.h"

int
dlm_default_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (geteuid() == 0)
		n = snprintf(buf, len, "%s/%s", DLM_SYSTEM_SOCKET_DIR,
		    DLM_SOCKET_NAME);
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/%s", xdg, DLM_SOCKET_NAME);
	else
		n = snprintf(buf, len, "/tmp/dlmd-%ld/%s", (long)geteuid(),
		    DLM_SOCKET_NAME);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
dlm_default_client_socket(char *buf, size_t len)
{
	struct stat st;
	int n;

	if (dlm_default_socket(buf, len) != 0)
		return -1;
	if (geteuid() == 0 || stat(buf, &st) == 0)
		return 0;
	/* No daemon of the user's own: the system's, when there is one. */
	n = snprintf(buf, len, "%s/%s", DLM_SYSTEM_SOCKET_DIR,
	    DLM_SOCKET_NAME);
	if (n < 0 || (size_t)n >= len || stat(buf, &st) != 0)
		return dlm_default_socket(buf, len);
	return 0;
}
