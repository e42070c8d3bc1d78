/*
 * Unit tests of the receipts (dlmd/receipt.c): a known answer computed
 * apart from nettle, and every field of a claim bound, so that no altered
 * claim passes for the one a receipt was given for.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "receipt.h"

static uint8_t raw[RECEIPT_KEY_LEN];
static struct receipt_key key;
static const char secret[] = "0123456789abcdef0123456789abcdef";

static struct receipt_who
who(const char *name)
{
	for (int i = 0; i < RECEIPT_KEY_LEN; i++)
		raw[i] = (uint8_t)i;
	receipt_key_set(&key, raw);
	return (struct receipt_who){ &key, "prod", name, strlen(name), secret,
	    strlen(secret) };
}

static struct receipt_claim
claim(void)
{
	return (struct receipt_claim){ "jobs", 4, 1, 1, 3, 1234567890123ULL, 0,
	    0 };
}

static void
from_hex(const char *hex, uint8_t *out)
{
	for (int i = 0; i < RECEIPT_LEN; i++) {
		char b[3] = { hex[2 * i], hex[2 * i + 1], '\0' };

		out[i] = (uint8_t)strtoul(b, NULL, 16);
	}
}

/* Computed with Python's hmac over the encoding receipt.c documents. */
START_TEST(known_answers)
{
	struct receipt_who w = who("worker-1");
	struct receipt_claim c = claim();
	uint8_t got[RECEIPT_LEN], want[RECEIPT_LEN];

	receipt_hold(&w, &c, got);
	from_hex("1561d2e35b49bc8c3dd25701d6fe0b1c059bee151158bc9bcf42cc11421e"
	    "08e3", want);
	ck_assert_mem_eq(got, want, RECEIPT_LEN);
	receipt_session(&w, got);
	from_hex("53105623bf592473759bf6d44198f6945adf98daa09623146ed540699f4f"
	    "5f72", want);
	ck_assert_mem_eq(got, want, RECEIPT_LEN);
	/* A semaphore's hold: 3 permits of a capacity of 5. */
	c = (struct receipt_claim){ "jobs", 4, 2, 0, 1, 1234567890123ULL, 3,
	    5 };
	receipt_hold(&w, &c, got);
	from_hex("631e1b51ef0390802293fbb9fb4c1aeeb8cce7eac70055b1c633fc9c77ab"
	    "5bd2", want);
	ck_assert_mem_eq(got, want, RECEIPT_LEN);
}
END_TEST

/*
 * One session's prefix, made once, serves each of its grants, whatever
 * the lengths of its name and the lock's around SHA-256's 64-byte blocks.
 */
START_TEST(one_prefix_serves_every_grant)
{
	static const size_t names[] = { 1, 8, 40, 64, 100, 300 };
	static const size_t locks[] = { 1, 4, 30, 55, 64, 200, 1000 };
	char name[301], lock[1001];
	uint8_t got[RECEIPT_LEN], want[RECEIPT_LEN];

	memset(name, 'n', sizeof name);
	memset(lock, 'l', sizeof lock);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct receipt_who w = { &key, "prod", name, names[i], secret,
		    strlen(secret) };
		struct receipt_prefix p;

		(void)who("unused");	/* sets the key */
		receipt_hold_prefix(&w, &p);
		for (size_t j = 0; j < sizeof locks / sizeof locks[0]; j++) {
			struct receipt_claim c = { lock, locks[j], 0, 1,
			    (uint32_t)j + 1, 1000 + j, 0, 0 };

			receipt_hold_from(&key, &p, &c, got);
			receipt_hold(&w, &c, want);
			ck_assert_mem_eq(got, want, RECEIPT_LEN);
		}
	}
}
END_TEST

/* Each way of altering a claim gives another receipt. */
START_TEST(every_field_is_bound)
{
	struct receipt_who w = who("worker-1"), w2;
	struct receipt_claim c = claim(), c2;
	struct receipt_key other;
	uint8_t base[RECEIPT_LEN], r[RECEIPT_LEN];

	receipt_hold(&w, &c, base);
	receipt_hold(&w, &c, r);
	ck_assert(receipt_equal(base, r, RECEIPT_LEN));

	c2 = c; c2.token++;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2 = c; c2.count++;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2 = c; c2.mode = 0;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2 = c; c2.kind = 0;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2 = c; c2.lock = "jobz";
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	/* A semaphore's permits and capacity. */
	c2 = c; c2.capacity = 5; c2.permits = 3;
	receipt_hold(&w, &c2, base);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2.permits = 2;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	c2.permits = 3; c2.capacity = 6;
	receipt_hold(&w, &c2, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	receipt_hold(&w, &c, base);

	w2 = who("worker-2");
	receipt_hold(&w2, &c, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	w2 = w; w2.secret = "1123456789abcdef0123456789abcdef";
	receipt_hold(&w2, &c, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	w2 = w; w2.cluster = "test";
	receipt_hold(&w2, &c, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	w2 = w;
	raw[0] ^= 1;
	receipt_key_set(&other, raw);
	w2.key = &other;
	receipt_hold(&w2, &c, r);
	ck_assert(!receipt_equal(base, r, RECEIPT_LEN));
	/* Keyed once, used many times: the keyed state is not consumed. */
	receipt_hold(&w, &c, r);
	ck_assert(receipt_equal(base, r, RECEIPT_LEN));
}
END_TEST

/* Lengths are part of the input: moving bytes between fields shows. */
START_TEST(fields_do_not_run_together)
{
	struct receipt_who a = who("ab"), b = who("a");
	struct receipt_claim ca = claim(), cb = claim();
	uint8_t ra[RECEIPT_LEN], rb[RECEIPT_LEN];

	ca.lock = "c";
	ca.locklen = 1;
	cb.lock = "bc";
	cb.locklen = 2;
	receipt_hold(&a, &ca, ra);
	receipt_hold(&b, &cb, rb);
	ck_assert(!receipt_equal(ra, rb, RECEIPT_LEN));
	/* A session's receipt is not a hold's, whatever the fields. */
	receipt_session(&a, rb);
	ck_assert(!receipt_equal(ra, rb, RECEIPT_LEN));
}
END_TEST

START_TEST(compare_checks_length_and_every_byte)
{
	struct receipt_who w = who("worker-1");
	uint8_t r[RECEIPT_LEN], x[RECEIPT_LEN + 1];

	receipt_session(&w, r);
	memcpy(x, r, RECEIPT_LEN);
	x[RECEIPT_LEN] = 0;
	ck_assert(receipt_equal(r, x, RECEIPT_LEN));
	ck_assert(!receipt_equal(r, x, RECEIPT_LEN + 1));
	ck_assert(!receipt_equal(r, x, RECEIPT_LEN - 1));
	ck_assert(!receipt_equal(r, x, 0));
	for (int i = 0; i < RECEIPT_LEN; i++) {
		x[i] ^= 0x80;
		ck_assert(!receipt_equal(r, x, RECEIPT_LEN));
		x[i] ^= 0x80;
	}
}
END_TEST

static Suite *
receipt_suite(void)
{
	Suite *s = suite_create("receipt");
	TCase *tc = tcase_create("mac");

	tcase_add_test(tc, known_answers);
	tcase_add_test(tc, one_prefix_serves_every_grant);
	tcase_add_test(tc, every_field_is_bound);
	tcase_add_test(tc, fields_do_not_run_together);
	tcase_add_test(tc, compare_checks_length_and_every_byte);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(receipt_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
