/*
 * Test fixtures: a real dlmd on a temporary socket, and a raw MessagePack-RPC
 * client that speaks to it byte for byte (no libdlm), so that the daemon is
 * tested against the protocol document rather than against our own library.
 */
#ifndef DLM_TESTUTIL_H
#define DLM_TESTUTIL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include <check.h>
#include <msgpack.h>

#include "clock.h"
#include "mpack.h"

struct dlmd_proc {
	pid_t	pid;
	char	dir[256];
	char	sock[300];
	char	log[300];
	int	port;		/* TCP port when started with tcp */
};

/* Start dlmd on a fresh socket with extra arguments (NULL-terminated). */
void	dlmd_start(struct dlmd_proc *, const char *arg, ...);
/* Like dlmd_start, also listening on 127.0.0.1 at a free port. */
void	dlmd_start_tcp(struct dlmd_proc *, const char *arg, ...);
/* SIGTERM, wait; returns the exit status (or 128+signal). */
int	dlmd_stop(struct dlmd_proc *);
/* Fails the test when dlmd did not exit 0 or its log shows a sanitizer. */
void	dlmd_stop_clean(struct dlmd_proc *);
/* Wait up to 5 s for needle to appear in dlmd's log. */
bool	dlmd_log_has(const struct dlmd_proc *, const char *needle);
/* A TCP port on 127.0.0.1 nobody listens on just now. */
int	free_tcp_port(void);
/* A socket connected to 127.0.0.1:port, or -1 (errno says why). */
int	loopback_connect(int port);
/* The path of the dlmd binary under test ($DLMD). */
const char *dlmd_path(void);

struct reply {
	struct reply		*next;
	msgpack_zone		*zone;
	msgpack_object		 obj;	/* the whole frame */
	int			 type;	/* 1 response, 2 notification */
	uint32_t		 msgid;
	bool			 has_msgid;
	int			 err;	/* 0, or the error code */
	const msgpack_object	*error;	/* the error map or NULL */
	const msgpack_object	*result;
	const msgpack_object	*params;	/* notification params map */
	char			 method[32];	/* notification method */
};

struct tc {
	int		 fd;
	uint32_t	 next_id;
	char		*buf;
	size_t		 len, cap;
	struct reply	*queue;		/* received, not yet taken */
	struct reply	*owned;		/* taken; freed by tc_close */
	bool		 eof;
};

struct tc	*tc_connect(const struct dlmd_proc *);
struct tc	*tc_connect_unix(const char *path);
struct tc	*tc_connect_tcp(int port);
void		 tc_close(struct tc *);
/* Send raw bytes. */
void		 tc_send_raw(struct tc *, const void *, size_t);
/*
 * Send a request; fmt lists params as "key:T ..." with T one of s (char *),
 * i (long long), b (int, as bool), n (nil), y (bin: const void *, size_t).
 * Returns the msgid.
 */
uint32_t	 tc_send(struct tc *, const char *method, const char *fmt, ...);
/* The response to msgid, waiting up to timeout_ms; NULL on timeout/EOF. */
struct reply	*tc_wait(struct tc *, uint32_t msgid, int timeout_ms);
/* The next notification, waiting up to timeout_ms; NULL if none. */
struct reply	*tc_wait_notify(struct tc *, int timeout_ms);
/* Any next frame (a response with a nil msgid, say). */
struct reply	*tc_next(struct tc *, int timeout_ms);
/* Send and wait up to 5 s; fails the test when nothing comes. */
struct reply	*tc_call(struct tc *, const char *method, const char *fmt, ...);
/* hello with proto 1 and the given name (NULL: none); fails unless OK. */
struct reply	*tc_hello(struct tc *, const char *name);
/* true when the server closed the connection within timeout_ms. */
bool		 tc_closed(struct tc *, int timeout_ms);

const msgpack_object *reply_get(const struct reply *, const char *key);
uint64_t	 reply_u64(const struct reply *, const char *key);
bool		 reply_bool(const struct reply *, const char *key);
/* A string result value as a static NUL-terminated copy. */
const char	*reply_str(const struct reply *, const char *key);
/* The error's name ("TIMEOUT"), or "" on success. */
const char	*reply_errname(const struct reply *);
const char	*reply_errmsg(const struct reply *);
/* The value of key in map m as a string copy (static buffer). */
const char	*obj_str(const msgpack_object *m, const char *key);
uint64_t	 obj_u64(const msgpack_object *m, const char *key);

/* Run a suite, print Check's summary; the exit status for main(). */
int		 run_suite(Suite *);

void		 sleep_ms(int);

#endif
