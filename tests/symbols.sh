#!/bin/sh
# libdlmclient exports exactly the public API: the DLM_API functions of
# <dlm.h>, as listed in libdlm.map, and none of the names the Linux cluster
# DLM's libdlm exports.
set -eu
here=$(dirname "$0")
lib=${1:-libdlm/.libs/libdlmclient.so}
map=$here/../libdlm/libdlm.map
hdr=$here/../libdlm/dlm.h
got=$(nm -D --defined-only "$lib" |
    awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
want=$(sed -n 's/^[[:space:]]*\(dlm_[a-z_]*\);$/\1/p' "$map" | sort)
api=$(grep '^DLM_API' "$hdr" | grep -o 'dlm_[a-z_]*(' | tr -d '(' | sort)
if [ "$want" != "$api" ]; then
	printf 'libdlm.map and dlm.h disagree:\nmap:\n%s\nheader:\n%s\n' \
	    "$want" "$api" >&2
	exit 1
fi
if [ "$got" != "$want" ]; then
	printf 'exported symbols differ from libdlm.map:\nwant:\n%s\ngot:\n%s\n' \
	    "$want" "$got" >&2
	exit 1
fi
for s in dlm_lock dlm_unlock dlm_lock_wait dlm_dispatch dlm_get_fd \
    dlm_create_lockspace dlm_release_lockspace dlm_open_lockspace; do
	if echo "$got" | grep -qx "$s"; then
		echo "exports $s, a Linux cluster DLM name" >&2
		exit 1
	fi
done
echo "symbols: $(echo "$got" | wc -l) exported, exactly dlm.h's API"
