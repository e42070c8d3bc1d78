/*
 * Receipts: what lets a new active believe a client's claim to a session
 * and its holds without any state of the active that granted them. Each is
 * an HMAC-SHA256, keyed by the cluster's secret (kept in etcd, the same for
 * every member), over an unambiguous encoding of what it vouches for:
 *
 *   session: "dlm-session-1", cluster name, session name, session secret
 *   hold:    "dlm-hold-1", cluster name, session name, session secret,
 *	      lock, kind, mode, count, token[, permits, capacity]
 *
 * every string preceded by its length (32 bits, big-endian) and every
 * number big-endian, so no two different claims share an input. A
 * semaphore's hold (capacity not 0) adds its permits and capacity; other
 * holds' receipts are what they were before semaphores, and as every
 * field before them has a fixed length, the two never share an input. The
 * session's secret is in both: a hold's receipt is worth nothing without
 * the secret of the very session it was given to, and not to a later
 * session that took the same name.
 *
 * Pure: no clock, no I/O, no global state; tests/check_receipt.c.
 */
#include "config.h"

#include <string.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "receipt.h"

static void
put_bytes(struct hmac_sha256_ctx *h, const void *p, size_t len)
{
	uint8_t n[4];

	n[0] = (uint8_t)(len >> 24);
	n[1] = (uint8_t)(len >> 16);
	n[2] = (uint8_t)(len >> 8);
	n[3] = (uint8_t)len;
	hmac_sha256_update(h, sizeof n, n);
	hmac_sha256_update(h, len, p);
}

static void
put_u64(struct hmac_sha256_ctx *h, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	hmac_sha256_update(h, sizeof b, b);
}

/*
 * Key k with the cluster's secret. Hashing the key is two of the six
 * SHA-256 blocks of a hold's receipt; done once here, a grant saves them.
 */
void
receipt_key_set(struct receipt_key *k, const uint8_t secret[RECEIPT_KEY_LEN])
{
	hmac_sha256_set_key(&k->keyed, RECEIPT_KEY_LEN, secret);
}

static void
start(struct hmac_sha256_ctx *h, const struct receipt_who *who,
    const char *what)
{
	*h = who->key->keyed;
	put_bytes(h, what, strlen(what));
	put_bytes(h, who->cluster, strlen(who->cluster));
	put_bytes(h, who->name, who->namelen);
	put_bytes(h, who->secret, who->secretlen);
}

void
receipt_session(const struct receipt_who *who, uint8_t out[RECEIPT_LEN])
{
	struct hmac_sha256_ctx h;

	start(&h, who, "dlm-session-1");
	hmac_sha256_digest(&h, RECEIPT_LEN, out);
}

void
receipt_hold_prefix(const struct receipt_who *who, struct receipt_prefix *p)
{
	struct hmac_sha256_ctx h;

	start(&h, who, "dlm-hold-1");
	p->inner = h.state;
}

void
receipt_hold_from(const struct receipt_key *k, const struct receipt_prefix *p,
    const struct receipt_claim *c, uint8_t out[RECEIPT_LEN])
{
	/* HMAC's outer and inner pads from the key, its running hash ours. */
	struct hmac_sha256_ctx h = k->keyed;

	h.state = p->inner;
	put_bytes(&h, c->lock, c->locklen);
	put_u64(&h, c->kind);
	put_u64(&h, c->mode);
	put_u64(&h, c->count);
	put_u64(&h, c->token);
	if (c->capacity != 0) {
		put_u64(&h, c->permits);
		put_u64(&h, c->capacity);
	}
	hmac_sha256_digest(&h, RECEIPT_LEN, out);
}

void
receipt_hold(const struct receipt_who *who, const struct receipt_claim *c,
    uint8_t out[RECEIPT_LEN])
{
	struct receipt_prefix p;

	receipt_hold_prefix(who, &p);
	receipt_hold_from(who->key, &p, c, out);
}

/* In time that does not depend on where they differ. */
bool
receipt_equal(const uint8_t want[RECEIPT_LEN], const void *got, size_t len)
{
	return len == RECEIPT_LEN && memeql_sec(want, got, RECEIPT_LEN) != 0;
}
