/*
 * libFuzzer harness for the whole request path: the fuzzer's bytes become
 * a script of steps by four clients on socket pairs adopted as dlmd
 * connections (conn_accept, as a listener would): raw bytes, well-formed
 * requests of every method built from the bytes, disconnects. After every
 * step the event loop runs and the lock table's invariants are checked.
 * Each input gets a fresh server, and server_free() must leave nothing
 * behind (the leak checker runs).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlmd.h"

#define NCLIENTS	4

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct dlmd_config cfg;
static int clients[NCLIENTS];

static const char *const methods[] = {
	"hello", "ping", "acquire", "check", "release", "cancel", "reset",
	"bye", "locks", "lock", "clients", "stats", "force_release",
	"reset_client", "reset_all", "nonsense", "watch", "unwatch", "convert",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* Small limits, so that the fuzzer reaches them; no linger, so a
	 * closed client leaves nothing for the next step to trip on. */
	static char *args[] = { "dlmd", "-c", "/dev/null", "--linger-max", "0",
	    "--lease-min", "10", "--max-clients", "8", "--max-holds", "16",
	    "--max-waits", "8", "--max-name-len", "16", "--max-request",
	    "4096", "--max-output", "65536", "--max-value-len", "16",
	    "--max-watches", "2", NULL };
	char err[600];

	(void)argc;
	(void)argv;
	if (config_build(&cfg, (int)(sizeof args / sizeof args[0]) - 1, args,
	    err, sizeof err) != 0) {
		fprintf(stderr, "fuzz_requests: %s\n", err);
		abort();
	}
	log_init(LOG_LEVEL_ERR, false);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void
client_open(int k)
{
	struct sockaddr_un sun;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	conn_accept(sv[1], (struct sockaddr *)&sun, sizeof sun, true);
	clients[k] = sv[0];
}

/* Run the loop a little, read and drop what the server said, check. */
static void
step_done(void)
{
	const char *why;
	char buf[65536];

	for (int round = 0; round < 3; round++) {
		event_base_loop(srv->base, EVLOOP_NONBLOCK);
		for (int k = 0; k < NCLIENTS; k++)
			while (clients[k] >= 0 &&
			    read(clients[k], buf, sizeof buf) > 0)
				;
	}
	if ((why = locktab_check(srv->lt, now_ms())) != NULL) {
		fprintf(stderr, "lock table broken: %s\n", why);
		abort();
	}
}

static void
send_bytes(int k, const void *p, size_t len)
{
	if (len > 0 && write(clients[k], p, len) < 0 && errno != EAGAIN)
		return;
}

/* A well-formed request of a method picked by the bytes. */
static size_t
send_request(int k, const uint8_t *d, size_t n)
{
	static const int64_t timeouts[] = { -1, 0, 1, 30 };
	msgpack_sbuffer sb;
	struct mpw w;
	char lock[8], client[8];
	const char *method;
	uint8_t b[4] = { 0, 0, 0, 0 };

	memcpy(b, d, n < 4 ? n : 4);
	method = methods[b[0] % (sizeof methods / sizeof methods[0])];
	snprintf(lock, sizeof lock, "L%u", (unsigned)(b[2] % 4));
	snprintf(client, sizeof client, "c%u",
	    (unsigned)((b[2] >> 4) % NCLIENTS));
	msgpack_sbuffer_init(&sb);
	mpw_init_sbuffer(&w, &sb);
	mpw_array(&w, 4);
	mpw_u64(&w, 0);
	mpw_u64(&w, b[1] % 8);		/* few ids: cancel finds them */
	mpw_str(&w, method);
	mpw_array(&w, 1);
	if (strcmp(method, "hello") == 0) {
		char me[8];

		snprintf(me, sizeof me, "c%d", k);
		mpw_map(&w, 4);
		mpw_key(&w, "proto");
		mpw_u64(&w, b[3] & 0x80 ? 2 : 1);
		mpw_key(&w, "client");
		mpw_str(&w, b[3] & 0x40 ? client : me);
		mpw_key(&w, "lease_ms");
		mpw_u64(&w, b[3] & 0x20 ? 10 : 10000);
		mpw_key(&w, "linger_ms");
		mpw_u64(&w, b[3] & 0x10 ? 1000 : 0);
	} else if (strcmp(method, "acquire") == 0) {
		/*
		 * A semaphore's capacity 0..7 (0 is refused, and two
		 * capacities of one name mismatch) and permits 0..3 (0:
		 * the key left out).
		 */
		bool semaphore = (b[3] & 0x10) != 0;
		unsigned permits = (b[2] >> 2) & 3;

		bool valued = !semaphore && (b[3] & 0x20) != 0;
		/*
		 * Lock-delays of a few ms (they end within the input's
		 * run) and contention notices, from the msgid's spare bits.
		 */
		static const int64_t delays[] = { 1, 3, 20, 70000 };
		bool delay = (b[1] & 0x10) != 0, notify = (b[1] & 0x20) != 0;

		mpw_map(&w, 4 + (semaphore ? 1 + (permits != 0) : 0) + valued +
		    delay + notify + 1);
		if (valued) {
			/* Values the watchers' notices carry, at the limit. */
			static const char v[32] = "value";

			mpw_key(&w, "value");
			mpw_bin(&w, v, b[3] & 0x40 ? sizeof v : 5);
		}
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
		mpw_key(&w, "kind");
		mpw_str(&w, semaphore ? "semaphore" : b[3] & 1 ? "rlock" :
		    "mutex");
		mpw_key(&w, "mode");
		/* Shared, refused for a semaphore, only now and then. */
		mpw_str(&w, (b[3] & 2) && (!semaphore || (b[3] & 1)) ?
		    "shared" : "exclusive");
		mpw_key(&w, "timeout_ms");
		mpw_i64(&w, timeouts[(b[3] >> 2) & 3]);
		if (semaphore) {
			mpw_key(&w, "capacity");
			mpw_u64(&w, (b[3] >> 5) & 7);
		}
		if (semaphore && permits != 0) {
			mpw_key(&w, "permits");
			mpw_u64(&w, permits);
		}
		if (delay) {
			mpw_key(&w, "lock_delay_ms");
			mpw_i64(&w, delays[(b[1] >> 6) & 3]);
		}
		if (notify) {
			mpw_key(&w, "notify_contended");
			mpw_bool(&w, true);
		}
		/* Waits on four locks by four clients: cycles are common. */
		mpw_key(&w, "deadlock_check");
		mpw_bool(&w, (b[3] & 0x30) != 0x30);
	} else if (strcmp(method, "convert") == 0) {
		mpw_map(&w, b[3] & 0x10 ? 4 : 3);
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
		mpw_key(&w, "mode");
		mpw_str(&w, b[3] & 2 ? "shared" : "exclusive");
		mpw_key(&w, "timeout_ms");
		mpw_i64(&w, timeouts[(b[3] >> 2) & 3]);
		if (b[3] & 0x10) {
			mpw_key(&w, "token");
			mpw_u64(&w, b[3] >> 5);
		}
	} else if (strcmp(method, "release") == 0 && (b[3] & 1)) {
		/* A semaphore's release of some permits (0 is refused). */
		mpw_map(&w, 2);
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
		mpw_key(&w, "permits");
		mpw_u64(&w, (b[3] >> 1) & 3);
	} else if (strcmp(method, "check") == 0) {
		mpw_map(&w, 2);
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
		mpw_key(&w, "token");
		mpw_u64(&w, b[3]);
	} else if (strcmp(method, "release") == 0 ||
	    strcmp(method, "lock") == 0 || strcmp(method, "watch") == 0 ||
	    strcmp(method, "unwatch") == 0) {
		mpw_map(&w, 1);
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
	} else if (strcmp(method, "cancel") == 0) {
		mpw_map(&w, 1);
		mpw_key(&w, "id");
		mpw_u64(&w, b[3] % 8);
	} else if (strcmp(method, "locks") == 0 ||
	    strcmp(method, "clients") == 0) {
		mpw_map(&w, 1);
		mpw_key(&w, "limit");
		mpw_u64(&w, 1 + b[3] % 3);
	} else if (strcmp(method, "force_release") == 0) {
		mpw_map(&w, b[3] & 1 ? 2 : 1);
		mpw_key(&w, "lock");
		mpw_str(&w, lock);
		if (b[3] & 1) {
			mpw_key(&w, "client");
			mpw_str(&w, client);
		}
	} else if (strcmp(method, "reset_client") == 0) {
		mpw_map(&w, 1);
		mpw_key(&w, "client");
		mpw_str(&w, client);
	} else
		mpw_map(&w, 0);
	if (w.err == 0)
		send_bytes(k, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return n < 4 ? n : 4;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event_base *base;
	size_t i = 0;

	if ((base = event_base_new()) == NULL)
		abort();
	server_init(base, &cfg);
	/*
	 * Every DEADLOCK's cycle checked by brute force (none invented);
	 * locktab_check() after each step finds any cycle left (none
	 * missed).
	 */
	locktab_set_verify(srv->lt, true);
	for (int k = 0; k < NCLIENTS; k++)
		client_open(k);
	while (i < size) {
		uint8_t op = data[i++];
		int k = op & 3;
		size_t len;

		switch ((op >> 2) & 3) {
		case 0:		/* raw bytes, as they come */
			len = i < size ? data[i++] % 64 : 0;
			if (len > size - i)
				len = size - i;
			send_bytes(k, data + i, len);
			i += len;
			break;
		case 1:
		case 2:		/* a well-formed request */
			i += send_request(k, data + i, size - i);
			break;
		case 3:		/* the client goes away and comes back */
			close(clients[k]);
			clients[k] = -1;
			step_done();
			client_open(k);
			break;
		}
		step_done();
	}
	for (int k = 0; k < NCLIENTS; k++) {
		close(clients[k]);
		clients[k] = -1;
	}
	step_done();
	server_free();
	event_base_free(base);
	return 0;
}
