/*
 * The daemon's state object. Defined here, below every layer that reads
 * it, so that reading a counter or a setting ties no file to the one that
 * fills the object in (server.c).
 */
#include "config.h"

#include "dlmd.h"

struct server *srv;

/* The cluster role as status and messages name it. */
const char *
cluster_role_word(int role)
{
	switch (role) {
	case CLUSTER_ACTIVE:
		return "active";
	case CLUSTER_STANDBY:
		return "standby";
	case CLUSTER_STARTING:
		return "starting";
	default:
		return "single";
	}
}
