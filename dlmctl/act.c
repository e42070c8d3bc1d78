/* The acting commands, for admins: release and reset. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "dlmctl.h"

static int
report_released(struct ctl *ctl, json_t *res, const char *what,
    const struct name *nm)
{
	uint64_t n = value_uint(res, "released");

	if (ctl->json)
		return ctl_print_json(res);
	printf("%s%s%s: released %llu hold%s\n", what, nm ? " " : "",
	    nm ? nm->shown : "", (unsigned long long)n, n == 1 ? "" : "s");
	return EXIT_OK;
}

/*
 * The server counts what it freed; a named client that held nothing of
 * the lock is as much a miss as an unknown lock, and a script must be
 * able to tell that its release did nothing.
 */
static int
force_release(struct ctl *ctl, const struct name *lock,
    const struct name *client)
{
	json_t *params = json_object(), *res;
	int rc;

	json_object_set_new(params, "lock", value_bytes(lock->bytes,
	    lock->len));
	if (client != NULL)
		json_object_set_new(params, "client",
		    value_bytes(client->bytes, client->len));
	rc = ctl_call(ctl, "force_release", params, &res);
	json_decref(params);
	if (rc != EXIT_OK)
		return rc;
	if (client != NULL && value_uint(res, "released") == 0) {
		ctl_error("client '%s' holds no part of lock '%s'",
		    client->shown, lock->shown);
		rc = EXIT_NOT_FOUND;
	} else
		rc = report_released(ctl, res, "release", lock);
	json_decref(res);
	return rc;
}

int
cmd_release(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "client", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = "usage: dlmctl release LOCK [--client NAME]\n";
	const char *client_arg = NULL;
	struct name lock, client = { NULL, 0, NULL };
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (ch) {
		case 'c':
			client_arg = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if ((rc = name_from_arg("lock name", argv[optind], &lock)) != EXIT_OK)
		return rc;
	if ((client_arg == NULL || (rc = name_from_arg("client name",
	    client_arg, &client)) == EXIT_OK) &&
	    (rc = ctl_connect(ctl, NULL)) == EXIT_OK)
		rc = force_release(ctl, &lock, client_arg ? &client : NULL);
	name_free(&lock);
	name_free(&client);
	return rc;
}

int
cmd_reset(struct ctl *ctl, int argc, char **argv)
{
	static const struct option options[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *usage = "usage: dlmctl reset CLIENT | "
	    "dlmctl reset --all --yes\n";
	bool all = false, yes = false;
	struct name client = { NULL, 0, NULL };
	json_t *params = NULL, *res;
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (ch) {
		case 'a':
			all = true;
			break;
		case 'y':
			yes = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != (all ? 0 : 1)) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (all && !yes) {
		ctl_error("reset --all ends every client's session and "
		    "releases all their locks; add --yes to do it");
		return EXIT_USAGE;
	}
	if (!all && (rc = name_from_arg("client name", argv[optind],
	    &client)) != EXIT_OK)
		return rc;
	if ((rc = ctl_connect(ctl, NULL)) != EXIT_OK)
		goto out;
	if (!all) {
		params = json_object();
		json_object_set_new(params, "client",
		    value_bytes(client.bytes, client.len));
	}
	rc = ctl_call(ctl, all ? "reset_all" : "reset_client", params, &res);
	json_decref(params);
	if (rc != EXIT_OK)
		goto out;
	rc = report_released(ctl, res, all ? "reset --all" : "reset",
	    all ? NULL : &client);
	json_decref(res);
out:
	name_free(&client);
	return rc;
}
