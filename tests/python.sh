#!/bin/sh
# The Python client's tests (python/tests, pytest) against this build's
# dlmd. make check sets DLMD, DLMCTL and PYTHON (the one configure found
# able to import msgpack and pytest) and srcdir. The source tree may be
# read-only (make distcheck): nothing is written there, neither bytecode
# nor pytest's cache.
set -u
: "${srcdir:=$(dirname "$0")/..}"
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys, msgpack, pytest
sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
	echo "python.sh: SKIP: $PYTHON cannot import msgpack and pytest" \
	    "(Python 3.9 or newer; Debian: apt-get install python3-msgpack" \
	    "python3-pytest, or configure PYTHON=...)"
	exit 77
fi
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
# The package under test is the source tree's, never one installed.
PYTHONPATH="$srcdir/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
# pytest's own temporary files go to the build tree, and no rootdir
# configuration of the source tree's parents applies.
exec "$PYTHON" -m pytest -q -p no:cacheprovider --rootdir="$srcdir/python" \
    -o addopts= "$srcdir/python/tests"
