#!/bin/sh
# After `make install DESTDIR=STAGE`: check what was installed, build the
# examples the way a user would, from the installed <dlm.h> and `pkg-config
# dlm` only, then run each, and the installed dlmctl, against a temporary
# dlmd.
#   bindir=... sbindir=... mandir=... includedir=... unitdir=... docdir=... \
#   examples.sh SRCDIR STAGE LIBDIR DLMD CC
set -eu
srcdir=$1 stage=$2 libdir=$3 dlmd=$4 cc=$5
# Not examples/: in an in-tree build that holds the sources, and make clean
# removes this directory.
out=$(pwd)/examples-bin
mkdir -p "$out"

for f in "$sbindir/dlmd" "$bindir/dlmctl" "$libdir/libdlmclient.so" \
    "$libdir/libdlmclient.a" "$libdir/pkgconfig/dlm.pc" \
    "$includedir/dlm.h" "$includedir/dlm/libevent.h" "$includedir/dlm/libuv.h" \
    "$mandir/man1/dlmctl.1" "$mandir/man3/dlm.3" "$mandir/man5/dlmd.conf.5" \
    "$mandir/man7/dlm-protocol.7" "$mandir/man8/dlmd.8" \
    "$mandir/man3/dlm_acquire.3" "$mandir/man3/dlm_release.3" \
    "$unitdir/dlmd.service" "$docdir/examples/dlmd.conf"; do
	if [ ! -e "$stage$f" ]; then
		echo "install: $f is missing" >&2
		exit 1
	fi
done
grep -q "^ExecStart=$sbindir/dlmd " "$stage$unitdir/dlmd.service"

pc="$stage$libdir/pkgconfig"
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$stage \
    pkg-config --cflags --libs dlm)
# The flags must name the stage only. An in-tree build stages inside the
# source tree, so drop every path under the stage before looking for the
# source tree in what is left.
rest=$flags
while :; do
	case "$rest" in
	*"$stage/"*) rest="${rest%%"$stage/"*}${rest#*"$stage/"}" ;;
	*) break ;;
	esac
done
case "$rest" in
*"$srcdir"*) echo "examples: pkg-config points into the source tree:" \
	"$flags" >&2
	exit 1 ;;
esac
for e in cron_guard worker_pool fencing async_loop; do
	echo "  CC       examples/$e (installed dlm.h, pkg-config dlm)"
	# shellcheck disable=SC2086
	$cc -std=gnu11 -Wall -Wextra -Werror "$srcdir/examples/$e.c" $flags \
	    -pthread -o "$out/$e"
done
# The event-loop adapters, as a program on each loop would use them: the
# loop's own pkg-config module beside dlm, and pedantic C.
for e in libevent_jobs:libevent libuv_jobs:libuv; do
	name=${e%%:*} loop=${e#*:}
	echo "  CC       examples/$name (installed <dlm/$loop.h>, pkg-config dlm $loop)"
	# shellcheck disable=SC2086
	$cc -std=gnu11 -Wall -Wextra -Werror -pedantic "$srcdir/examples/$name.c" \
	    $flags $(pkg-config --cflags --libs "$loop") -o "$out/$name"
done

tmp=$(mktemp -d /tmp/dlm-examples.XXXXXX)
"$dlmd" -c /dev/null -f -l "unix:$tmp/s.sock" --log-level warning &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
export DLM_SERVER="unix:$tmp/s.sock"
export LD_LIBRARY_PATH="$stage$libdir"
# Ready when it answers, not when its socket file appears: the file exists
# from bind(), a moment before listen(), and a connect in between is
# refused. Up to 20 s, for a loaded machine.
ready=no
for _ in $(seq 400); do
	if "$stage$bindir/dlmctl" ping -c 1 >/dev/null 2>&1; then
		ready=yes
		break
	fi
	sleep 0.05
done
if [ "$ready" != yes ]; then
	echo "examples: dlmd did not answer on $tmp/s.sock" >&2
	exit 1
fi

"$out/cron_guard" examples/cron sh -c 'exit 0'
"$out/cron_guard" examples/cron sh -c 'exit 3' || [ $? -eq 3 ]
"$out/worker_pool" >/dev/null
"$out/fencing" "$tmp/resource"
head -n 1 "$tmp/resource" | grep -q '^[0-9][0-9]*$'
"$out/async_loop" | grep -q '^100 granted, 100 released, 0 failed$'
for e in libevent_jobs libuv_jobs; do
	"$out/$e" | grep -q '^50 jobs, 50 granted, 50 released, 0 failed, at most [0-9]* at once$'
done
"$stage$bindir/dlmctl" run installed -- sh -c 'test -n "$DLM_LOCK_TOKEN"'
"$stage$bindir/dlmctl" --json status | grep -q '"sessions"'
echo "install: every file in place; examples: 6 built from the installed" \
    "headers, 6 ran; the installed dlmctl ran"
