/*
 * Every live client, so that a fork() child can close their sockets: the
 * parent's locks must not outlive the parent for as long as a child runs.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "client.h"

__thread int dlm__hash_oom;

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct dlm_client **registry;
static size_t nregistry, registry_cap;
/*
 * How many fork()s deep this process is, counted in each child: a call
 * compares it with its client's instead of asking the kernel for the pid
 * on every call. Written only in a child, while it has one thread.
 */
static unsigned long fork_depth;

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&registry_mu);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&registry_mu);
}

/*
 * The client objects stay, so that the child's calls fail cleanly with
 * DLM_E_FORKED; only their sockets go. A client's mutex cannot be taken
 * here (a fork may come any time), hence the engine's atomic fork_fd.
 */
static void
atfork_child(void)
{
	fork_depth++;
	for (size_t i = 0; i < nregistry; i++) {
		int fd = atomic_load(&registry[i]->eng.fork_fd);

		if (fd >= 0)
			close(fd);
	}
	pthread_mutex_unlock(&registry_mu);
}

static void
atfork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

int
dlm__registry_add(struct dlm_client *c)
{
	int rc = 0;

	pthread_once(&atfork_once, atfork_init);
	pthread_mutex_lock(&registry_mu);
	if (nregistry == registry_cap) {
		size_t cap = registry_cap ? registry_cap * 2 : 8;
		struct dlm_client **r = realloc(registry, cap * sizeof *r);

		if (r == NULL)
			rc = DLM_E_NOMEM;
		else {
			registry = r;
			registry_cap = cap;
		}
	}
	if (rc == 0)
		registry[nregistry++] = c;
	pthread_mutex_unlock(&registry_mu);
	return rc;
}

void
dlm__registry_remove(const struct dlm_client *c)
{
	pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < nregistry; i++)
		if (registry[i] == c) {
			registry[i] = registry[--nregistry];
			break;
		}
	if (nregistry == 0) {
		free(registry);
		registry = NULL;
		registry_cap = 0;
	}
	pthread_mutex_unlock(&registry_mu);
}

unsigned long
dlm__fork_depth(void)
{
	return fork_depth;
}

bool
dlm__forked(struct dlm_client *c)
{
	return fork_depth != c->fork_depth;
}

bool
dlm__registry_has(uint64_t serial)
{
	bool has = false;

	pthread_mutex_lock(&registry_mu);
	for (size_t i = 0; i < nregistry && !has; i++)
		has = registry[i]->serial == serial;
	pthread_mutex_unlock(&registry_mu);
	return has;
}
