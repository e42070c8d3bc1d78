/*
 * libdlm internals: the client object and the layers above the engine.
 * Each file calls only the files on its own line or below it, never up:
 *
 *	calls.c, rawcall.c	the public calls, through client.c's call path
 *	client.c		the top of a client's life: dlm_connect*() and
 *				dlm_close() choose and stop a driver; the call
 *				path into the engine; the accessors
 *	thread.c		the threaded mode's driver: the I/O thread, and
 *				a caller that reads its own reply
 *	loop.c			the event-loop mode's driver: the program's loop
 *	core.c			the client object and its queues: making and
 *				freeing it, the engine's reports turned into
 *				completions and notes, running them, closing
 *	watchcalls.c		dlm_watch() and the leader election on it:
 *				public calls, like calls.c
 *	locks.c			the local lock entries (what this client holds,
 *				and the turns of its threads at a mutex)
 *	watches.c		the watch entries: what this client watches,
 *				the states to tell, watching again after a
 *				reconnect
 *	engine.c		the connection and session (engine.h), which
 *				calls up only through its engine_ops
 *	notes.c			the notes: lost holds and state changes to tell
 *	errmsg.c		error strings and the per-thread last message
 *	registry.c		the live clients, for fork()
 *	wire.c			the protocol's frames (dialing the server is
 *				common/dial.c's)
 *
 * The declarations below are grouped by file, from the bottom up.
 *
 * Locking: c->mu guards everything in struct dlm_client (the engine
 * included), except what is set before the client is shared and never
 * changed after. The engine is touched only with c->mu held, and
 * engine_process() only by the driver: the thread holding c->driving, or
 * a thread that holds c->mu while nobody holds c->driving. A driver polls
 * the socket without c->mu; nobody else closes or replaces it meanwhile,
 * because only engine_process() does. User callbacks never run with c->mu
 * held.
 */
#ifndef LIBDLM_CLIENT_H
#define LIBDLM_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "dlm.h"
#include "engine.h"

/* A thread queued for its turn at a lock (on that thread's stack). */
struct turn_waiter {
	struct turn_waiter	*next;
	pthread_cond_t		 cv;
	bool			 granted;
	bool			 cancelled;
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
	bool		 rlock;		/* the hold is an rlock's */
	bool		 shared;	/* and in shared mode */
	/* Its acquire's choices, for a reclaim to carry. */
	uint32_t	 lock_delay_ms;
	bool		 notify_contended;
	/*
	 * In a cluster: the proof of the latest grant, at receipt_count,
	 * which the hold is reclaimed with after a fail-over.
	 */
	bool		 has_receipt;
	uint32_t	 receipt_count;
	uint8_t		 receipt[WIRE_RECEIPT_LEN];
	/*
	 * The note that reports this hold lost, made when it was asked
	 * for, so that a loss is never left unsaid for want of memory:
	 * whenever count > 0, spare is set.
	 */
	struct note	*spare;
	pthread_t	 owner;
	/*
	 * A semaphore's hold (capacity not 0): the permits held, and those
	 * its receipt proves (the grant's; a partial release lowers only
	 * permits), which a reclaim claims.
	 */
	uint32_t	 capacity;
	uint32_t	 permits;
	uint32_t	 receipt_permits;
	/*
	 * The hold's value, the library's copy, sent again with the claim
	 * after a fail-over; NULL for none.
	 */
	void		*value;
	size_t		 value_len;
};

/* A lock this client watches (watches.c). */
struct watchent {
	UT_hash_handle	 hh;		/* in c->watches, by name */
	char		*name;
	uint64_t	 id;		/* this watch's, from 1 */
	/*
	 * The server answered a watch of it: its notices are this
	 * entry's, and it is watched again after a reconnect.
	 */
	bool		 active;
	dlm_changed_cb	 cb;		/* one of the two */
	dlm_leader_cb	 leader_cb;
	void		*arg;
};

/* Something to tell the program: a lost hold, or (loop mode) a state. */
struct note {
	struct note	*next;
	char		*lock;		/* NULL for a state change */
	uint64_t	 token;
	int		 reason;	/* DLM_LOST_*, or DLM_STATE_* */
	int		 err;
	char		*msg;		/* a state change's why, or NULL */
	/* A watched lock's state (packed), for the watch watch_id. */
	char		*state;
	size_t		 state_len;
	uint64_t	 watch_id;
	bool		 contended;	/* for on_contended, not on_lost */
	uint32_t	 waiters;
};

struct dlm_client {
	pthread_mutex_t	 mu;
	pthread_cond_t	 state_cv;	/* users leaving, a driver stopping */
	bool		 loop;		/* event-loop mode: no thread */
	pthread_t	 thread;	/* threaded mode's I/O thread */
	bool		 thread_started;
	pid_t		 pid;		/* of the process that connected */
	uint64_t	 serial;	/* this client's number, from 1 */
	unsigned long	 fork_depth;	/* the process's when it connected */
	int		 wake[2];	/* wakes the I/O thread */
	int		 evfd;		/* readable while completions queue */
	bool		 closing;
	int		 users;		/* calls inside the library */
	struct engine	 eng;

	/* Who. */
	char		*name;
	char		*label;
	char		*auth;
	dlm_lost_cb	 on_lost;
	void		*on_lost_arg;
	dlm_contended_cb on_contended;
	void		*on_contended_arg;

	struct lockent	*locks;		/* by name */
	struct watchent	*watches;	/* by name */
	uint64_t	 next_watch_id;
	/* The watch whose callback runs now (0: none), and in which thread. */
	uint64_t	 watch_running;
	pthread_t	 watch_thread;
	struct dlm_req	*done_head;	/* answered async requests */
	struct dlm_req	*done_tail;
	struct note	*note_head;	/* for on_lost (and the state callback) */
	struct note	*note_tail;
	int		 async_pending;	/* async requests not yet answered */

	/* Threaded mode: who drives the engine (client.h's rule above). */
	bool		 driving;
	bool		 io_driving;	/* the driver is the I/O thread */
	bool		 flush_asked;	/* the I/O thread will write out */
	bool		 handoff_asked;	/* a caller wants to drive */
	int		 sync_waiting;	/* callers asleep on their request */
	uint64_t	 caller_read_ms;	/* when a caller last drove */

	/* Loop mode. */
	bool		 in_process;	/* dlm_loop_process() runs callbacks */
	bool		 close_asked;	/* dlm_close() from a callback */
	dlm_watch_cb	 watch;
	void		*watch_arg;
	int		 watched_fd;	/* what the watcher was last told */
	int		 watched_events;
	uint64_t	 watched_deadline;
	dlm_state_cb	 state_cb;
	void		*state_arg;
	int		 pub_state;	/* the last DLM_STATE_* told */
};

/* registry.c */
int		 dlm__registry_add(struct dlm_client *);
void		 dlm__registry_remove(const struct dlm_client *);
/* Whether the client with this serial is live. */
bool		 dlm__registry_has(uint64_t serial);
unsigned long	 dlm__fork_depth(void);
bool		 dlm__forked(struct dlm_client *);

/* errmsg.c */
/*
 * Keep this thread's message for the client with serial (0: a connect):
 * msg, else err's sentence; err 0 clears it.
 */
void		 dlm__errmsg_set(uint64_t serial, int err, const char *msg);
/* The same for c (which may be NULL), returning err. */
int		 dlm__result(struct dlm_client *c, int err, const char *msg);
int		 dlm__resultf(struct dlm_client *c, int err, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
/* dlm_close(): this thread's slot for c goes. */
void		 dlm__errmsg_forget(const struct dlm_client *);

/* notes.c */
/*
 * Queue a lost hold (lock set) or a state change for the program; dropped
 * if memory runs out, so only for what no reservation covers.
 */
void		 dlm__note(struct dlm_client *, const char *lock,
		    uint64_t token, int reason, int err);
/* A note made ahead (lock may be NULL), queued later without allocating. */
struct note	*dlm__note_new(const char *lock);
void		 dlm__note_queue(struct dlm_client *, struct note *,
		    uint64_t token, int reason, int err);
void		 dlm__note_free(struct note *);

/* locks.c */
struct lockent	*dlm__lockent(struct dlm_client *, const char *name, bool make);
void		 dlm__lockent_put(struct dlm_client *, struct lockent *);
void		 dlm__lockent_clear(struct lockent *);
void		 dlm__lockent_wake_all(struct lockent *);
/*
 * Take this thread's turn at a mutex: 0 with the turn taken, or
 * ALREADY_HELD, WOULD_BLOCK, TIMEOUT, CANCELLED, CLOSED; *left is what
 * remains of the timeout. c->mu held; waits on it.
 */
int		 dlm__lock_turn(struct dlm_client *, struct lockent *,
		    int timeout_ms, int *left);
/* The thread whose turn it was is done with it: the next one's, if any. */
void		 dlm__lock_turn_pass(struct lockent *);
/* Cancel the threads queued for a turn at lock; how many there were. */
int		 dlm__lock_cancel_turns(struct dlm_client *, const char *lock);
/* The local entries follow a reply, a lost hold, the end of all holds. */
void		 dlm__locks_on_reply(struct dlm_client *, struct dlm_req *);
/* lock is len bytes, not NUL-terminated. */
void		 dlm__locks_on_lost(struct dlm_client *, const char *lock,
		    size_t len, uint64_t token, int reason);
/*
 * The server says others wait for a hold: a note for on_contended, if
 * the client still has that hold (and memory allows).
 */
void		 dlm__locks_on_contended(struct dlm_client *, const char *lock,
		    size_t len, uint64_t token, uint32_t waiters);
/* Make e's spare note (see struct lockent): 0 or DLM_E_NOMEM. */
int		 dlm__lockent_reserve(struct lockent *);
/* Mark every hold lost; a note for each for on_lost. */
void		 dlm__locks_drop_all(struct dlm_client *, int reason);
/*
 * The hold a release by this thread means: 0 with *token its fencing
 * token, or DLM_E_NOT_HELD when it is gone (this thread's mutex was lost,
 * or the mutex is another thread's); a lost mutex's turn passes on here.
 */
int		 dlm__locks_release_target(struct dlm_client *,
		    const char *lock, uint64_t *token);
/* The permits this client holds of semaphore lock; 0 if none. */
uint32_t	 dlm__locks_permits(struct dlm_client *, const char *lock);
bool		 dlm__locks_held(struct dlm_client *, const char *lock);
/*
 * The hold a convert by this thread means, as for a release but changing
 * nothing: 0 with *token, or DLM_E_NOT_HELD (not held, or another
 * thread's mutex).
 */
int		 dlm__locks_convert_target(struct dlm_client *,
		    const char *lock, uint64_t *token);
/*
 * Pack a reclaim's claim of each hold into sb, *n of them; a hold without
 * a receipt cannot be claimed and is reported lost. 0 or DLM_E_NOMEM.
 */
int		 dlm__locks_claims(struct dlm_client *, msgpack_sbuffer *sb,
		    uint32_t *n);
void		 dlm__locks_free(struct dlm_client *);

/* watches.c */
/*
 * A new entry (not yet active) for lock: 0, DLM_E_ALREADY_HELD when
 * this client watches it, or DLM_E_NOMEM.
 */
int		 dlm__watch_add(struct dlm_client *, const char *lock,
		    dlm_changed_cb, dlm_leader_cb, void *arg,
		    struct watchent **);
struct watchent	*dlm__watch_find(struct dlm_client *, const char *lock,
		    size_t len);
void		 dlm__watch_remove(struct dlm_client *, struct watchent *);
/* A watch request was answered (c->mu held, inside the engine). */
void		 dlm__watch_on_reply(struct dlm_client *, struct dlm_req *);
/* A "changed" notice came. */
void		 dlm__watch_on_changed(struct dlm_client *, const char *lock,
		    size_t len, const msgpack_object *state);
/* The session opened again: watch every active entry again. */
void		 dlm__watch_again(struct dlm_client *);
/* Run a state note's callback (c->mu not held). */
void		 dlm__watch_deliver(struct dlm_client *, const struct note *);
void		 dlm__watches_free(struct dlm_client *);

/* core.c */
void		 dlm__req_free(struct dlm_req *);
/* Take the queued completions and notes (c->mu held). */
struct dlm_req	*dlm__take_completions(struct dlm_client *);
struct note	*dlm__take_notes(struct dlm_client *);
/* Run them, without c->mu, and free them; how many completions ran. */
int		 dlm__run_completions(struct dlm_client *, struct dlm_req *);
void		 dlm__run_notes(struct dlm_client *, struct note *);
struct dlm_client *dlm__client_new(const char *server,
		    const struct dlm_options *, bool loop, int *err);
void		 dlm__client_free(struct dlm_client *);
/*
 * dlm_close() in two halves, around stopping the threaded mode's driver:
 * the first says bye (false: nothing more to do here, c may be gone);
 * the second closes the engine, runs what is left and frees c.
 */
bool		 dlm__close_begin(struct dlm_client *);
void		 dlm__close_end(struct dlm_client *);

/* thread.c */
int		 dlm__thread_start(struct dlm_client *);
/* Wait for the first connect to open the session: 0 or an error. */
int		 dlm__connect_wait(struct dlm_client *);
/*
 * A caller waiting for req drives the engine for a while, if nobody else
 * does (c->mu held; dropped meanwhile).
 */
void		 dlm__drive(struct dlm_client *, const struct dlm_req *);
void		 dlm__wake_io(struct dlm_client *);
/* Stop the I/O thread and any driving caller (c->mu not held). */
void		 dlm__thread_stop(struct dlm_client *);

/* loop.c */
/* Tell the watcher if fd, events or deadline changed (c->mu not held). */
void		 dlm__loop_notify(struct dlm_client *);

/* client.c */
/*
 * Enter a public call: 0 with c->mu held, or an error (kept for
 * dlm_errmsg(), as c may be freed as soon as it is returned).
 */
int		 dlm__enter(struct dlm_client *);
void		 dlm__leave(struct dlm_client *);
/*
 * Send a request. params is a packed map (or NULL for none). With req->kind
 * REQ_SYNC, writes it, waits for the reply and returns its error; otherwise
 * returns 0 once queued. Called with c->mu held (inside dlm__enter).
 */
/*
 * A synchronous request on the caller's stack, with its condition
 * variable (destroyed by the caller) and its lock (not copied, not freed).
 */
void		 dlm__sync_req(struct dlm_req *, pthread_cond_t *,
		    const char *lock);
int		 dlm__call(struct dlm_client *, struct dlm_req *,
		    const char *method, const msgpack_sbuffer *params);

#endif
