/*
 * Allocation that does not return on failure. A daemon that cannot allocate a
 * few dozen bytes cannot keep its promises either; it logs and aborts rather
 * than limp on with half-updated state.
 */
#ifndef DLM_XMALLOC_H
#define DLM_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrndup(const char *, size_t);
char	*xstrdup(const char *);

/*
 * Say where the failure is reported before the abort: a detached daemon's
 * stderr is /dev/null, so dlmd hands its logger (syslog) here. The
 * function must not allocate on the heap. NULL restores stderr.
 */
void	 xmalloc_set_reporter(void (*report)(const char *message));

#endif
