/*
 * The watch entries: which locks this client watches, and with which
 * callback. The engine's reports (a watch answered, a "changed" notice)
 * become notes carrying the lock's state, packed, which the driver runs
 * like lost notes: in the client's thread, or inside dlm_loop_process().
 * A note is for one entry (its id): one unwatched meanwhile, or watched
 * anew, is not told what the old watch saw.
 *
 * The server keeps a session's watches only as long as its connection,
 * so each time the session opens again every entry the server had
 * answered is watched again, and its callback hears the state then.
 *
 * Everything here runs with c->mu held, except dlm__watch_deliver().
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "clock.h"

int
dlm__watch_add(struct dlm_client *c, const char *lock, dlm_changed_cb cb,
    dlm_leader_cb leader_cb, void *arg, struct watchent **out)
{
	struct watchent *e;

	*out = NULL;
	if (dlm__watch_find(c, lock, strlen(lock)) != NULL)
		return DLM_E_ALREADY_HELD;
	if ((e = calloc(1, sizeof *e)) == NULL ||
	    (e->name = strdup(lock)) == NULL) {
		free(e);
		return DLM_E_NOMEM;
	}
	e->id = ++c->next_watch_id;
	e->cb = cb;
	e->leader_cb = leader_cb;
	e->arg = arg;
	dlm__hash_oom = 0;
	HASH_ADD_KEYPTR(hh, c->watches, e->name, strlen(e->name), e);
	if (dlm__hash_oom) {
		free(e->name);
		free(e);
		return DLM_E_NOMEM;
	}
	*out = e;
	return 0;
}

struct watchent *
dlm__watch_find(struct dlm_client *c, const char *lock, size_t len)
{
	struct watchent *e;

	HASH_FIND(hh, c->watches, lock, len, e);
	return e;
}

void
dlm__watch_remove(struct dlm_client *c, struct watchent *e)
{
	HASH_DEL(c->watches, e);
	free(e->name);
	free(e);
}

/* Queue the state (packed, taken) for e's callback; dropped without memory. */
static void
queue_state(struct dlm_client *c, const struct watchent *e, char *state,
    size_t len)
{
	struct note *n = dlm__note_new(e->name);

	if (n == NULL) {
		/* The next notice carries the whole state again. */
		free(state);
		return;
	}
	n->state = state;
	n->state_len = len;
	n->watch_id = e->id;
	dlm__note_queue(c, n, 0, 0, 0);
}

void
dlm__watch_on_reply(struct dlm_client *c, struct dlm_req *req)
{
	struct watchent *e = dlm__watch_find(c, req->lock, strlen(req->lock));

	/* Unwatched, or watched anew, while the answer was on its way. */
	if (e == NULL || e->id != req->watch_id || req->r.err != 0)
		return;
	e->active = true;
	queue_state(c, e, req->r.raw, req->r.raw_len);
	req->r.raw = NULL;
}

void
dlm__watch_on_changed(struct dlm_client *c, const char *lock, size_t len,
    const msgpack_object *state)
{
	struct watchent *e = dlm__watch_find(c, lock, len);
	msgpack_sbuffer sb;
	msgpack_packer pk;

	/*
	 * Only once the watch was answered: a notice before that belongs
	 * to an earlier watch of the name, which was unwatched.
	 */
	if (e == NULL || !e->active)
		return;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_object(&pk, *state) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return;
	}
	len = sb.size;
	queue_state(c, e, msgpack_sbuffer_release(&sb), len);
}

void
dlm__watch_again(struct dlm_client *c)
{
	struct watchent *e, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->watches, e, tmp) {
		struct wire_params params;
		struct dlm_req *req;
		int rc;

		if (!e->active)
			continue;	/* its own dlm_watch() is under way */
		if ((req = calloc(1, sizeof *req)) == NULL ||
		    (req->lock = strdup(e->name)) == NULL) {
			free(req);
			continue;
		}
		/* Answered through dlm__watch_on_reply(), no callback. */
		req->kind = REQ_ASYNC_DONE;
		req->is_watch = true;
		req->watch_id = e->id;
		req->want_raw = true;
		rc = wire_lock_params(&params, e->name, 0);
		if (rc == 0)
			rc = engine_submit(&c->eng, req, "watch", &params.sb);
		wire_params_free(&params);
		if (rc != 0) {
			free(req->lock);
			free(req);
			continue;
		}
		c->async_pending++;
	}
}

/*
 * The holders of a packed state, in one allocation: the array, then the
 * client names and values it points to. NULL without memory.
 */
static struct dlm_holder *
decode_holders(const msgpack_object *hs, size_t *n)
{
	struct dlm_holder *out;
	size_t bytes = 0;
	char *p;

	*n = hs->via.array.size;
	for (size_t i = 0; i < *n; i++) {
		const msgpack_object *h = &hs->via.array.ptr[i], *o;
		const char *s;
		size_t len;

		(void)mpr_bytes(mpr_get(h, "client"), &s, &len);
		bytes += len + 1;
		if ((o = mpr_get(h, "value")) != NULL && mpr_bytes(o, &s, &len))
			bytes += len;
	}
	if ((out = calloc(1, *n * sizeof *out + bytes + 1)) == NULL)
		return NULL;
	p = (char *)(out + *n);
	for (size_t i = 0; i < *n; i++) {
		const msgpack_object *h = &hs->via.array.ptr[i], *o;
		const char *s;
		size_t len;
		uint64_t token = 0;

		(void)mpr_bytes(mpr_get(h, "client"), &s, &len);
		memcpy(p, s, len);
		p[len] = '\0';
		out[i].client = p;
		p += len + 1;
		(void)mpr_uint(mpr_get(h, "token"), &token);
		out[i].token = token;
		out[i].shared = mpr_str_eq(mpr_get(h, "mode"), "shared");
		if ((o = mpr_get(h, "value")) != NULL &&
		    mpr_bytes(o, &s, &len) && len > 0) {
			memcpy(p, s, len);
			out[i].value = p;
			out[i].value_len = len;
			p += len;
		}
	}
	return out;
}

/*
 * Run the callback of a state note, if its watch is still the entry's;
 * while it runs, dlm_unwatch() from another thread waits for it.
 */
void
dlm__watch_deliver(struct dlm_client *c, const struct note *n)
{
	struct watchent *e;
	dlm_changed_cb cb = NULL;
	dlm_leader_cb leader_cb = NULL;
	struct dlm_holder *holders;
	msgpack_zone zone;
	msgpack_object state;
	void *arg = NULL;
	size_t off = 0, nholders;
	uint64_t waiters = 0;

	pthread_mutex_lock(&c->mu);
	e = dlm__watch_find(c, n->lock, strlen(n->lock));
	if (e != NULL && e->id == n->watch_id) {
		cb = e->cb;
		leader_cb = e->leader_cb;
		arg = e->arg;
		c->watch_running = e->id;
		c->watch_thread = pthread_self();
	}
	pthread_mutex_unlock(&c->mu);
	if (cb == NULL && leader_cb == NULL)
		return;
	msgpack_zone_init(&zone, 2048);
	if (msgpack_unpack(n->state, n->state_len, &off, &zone, &state) ==
	    MSGPACK_UNPACK_SUCCESS && wire_state_valid(&state) &&
	    (holders = decode_holders(mpr_get(&state, "holders"),
	    &nholders)) != NULL) {
		(void)mpr_uint(mpr_get(&state, "waiters"), &waiters);
		if (cb != NULL)
			cb(c, n->lock, holders, nholders, (size_t)waiters, arg);
		else
			leader_cb(c, n->lock, nholders > 0 ? &holders[0] :
			    NULL, arg);
		free(holders);
	}
	msgpack_zone_destroy(&zone);
	pthread_mutex_lock(&c->mu);
	c->watch_running = 0;
	pthread_cond_broadcast(&c->state_cv);
	pthread_mutex_unlock(&c->mu);
}

void
dlm__watches_free(struct dlm_client *c)
{
	struct watchent *e, *tmp;

	/* cppcheck-suppress uninitvar ; HASH_ITER sets tmp */
	HASH_ITER(hh, c->watches, e, tmp)
		dlm__watch_remove(c, e);
}
