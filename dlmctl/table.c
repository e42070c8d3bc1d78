/* Aligned tables and readable durations for people at a terminal. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlmctl.h"
#include "xmalloc.h"

struct table {
	int		 ncols;
	char		*align;		/* 'l' or 'r' per column */
	char		**cells;	/* nrows * ncols, header first */
	size_t		 nrows;
	size_t		 cap;
};

static void
grow(struct table *t)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols *
		    sizeof *t->cells);
	}
}

struct table *
table_new(int ncols, const char *const *headers, const char *align)
{
	struct table *t = xcalloc(1, sizeof *t);

	t->ncols = ncols;
	t->align = xstrdup(align);
	grow(t);
	for (int i = 0; i < ncols; i++)
		t->cells[i] = xstrdup(headers[i]);
	t->nrows = 1;
	return t;
}

/* A row of ncols strings, copied; NULL prints as empty. */
void
table_add(struct table *t, ...)
{
	char **row;
	va_list ap;

	grow(t);
	row = t->cells + t->nrows * (size_t)t->ncols;
	va_start(ap, t);
	for (int i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		row[i] = xstrdup(s != NULL ? s : "");
	}
	va_end(ap);
	t->nrows++;
}

/* Display width: count characters, not UTF-8 continuation bytes. */
static size_t
width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void
table_print(struct table *t)
{
	size_t *wid = xcalloc((size_t)t->ncols, sizeof *wid);

	for (size_t r = 0; r < t->nrows; r++)
		for (int c = 0; c < t->ncols; c++) {
			size_t w = width(t->cells[r * (size_t)t->ncols +
			    (size_t)c]);

			if (w > wid[c])
				wid[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * (size_t)t->ncols +
			    (size_t)c];
			size_t pad = wid[c] - width(s);
			bool last = c == t->ncols - 1;

			if (t->align[c] == 'r')
				printf("%*s%s", (int)pad, "", s);
			else if (last)
				fputs(s, stdout);
			else
				printf("%s%*s", s, (int)pad, "");
			if (!last)
				fputs("  ", stdout);
		}
		putchar('\n');
	}
	free(wid);
}

void
table_free(struct table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->align);
	free(t);
}

const char *
fmt_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%llu.%llus", (unsigned long long)s,
		    (unsigned long long)(ms % 1000 / 100));
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
		    (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum",
		    (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%02lluh",
		    (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
	return buf;
}
