/*
 * Who may do what. Over the Unix socket the kernel tells us the peer's uid:
 * root, the daemon's own user and --admin-uid users are admins. Over TCP a
 * peer proves itself with a token in hello: the admin token makes it an
 * admin, and when a client token is set nobody else may open a session.
 * Every rule about that lives here, so that a reader (or a future access
 * list) finds them in one place.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "dlmd.h"

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
 * Judge a hello's credentials (auth may be NULL). Sets c->admin; returns 0,
 * or DLM_E_PERMISSION with a sentence in err.
 */
int
auth_hello(struct conn *c, const char *auth, size_t authlen, char *err,
    size_t errlen)
{
	const struct dlmd_config *cfg = srv->cfg;

	c->admin = (c->is_unix && auth_uid_is_admin(c->uid)) ||
	    token_matches(auth, authlen, cfg->admin_token);
	if (c->admin || c->is_unix || cfg->client_token == NULL ||
	    token_matches(auth, authlen, cfg->client_token))
		return 0;
	snprintf(err, errlen, "this server requires a client token over TCP "
	    "('auth' in hello)");
	return DLM_E_PERMISSION;
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
