/*
 * Results arrive as MessagePack and leave as JSON or tables: convert once,
 * into jansson values, and read fields from those. Every string is
 * escaped on the way in (name.c), so that no output path can forget to.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dlmctl.h"
#include "xmalloc.h"

/* Bytes from the server, escaped once here for every output. */
static json_t *
json_from_bytes(const char *s, size_t n)
{
	char *shown = name_escape(s, n);
	json_t *v = json_string(shown);

	free(shown);
	return v;
}

static json_t *
convert(const msgpack_object *o)
{
	json_t *v;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return json_from_bytes(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return json_from_bytes(o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_ARRAY:
		if ((v = json_array()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			json_t *e = convert(&o->via.array.ptr[i]);

			if (e == NULL || json_array_append_new(v, e) != 0) {
				json_decref(v);
				return NULL;
			}
		}
		return v;
	case MSGPACK_OBJECT_MAP:
		if ((v = json_object()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char *key;
			json_t *e;

			/* The protocol's keys are strings; skip anything else. */
			if (kv->key.type != MSGPACK_OBJECT_STR)
				continue;
			if ((key = strndup(kv->key.via.str.ptr,
			    kv->key.via.str.size)) == NULL ||
			    (e = convert(&kv->val)) == NULL) {
				free(key);
				json_decref(v);
				return NULL;
			}
			(void)json_object_set_new(v, key, e);
			free(key);
		}
		return v;
	default:
		return json_null();	/* extension types: not ours */
	}
}

json_t *
value_from_msgpack(const void *data, size_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	json_t *v = NULL;

	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, data, len, &off) == MSGPACK_UNPACK_SUCCESS)
		v = convert(&u.data);
	msgpack_unpacked_destroy(&u);
	return v;
}

json_t *
value_from_object(const msgpack_object *o)
{
	return convert(o);
}

static int
pack(msgpack_packer *pk, json_t *v)
{
	const char *key;
	json_t *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (msgpack_pack_map(pk, json_object_size(v)) != 0)
			return -1;
		json_object_foreach(v, key, e) {
			if (msgpack_pack_str_with_body(pk, key, strlen(key)) ||
			    pack(pk, e) != 0)
				return -1;
		}
		return 0;
	case JSON_ARRAY:
		if (msgpack_pack_array(pk, json_array_size(v)) != 0)
			return -1;
		json_array_foreach(v, i, e)
			if (pack(pk, e) != 0)
				return -1;
		return 0;
	case JSON_STRING:
		return msgpack_pack_str_with_body(pk, json_string_value(v),
		    json_string_length(v));
	case JSON_INTEGER:
		return msgpack_pack_int64(pk, json_integer_value(v));
	case JSON_REAL:
		return msgpack_pack_double(pk, json_real_value(v));
	case JSON_TRUE:
		return msgpack_pack_true(pk);
	case JSON_FALSE:
		return msgpack_pack_false(pk);
	case JSON_NULL:
		return msgpack_pack_nil(pk);
	}
	return -1;
}

int
value_to_msgpack(json_t *v, char **data, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (pack(&pk, v) != 0) {
		msgpack_sbuffer_destroy(&sb);
		return -1;
	}
	*len = sb.size;
	*data = msgpack_sbuffer_release(&sb);
	return 0;
}

const char *
value_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

uint64_t
value_uint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ?
		    (uint64_t)json_integer_value(v) : 0;
	if (json_is_real(v) && json_real_value(v) > 0)
		return (uint64_t)json_real_value(v);
	return 0;
}

bool
value_bool(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

/*
 * jansson holds any bytes with their length; pack() sends them as they
 * are. Such a string is never printed, only sent.
 */
json_t *
value_bytes(const char *p, size_t len)
{
	return json_stringn_nocheck(p, len);
}

json_t *
value_unescaped(json_t *shown)
{
	char why[100], *bytes;
	size_t len;
	json_t *v;

	if (!json_is_string(shown) || name_unescape(json_string_value(shown),
	    &bytes, &len, why, sizeof why) != 0)
		return NULL;
	v = value_bytes(bytes, len);
	free(bytes);
	return v;
}

char *
value_shown(json_t *holder, size_t max)
{
	json_t *v = json_object_get(holder, "value");
	char why[100], *bytes, *text;
	size_t len;

	if (!json_is_string(v) || name_unescape(json_string_value(v), &bytes,
	    &len, why, sizeof why) != 0)
		return xstrdup("-");
	text = value_text(bytes, len, max);
	free(bytes);
	return text;
}
