/*
 * Access rules (--acl-file): which identities may lock, view or administer
 * locks under which name prefixes. The parser and the matcher are pure (no
 * I/O but what acl_resolve() asks of the user and group databases), so the
 * fuzzer runs them alone. dlmd.conf(5) documents the format.
 *
 *	# VERB  WHO          RIGHTS        PREFIX
 *	allow   user:alice   lock,view     app/
 *	deny    *            admin         *
 *
 * The first rule that names the identity, the right asked for and a prefix
 * of the lock's name decides; when none does, the request is refused.
 */
#ifndef DLMD_ACL_H
#define DLMD_ACL_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct identity;

#define ACL_LOCK	0x1	/* acquire, convert */
#define ACL_VIEW	0x2	/* listings, lock, check, watch */
#define ACL_ADMIN	0x4	/* force_release, reset_client, reset_all */
#define ACL_ALL		(ACL_LOCK | ACL_VIEW | ACL_ADMIN)

#define ACL_MAX_RULES	100000
#define ACL_MAX_LINE	4096
#define ACL_MAX_NAME	255	/* bytes of a WHO's name */
#define ACL_MAX_PREFIX	1000	/* bytes of a prefix (max-name-len's cap) */
#define ACL_MAX_MEMBERS	4096	/* a group's members kept for matching */

enum acl_who {
	ACL_WHO_ANY,		/* "*": every identity, anonymous included */
	ACL_WHO_UID,		/* uid:N, a Unix peer */
	ACL_WHO_GID,		/* gid:N, a Unix peer in that group */
	ACL_WHO_USER,		/* user:NAME, a Unix peer */
	ACL_WHO_GROUP,		/* group:NAME, a Unix peer in that group */
	ACL_WHO_CERT,		/* cert:NAME, a TLS client certificate */
	ACL_WHO_TOKEN,		/* token:NAME, a named token */
};

struct acl_rule {
	int		 line;
	bool		 allow;
	int		 who;		/* enum acl_who */
	char		*name;		/* of user, group, cert, token */
	uint32_t	 id;		/* of uid:, gid:; a group's gid */
	bool		 resolved;	/* a group's gid and members known */
	char		**members;	/* a group's member user names */
	int		 nmembers;
	unsigned	 rights;	/* ACL_* */
	char		*prefix;	/* "" for "*" */
	size_t		 plen;
};

struct acl {
	char		*path;		/* for messages */
	struct acl_rule	*rules;
	int		 nrules;
};

/*
 * Parse a rules file's text (any bytes). Returns the rules, or NULL with
 * err saying which line is wrong and why.
 */
struct acl	*acl_parse(const char *text, size_t len, const char *path,
		    char *err, size_t errlen);
/* Read and parse path, then resolve it; NULL with err when bad. */
struct acl	*acl_load(const char *path, char *err, size_t errlen);
/* Look up group: and user: names; -1 with err for an unknown one. */
int		 acl_resolve(struct acl *, char *err, size_t errlen);
void		 acl_free(struct acl *);

/*
 * Does the acl grant right on lock name to id? *rule is the rule that
 * decided, or NULL when none did (then the answer is no).
 */
bool		 acl_allows(const struct acl *, const struct identity *,
		    unsigned right, const char *name, size_t len,
		    const struct acl_rule **rule);
const char	*acl_right_name(unsigned right);
/* The identity as rules name it: "user:alice (uid 1000)", "token:ci". */
void		 acl_identity_str(const struct identity *, char *buf,
		    size_t len);

#endif
