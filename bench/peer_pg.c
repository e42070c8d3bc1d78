/*
 * PostgreSQL advisory locks, session level: pg_advisory_lock (waits in the
 * server's lock queue) or pg_try_advisory_lock, and pg_advisory_unlock, as
 * prepared statements. A lock name becomes a 64-bit key (FNV-1a). Waiting
 * with a timeout sets lock_timeout. The batch uses libpq's pipeline mode.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lockbench.h"

struct pconn {
	PGconn	*pg;
	int	 lock_timeout_ms;	/* as set in the session; 0: none */
};

static const char *
pg_recipe(void)
{
	return "SELECT pg_advisory_lock(key) (waits in the server's queue) or "
	    "pg_try_advisory_lock, pg_advisory_unlock; prepared; batch: "
	    "libpq pipeline mode";
}

static bool
pg_ok(PGresult *r, const char *what)
{
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;

	if (!ok && what != NULL)
		fprintf(stderr, "postgres %s: %s", what, PQresultErrorMessage(r));
	return ok;
}

static void *
pg_open(const char *addr, int lease_ms)
{
	struct pconn *pc = calloc(1, sizeof *pc);
	static const char *const stmts[][2] = {
		{ "lock", "SELECT pg_advisory_lock($1::int8)" },
		{ "try", "SELECT pg_try_advisory_lock($1::int8)" },
		{ "unlock", "SELECT pg_advisory_unlock($1::int8)" },
	};

	if (pc == NULL)
		return NULL;
	pc->pg = PQconnectdb(addr);
	if (PQstatus(pc->pg) != CONNECTION_OK) {
		fprintf(stderr, "postgres %s: %s", addr,
		    PQerrorMessage(pc->pg));
		PQfinish(pc->pg);
		free(pc);
		return NULL;
	}
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		PGresult *r = PQprepare(pc->pg, stmts[i][0], stmts[i][1], 1,
		    NULL);
		bool ok = pg_ok(r, "prepare");

		PQclear(r);
		if (!ok) {
			PQfinish(pc->pg);
			free(pc);
			return NULL;
		}
	}
	return pc;
}

static void
pg_close(void *conn)
{
	struct pconn *pc = conn;

	PQfinish(pc->pg);
	free(pc);
}

/* Run a prepared statement on one lock; its boolean result (or void). */
static int
pg_call(struct pconn *pc, const char *stmt, const char *lock)
{
	char key[32];
	const char *params[1] = { key };
	PGresult *r;
	int res;

	snprintf(key, sizeof key, "%" PRId64, lock_key(lock));
	r = PQexecPrepared(pc->pg, stmt, 1, params, NULL, NULL, 0);
	if (!pg_ok(r, NULL)) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		/* 55P03: lock_not_available, what lock_timeout raises. */
		res = state != NULL && strcmp(state, "55P03") == 0 ?
		    PEER_BUSY : PEER_ERROR;
	} else if (PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 'f')
		res = PEER_BUSY;
	else
		res = PEER_GRANTED;
	if (res == PEER_ERROR)
		fprintf(stderr, "postgres %s: %s", stmt,
		    PQresultErrorMessage(r));
	PQclear(r);
	return res;
}

static int
pg_acquire(void *conn, const char *lock, int timeout_ms)
{
	struct pconn *pc = conn;
	int want = timeout_ms > 0 ? timeout_ms : 0;

	if (timeout_ms == 0)
		return pg_call(pc, "try", lock);
	if (want != pc->lock_timeout_ms) {
		char sql[64];
		PGresult *r;
		bool ok;

		snprintf(sql, sizeof sql, "SET lock_timeout = %d", want);
		r = PQexec(pc->pg, sql);
		ok = pg_ok(r, "set lock_timeout");
		PQclear(r);
		if (!ok)
			return PEER_ERROR;
		pc->lock_timeout_ms = want;
	}
	return pg_call(pc, "lock", lock);
}

static int
pg_release(void *conn, const char *lock)
{
	return pg_call(conn, "unlock", lock) == PEER_GRANTED ? 0 : PEER_ERROR;
}

/* Send n executions of stmt in one pipeline; true when all returned true. */
static bool
pg_pipeline(struct pconn *pc, const char *stmt, const char *const *locks,
    int n)
{
	bool ok = true;
	PGresult *r;

	for (int i = 0; i < n; i++) {
		char key[32];
		const char *params[1] = { key };

		snprintf(key, sizeof key, "%" PRId64, lock_key(locks[i]));
		if (!PQsendQueryPrepared(pc->pg, stmt, 1, params, NULL, NULL, 0))
			return false;
	}
	if (!PQpipelineSync(pc->pg))
		return false;
	for (int i = 0; i < n; i++) {
		r = PQgetResult(pc->pg);
		if (!pg_ok(r, stmt) || PQntuples(r) != 1 ||
		    PQgetvalue(r, 0, 0)[0] != 't')
			ok = false;
		PQclear(r);
		r = PQgetResult(pc->pg);	/* NULL: end of this query */
		PQclear(r);
	}
	r = PQgetResult(pc->pg);		/* the sync */
	if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
		ok = false;
	PQclear(r);
	return ok;
}

static int
pg_batch(void *conn, const char *const *locks, int n)
{
	struct pconn *pc = conn;
	bool ok;

	if (!PQenterPipelineMode(pc->pg))
		return PEER_ERROR;
	ok = pg_pipeline(pc, "try", locks, n) &&
	    pg_pipeline(pc, "unlock", locks, n);
	PQexitPipelineMode(pc->pg);
	return ok ? 0 : PEER_ERROR;
}

const struct peer peer_postgres = {
	.name = "postgres",
	.recipe = pg_recipe,
	.open = pg_open,
	.close = pg_close,
	.acquire = pg_acquire,
	.release = pg_release,
	.batch = pg_batch,
	.idle = NULL,		/* a backend process per connection */
	.many = NULL,		/* its lock table is sized at start */
};
