/*
 * Unit tests of etcd_codec.c: endpoint URLs, base64, and the reading of
 * etcd's answers, hostile ones included. No etcd, no sockets.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "dlmd.h"

static json_t *
parse(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	ck_assert_msg(j != NULL, "bad test JSON: %s", text);
	return j;
}

START_TEST(endpoints)
{
	static const char *bad[] = {
		"", "http://", "https://", "ftp://a:1", "https:/a:1", "a:1", "http://a", "http://a:",
		"http://a:0", "http://a:65536", "http://a:1x", "http://a:1/v3",
		"http://u@a:1", "http://[::1]", "http://[::1:2", "http://:1",
		"http://[]:1", "http://a:b:1", "https://a", "https://u@a:1",
		"https://a:1/v3", "HTTPS://a:1",
	};
	char host[64], err[200];
	uint16_t port;
	bool tls;

	ck_assert_int_eq(etcd_endpoint_parse("http://127.0.0.1:2379", host,
	    sizeof host, &port, &tls, err, sizeof err), 0);
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 2379);
	ck_assert(!tls);
	ck_assert_int_eq(etcd_endpoint_parse("https://etcd-2.example:2379",
	    host, sizeof host, &port, &tls, err, sizeof err), 0);
	ck_assert_str_eq(host, "etcd-2.example");
	ck_assert_uint_eq(port, 2379);
	ck_assert(tls);
	ck_assert_int_eq(etcd_endpoint_parse("http://etcd-1.example:23/",
	    host, sizeof host, &port, &tls, err, sizeof err), 0);
	ck_assert_str_eq(host, "etcd-1.example");
	ck_assert_uint_eq(port, 23);
	ck_assert_int_eq(etcd_endpoint_parse("http://[::1]:65535", host,
	    sizeof host, &port, &tls, err, sizeof err), 0);
	ck_assert_str_eq(host, "::1");
	ck_assert_uint_eq(port, 65535);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(etcd_endpoint_parse(bad[i], host, sizeof host,
		    &port, &tls, err, sizeof err) == -1, "'%s' was accepted", bad[i]);
	/* A host longer than the buffer is refused, not cut. */
	ck_assert_int_eq(etcd_endpoint_parse("http://abcdefghij:1", host, 5,
	    &port, &tls, err, sizeof err), -1);
}
END_TEST

START_TEST(base64_round_trips)
{
	static const struct { const char *plain, *coded; } v[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
		{ "dlm/active", "ZGxtL2FjdGl2ZQ==" },
	};
	char out[64], back[64];
	size_t n;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t len = strlen(v[i].plain);

		ck_assert_uint_eq(base64_encoded_len(len), strlen(v[i].coded));
		base64_encode(v[i].plain, len, out);
		ck_assert_str_eq(out, v[i].coded);
		ck_assert_int_eq(base64_decode(out, strlen(out), back,
		    sizeof back, &n), 0);
		ck_assert_uint_eq(n, len);
		ck_assert_int_eq(memcmp(back, v[i].plain, n), 0);
	}
	/* Every byte value survives. */
	{
		unsigned char all[256], got[256];
		char coded[400];

		for (int i = 0; i < 256; i++)
			all[i] = (unsigned char)i;
		base64_encode(all, sizeof all, coded);
		ck_assert_int_eq(base64_decode(coded, strlen(coded), got,
		    sizeof got, &n), 0);
		ck_assert_uint_eq(n, 256);
		ck_assert_int_eq(memcmp(all, got, 256), 0);
		/* One byte short of room: refused, not overrun. */
		ck_assert_int_eq(base64_decode(coded, strlen(coded), got, 255,
		    &n), -1);
	}
}
END_TEST

START_TEST(base64_refuses_garbage)
{
	static const char *bad[] = {
		"Z", "Zg=", "Zg===", "=Zg=", "Z=g=", "Zm9v!A==", "Zm 9",
		"Zg==Zg==", "Zm9=v", "Z===",
	};
	char out[32];
	size_t n;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), out,
		    sizeof out, &n) == -1, "'%s' was decoded", bad[i]);
}
END_TEST

START_TEST(int64_strings)
{
	static const char *bad[] = {
		"\"\"", "\"-\"", "\"+1\"", "\" 1\"", "\"1 \"", "\"0x10\"",
		"\"99999999999999999999\"", "\"1e3\"", "1.5", "true", "null",
		"[]", "{}",
	};
	int64_t v;
	json_t *j;

	j = parse("[\"9223372036854775807\", \"-12\", 42]");
	ck_assert_int_eq(etcd_json_int64(json_array_get(j, 0), &v), 0);
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert_int_eq(etcd_json_int64(json_array_get(j, 1), &v), 0);
	ck_assert_int_eq(v, -12);
	ck_assert_int_eq(etcd_json_int64(json_array_get(j, 2), &v), 0);
	ck_assert_int_eq(v, 42);
	json_decref(j);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		j = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		ck_assert_ptr_nonnull(j);
		ck_assert_msg(etcd_json_int64(j, &v) == -1, "%s was read",
		    bad[i]);
		json_decref(j);
	}
}
END_TEST

/* The answers as etcd 3.4 sends them (zero fields left out). */
START_TEST(answers)
{
	char err[200];
	int64_t id, ttl, rev;
	const json_t *resp;
	struct etcd_kv kv[2];
	bool ok;
	size_t n;
	json_t *j;

	j = parse("{\"header\":{\"revision\":\"1\"},"
	    "\"ID\":\"2324035718735923716\",\"TTL\":\"3\"}");
	ck_assert_int_eq(etcd_parse_grant(j, &id, &ttl, err, sizeof err), 0);
	ck_assert_int_eq(id, 2324035718735923716LL);
	ck_assert_int_eq(ttl, 3);
	json_decref(j);

	/* A keepalive of a dead lease: HTTP 200 and no TTL. */
	j = parse("{\"result\":{\"header\":{\"revision\":\"2\"},"
	    "\"ID\":\"12345\"}}");
	ck_assert_int_eq(etcd_parse_keepalive(j, 12345, &ttl, err,
	    sizeof err), 0);
	ck_assert_int_eq(ttl, 0);
	ck_assert_int_eq(etcd_parse_keepalive(j, 99, &ttl, err, sizeof err),
	    -1);
	json_decref(j);
	j = parse("{\"result\":{\"ID\":\"7\",\"TTL\":\"6\"}}");
	ck_assert_int_eq(etcd_parse_keepalive(j, 7, &ttl, err, sizeof err), 0);
	ck_assert_int_eq(ttl, 6);
	json_decref(j);

	/* A losing txn has no "succeeded"; its range shows the winner. */
	j = parse("{\"header\":{\"revision\":\"2\"},\"responses\":[{"
	    "\"response_range\":{\"header\":{\"revision\":\"2\"},\"kvs\":[{"
	    "\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\","
	    "\"version\":\"1\",\"value\":\"YmFy\",\"lease\":\"77\"}],"
	    "\"count\":\"1\"}}]}");
	ck_assert_int_eq(etcd_parse_txn(j, &ok, &rev, &resp, err, sizeof err),
	    0);
	ck_assert(!ok);
	ck_assert_int_eq(rev, 2);
	ck_assert_int_eq(etcd_parse_kvs(etcd_txn_range(resp, 0), kv, 2, &n,
	    err, sizeof err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(kv[0].key, "foo");
	ck_assert_str_eq(kv[0].value, "bar");
	ck_assert_int_eq(kv[0].create_revision, 2);
	ck_assert_int_eq(kv[0].lease, 77);
	etcd_kv_clear(kv, n);
	ck_assert_ptr_null(etcd_txn_range(resp, 1));
	json_decref(j);

	j = parse("{\"header\":{\"revision\":\"9\"},\"succeeded\":true,"
	    "\"responses\":[{\"response_put\":{\"header\":{}}}]}");
	ck_assert_int_eq(etcd_parse_txn(j, &ok, &rev, &resp, err, sizeof err),
	    0);
	ck_assert(ok);
	ck_assert_int_eq(rev, 9);
	json_decref(j);

	/* An empty range: no kvs at all. */
	j = parse("{\"header\":{\"revision\":\"1\"}}");
	ck_assert_int_eq(etcd_parse_kvs(j, kv, 1, &n, err, sizeof err), 0);
	ck_assert_uint_eq(n, 0);
	json_decref(j);
}
END_TEST

START_TEST(hostile_answers)
{
	static const char *kvs_bad[] = {
		"{\"kvs\":{}}",
		"{\"kvs\":[1]}",
		"{\"kvs\":[{\"key\":5}]}",
		"{\"kvs\":[{\"key\":\"!!\"}]}",
		"{\"kvs\":[{\"key\":\"Zm9v\",\"value\":\"Zg=\"}]}",
		"{\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"x\"}]}",
		"{\"kvs\":[{\"key\":\"Zm9v\",\"lease\":[]}]}",
		/* More keys than asked for: refused, not overrun. */
		"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"Yg==\"}]}",
		/* The second is bad: the first is freed, none returned. */
		"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":1}]}",
	};
	static const char *txn_bad[] = {
		"[]", "{}", "{\"header\":[]}",
		"{\"header\":{\"revision\":\"-1\"}}",
		"{\"header\":{\"revision\":\"1\"},\"succeeded\":\"yes\"}",
		"{\"header\":{\"revision\":\"1\"},\"responses\":{}}",
	};
	static const char *grant_bad[] = {
		"{}", "{\"ID\":\"0\",\"TTL\":\"5\"}", "{\"ID\":\"1\"}",
		"{\"ID\":\"1\",\"TTL\":\"-5\"}", "{\"ID\":true,\"TTL\":\"5\"}",
		"[1]",
	};
	static const char *keepalive_bad[] = {
		"{}", "{\"result\":5}", "{\"result\":{\"ID\":\"x\"}}",
		"{\"error\":\"boom\",\"code\":14}",
		"{\"result\":{\"ID\":\"1\",\"TTL\":{}}}",
	};
	struct etcd_kv kv[1];
	const json_t *resp;
	char err[200];
	int64_t a, b;
	bool ok;
	size_t n;
	json_t *j;

	for (size_t i = 0; i < sizeof kvs_bad / sizeof kvs_bad[0]; i++) {
		j = parse(kvs_bad[i]);
		ck_assert_msg(etcd_parse_kvs(j, kv, 1, &n, err, sizeof err) ==
		    -1, "%s was read", kvs_bad[i]);
		ck_assert_uint_eq(n, 0);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof txn_bad / sizeof txn_bad[0]; i++) {
		j = parse(txn_bad[i]);
		ck_assert_msg(etcd_parse_txn(j, &ok, &a, &resp, err,
		    sizeof err) == -1, "%s was read", txn_bad[i]);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof grant_bad / sizeof grant_bad[0]; i++) {
		j = parse(grant_bad[i]);
		ck_assert_msg(etcd_parse_grant(j, &a, &b, err, sizeof err) ==
		    -1, "%s was read", grant_bad[i]);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof keepalive_bad / sizeof keepalive_bad[0];
	    i++) {
		j = parse(keepalive_bad[i]);
		ck_assert_msg(etcd_parse_keepalive(j, 1, &a, err, sizeof err)
		    == -1, "%s was read", keepalive_bad[i]);
		json_decref(j);
	}
	/* A value longer than any of ours is refused. */
	{
		size_t big = ETCD_VALUE_MAX + 1;
		char *plain = malloc(big), *coded = malloc(big * 2), *text;

		ck_assert_ptr_nonnull(plain);
		ck_assert_ptr_nonnull(coded);
		memset(plain, 'x', big);
		base64_encode(plain, big, coded);
		text = malloc(strlen(coded) + 64);
		ck_assert_ptr_nonnull(text);
		sprintf(text, "{\"kvs\":[{\"key\":\"YQ==\",\"value\":\"%s\"}]}",
		    coded);
		j = parse(text);
		ck_assert_int_eq(etcd_parse_kvs(j, kv, 1, &n, err, sizeof err),
		    -1);
		json_decref(j);
		free(plain);
		free(coded);
		free(text);
	}
}
END_TEST

/* The requests built are what the gateway takes. */
START_TEST(requests)
{
	json_t *j = etcd_txn_body(
	    etcd_one(etcd_cmp("dlm/active", "CREATE", 0)),
	    etcd_one(etcd_op("request_put", etcd_req_put("dlm/active", "v", 1,
	    77))),
	    etcd_one(etcd_op("request_range", etcd_req_range("dlm/members/",
	    true))));
	char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	ck_assert_str_eq(text, "{\"compare\":[{\"create_revision\":\"0\","
	    "\"key\":\"ZGxtL2FjdGl2ZQ==\",\"result\":\"EQUAL\",\"target\":"
	    "\"CREATE\"}],\"failure\":[{\"request_range\":{\"key\":"
	    "\"ZGxtL21lbWJlcnMv\",\"range_end\":\"ZGxtL21lbWJlcnMw\"}}],"
	    "\"success\":[{\"request_put\":{\"key\":\"ZGxtL2FjdGl2ZQ==\","
	    "\"lease\":\"77\",\"value\":\"dg==\"}}]}");
	free(text);
	json_decref(j);
	j = etcd_cmp("k", "MOD", 12);
	ck_assert_str_eq(json_string_value(json_object_get(j, "mod_revision")),
	    "12");
	json_decref(j);
}
END_TEST

static Suite *
etcd_suite(void)
{
	Suite *s = suite_create("etcd");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, endpoints);
	tcase_add_test(tc, base64_round_trips);
	tcase_add_test(tc, base64_refuses_garbage);
	tcase_add_test(tc, int64_strings);
	tcase_add_test(tc, answers);
	tcase_add_test(tc, hostile_answers);
	tcase_add_test(tc, requests);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(etcd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
