/* MessagePack frame scanner: see frame.h for why it exists. */
#include "config.h"

#include <stdint.h>

#include "frame.h"

#define FRAME_STACK_MAX	64

static uint64_t
be_uint(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * What a type byte says about the object it starts: how many bytes its header
 * takes, where its length sits in that header (len_bytes after the type byte),
 * how many payload bytes follow without a length field, and whether it is a
 * container (elements per declared count: 1 for arrays, 2 for maps).
 */
struct frame_hdr {
	unsigned	hdr;		/* bytes of type byte + length + ext type */
	unsigned	len_bytes;	/* size of the big-endian length field */
	uint64_t	fixed;		/* payload bytes when no length field */
	unsigned	per_item;	/* 0: scalar; 1: array; 2: map */
	int		invalid;
};

static struct frame_hdr
frame_classify(unsigned char b)
{
	struct frame_hdr h = { 1, 0, 0, 0, 0 };

	if (b <= 0x7f || b >= 0xe0)
		return h;			/* fixint */
	if (b <= 0x8f) {
		h.per_item = 2;			/* fixmap */
		h.fixed = b & 0x0f;
		return h;
	}
	if (b <= 0x9f) {
		h.per_item = 1;			/* fixarray */
		h.fixed = b & 0x0f;
		return h;
	}
	if (b <= 0xbf) {
		h.fixed = b & 0x1f;		/* fixstr */
		return h;
	}
	switch (b) {
	case 0xc0: case 0xc2: case 0xc3:
		return h;
	case 0xc4: case 0xd9:
		h.len_bytes = 1; break;
	case 0xc5: case 0xda:
		h.len_bytes = 2; break;
	case 0xc6: case 0xdb:
		h.len_bytes = 4; break;
	case 0xc7:
		h.len_bytes = 1; h.hdr = 3; return h;
	case 0xc8:
		h.len_bytes = 2; h.hdr = 4; return h;
	case 0xc9:
		h.len_bytes = 4; h.hdr = 6; return h;
	case 0xca: h.fixed = 4; return h;
	case 0xcb: h.fixed = 8; return h;
	case 0xcc: case 0xd0: h.fixed = 1; return h;
	case 0xcd: case 0xd1: h.fixed = 2; return h;
	case 0xce: case 0xd2: h.fixed = 4; return h;
	case 0xcf: case 0xd3: h.fixed = 8; return h;
	case 0xd4: h.hdr = 2; h.fixed = 1; return h;
	case 0xd5: h.hdr = 2; h.fixed = 2; return h;
	case 0xd6: h.hdr = 2; h.fixed = 4; return h;
	case 0xd7: h.hdr = 2; h.fixed = 8; return h;
	case 0xd8: h.hdr = 2; h.fixed = 16; return h;
	case 0xdc: h.len_bytes = 2; h.per_item = 1; break;
	case 0xdd: h.len_bytes = 4; h.per_item = 1; break;
	case 0xde: h.len_bytes = 2; h.per_item = 2; break;
	case 0xdf: h.len_bytes = 4; h.per_item = 2; break;
	default:
		h.invalid = 1;			/* 0xc1 */
		return h;
	}
	h.hdr = 1 + h.len_bytes;
	return h;
}

enum frame_status
frame_scan(const void *buf, size_t len, size_t max_size, unsigned max_depth,
    size_t *frame_len)
{
	const unsigned char *p = buf;
	uint64_t left[FRAME_STACK_MAX + 1];
	unsigned depth = 0;
	uint64_t pos = 0;

	if (max_depth > FRAME_STACK_MAX)
		max_depth = FRAME_STACK_MAX;
	left[0] = 1;
	for (;;) {
		struct frame_hdr h;
		uint64_t n;

		if (pos >= len)
			return pos >= max_size ? FRAME_TOO_BIG : FRAME_INCOMPLETE;
		h = frame_classify(p[pos]);
		if (h.invalid)
			return FRAME_INVALID;
		if (pos + h.hdr > max_size)
			return FRAME_TOO_BIG;
		if (pos + h.hdr > len)
			return FRAME_INCOMPLETE;
		n = h.len_bytes ? be_uint(p + pos + 1, h.len_bytes) : h.fixed;
		pos += h.hdr;
		if (h.per_item != 0) {
			/* Every element takes at least one byte. */
			if (n * h.per_item > max_size - pos)
				return FRAME_TOO_BIG;
			if (depth + 1 > max_depth)
				return FRAME_TOO_DEEP;
			if (n != 0) {
				left[++depth] = n * h.per_item;
				continue;
			}
		} else {
			if (n > max_size - pos)
				return FRAME_TOO_BIG;
			pos += n;
		}
		/* One element is finished; close every container it fills. */
		while (--left[depth] == 0) {
			if (depth == 0) {
				if (pos > len)
					return FRAME_INCOMPLETE;
				*frame_len = pos;
				return FRAME_COMPLETE;
			}
			depth--;
		}
	}
}

const char *
frame_status_str(enum frame_status st)
{
	switch (st) {
	case FRAME_COMPLETE:
		return "complete";
	case FRAME_INCOMPLETE:
		return "incomplete frame";
	case FRAME_TOO_BIG:
		return "request is larger than the server's max-request limit";
	case FRAME_TOO_DEEP:
		return "request is nested deeper than the protocol allows";
	case FRAME_INVALID:
		return "request is not valid MessagePack";
	}
	return "unknown";
}
