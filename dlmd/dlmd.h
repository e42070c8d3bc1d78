/*
 * dlmd: the lock daemon. One private header, grouped by source file.
 *
 * Layers, bottom up. A file calls only functions of its own layer's
 * helpers or of layers below it; nothing below calls up, except through a
 * table of callbacks it was given (struct lt_ops, struct conn_handlers).
 *
 *   locktab.c	the lock table: pure logic, no clock, no I/O (locktab.h)
 *   etcd_codec.c  etcd's JSON: endpoint URLs, base64, the answers read and
 *		the requests built; pure, like the table
 *   log.c timers.c memory.c options.c state.c
 *		logging and the one escaping rule for client bytes, timer
 *		durations, heap trimming, settings, the daemon's state object
 *   conn.c	sockets, framing, output buffers and their limit; hands
 *		whole frames to its handlers and knows nothing of sessions
 *   tls.c	TLS for conn.c: the certificate and key, the handshake, the
 *		reads and writes of a tls: connection, its identity
 *   reply.c	every message the server sends: results, errors, grants,
 *		lost and contended notices
 *   auth.c	who may do what: admin uids, tokens, the TCP token rule
 *   session.c	sessions (names, leases, linger) and their pending
 *		acquires; the lock table's callbacks
 *   receipt.c	the receipts' MACs under the cluster's secret; pure
 *   etcd_tls.c	TLS to etcd's https:// endpoints: the client context and
 *		each connection's name check
 *   etcd.c	an asynchronous etcd client on the loop (JSON gateway);
 *		nothing of locks
 *   records.c	which sessions may hold locks, recorded in etcd, and
 *		which of them have reclaimed after a fail-over
 *   cluster.c	the cluster's roles over etcd: election, stepping down in
 *		time, fencing-token ranges, the grace after a fail-over
 *   request.c	what method handlers share: params read and checked,
 *		refusals worded, rights asked
 *   admin.c reclaim.c convert.c  methods, on request.c's helpers
 *   watch.c	watches of locks and their "changed" notices (the lock
 *		table's changed callback)
 *   dispatch.c	a frame decoded and checked, its method found and run
 *		(hello, acquire and the other core methods are here too);
 *		deferred frames served again
 *   metrics.c	the Prometheus endpoint (reads counters only)
 *   server.c	listeners, start and shutdown; wires conn to dispatch
 *   main.c	options, detaching, signals, the loop
 */
#ifndef DLMD_H
#define DLMD_H

#include <sys/types.h>
#include <sys/queue.h>
#include <bsd/sys/tree.h>

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/event_struct.h>
#include <msgpack.h>

#include "locktab.h"
#include "mpack.h"
#include "proto.h"
#include "receipt.h"

#define DLMD_MAX_ADMIN_UIDS	32
#define DLMD_SECRET_LEN		32	/* hex characters */
#define DLMD_INFO_MAX		255	/* bytes of each info string */
#define DLMD_READ_CHUNK		65536
#define DLMD_BATCH		64	/* requests served per wake-up */
#define DLMD_LIST_BYTES		(256 * 1024)	/* a listing page's soft cap */
#define DLMD_CLUSTER_NAME_MAX	128
#define DLMD_ADVERTISE_MAX	300
#define DLMD_CLUSTER_LEASE_MAX	30000	/* lease-max's default in a cluster */

/* Settings: defaults, then the settings file, then the command line. */
struct dlmd_config {
	char		 *config_file;
	bool		  config_file_read;	/* it existed and was read */
	bool		  check_only;		/* --check-config */
	bool		  daemon;
	bool		  syslog;
	char		 *pidfile;
	char		 *metrics_listen;	/* ADDR:PORT or NULL */
	char		**listen;
	int		  nlisten;
	int		  log_level;
	uint32_t	  lease_min_ms;
	uint32_t	  lease_max_ms;
	bool		  lease_max_set;	/* by the file or a flag */
	uint32_t	  lease_default_ms;
	uint32_t	  linger_max_ms;
	uint32_t	  max_clients;
	bool		  max_clients_set;	/* by the file or a flag */
	uint32_t	  max_holds;
	uint32_t	  max_waits;
	uint32_t	  max_name_len;
	uint32_t	  max_request;
	uint32_t	  max_output;
	uint32_t	  max_value_len;	/* bytes of a hold's value */
	uint32_t	  max_watches;		/* watches per session */
	uint32_t	  max_lock_delay_ms;	/* 0: no delays */
	mode_t		  socket_mode;
	uid_t		  admin_uids[DLMD_MAX_ADMIN_UIDS];
	int		  nadmin_uids;
	char		 *client_token;		/* TCP hello must present it */
	char		 *admin_token;		/* grants admin over TCP */
	struct dlm_named_token *tokens;		/* --tokens-file */
	int		  ntokens;
	char		 *acl_file;
	struct acl	 *acl;			/* NULL: no rules file */
	char		 *cluster_etcd;		/* URLs; NULL: not clustered */
	char		 *cluster_name;		/* NULL: "dlm" */
	char		 *advertise;
	uint32_t	  cluster_ttl_ms;
	/* TLS on tls: listeners (tls.c). */
	char		 *tls_cert;		/* PEM chain */
	char		 *tls_key;
	char		 *tls_ca;		/* set: client certs required */
	uint32_t	  tls_handshake_timeout_ms;
	/* TLS to etcd's https:// endpoints (etcd_tls.c). */
	char		 *cluster_etcd_ca;	/* NULL: the system's CAs */
	char		 *cluster_etcd_cert;	/* client certificate chain */
	char		 *cluster_etcd_key;
};

struct stats {
	uint64_t	requests;
	uint64_t	acquires;
	uint64_t	grants;
	uint64_t	releases;
	uint64_t	timeouts;
	uint64_t	cancels;
	uint64_t	expiries;
	uint64_t	forced;
	uint64_t	errors;
	uint64_t	connections;
	uint64_t	sessions_total;
	uint64_t	resumes;
	uint64_t	bytes_in;
	uint64_t	bytes_out;
	uint64_t	protocol_errors;
	uint64_t	output_overflows;
	uint64_t	would_blocks;	/* acquires refused as busy */
	uint64_t	refused;	/* acquires refused otherwise */
	uint64_t	contended;	/* contention notices sent */
	uint64_t	deadlocks;	/* acquires and converts: DEADLOCK */
};

/*
 * Who is at the other end of a connection: a Unix peer (the kernel's
 * SO_PEERCRED; name is the user's name, or "uid:N"), a TLS client
 * certificate (its subject CN or first SAN), or a named token given in
 * hello (name is the token's name, never its secret). ID_NONE: a TCP peer
 * that proved nothing.
 */
struct identity {
	enum { ID_NONE, ID_UNIX, ID_TLS, ID_TOKEN } kind;
	uid_t	uid;
	gid_t	gid;
	/*
	 * Owned by the connection (conn_set_identity_name()), NULL while
	 * ID_NONE: on the heap, as most connections are made by a handful of
	 * identities and ten thousand of them must stay small.
	 */
	char	*name;
};
/* The longest identity name, with its NUL. */
#define IDENT_NAME_MAX	256

struct acl;
struct dlm_named_token;
struct conn;
struct session;
struct listener;
struct watch;

/* An acquire waiting in the lock table; owned by its session. */
struct pending {
	TAILQ_ENTRY(pending)	 link;
	struct session		*session;
	struct lt_wait		*wait;
	struct event		 timer;
	uint32_t		 msgid;
	bool			 timed;
	uint64_t		 deadline;	/* now_ms() of the timeout */
	bool			 convert;	/* a convert's, not an acquire's */
};

/* A session's record in etcd (records.c). */
enum {
	RECORD_NONE,
	RECORD_PUTTING,		/* its first acquire waits for this */
	RECORD_DONE,
};

struct session {
	struct lt_owner		 owner;		/* the lock table's view */
	RB_ENTRY(session)	 by_name;
	TAILQ_ENTRY(session)	 dead_link;
	TAILQ_HEAD(, pending)	 pending;
	struct conn		*conn;		/* NULL while lingering */
	struct event		 timer;		/* lease, or linger when detached */
	bool			 lease_armed;	/* timer is the lease's */
	uint64_t		 id;
	char			*name;
	char			*info_host;
	char			*info_label;
	int64_t			 info_pid;	/* -1: not given */
	char			 secret[DLMD_SECRET_LEN + 1];
	char			 peer[80];	/* of the last connection */
	uint32_t		 lease_ms;
	uint32_t		 linger_ms;
	uint64_t		 linger_deadline;
	bool			 lingering;
	bool			 ended;
	int			 record;	/* RECORD_* */
	int64_t			 record_rev;	/* its mod_revision */
	uint32_t		 record_lease_ms;	/* the lease ceiling */
	/* Its hold receipts' common start, made at the first grant. */
	struct receipt_prefix	 hold_prefix;
	bool			 have_hold_prefix;
	/* The locks it watches (watch.c), while it has a connection. */
	LIST_HEAD(, watch)	 watches;
	uint32_t		 nwatches;
};

RB_HEAD(session_tree, session);

struct ssl_st;
struct ssl_ctx_st;
struct bufferevent;
struct x509_st;

struct conn {
	TAILQ_ENTRY(conn)	 link;
	TAILQ_ENTRY(conn)	 flush_link;
	struct event		 ev_read;
	struct event		 ev_write;
	struct event		 hello_timer;
	struct evbuffer		*out;
	struct session		*session;
	char			*in;		/* a partial frame, or backlog */
	size_t			 in_len;
	size_t			 in_cap;
	int			 fd;
	bool			 is_unix;
	bool			 admin;
	bool			 closing;	/* close once output is written */
	bool			 dead;
	bool			 dirty;		/* in the flush list */
	bool			 backlog;	/* whole frames left in in */
	bool			 overflowed;	/* output over max_output */
	bool			 paused;	/* frames wait in in */
	TAILQ_ENTRY(conn)	 defer_link;
	char			*deferred;	/* a frame to serve again */
	size_t			 deferred_len;
	uid_t			 uid;
	pid_t			 pid;
	char			 peer[80];
	struct identity		 ident;
	struct ssl_st		*ssl;		/* a tls: connection's */
	bool			 handshaking;	/* no frame before it ends */
};

enum cluster_role {
	CLUSTER_SINGLE,		/* not clustered */
	CLUSTER_STARTING,	/* no etcd lease yet */
	CLUSTER_STANDBY,
	CLUSTER_ACTIVE,
};

/* What the cluster's role machine shows the rest (cluster.c writes it). */
struct cluster_status {
	bool		enabled;
	int		role;		/* enum cluster_role */
	int64_t		epoch;		/* of the active known; 0: none */
	char		id[17];
	char		active[DLMD_ADVERTISE_MAX + 1];	/* "": unknown */
	char		why[400];	/* why not granting, or last trouble */
	uint64_t	since;		/* now_ms() when the role began */
	uint64_t	lease_deadline;	/* now_ms() when grants must stop */
	uint64_t	grace_until;	/* now_ms() when the grace ends */
	uint64_t	grace_left_ms;	/* as of the last tick */
	uint64_t	token_lo;	/* reserved this term, when active */
	uint64_t	token_hi;
	uint64_t	failovers;	/* times this dlmd became active */
	uint64_t	fences;		/* times it stepped down */
	uint64_t	etcd_failures;
	uint64_t	reclaims;	/* sessions reclaimed here */
	uint64_t	reclaimed_holds;
	bool		have_key;	/* the cluster's secret is known */
	struct receipt_key key;
};

struct server {
	struct event_base	*base;
	struct dlmd_config	*cfg;
	struct locktab		*lt;
	TAILQ_HEAD(, listener)	 listeners;
	TAILQ_HEAD(, session)	 dead_sessions;
	struct session_tree	 sessions;
	struct event		*shutdown_timer;
	uint32_t		 nsessions;
	uint32_t		 nlingering;
	uint64_t		 next_session_id;
	uint64_t		 next_anon;
	uint64_t		 start_ms;
	uid_t			 uid;
	bool			 shutting_down;
	msgpack_zone		 zone;		/* decoded requests */
	msgpack_sbuffer		 result;	/* a result being built */
	struct stats		 stats;
	struct cluster_status	 cluster;
	char			 hostname[64];
	/* Fires when the earliest lock-delay ends (session.c). */
	struct event		 delay_timer;
	uint64_t		 delay_due;	/* now_ms() it is set for; 0: off */
};

/* state.c */
extern struct server	*srv;
const char	*cluster_role_word(int role);	/* enum cluster_role */

/* options.c */
int	config_build(struct dlmd_config *, int argc, char **argv, char *err,
	    size_t errlen);
void	config_free(struct dlmd_config *);

/* log.c */
enum {
	LOG_LEVEL_ERR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};
void		 log_init(int level, bool use_syslog);
void		 log_reopen(void);
int		 log_level_parse(const char *);
const char	*log_level_name(int);
void		 log_out_of_memory(const char *);
const char	*safe_str(const char *, size_t);
const char	*safe_str0(const char *);
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* timers.c */
uint64_t		 now_ms(void);
const struct timeval	*timer_tv(uint32_t ms);
void			 timers_init(struct event_base *);
bool			 timer_rearm_if_early(struct event *, uint64_t due_ms);

/* memory.c */
void	memory_init(struct event_base *);
void	memory_released(void);
void	memory_free(void);

/* conn.c */
/* Name the connection's identity (a copy; the old name is freed). */
void	conn_set_identity_name(struct conn *, const char *name);
struct conn_handlers {
	/* A whole frame arrived. */
	void	(*frame)(struct conn *, const char *buf, size_t len);
	/* A frame could not be read; c closes once the answer is written. */
	void	(*bad_frame)(struct conn *, const char *why);
	/* c is closed; its memory is freed by the next flush pass. */
	void	(*closed)(struct conn *);
	/* A flush pass ended: everything written, the dead freed. */
	void	(*flushed)(void);
};
void		 conn_init(struct event_base *, const struct dlmd_config *,
		    struct stats *, const struct conn_handlers *);
void		 conn_accept(int fd, const struct sockaddr *, int socklen,
		    bool is_unix);
void		 conn_accept_tls(int fd, const struct sockaddr *,
		    int socklen);
void		 conn_greeted(struct conn *);
void		 conn_hello_wait(struct conn *, uint32_t ms);
struct evbuffer	*conn_output(struct conn *);
void		 conn_queued(struct conn *);
void		 conn_close(struct conn *, const char *why);
void		 conn_pause(struct conn *);
void		 conn_resume(struct conn *);
void		 conn_close_after_flush(struct conn *);
void		 conn_close_all_after_flush(void);
void		 conn_kick(void);
uint32_t	 conn_count(void);
void		 conn_free_all(void);

/* tls.c */
int		 tls_check(const struct dlmd_config *, char *err,
		    size_t errlen);
int		 tls_setup(const struct dlmd_config *);
void		 tls_reload(const struct dlmd_config *);
void		 tls_free(void);
int		 tls_conn_start(struct conn *);
int		 tls_conn_handshake(struct conn *, bool *want_write, char *name,
		    size_t namelen, char *why, size_t len);
ssize_t		 tls_conn_read(struct conn *, void *, size_t, char *why,
		    size_t wlen);
bool		 tls_conn_pending(struct conn *);
int		 tls_conn_write(struct conn *, struct evbuffer *);
void		 tls_conn_end(struct conn *, bool handshaken);
void		 tls_conn_free(struct conn *);

/* reply.c */
void	reply_result(struct conn *, uint32_t msgid, const msgpack_sbuffer *);
void	reply_error(struct conn *, const uint32_t *msgid, int code,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	reply_not_active(struct conn *, uint32_t msgid, const char *active,
	    const char *message);
void	reply_grant(struct conn *, uint32_t msgid, const struct lt_hold *,
	    uint64_t valid_ms, const uint8_t *receipt);
void	pack_grant(struct mpw *, const struct lt_hold *, uint64_t valid_ms,
	    const uint8_t *receipt);
void	pack_converted(struct mpw *, const struct lt_hold *,
	    uint64_t valid_ms, const uint8_t *receipt);
void	reply_converted(struct conn *, uint32_t msgid, const struct lt_hold *,
	    uint64_t valid_ms, const uint8_t *receipt);
/* hidden: bit i set, step i's lock is not named (the caller may not view it). */
void	reply_deadlock(struct conn *, uint32_t msgid, const char *message,
	    const struct lt_cycle *, uint64_t hidden);
void	notify_lost(struct conn *, const struct lt_hold *, int reason);
void	notify_contended(struct conn *, const struct lt_hold *,
	    uint32_t waiters);

/* auth.c */
bool	auth_secret_equal(const char *, size_t, const char *, size_t);
int	auth_hello(struct conn *, const char *auth, size_t authlen, char *err,
	    size_t errlen);
int	auth_admin(const struct conn *, const char *method, char *err,
	    size_t errlen);
bool	auth_has_rules(void);
void	auth_log_rules(void);
int	auth_right(const struct conn *, unsigned right, const char *name,
	    size_t len, char *err, size_t errlen);
int	auth_right_found(const struct conn *, unsigned right,
	    const char *name, size_t len, char *err, size_t errlen);
bool	auth_may(const struct conn *, unsigned right, const char *name,
	    size_t len);

/* session.c */
extern const struct lt_ops session_lt_ops;
struct session	*session_of_owner(const struct lt_owner *);
struct session	*session_find(const char *name, size_t len);
struct session	*session_create(struct conn *, const char *name, size_t len);
void		 session_attach(struct session *, struct conn *);
void		 session_detach(struct session *);
void		 session_conn_closed(struct conn *);
void		 session_touch(struct session *, uint64_t now);
void		 session_expire(struct session *, struct conn *);
void		 session_end(struct session *, int lost_reason, int cancel_code);
void		 session_reap(void);
void		 session_end_all(int cancel_code);
uint64_t	 session_valid_ms(const struct session *, uint64_t now);
struct pending	*pending_new(struct session *, uint32_t msgid, int64_t timeout_ms);
void		 pending_free(struct pending *);
void		 pending_cancel(struct pending *, int code, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
void		 pending_cancel_all(struct session *, int code,
		    const char *message);
struct pending	*pending_find(struct session *, uint32_t msgid);
void		 session_random_secret(char *out);
struct session	*session_first_from(const char *key, size_t keylen);
bool		 session_receipt(const struct session *, uint8_t *out);
bool		 session_hold_receipt(struct session *,
		    const struct lt_hold *, uint8_t *out);
const char	*session_cluster_name(void);
struct session	*session_next(struct session *);
void		 session_delay_timer_cb(evutil_socket_t, short, void *);

/* records.c */
struct etcd;
void	records_init(struct etcd *, const char *cluster, void (*changed)(void));
void	records_free(void);
void	records_term_begin(uint64_t now, uint64_t margin_ms);
void	records_term_end(void);
void	records_tick(uint64_t now);
bool	records_loaded(void);
bool	records_settled(void);
bool	records_ensure(struct session *);
void	records_session_ended(const struct session *);
int	records_claim(const char *name, size_t len, uint64_t now,
	    uint32_t *lease_ms, int64_t *rev, const char **why);
bool	records_pending(const char *name, size_t len, uint64_t now);

/* cluster.c */
int		 cluster_start(struct event_base *, const struct dlmd_config *,
		    void (*changed)(void));
void		 cluster_stop(void);
void		 cluster_free(void);
void		 cluster_reload_tls(const struct dlmd_config *);
bool		 cluster_check(uint64_t now);
bool		 cluster_is_active(void);
void		 cluster_end_grace(void);
bool		 cluster_in_grace(void);
bool		 cluster_reclaim_ready(void);
void		 cluster_reclaimed(void);
const char	*cluster_not_granting(void);
const char	*cluster_endpoints(void);
const char	*cluster_current_endpoint(void);
int		 cluster_nmembers(void);
int		 cluster_members(int, const char **id, const char **advertise,
		    const char **role, int64_t *since);
uint64_t	 cluster_members_age_ms(void);
uint64_t	 cluster_lease_left_ms(void);

/* dispatch.c */
void	dispatch_frame(struct conn *, const char *buf, size_t len);
void	dispatch_bad_frame(struct conn *, const char *why);
void	dispatch_conn_closed(struct conn *);
void	dispatch_resume(void);

/* Requests as handlers see them. */
struct request {
	struct conn		*conn;
	const msgpack_object	*params;	/* a map, or NULL */
	uint32_t		 msgid;
	struct mpw		 res;		/* writes srv->result */
	char			 errmsg[512];
	const char		*err_active;	/* NOT_ACTIVE's hint, or NULL */
	const char		*frame;		/* the request's bytes */
	size_t			 framelen;
	const struct lt_cycle	*err_cycle;	/* DEADLOCK's cycle, or NULL */
	uint64_t		 err_cycle_hidden; /* steps not to name */
};
/* A handler's answer will come later (a wait); nothing is sent now. */
#define DISPATCH_PENDING	(-1)
/*
 * Serve this request again after the next change the cluster reports (a
 * session recorded, the active ready for reclaims), and nothing of its
 * connection before it, so that its frames keep their order.
 */
#define DISPATCH_DEFER		(-2)

/* request.c: what handlers use to read params and word refusals. */
/*
 * A lock's kind as acquire and reclaim name it: nil or absent is a mutex;
 * false for anything but "mutex", "rlock", "semaphore".
 */
bool	lock_kind(const msgpack_object *, int *kind);
int	request_opens_session(struct request *);
/* NOT_ACTIVE, naming the active member when known. */
int	request_not_active(struct request *);
int	request_error(struct request *, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* PERMISSION unless the rules grant right (ACL_*) on the lock. */
int	request_right(struct request *, unsigned right, const char *name,
	    size_t len);
int	param_name(struct request *, const char *key, bool required,
	    const char **p, size_t *len, size_t max);
int	param_int(struct request *, const char *key, bool required,
	    int64_t min, int64_t max, int64_t *v);
/* A str of at most max bytes, possibly empty; *p NULL when absent. */
int	param_str(struct request *, const char *key, const char **p,
	    size_t *len, size_t max);
/* An optional bool; *v is untouched when absent. */
int	param_bool(struct request *, const char *key, bool *v);
/* A lock's kind in words: "mutex", or "semaphore of capacity N". */
const char *kind_phrase(const struct lt_lock *);
/* DEADLOCK, saying the cycle of waits what would close. */
int	request_deadlock(struct request *, const char *what,
	    const struct lt_cycle *);
/* Who holds a lock, for a message: "held by NAME" and the like. */
const char *holders_phrase(const struct lt_lock *);

/* reclaim.c */
int	reclaim_method(struct request *);

/* watch.c */
/* The lock table's changed callback: notices to the lock's watchers. */
void	 watch_changed(void *arg, const struct lt_lock *);
/*
 * Between these, changes are told once per lock at watch_release(), with
 * the state then (a reclaim installs holds, then sets their values).
 */
void	 watch_hold(void);
void	 watch_release(void);
/* The session's watches end (its connection did, or the session). */
void	 watch_drop_session(struct session *);
int	 watch_method(struct request *);
int	 unwatch_method(struct request *);
uint64_t watch_count(void);
uint64_t watch_notices(void);
void	 watch_free_all(void);

/* convert.c */
int	convert_method(struct request *);

/* admin.c */
int	admin_locks(struct request *);
int	admin_lock(struct request *);
int	admin_clients(struct request *);
int	admin_stats(struct request *);
int	admin_cluster(struct request *);
int	admin_force_release(struct request *);
int	admin_reset_client(struct request *);
int	admin_reset_all(struct request *);

/* etcd_codec.c */
#define ETCD_MAX_ENDPOINTS	16
#define ETCD_KEY_MAX		1024
#define ETCD_VALUE_MAX		4096
struct json_t;
struct etcd_kv {
	char		*key;		/* NUL-terminated copies */
	size_t		 keylen;
	char		*value;
	size_t		 valuelen;
	int64_t		 create_revision;
	int64_t		 mod_revision;
	int64_t		 lease;
};
int	 etcd_endpoint_parse(const char *url, char *host, size_t hostlen,
	    uint16_t *port, bool *tls, char *err, size_t errlen);
size_t	 base64_encoded_len(size_t);
void	 base64_encode(const void *, size_t, char *out);
int	 base64_decode(const char *, size_t, void *out, size_t outmax,
	    size_t *outlen);
int	 etcd_json_int64(const struct json_t *, int64_t *);
int	 etcd_parse_header(const struct json_t *, int64_t *revision,
	    char *err, size_t errlen);
int	 etcd_parse_kvs(const struct json_t *range, struct etcd_kv *out,
	    size_t max, size_t *n, char *err, size_t errlen);
void	 etcd_kv_clear(struct etcd_kv *, size_t n);
int	 etcd_parse_grant(const struct json_t *, int64_t *id, int64_t *ttl,
	    char *err, size_t errlen);
int	 etcd_parse_keepalive(const struct json_t *, int64_t id,
	    int64_t *ttl, char *err, size_t errlen);
int	 etcd_parse_txn(const struct json_t *, bool *succeeded,
	    int64_t *revision, const struct json_t **responses, char *err,
	    size_t errlen);
const struct json_t *etcd_txn_range(const struct json_t *responses,
	    size_t i);
struct json_t	*etcd_req_range(const char *key, bool prefix);
struct json_t	*etcd_req_put(const char *key, const char *value,
		    size_t valuelen, int64_t lease);
struct json_t	*etcd_req_lease(const char *field, int64_t v);
struct json_t	*etcd_cmp(const char *key, const char *target, int64_t v);
struct json_t	*etcd_op(const char *kind, struct json_t *request);
struct json_t	*etcd_txn_body(struct json_t *compare, struct json_t *success,
		    struct json_t *failure);
struct json_t	*etcd_one(struct json_t *element);

/* etcd.c */
struct etcd;
struct etcd_reply {
	bool			 ok;	/* status 200 and a JSON object */
	int			 status;	/* HTTP; 0: no answer */
	struct json_t		*json;	/* valid in the callback only */
	const char		*why;	/* when !ok */
	const char		*endpoint;
	uint64_t		 sent_ms;
	uint64_t		 rtt_ms;
};
typedef void (*etcd_cb)(const struct etcd_reply *, void *arg);
struct etcd	*etcd_new(struct event_base *, const char *urls,
		    uint32_t timeout_ms, struct ssl_ctx_st *tls,
		    char *err, size_t errlen);
void		 etcd_set_tls(struct etcd *, struct ssl_ctx_st *);

/* etcd_tls.c */
int		 etcd_tls_check(const struct dlmd_config *, char *err,
		    size_t errlen);
struct ssl_ctx_st *etcd_tls_ctx(const struct dlmd_config *, char *err,
		    size_t errlen);
void		 etcd_tls_ctx_free(struct ssl_ctx_st *);
struct ssl_st	*etcd_tls_ssl(struct ssl_ctx_st *, const char *host);
void		 etcd_tls_why(struct bufferevent *, char *why, size_t len);
void		 etcd_free(struct etcd *);
void		 etcd_call(struct etcd *, const char *path,
		    struct json_t *body, etcd_cb, void *arg);
const char	*etcd_endpoint(const struct etcd *);
int		 etcd_nendpoints(const struct etcd *);
const char	*etcd_endpoint_at(const struct etcd *, int);

/* metrics.c */
int	metrics_listen(struct event_base *, const char *spec);
void	metrics_free(void);
void	metrics_observe_wait(uint64_t ms);
void	metrics_observe_hold(uint64_t ms);
void	metrics_observe_etcd(uint64_t ms);

/* server.c */
int	server_init(struct event_base *, struct dlmd_config *);
int	server_listen(const char *spec);
void	server_limits_changed(void);
void	server_shutdown(void);
void	server_free(void);

#endif
