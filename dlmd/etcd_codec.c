/*
 * etcd's JSON gateway, the pure half: endpoint URLs, base64, 64-bit
 * integers sent as strings, the answers dlmd reads and the requests it
 * builds. No I/O, so that every check of what etcd sends can be unit-tested.
 *
 * etcd is a peer we chose, not one we trust blindly: an answer of the wrong
 * shape (a proxy's page, a newer etcd, a bit flip) is refused with a
 * sentence, never believed and never a crash.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dlmd.h"
#include "xmalloc.h"

static int __attribute__((format(printf, 3, 4)))
codec_fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* http://HOST:PORT, http://[V6]:PORT, with an optional final slash. */
int
etcd_endpoint_parse(const char *url, char *host, size_t hostlen,
    uint16_t *port, bool *tls, char *err, size_t errlen)
{
	const char *p, *end, *colon;
	unsigned long n;
	char *stop;
	size_t len;

	if (strncmp(url, "http://", 7) == 0) {
		*tls = false;
		p = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		*tls = true;
		p = url + 8;
	} else
		return codec_fail(err, errlen, "'%s' is not an http:// or "
		    "https:// URL", url);
	len = strlen(p);
	if (len > 0 && p[len - 1] == '/')
		len--;
	end = p + len;
	if (memchr(p, '/', len) != NULL || memchr(p, '@', len) != NULL)
		return codec_fail(err, errlen, "'%s': give only http://HOST:"
		    "PORT or https://HOST:PORT", url);
	if (*p == '[') {
		const char *rb = memchr(p, ']', len);

		if (rb == NULL || rb + 1 >= end || rb[1] != ':')
			return codec_fail(err, errlen, "'%s': an IPv6 address "
			    "is written [ADDR]:PORT", url);
		if ((size_t)(rb - p - 1) >= hostlen || rb == p + 1)
			return codec_fail(err, errlen, "'%s': bad host", url);
		memcpy(host, p + 1, (size_t)(rb - p - 1));
		host[rb - p - 1] = '\0';
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *q = p; q < end; q++)
			if (*q == ':')
				colon = q;
		if (colon == NULL || colon == p)
			return codec_fail(err, errlen, "'%s' has no HOST:PORT",
			    url);
		if ((size_t)(colon - p) >= hostlen ||
		    memchr(p, ':', (size_t)(colon - p)) != NULL)
			return codec_fail(err, errlen, "'%s': bad host", url);
		memcpy(host, p, (size_t)(colon - p));
		host[colon - p] = '\0';
	}
	if (colon + 1 >= end || colon[1] < '0' || colon[1] > '9')
		return codec_fail(err, errlen, "'%s' has no port", url);
	errno = 0;
	n = strtoul(colon + 1, &stop, 10);
	if (errno != 0 || stop != end || n == 0 || n > 65535)
		return codec_fail(err, errlen, "'%s': bad port", url);
	*port = (uint16_t)n;
	return 0;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

/* out holds base64_encoded_len(n) + 1 bytes; it is NUL-terminated. */
void
base64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *p = in;
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
		    p[i + 2];

		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = b64[(v >> 6) & 63];
		out[o++] = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
}

static int
b64_value(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

/*
 * Strict standard base64 with padding, as etcd sends it. Writes at most
 * outmax bytes; -1 for a bad character, bad padding or too long a result.
 */
int
base64_decode(const char *in, size_t n, void *out, size_t outmax,
    size_t *outlen)
{
	unsigned char *o = out;
	size_t len = 0;

	if (n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad > 0 || (v[j] = b64_value(in[i + j])) < 0)
				return -1;
		}
		if (len + 3 - (size_t)pad > outmax)
			return -1;
		o[len++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (pad < 2)
			o[len++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
		if (pad < 1)
			o[len++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
	}
	*outlen = len;
	return 0;
}

/* An int64 as etcd sends it: a decimal string (or, leniently, a number). */
int
etcd_json_int64(const json_t *j, int64_t *v)
{
	const char *s;
	char *end;
	long long x;

	if (json_is_integer(j)) {
		*v = json_integer_value(j);
		return 0;
	}
	if (!json_is_string(j))
		return -1;
	s = json_string_value(j);
	if (json_string_length(j) == 0 || json_string_length(j) > 20 ||
	    strlen(s) != json_string_length(j))
		return -1;
	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || (*s != '-' && (*s < '0' ||
	    *s > '9')))
		return -1;
	*v = x;
	return 0;
}

/* A member's int64, 0 when absent (etcd omits zero fields). */
static int
get_int64(const json_t *obj, const char *key, int64_t *v)
{
	const json_t *j = json_object_get(obj, key);

	*v = 0;
	if (j == NULL)
		return 0;
	return etcd_json_int64(j, v);
}

/* A base64 member decoded into a fresh NUL-terminated string. */
static int
get_bytes(const json_t *obj, const char *key, size_t max, char **out,
    size_t *outlen)
{
	const json_t *j = json_object_get(obj, key);
	size_t n, len;
	char *buf;

	*out = NULL;
	*outlen = 0;
	if (j == NULL) {
		*out = xstrdup("");
		return 0;
	}
	if (!json_is_string(j) || (n = json_string_length(j)) >
	    base64_encoded_len(max))
		return -1;
	buf = xmalloc(n / 4 * 3 + 1);
	if (base64_decode(json_string_value(j), n, buf, max, &len) != 0) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

void
etcd_kv_clear(struct etcd_kv *kv, size_t n)
{
	for (size_t i = 0; kv != NULL && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
		memset(&kv[i], 0, sizeof kv[i]);
	}
}

int
etcd_parse_header(const json_t *answer, int64_t *revision, char *err,
    size_t errlen)
{
	const json_t *h = json_object_get(answer, "header");

	if (!json_is_object(h) || get_int64(h, "revision", revision) != 0 ||
	    *revision < 0)
		return codec_fail(err, errlen, "an answer without a valid "
		    "header");
	return 0;
}

/*
 * The kvs of a range answer (or of a txn's response_range): at most max,
 * each key and value at most ETCD_KEY_MAX and ETCD_VALUE_MAX bytes. *n is
 * how many were filled; free them with etcd_kv_clear().
 */
int
etcd_parse_kvs(const json_t *range, struct etcd_kv *out, size_t max,
    size_t *n, char *err, size_t errlen)
{
	const json_t *kvs, *kv;
	size_t i;

	*n = 0;
	if (!json_is_object(range))
		return codec_fail(err, errlen, "a range answer is not an "
		    "object");
	if ((kvs = json_object_get(range, "kvs")) == NULL)
		return 0;
	if (!json_is_array(kvs))
		return codec_fail(err, errlen, "'kvs' is not an array");
	if (json_array_size(kvs) > max)
		return codec_fail(err, errlen, "%zu keys where at most %zu "
		    "were expected", json_array_size(kvs), max);
	json_array_foreach(kvs, i, kv) {
		struct etcd_kv *o = &out[*n];

		memset(o, 0, sizeof *o);
		if (!json_is_object(kv) ||
		    get_bytes(kv, "key", ETCD_KEY_MAX, &o->key,
		    &o->keylen) != 0 ||
		    get_bytes(kv, "value", ETCD_VALUE_MAX, &o->value,
		    &o->valuelen) != 0 ||
		    get_int64(kv, "create_revision", &o->create_revision) != 0 ||
		    get_int64(kv, "mod_revision", &o->mod_revision) != 0 ||
		    get_int64(kv, "lease", &o->lease) != 0) {
			etcd_kv_clear(o, 1);
			etcd_kv_clear(out, *n);
			*n = 0;
			return codec_fail(err, errlen, "a key of a range "
			    "answer is malformed");
		}
		(*n)++;
	}
	return 0;
}

int
etcd_parse_grant(const json_t *answer, int64_t *id, int64_t *ttl, char *err,
    size_t errlen)
{
	if (!json_is_object(answer) || get_int64(answer, "ID", id) != 0 ||
	    get_int64(answer, "TTL", ttl) != 0)
		return codec_fail(err, errlen, "a lease grant answer is "
		    "malformed");
	if (*id == 0 || *ttl <= 0)
		return codec_fail(err, errlen, "no lease was granted");
	return 0;
}

/*
 * A keepalive answer: {"result": {"ID": ..., "TTL": ...}}. etcd answers a
 * dead lease with no TTL: *ttl is then 0, and the lease is gone.
 */
int
etcd_parse_keepalive(const json_t *answer, int64_t id, int64_t *ttl,
    char *err, size_t errlen)
{
	const json_t *r = json_object_get(answer, "result");
	int64_t got;

	*ttl = 0;
	if (json_is_object(answer) && r == NULL &&
	    json_object_get(answer, "error") != NULL)
		return codec_fail(err, errlen, "etcd refused the keepalive");
	if (!json_is_object(r) || get_int64(r, "ID", &got) != 0 ||
	    get_int64(r, "TTL", ttl) != 0)
		return codec_fail(err, errlen, "a keepalive answer is "
		    "malformed");
	if (got != id)
		return codec_fail(err, errlen, "a keepalive answer for lease "
		    "%lld, not %lld", (long long)got, (long long)id);
	if (*ttl < 0)
		*ttl = 0;
	return 0;
}

/* A txn answer: whether the compares held, and its responses. */
int
etcd_parse_txn(const json_t *answer, bool *succeeded, int64_t *revision,
    const json_t **responses, char *err, size_t errlen)
{
	const json_t *ok, *r;

	if (!json_is_object(answer) ||
	    etcd_parse_header(answer, revision, err, errlen) != 0)
		return codec_fail(err, errlen, "a txn answer is malformed");
	ok = json_object_get(answer, "succeeded");
	if (ok != NULL && !json_is_boolean(ok))
		return codec_fail(err, errlen, "'succeeded' is not a boolean");
	*succeeded = ok != NULL && json_is_true(ok);
	r = json_object_get(answer, "responses");
	if (r != NULL && !json_is_array(r))
		return codec_fail(err, errlen, "'responses' is not an array");
	*responses = r;
	return 0;
}

/* The range answer of a txn's i-th response, or NULL. */
const json_t *
etcd_txn_range(const json_t *responses, size_t i)
{
	const json_t *r = json_array_get(responses, i);

	return json_is_object(r) ? json_object_get(r, "response_range") :
	    NULL;
}

static json_t *
b64_string(const char *p, size_t n)
{
	char *buf = xmalloc(base64_encoded_len(n) + 1);
	json_t *j;

	base64_encode(p, n, buf);
	j = json_string(buf);
	free(buf);
	if (j == NULL)
		fatalx("%s: out of memory", __func__);
	return j;
}

static json_t *
int64_string(int64_t v)
{
	char buf[24];
	json_t *j;

	snprintf(buf, sizeof buf, "%lld", (long long)v);
	if ((j = json_string(buf)) == NULL)
		fatalx("%s: out of memory", __func__);
	return j;
}

static json_t *
obj_new(void)
{
	json_t *j = json_object();

	if (j == NULL)
		fatalx("%s: out of memory", __func__);
	return j;
}

static void
obj_set(json_t *obj, const char *key, json_t *value)
{
	if (value == NULL || json_object_set_new(obj, key, value) != 0)
		fatalx("%s: out of memory", __func__);
}

/* {"key": K} or, for a prefix, {"key": K, "range_end": K+1}. */
json_t *
etcd_req_range(const char *key, bool prefix)
{
	json_t *r = obj_new();
	size_t n = strlen(key);

	obj_set(r, "key", b64_string(key, n));
	if (prefix && n > 0) {
		char *end = xstrdup(key);

		/* Keys here are printable ASCII, so the last byte can grow. */
		end[n - 1]++;
		obj_set(r, "range_end", b64_string(end, n));
		free(end);
	}
	return r;
}

json_t *
etcd_req_put(const char *key, const char *value, size_t valuelen,
    int64_t lease)
{
	json_t *r = obj_new();

	obj_set(r, "key", b64_string(key, strlen(key)));
	obj_set(r, "value", b64_string(value, valuelen));
	if (lease != 0)
		obj_set(r, "lease", int64_string(lease));
	return r;
}

/*
 * A compare of a key's target with v: target is "CREATE" (create_revision),
 * "MOD" (mod_revision) or "LEASE"; result "EQUAL".
 */
json_t *
etcd_cmp(const char *key, const char *target, int64_t v)
{
	json_t *c = obj_new();
	const char *field = strcmp(target, "CREATE") == 0 ?
	    "create_revision" : strcmp(target, "MOD") == 0 ? "mod_revision" :
	    "lease";

	obj_set(c, "key", b64_string(key, strlen(key)));
	obj_set(c, "target", json_string(target));
	obj_set(c, "result", json_string("EQUAL"));
	obj_set(c, field, int64_string(v));
	return c;
}

/* {"request_range": r} and the like, to list in a txn. */
json_t *
etcd_op(const char *kind, json_t *request)
{
	json_t *o = obj_new();

	obj_set(o, kind, request);
	return o;
}

/* A txn body; takes the three arrays (each may be NULL). */
json_t *
etcd_txn_body(json_t *compare, json_t *success, json_t *failure)
{
	json_t *t = obj_new();

	if (compare != NULL)
		obj_set(t, "compare", compare);
	if (success != NULL)
		obj_set(t, "success", success);
	if (failure != NULL)
		obj_set(t, "failure", failure);
	return t;
}

/* {"ID": "id"} or {"TTL": "s"}: lease requests. */
json_t *
etcd_req_lease(const char *field, int64_t v)
{
	json_t *r = obj_new();

	obj_set(r, field, int64_string(v));
	return r;
}

/* A JSON array of one element, which it takes. */
json_t *
etcd_one(json_t *element)
{
	json_t *a = json_array();

	if (a == NULL || json_array_append_new(a, element) != 0)
		fatalx("%s: out of memory", __func__);
	return a;
}
