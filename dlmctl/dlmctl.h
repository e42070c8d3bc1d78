/*
 * dlmctl: the operator's and the shell script's view of dlmd. Each command
 * talks to the server through libdlm's calls; results are turned into
 * jansson values once, then printed as tables or as one JSON document.
 */
#ifndef DLMCTL_H
#define DLMCTL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "addr.h"
#include "dlm.h"

/* Exit statuses; dlmctl(1) documents them. */
#define EXIT_OK			0
#define EXIT_FAILED		1	/* the server refused the request */
#define EXIT_USAGE		2
#define EXIT_UNREACHABLE	3	/* cannot reach dlmd, or it went away */
#define EXIT_PERMISSION		4
#define EXIT_NOT_FOUND		5
#define EXIT_NOT_ACQUIRED	75	/* run: lock not taken in time */
#define EXIT_LOST		76	/* run: the hold was lost, COMMAND ended */
#define EXIT_CANNOT_EXEC	126
#define EXIT_NO_COMMAND		127

struct ctl {
	const char	*server;	/* -s, else $DLM_SERVER, else NULL */
	char		*auth;		/* from --token-file / $DLM_TOKEN_FILE */
	/* --tls-ca, --tls-cert, --tls-key (NULL: libdlm's $DLM_TLS_*) */
	const char	*tls_ca;
	const char	*tls_cert;
	const char	*tls_key;
	bool		 json;
	struct dlm_client *client;
	/* member_call: the member that answered, as messages name it. */
	char		 answered[400];
};

/* link.c: one connection, plain or TLS, against a deadline. */
struct ssl_st;
struct ssl_ctx_st;
struct link {
	int			 fd;
	struct ssl_st		*ssl;	/* tls: addresses */
	struct ssl_ctx_st	*ctx;
	bool			 cert_asked;	/* and we had none */
	bool			 answered;	/* the server sent data */
};
/* 0, or -1 with why (a TLS failure in the words libdlm uses). */
int	 link_open(struct link *, const struct addr *, const struct ctl *,
	    uint64_t deadline, char *why, size_t whylen);
bool	 link_send_all(struct link *, const char *, size_t, uint64_t deadline,
	    char *why, size_t whylen);
/* Bytes read (waiting for some), 0 at the end, -1 with why. */
ssize_t	 link_recv(struct link *, char *, size_t, uint64_t deadline,
	    char *why, size_t whylen);
void	 link_close(struct link *);

/* main.c */
void	 ctl_error(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
int	 ctl_exit_status(int err);
/* Connect for a command; on failure prints why and returns an exit status. */
int	 ctl_connect(struct ctl *, const struct dlm_options *);
/* The TLS files of the command line, into options. */
void	 ctl_tls_options(const struct ctl *, struct dlm_options *);
/* Connect to server (NULL: $DLM_SERVER) saying nothing: 0 or libdlm's code. */
int	 ctl_open(struct ctl *, const char *server, const struct dlm_options *);
/* Why connecting to name failed with libdlm's code err, on stderr. */
void	 ctl_connect_error(const struct ctl *, const char *name, int err);
const char *ctl_server_name(const struct ctl *);
/*
 * The addresses of -s or $DLM_SERVER, or the default socket: how many (at
 * most max), 0 when the default socket has no name, or -1 after saying
 * which one is bad.
 */
int	 ctl_addresses(const struct ctl *, struct addr *, int max);
/* Call method with a params object (may be NULL); *result on success. */
int	 ctl_call(struct ctl *, const char *method, json_t *params,
	    json_t **result);
/*
 * member.c: call method (no params) on the first member of -s's list that
 * answers, a standby too; prints why none did and returns an exit status.
 */
int	 member_call(struct ctl *, const char *method, json_t **result);
/* Print a JSON document to stdout; returns an exit status. */
int	 ctl_print_json(json_t *);

/* A name given on the command line: its bytes, and how dlmctl shows it. */
struct name {
	char		*bytes;		/* NUL-terminated too, for libdlm */
	size_t		 len;
	char		*shown;		/* escaped */
};

/* name.c: the one escaping of names for terminals and JSON. */
/* \ and \xNN for what is not printable UTF-8; always valid UTF-8. */
char	*name_escape(const char *s, size_t n);
/* A message for one line: controls escaped, backslashes kept. */
char	*text_escape(const char *s);
/* A value: its text when printable, else 0x and hex; max chars (0: all). */
char	*value_text(const char *s, size_t n, size_t max);
/* \xNN and \\ back into bytes; -1 with a sentence in why. */
int	 name_unescape(const char *s, char **bytes, size_t *len, char *why,
	    size_t whylen);
void	 name_free(struct name *);

/*
 * main.c: unescape argument arg, called what in errors; EXIT_OK or
 * EXIT_USAGE (the error said). Here, not in name.c, so that the escaping
 * knows nothing of how the command reports errors.
 */
int	 name_from_arg(const char *what, const char *arg, struct name *);

/*
 * value.c: msgpack <-> jansson, and reading fields of results. Strings
 * from the server arrive escaped (name_escape), ready to print.
 */
json_t	*value_from_msgpack(const void *data, size_t len);
json_t	*value_from_object(const msgpack_object *);
int	 value_to_msgpack(json_t *, char **data, size_t *len);
const char *value_str(json_t *obj, const char *key);
uint64_t value_uint(json_t *obj, const char *key);
bool	 value_bool(json_t *obj, const char *key);
/* Bytes to send as they are (a JSON string only in name). */
json_t	*value_bytes(const char *p, size_t len);
/* An escaped string from a result, as the bytes to send back; or NULL. */
json_t	*value_unescaped(json_t *shown);
/*
 * A holder's value from a result (escaped there) as value_text() shows
 * it, at most max characters; "-" when it has none.
 */
char	*value_shown(json_t *holder, size_t max);

/* table.c: aligned columns and readable figures. */
struct table;
struct table *table_new(int ncols, const char *const *headers,
	    const char *align);
void	 table_add(struct table *, ...);	/* ncols strings */
void	 table_print(struct table *);
void	 table_free(struct table *);
/* Into buf: "850ms", "12.3s", "5m07s", "3h05m", "2d04h". */
const char *fmt_duration(uint64_t ms, char *buf, size_t len);

/* The commands. */
int	 cmd_status(struct ctl *, int argc, char **argv);
int	 cmd_cluster(struct ctl *, int argc, char **argv);
int	 cmd_locks(struct ctl *, int argc, char **argv);
int	 cmd_show(struct ctl *, int argc, char **argv);
int	 cmd_clients(struct ctl *, int argc, char **argv);
int	 cmd_ping(struct ctl *, int argc, char **argv);
int	 cmd_release(struct ctl *, int argc, char **argv);
int	 cmd_reset(struct ctl *, int argc, char **argv);
int	 cmd_run(struct ctl *, int argc, char **argv);
int	 cmd_elect(struct ctl *, int argc, char **argv);
int	 cmd_watch(struct ctl *, int argc, char **argv);

#endif
