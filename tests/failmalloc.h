/*
 * Allocation failure injection, for tests of what a library does when
 * memory runs out. Linked into a test program, failmalloc.c defines
 * malloc, calloc, realloc and free, which then serve the whole process,
 * libdlmclient included. Not under a sanitizer, which has its own.
 */
#ifndef DLM_TEST_FAILMALLOC_H
#define DLM_TEST_FAILMALLOC_H

#include <stdbool.h>

/* Whether injection works in this build (no sanitizer owns malloc). */
bool		failmalloc_available(void);
/*
 * From now on every allocation fails in every thread but the caller's,
 * which goes on working (the test's own assertions allocate).
 */
void		failmalloc_arm(void);
void		failmalloc_disarm(void);
/* How many allocations failed since the last arm. */
unsigned long	failmalloc_failures(void);

#endif
