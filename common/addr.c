/*
 * One parser for every HOST:PORT in the project; see addr.h.
 *
 * The port is checked here, digit by digit, because getaddrinfo() and
 * evhttp take a service string or a 16-bit number and silently wrap or
 * misread anything else: ":99999" once listened on 34463.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (errlen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		/* The sentence quotes user input and ends up in a log line. */
		for (char *p = err; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	return -1;
}

/*
 * A host is handed to getaddrinfo() and written in log lines: refuse
 * blanks, control bytes and brackets other than those around a V6 address
 * here, with a sentence, rather than as a lookup failure later.
 */
static int
check_host(const char *host, char *err, size_t errlen)
{
	for (const char *p = host; *p != '\0'; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch == ' ' || ch == '\t')
			return fail(err, errlen, "a space in the host");
		if (ch < 0x20 || ch == 0x7f)
			return fail(err, errlen,
			    "a control byte 0x%02x in the host", ch);
		if (ch == '[' || ch == ']')
			return fail(err, errlen, "a stray '%c'", ch);
	}
	return 0;
}

static int
parse_port(const char *p, int flags, struct addr *a, char *err,
    size_t errlen)
{
	unsigned long v = 0;
	size_t n;

	if (*p == '\0')
		return fail(err, errlen, "the port is missing");
	for (n = 0; p[n] != '\0'; n++) {
		if (p[n] < '0' || p[n] > '9')
			return fail(err, errlen,
			    "port '%s' is not a decimal number", p);
		if (n >= 5)
			return fail(err, errlen,
			    "port %s is out of range 1..65535", p);
		v = v * 10 + (unsigned long)(p[n] - '0');
	}
	if (v > 65535)
		return fail(err, errlen, "port %s is out of range 1..65535", p);
	if (v == 0 && !(flags & ADDR_LISTENER))
		return fail(err, errlen,
		    "port %s: only a listener may ask for port 0", p);
	a->portnum = (uint16_t)v;
	snprintf(a->port, sizeof a->port, "%lu", v);
	return 0;
}

/* HOST:PORT; the sentence in err names the problem, not the address. */
static int
hostport(const char *s, int flags, struct addr *a, char *err, size_t errlen)
{
	const char *host, *port;
	size_t hostlen;

	memset(a, 0, sizeof *a);
	a->type = ADDR_TCP;
	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL)
			return fail(err, errlen,
			    "'[' without its ']'");
		if (end[1] != ':')
			return fail(err, errlen,
			    "use [V6]:PORT, a colon after ']'");
		host = s + 1;
		hostlen = (size_t)(end - host);
		if (hostlen == 0 || memchr(host, ':', hostlen) == NULL)
			return fail(err, errlen,
			    "brackets hold an IPv6 address");
		a->v6 = true;
		port = end + 2;
	} else {
		const char *colon = strchr(s, ':');

		if (colon == NULL)
			return fail(err, errlen,
			    "use HOST:PORT or [V6]:PORT");
		if (strchr(colon + 1, ':') != NULL)
			return fail(err, errlen,
			    "write an IPv6 address in brackets, [V6]:PORT");
		host = s;
		hostlen = (size_t)(colon - s);
		port = colon + 1;
	}
	if (hostlen >= sizeof a->host)
		return fail(err, errlen, "the host is too long");
	if (hostlen == 0 && !(flags & ADDR_LISTENER))
		return fail(err, errlen, "the host is missing");
	memcpy(a->host, host, hostlen);
	a->host[hostlen] = '\0';
	if (check_host(a->host, err, errlen) != 0)
		return -1;
	return parse_port(port, flags, a, err, errlen);
}

int
addr_parse_hostport(const char *s, int flags, struct addr *a, char *err,
    size_t errlen)
{
	char why[160];

	if (hostport(s, flags, a, why, sizeof why) == 0)
		return 0;
	return fail(err, errlen, "'%.200s': %s", s, why);
}

int
addr_parse(const char *spec, int flags, struct addr *a, char *err,
    size_t errlen)
{
	const char *path = NULL;

	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (spec[0] == '/')
		path = spec;
	if (path != NULL) {
		memset(a, 0, sizeof *a);
		a->type = ADDR_UNIX;
		if (*path == '\0')
			return fail(err, errlen,
			    "'%s': the socket path is missing", spec);
		if (strlen(path) >= sizeof a->path)
			return fail(err, errlen,
			    "'%.64s...': the socket path is longer than "
			    "107 bytes", spec);
		strcpy(a->path, path);
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) == 0 || strncmp(spec, "tls:", 4) == 0) {
		char why[160];

		if (hostport(spec + 4, flags, a, why, sizeof why) == 0) {
			if (spec[1] == 'l')
				a->type = ADDR_TLS;
			return 0;
		}
		return fail(err, errlen, "'%.200s': %s", spec, why);
	}
	return fail(err, errlen, "'%s': use unix:PATH, tcp:HOST:PORT, "
	    "tcp:[V6]:PORT or tls:HOST:PORT", spec);
}

/* Where the item that starts at s ends: at a comma that starts another. */
static size_t
item_len(const char *s)
{
	const char *p;

	for (p = s; (p = strchr(p, ',')) != NULL; p++)
		if (strncmp(p + 1, "unix:", 5) == 0 ||
		    strncmp(p + 1, "tcp:", 4) == 0 ||
		    strncmp(p + 1, "tls:", 4) == 0 || p[1] == '/' ||
		    p[1] == ',' || p[1] == '\0')
			return (size_t)(p - s);
	return strlen(s);
}

int
addr_parse_list(const char *spec, int flags, struct addr *a, int max,
    char *err, size_t errlen)
{
	char item[ADDR_PATH_MAX + ADDR_HOST_MAX + 16];
	const char *s = spec;
	int n = 0;

	for (;;) {
		size_t len = item_len(s);

		if (len == 0)
			return fail(err, errlen, "'%.200s': an empty address "
			    "in the list", spec);
		if (n == max)
			return fail(err, errlen, "'%.64s...': more than %d "
			    "addresses", spec, max);
		if (len >= sizeof item)
			return fail(err, errlen, "'%.64s...': an address "
			    "longer than %zu bytes", s, sizeof item - 1);
		memcpy(item, s, len);
		item[len] = '\0';
		if (addr_parse(item, flags, &a[n], err, errlen) != 0)
			return -1;
		n++;
		if (s[len] == '\0')
			return n;
		s += len + 1;
	}
}

void
addr_format(const struct addr *a, char *buf, size_t len)
{
	const char *scheme = a->type == ADDR_TLS ? "tls" : "tcp";

	if (a->type == ADDR_UNIX)
		snprintf(buf, len, "unix:%s", a->path);
	else if (a->v6)
		snprintf(buf, len, "%s:[%s]:%s", scheme, a->host, a->port);
	else
		snprintf(buf, len, "%s:%s:%s", scheme, a->host, a->port);
}
