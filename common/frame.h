/*
 * Finding MessagePack frames in a byte stream before decoding them.
 *
 * msgpack-c allocates room for a container's declared element count before it
 * has seen the elements, so five hostile bytes could make it reserve
 * gigabytes. frame_scan() walks the encoding without allocating, and tells
 * whether the buffer starts with one whole object, how long it is, and whether
 * it stays within a size and nesting limit. Only then is it handed to msgpack.
 */
#ifndef DLM_FRAME_H
#define DLM_FRAME_H

#include <stddef.h>

enum frame_status {
	FRAME_COMPLETE,		/* one whole object of *frame_len bytes */
	FRAME_INCOMPLETE,	/* need more bytes */
	FRAME_TOO_BIG,		/* object is, or declares itself, over max_size */
	FRAME_TOO_DEEP,		/* containers nested deeper than max_depth */
	FRAME_INVALID,		/* a byte that is not MessagePack (0xc1) */
};

enum frame_status frame_scan(const void *buf, size_t len, size_t max_size,
		    unsigned max_depth, size_t *frame_len);
/* A short phrase for a status, for error messages. */
const char	*frame_status_str(enum frame_status);

#endif
