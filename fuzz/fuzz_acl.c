/*
 * libFuzzer harness for the access-rules parser and matcher: whatever the
 * bytes, acl_parse() must refuse them with a message or return rules that
 * hold together (rights known, prefixes as long as said, lines rising),
 * and asking the rules about a few identities and names must not read
 * past anything.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
ask(const struct acl *acl, const struct identity *id)
{
	static const char *names[] = { "", "a", "app/x", "a b/c", "\xff" };
	const struct acl_rule *rule;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		for (unsigned right = ACL_LOCK; right <= ACL_ADMIN;
		    right <<= 1) {
			bool yes = acl_allows(acl, id, right, names[i],
			    strlen(names[i]), &rule);

			/* A yes always comes from an allow rule. */
			if (yes && (rule == NULL || !rule->allow))
				abort();
		}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char alice[] = "alice", cert[] = "John Smith", token[] = "ci";
	struct identity ids[4];
	struct acl *acl;
	char err[512];
	int last = 0;

	err[0] = '\0';
	acl = acl_parse((const char *)data, size, "fuzz", err, sizeof err);
	if (acl == NULL) {
		if (err[0] == '\0')
			abort();
		return 0;
	}
	for (int i = 0; i < acl->nrules; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if (r->rights == 0 || (r->rights & ~ACL_ALL) != 0 ||
		    r->line <= last || r->prefix == NULL ||
		    strlen(r->prefix) != r->plen || r->plen > ACL_MAX_PREFIX)
			abort();
		last = r->line;
	}
	memset(ids, 0, sizeof ids);
	ids[0].kind = ID_NONE;
	ids[1].kind = ID_UNIX;
	ids[1].uid = 1000;
	ids[1].gid = 1000;
	ids[1].name = alice;
	ids[2].kind = ID_TLS;
	ids[2].name = cert;
	ids[3].kind = ID_TOKEN;
	ids[3].name = token;
	for (int i = 0; i < 4; i++)
		ask(acl, &ids[i]);
	acl_free(acl);
	return 0;
}
