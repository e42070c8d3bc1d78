/*
 * Names are bytes: a lock or client name may hold NUL, ESC or bytes that
 * are not UTF-8. A terminal must not be sent the control codes among them,
 * a JSON string must be valid UTF-8, and an operator must be able to type
 * back any name dlmctl shows. One escaping serves all three (dlmctl(1),
 * NAMES): printable UTF-8 stays, a backslash is "\\", every other byte is
 * "\xNN"; and one unescaping turns what was shown back into the bytes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlmctl.h"
#include "xmalloc.h"

/* Length of a valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * Bytes at p that may go to a terminal as they are: printable ASCII, or a
 * whole UTF-8 character other than the C1 controls (U+0080..U+009F), which
 * some terminals obey like ESC sequences. Returns their count, or 0.
 */
static size_t
printable_seq(const unsigned char *p, size_t n)
{
	size_t len;

	if (p[0] < 0x80)
		return p[0] >= 0x20 && p[0] < 0x7f ? 1 : 0;
	len = utf8_seq(p, n);
	if (len == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		return 0;
	return len;
}

static char *
escape(const char *s, size_t n, bool keep_backslash)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out, *o;

	if (n > (SIZE_MAX - 1) / 4)
		n = (SIZE_MAX - 1) / 4;		/* never: names are short */
	out = o = xmalloc(n * 4 + 1);
	for (size_t i = 0; i < n;) {
		size_t len = printable_seq(p + i, n - i);

		if (p[i] == '\\' && !keep_backslash) {
			*o++ = '\\';
			*o++ = '\\';
			i++;
		} else if (len > 0) {
			memcpy(o, p + i, len);
			o += len;
			i += len;
		} else {
			o += snprintf(o, 5, "\\x%02x", p[i]);
			i++;
		}
	}
	*o = '\0';
	return out;
}

char *
name_escape(const char *s, size_t n)
{
	return escape(s, n, false);
}

/*
 * A message to print on one line. The server already writes the names
 * in its messages as \xNN, backslashes included, so a backslash here is
 * its escape and stays; only what a terminal would obey is escaped.
 */
char *
text_escape(const char *s)
{
	return escape(s, strlen(s), true);
}

/*
 * A hold's value for a person: as it is when all of it is printable
 * UTF-8 (an address, a host name), else 0x and its bytes in hex. At most
 * max characters of it (0: all), "..." marking the cut.
 */
char *
value_text(const char *s, size_t n, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	bool printable = true;
	size_t len, shown = 0;
	char *out;

	for (size_t i = 0; i < n && printable; i += len)
		printable = (len = printable_seq(p + i, n - i)) > 0;
	if (printable) {
		/* Cut between characters, never inside one. */
		if (max != 0 && n > max) {
			for (size_t i = 0; i < n && shown + (len =
			    printable_seq(p + i, n - i)) <= max; i += len)
				shown += len;
		} else
			shown = n;
		out = xmalloc(shown + 4);
		memcpy(out, s, shown);
		strcpy(out + shown, shown < n ? "..." : "");
		return out;
	}
	shown = max != 0 && 2 + 2 * n > max ? (max > 2 ? (max - 2) / 2 : 0) :
	    n;
	out = xmalloc(2 + 2 * shown + 4);
	strcpy(out, "0x");
	for (size_t i = 0; i < shown; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", p[i]);
	strcpy(out + 2 + 2 * shown, shown < n ? "..." : "");
	return out;
}

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
name_unescape(const char *s, char **bytes, size_t *len, char *why,
    size_t whylen)
{
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(n + 1);

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		if (s[i + 1] == '\\') {
			out[o++] = '\\';
			i++;
			continue;
		}
		if (s[i + 1] != 'x' || (hi = hex_digit(s[i + 2])) < 0 ||
		    (lo = hex_digit(s[i + 3])) < 0) {
			snprintf(why, whylen, "a backslash starts \\xNN (two "
			    "hex digits) or \\\\ (a backslash)");
			free(out);
			return -1;
		}
		out[o++] = (char)(hi << 4 | lo);
		i += 3;
	}
	out[o] = '\0';
	*bytes = out;
	*len = o;
	return 0;
}

void
name_free(struct name *nm)
{
	if (nm == NULL)
		return;
	free(nm->bytes);
	free(nm->shown);
	memset(nm, 0, sizeof *nm);
}
