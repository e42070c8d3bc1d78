/*
 * libdlm's engine: one connection to dlmd and the session on it, as a
 * state machine that never blocks and takes no lock of its own. It owns
 * the socket, the buffers, the requests in flight, the hello and resume,
 * the keepalive and the lapse of the lease, the reconnect back-off within
 * the linger, and the grants a dropped connection left uncertain.
 *
 * It is driven from outside: whoever drives it asks for engine_fd(),
 * engine_events() and engine_deadline(), waits for those, and calls
 * engine_process(). The library's I/O thread (and a caller waiting for its
 * reply) drives it under the client's mutex; in the event-loop mode the
 * program's loop drives it, or a blocking call waiting for its reply. It never calls a user's callback: it tells the
 * layer above through struct engine_ops, which must not call back into the
 * engine except through engine_submit().
 */
#ifndef LIBDLM_ENGINE_H
#define LIBDLM_ENGINE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

/*
 * uthash exits the process when memory runs out unless told otherwise; a
 * library must not. With HASH_NONFATAL_OOM a failed add leaves the table
 * as it was and sets this thread's flag, which the adding code checks.
 */
extern __thread int dlm__hash_oom;
#define HASH_NONFATAL_OOM		1
#define uthash_nonfatal_oom(elt)	(dlm__hash_oom = 1)
#include <uthash.h>

#include "addr.h"
#include "dial.h"
#include "dlm.h"
#include "wire.h"

/* What engine_events() asks to wait for. */
#define ENGINE_READ	0x1
#define ENGINE_WRITE	0x2

enum engine_state {
	ENGINE_CONNECTING,	/* the socket is connecting */
	ENGINE_HELLO,		/* hello sent; requests wait for its answer */
	ENGINE_READY,		/* the session is open */
	ENGINE_BACKOFF,		/* dropped; waiting to dial again (linger) */
	ENGINE_CLOSED,		/* closed, or the session is gone */
};

enum req_kind {
	REQ_SYNC,		/* a caller waits on done */
	REQ_ASYNC_ACQUIRE,	/* its callback runs when answered */
	REQ_ASYNC_DONE,
	REQ_INTERNAL,		/* the engine's own (ping, cancel...): freed
				   by the engine, never shown above */
};

struct dlm_req {
	UT_hash_handle	 hh;		/* in the engine's pending, by msgid */
	struct dlm_req	*next;		/* in a completion queue */
	uint32_t	 msgid;
	enum req_kind	 kind;
	uint64_t	 sent_ms;
	bool		 done;
	bool		 unsent;	/* not on this connection: waits in the
					   later buffer, or held back */
	struct reply_data r;
	void		*cv;		/* REQ_SYNC: its pthread_cond_t */
	/* For acquires and releases: keep the local lock entries in step. */
	char		*lock;
	/*
	 * An acquire's choices (its value, when it has one, the request's
	 * own copy for an async acquire; the caller's, which outlives the
	 * call, for a synchronous one).
	 */
	struct dlm_acquire_opts acq;
	/*
	 * The request's own copy of acq.value (acq.value points at it): the
	 * lock's entry takes it at the grant, to reclaim the hold with it.
	 */
	void		*value_own;
	/* A watch: the answer is the lock's state, for the watch entry. */
	bool		 is_watch;
	uint64_t	 watch_id;
	bool		 is_acquire;
	bool		 is_release;
	/*
	 * A convert: not an acquire to the engine (never held back or sent
	 * again after a drop, which fails it), but cancellable like one;
	 * hold_token is the hold it means, acq.flags the mode it asks.
	 */
	bool		 is_convert;
	uint64_t	 hold_token;	/* the hold a release means; 0: any */
	bool		 want_raw;	/* dlm_call(): keep r.raw/r.message */
	bool		 cancel_sent;	/* a cancel for it went out */
	/*
	 * In a cluster, an acquire or release in flight when its server
	 * went away waits to be sent again to the next active one, with
	 * what is left of its timeout (counted from first_ms).
	 */
	bool		 held_back;
	bool		 resent;
	int		 timeout_ms;	/* an acquire's, as first asked */
	uint64_t	 first_ms;	/* when it was first submitted */
	/*
	 * A mutex acquire's record for the uncertain list, made when it is
	 * submitted: a drop with it in flight must never go unrecorded.
	 */
	struct uncertain *unc;
	/*
	 * The layer above's, for an acquire: the lock's entry (a reference,
	 * async only) and the note that would report the grant lost, made
	 * before sending so that the answer needs no memory.
	 */
	struct lockent	*ent;
	struct note	*spare;
	dlm_acquire_cb	 acb;		/* REQ_ASYNC_ACQUIRE */
	dlm_done_cb	 dcb;		/* REQ_ASYNC_DONE */
	void		*arg;
};

/*
 * What the engine tells the layer above. Each runs inside an engine call,
 * in whichever thread made it, with whatever lock that thread holds.
 */
struct engine_ops {
	/* A request has its answer, or failed (r.err); the engine let go. */
	void	(*finished)(void *owner, struct dlm_req *);
	/*
	 * The server says a hold is lost; lock is len bytes, not
	 * NUL-terminated, valid during the call.
	 */
	void	(*lost)(void *owner, const char *lock, size_t len,
		    uint64_t token, int reason);
	/* Every hold is gone (the session ended or its lease lapsed). */
	void	(*lost_all)(void *owner, int reason);
	/* Whether the client holds lock, as far as it knows. */
	bool	(*holds)(void *owner, const char *lock);
	/*
	 * In a cluster, after a fail-over: pack a reclaim's claim (see
	 * wire_claim()) of each hold into sb, and say how many in *n; a
	 * hold that cannot be claimed is reported lost here. 0 or
	 * DLM_E_NOMEM.
	 */
	int	(*claims)(void *owner, msgpack_sbuffer *sb, uint32_t *n);
	/* The state changed; err says why when it is ENGINE_CLOSED. */
	void	(*state)(void *owner, enum engine_state, int err);
	/*
	 * A watched lock's holders changed: state is the notice's map
	 * (checked by wire_state_valid()), valid during the call; lock is
	 * len bytes, not NUL-terminated.
	 */
	void	(*changed)(void *owner, const char *lock, size_t len,
		    const msgpack_object *state);
	/*
	 * The server says others wait for a hold that asked to be told;
	 * lock as for lost.
	 */
	void	(*contended)(void *owner, const char *lock, size_t len,
		    uint64_t token, uint32_t waiters);
};

struct uncertain;
struct lockent;
struct note;

struct engine {
	enum engine_state state;
	int		 fd;		/* -1 while not connected */
	atomic_int	 fork_fd;	/* fd, for a fork() child to close */
	int		 err;		/* why it closed */
	char		 errmsg[256];	/* and in words: the server's or ours */
	bool		 opened;	/* a session was ever open */
	bool		 broken;	/* a write failed: drop at next process */
	bool		 closing;	/* no reconnect: the owner is closing */
	bool		 lapsed;	/* holds reported expired; reset on resume */
	bool		 reset_owed;	/* that reset could not be sent yet */
	const struct engine_ops *ops;
	void		*owner;

	/*
	 * Where: the servers given, tried in turn, and the one dialled now.
	 * A cluster's standby names the active one (hint), which is tried
	 * next. A round tries each server (and what they name) once before
	 * a back-off.
	 */
	struct addr	 addrs[ADDR_LIST_MAX];
	int		 naddrs;
	int		 next_addr;	/* index of the next to try */
	struct addr	 addr;		/* the one dialled now */
	struct addr	 hint;
	bool		 hinted;	/* hint is to be tried next */
	int		 round_left;	/* attempts before the next back-off */
	int		 hints_left;	/* hints still to follow this round */
	bool		 saw_not_active;	/* a cluster exists, no active yet */
	uint64_t	 first_until;	/* the first connect gives up then */

	/* A cluster's session: what proves it to the next active. */
	bool		 cluster;	/* the server gave a receipt */
	bool		 reclaiming;	/* reclaim sent rather than hello */
	/*
	 * A reclaim was sent and its outcomes not read (set until they
	 * are); holds_unsure: one such reclaim may have been taken, so
	 * a resume cannot tell which holds it kept.
	 */
	bool		 reclaim_unread;
	bool		 holds_unsure;
	int		 nheld_back;	/* requests held back (held_back set) */
	uint8_t		 receipt[WIRE_RECEIPT_LEN];

	/* Who. */
	struct dial	 dial;
	struct hello_args hello;
	char		 secret[64];
	uint64_t	 session;
	int		 lease_ms;	/* granted by the server */
	int		 linger_ms;
	int		 connect_timeout_ms;

	/* Requests. */
	uint32_t	 next_id;
	struct dlm_req	*pending;	/* by msgid, sent or waiting in later */
	msgpack_sbuffer	 out;		/* to write, from out_off */
	size_t		 out_off;
	msgpack_sbuffer	 later;		/* requests made before the session
					   was open, to send once it is */
	struct rbuf	 in;
	struct uncertain *uncertain;

	/* Time. */
	uint64_t	 last_send_ms;
	uint64_t	 lease_base_ms;	/* send time of the last answered request
					   (hello's or reclaim's included) */
	uint64_t	 hello_sent_ms;	/* when hello or reclaim was sent */
	uint64_t	 step_at;	/* connect/hello timeout or back-off end */
	uint64_t	 linger_until;	/* 0 unless reconnecting */
	int		 backoff_ms;

	/* TLS, for tls: servers (tls.c): made at dlm_connect when needed. */
	struct ssl_ctx_st *tls_ctx;
	struct ssl_st	*ssl;		/* on fd, while connected over TLS */
	bool		 tls_handshaking;	/* in ENGINE_CONNECTING, on fd */
	bool		 tls_want_write;
};

/* An engine that is not connected (ENGINE_CLOSED), reporting to ops. */
void		 engine_init(struct engine *, const struct engine_ops *,
		    void *owner);
/*
 * Start dialing the first of naddrs servers (hello follows as the engine
 * is driven). hello's strings must outlive the engine. 0, or why it
 * closed at once.
 */
int		 engine_start(struct engine *, const struct addr *addrs,
		    int naddrs, const struct hello_args *,
		    int connect_timeout_ms);
/* The socket to wait on, or -1 (waiting only for the deadline). */
int		 engine_fd(const struct engine *);
/* ENGINE_READ and ENGINE_WRITE, or 0. */
int		 engine_events(const struct engine *);
/* When engine_process() must run even if nothing happens; 0: never. */
uint64_t	 engine_deadline(const struct engine *);
/* The socket is ready for events (0: the deadline came), now is mono_ms(). */
void		 engine_process(struct engine *, int events, uint64_t now);
/*
 * Queue a request (its msgid is set here). It waits for engine_flush(), or
 * for the session to open. 0, or DLM_E_CLOSED, DLM_E_NOMEM.
 */
int		 engine_submit(struct engine *, struct dlm_req *,
		    const char *method, const msgpack_sbuffer *params);
/* Whether queued bytes wait for the socket. */
bool		 engine_has_output(const struct engine *);
/*
 * Write what the socket takes now. A failure is not handled here, where
 * a thread that does not drive the engine may be writing: the socket is
 * shut down, and the driver's next engine_process() drops it.
 */
void		 engine_flush(struct engine *, uint64_t now);
/* The request with this msgid, if it is pending. */
struct dlm_req	*engine_find(struct engine *, uint32_t msgid);
/* Ask the server to cancel the pending acquire req. 0 or an error. */
int		 engine_cancel(struct engine *, const struct dlm_req *);
/* Whether the session's lease still holds at now. */
bool		 engine_lease_valid(const struct engine *, uint64_t now);
/*
 * Say bye (after what is queued, so that a release sent just before
 * counts), written within a few milliseconds if the socket takes it; no
 * request is taken after it. Any thread holding the client's mutex.
 */
void		 engine_bye(struct engine *);
/*
 * Close the socket and fail every pending request with DLM_E_CLOSED
 * (after bye, said here if it was not). Only the driver may call it.
 */
void		 engine_close(struct engine *);
/* Free what is left (after engine_close). */
void		 engine_free(struct engine *);

/* tls.c: the engine's TLS, used by engine.c only. */
struct ssl_ctx_st;
struct ssl_st;
/* The context for tls: servers; 0 or DLM_E_CONNECT, with why in err. */
int		 tls_client_ctx(struct engine *, const char *ca,
		    const char *cert, const char *key, char *err,
		    size_t errlen);
int		 tls_client_start(struct engine *, int fd, char *err,
		    size_t errlen);
int		 tls_client_step(struct engine *, char *err, size_t errlen);
int		 tls_client_read(struct engine *, struct rbuf *, char *err,
		    size_t errlen);
ssize_t		 tls_client_write(struct engine *, const void *, size_t);
void		 tls_client_drop(struct engine *);
void		 tls_client_free(struct engine *);

#endif
