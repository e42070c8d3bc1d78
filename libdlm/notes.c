/*
 * Notes: what to tell the program later, a lost hold or (loop mode) a
 * state change, queued on the client for its driver to run. Below the
 * lock entries, which make a note ahead of each hold they take.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"

struct note *
dlm__note_new(const char *lock)
{
	struct note *n = calloc(1, sizeof *n);

	if (n == NULL || (lock != NULL && (n->lock = strdup(lock)) == NULL)) {
		free(n);
		return NULL;
	}
	return n;
}

void
dlm__note_queue(struct dlm_client *c, struct note *n, uint64_t token,
    int reason, int err)
{
	n->next = NULL;
	n->token = token;
	n->reason = reason;
	n->err = err;
	if (c->note_tail != NULL)
		c->note_tail->next = n;
	else
		c->note_head = n;
	c->note_tail = n;
}

void
dlm__note(struct dlm_client *c, const char *lock, uint64_t token, int reason,
    int err)
{
	struct note *n = dlm__note_new(lock);

	if (n == NULL)
		return;
	/* A closed state says why in words too (NULL: the code's sentence). */
	if (lock == NULL && err != 0 && c->eng.errmsg[0] != '\0')
		n->msg = strdup(c->eng.errmsg);
	dlm__note_queue(c, n, token, reason, err);
}

void
dlm__note_free(struct note *n)
{
	if (n != NULL) {
		free(n->lock);
		free(n->msg);
		free(n->state);
		free(n);
	}
}
