/* The chaos checkers' token-checking resource: see chaosres.h. */
#include "config.h"

#include <sys/file.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chaosres.h"
#include "clock.h"

void
chaosres_init(struct chaosres *r, const char *dir, const char *name)
{
	snprintf(r->file, sizeof r->file, "%s/%s.res", dir, name);
	snprintf(r->log, sizeof r->log, "%s/%s.log", dir, name);
}

/* The newest token in the open file fd (0 when it is empty). */
static unsigned long long
read_newest(int fd)
{
	unsigned long long newest = 0;
	char buf[64];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%llu", &newest) != 1)
		newest = 0;
	return newest;
}

/*
 * Under flock(), as a database serializes its own writes: the check, the
 * new newest and the log line are one step, so the log is in time order.
 * A failure to use the files aborts: the checker cannot judge without them.
 */
bool
chaosres_step(const struct chaosres *r, uint64_t token, char what)
{
	int fd = open(r->file, O_RDWR | O_CREAT, 0644);
	unsigned long long newest;
	bool ok;

	if (fd < 0 || flock(fd, LOCK_EX) != 0)
		abort();
	newest = read_newest(fd);
	ok = token >= newest;
	if (ok && token > newest) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%020llu\n",
		    (unsigned long long)token);

		if (pwrite(fd, buf, (size_t)n, 0) != n)
			abort();
	}
	if (ok) {
		FILE *log = fopen(r->log, "a");

		if (log == NULL)
			abort();
		fprintf(log, "%c %llu %llu\n", what, (unsigned long long)token,
		    (unsigned long long)mono_ns());
		fclose(log);
	}
	flock(fd, LOCK_UN);
	close(fd);
	return ok;
}

uint64_t
chaosres_newest(const struct chaosres *r)
{
	int fd = open(r->file, O_RDONLY);
	unsigned long long newest;

	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_SH) != 0)
		abort();
	newest = read_newest(fd);
	flock(fd, LOCK_UN);
	close(fd);
	return newest;
}

size_t
chaosres_read(const struct chaosres *r, struct chaosres_step **out)
{
	struct chaosres_step *s = NULL;
	unsigned long long token, ns;
	size_t n = 0, cap = 0;
	char what;
	FILE *f;

	*out = NULL;
	if ((f = fopen(r->log, "r")) == NULL)
		return 0;
	while (fscanf(f, " %c %llu %llu", &what, &token, &ns) == 3) {
		if (n == cap) {
			struct chaosres_step *more;

			cap = cap ? cap * 2 : 256;
			if ((more = realloc(s, cap * sizeof *s)) == NULL)
				abort();
			s = more;
		}
		s[n].what = what;
		s[n].token = token;
		s[n].ns = ns;
		n++;
	}
	fclose(f);
	*out = s;
	return n;
}

unsigned long
chaosres_overlaps(const struct chaosres *r,
    void (*report)(unsigned long long, unsigned long long))
{
	struct piece { uint64_t token, start, end; } *p;
	struct chaosres_step *s;
	size_t n = chaosres_read(r, &s), np = 0;
	unsigned long overlaps = 0;

	if ((p = calloc(n + 1, sizeof *p)) == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (s[i].what == 'A') {
			p[np].token = s[i].token;
			p[np].start = s[i].ns;
			p[np].end = 0;
			np++;
		} else if (s[i].what == 'C')
			for (size_t k = np; k-- > 0;)
				if (p[k].token == s[i].token && p[k].end == 0) {
					p[k].end = s[i].ns;
					break;
				}
	}
	/* Starts are in time order (logged under the resource's lock). */
	for (size_t i = 0; i < np; i++)
		for (size_t j = i + 1; j < np && p[i].end != 0 &&
		    p[j].start < p[i].end; j++)
			if (p[j].end != 0 && p[j].token != p[i].token) {
				overlaps++;
				if (report != NULL)
					report(p[i].token, p[j].token);
			}
	free(p);
	free(s);
	return overlaps;
}
