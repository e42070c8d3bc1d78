/* Where dlmd listens by default; libdlm and dlmctl look there too. */
#ifndef DLM_PATHS_H
#define DLM_PATHS_H

#include <stddef.h>

#define DLM_SYSTEM_SOCKET_DIR	"/run/dlmd"
#define DLM_SOCKET_NAME		"dlmd.sock"

/*
 * The default Unix socket: /run/dlmd/dlmd.sock for root, else
 * $XDG_RUNTIME_DIR/dlmd.sock, else /tmp/dlmd-UID/dlmd.sock. Returns 0, or -1
 * when buf is too small.
 */
int	dlm_default_socket(char *buf, size_t len);

/*
 * Where a client looks by default: the user's own socket as above when it
 * exists, else the system daemon's (/run/dlmd/dlmd.sock) when that exists,
 * else the user's. Same return.
 */
int	dlm_default_client_socket(char *buf, size_t len);

#endif
