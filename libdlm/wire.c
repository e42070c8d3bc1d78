/*
 * The protocol's bytes: reading frames, encoding requests, decoding
 * replies. See wire.h.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dlm.h"
#include "frame.h"
#include "mpack.h"
#include "proto.h"
#include "wire.h"

#define READ_CHUNK	65536
#define MAX_REPLY	(64u * 1024 * 1024)

void
rbuf_init(struct rbuf *b)
{
	memset(b, 0, sizeof *b);
	msgpack_zone_init(&b->zone, 8192);
}

void
rbuf_free(struct rbuf *b)
{
	free(b->buf);
	b->buf = NULL;
	b->len = b->cap = 0;
	msgpack_zone_destroy(&b->zone);
}

int
rbuf_room(struct rbuf *b, char **dst, size_t *room)
{
	if (b->len == 0)
		b->off = 0;
	if (b->cap - b->off - b->len < READ_CHUNK && b->off > 0) {
		/* What is left is the start of a frame: to the front. */
		memmove(b->buf, b->buf + b->off, b->len);
		b->off = 0;
	}
	if (b->cap - b->len < READ_CHUNK) {
		size_t cap = b->cap * 2 + READ_CHUNK;
		char *p = realloc(b->buf, cap);

		if (p == NULL)
			return -1;
		b->buf = p;
		b->cap = cap;
	}
	*dst = b->buf + b->off + b->len;
	*room = b->cap - b->off - b->len;
	return 0;
}

void
rbuf_commit(struct rbuf *b, size_t n)
{
	b->len += n;
}

ssize_t
rbuf_read(struct rbuf *b, int fd)
{
	char *dst;
	size_t room;
	ssize_t n;

	if (rbuf_room(b, &dst, &room) != 0)
		return -1;
	/*
	 * Never block: whoever was told the socket was readable may find
	 * that another reader got there first. (A caller blocking in recv()
	 * instead of poll() and then recv() makes one system call less, yet
	 * measured slower: bench/lockbench workload 2 fell from 34,000 to
	 * 25,000 pairs/s.)
	 */
	n = recv(fd, dst, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN ||
	    errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	b->len += (size_t)n;
	return n;
}

int
rbuf_frame(struct rbuf *b, struct frame *f, size_t *len)
{
	const char *start = b->buf + b->off;
	enum frame_status st = frame_scan(start, b->len, MAX_REPLY, 8, len);
	msgpack_object obj;
	const msgpack_object *v;
	uint64_t u;
	size_t off = 0;

	if (st == FRAME_INCOMPLETE)
		return 0;
	if (st != FRAME_COMPLETE)
		return -1;
	msgpack_zone_clear(&b->zone);
	if (msgpack_unpack(start, *len, &off, &b->zone, &obj) !=
	    MSGPACK_UNPACK_SUCCESS)
		return -1;
	if (obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size < 3)
		return -1;
	memset(f, 0, sizeof *f);
	f->type = -1;
	v = obj.via.array.ptr;
	if (!mpr_uint(&v[0], &u))
		return -1;
	if (u == DLM_MSG_RESPONSE && obj.via.array.size == 4) {
		f->type = DLM_MSG_RESPONSE;
		/* A nil msgid answers a frame the server could not read. */
		if (mpr_uint(&v[1], &u) && u <= UINT32_MAX) {
			f->has_msgid = true;
			f->msgid = (uint32_t)u;
		}
		f->error = &v[2];
		f->result = &v[3];
	} else if (u == DLM_MSG_NOTIFY) {
		f->type = DLM_MSG_NOTIFY;
		f->method = &v[1];
		f->params = &v[2];
	}
	return 1;
}

void
rbuf_consume(struct rbuf *b, size_t n)
{
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

/* Start a request frame: [0, msgid, method, [ */
static void
request_head(struct mpw *w, uint32_t msgid, const char *method)
{
	mpw_array(w, 4);
	mpw_u64(w, DLM_MSG_REQUEST);
	mpw_u64(w, msgid);
	mpw_str(w, method);
	mpw_array(w, 1);
}

int
wire_request(msgpack_sbuffer *out, uint32_t msgid, const char *method,
    const msgpack_sbuffer *params)
{
	size_t mark = out->size;
	struct mpw w;

	mpw_init_sbuffer(&w, out);
	request_head(&w, msgid, method);
	if (params != NULL)
		w.err |= msgpack_sbuffer_write(out, params->data, params->size);
	else
		mpw_map(&w, 0);
	if (w.err != 0) {
		out->size = mark;
		return DLM_E_NOMEM;
	}
	return 0;
}

/* What hello and reclaim both ask, when asked: lease, linger, auth. */
static void
put_session_asks(struct mpw *w, const struct hello_args *h)
{
	if (h->lease_ms > 0) {
		mpw_key(w, "lease_ms");
		mpw_i64(w, h->lease_ms);
	}
	if (h->linger_ms > 0) {
		mpw_key(w, "linger_ms");
		mpw_i64(w, h->linger_ms);
	}
	if (h->auth != NULL) {
		mpw_key(w, "auth");
		mpw_str(w, h->auth);
	}
}

int
wire_hello(msgpack_sbuffer *out, uint32_t msgid, const struct hello_args *h)
{
	size_t mark = out->size;
	uint32_t n = 3;
	char host[256];
	struct mpw w;

	if (gethostname(host, sizeof host) != 0)
		strcpy(host, "localhost");
	host[sizeof host - 1] = '\0';
	n += (h->lease_ms > 0) + (h->linger_ms > 0) + (h->auth != NULL) +
	    (h->resume != NULL);
	mpw_init_sbuffer(&w, out);
	request_head(&w, msgid, "hello");
	mpw_map(&w, n);
	mpw_key(&w, "proto");
	mpw_u64(&w, DLM_PROTO_VERSION);
	mpw_key(&w, "client");
	mpw_str(&w, h->client);
	mpw_key(&w, "info");
	mpw_map(&w, h->label != NULL ? 3 : 2);
	mpw_key(&w, "host");
	mpw_str(&w, host);
	mpw_key(&w, "pid");
	mpw_i64(&w, h->pid);
	if (h->label != NULL) {
		mpw_key(&w, "label");
		mpw_str(&w, h->label);
	}
	put_session_asks(&w, h);
	if (h->resume != NULL) {
		mpw_key(&w, "resume");
		mpw_str(&w, h->resume);
	}
	if (w.err != 0) {
		out->size = mark;
		return DLM_E_NOMEM;
	}
	return 0;
}

/* msgpack's write callback for struct wire_params: 0, or -1 (no memory). */
static int
params_write(void *data, const char *buf, size_t len)
{
	struct wire_params *p = data;
	msgpack_sbuffer *sb = &p->sb;

	if (sb->alloc - sb->size < len) {
		size_t n = sb->alloc * 2;
		char *d;

		while (n < sb->size + len) {
			if (n * 2 < n)
				return -1;
			n *= 2;
		}
		if (sb->data == p->small) {
			if ((d = malloc(n)) != NULL)
				memcpy(d, p->small, sb->size);
		} else
			d = realloc(sb->data, n);
		if (d == NULL)
			return -1;
		sb->data = d;
		sb->alloc = n;
	}
	memcpy(sb->data + sb->size, buf, len);
	sb->size += len;
	return 0;
}

void
wire_params_init(struct wire_params *p, struct mpw *w)
{
	p->sb.data = p->small;
	p->sb.size = 0;
	p->sb.alloc = sizeof p->small;
	mpw_init(w, p, params_write);
}

void
wire_params_free(struct wire_params *p)
{
	if (p->sb.data != p->small)
		free(p->sb.data);
	p->sb.data = p->small;
	p->sb.size = 0;
	p->sb.alloc = sizeof p->small;
}

int
wire_reclaim(msgpack_sbuffer *out, uint32_t msgid, const struct hello_args *h,
    const char *secret, const uint8_t *receipt, uint32_t nclaims,
    const msgpack_sbuffer *claims)
{
	size_t mark = out->size;
	struct mpw w;

	mpw_init_sbuffer(&w, out);
	request_head(&w, msgid, "reclaim");
	mpw_map(&w, 5 + (h->lease_ms > 0) + (h->linger_ms > 0) +
	    (h->auth != NULL));
	mpw_key(&w, "proto");
	mpw_u64(&w, DLM_PROTO_VERSION);
	mpw_key(&w, "client");
	mpw_str(&w, h->client);
	mpw_key(&w, "secret");
	mpw_str(&w, secret);
	mpw_key(&w, "receipt");
	mpw_bin(&w, receipt, WIRE_RECEIPT_LEN);
	put_session_asks(&w, h);
	mpw_key(&w, "holds");
	mpw_array(&w, nclaims);
	if (claims->size > 0)
		w.err |= msgpack_sbuffer_write(out, claims->data, claims->size);
	if (w.err != 0) {
		out->size = mark;
		return DLM_E_NOMEM;
	}
	return 0;
}

int
wire_claim(msgpack_sbuffer *sb, const struct wire_claim *cl)
{
	size_t mark = sb->size;
	struct mpw w;

	mpw_init_sbuffer(&w, sb);
	mpw_map(&w, (cl->capacity != 0 ? 10 : 7) + (cl->value_len > 0) +
	    (cl->lock_delay_ms != 0) + cl->notify_contended);
	if (cl->capacity != 0) {
		mpw_key(&w, "capacity");
		mpw_u64(&w, cl->capacity);
		mpw_key(&w, "permits");
		mpw_u64(&w, cl->permits);
		mpw_key(&w, "receipt_permits");
		mpw_u64(&w, cl->receipt_permits);
	}
	mpw_key(&w, "lock");
	mpw_str(&w, cl->lock);
	if (cl->value_len > 0) {
		/* Sent again: the new active has no other copy. */
		mpw_key(&w, "value");
		mpw_bin(&w, cl->value, cl->value_len);
	}
	mpw_key(&w, "kind");
	mpw_str(&w, cl->capacity != 0 ? "semaphore" : cl->rlock ? "rlock" :
	    "mutex");
	mpw_key(&w, "mode");
	mpw_str(&w, cl->shared ? "shared" : "exclusive");
	mpw_key(&w, "token");
	mpw_u64(&w, cl->token);
	mpw_key(&w, "count");
	mpw_u64(&w, cl->count);
	mpw_key(&w, "receipt_count");
	mpw_u64(&w, cl->receipt_count);
	mpw_key(&w, "receipt");
	mpw_bin(&w, cl->receipt, WIRE_RECEIPT_LEN);
	if (cl->lock_delay_ms != 0) {
		mpw_key(&w, "lock_delay_ms");
		mpw_u64(&w, cl->lock_delay_ms);
	}
	if (cl->notify_contended) {
		mpw_key(&w, "notify_contended");
		mpw_bool(&w, true);
	}
	if (w.err != 0) {
		sb->size = mark;
		return DLM_E_NOMEM;
	}
	return 0;
}

int
wire_acquire_params(struct wire_params *p, const char *lock,
    const struct dlm_acquire_opts *o, int timeout_ms)
{
	struct mpw w;
	bool semaphore = (o->flags & DLM_SEMAPHORE) != 0;
	bool notify = (o->flags & DLM_NOTIFY_CONTENDED) != 0;
	bool no_check = (o->flags & DLM_NO_DEADLOCK_CHECK) != 0;
	uint32_t n = 4 + (semaphore ? 2 : 0) + (o->value_len > 0) +
	    (o->lock_delay_ms > 0) + notify + no_check;

	wire_params_init(p, &w);
	mpw_map(&w, n);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	mpw_key(&w, "kind");
	mpw_str(&w, semaphore ? "semaphore" : (o->flags & DLM_RLOCK) ?
	    "rlock" : "mutex");
	if (semaphore) {
		mpw_key(&w, "capacity");
		mpw_u64(&w, o->capacity);
		mpw_key(&w, "permits");
		mpw_u64(&w, o->permits != 0 ? o->permits : 1);
	}
	mpw_key(&w, "mode");
	mpw_str(&w, (o->flags & DLM_SHARED) ? "shared" : "exclusive");
	mpw_key(&w, "timeout_ms");
	mpw_i64(&w, timeout_ms);
	if (o->value_len > 0) {
		mpw_key(&w, "value");
		mpw_bin(&w, o->value, o->value_len);
	}
	if (o->lock_delay_ms > 0) {
		mpw_key(&w, "lock_delay_ms");
		mpw_u64(&w, (uint64_t)o->lock_delay_ms);
	}
	if (notify) {
		mpw_key(&w, "notify_contended");
		mpw_bool(&w, true);
	}
	if (no_check) {
		mpw_key(&w, "deadlock_check");
		mpw_bool(&w, false);
	}
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_convert_params(struct wire_params *p, const char *lock, bool shared,
    int timeout_ms, uint64_t token)
{
	struct mpw w;

	wire_params_init(p, &w);
	mpw_map(&w, token != 0 ? 4 : 3);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	mpw_key(&w, "mode");
	mpw_str(&w, shared ? "shared" : "exclusive");
	mpw_key(&w, "timeout_ms");
	mpw_i64(&w, timeout_ms);
	if (token != 0) {
		mpw_key(&w, "token");
		mpw_u64(&w, token);
	}
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_lock_params(struct wire_params *p, const char *lock, uint64_t token)
{
	struct mpw w;

	wire_params_init(p, &w);
	mpw_map(&w, token != 0 ? 2 : 1);
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	if (token != 0) {
		mpw_key(&w, "token");
		mpw_u64(&w, token);
	}
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_release_params(struct wire_params *p, const char *lock, uint64_t token,
    uint32_t permits)
{
	struct mpw w;

	wire_params_init(p, &w);
	mpw_map(&w, 1 + (token != 0) + (permits != 0));
	mpw_key(&w, "lock");
	mpw_str(&w, lock);
	if (token != 0) {
		mpw_key(&w, "token");
		mpw_u64(&w, token);
	}
	if (permits != 0) {
		mpw_key(&w, "permits");
		mpw_u64(&w, permits);
	}
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_params_str(msgpack_sbuffer *sb, const char *key, const char *s)
{
	struct mpw w;

	mpw_init_sbuffer(&w, sb);
	mpw_map(&w, 1);
	mpw_key(&w, key);
	mpw_str(&w, s);
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_params_uint(msgpack_sbuffer *sb, const char *key, uint64_t u)
{
	struct mpw w;

	mpw_init_sbuffer(&w, sb);
	mpw_map(&w, 1);
	mpw_key(&w, key);
	mpw_u64(&w, u);
	return w.err != 0 ? DLM_E_NOMEM : 0;
}

int
wire_error_code(const msgpack_object *e)
{
	const msgpack_object *o;
	int64_t code;

	if (e->type == MSGPACK_OBJECT_NIL)
		return 0;
	if ((o = mpr_get(e, "code")) == NULL || !mpr_int(o, &code) ||
	    code <= 0 || code > INT32_MAX)
		return DLM_E_PROTOCOL;
	return (int)code;
}

void
wire_error_message(const msgpack_object *e, char *buf, size_t len)
{
	const msgpack_object *o;

	buf[0] = '\0';
	if (e->type != MSGPACK_OBJECT_NIL &&
	    (o = mpr_get(e, "message")) != NULL &&
	    o->type == MSGPACK_OBJECT_STR)
		snprintf(buf, len, "%.*s", (int)o->via.str.size,
		    o->via.str.ptr);
}

void
wire_error_active(const msgpack_object *e, char *buf, size_t len)
{
	const msgpack_object *o;

	buf[0] = '\0';
	if (e->type != MSGPACK_OBJECT_NIL &&
	    (o = mpr_get(e, "active")) != NULL &&
	    o->type == MSGPACK_OBJECT_STR && o->via.str.size < len &&
	    memchr(o->via.str.ptr, '\0', o->via.str.size) == NULL) {
		memcpy(buf, o->via.str.ptr, o->via.str.size);
		buf[o->via.str.size] = '\0';
	}
}

/* A receipt: a bin (or str) of exactly WIRE_RECEIPT_LEN bytes. */
static bool
read_receipt(const msgpack_object *res, uint8_t *out)
{
	const msgpack_object *o = mpr_get(res, "receipt");
	const char *p;
	size_t len;

	if (o == NULL || !mpr_bytes(o, &p, &len) || len != WIRE_RECEIPT_LEN)
		return false;
	memcpy(out, p, len);
	return true;
}

void
wire_reply(struct reply_data *r, const struct frame *f, bool want_raw)
{
	const msgpack_object *o, *res = f->result;

	memset(r, 0, sizeof *r);
	if ((r->err = wire_error_code(f->error)) != 0) {
		/* Without memory for it, the code alone still says what. */
		if ((o = mpr_get(f->error, "message")) != NULL &&
		    o->type == MSGPACK_OBJECT_STR)
			r->message = strndup(o->via.str.ptr, o->via.str.size);
		return;
	}
	if (want_raw) {
		msgpack_sbuffer sb;
		msgpack_packer pk;

		/* The caller's copy must outlive this frame's zone. */
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		if (msgpack_pack_object(&pk, *res) != 0) {
			msgpack_sbuffer_destroy(&sb);
			r->err = DLM_E_NOMEM;
			return;
		}
		r->raw_len = sb.size;
		r->raw = msgpack_sbuffer_release(&sb);
		return;
	}
	if ((o = mpr_get(res, "token")) != NULL)
		(void)mpr_uint(o, &r->token);
	if ((o = mpr_get(res, "count")) != NULL)
		(void)mpr_uint(o, &r->count);
	if ((o = mpr_get(res, "valid_ms")) != NULL)
		(void)mpr_uint(o, &r->valid_ms);
	if ((o = mpr_get(res, "released")) != NULL)
		(void)mpr_uint(o, &r->released);
	if ((o = mpr_get(res, "permits")) != NULL)
		(void)mpr_uint(o, &r->permits);
	if ((o = mpr_get(res, "held")) != NULL)
		(void)mpr_bool(o, &r->held);
	if ((o = mpr_get(res, "cancelled")) != NULL)
		(void)mpr_bool(o, &r->cancelled);
	r->has_receipt = read_receipt(res, r->receipt);
}

int
wire_session(const struct frame *f, struct session_info *si, bool need_secret)
{
	const msgpack_object *o, *res = f->result;
	const char *p;
	size_t plen;
	uint64_t u;

	memset(si, 0, sizeof *si);
	si->linger_ms = -1;
	if ((o = mpr_get(res, "session")) == NULL || !mpr_uint(o, &si->session))
		return DLM_E_PROTOCOL;
	if ((o = mpr_get(res, "secret")) != NULL || need_secret) {
		if (o == NULL || !mpr_str(o, &p, &plen) ||
		    plen >= sizeof si->secret)
			return DLM_E_PROTOCOL;
		memcpy(si->secret, p, plen);
		si->secret[plen] = '\0';
	}
	if ((o = mpr_get(res, "lease_ms")) == NULL || !mpr_uint(o, &u) ||
	    u == 0 || u > INT32_MAX)
		return DLM_E_PROTOCOL;
	si->lease_ms = (int)u;
	if ((o = mpr_get(res, "linger_ms")) != NULL && mpr_uint(o, &u) &&
	    u <= INT32_MAX)
		si->linger_ms = (int)u;
	if ((o = mpr_get(res, "resumed")) != NULL)
		(void)mpr_bool(o, &si->resumed);
	si->has_receipt = read_receipt(res, si->receipt);
	return 0;
}

int
wire_reclaim_outcome(const struct frame *f, uint32_t i, const char **lock,
    size_t *lock_len, uint64_t *token, bool *kept)
{
	const msgpack_object *holds = mpr_get(f->result, "holds"), *m, *o;

	if (holds == NULL || holds->type != MSGPACK_OBJECT_ARRAY)
		return -1;
	if (i >= holds->via.array.size)
		return 0;
	m = &holds->via.array.ptr[i];
	if ((o = mpr_get(m, "lock")) == NULL || !mpr_bytes(o, lock, lock_len) ||
	    (o = mpr_get(m, "token")) == NULL || !mpr_uint(o, token) ||
	    (o = mpr_get(m, "kept")) == NULL || !mpr_bool(o, kept))
		return -1;
	return 1;
}

int
wire_lost(const struct frame *f, const char **lock, size_t *lock_len,
    uint64_t *token, int *reason)
{
	const msgpack_object *m, *o;
	const char *p;
	size_t len;

	if (!mpr_str_eq(f->method, "lost"))
		return 0;
	if (f->params->type != MSGPACK_OBJECT_ARRAY ||
	    f->params->via.array.size != 1)
		return -1;
	m = &f->params->via.array.ptr[0];
	if ((o = mpr_get(m, "lock")) == NULL || !mpr_bytes(o, &p, &len) ||
	    (o = mpr_get(m, "token")) == NULL || !mpr_uint(o, token))
		return -1;
	*reason = DLM_LOST_EXPIRED;
	if ((o = mpr_get(m, "reason")) != NULL && o->type == MSGPACK_OBJECT_STR)
		*reason = dlm_proto_lost_code(o->via.str.ptr, o->via.str.size);
	*lock = p;
	*lock_len = len;
	return 1;
}

bool
wire_state_valid(const msgpack_object *m)
{
	const msgpack_object *hs, *o;
	const char *p;
	size_t len;
	uint64_t u;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP ||
	    (o = mpr_get(m, "lock")) == NULL || !mpr_bytes(o, &p, &len) ||
	    (o = mpr_get(m, "waiters")) == NULL || !mpr_uint(o, &u) ||
	    (hs = mpr_get(m, "holders")) == NULL ||
	    hs->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < hs->via.array.size; i++) {
		const msgpack_object *h = &hs->via.array.ptr[i];

		if ((o = mpr_get(h, "client")) == NULL ||
		    !mpr_bytes(o, &p, &len) ||
		    (o = mpr_get(h, "token")) == NULL || !mpr_uint(o, &u) ||
		    (o = mpr_get(h, "mode")) == NULL ||
		    o->type != MSGPACK_OBJECT_STR)
			return false;
		if ((o = mpr_get(h, "value")) != NULL &&
		    o->type != MSGPACK_OBJECT_NIL && !mpr_bytes(o, &p, &len))
			return false;
	}
	return true;
}

int
wire_changed(const struct frame *f, const char **lock, size_t *lock_len,
    const msgpack_object **state)
{
	const msgpack_object *m;

	if (!mpr_str_eq(f->method, "changed"))
		return 0;
	if (f->params->type != MSGPACK_OBJECT_ARRAY ||
	    f->params->via.array.size != 1)
		return -1;
	m = &f->params->via.array.ptr[0];
	if (!wire_state_valid(m) ||
	    !mpr_bytes(mpr_get(m, "lock"), lock, lock_len))
		return -1;
	*state = m;
	return 1;
}

int
wire_contended(const struct frame *f, const char **lock, size_t *lock_len,
    uint64_t *token, uint32_t *waiters)
{
	const msgpack_object *m, *o;
	uint64_t n;

	if (!mpr_str_eq(f->method, "contended"))
		return 0;
	if (f->params->type != MSGPACK_OBJECT_ARRAY ||
	    f->params->via.array.size != 1)
		return -1;
	m = &f->params->via.array.ptr[0];
	if ((o = mpr_get(m, "lock")) == NULL ||
	    !mpr_bytes(o, lock, lock_len) ||
	    (o = mpr_get(m, "token")) == NULL || !mpr_uint(o, token))
		return -1;
	/* How many is a detail: a newer server may leave it out. */
	*waiters = 1;
	if ((o = mpr_get(m, "waiters")) != NULL && mpr_uint(o, &n) && n > 0)
		*waiters = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 1;
}
