/*
 * fencing: why a lock's token matters.
 *
 * A lease cannot stop a holder that was paused (GC, SIGSTOP, a VM
 * migration) from waking up after its lock passed to someone else. The fix
 * is at the resource: every write carries the writer's fencing token, and
 * the resource refuses a token older than the newest it has accepted.
 * Here the "resource" is a file that remembers that newest token.
 *
 *   fencing FILE
 *
 * Build: cc fencing.c $(pkg-config --cflags --libs dlm) -o fencing
 */
#include <inttypes.h>
#include <stdio.h>

#include <dlm.h>

/* The resource's side: accept a write only with a token this new. */
static int
guarded_write(const char *path, uint64_t token, const char *data)
{
	uint64_t newest = 0;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		if (fscanf(f, "%" SCNu64, &newest) != 1)
			newest = 0;
		fclose(f);
	}
	if (token < newest) {
		fprintf(stderr, "refused: token %" PRIu64 " is older than %"
		    PRIu64 "\n", token, newest);
		return -1;
	}
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "%" PRIu64 "\n%s\n", token, data);
	return fclose(f);
}

int
main(int argc, char **argv)
{
	struct dlm_client *c;
	uint64_t token;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: fencing FILE\n");
		return 2;
	}
	if ((c = dlm_connect(NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "fencing: %s\n", dlm_errmsg(NULL));
		return 1;
	}
	if ((err = dlm_acquire(c, "fencing-demo", 0, 5000, &token)) != 0) {
		fprintf(stderr, "fencing: %s\n", dlm_errmsg(c));
		dlm_close(c);
		return 1;
	}
	/* ... a long pause could happen here ... */
	if (!dlm_holds(c, "fencing-demo", NULL))
		fprintf(stderr, "the lock was lost; the write will tell\n");
	err = guarded_write(argv[1], token, "hello from the holder");
	dlm_release(c, "fencing-demo");
	dlm_close(c);
	return err == 0 ? 0 : 1;
}
