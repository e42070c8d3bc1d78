/*
 * libdlm's wire layer: the bytes of the protocol and nothing else. It reads
 * a socket into a buffer, finds whole frames, encodes requests (hello and
 * bye included) and decodes what replies and notifications carry. It knows
 * no client, no session and no thread.
 */
#ifndef LIBDLM_WIRE_H
#define LIBDLM_WIRE_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "mpack.h"

/*
 * Bytes read from the server and not yet consumed: len of them, from
 * buf + off. Consuming a frame moves off, not the bytes after it, so that
 * a read of many answers is not copied again for each (len = 0 empties
 * it, whatever off says).
 */
struct rbuf {
	char		*buf;
	size_t		 off;
	size_t		 len;
	size_t		 cap;
	msgpack_zone	 zone;		/* the decoded frame's objects */
};

/* What a reply carried that a caller may want. */
/* The length of a cluster's receipts (doc/PROTOCOL.md). */
#define WIRE_RECEIPT_LEN	32

struct reply_data {
	int		 err;
	uint64_t	 token;
	uint64_t	 count;
	uint64_t	 valid_ms;
	uint64_t	 released;
	uint64_t	 permits;	/* a semaphore's, held after the call */
	bool		 held;
	bool		 cancelled;
	bool		 has_receipt;	/* a clustered grant's proof */
	uint8_t		 receipt[WIRE_RECEIPT_LEN];
	/* Only for dlm_call(): the result packed again, or the error's text. */
	char		*raw;
	size_t		 raw_len;
	char		*message;
};

/* What the server's answer to hello said. */
struct session_info {
	uint64_t	 session;
	char		 secret[64];
	int		 lease_ms;
	int		 linger_ms;	/* -1: not said */
	bool		 resumed;
	bool		 has_receipt;	/* in a cluster: the session's proof */
	uint8_t		 receipt[WIRE_RECEIPT_LEN];
};

/* What hello says about this client. */
struct hello_args {
	const char	*client;
	const char	*label;
	const char	*auth;
	const char	*resume;	/* the secret, or NULL for a new session */
	int64_t		 pid;
	int		 lease_ms;	/* 0: the server's default */
	int		 linger_ms;
};

/* One frame from the server, classified. */
struct frame {
	int			 type;	/* DLM_MSG_RESPONSE or _NOTIFY; -1 else */
	bool			 has_msgid;
	uint32_t		 msgid;
	const msgpack_object	*error;		/* responses */
	const msgpack_object	*result;
	const msgpack_object	*method;	/* notifications */
	const msgpack_object	*params;
};

void	 rbuf_init(struct rbuf *);
void	 rbuf_free(struct rbuf *);
/*
 * One recv() into the buffer without blocking: the bytes read, 0 when
 * there was nothing to read, -1 at the end of the stream, on an error, or
 * when memory ran out.
 */
ssize_t	 rbuf_read(struct rbuf *, int fd);
/*
 * For a reader of its own (TLS): room for at least a read's worth at
 * *dst (0, or -1 when memory ran out), then rbuf_commit() what was put.
 */
int	 rbuf_room(struct rbuf *, char **dst, size_t *room);
void	 rbuf_commit(struct rbuf *, size_t n);
/*
 * Decode the whole frame at the start of the buffer (valid until it is
 * consumed): 1 with *len set, 0 when incomplete, -1 when the server sent
 * something that is not a frame of ours.
 */
int	 rbuf_frame(struct rbuf *, struct frame *, size_t *len);
void	 rbuf_consume(struct rbuf *, size_t);

/*
 * Append a request to out: params is one packed map, or NULL for none.
 * 0, or DLM_E_NOMEM with out as it was.
 */
int	 wire_request(msgpack_sbuffer *out, uint32_t msgid, const char *method,
	    const msgpack_sbuffer *params);
int	 wire_hello(msgpack_sbuffer *out, uint32_t msgid,
	    const struct hello_args *);
/*
 * reclaim's request (doc/PROTOCOL.md): the session's name, secret and
 * receipt, with nclaims claims already packed one after another in claims.
 */
int	 wire_reclaim(msgpack_sbuffer *out, uint32_t msgid,
	    const struct hello_args *, const char *secret,
	    const uint8_t *receipt, uint32_t nclaims,
	    const msgpack_sbuffer *claims);
/* One hold as reclaim claims it. */
struct wire_claim {
	const char	*lock;
	bool		 rlock;
	bool		 shared;
	uint64_t	 token;
	uint32_t	 count;
	uint32_t	 receipt_count;
	const uint8_t	*receipt;
	/* A semaphore's (capacity not 0): held now, and what receipt proves. */
	uint32_t	 capacity;
	uint32_t	 permits;
	uint32_t	 receipt_permits;
	const void	*value;		/* the hold's value, or NULL */
	size_t		 value_len;
	uint32_t	 lock_delay_ms;		/* sent when not 0 */
	bool		 notify_contended;	/* sent when set */
};
int	 wire_claim(msgpack_sbuffer *, const struct wire_claim *);
/*
 * A request's params map, packed in the struct's own bytes while it fits
 * (every call but one with a long lock name does), on the heap past that:
 * an msgpack_sbuffer's first write takes 8 KiB from malloc, which cost
 * more than the rest of packing a request. sb is what wire_request()
 * reads. The struct points into itself: never copy it.
 */
struct wire_params {
	msgpack_sbuffer	 sb;
	char		 small[240];
};

/* Start empty, with w packing into p. */
void	 wire_params_init(struct wire_params *p, struct mpw *w);
void	 wire_params_free(struct wire_params *p);
/*
 * acquire's params (what o asks, with timeout_ms, what is left of its
 * time), and {lock} or {lock, token} (token 0: none), packed into p
 * (initialised here; wire_params_free() after). Keys of the extended
 * acquire are sent only when set, so a plain acquire is what older
 * servers know.
 */
int	 wire_acquire_params(struct wire_params *p, const char *lock,
	    const struct dlm_acquire_opts *o, int timeout_ms);
int	 wire_lock_params(struct wire_params *p, const char *lock,
	    uint64_t token);
/* release's {lock, token?, permits?} (0: the key left out). */
int	 wire_release_params(struct wire_params *p, const char *lock,
	    uint64_t token, uint32_t permits);
/* convert's params: {lock, mode, timeout_ms, token?} (token 0: none). */
int	 wire_convert_params(struct wire_params *p, const char *lock,
	    bool shared, int timeout_ms, uint64_t token);
/* A params map with one key: {key: s} or {key: u}. */
int	 wire_params_str(msgpack_sbuffer *, const char *key, const char *s);
int	 wire_params_uint(msgpack_sbuffer *, const char *key, uint64_t u);

/* The error code of a response's error (0 when nil). */
int	 wire_error_code(const msgpack_object *error);
/* The error's message into buf (empty when it has none). */
void	 wire_error_message(const msgpack_object *error, char *buf,
	    size_t len);
/*
 * Fill *r from a response: r->message is the error's sentence, if any;
 * want_raw keeps the result packed (dlm_call).
 */
void	 wire_reply(struct reply_data *r, const struct frame *, bool want_raw);
/*
 * Read hello's result, or reclaim's (which has no secret: need_secret
 * false): 0 or DLM_E_PROTOCOL.
 */
int	 wire_session(const struct frame *, struct session_info *,
	    bool need_secret);
/*
 * The i-th outcome of reclaim's holds: 1 with the lock (not
 * NUL-terminated, in the frame), its token and whether it was kept; 0
 * past the end; -1 when malformed.
 */
int	 wire_reclaim_outcome(const struct frame *, uint32_t i,
	    const char **lock, size_t *lock_len, uint64_t *token, bool *kept);
/* The active's address a NOT_ACTIVE error names, into buf ("" if none). */
void	 wire_error_active(const msgpack_object *error, char *buf, size_t len);
/*
 * Read a lost notification: 1 with *lock and *lock_len (the name, not
 * NUL-terminated, pointing into the frame: no memory is needed to read
 * one), *token and *reason set; 0 when the frame is another notification;
 * -1 when malformed.
 */
int	 wire_lost(const struct frame *, const char **lock, size_t *lock_len,
	    uint64_t *token, int *reason);
/*
 * Whether m is a lock's state as watch answers it and "changed" tells
 * it: {lock, holders: [{client, token, mode, value?}], waiters}.
 */
bool	 wire_state_valid(const msgpack_object *m);
/*
 * Read a "changed" notification: 1 with the lock's name (pointing into
 * the frame) and its state map; 0 when the frame is another
 * notification; -1 when malformed.
 */
int	 wire_changed(const struct frame *, const char **lock,
	    size_t *lock_len, const msgpack_object **state);
/* A contended notification, read as wire_lost() reads a lost one. */
int	 wire_contended(const struct frame *, const char **lock,
	    size_t *lock_len, uint64_t *token, uint32_t *waiters);

#endif
