/* The default socket path: see paths.h. */
#include "config.h"

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
