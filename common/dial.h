/*
 * Dialing: a parsed address to a connected socket, in steps that never
 * block, so that whatever drives the connection (libdlm's thread, the
 * program's event loop, or dlmctl's own deadline) stays free to do
 * anything else.
 */
#ifndef DLM_DIAL_H
#define DLM_DIAL_H

#include <netdb.h>

#include "addr.h"

struct dial {
	struct addrinfo	*res;		/* TCP: the resolved addresses */
	struct addrinfo	*next;		/* the next one to try */
	int		 fd;		/* the attempt in progress, or -1 */
	char		 why[128];	/* why the last attempt failed */
};

/*
 * Start dialing: 1 with d->fd connected already (a Unix socket), 0 with
 * d->fd connecting (wait until it is writable, then call dial_done), or
 * DLM_E_CONNECT. A host name is resolved here, which
 * may take as long as the resolver does; addresses are tried in order.
 */
int	dial_start(struct dial *, const struct addr *);
/*
 * The socket became writable or failed: 1 with *fd connected (the caller
 * owns it), 0 while still connecting or another address is being tried
 * (wait again), DLM_E_CONNECT when every address failed.
 */
int	dial_done(struct dial *, int *fd);
/* Give up an attempt: close its socket and forget its addresses. */
void	dial_abort(struct dial *);

#endif
