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

#include "dlm.h"

#define DLM_PROTO_VERSION	1

/* Message types: the first element of every frame. */
#define DLM_MSG_REQUEST		0
#define DLM_MSG_RESPONSE	1
#define DLM_MSG_NOTIFY		2

/*
 * Deepest nesting a valid frame needs: frame array > params array > params
 * map > reclaim's holds array > a hold's map. Anything deeper is refused
 * before it is decoded.
 */
#define DLM_MAX_DEPTH		5

/*
 * Error codes and lost reasons are those of the public <dlm.h>, where the
 * one list of codes, names and sentences lives (DLM_ERRORS): the daemon,
 * the library and their users cannot disagree on a number. The protocol's
 * codes are the DLM_SERVER_ERRORS rows, 0 to DLM_E_MAX.
 */
#define DLM_E_MAX		DLM_E_NOT_ACTIVE

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
