/*
 * Small helpers over msgpack-c: typed look-ups in decoded maps, and a packer
 * that remembers the first failure so that callers check once per message
 * instead of after every call.
 */
#ifndef DLM_MPACK_H
#define DLM_MPACK_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <msgpack.h>

/* The value under a string key of a map, or NULL (also when m is no map). */
const msgpack_object *mpr_get(const msgpack_object *m, const char *key);
/* true when o is a str or bin; sets *p and *len (not NUL-terminated). */
bool		 mpr_bytes(const msgpack_object *o, const char **p, size_t *len);
/* true when o is a str. */
bool		 mpr_str(const msgpack_object *o, const char **p, size_t *len);
/* true when o is an integer that fits in int64_t. */
bool		 mpr_int(const msgpack_object *o, int64_t *v);
/* true when o is an integer >= 0. */
bool		 mpr_uint(const msgpack_object *o, uint64_t *v);
/* true when o is a boolean. */
bool		 mpr_bool(const msgpack_object *o, bool *v);
/* true when o's str equals s. */
bool		 mpr_str_eq(const msgpack_object *o, const char *s);

struct mpw {
	msgpack_packer	pk;
	int		err;
};

void	mpw_init(struct mpw *, void *data, msgpack_packer_write);
void	mpw_init_sbuffer(struct mpw *, msgpack_sbuffer *);

static inline void
mpw_map(struct mpw *w, uint32_t n)
{
	w->err |= msgpack_pack_map(&w->pk, n);
}

static inline void
mpw_array(struct mpw *w, uint32_t n)
{
	w->err |= msgpack_pack_array(&w->pk, n);
}

static inline void
mpw_strn(struct mpw *w, const char *s, size_t n)
{
	w->err |= msgpack_pack_str_with_body(&w->pk, s, n);
}

static inline void
mpw_str(struct mpw *w, const char *s)
{
	mpw_strn(w, s, strlen(s));
}

static inline void
mpw_u64(struct mpw *w, uint64_t v)
{
	w->err |= msgpack_pack_uint64(&w->pk, v);
}

static inline void
mpw_i64(struct mpw *w, int64_t v)
{
	w->err |= msgpack_pack_int64(&w->pk, v);
}

static inline void
mpw_bool(struct mpw *w, bool v)
{
	w->err |= v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk);
}

static inline void
mpw_nil(struct mpw *w)
{
	w->err |= msgpack_pack_nil(&w->pk);
}

static inline void
mpw_bin(struct mpw *w, const void *p, size_t n)
{
	w->err |= msgpack_pack_bin_with_body(&w->pk, p, n);
}

/* A map entry with a string key. */
static inline void
mpw_key(struct mpw *w, const char *key)
{
	mpw_str(w, key);
}

/* The error map of a response: {"code", "name", "message"}. */
void	mpw_error(struct mpw *, int code, const char *message);

#endif
