/*
 * Addresses of dlmd endpoints, as users write them.
 *
 *	unix:PATH  or  /PATH	a Unix socket
 *	tcp:HOST:PORT		TCP; HOST a name or an IPv4 address
 *	tcp:[V6]:PORT		TCP over an IPv6 address
 *	tls:HOST:PORT		TLS over TCP (tls:[V6]:PORT likewise)
 *
 * dlmd's listeners, its metrics endpoint (HOST:PORT without the "tcp:"),
 * libdlm and dlmctl all parse through here, so an address means the same
 * everywhere and a bad one is refused the same way before anything is
 * dialled or bound.
 */
#ifndef DLM_ADDR_H
#define DLM_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_PATH_MAX	108	/* sun_path, with its NUL */
#define ADDR_HOST_MAX	256

/* For a listener: port 0 (any free port) and an empty host (any). */
#define ADDR_LISTENER	0x1

enum addr_type {
	ADDR_UNIX = 1,
	ADDR_TCP,
	ADDR_TLS,	/* TCP with TLS over it: host and port as ADDR_TCP */
};

struct addr {
	enum addr_type	type;
	char		path[ADDR_PATH_MAX];	/* ADDR_UNIX */
	char		host[ADDR_HOST_MAX];	/* ADDR_TCP, _TLS; no brackets */
	char		port[6];		/* ADDR_TCP, _TLS; decimal */
	uint16_t	portnum;
	bool		v6;			/* the host was in brackets */
};

/*
 * Parse an endpoint. Returns 0, or -1 with a sentence naming what is wrong
 * in err (e.g. "port 99999 is out of range 1..65535").
 */
int	addr_parse(const char *spec, int flags, struct addr *,
	    char *err, size_t errlen);

/* Parse HOST:PORT or [V6]:PORT, as addr_parse does after "tcp:". */
int	addr_parse_hostport(const char *s, int flags, struct addr *,
	    char *err, size_t errlen);

/*
 * A list of endpoints, as DLM_SERVER and dlmctl -s take them: "a,b,c". A
 * comma splits the list only before "unix:", "tcp:", "tls:" or "/", so that a
 * socket path with a comma in it still names one socket. Fills at most max
 * addresses and returns how many, or -1 with a sentence in err (an empty
 * item, a bad one, or more than max).
 */
#define ADDR_LIST_MAX	16
int	addr_parse_list(const char *spec, int flags, struct addr *, int max,
	    char *err, size_t errlen);

/* Write an address back in the form addr_parse reads ("tcp:[::1]:7411"). */
void	addr_format(const struct addr *, char *buf, size_t len);

#endif
