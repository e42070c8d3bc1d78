/*
 * Receipts: MACs under the cluster's secret that prove a session and its
 * holds to a new active after a fail-over (receipt.c says how).
 */
#ifndef DLMD_RECEIPT_H
#define DLMD_RECEIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/hmac.h>

#define RECEIPT_LEN	32	/* bytes of a receipt */
#define RECEIPT_KEY_LEN	32	/* bytes of the cluster's secret */

/*
 * The cluster's secret, keyed once: HMAC's state right after the key, so
 * that a receipt (one per grant) does not hash the key again.
 */
struct receipt_key {
	struct hmac_sha256_ctx	keyed;
};

/* Whose receipt: the key, the cluster, and the session. */
struct receipt_who {
	const struct receipt_key *key;
	const char	*cluster;	/* NUL-terminated */
	const char	*name;
	size_t		 namelen;
	const char	*secret;
	size_t		 secretlen;
};

/* A hold, as a receipt vouches for it. */
struct receipt_claim {
	const char	*lock;
	size_t		 locklen;
	unsigned	 kind;		/* enum lt_kind */
	unsigned	 mode;		/* enum lt_mode */
	uint32_t	 count;
	uint64_t	 token;
	/* A semaphore's (capacity not 0); 0 for other kinds. */
	uint32_t	 permits;
	uint32_t	 capacity;
};

void	receipt_key_set(struct receipt_key *,
	    const uint8_t secret[RECEIPT_KEY_LEN]);
void	receipt_session(const struct receipt_who *, uint8_t out[RECEIPT_LEN]);
void	receipt_hold(const struct receipt_who *, const struct receipt_claim *,
	    uint8_t out[RECEIPT_LEN]);

/*
 * Every hold receipt of a session starts with the same bytes (the session
 * and its secret): the MAC's state after them, made once per session, so
 * that a grant hashes only its own claim (two SHA-256 blocks for a short
 * lock name, not four). receipt_hold_from() gives receipt_hold()'s bytes.
 */
struct receipt_prefix {
	struct sha256_ctx	inner;
};
void	receipt_hold_prefix(const struct receipt_who *,
	    struct receipt_prefix *);
void	receipt_hold_from(const struct receipt_key *,
	    const struct receipt_prefix *, const struct receipt_claim *,
	    uint8_t out[RECEIPT_LEN]);
/* got (len bytes, from the network) is want, compared in constant time. */
bool	receipt_equal(const uint8_t want[RECEIPT_LEN], const void *got,
	    size_t len);

#endif
