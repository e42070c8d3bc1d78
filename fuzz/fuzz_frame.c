/*
 * libFuzzer harness for the frame scanner: whatever the bytes, frame_scan()
 * must not read past them, and when it says a whole frame is there,
 * msgpack-c must decode exactly that many bytes; the mpr_* readers must
 * cope with whatever came out.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "frame.h"
#include "mpack.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
poke(const msgpack_object *o)
{
	const char *p;
	size_t len;
	uint64_t u;
	int64_t i;
	bool b;

	(void)mpr_uint(o, &u);
	(void)mpr_int(o, &i);
	(void)mpr_bool(o, &b);
	(void)mpr_bytes(o, &p, &len);
	(void)mpr_get(o, "lock");
	(void)mpr_str_eq(o, "hello");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The first byte picks the limits, so small ones get tried too. */
	size_t max_size, flen = 0;
	unsigned depth;
	enum frame_status st;

	if (size < 1)
		return 0;
	max_size = (size_t)1 << (data[0] & 0x0f);	/* 1 .. 32768 */
	depth = (unsigned)(data[0] >> 4) % 9;
	data++;
	size--;
	st = frame_scan(data, size, max_size, depth, &flen);
	if (st == FRAME_COMPLETE) {
		msgpack_unpacked u;
		size_t off = 0;
		/* A copy of exactly the frame: reading past it is caught. */
		char *frame = malloc(flen ? flen : 1);

		if (flen == 0 || flen > size || flen > max_size)
			abort();
		memcpy(frame, data, flen);
		msgpack_unpacked_init(&u);
		if (msgpack_unpack_next(&u, frame, flen, &off) !=
		    MSGPACK_UNPACK_SUCCESS || off != flen)
			abort();
		poke(&u.data);
		if (u.data.type == MSGPACK_OBJECT_ARRAY)
			for (uint32_t i = 0; i < u.data.via.array.size; i++)
				poke(&u.data.via.array.ptr[i]);
		msgpack_unpacked_destroy(&u);
		free(frame);
	}
	(void)frame_status_str(st);
	return 0;
}
