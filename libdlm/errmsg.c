/*
 * The last error's message, per thread and per client, as hiredis keeps
 * errstr: the server's sentence ("lock 'x' is held by web-1 since ..."),
 * or the library's own. A thread keeps one slot for each client it saw a
 * call fail on, and slot 0 for its last failed connect, in thread-specific
 * storage freed when the thread exits. Only the thread itself reads or
 * writes its slots: no lock is needed. And the error codes' strings
 * (dlm_strerror(), dlm_errname()), at the bottom with the messages, so
 * that the engine can say what a code means without calling up.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "proto.h"

/* Slots past this many are pruned of clients that have been closed. */
#define SLOTS_PRUNE	8

struct errslot {
	struct errslot	*next;
	uint64_t	 serial;	/* the client's, or 0: connect */
	char		 msg[256];
};

static pthread_key_t slots_key;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static int slots_key_ok;

static void
slots_free(void *p)
{
	struct errslot *s = p, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		free(s);
	}
}

static void
slots_init(void)
{
	slots_key_ok = pthread_key_create(&slots_key, slots_free) == 0;
}

static struct errslot *
slots_head(void)
{
	pthread_once(&slots_once, slots_init);
	return slots_key_ok ? pthread_getspecific(slots_key) : NULL;
}

static struct errslot *
slot_find(struct errslot *s, uint64_t serial)
{
	for (; s != NULL; s = s->next)
		if (s->serial == serial)
			return s;
	return NULL;
}

/* Drop the slots of clients that are gone. */
static struct errslot *
slots_prune(struct errslot *head)
{
	struct errslot *keep = NULL, *s, *next;

	for (s = head; s != NULL; s = next) {
		next = s->next;
		if (s->serial != 0 && !dlm__registry_has(s->serial))
			free(s);
		else {
			s->next = keep;
			keep = s;
		}
	}
	return keep;
}

void
dlm__errmsg_set(uint64_t serial, int err, const char *msg)
{
	struct errslot *head = slots_head(), *s = slot_find(head, serial);

	if (err == 0) {
		if (s != NULL)
			s->msg[0] = '\0';
		return;
	}
	if (s == NULL) {
		size_t n = 0;

		if (!slots_key_ok)
			return;
		for (s = head; s != NULL; s = s->next)
			n++;
		if (n >= SLOTS_PRUNE) {
			/*
			 * The key holds a value already, so setting it again
			 * needs no memory and cannot fail.
			 */
			head = slots_prune(head);
			(void)pthread_setspecific(slots_key, head);
		}
		/*
		 * No memory for a slot: dlm_errmsg() says "", and the code
		 * the call returned still says what went wrong.
		 */
		if ((s = calloc(1, sizeof *s)) == NULL)
			return;
		s->serial = serial;
		s->next = head;
		if (pthread_setspecific(slots_key, s) != 0) {
			free(s);
			return;
		}
	}
	snprintf(s->msg, sizeof s->msg, "%s", msg != NULL && msg[0] != '\0' ?
	    msg : dlm_strerror(err));
}

int
dlm__result(struct dlm_client *c, int err, const char *msg)
{
	if (c != NULL)
		dlm__errmsg_set(c->serial, err, msg);
	return err;
}

int
dlm__resultf(struct dlm_client *c, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return dlm__result(c, err, msg);
}

void
dlm__errmsg_forget(const struct dlm_client *c)
{
	struct errslot *head = slots_head(), *s, *prev = NULL;

	for (s = head; s != NULL; prev = s, s = s->next)
		if (s->serial == c->serial) {
			if (prev != NULL)
				prev->next = s->next;
			else
				pthread_setspecific(slots_key, s->next);
			free(s);
			return;
		}
}

const char *
dlm_errmsg(struct dlm_client *c)
{
	struct errslot *s;

	s = slot_find(slots_head(), c != NULL ? c->serial : 0);
	return s != NULL ? s->msg : "";
}

/*
 * The server's codes through the protocol's table, the library's own here;
 * both are rows of DLM_ERRORS in <dlm.h>.
 */
const char *
dlm_strerror(int err)
{
	switch (err) {
#define LIB_ERROR_SENTENCE(constant, value, name, sentence) \
	case constant: return sentence;
	DLM_LIBRARY_ERRORS(LIB_ERROR_SENTENCE)
#undef LIB_ERROR_SENTENCE
	}
	return dlm_proto_errdesc(err);
}

const char *
dlm_errname(int err)
{
	switch (err) {
#define LIB_ERROR_NAME(constant, value, name, sentence) \
	case constant: return name;
	DLM_LIBRARY_ERRORS(LIB_ERROR_NAME)
#undef LIB_ERROR_NAME
	}
	return dlm_proto_errname(err);
}
