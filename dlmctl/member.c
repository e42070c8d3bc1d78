/*
 * status and cluster answer from any member of a cluster, a standby too.
 * A standby opens no session (its hello is answered NOT_ACTIVE) but it
 * answers these two methods without one, so each address given is asked in
 * turn: first with one request of our own on a fresh connection (link.c,
 * plain or TLS), which a standby answers, and when the member wants a
 * session (an active or a single dlmd), through libdlm.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>

#include "clock.h"
#include "dial.h"
#include "dlmctl.h"
#include "frame.h"
#include "mpack.h"
#include "proto.h"

/* A sessionless call waits this long in all, from dial to answer. */
#define OBSERVE_TIMEOUT_MS	5000
/*
 * Far more than stats or cluster (16 members at most) ever need; an
 * answer past it is not one of theirs.
 */
#define OBSERVE_MAX_ANSWER	(256 * 1024)
#define OBSERVE_MSGID		1

/*
 * One whole MessagePack object from l, into a buffer of its own: its
 * size and depth checked by frame_scan() before msgpack sees it, as
 * everything from the network is.
 */
static char *
read_frame(struct link *l, size_t *framelen, uint64_t deadline, char *why,
    size_t whylen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (buf == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (;;) {
		enum frame_status st = frame_scan(buf, len, OBSERVE_MAX_ANSWER,
		    DLM_MAX_DEPTH, framelen);
		ssize_t n;

		if (st == FRAME_COMPLETE)
			return buf;
		if (st != FRAME_INCOMPLETE) {
			snprintf(why, whylen, "the answer is %s",
			    frame_status_str(st));
			break;
		}
		if (len == cap) {
			char *more = realloc(buf, cap * 2);

			if (more == NULL) {
				snprintf(why, whylen, "out of memory");
				break;
			}
			buf = more;
			cap *= 2;
		}
		n = link_recv(l, buf + len, cap - len, deadline, why, whylen);
		if (n > 0)
			len += (size_t)n;
		else {
			if (n == 0)
				snprintf(why, whylen, "the connection was "
				    "closed before an answer");
			break;
		}
	}
	free(buf);
	return NULL;
}

/* [0, 1, method, []]. */
static int
pack_request(const char *method, msgpack_sbuffer *sb)
{
	struct mpw w;

	msgpack_sbuffer_init(sb);
	mpw_init_sbuffer(&w, sb);
	mpw_array(&w, 4);
	mpw_u64(&w, DLM_MSG_REQUEST);
	mpw_u64(&w, OBSERVE_MSGID);
	mpw_str(&w, method);
	mpw_array(&w, 0);
	return w.err;
}

/*
 * Read [1, 1, error, result] from a decoded answer: 0 and *result, or
 * the server's code and its sentence in msg, or -1 when it is no answer
 * to our request.
 */
static int
read_answer(const msgpack_object *o, json_t **result, char *msg,
    size_t msglen)
{
	const msgpack_object *v, *code, *text;
	uint64_t type, id;
	int64_t c;
	const char *p;
	size_t n;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
		return -1;
	v = o->via.array.ptr;
	if (!mpr_uint(&v[0], &type) || type != DLM_MSG_RESPONSE ||
	    !mpr_uint(&v[1], &id) || id != OBSERVE_MSGID)
		return -1;
	if (v[2].type == MSGPACK_OBJECT_NIL) {
		if (v[3].type != MSGPACK_OBJECT_MAP ||
		    (*result = value_from_object(&v[3])) == NULL)
			return -1;
		return 0;
	}
	code = mpr_get(&v[2], "code");
	if (code == NULL || !mpr_int(code, &c) || c <= 0 || c > DLM_E_MAX)
		return -1;
	text = mpr_get(&v[2], "message");
	if (text != NULL && mpr_str(text, &p, &n)) {
		char *shown = name_escape(p, n);

		snprintf(msg, msglen, "%s", shown);
		free(shown);
	} else
		snprintf(msg, msglen, "%s", dlm_proto_errdesc((int)c));
	return (int)c;
}

/*
 * Call method on a without a session. 0 and *result; the server's error
 * code with its sentence in why; or -1 when a did not answer (why says
 * what happened).
 */
static int
observe_call(const struct ctl *ctl, const struct addr *a, const char *method,
    json_t **result, char *why, size_t whylen)
{
	uint64_t deadline = mono_ms() + OBSERVE_TIMEOUT_MS;
	msgpack_sbuffer sb;
	msgpack_zone zone;
	msgpack_object obj;
	size_t len = 0, off = 0;
	char *frame = NULL;
	struct link l;
	int rc = -1;

	*result = NULL;
	if (link_open(&l, a, ctl, deadline, why, whylen) != 0)
		return -1;
	if (pack_request(method, &sb) != 0) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	if (!link_send_all(&l, sb.data, sb.size, deadline, why, whylen) ||
	    (frame = read_frame(&l, &len, deadline, why, whylen)) == NULL)
		goto fail;
	if (!msgpack_zone_init(&zone, 4096)) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	if (msgpack_unpack(frame, len, &off, &zone, &obj) !=
	    MSGPACK_UNPACK_SUCCESS ||
	    (rc = read_answer(&obj, result, why, whylen)) < 0)
		snprintf(why, whylen, "the answer to %s is unreadable", method);
	msgpack_zone_destroy(&zone);
fail:
	free(frame);
	msgpack_sbuffer_destroy(&sb);
	link_close(&l);
	return rc;
}

/* Append text to the reasons kept in buf, after a "; ". */
static void
note(char *buf, size_t len, const char *text)
{
	size_t used = strlen(buf);

	if (used < len)
		snprintf(buf + used, len - used, "%s%s", used > 0 ? "; " : "",
		    text);
}

/* Whether this code means the member is not there to ask. */
static bool
unreachable(int err)
{
	return err == DLM_E_CONNECT || err == DLM_E_DISCONNECTED ||
	    err == DLM_E_CLOSED || err == DLM_E_SHUTTING_DOWN;
}

int
member_call(struct ctl *ctl, const char *method, json_t **result)
{
	struct addr a[ADDR_LIST_MAX];
	char spec[ADDR_PATH_MAX + ADDR_HOST_MAX + 16], why[300], hello[300];
	char unreached[1024] = "", refused[1024] = "", line[700];
	int n, rc;

	*result = NULL;
	if ((n = ctl_addresses(ctl, a, ADDR_LIST_MAX)) < 0)
		return EXIT_USAGE;
	if (n == 0) {
		/* The default socket, unnamed: only libdlm can find it. */
		if ((rc = ctl_connect(ctl, NULL)) != EXIT_OK)
			return rc;
		return ctl_call(ctl, method, NULL, result);
	}
	for (int i = 0; i < n; i++) {
		const char *name;
		int err;

		addr_format(&a[i], spec, sizeof spec);
		/* One address: as the user wrote it, in every message. */
		name = n == 1 ? ctl_server_name(ctl) : spec;
		snprintf(ctl->answered, sizeof ctl->answered, "%s", name);
		/*
		 * Without a session first: a standby answers so, where libdlm
		 * would follow its hint to the active and show that one. An
		 * active or single dlmd refuses (NO_SESSION, one count in its
		 * error counters) and is asked through libdlm, as before.
		 */
		rc = observe_call(ctl, &a[i], method, result, why, sizeof why);
		if (rc == 0)
			return EXIT_OK;
		snprintf(line, sizeof line, "%s: %s", name, why);
		if (rc < 0) {
			note(unreached, sizeof unreached, line);
			continue;
		}
		err = ctl_open(ctl, n == 1 ? ctl->server : spec, NULL);
		if (err == DLM_OK)
			return ctl_call(ctl, method, NULL, result);
		if (unreachable(err)) {
			/* libdlm's words start with the address. */
			note(unreached, sizeof unreached, dlm_errmsg(NULL));
			continue;
		}
		if (err == DLM_E_NOT_ACTIVE) {
			/*
			 * A standby over TCP with a client token tells a
			 * stranger nothing, and no active one answered
			 * where it pointed. The next may be the active.
			 */
			snprintf(hello, sizeof hello, "%s", dlm_errmsg(NULL));
			note(refused, sizeof refused, hello);
			continue;
		}
		ctl_connect_error(ctl, name, err);
		return ctl_exit_status(err);
	}
	ctl->answered[0] = '\0';
	if (refused[0] != '\0') {
		ctl_error("no member would answer %s: %s (a standby answers it "
		    "only over its Unix socket, or over TCP when dlmd asks no "
		    "client token)", method, refused);
		return EXIT_FAILED;
	}
	if (n == 1)
		ctl_error("cannot reach dlmd at %s (is it running?): %s",
		    ctl_server_name(ctl), unreached);
	else
		ctl_error("cannot reach dlmd at any of %s (is it running?): %s",
		    ctl_server_name(ctl), unreached);
	return EXIT_UNREACHABLE;
}
