/*
 * Access rules: a strict line parser and the first-match decision. Every
 * byte of a rules file is treated as hostile (the fuzzer feeds it), and a
 * file with one bad line is refused whole: a half-read rules file would
 * grant or refuse what its author did not mean.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"
#include "xmalloc.h"

static void __attribute__((format(printf, 3, 4)))
acl_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A byte allowed inside a field: printable, not a space or a quote. */
static bool
field_byte(unsigned char ch)
{
	return ch > 0x20 && ch != 0x7f && ch != '"';
}

/*
 * The next field of a line: a run of field bytes, or "..." holding any
 * printable bytes but '"' (for a CN or a prefix with spaces). Returns
 * 1 with the field, 0 at the end of the line, -1 on a bad byte.
 */
static int
next_field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == end) {
		*p = s;
		return 0;
	}
	if (*s == '"') {
		const char *q = ++s;

		while (q < end && *q != '"') {
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return -1;
			q++;
		}
		if (q == end)
			return -1;
		*f = s;
		*flen = (size_t)(q - s);
		*p = q + 1;
		/* A closing quote ends the field: a space or the end next. */
		if (*p < end && **p != ' ' && **p != '\t')
			return -1;
		return 1;
	}
	*f = s;
	while (s < end && field_byte((unsigned char)*s))
		s++;
	if (s < end && *s != ' ' && *s != '\t')
		return -1;
	*flen = (size_t)(s - *f);
	*p = s;
	return 1;
}

static bool
field_is(const char *f, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(f, word, len) == 0;
}

/* Digits only, no sign, below 2^32 - 1 (-1 is "nobody" to the kernel). */
static bool
parse_id(const char *f, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (f[i] < '0' || f[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(f[i] - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static const struct {
	const char	*tag;
	int		 who;
} who_tags[] = {
	{ "uid:", ACL_WHO_UID },
	{ "gid:", ACL_WHO_GID },
	{ "user:", ACL_WHO_USER },
	{ "group:", ACL_WHO_GROUP },
	{ "cert:", ACL_WHO_CERT },
	{ "token:", ACL_WHO_TOKEN },
};

static int
parse_who(struct acl_rule *r, const char *f, size_t len, char *err,
    size_t errlen)
{
	if (field_is(f, len, "*")) {
		r->who = ACL_WHO_ANY;
		return 0;
	}
	for (size_t i = 0; i < sizeof who_tags / sizeof who_tags[0]; i++) {
		size_t tl = strlen(who_tags[i].tag);
		const char *v = f + tl;
		size_t vl = len - tl;

		if (len < tl || memcmp(f, who_tags[i].tag, tl) != 0)
			continue;
		r->who = who_tags[i].who;
		if (r->who == ACL_WHO_UID || r->who == ACL_WHO_GID) {
			if (!parse_id(v, vl, &r->id)) {
				acl_err(err, errlen, "'%.*s' is not a number "
				    "below 4294967295", (int)(vl > 20 ? 20 : vl),
				    v);
				return -1;
			}
			return 0;
		}
		if (vl == 0 || vl > ACL_MAX_NAME ||
		    memchr(v, '\0', vl) != NULL) {
			acl_err(err, errlen, "a %.*s name is 1 to %d bytes",
			    (int)(tl - 1), f, ACL_MAX_NAME);
			return -1;
		}
		r->name = xstrndup(v, vl);
		return 0;
	}
	acl_err(err, errlen, "who is *, uid:N, gid:N, user:NAME, group:NAME, "
	    "cert:NAME or token:NAME");
	return -1;
}

static int
parse_rights(struct acl_rule *r, const char *f, size_t len, char *err,
    size_t errlen)
{
	const char *end = f + len;

	r->rights = 0;
	while (f <= end) {
		const char *comma = memchr(f, ',', (size_t)(end - f));
		size_t n = (size_t)((comma != NULL ? comma : end) - f);

		if (field_is(f, n, "lock"))
			r->rights |= ACL_LOCK;
		else if (field_is(f, n, "view"))
			r->rights |= ACL_VIEW;
		else if (field_is(f, n, "admin"))
			r->rights |= ACL_ADMIN;
		else if (field_is(f, n, "all"))
			r->rights |= ACL_ALL;
		else {
			acl_err(err, errlen, "rights are lock, view, admin or "
			    "all, separated by commas");
			return -1;
		}
		if (comma == NULL)
			break;
		f = comma + 1;
	}
	return 0;
}

static int
parse_prefix(struct acl_rule *r, const char *f, size_t len, char *err,
    size_t errlen)
{
	if (field_is(f, len, "*")) {
		r->prefix = xstrdup("");
		r->plen = 0;
		return 0;
	}
	/* A '*' elsewhere is kept for patterns: refused, not taken literally. */
	if (len == 0 || len > ACL_MAX_PREFIX || memchr(f, '*', len) != NULL) {
		acl_err(err, errlen, "a prefix is * (every lock) or 1 to %d "
		    "bytes without *", ACL_MAX_PREFIX);
		return -1;
	}
	r->prefix = xstrndup(f, len);
	r->plen = len;
	return 0;
}

static void
rule_clear(struct acl_rule *r)
{
	free(r->name);
	free(r->prefix);
	for (int i = 0; i < r->nmembers; i++)
		free(r->members[i]);
	free(r->members);
	memset(r, 0, sizeof *r);
}

/* One rule line (without its newline); 0 for a rule, 1 for none, -1. */
static int
parse_line(struct acl_rule *r, const char *s, const char *end, char *err,
    size_t errlen)
{
	const char *f[5];
	size_t fl[5];
	int n = 0, rc;

	memset(r, 0, sizeof *r);
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s == end || *s == '#')
		return 1;
	while ((rc = next_field(&s, end, &f[n < 4 ? n : 4],
	    &fl[n < 4 ? n : 4])) == 1)
		n++;
	if (rc < 0) {
		acl_err(err, errlen, "a control byte, a stray quote or an "
		    "unclosed quote");
		return -1;
	}
	if (n != 4) {
		acl_err(err, errlen, "a rule is four fields: allow|deny WHO "
		    "RIGHTS PREFIX (found %d)", n);
		return -1;
	}
	if (field_is(f[0], fl[0], "allow"))
		r->allow = true;
	else if (!field_is(f[0], fl[0], "deny")) {
		acl_err(err, errlen, "a rule begins with allow or deny");
		return -1;
	}
	if (parse_who(r, f[1], fl[1], err, errlen) != 0 ||
	    parse_rights(r, f[2], fl[2], err, errlen) != 0 ||
	    parse_prefix(r, f[3], fl[3], err, errlen) != 0) {
		rule_clear(r);
		return -1;
	}
	return 0;
}

struct acl *
acl_parse(const char *text, size_t len, const char *path, char *err,
    size_t errlen)
{
	struct acl *acl = xcalloc(1, sizeof *acl);
	const char *p = text, *end = text + len;
	char why[300];
	int line = 0, cap = 0;

	acl->path = xstrdup(path);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		struct acl_rule r;
		int rc;

		line++;
		if (le > p && le[-1] == '\r')
			le--;
		if ((size_t)(le - p) > ACL_MAX_LINE) {
			acl_err(err, errlen, "%s:%d: longer than %d bytes",
			    path, line, ACL_MAX_LINE);
			goto fail;
		}
		if ((rc = parse_line(&r, p, le, why, sizeof why)) < 0) {
			acl_err(err, errlen, "%s:%d: %s", path, line, why);
			goto fail;
		}
		if (rc == 0) {
			if (acl->nrules == ACL_MAX_RULES) {
				rule_clear(&r);
				acl_err(err, errlen, "%s:%d: more than %d rules",
				    path, line, ACL_MAX_RULES);
				goto fail;
			}
			if (acl->nrules == cap) {
				cap = cap == 0 ? 16 : cap * 2;
				acl->rules = xrealloc(acl->rules,
				    (size_t)cap * sizeof *acl->rules);
			}
			r.line = line;
			acl->rules[acl->nrules++] = r;
		}
		p = nl != NULL ? nl + 1 : end;
	}
	return acl;
fail:
	acl_free(acl);
	return NULL;
}

void
acl_free(struct acl *acl)
{
	if (acl == NULL)
		return;
	for (int i = 0; i < acl->nrules; i++)
		rule_clear(&acl->rules[i]);
	free(acl->rules);
	free(acl->path);
	free(acl);
}

/* A group's gid and member names, so matching asks no database. */
static int
resolve_group(struct acl_rule *r, char *err, size_t errlen)
{
	struct group *gr;

	errno = 0;
	gr = r->who == ACL_WHO_GROUP ? getgrnam(r->name) :
	    getgrgid((gid_t)r->id);
	if (gr == NULL) {
		if (r->who == ACL_WHO_GROUP)
			acl_err(err, errlen, "no group '%s'", r->name);
		else {
			/* A gid with no entry still matches primary groups. */
			r->resolved = true;
			return 0;
		}
		return -1;
	}
	r->id = (uint32_t)gr->gr_gid;
	for (char **m = gr->gr_mem; m != NULL && *m != NULL &&
	    r->nmembers < ACL_MAX_MEMBERS; m++) {
		r->members = xrealloc(r->members,
		    ((size_t)r->nmembers + 1) * sizeof *r->members);
		r->members[r->nmembers++] = xstrdup(*m);
	}
	r->resolved = true;
	return 0;
}

int
acl_resolve(struct acl *acl, char *err, size_t errlen)
{
	char why[300];

	for (int i = 0; i < acl->nrules; i++) {
		struct acl_rule *r = &acl->rules[i];

		why[0] = '\0';
		if (r->who == ACL_WHO_USER && getpwnam(r->name) == NULL)
			snprintf(why, sizeof why, "no user '%s'", r->name);
		else if (r->who == ACL_WHO_GROUP || r->who == ACL_WHO_GID)
			(void)resolve_group(r, why, sizeof why);
		if (why[0] != '\0') {
			acl_err(err, errlen, "%s:%d: %s", acl->path, r->line,
			    why);
			return -1;
		}
	}
	return 0;
}

struct acl *
acl_load(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	struct acl *acl;

	if ((f = fopen(path, "r")) == NULL) {
		acl_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 65536) {
			/* Far above any sane rules file: refuse, not swap. */
			if (cap > 64 * 1024 * 1024) {
				fclose(f);
				free(buf);
				acl_err(err, errlen, "%s: larger than 64 MB",
				    path);
				return NULL;
			}
			cap = cap == 0 ? 65536 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		acl_err(err, errlen, "%s: %s", path, strerror(errno));
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	acl = acl_parse(buf, len, path, err, errlen);
	free(buf);
	if (acl != NULL && acl_resolve(acl, err, errlen) != 0) {
		acl_free(acl);
		return NULL;
	}
	return acl;
}

static bool
who_matches(const struct acl_rule *r, const struct identity *id)
{
	switch (r->who) {
	case ACL_WHO_ANY:
		return true;
	case ACL_WHO_UID:
		return id->kind == ID_UNIX && (uint32_t)id->uid == r->id;
	case ACL_WHO_USER:
		return id->kind == ID_UNIX && strcmp(id->name, r->name) == 0;
	case ACL_WHO_GID:
	case ACL_WHO_GROUP:
		if (id->kind != ID_UNIX || !r->resolved)
			return false;
		if ((uint32_t)id->gid == r->id)
			return true;
		for (int i = 0; i < r->nmembers; i++)
			if (strcmp(r->members[i], id->name) == 0)
				return true;
		return false;
	case ACL_WHO_CERT:
		return id->kind == ID_TLS && strcmp(id->name, r->name) == 0;
	case ACL_WHO_TOKEN:
		return id->kind == ID_TOKEN && strcmp(id->name, r->name) == 0;
	default:
		return false;
	}
}

bool
acl_allows(const struct acl *acl, const struct identity *id, unsigned right,
    const char *name, size_t len, const struct acl_rule **rule)
{
	for (int i = 0; i < acl->nrules; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if ((r->rights & right) == 0 || len < r->plen ||
		    memcmp(name, r->prefix, r->plen) != 0 ||
		    !who_matches(r, id))
			continue;
		*rule = r;
		return r->allow;
	}
	*rule = NULL;
	return false;
}

const char *
acl_right_name(unsigned right)
{
	switch (right) {
	case ACL_LOCK:
		return "lock";
	case ACL_VIEW:
		return "view";
	case ACL_ADMIN:
		return "admin";
	default:
		return "?";
	}
}

void
acl_identity_str(const struct identity *id, char *buf, size_t len)
{
	switch (id->kind) {
	case ID_UNIX:
		if (strncmp(id->name, "uid:", 4) == 0)
			snprintf(buf, len, "%s", id->name);
		else
			snprintf(buf, len, "user:%s (uid %lu)", id->name,
			    (unsigned long)id->uid);
		break;
	case ID_TLS:
		snprintf(buf, len, "cert:%s", id->name);
		break;
	case ID_TOKEN:
		snprintf(buf, len, "token:%s", id->name);
		break;
	default:
		snprintf(buf, len, "an anonymous client");
		break;
	}
}
