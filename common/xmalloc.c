/* Allocation wrappers: see xmalloc.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

static void (*reporter)(const char *);

void
xmalloc_set_reporter(void (*report)(const char *))
{
	reporter = report;
}

static void __attribute__((noreturn))
xmalloc_fail(size_t n)
{
	char message[80];

	snprintf(message, sizeof message, "out of memory allocating %zu bytes",
	    n);
	if (reporter != NULL)
		reporter(message);
	else
		fprintf(stderr, "%s\n", message);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		xmalloc_fail(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb != 0 ? nmemb : 1, size != 0 ? size : 1);

	if (p == NULL)
		xmalloc_fail(nmemb * size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n != 0 ? n : 1);

	if (p == NULL)
		xmalloc_fail(n);
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}
