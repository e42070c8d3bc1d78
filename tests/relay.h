/*
 * A TCP relay between a client and dlmd that a test can cut, freeze or
 * refuse, to drop a connection the way a network would.
 */
#ifndef DLM_TEST_RELAY_H
#define DLM_TEST_RELAY_H

#include <pthread.h>

struct relay {
	int		 listen_fd;
	int		 port;
	int		 target;	/* dlmd's port; may be changed */
	int		 cut;		/* bumped to drop the live link */
	int		 freeze;	/* set: server-to-client bytes stop */
	int		 refuse;	/* set: new links are closed at once */
	int		 accepts;	/* links accepted so far */
	int		 stop;		/* these, and target, read and written
					   atomically */
	pthread_t	 thread;
};

/* Listen on a free port of 127.0.0.1 and relay to target's. */
void	relay_start(struct relay *, int target);
void	relay_stop(struct relay *);

#endif
