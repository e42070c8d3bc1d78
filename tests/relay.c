/*
 * The relay of relay.h: one link at a time, in a thread of its own.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "relay.h"
#include "testutil.h"

static void *
relay_main(void *arg)
{
	struct relay *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd lp = { r->listen_fd, POLLIN, 0 };
		int a, b, seen;

		if (poll(&lp, 1, 50) != 1)
			continue;
		if ((a = accept(r->listen_fd, NULL, NULL)) < 0)
			continue;
		__atomic_add_fetch(&r->accepts, 1, __ATOMIC_RELEASE);
		if (__atomic_load_n(&r->refuse, __ATOMIC_ACQUIRE)) {
			close(a);
			continue;
		}
		if ((b = loopback_connect(__atomic_load_n(&r->target,
		    __ATOMIC_ACQUIRE))) < 0) {
			close(a);
			continue;
		}
		seen = __atomic_load_n(&r->cut, __ATOMIC_ACQUIRE);
		while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&r->cut, __ATOMIC_ACQUIRE) == seen) {
			struct pollfd p[2] = { { a, POLLIN, 0 }, { b, POLLIN, 0 } };

			if (__atomic_load_n(&r->freeze, __ATOMIC_ACQUIRE))
				p[1].events = 0;
			char buf[65536];
			ssize_t n;

			if (poll(p, 2, 20) <= 0)
				continue;
			if (p[0].revents) {
				if ((n = read(a, buf, sizeof buf)) <= 0 ||
				    write(b, buf, (size_t)n) != n)
					break;
			}
			if (p[1].revents) {
				if ((n = read(b, buf, sizeof buf)) <= 0 ||
				    write(a, buf, (size_t)n) != n)
					break;
			}
		}
		close(a);
		close(b);
	}
	return NULL;
}

void
relay_start(struct relay *r, int target)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int one = 1;

	memset(r, 0, sizeof *r);
	r->target = target;
	r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(r->listen_fd, (struct sockaddr *)&sin,
	    sizeof sin), 0);
	ck_assert_int_eq(listen(r->listen_fd, 8), 0);
	getsockname(r->listen_fd, (struct sockaddr *)&sin, &len);
	r->port = ntohs(sin.sin_port);
	pthread_create(&r->thread, NULL, relay_main, r);
}

void
relay_stop(struct relay *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELEASE);
	pthread_join(r->thread, NULL);
	close(r->listen_fd);
}

