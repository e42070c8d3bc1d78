/*
 * libdlm internals: the client object shared by client.c (connection, I/O
 * thread, requests) and calls.c (the public calls built on them).
 *
 * Locking: c->mu guards everything below it in struct dlm_client, except
 * the socket writes (c->wmu) and the I/O thread's own read buffer. Callers
 * never hold c->mu while writing to the socket or running user callbacks.
 */
#ifndef LIBDLM_CLIENT_H
#define LIBDLM_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
#include "dlm.h"
#include "mpack.h"

enum client_state {
	CLIENT_CONNECTED,
	CLIENT_RECONNECTING,	/* dropped; trying to resume within linger */
	CLIENT_CLOSED,		/* closed, or the session is gone */
};

enum req_kind {
	REQ_SYNC,		/* a caller waits on done */
	REQ_ASYNC_ACQUIRE,	/* completion queued for dlm_async_dispatch */
	REQ_ASYNC_DONE,
	REQ_PING,		/* the I/O thread's own */
};

/* What a reply carried that a caller may want. */
struct reply_data {
	int		 err;
	uint64_t	 token;
	uint64_t	 count;
	uint64_t	 valid_ms;
	uint64_t	 released;
	bool		 held;
	/* Only for dlm_call(): the result packed again, or the error's text. */
	char		*raw;
	size_t		 raw_len;
	char		*message;
};

struct dlm_req {
	UT_hash_handle	 hh;		/* in c->pending, by msgid */
	struct dlm_req	*next;		/* in the completion queue */
	uint32_t	 msgid;
	enum req_kind	 kind;
	uint64_t	 sent_ms;
	bool		 done;
	struct reply_data r;
	pthread_cond_t	*cv;		/* REQ_SYNC */
	/* For acquires: update the local table when answered. */
	char		*lock;
	int		 flags;
	bool		 is_acquire;
	bool		 is_release;
	bool		 want_raw;	/* dlm_call(): keep r.raw/r.message */
	dlm_acquire_cb	 acb;
	dlm_done_cb	 dcb;
	void		*arg;
};

/* A thread queued for its turn at a lock (on that thread's stack). */
struct turn_waiter {
	struct turn_waiter	*next;
	pthread_cond_t		 cv;
	bool			 granted;
};

/*
 * The client's view of one lock: held or not, and who in this process is
 * using it. Mutex acquires of one name are serialized here, because the
 * server counts a lock as the session's, not a thread's. The turn passes
 * in FIFO order straight to the next waiter, so that a thread releasing and
 * re-acquiring in a loop cannot starve the others.
 */
struct lockent {
	UT_hash_handle	 hh;		/* in c->locks, by name */
	char		*name;
	struct turn_waiter *head;	/* queued for the turn, oldest first */
	struct turn_waiter *tail;
	uint64_t	 token;
	uint32_t	 count;		/* held depth; 0 when not held */
	uint32_t	 nwait;		/* threads in the queue */
	uint32_t	 refs;		/* pointers held across an unlock */
	bool		 busy;		/* a thread is acquiring or holds it */
	bool		 owned;		/* busy by a dlm_acquire() of owner */
	pthread_t	 owner;
};

/*
 * A mutex whose acquire was in flight when the connection dropped: the
 * server may have granted it just before. Released after a resume unless
 * the client knows it holds the lock.
 */
struct uncertain {
	struct uncertain	*next;
	char			*lock;
};

struct lost_item {
	struct lost_item *next;
	char		*lock;
	uint64_t	 token;
	int		 reason;
};

struct dlm_client {
	pthread_mutex_t	 mu;
	pthread_mutex_t	 wmu;		/* socket writes */
	pthread_cond_t	 state_cv;	/* state changes, users leaving */
	pthread_t	 thread;
	pid_t		 pid;		/* of the process that connected */
	unsigned long	 fork_depth;	/* the process's when it connected */
	int		 fd;		/* -1 while not connected */
	atomic_int	 fork_fd;	/* fd, for atfork_child, which cannot
					   take mu: a fork may come any time */
	uint64_t	 gen;		/* connection generation; changed only
					   with both wmu and mu held */
	int		 wake[2];	/* wakes the I/O thread */
	int		 evfd;		/* readable while completions queue */
	enum client_state state;
	bool		 closing;
	int		 users;		/* calls inside the library */

	/* Where and who. */
	struct addr	 addr;		/* parsed once by dlm_connect() */
	char		*name;
	char		*label;
	char		*auth;
	char		 secret[64];
	uint64_t	 session;
	int		 lease_ms;	/* granted by the server */
	int		 linger_ms;
	int		 ask_lease_ms;
	int		 ask_linger_ms;
	int		 connect_timeout_ms;
	dlm_lost_cb	 on_lost;
	void		*on_lost_arg;

	uint32_t	 next_id;
	struct dlm_req	*pending;	/* by msgid */
	struct dlm_req	*done_head;	/* async completions */
	struct dlm_req	*done_tail;
	struct lockent	*locks;		/* by name */
	struct uncertain *uncertain;
	bool		 lapsed;	/* holds reported expired; reset on resume */
	uint64_t	 last_send_ms;
	uint64_t	 last_recv_ms;
	uint64_t	 lease_base_ms;	/* send time of the last answered request */

	/*
	 * Who reads the socket. A caller waiting for its reply reads it
	 * itself (one thread wake per round trip instead of two); the I/O
	 * thread reads when no caller does. Whoever sets reading, under mu,
	 * owns the socket's read side and rbuf until it clears it.
	 */
	bool		 reading;
	bool		 fd_claimed;	/* the I/O thread is replacing the socket */
	bool		 read_failed;	/* a caller's read found the end */
	int		 async_pending;	/* async requests not yet answered */
	uint64_t	 caller_read_ms;	/* when a caller last read */
	struct lost_item *lost_head;	/* read by callers, for on_lost */
	struct lost_item *lost_tail;

	/*
	 * Requests go out in order through out (mu): a synchronous caller
	 * writes it at once; asynchronous requests wait there for the I/O
	 * thread, woken once, so that a burst of them leaves in one write.
	 * The writer moves out to wbuf (wmu) and writes from wbuf_off; the
	 * I/O thread never blocks on a full socket, and keeps the rest for
	 * when the socket is writable (write_rest).
	 */
	msgpack_sbuffer	 out;
	bool		 flush_asked;	/* the I/O thread will write out */
	bool		 write_rest;	/* wbuf holds a rest to write */
	msgpack_sbuffer	 wbuf;
	size_t		 wbuf_off;

	/* The reader's buffer. */
	char		*rbuf;
	size_t		 rlen;
	size_t		 rcap;
	msgpack_zone	 zone;
};

/* client.c */
bool		 dlm__forked(struct dlm_client *);
int		 dlm__enter(struct dlm_client *);
void		 dlm__leave(struct dlm_client *);
/*
 * Send a request. params is a packed map (or NULL for none). With req->kind
 * REQ_SYNC, writes it (and every request queued before it), waits for the
 * reply and returns its error; otherwise returns 0 once queued for the I/O
 * thread to write. Called with c->mu held; drops it while writing.
 */
int		 dlm__call(struct dlm_client *, struct dlm_req *,
		    const char *method, const msgpack_sbuffer *params);
void		 dlm__queue_completion(struct dlm_client *, struct dlm_req *);
void		 dlm__req_free(struct dlm_req *);

/* calls.c */
void		 dlm__reply_applied(struct dlm_client *, struct dlm_req *);
struct lockent	*dlm__lockent(struct dlm_client *, const char *name, bool make);
void		 dlm__lockent_put(struct dlm_client *, struct lockent *);
void		 dlm__lockent_wake_all(struct lockent *);
/* Mark every hold lost; fills names/tokens for on_lost (caller frees). */
size_t		 dlm__drop_all_holds(struct dlm_client *, char ***names,
		    uint64_t **tokens);

#endif
