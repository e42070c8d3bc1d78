/*
 * The daemon's state object. Defined here, below every layer that reads
 * it, so that reading a counter or a setting ties no file to the one that
 * fills the object in (server.c).
 */
#include "config.h"

#include "dlmd.h"

struct server *srv;
