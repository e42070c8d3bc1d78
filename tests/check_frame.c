/* Unit tests of the frame scanner and the msgpack helpers. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "frame.h"
#include "mpack.h"
#include "proto.h"

static enum frame_status
scan(const void *buf, size_t len, size_t *flen)
{
	return frame_scan(buf, len, 65536, DLM_MAX_DEPTH, flen);
}

START_TEST(whole_request)
{
	msgpack_sbuffer sb;
	struct mpw w;
	size_t flen = 0;

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, 4000000000u);
	mpw_str(&w, "hello");
	mpw_array(&w, 1);
	mpw_map(&w, 3);
	mpw_key(&w, "proto");
	mpw_i64(&w, 1);
	mpw_key(&w, "info");
	mpw_map(&w, 1);
	mpw_key(&w, "pid");
	mpw_i64(&w, -5);
	mpw_key(&w, "x");
	mpw_strn(&w, "0123456789012345678901234567890123456789", 40);
	ck_assert_int_eq(w.err, 0);
	ck_assert_int_eq(scan(sb.data, sb.size, &flen), FRAME_COMPLETE);
	ck_assert_uint_eq(flen, sb.size);
	/* Every proper prefix is incomplete, never an error. */
	for (size_t n = 0; n < sb.size; n++)
		ck_assert_int_eq(scan(sb.data, n, &flen), FRAME_INCOMPLETE);
	/* Two frames back to back: the first one's length. */
	msgpack_sbuffer_write(&sb, sb.data, sb.size);
	ck_assert_int_eq(scan(sb.data, sb.size, &flen), FRAME_COMPLETE);
	ck_assert_uint_eq(flen, sb.size / 2);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(scalars)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
	} ok[] = {
		{ "\x00", 1 }, { "\x7f", 1 }, { "\xe0", 1 }, { "\xc0", 1 },
		{ "\xc2", 1 }, { "\xc3", 1 }, { "\xcc\x01", 2 },
		{ "\xcd\x01\x02", 3 }, { "\xce\x01\x02\x03\x04", 5 },
		{ "\xcf\x01\x02\x03\x04\x05\x06\x07\x08", 9 },
		{ "\xd0\x01", 2 }, { "\xca\x00\x00\x00\x00", 5 },
		{ "\xa3" "abc", 4 }, { "\xd9\x03" "abc", 5 },
		{ "\xda\x00\x03" "abc", 6 }, { "\xc4\x02" "ab", 4 },
		{ "\xd4\x01\x02", 3 }, { "\xc7\x02\x01" "ab", 5 },
		{ "\x90", 1 }, { "\x80", 1 }, { "\xdc\x00\x00", 3 },
	};

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		size_t flen = 0;

		ck_assert_msg(scan(ok[i].bytes, ok[i].len, &flen) ==
		    FRAME_COMPLETE, "case %zu", i);
		ck_assert_uint_eq(flen, ok[i].len);
	}
}
END_TEST

START_TEST(invalid_byte)
{
	size_t flen;

	ck_assert_int_eq(scan("\xc1", 1, &flen), FRAME_INVALID);
	ck_assert_int_eq(scan("\x92\x01\xc1", 3, &flen), FRAME_INVALID);
}
END_TEST

START_TEST(declared_sizes_refused_early)
{
	size_t flen;

	/* An array declaring 4 billion elements: refused from 5 bytes. */
	ck_assert_int_eq(scan("\xdd\xff\xff\xff\xff", 5, &flen), FRAME_TOO_BIG);
	ck_assert_int_eq(scan("\xdf\x00\x01\x00\x00", 5, &flen), FRAME_TOO_BIG);
	ck_assert_int_eq(scan("\xdb\x00\x01\x00\x01", 5, &flen), FRAME_TOO_BIG);
	ck_assert_int_eq(scan("\xc6\x7f\xff\xff\xff", 5, &flen), FRAME_TOO_BIG);
	/* Exactly at the limit is fine, one over is not. */
	{
		char *buf = calloc(1, 65536);

		buf[0] = (char)0xdb;
		buf[1] = 0;
		buf[2] = 0;
		buf[3] = (char)((65536 - 5) >> 8);
		buf[4] = (char)((65536 - 5) & 0xff);
		ck_assert_int_eq(scan(buf, 65536, &flen), FRAME_COMPLETE);
		ck_assert_uint_eq(flen, 65536);
		buf[4] = (char)((65536 - 4) & 0xff);
		ck_assert_int_eq(scan(buf, 65536, &flen), FRAME_TOO_BIG);
		free(buf);
	}
}
END_TEST

START_TEST(many_small_elements_too_big)
{
	/* 70000 nils in an array32: each one byte, over 64 KiB in all. */
	size_t len = 5 + 70000, flen;
	unsigned char *buf = malloc(len);

	buf[0] = 0xdd;
	buf[1] = 0;
	buf[2] = 0x01;
	buf[3] = 0x11;
	buf[4] = 0x70;
	memset(buf + 5, 0xc0, 70000);
	ck_assert_int_eq(scan(buf, len, &flen), FRAME_TOO_BIG);
	free(buf);
}
END_TEST

START_TEST(depth)
{
	unsigned char buf[64];
	size_t flen;

	/* Five nested arrays are what the protocol needs (reclaim). */
	memset(buf, 0x91, 5);
	buf[5] = 0xc0;
	ck_assert_int_eq(scan(buf, 6, &flen), FRAME_COMPLETE);
	memset(buf, 0x91, 6);
	buf[6] = 0xc0;
	ck_assert_int_eq(scan(buf, 7, &flen), FRAME_TOO_DEEP);
	/* Deep nesting of empty containers counts too. */
	memset(buf, 0x91, 5);
	buf[5] = 0x90;
	ck_assert_int_eq(scan(buf, 6, &flen), FRAME_TOO_DEEP);
	/* A thousand levels: refused, not recursed into. */
	{
		unsigned char *deep = malloc(1000);

		memset(deep, 0x91, 1000);
		ck_assert_int_eq(scan(deep, 1000, &flen), FRAME_TOO_DEEP);
		free(deep);
	}
}
END_TEST

START_TEST(random_bytes_never_crash)
{
	unsigned seed = 7;
	unsigned char buf[256];

	for (int i = 0; i < 200000; i++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof buf), flen = 0;
		enum frame_status st;

		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)rand_r(&seed);
		st = frame_scan(buf, len, 200, DLM_MAX_DEPTH, &flen);
		if (st == FRAME_COMPLETE) {
			msgpack_zone zone;
			msgpack_object obj;
			size_t off = 0;

			/* What the scanner accepts, msgpack decodes exactly. */
			ck_assert_uint_le(flen, len);
			msgpack_zone_init(&zone, 1024);
			ck_assert_int_eq(msgpack_unpack((const char *)buf, flen,
			    &off, &zone, &obj), MSGPACK_UNPACK_SUCCESS);
			ck_assert_uint_eq(off, flen);
			msgpack_zone_destroy(&zone);
		}
	}
}
END_TEST

START_TEST(readers)
{
	msgpack_sbuffer sb;
	msgpack_zone zone;
	msgpack_object obj;
	const msgpack_object *o;
	struct mpw w;
	size_t off = 0, n;
	const char *p;
	int64_t i;
	uint64_t u;
	bool b;

	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_map(&w, 5);
	mpw_key(&w, "s");
	mpw_str(&w, "str");
	mpw_key(&w, "neg");
	mpw_i64(&w, -3);
	mpw_key(&w, "big");
	mpw_u64(&w, UINT64_MAX);
	mpw_key(&w, "t");
	mpw_bool(&w, true);
	mpw_key(&w, "bin");
	w.err |= msgpack_pack_bin_with_body(&w.pk, "b\0n", 3);
	ck_assert_int_eq(w.err, 0);
	msgpack_zone_init(&zone, 1024);
	ck_assert_int_eq(msgpack_unpack(sb.data, sb.size, &off, &zone, &obj),
	    MSGPACK_UNPACK_SUCCESS);
	ck_assert(mpr_str(mpr_get(&obj, "s"), &p, &n) && n == 3);
	ck_assert(mpr_int(mpr_get(&obj, "neg"), &i) && i == -3);
	ck_assert(!mpr_uint(mpr_get(&obj, "neg"), &u));
	ck_assert(!mpr_int(mpr_get(&obj, "big"), &i));
	ck_assert(mpr_uint(mpr_get(&obj, "big"), &u) && u == UINT64_MAX);
	ck_assert(mpr_bool(mpr_get(&obj, "t"), &b) && b);
	ck_assert(!mpr_str(mpr_get(&obj, "bin"), &p, &n));
	ck_assert(mpr_bytes(mpr_get(&obj, "bin"), &p, &n) && n == 3);
	ck_assert(mpr_str_eq(mpr_get(&obj, "s"), "str"));
	ck_assert(!mpr_str_eq(mpr_get(&obj, "s"), "st"));
	ck_assert_ptr_null(mpr_get(&obj, "missing"));
	o = mpr_get(&obj, "s");
	ck_assert_ptr_null(mpr_get(o, "s"));	/* not a map */
	msgpack_zone_destroy(&zone);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(error_names)
{
	for (int c = 0; c <= DLM_E_MAX; c++) {
		const char *name = dlm_proto_errname(c);

		ck_assert_int_eq(dlm_proto_errcode(name, strlen(name)), c);
		ck_assert_ptr_nonnull(dlm_proto_errdesc(c));
	}
	ck_assert_str_eq(dlm_proto_errname(DLM_E_TIMEOUT), "TIMEOUT");
	ck_assert_str_eq(dlm_proto_errname(DLM_E_UNSUPPORTED), "UNSUPPORTED");
	ck_assert_str_eq(dlm_proto_errname(99), "UNKNOWN");
	ck_assert_int_eq(dlm_proto_errcode("NOPE", 4), -1);
}
END_TEST

static Suite *
frame_suite(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, whole_request);
	tcase_add_test(tc, scalars);
	tcase_add_test(tc, invalid_byte);
	tcase_add_test(tc, readers);
	tcase_add_test(tc, error_names);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_add_test(tc, declared_sizes_refused_early);
	tcase_add_test(tc, many_small_elements_too_big);
	tcase_add_test(tc, depth);
	suite_add_tcase(s, tc);
	tc = tcase_create("faults");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_bytes_never_crash);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
