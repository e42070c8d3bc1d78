/*
 * For cppcheck only: uthash configured as libdlm/client.h configures it
 * (non-fatal on allocation failure), so that the analysis sees the same
 * macros the compiler does.
 */
extern __thread int dlm__hash_oom;
#define HASH_NONFATAL_OOM		1
#define uthash_nonfatal_oom(elt)	(dlm__hash_oom = 1)
#include "/usr/include/uthash.h"
