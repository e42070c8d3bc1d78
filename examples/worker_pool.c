/*
 * worker_pool: threads of one process share one client and take turns at
 * one lock, as a pool of workers writing to one file would.
 *
 * Build: cc worker_pool.c $(pkg-config --cflags --libs dlm) -pthread \
 *            -o worker_pool
 */
#include <pthread.h>
#include <stdio.h>

#include <dlm.h>

#define WORKERS	4
#define ROUNDS	5

static struct dlm_client *client;
static int turns;		/* guarded by the dlm lock itself */

static int
work(void *arg, uint64_t token)
{
	long id = (long)arg;

	turns++;
	printf("worker %ld has report.lock (token %llu), turn %d\n", id,
	    (unsigned long long)token, turns);
	return 0;
}

static void *
worker(void *arg)
{
	for (int i = 0; i < ROUNDS; i++) {
		/* Waits up to 10 s; the lock is released when work returns. */
		int err = dlm_with_lock(client, "report.lock", 0, 10000, work,
		    arg);

		if (err != 0)
			fprintf(stderr, "worker %ld: %s\n", (long)arg,
			    dlm_errmsg(client));
	}
	return NULL;
}

int
main(void)
{
	pthread_t th[WORKERS];
	int err;

	if ((client = dlm_connect(NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "worker_pool: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	for (long i = 0; i < WORKERS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < WORKERS; i++)
		pthread_join(th[i], NULL);
	dlm_close(client);
	printf("%d turns\n", turns);
	return turns == WORKERS * ROUNDS ? 0 : 1;
}
