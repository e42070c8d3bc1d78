/*
 * Every message the server sends: results, errors, grants, and "lost" and
 * "contended" notices. Each is packed straight into the connection's output, so a
 * reply made while another is being built (a grant caused by a release)
 * never shares a buffer with it. doc/PROTOCOL.md gives the same shapes.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "dlmd.h"

static int
evbuffer_packer_write(void *data, const char *buf, size_t len)
{
	return evbuffer_add(data, buf, len);
}

/* [1, msgid, nil, ... : the caller packs the result and calls done. */
static bool
reply_start(struct conn *c, uint32_t msgid, struct mpw *w)
{
	struct evbuffer *out = conn_output(c);

	if (out == NULL)
		return false;
	mpw_init(w, out, evbuffer_packer_write);
	mpw_array(w, 4);
	mpw_u64(w, DLM_MSG_RESPONSE);
	mpw_u64(w, msgid);
	mpw_nil(w);
	return true;
}

static void
reply_done(struct conn *c, struct mpw *w)
{
	/* Only an allocation can fail here, and libevent's are not ours. */
	if (w->err != 0)
		fatalx("%s: cannot queue a reply", __func__);
	conn_queued(c);
}

/* [1, msgid, nil, result], the result already packed. */
void
reply_result(struct conn *c, uint32_t msgid, const msgpack_sbuffer *result)
{
	struct mpw w;

	if (!reply_start(c, msgid, &w))
		return;
	if (evbuffer_add(conn_output(c), result->data, result->size) != 0)
		w.err = 1;
	reply_done(c, &w);
}

/*
 * [1, msgid, {code, name, message}, nil]. msgid is NULL when the request's
 * msgid could not be read; it is sent as nil.
 */
void
reply_error(struct conn *c, const uint32_t *msgid, int code,
    const char *fmt, ...)
{
	struct evbuffer *out = conn_output(c);
	char message[512];
	struct mpw w;
	va_list ap;

	if (out == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);
	srv->stats.errors++;
	mpw_init(&w, out, evbuffer_packer_write);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_RESPONSE);
	if (msgid != NULL)
		mpw_u64(&w, *msgid);
	else
		mpw_nil(&w);
	mpw_error(&w, code, message);
	mpw_nil(&w);
	reply_done(c, &w);
}

/*
 * [1, msgid, {code, name, message, active}, nil]: NOT_ACTIVE, with the
 * address of the active dlmd when it is known (active is then not NULL).
 */
void
reply_not_active(struct conn *c, uint32_t msgid, const char *active,
    const char *message)
{
	struct evbuffer *out = conn_output(c);
	struct mpw w;

	if (out == NULL)
		return;
	srv->stats.errors++;
	mpw_init(&w, out, evbuffer_packer_write);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_RESPONSE);
	mpw_u64(&w, msgid);
	mpw_map(&w, active != NULL ? 4 : 3);
	mpw_key(&w, "code");
	mpw_i64(&w, DLM_E_NOT_ACTIVE);
	mpw_key(&w, "name");
	mpw_str(&w, dlm_proto_errname(DLM_E_NOT_ACTIVE));
	mpw_key(&w, "message");
	mpw_str(&w, message);
	if (active != NULL) {
		mpw_key(&w, "active");
		mpw_str(&w, active);
	}
	mpw_nil(&w);
	reply_done(c, &w);
}

/*
 * A grant's result: {token, count, valid_ms}, a semaphore's {permits},
 * with_mode a convert's {mode}, and in a cluster {receipt}. The one
 * encoder of both.
 */
static void
pack_hold_answer(struct mpw *w, const struct lt_hold *h, uint64_t valid_ms,
    const uint8_t *receipt, bool with_mode)
{
	bool semaphore = h->lock->kind == LT_SEMAPHORE;

	mpw_map(w, 3 + (receipt != NULL) + semaphore + with_mode);
	if (semaphore) {
		mpw_key(w, "permits");
		mpw_u64(w, h->permits);
	}
	mpw_key(w, "token");
	mpw_u64(w, h->token);
	mpw_key(w, "count");
	mpw_u64(w, h->count);
	mpw_key(w, "valid_ms");
	mpw_u64(w, valid_ms);
	if (with_mode) {
		mpw_key(w, "mode");
		mpw_str(w, h->mode == LT_SHARED ? "shared" : "exclusive");
	}
	if (receipt != NULL) {
		mpw_key(w, "receipt");
		mpw_bin(w, receipt, RECEIPT_LEN);
	}
}

void
pack_grant(struct mpw *w, const struct lt_hold *h, uint64_t valid_ms,
    const uint8_t *receipt)
{
	pack_hold_answer(w, h, valid_ms, receipt, false);
}

/* A convert's result: a grant's keys, and the hold's mode now. */
void
pack_converted(struct mpw *w, const struct lt_hold *h, uint64_t valid_ms,
    const uint8_t *receipt)
{
	pack_hold_answer(w, h, valid_ms, receipt, true);
}

/* Answer a request that waited and has now been granted or converted. */
static void
reply_hold(struct conn *c, uint32_t msgid, const struct lt_hold *h,
    uint64_t valid_ms, const uint8_t *receipt, bool converted)
{
	struct mpw w;

	if (!reply_start(c, msgid, &w))
		return;
	pack_hold_answer(&w, h, valid_ms, receipt, converted);
	reply_done(c, &w);
}

void
reply_grant(struct conn *c, uint32_t msgid, const struct lt_hold *h,
    uint64_t valid_ms, const uint8_t *receipt)
{
	reply_hold(c, msgid, h, valid_ms, receipt, false);
}

void
reply_converted(struct conn *c, uint32_t msgid, const struct lt_hold *h,
    uint64_t valid_ms, const uint8_t *receipt)
{
	reply_hold(c, msgid, h, valid_ms, receipt, true);
}

/* [2, "lost", [{lock, token, reason}]] */
void
notify_lost(struct conn *c, const struct lt_hold *h, int reason)
{
	struct evbuffer *out = conn_output(c);
	struct mpw w;

	if (out == NULL)
		return;
	mpw_init(&w, out, evbuffer_packer_write);
	mpw_array(&w, 3);
	mpw_u64(&w, DLM_MSG_NOTIFY);
	mpw_str(&w, "lost");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "lock");
	mpw_strn(&w, h->lock->name, h->lock->namelen);
	mpw_key(&w, "token");
	mpw_u64(&w, h->token);
	mpw_key(&w, "reason");
	mpw_str(&w, dlm_proto_lost_reason(reason));
	reply_done(c, &w);
}

/* [2, "contended", [{lock, token, waiters}]] */
void
notify_contended(struct conn *c, const struct lt_hold *h, uint32_t waiters)
{
	struct evbuffer *out = conn_output(c);
	struct mpw w;

	if (out == NULL)
		return;
	mpw_init(&w, out, evbuffer_packer_write);
	mpw_array(&w, 3);
	mpw_u64(&w, DLM_MSG_NOTIFY);
	mpw_str(&w, "contended");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "lock");
	mpw_strn(&w, h->lock->name, h->lock->namelen);
	mpw_key(&w, "token");
	mpw_u64(&w, h->token);
	mpw_key(&w, "waiters");
	mpw_u64(&w, waiters);
	reply_done(c, &w);
}

/*
 * [1, msgid, {code, name, message, cycle}, nil]: DEADLOCK, with the
 * cycle of waits the request would have closed, each {client, lock, mode}
 * (doc/PROTOCOL.md).
 */
void
reply_deadlock(struct conn *c, uint32_t msgid, const char *message,
    const struct lt_cycle *cy, uint64_t hidden)
{
	struct evbuffer *out = conn_output(c);
	uint32_t n = cy->len < LT_CYCLE_MAX ? cy->len : LT_CYCLE_MAX;
	struct mpw w;

	if (out == NULL)
		return;
	srv->stats.errors++;
	mpw_init(&w, out, evbuffer_packer_write);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_RESPONSE);
	mpw_u64(&w, msgid);
	mpw_map(&w, 4);
	mpw_key(&w, "code");
	mpw_i64(&w, DLM_E_DEADLOCK);
	mpw_key(&w, "name");
	mpw_str(&w, dlm_proto_errname(DLM_E_DEADLOCK));
	mpw_key(&w, "message");
	mpw_str(&w, message);
	mpw_key(&w, "cycle");
	mpw_array(&w, n);
	/* cppcheck-suppress knownConditionTrueFalse ; the table filled cy */
	for (uint32_t i = 0; i < n; i++) {
		const struct lt_cycle_step *s = &cy->steps[i];

		mpw_map(&w, 3);
		mpw_key(&w, "client");
		mpw_str(&w, session_of_owner(s->owner)->name);
		mpw_key(&w, "lock");
		if (hidden & (UINT64_C(1) << i))
			mpw_nil(&w);
		else
			mpw_strn(&w, s->lock->name, s->lock->namelen);
		mpw_key(&w, "mode");
		mpw_str(&w, s->mode == LT_SHARED ? "shared" : "exclusive");
	}
	mpw_nil(&w);
	reply_done(c, &w);
}
