/*
 * dlm wire protocol: MessagePack-RPC over a byte stream.
 *
 * Shared by dlmd, libdlm and dlmctl. doc/PROTOCOL.md is the reference for
 * other-language clients; keep the two in step.
 *
 * Bump DLM_PROTO_VERSION only for a change an existing client cannot ignore
 * (a method whose meaning changes, a key whose type changes). New methods, new
 * optional keys and new result keys do not need a bump: peers ignore unknown
 * keys. Error codes are stable once released: add, never renumber.
 */
#ifndef DLM_PROTO_H
#define DLM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define DLM_PROTO_VERSION	1

/* Message types: the first element of every frame. */
#define DLM_MSG_REQUEST		0
#define DLM_MSG_RESPONSE	1
#define DLM_MSG_NOTIFY		2

/*
 * Deepest nesting a valid frame needs: frame array > params array > params
 * map > info map. Anything deeper is refused before it is decoded.
 */
#define DLM_MAX_DEPTH		4

/*
 * Error codes. Plain macros, spelled exactly as in the public <dlm.h>, so
 * that a file may include both (identical redefinitions are allowed).
 */
#define DLM_OK			0
#define DLM_E_BAD_REQUEST	1
#define DLM_E_NO_SESSION	2
#define DLM_E_NAME_IN_USE	3
#define DLM_E_WOULD_BLOCK	4
#define DLM_E_TIMEOUT		5
#define DLM_E_NOT_HELD		6
#define DLM_E_ALREADY_HELD	7
#define DLM_E_KIND_MISMATCH	8
#define DLM_E_CANCELLED		9
#define DLM_E_LIMIT		10
#define DLM_E_PERMISSION	11
#define DLM_E_NOT_FOUND		12
#define DLM_E_SHUTTING_DOWN	13
#define DLM_E_DEADLOCK		14
#define DLM_E_UNSUPPORTED	15
#define DLM_E_MAX		DLM_E_UNSUPPORTED

/* Reasons carried by the "lost" notification. */
#define DLM_LOST_FORCED		1
#define DLM_LOST_RESET		2
#define DLM_LOST_EXPIRED	3

/* The protocol name of an error code ("TIMEOUT"), or "UNKNOWN". */
const char	*dlm_proto_errname(int code);
/* A default sentence describing an error code. */
const char	*dlm_proto_errdesc(int code);
/* The code for a protocol error name, or -1. */
int		 dlm_proto_errcode(const char *name, size_t len);
/* "forced", "reset" or "expired". */
const char	*dlm_proto_lost_reason(int reason);
/* The reason for a lost notification's "reason" string, or 0. */
int		 dlm_proto_lost_code(const char *name, size_t len);

#endif
