/*
 * The client object and its queues, whichever mode drives it: making and
 * freeing it, what the engine reports (answers, lost holds, state
 * changes) queued as completions and notes, running those for the
 * program, and closing it. Below the drivers (thread.c, loop.c), which
 * run the queues, and client.c, which chooses a driver.
 */
#include "config.h"

#include <sys/eventfd.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "client.h"
#include "paths.h"

static unsigned long name_counter;
static uint64_t serial_counter;

void
dlm__req_free(struct dlm_req *req)
{
	if (req == NULL)
		return;
	free(req->lock);
	free(req->value_own);
	free(req->r.message);
	free(req->r.raw);
	dlm__note_free(req->spare);
	free(req);
}

struct note *
dlm__take_notes(struct dlm_client *c)
{
	struct note *n = c->note_head;

	c->note_head = c->note_tail = NULL;
	return n;
}

struct dlm_req *
dlm__take_completions(struct dlm_client *c)
{
	struct dlm_req *req = c->done_head;

	c->done_head = c->done_tail = NULL;
	return req;
}

void
dlm__run_notes(struct dlm_client *c, struct note *n)
{
	struct note *next;

	for (; n != NULL; n = next) {
		next = n->next;
		if (n->state != NULL)
			dlm__watch_deliver(c, n);
		else if (n->contended) {
			if (c->on_contended != NULL)
				c->on_contended(c, n->lock, n->token,
				    n->waiters, c->on_contended_arg);
		} else if (n->lock != NULL && c->on_lost != NULL)
			c->on_lost(c, n->lock, n->token, n->reason,
			    c->on_lost_arg);
		else if (n->lock == NULL && c->state_cb != NULL) {
			dlm__errmsg_set(c->serial, n->err, n->msg);
			c->state_cb(c, n->reason, n->err, c->state_arg);
		}
		dlm__note_free(n);
	}
}

int
dlm__run_completions(struct dlm_client *c, struct dlm_req *req)
{
	struct dlm_req *next;
	int n = 0;

	for (; req != NULL; req = next, n++) {
		next = req->next;
		/* dlm_errmsg() in the callback says this request's. */
		dlm__errmsg_set(c->serial, req->r.err, req->r.message);
		if (req->kind == REQ_ASYNC_ACQUIRE && req->acb != NULL)
			req->acb(c, req->r.err, req->r.token, req->arg);
		else if (req->kind == REQ_ASYNC_DONE && req->dcb != NULL)
			req->dcb(c, req->r.err, req->arg);
		dlm__req_free(req);
	}
	return n;
}

/*
 * What the engine reports. These run inside the engine, called by its
 * driver or by a thread submitting a request, with c->mu held; or from
 * engine_start() in dlm__client_new(), before any other thread knows c.
 */
static void
ops_finished(void *owner, struct dlm_req *req)
{
	struct dlm_client *c = owner;
	uint64_t one = 1;

	/*
	 * The server answers the waits of a session that says bye with
	 * CANCELLED; to the caller that is dlm_close(), as when the socket
	 * closes first: CLOSED either way, and CANCELLED only for
	 * dlm_cancel().
	 */
	if (c->closing && req->r.err == DLM_E_CANCELLED && !req->cancel_sent)
		req->r.err = DLM_E_CLOSED;
	dlm__locks_on_reply(c, req);
	if (req->is_watch)
		dlm__watch_on_reply(c, req);
	if (req->kind == REQ_SYNC) {
		pthread_cond_signal(req->cv);
		return;
	}
	c->async_pending--;
	if (req->is_watch) {
		/* Watching again after a reconnect: nobody waits for it. */
		dlm__req_free(req);
		return;
	}
	req->next = NULL;
	if (c->done_tail != NULL) {
		/*
		 * The queue was not empty, so the eventfd is still readable:
		 * dlm_async_dispatch() drains it before it takes the queue.
		 */
		c->done_tail->next = req;
		c->done_tail = req;
		return;
	}
	c->done_head = c->done_tail = req;
	if (!c->loop && write(c->evfd, &one, sizeof one) < 0) {
		/* The counter cannot overflow in practice; ignore. */
	}
}

static void
ops_lost(void *owner, const char *lock, size_t len, uint64_t token,
    int reason)
{
	dlm__locks_on_lost(owner, lock, len, token, reason);
}

static void
ops_lost_all(void *owner, int reason)
{
	dlm__locks_drop_all(owner, reason);
}

static bool
ops_holds(void *owner, const char *lock)
{
	return dlm__locks_held(owner, lock);
}

static void
ops_contended(void *owner, const char *lock, size_t len, uint64_t token,
    uint32_t waiters)
{
	dlm__locks_on_contended(owner, lock, len, token, waiters);
}

static int
ops_claims(void *owner, msgpack_sbuffer *sb, uint32_t *n)
{
	return dlm__locks_claims(owner, sb, n);
}

static void
ops_changed(void *owner, const char *lock, size_t len,
    const msgpack_object *state)
{
	dlm__watch_on_changed(owner, lock, len, state);
}

static void
ops_state(void *owner, enum engine_state st, int err)
{
	struct dlm_client *c = owner;

	int pub;

	/* The server forgot the watches with the old connection. */
	if (st == ENGINE_READY)
		dlm__watch_again(c);
	if (!c->loop)
		return;
	/* Only the changes a program acts on: not each step of a dial. */
	if (st == ENGINE_READY)
		pub = DLM_STATE_CONNECTED;
	else if (st == ENGINE_CLOSED)
		pub = DLM_STATE_CLOSED;
	else if (c->eng.opened)
		pub = DLM_STATE_RECONNECTING;
	else
		return;
	if (pub != c->pub_state) {
		c->pub_state = pub;
		dlm__note(c, NULL, 0, pub, err);
	}
}

static const struct engine_ops client_ops = {
	ops_finished, ops_lost, ops_lost_all, ops_holds, ops_claims, ops_state,
	ops_changed, ops_contended,
};

void
dlm_options_init(struct dlm_options *opts)
{
	if (opts != NULL) {
		memset(opts, 0, sizeof *opts);
		opts->size = sizeof *opts;
	}
}

/*
 * struct dlm_options as libdlmclient.so.1 first had it, frozen: what a
 * size of 0 means. New fields go at the end of the public struct, never
 * here (on_contended was the first): the public struct is at least this
 * big, and begins with these.
 */
struct options_1 {
	size_t		 size;
	const char	*client;
	const char	*label;
	int		 lease_ms;
	int		 linger_ms;
	const char	*auth;
	int		 connect_timeout_ms;
	dlm_lost_cb	 on_lost;
	void		*on_lost_arg;
};
_Static_assert(sizeof(struct options_1) <= sizeof(struct dlm_options),
    "struct dlm_options shrank: see struct options_1");
_Static_assert(offsetof(struct options_1, on_lost_arg) ==
    offsetof(struct dlm_options, on_lost_arg),
    "struct dlm_options moved a field of struct options_1");

/*
 * Read the caller's options into *o, the library's own layout: only as
 * much as the caller's struct has (the rest keeps its defaults); a newer
 * caller's fields past ours must be unset, or the caller would be asking
 * for something this library cannot do.
 */
static int
options_read(struct dlm_options *o, const struct dlm_options *given)
{
	size_t n;

	dlm_options_init(o);
	if (given == NULL)
		return 0;
	n = given->size == 0 ? sizeof(struct options_1) : given->size;
	if (n < sizeof(struct options_1))
		return DLM_E_INVALID;
	for (size_t i = sizeof *o; i < n; i++)
		if (((const unsigned char *)given)[i] != 0)
			return DLM_E_INVALID;
	memcpy(o, given, n < sizeof *o ? n : sizeof *o);
	o->size = sizeof *o;
	return 0;
}

void
dlm__client_free(struct dlm_client *c)
{
	struct note *n = dlm__take_notes(c), *next;

	engine_free(&c->eng);
	dlm__locks_free(c);
	dlm__watches_free(c);
	for (; n != NULL; n = next) {
		next = n->next;
		dlm__note_free(n);
	}
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	if (c->evfd >= 0)
		close(c->evfd);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->state_cv);
	free(c->name);
	free(c->label);
	free(c->auth);
	free(c);
}

/*
 * The address to dial: server, else $DLM_SERVER, else the default socket
 * (into path); NULL when there is none.
 */
static const char *
server_address(const char *server, char *path, size_t len)
{
	if (server == NULL)
		server = getenv("DLM_SERVER");
	if (server != NULL && server[0] != '\0')
		return server;
	return dlm_default_client_socket(path, len) == 0 ? path : NULL;
}

static char *
xstrdup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* An option, else its environment variable; NULL or "" is none. */
static const char *
option_or_env(const char *opt, const char *var)
{
	const char *v = opt != NULL ? opt : getenv(var);

	return v != NULL && v[0] != '\0' ? v : NULL;
}

/*
 * When a server is tls:, the TLS context (CA, client certificate) is made
 * now, so that a file that will not load fails dlm_connect() at once.
 */
static int
tls_setup(struct dlm_client *c, const struct addr *addrs, int naddrs,
    const struct dlm_options *opts)
{
	bool any = false;

	for (int i = 0; i < naddrs; i++)
		any |= addrs[i].type == ADDR_TLS;
	if (!any)
		return 0;
	return tls_client_ctx(&c->eng,
	    option_or_env(opts->tls_ca, "DLM_TLS_CA"),
	    option_or_env(opts->tls_cert, "DLM_TLS_CERT"),
	    option_or_env(opts->tls_key, "DLM_TLS_KEY"),
	    c->eng.errmsg, sizeof c->eng.errmsg);
}

/* Make a client and start its engine dialing. */
struct dlm_client *
dlm__client_new(const char *server, const struct dlm_options *opts,
    bool loop, int *err)
{
	struct dlm_options known;
	struct hello_args hello;
	struct dlm_client *c;
	struct addr addrs[ADDR_LIST_MAX];
	char path[4096], host[200], why[200];
	int rc, naddrs = 0;

	if (options_read(&known, opts) != 0) {
		*err = DLM_E_INVALID;
		dlm__errmsg_set(0, *err, "options of a size this library does "
		    "not know, or with fields it does not know set");
		return NULL;
	}
	opts = &known;
	if (opts->lease_ms < 0 || opts->linger_ms < 0 ||
	    opts->connect_timeout_ms < 0 ||
	    (opts->client != NULL && opts->client[0] == '\0')) {
		*err = DLM_E_INVALID;
		dlm__errmsg_set(0, *err, "a negative time, or an empty client "
		    "name, in the options");
		return NULL;
	}
	/* A bad address is the caller's mistake: say so before dialling. */
	server = server_address(server, path, sizeof path);
	if (server == NULL || (naddrs = addr_parse_list(server, 0, addrs,
	    ADDR_LIST_MAX, why, sizeof why)) < 0) {
		*err = DLM_E_ADDRESS;
		dlm__errmsg_set(0, *err, server == NULL ? "no server address, "
		    "and no default socket" : why);
		return NULL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		*err = DLM_E_NOMEM;
		return NULL;
	}
	c->loop = loop;
	c->wake[0] = c->wake[1] = c->evfd = -1;
	engine_init(&c->eng, &client_ops, c);
	c->watched_fd = -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->state_cv, NULL);
	c->pid = getpid();
	c->serial = __atomic_add_fetch(&serial_counter, 1, __ATOMIC_RELAXED);
	c->fork_depth = dlm__fork_depth();
	c->on_lost = opts->on_lost;
	c->on_lost_arg = opts->on_lost_arg;
	c->on_contended = opts->on_contended;
	c->on_contended_arg = opts->on_contended_arg;
	if (opts->client != NULL)
		c->name = strdup(opts->client);
	else {
		if (gethostname(host, sizeof host) != 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		if (asprintf(&c->name, "%s:%ld:%lu", host, (long)c->pid,
		    __atomic_add_fetch(&name_counter, 1, __ATOMIC_RELAXED)) < 0)
			c->name = NULL;
	}
	c->label = xstrdup_or_null(opts->label);
	c->auth = xstrdup_or_null(opts->auth);
	rc = DLM_E_NOMEM;
	if (c->name == NULL ||
	    (opts->label != NULL && c->label == NULL) ||
	    (opts->auth != NULL && c->auth == NULL))
		goto fail;
	if ((rc = tls_setup(c, addrs, naddrs, opts)) != 0) {
		dlm__errmsg_set(0, rc, c->eng.errmsg);
		dlm__client_free(c);
		*err = rc;
		return NULL;
	}
	rc = DLM_E_NOMEM;
	if (!loop && (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
	    (c->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0))
		goto fail;
	memset(&hello, 0, sizeof hello);
	hello.client = c->name;
	hello.label = c->label;
	hello.auth = c->auth;
	hello.pid = (int64_t)c->pid;
	hello.lease_ms = opts->lease_ms;
	hello.linger_ms = opts->linger_ms;
	if ((rc = dlm__registry_add(c)) != 0)
		goto fail;
	rc = engine_start(&c->eng, addrs, naddrs, &hello, opts->connect_timeout_ms > 0 ?
	    opts->connect_timeout_ms : 10000);
	if (rc != 0 && !loop) {
		dlm__errmsg_set(0, rc, c->eng.errmsg);
		dlm__registry_remove(c);
		dlm__client_free(c);
		*err = rc;
		return NULL;
	}
	*err = 0;
	return c;
fail:
	dlm__client_free(c);
	*err = rc;
	dlm__errmsg_set(0, rc, NULL);
	return NULL;
}

/*
 * dlm_close(), in two halves around stopping the threaded mode's driver
 * (client.c's dlm_close() stops it; dlm_loop_process() has none). The
 * first says bye and wakes whoever waits; false when the rest is not to
 * be done here.
 */
bool
dlm__close_begin(struct dlm_client *c)
{
	struct lockent *e, *tmp;

	if (dlm__forked(c)) {
		/*
		 * A child's copy: the socket was closed at fork(), and the
		 * parent's thread and locks are not ours to touch.
		 */
		return false;
	}
	pthread_mutex_lock(&c->mu);
	if (c->loop && c->in_process) {
		/* Freed once dlm_loop_process() has run its callbacks. */
		c->close_asked = true;
		pthread_mutex_unlock(&c->mu);
		return false;
	}
	c->closing = true;
	pthread_cond_broadcast(&c->state_cv);
	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->locks, e, tmp)
		dlm__lockent_wake_all(e);
	engine_bye(&c->eng);
	pthread_mutex_unlock(&c->mu);
	return true;
}

/* The second half: close the engine, run what is left, free c. */
void
dlm__close_end(struct dlm_client *c)
{
	struct dlm_req *done;

	pthread_mutex_lock(&c->mu);
	engine_close(&c->eng);
	/* Calls still inside the library see CLOSED and leave. */
	while (c->users > 0)
		pthread_cond_wait(&c->state_cv, &c->mu);
	done = dlm__take_completions(c);
	pthread_mutex_unlock(&c->mu);
	dlm__registry_remove(c);
	dlm__errmsg_forget(c);

	/* Every async callback runs exactly once: the rest run here. */
	dlm__run_completions(c, done);
	if (c->loop && c->watch != NULL)
		c->watch(c, -1, DLM_EV_FREE, -1, c->watch_arg);
	dlm__client_free(c);
}
