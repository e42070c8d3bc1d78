/*
 * Allocation failure injection (failmalloc.h). The C library allows its
 * allocator to be replaced by a program's own malloc, calloc, realloc and
 * free, and calls them itself (strdup, getaddrinfo); these pass on to its
 * real ones, __libc_malloc and the others, except while armed.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include "failmalloc.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NO_INJECTION	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define NO_INJECTION	1
#endif
#endif

#ifdef NO_INJECTION

bool failmalloc_available(void) { return false; }
void failmalloc_arm(void) { }
void failmalloc_disarm(void) { }
unsigned long failmalloc_failures(void) { return 0; }

#else

extern void	*__libc_malloc(size_t);
extern void	*__libc_calloc(size_t, size_t);
extern void	*__libc_realloc(void *, size_t);
extern void	 __libc_free(void *);

static int armed;
static pthread_t exempt;
static unsigned long failures;

static bool
fail_now(void)
{
	if (!__atomic_load_n(&armed, __ATOMIC_ACQUIRE) ||
	    pthread_equal(pthread_self(), exempt))
		return false;
	__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);
	errno = ENOMEM;
	return true;
}

void *
malloc(size_t n)
{
	return fail_now() ? NULL : __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __libc_realloc(p, n);
}

void
free(void *p)
{
	__libc_free(p);
}

bool
failmalloc_available(void)
{
	return true;
}

void
failmalloc_arm(void)
{
	exempt = pthread_self();
	__atomic_store_n(&failures, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
}

void
failmalloc_disarm(void)
{
	__atomic_store_n(&armed, 0, __ATOMIC_RELEASE);
}

unsigned long
failmalloc_failures(void)
{
	return __atomic_load_n(&failures, __ATOMIC_RELAXED);
}

#endif
