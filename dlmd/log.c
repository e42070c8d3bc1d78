/*
 * Logging with a level, to stderr in the foreground or to syslog as a
 * daemon; fatal() and fatalx() exit.
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

int
log_level_parse(const char *s)
{
	static const char *names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void __attribute__((format(printf, 3, 0)))
log_vwrite(int level, const char *prefix, const char *fmt, va_list ap,
    int errnum)
{
	char stamp[32];
	struct timespec ts;
	struct tm tm;

	if (level > log_max)
		return;
	if (log_to_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		    LOG_DEBUG };
		char msg[1024];
		int n = vsnprintf(msg, sizeof msg, fmt, ap);

		if (errnum != 0 && n >= 0 && (size_t)n < sizeof msg)
			snprintf(msg + n, sizeof msg - (size_t)n, ": %s",
			    strerror(errnum));
		syslog(prio[level], "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld dlmd[%s] ", stamp, ts.tv_nsec / 1000000,
	    prefix);
	vfprintf(stderr, fmt, ap);
	if (errnum != 0)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
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
