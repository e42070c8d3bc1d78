/*
 * Logging with a level, to stderr in the foreground or to syslog as a
 * daemon; fatal() and fatalx() exit.
 *
 * Clients choose the bytes of their names, lock names and info strings.
 * Any such string goes through safe_str() before it is put into a log line
 * or a message: a newline could forge a line of its own, an escape
 * sequence could drive the operator's terminal. As a second guard the
 * writer escapes any control byte left in a finished line, so a call site
 * that forgets cannot split a line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "dlmd.h"

static int log_max = LOG_LEVEL_INFO;
static bool log_to_syslog;

void
log_init(int level, bool use_syslog)
{
	log_max = level;
	if (use_syslog && !log_to_syslog)
		openlog("dlmd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!use_syslog && log_to_syslog)
		closelog();
	log_to_syslog = use_syslog;
}

/* After a reload: a restarted syslog daemon gets a fresh connection. */
void
log_reopen(void)
{
	if (log_to_syslog) {
		closelog();
		openlog("dlmd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
}

static const char *level_names[] = { "error", "warning", "info", "debug" };

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	return level >= 0 && level < 4 ? level_names[level] : "unknown";
}

#define SAFE_MAX	64	/* bytes of a client string shown */
#define SAFE_SLOTS	8	/* strings one line or message may hold */

/*
 * A client's bytes as text: printable ASCII as is, everything else (and
 * the backslash, so that the form cannot be faked) as \xNN; at most
 * SAFE_MAX bytes, then "...". The result lives in one of SAFE_SLOTS
 * rotating buffers: use it at once, in one log line or message.
 */
const char *
safe_str(const char *p, size_t n)
{
	static char buf[SAFE_SLOTS][SAFE_MAX * 4 + 4];
	static unsigned which;
	char *out = buf[which++ % SAFE_SLOTS], *o = out;

	for (size_t i = 0; i < n && i < SAFE_MAX; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			*o++ = (char)ch;
		else
			o += sprintf(o, "\\x%02x", ch);
	}
	if (n > SAFE_MAX)
		o += sprintf(o, "...");
	*o = '\0';
	return out;
}

const char *
safe_str0(const char *s)
{
	return safe_str(s, strlen(s));
}

/* The second guard: control bytes in a finished line become \xNN. */
static void
escape_controls(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0' && o + 5 < outlen; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch < 0x20 || ch == 0x7f)
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x",
			    ch);
		else
			out[o++] = (char)ch;
	}
	out[o] = '\0';
}

static void __attribute__((format(printf, 3, 0)))
log_vwrite(int level, const char *prefix, const char *fmt, va_list ap,
    int errnum)
{
	char stamp[32], msg[1024], line[2048];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level > log_max)
		return;
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	if (errnum != 0 && n >= 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n, ": %s",
		    strerror(errnum));
	escape_controls(msg, line, sizeof line);
	if (log_to_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		    LOG_DEBUG };

		syslog(prio[level], "%s", line);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld dlmd[%s] %s\n", stamp, ts.tv_nsec / 1000000,
	    prefix, line);
}

static void __attribute__((format(printf, 1, 2)))
log_write_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, "fatal", fmt, ap, 0);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, "warning", fmt, ap, saved);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, "warning", fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_INFO, "info", fmt, ap, 0);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_DEBUG, "debug", fmt, ap, 0);
	va_end(ap);
}

/* xmalloc's reporter: allocates nothing before the abort. */
void
log_out_of_memory(const char *message)
{
	log_write_fatal("%s", message);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, "fatal", fmt, ap, saved);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERR, "fatal", fmt, ap, 0);
	va_end(ap);
	exit(1);
}
