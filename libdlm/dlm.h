/*
 * libdlm: take named locks from dlmd.
 *
 * A client made by dlm_connect() is safe to use from any thread; many
 * threads may wait on different locks through one client at once. It has
 * one background thread that reads replies, keeps the session's lease
 * alive, delivers lost notifications and, when the session has a linger,
 * reconnects and resumes it after a dropped connection.
 *
 * A client made by dlm_connect_loop() has no thread: the program's event
 * loop does all of that by calling dlm_loop_process() (see below, and
 * <dlm/libevent.h> and <dlm/libuv.h> for loops that are done already).
 *
 * Functions return 0 or an error code: a dlmd protocol error (DLM_E_TIMEOUT
 * and the others below, the same numbers and names as on the wire) or a
 * library error (DLM_E_CONNECT and above). dlm_strerror() says what it means.
 *
 * This is not the Linux cluster DLM's libdlm: see dlm(3).
 */
#ifndef DLM_H
#define DLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define DLM_API	__attribute__((visibility("default")))
#else
#define DLM_API
#endif

/*
 * Error codes: the one list of them, from which the constants below, the
 * daemon's names on the wire and dlm_strerror()'s sentences are all made,
 * so that none can drift from another. Each row is
 *
 *	X(constant, value, name, sentence)
 *
 * name is what dlm_errname() returns, and for the server's codes the
 * protocol's name on the wire; sentence is what dlm_strerror() returns.
 * Codes are stable once released: add rows, never renumber.
 */

/* Errors from the server: the protocol's codes, numbered from 0 up. */
#define DLM_SERVER_ERRORS(X)						\
	X(DLM_OK, 0, "OK", "success")					\
	X(DLM_E_BAD_REQUEST, 1, "BAD_REQUEST", "malformed request")	\
	X(DLM_E_NO_SESSION, 2, "NO_SESSION",				\
	    "no session: send hello first")				\
	X(DLM_E_NAME_IN_USE, 3, "NAME_IN_USE",				\
	    "client name is in use by a live session")			\
	X(DLM_E_WOULD_BLOCK, 4, "WOULD_BLOCK", "lock is not free")	\
	X(DLM_E_TIMEOUT, 5, "TIMEOUT",					\
	    "timed out waiting for the lock")				\
	X(DLM_E_NOT_HELD, 6, "NOT_HELD",				\
	    "lock is not held by this session")				\
	X(DLM_E_ALREADY_HELD, 7, "ALREADY_HELD",			\
	    "lock is already held or awaited by this session")		\
	X(DLM_E_KIND_MISMATCH, 8, "KIND_MISMATCH",			\
	    "lock exists with the other kind")				\
	X(DLM_E_CANCELLED, 9, "CANCELLED", "request was cancelled")	\
	X(DLM_E_LIMIT, 10, "LIMIT",					\
	    "a configured limit would be exceeded")			\
	X(DLM_E_PERMISSION, 11, "PERMISSION", "permission denied")	\
	X(DLM_E_NOT_FOUND, 12, "NOT_FOUND", "no such lock or client")	\
	X(DLM_E_SHUTTING_DOWN, 13, "SHUTTING_DOWN",			\
	    "server is shutting down")					\
	X(DLM_E_DEADLOCK, 14, "DEADLOCK", "deadlock detected")		\
	X(DLM_E_UNSUPPORTED, 15, "UNSUPPORTED",				\
	    "protocol version not supported")				\
	X(DLM_E_NOT_ACTIVE, 16, "NOT_ACTIVE",				\
	    "this server is not the cluster's active one")

/* Errors of the library, from 100 up. */
#define DLM_LIBRARY_ERRORS(X)						\
	X(DLM_E_CONNECT, 100, "CONNECT",				\
	    "cannot connect to the dlm server")				\
	X(DLM_E_DISCONNECTED, 101, "DISCONNECTED",			\
	    "the connection to the server was lost with the "		\
	    "request in flight")					\
	X(DLM_E_CLOSED, 102, "CLOSED",					\
	    "the client is closed or its session has ended")		\
	X(DLM_E_FORKED, 103, "FORKED",					\
	    "the client was made by the parent process; connect "	\
	    "again after fork()")					\
	X(DLM_E_INVALID, 104, "INVALID", "invalid argument")		\
	X(DLM_E_NOMEM, 105, "NOMEM", "out of memory")			\
	X(DLM_E_PROTOCOL, 106, "PROTOCOL",				\
	    "the server sent a reply this library cannot read")		\
	X(DLM_E_ADDRESS, 107, "ADDRESS",				\
	    "bad server address: use unix:PATH, tcp:HOST:PORT or tls:HOST:PORT")

#define DLM_ERRORS(X)	DLM_SERVER_ERRORS(X) DLM_LIBRARY_ERRORS(X)

/* The constants, DLM_OK = 0 to DLM_E_ADDRESS = 107. */
enum dlm_error {
#define DLM__ERROR_CONSTANT(constant, value, name, sentence)	\
	constant = value,
	DLM_ERRORS(DLM__ERROR_CONSTANT)
#undef DLM__ERROR_CONSTANT
};

/* Flags of dlm_acquire() (and of struct dlm_acquire_opts). */
#define DLM_RLOCK	0x1	/* reentrant per client; default mutex */
#define DLM_SHARED	0x2	/* shared mode; default exclusive */
/*
 * A counting semaphore (dlm_acquire_ex() only): opts->permits of its
 * opts->capacity. Not with DLM_RLOCK or DLM_SHARED.
 */
#define DLM_SEMAPHORE	0x4
/*
 * While the hold lasts, call the on_contended callback of struct
 * dlm_options when others start waiting for the lock (dlm_acquire_ex(3)).
 */
#define DLM_NOTIFY_CONTENDED	0x8
/*
 * dlm_acquire_ex() only: wait even if the wait would close a cycle of
 * waits (rely on the timeout), rather than fail with DLM_E_DEADLOCK.
 */
#define DLM_NO_DEADLOCK_CHECK	0x10

/* Timeouts. */
#define DLM_TRY		0	/* fail with DLM_E_WOULD_BLOCK at once */
#define DLM_FOREVER	(-1)	/* wait until granted */

/*
 * Why a hold was lost (the lost callback's reason). All but
 * DLM_LOST_SESSION are also the protocol's, sent by name ("forced",
 * "reset", "expired", "failover").
 */
#define DLM_LOST_FORCED		1	/* an admin force-released it */
#define DLM_LOST_RESET		2	/* an admin reset this client */
#define DLM_LOST_EXPIRED	3	/* the lease ran out */
#define DLM_LOST_SESSION	4	/* the connection dropped and the session
					   could not be resumed */
#define DLM_LOST_FAILOVER	5	/* a cluster's new active dlmd did not
					   let it be kept */

struct dlm_client;

typedef void	(*dlm_lost_cb)(struct dlm_client *, const char *lock,
		    uint64_t token, int reason, void *arg);
/*
 * Others wait for lock, held with token by an acquire with
 * DLM_NOTIFY_CONTENDED: waiters of them when the first came.
 */
typedef void	(*dlm_contended_cb)(struct dlm_client *, const char *lock,
		    uint64_t token, uint32_t waiters, void *arg);

/*
 * Fill with dlm_options_init(), then set the fields wanted. size lets the
 * struct grow at its end in later releases without breaking programs
 * built against this one: the library reads only the caller's size of it.
 */
struct dlm_options {
	/*
	 * sizeof(struct dlm_options) as the program was built, set by
	 * dlm_options_init(); 0 (a struct filled by hand) is this layout.
	 */
	size_t		 size;
	/* Unique client name; NULL: "HOST:PID:N" made by the library. */
	const char	*client;
	/* Free text shown by `dlmctl clients`. */
	const char	*label;
	/* Lease in ms; 0: the server's default. */
	int		 lease_ms;
	/* How long the session outlives a dropped connection; 0: not at all. */
	int		 linger_ms;
	/* Token for hello's auth (a TCP client token or the admin token). */
	const char	*auth;
	/* How long dlm_connect() may take in ms; 0: 10 seconds. */
	int		 connect_timeout_ms;
	/*
	 * Called when a hold is lost: from the client's thread, or in the
	 * event-loop mode from dlm_loop_process(). It must not block for
	 * long; blocking calls on this client from it fail with
	 * DLM_E_INVALID. Only in the event-loop mode may it call dlm_close().
	 */
	dlm_lost_cb	 on_lost;
	void		*on_lost_arg;
	/*
	 * Called, as on_lost is (same thread, same rules), when a hold taken
	 * with DLM_NOTIFY_CONTENDED gets its first waiter: once per hold,
	 * and again only after nobody waited for a while. A hint to give
	 * the lock up soon; nothing is lost meanwhile.
	 */
	dlm_contended_cb on_contended;
	void		*on_contended_arg;
	/*
	 * For a tls: server (files in PEM; NULL: $DLM_TLS_CA, $DLM_TLS_CERT,
	 * $DLM_TLS_KEY, else none). The server's certificate must be signed
	 * by tls_ca (none: the system's CAs) and name the host dialled.
	 * tls_cert (a chain) and tls_key: the client's certificate, for a
	 * server that asks for one; no key: the key is in tls_cert's file.
	 */
	const char	*tls_ca;
	const char	*tls_cert;
	const char	*tls_key;
};

/* Fill opts with the defaults, and opts->size with its size. */
DLM_API void	dlm_options_init(struct dlm_options *opts);

/*
 * Connect and open a session. server is "unix:/path", "tcp:host:port",
 * "tls:host:port", or
 * NULL for $DLM_SERVER, else the default socket. opts may be NULL. On
 * failure returns NULL and sets *err when err is not NULL. Options of a
 * newer layout than this library's fail with DLM_E_INVALID when a field
 * it does not know is set (not zero).
 */
DLM_API struct dlm_client *dlm_connect(const char *server,
		    const struct dlm_options *opts, int *err);

/*
 * Take a lock. flags: DLM_RLOCK, DLM_SHARED. timeout_ms: DLM_TRY (0),
 * DLM_FOREVER (-1), or milliseconds. On success *token (when not NULL) is
 * the fencing token.
 */
DLM_API int	dlm_acquire(struct dlm_client *, const char *lock, int flags,
		    int timeout_ms, uint64_t *token);
/*
 * What dlm_acquire_ex() asks for: fill with dlm_acquire_opts_init(), then
 * set the fields wanted. As with struct dlm_options, size lets the struct
 * grow at its end; the library reads only the caller's size of it, and a
 * field it does not know must be left zero. See dlm_acquire_ex(3).
 */
struct dlm_acquire_opts {
	size_t		 size;		/* set by dlm_acquire_opts_init() */
	int		 flags;		/* as dlm_acquire()'s, DLM_SEMAPHORE,
					   DLM_NOTIFY_CONTENDED */
	int		 timeout_ms;	/* default DLM_FOREVER */
	/*
	 * DLM_SEMAPHORE: the semaphore's capacity (1 to INT32_MAX, required,
	 * the same for every user of the name) and the permits to take (0
	 * means 1; at most capacity). 0 for other locks.
	 */
	uint32_t	 capacity;
	uint32_t	 permits;
	/*
	 * A value the hold carries, shown to watchers and listings (a
	 * leader's address, say): value_len bytes, copied; NULL or 0: none.
	 */
	const void	*value;
	size_t		 value_len;
	/*
	 * When the hold ends without this client letting go (its process
	 * dies, its lease runs out, an admin takes it), the server grants
	 * the lock to nobody for this many ms. 0: no delay.
	 */
	int		 lock_delay_ms;
};

DLM_API void	dlm_acquire_opts_init(struct dlm_acquire_opts *opts);
/* dlm_acquire() with the further choices of opts (NULL: the defaults). */
DLM_API int	dlm_acquire_ex(struct dlm_client *, const char *lock,
		    const struct dlm_acquire_opts *opts, uint64_t *token);
/*
 * Change the mode of a lock this client holds (the whole depth of an
 * rlock): flags DLM_SHARED for shared, 0 for exclusive. Exclusive to
 * shared is done at once and keeps the token; shared to exclusive waits
 * up to timeout_ms for the other holders to go, ahead of every waiter,
 * and gets a new token. *token (when not NULL) is the hold's token after.
 * DLM_E_NOT_HELD when not held; DLM_E_DEADLOCK when another holder is
 * converting it too, or the wait would close a cycle. See dlm_convert(3).
 */
DLM_API int	dlm_convert(struct dlm_client *, const char *lock, int flags,
		    int timeout_ms, uint64_t *token);
/* Give a lock back (one level of an rlock; all of a semaphore's permits). */
DLM_API int	dlm_release(struct dlm_client *, const char *lock);
/*
 * Give back some of the permits held of a semaphore, keeping the hold (and
 * its token) with the rest; all of them end it, as dlm_release() does.
 */
DLM_API int	dlm_release_permits(struct dlm_client *, const char *lock,
		    uint32_t permits);

/*
 * Watches: be told each time a lock's holders change. See dlm_watch(3).
 *
 * One holder of a lock, as a watch shows it; valid during the callback.
 * client is NUL-terminated; value is NULL when the hold carries none.
 */
struct dlm_holder {
	const char	*client;
	uint64_t	 token;
	int		 shared;	/* 1: shared mode, 0: exclusive */
	const void	*value;
	size_t		 value_len;
};

/*
 * The lock's holders (nholders of them; at most 1000 are listed) and how
 * many wait. Runs where on_lost runs: the client's thread, or in the
 * event-loop mode inside dlm_loop_process().
 */
typedef void	(*dlm_changed_cb)(struct dlm_client *, const char *lock,
		    const struct dlm_holder *holders, size_t nholders,
		    size_t waiters, void *arg);
/*
 * Watch lock: cb is called soon with its state now, then after each
 * change of its holders, until dlm_unwatch() or dlm_close(); after a
 * reconnect or a fail-over, with the state then. Blocks for the
 * server's answer. DLM_E_ALREADY_HELD if this client watches it already.
 */
DLM_API int	dlm_watch(struct dlm_client *, const char *lock,
		    dlm_changed_cb cb, void *arg);
/*
 * Stop watching (a watch or an observe); no call of its callback runs
 * after this returns, unless this is called from that callback.
 * DLM_E_NOT_FOUND if not watched. Does not block for the server.
 */
DLM_API int	dlm_unwatch(struct dlm_client *, const char *lock);

/*
 * Leader election on a lock named election: campaign takes it
 * exclusively with value (a mutex acquire, blocking and timing out like
 * dlm_acquire_ex()), resign gives it back, and observe watches who leads:
 * leader is NULL while nobody does.
 */
typedef void	(*dlm_leader_cb)(struct dlm_client *, const char *election,
		    const struct dlm_holder *leader, void *arg);
DLM_API int	dlm_campaign(struct dlm_client *, const char *election,
		    const void *value, size_t value_len, int timeout_ms,
		    uint64_t *token);
DLM_API int	dlm_resign(struct dlm_client *, const char *election);
DLM_API int	dlm_observe(struct dlm_client *, const char *election,
		    dlm_leader_cb cb, void *arg);
/* Release every lock this client holds. */
DLM_API int	dlm_reset(struct dlm_client *);
/* Ask the server whether (lock, token) is a current hold; *held 0 or 1. */
DLM_API int	dlm_check(struct dlm_client *, const char *lock, uint64_t token,
		    int *held);
/*
 * Whether this client still holds lock, as far as it knows without asking:
 * 1 when held, not reported lost, and within its lease; else 0. *token is
 * set when not NULL and held.
 */
DLM_API int	dlm_holds(struct dlm_client *, const char *lock,
		    uint64_t *token);
/* Close the session (releasing its locks) and free the client. NULL is ok. */
DLM_API void	dlm_close(struct dlm_client *);

/* The client name the session has (valid until dlm_close). */
DLM_API const char *dlm_client_name(struct dlm_client *);
/*
 * What the calling thread's last call on this client that returns an error
 * code said in words, as the server put it ("lock 'x' is held by web-1
 * since ...") or the library did; "" when that call succeeded. Valid until
 * this thread's next such call on the client, or dlm_close(). Inside an
 * async callback or the state callback: that completion's. With NULL: the
 * calling thread's last failed dlm_connect() or dlm_connect_loop().
 */
DLM_API const char *dlm_errmsg(struct dlm_client *);
/* A sentence for an error code, and its name ("TIMEOUT"). */
DLM_API const char *dlm_strerror(int err);
DLM_API const char *dlm_errname(int err);

/*
 * Call a method by name, for inspection and administration (locks, lock,
 * clients, stats, ping, check, force_release, reset_client, reset_all, and
 * methods newer than this library). params is one msgpack-encoded map, or
 * NULL with params_len 0. On success *result (when not NULL) is the
 * msgpack-encoded result, to free with dlm_free(). On a server error the
 * server's sentence is in *message (when not NULL; dlm_free() it). The methods
 * that change what this client holds (acquire, release, convert, cancel,
 * reset, hello, bye) fail with DLM_E_INVALID: use the calls above.
 */
DLM_API int	dlm_call(struct dlm_client *, const char *method,
		    const void *params, size_t params_len, void **result,
		    size_t *result_len, char **message);
/*
 * Free what the library allocated for the caller (dlm_call()'s result and
 * message), with the allocator that made it. NULL is ok.
 */
DLM_API void	dlm_free(void *);

/*
 * Scoped helpers.
 *
 * dlm_with_lock() takes the lock, calls fn(arg, token), releases, and returns
 * fn's result, or the error that kept it from calling fn.
 */
DLM_API int	dlm_with_lock(struct dlm_client *, const char *lock, int flags,
		    int timeout_ms, int (*fn)(void *arg, uint64_t token),
		    void *arg);

/*
 * DLM_LOCKED(scope, client, lock, flags, timeout_ms) { ... } else { ... }
 *
 * Runs the first block holding the lock, with scope.token its token, and
 * releases it however the block is left: its end, break, continue, return,
 * goto, or an exception unwinding through it. It is a loop that runs once:
 * break and continue leave the block only, never a loop around it (use
 * goto, return, or a flag tested after the block). The optional else block
 * runs when the lock was not taken; scope.err says why. GCC and Clang only.
 */
struct dlm_scope {
	struct dlm_client	*client;
	const char		*lock;
	uint64_t		 token;
	int			 err;
	int			 done;
};

DLM_API struct dlm_scope dlm_scope_acquire(struct dlm_client *,
		    const char *lock, int flags, int timeout_ms);
DLM_API void	dlm_scope_release(struct dlm_scope *);

#define DLM_LOCKED(scope, client, lock, flags, timeout_ms)		\
	for (struct dlm_scope scope					\
	    __attribute__((cleanup(dlm_scope_release))) =		\
	    dlm_scope_acquire((client), (lock), (flags), (timeout_ms));	\
	    !scope.done; scope.done = 1)				\
		if (scope.err == 0)

/*
 * Asynchronous form. With a client of dlm_connect(), the request is sent at
 * once; its completion is queued, and dlm_async_fd() becomes readable. The
 * program then calls dlm_async_dispatch(), which runs the queued callbacks
 * in the calling thread. With a client of dlm_connect_loop(), the callbacks
 * run inside dlm_loop_process() instead. Each callback runs exactly once,
 * with an error if the connection dies or the client is closed.
 */
typedef void	(*dlm_acquire_cb)(struct dlm_client *, int err,
		    uint64_t token, void *arg);
typedef void	(*dlm_done_cb)(struct dlm_client *, int err, void *arg);

DLM_API int	dlm_acquire_async(struct dlm_client *, const char *lock,
		    int flags, int timeout_ms, dlm_acquire_cb cb, void *arg);
DLM_API int	dlm_release_async(struct dlm_client *, const char *lock,
		    dlm_done_cb cb, void *arg);
/* dlm_acquire_async(), also saying the request's id for dlm_cancel_request. */
DLM_API int	dlm_acquire_async_id(struct dlm_client *, const char *lock,
		    int flags, int timeout_ms, dlm_acquire_cb cb, void *arg,
		    uint64_t *id);
/* dlm_acquire_async_id() with the choices of dlm_acquire_ex(). */
DLM_API int	dlm_acquire_ex_async(struct dlm_client *, const char *lock,
		    const struct dlm_acquire_opts *opts, dlm_acquire_cb cb,
		    void *arg, uint64_t *id);
/* dlm_convert(), its result told to cb; dlm_cancel() cancels it. */
DLM_API int	dlm_convert_async(struct dlm_client *, const char *lock,
		    int flags, int timeout_ms, dlm_acquire_cb cb, void *arg);
/* A descriptor readable while completions are queued (for poll/epoll). */
DLM_API int	dlm_async_fd(struct dlm_client *);
/* Run the queued completions; returns how many ran. */
DLM_API int	dlm_async_dispatch(struct dlm_client *);

/*
 * Cancel a waiting acquire: dlm_cancel() every acquire (and convert) of
 * lock this client is waiting for (from another thread, or from the event
 * loop), and
 * dlm_cancel_request() one asynchronous acquire by its id. The acquire then
 * fails with DLM_E_CANCELLED, unless it was granted first. 0 when one was
 * waiting, else DLM_E_NOT_FOUND.
 */
DLM_API int	dlm_cancel(struct dlm_client *, const char *lock);
DLM_API int	dlm_cancel_request(struct dlm_client *, uint64_t id);

/*
 * Event-loop mode: the library makes no thread; the program's loop waits
 * on dlm_loop_fd() for dlm_loop_events() and at most dlm_loop_timeout_ms(),
 * then calls dlm_loop_process() with the events that came (0 when the time
 * ran out). The async calls, on_lost and the state callback all run inside
 * dlm_loop_process(), in the loop's thread. See dlm_loop(3).
 */
#define DLM_EV_READ	0x1
#define DLM_EV_WRITE	0x2
#define DLM_EV_FREE	0x4	/* to the watcher: the client is being freed */

/* The state callback's states. */
#define DLM_STATE_CONNECTED	1	/* the session is open (or resumed) */
#define DLM_STATE_RECONNECTING	2	/* dropped; resuming within linger */
#define DLM_STATE_CLOSED	3	/* over; err says why */

typedef void	(*dlm_state_cb)(struct dlm_client *, int state, int err,
		    void *arg);
/* Told what to wait for now: timeout_ms -1 is none. */
typedef void	(*dlm_watch_cb)(struct dlm_client *, int fd, int events,
		    int timeout_ms, void *arg);

/*
 * Start connecting and return at once; the connection and the session's
 * hello proceed as the loop calls dlm_loop_process(). NULL with *err only
 * for what fails before any I/O (a bad address, no memory).
 */
DLM_API struct dlm_client *dlm_connect_loop(const char *server,
		    const struct dlm_options *opts, int *err);
/* The socket to wait on, or -1 while there is none (a back-off). */
DLM_API int	dlm_loop_fd(struct dlm_client *);
/* DLM_EV_READ and DLM_EV_WRITE, 0, or -1 for a client of dlm_connect(). */
DLM_API int	dlm_loop_events(struct dlm_client *);
/* How long the loop may wait at most; -1: no limit. */
DLM_API int	dlm_loop_timeout_ms(struct dlm_client *);
/* 0, or DLM_E_CLOSED once the session is over (then call dlm_close). */
DLM_API int	dlm_loop_process(struct dlm_client *, int events);
/*
 * Have fn called whenever the fd, events or timeout change (and with
 * DLM_EV_FREE when dlm_close frees the client), so that an adapter need
 * not ask after every call. Called at once with the current ones.
 */
DLM_API void	dlm_loop_set_watch(struct dlm_client *, dlm_watch_cb fn,
		    void *arg);
DLM_API void	dlm_loop_set_state_cb(struct dlm_client *, dlm_state_cb fn,
		    void *arg);

#ifdef __cplusplus
}
#endif

#endif
