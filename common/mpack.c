/* msgpack-c helpers: see mpack.h. */
#include "config.h"

#include "mpack.h"
#include "proto.h"

const msgpack_object *
mpr_get(const msgpack_object *m, const char *key)
{
	size_t klen = strlen(key);

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == klen &&
		    memcmp(kv->key.via.str.ptr, key, klen) == 0)
			return &kv->val;
	}
	return NULL;
}

bool
mpr_bytes(const msgpack_object *o, const char **p, size_t *len)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*p = o->via.str.ptr;
		*len = o->via.str.size;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_BIN) {
		*p = o->via.bin.ptr;
		*len = o->via.bin.size;
		return true;
	}
	return false;
}

bool
mpr_str(const msgpack_object *o, const char **p, size_t *len)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return false;
	*p = o->via.str.ptr;
	*len = o->via.str.size;
	return true;
}

bool
mpr_int(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= (uint64_t)INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	return false;
}

bool
mpr_uint(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

bool
mpr_bool(const msgpack_object *o, bool *v)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*v = o->via.boolean;
	return true;
}

bool
mpr_str_eq(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

void
mpw_init(struct mpw *w, void *data, msgpack_packer_write write)
{
	msgpack_packer_init(&w->pk, data, write);
	w->err = 0;
}

void
mpw_init_sbuffer(struct mpw *w, msgpack_sbuffer *sb)
{
	mpw_init(w, sb, msgpack_sbuffer_write);
}

void
mpw_error(struct mpw *w, int code, const char *message)
{
	mpw_map(w, 3);
	mpw_key(w, "code");
	mpw_i64(w, code);
	mpw_key(w, "name");
	mpw_str(w, dlm_proto_errname(code));
	mpw_key(w, "message");
	mpw_str(w, message != NULL ? message : dlm_proto_errdesc(code));
}
