/*
 * Who may do what. Over the Unix socket the kernel tells us the peer's uid:
 * root, the daemon's own user and --admin-uid users are admins. Over TCP a
 * peer proves itself with a token in hello: the admin token makes it an
 * admin, and when a client token or named tokens are set nobody else may
 * open a session. A named token (--tokens-file) makes the connection the
 * identity token:NAME.
 *
 * With a rules file (--acl-file), the rules alone decide every right on
 * every lock, for every identity (root too), on every request; without
 * one, everything is as it was: any session may lock and view, admins
 * administer. Every rule about that lives here.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "dlmd.h"
#include "tokenfile.h"

/*
 * Compare secrets in time that does not depend on where they differ. Their
 * lengths are not secret.
 */
bool
auth_secret_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = 0;

	if (alen != blen || blen == 0)
		return false;
	for (size_t i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

static bool
auth_uid_is_admin(uid_t uid)
{
	if (uid == (uid_t)-1)
		return false;
	if (uid == 0 || uid == srv->uid)
		return true;
	for (int i = 0; i < srv->cfg->nadmin_uids; i++)
		if (srv->cfg->admin_uids[i] == uid)
			return true;
	return false;
}

static bool
token_matches(const char *auth, size_t authlen, const char *token)
{
	return auth != NULL && token != NULL &&
	    auth_secret_equal(auth, authlen, token, strlen(token));
}

/*
 * The named token whose secret auth is, or NULL. Every secret is compared,
 * whichever matches, so the time taken says nothing of which one did.
 */
static const struct dlm_named_token *
named_token(const char *auth, size_t authlen)
{
	const struct dlmd_config *cfg = srv->cfg;
	const struct dlm_named_token *found = NULL;

	if (auth == NULL)
		return NULL;
	for (int i = 0; i < cfg->ntokens; i++)
		if (token_matches(auth, authlen, cfg->tokens[i].secret) &&
		    found == NULL)
			found = &cfg->tokens[i];
	return found;
}

/*
 * Judge a hello's credentials (auth may be NULL). Sets c->admin, and
 * c->ident when auth is a named token (it then stands for the connection
 * whatever its transport); returns 0, or DLM_E_PERMISSION with a sentence
 * in err.
 */
int
auth_hello(struct conn *c, const char *auth, size_t authlen, char *err,
    size_t errlen)
{
	const struct dlmd_config *cfg = srv->cfg;
	const struct dlm_named_token *t = named_token(auth, authlen);

	if (t != NULL) {
		c->ident.kind = ID_TOKEN;
		c->ident.uid = (uid_t)-1;
		c->ident.gid = (gid_t)-1;
		conn_set_identity_name(c, t->name);
	}
	c->admin = (c->is_unix && auth_uid_is_admin(c->uid)) ||
	    token_matches(auth, authlen, cfg->admin_token);
	/*
	 * A peer that proved who it is (the kernel, a client certificate, a
	 * named token) needs no client token.
	 */
	if (c->admin || c->is_unix || c->ident.kind != ID_NONE ||
	    (cfg->client_token == NULL && cfg->ntokens == 0) ||
	    token_matches(auth, authlen, cfg->client_token))
		return 0;
	snprintf(err, errlen, "this server requires a token over TCP "
	    "('auth' in hello)%s", auth != NULL ? ", and the one given is "
	    "not one of its tokens" : "");
	return DLM_E_PERMISSION;
}

/* Is there a rules file? Without one, lock and view are everyone's. */
bool
auth_has_rules(void)
{
	return srv->cfg->acl != NULL;
}

/*
 * The refusal of right on lock name to c, in err: the identity, the right,
 * the lock (or, when name_it is false, "a lock it may not view"), and the
 * rule that refused or that no rule grants it.
 */
static int
right_refused(const struct conn *c, unsigned right, const char *name,
    size_t len, bool name_it, char *err, size_t errlen)
{
	const struct acl *acl = srv->cfg->acl;
	const struct acl_rule *rule;
	char who[300], what[300];

	if (acl == NULL || acl_allows(acl, &c->ident, right, name, len, &rule))
		return 0;
	acl_identity_str(&c->ident, who, sizeof who);
	if (name_it)
		snprintf(what, sizeof what, "lock '%s'", safe_str(name, len));
	else
		snprintf(what, sizeof what, "a lock it may not view");
	if (rule != NULL)
		snprintf(err, errlen, "%s has no %s right on %s: denied by "
		    "rule %s:%d", safe_str0(who), acl_right_name(right), what,
		    acl->path, rule->line);
	else
		snprintf(err, errlen, "%s has no %s right on %s: no rule in "
		    "%s grants it", safe_str0(who), acl_right_name(right), what,
		    acl->path);
	return DLM_E_PERMISSION;
}

/*
 * May c use right on lock name? Always yes without a rules file (admin
 * methods are then checked by auth_admin() as before). Else 0, or
 * DLM_E_PERMISSION with a sentence in err naming the identity, the right,
 * the lock and the rule that refused, or that no rule grants it.
 */
int
auth_right(const struct conn *c, unsigned right, const char *name,
    size_t len, char *err, size_t errlen)
{
	return right_refused(c, right, name, len, true, err, errlen);
}

/*
 * auth_right() for a lock the caller did not name but dlmd found (one a
 * client to be reset holds): a refusal names it only if c may view it, so
 * that it tells no more than a listing would.
 */
int
auth_right_found(const struct conn *c, unsigned right, const char *name,
    size_t len, char *err, size_t errlen)
{
	return right_refused(c, right, name, len,
	    auth_may(c, ACL_VIEW, name, len), err, errlen);
}

/* auth_right() as a yes or no, for listings that leave out what is not. */
bool
auth_may(const struct conn *c, unsigned right, const char *name, size_t len)
{
	const struct acl *acl = srv->cfg->acl;
	const struct acl_rule *rule;

	return acl == NULL || acl_allows(acl, &c->ident, right, name, len,
	    &rule);
}

/* May this connection call an admin method? 0, or PERMISSION and why. */
int
auth_admin(const struct conn *c, const char *method, char *err,
    size_t errlen)
{
	if (c->admin)
		return 0;
	snprintf(err, errlen, "'%s' is for admins: connect over the Unix "
	    "socket as root or the server's user, or give the admin token",
	    method);
	return DLM_E_PERMISSION;
}

/* Say which rules and tokens are in force, at start and at each reload. */
void
auth_log_rules(void)
{
	const struct dlmd_config *cfg = srv->cfg;

	if (cfg->acl != NULL)
		log_info("access rules: %d from %s (first match decides)",
		    cfg->acl->nrules, cfg->acl->path);
	if (cfg->ntokens > 0)
		log_info("named tokens: %d", cfg->ntokens);
}
