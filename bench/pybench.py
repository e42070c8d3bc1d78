#!/usr/bin/env python3
"""bench/pybench.py DLMD [SECONDS [ROUNDS]]: the uncontended acquire+release
pair from Python, dlm's client beside redis-py's Lock.

It starts DLMD (the built dlmd) and a redis-server, each on a Unix socket
and on loopback TCP at a free port, in a temporary directory, and runs one
client, one lock, acquire and release back to back, for SECONDS (default 3)
per peer and transport: dlm's threaded client (dlm.Client), redis-py's
``Redis.lock()``, and, when dlm.aio exists, dlm's asyncio client beside
redis-py's asyncio ``Lock``. ROUNDS rounds (default 5), the peers taking
turns, each figure the median of its rounds, so that a slow minute of the
machine does not decide a ratio. Every server it starts is stopped at the
end, however it ends. See doc/BENCHMARKS.md.

Import dlm from the source tree with PYTHONPATH=python (or install it).
Needs redis-py (Debian's python3-redis) and redis-server.
"""

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import redis
import redis.asyncio

import dlm

try:
    import dlm.aio as dlm_aio
except ImportError:
    dlm_aio = None

LOCK = "pybench"
# redis-py's Lock with an expiry, as dlmd's holds have a lease: a holder
# that dies does not keep the lock for ever (SET NX PX 10000, dlmd's
# default lease; release is redis-py's compare-and-delete script).
REDIS_LOCK_TIMEOUT = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User and system CPU of a process so far (children not counted:
    neither server forks)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for_socket(path, proc, what):
    for _ in range(200):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            sys.exit("pybench: %s exited with %d" % (what, proc.returncode))
        time.sleep(0.05)
    sys.exit("pybench: %s did not start" % what)


class Servers(object):
    """dlmd and redis-server in a temporary directory, stopped on exit."""

    def __init__(self, dlmd_path):
        self.dir = tempfile.mkdtemp(prefix="dlm-pybench.")
        self.procs = []
        dlm_port, redis_port = free_port(), free_port()
        self.dlm_unix = "unix:%s/dlmd.sock" % self.dir
        self.dlm_tcp = "tcp:127.0.0.1:%d" % dlm_port
        self.redis_unix = "%s/redis.sock" % self.dir
        self.redis_port = redis_port
        self.dlmd = self._start(
            [dlmd_path, "-c", "/dev/null", "-f", "-l", self.dlm_unix,
             "-l", self.dlm_tcp, "--log-level", "warning"],
            "dlmd.log")
        wait_for_socket(self.dlm_unix[5:], self.dlmd, "dlmd")
        self.redis = self._start(
            ["redis-server", "--port", str(redis_port), "--bind",
             "127.0.0.1", "--protected-mode", "no", "--unixsocket",
             self.redis_unix, "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            "redis.log")
        wait_for_socket(self.redis_unix, self.redis, "redis-server")

    def _start(self, argv, log):
        with open(os.path.join(self.dir, log), "w") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(pair, seconds, server_pid):
    """Run pair() back to back for about `seconds`: the figures of a round."""
    pair()  # the connection and the first round trip out of the count
    lat = []
    cpu0, srv0 = time.process_time(), cpu_seconds(server_pid)
    clock = time.perf_counter
    start = clock()
    end = start + seconds
    t = start
    while t < end:
        pair()
        t2 = clock()
        lat.append(t2 - t)
        t = t2
    elapsed = t - start
    cpu, srv = time.process_time() - cpu0, cpu_seconds(server_pid) - srv0
    return figures(lat, elapsed, cpu, srv)


async def ameasure(pair, seconds, server_pid):
    """measure() for a coroutine pair."""
    await pair()
    lat = []
    cpu0, srv0 = time.process_time(), cpu_seconds(server_pid)
    clock = time.perf_counter
    start = clock()
    end = start + seconds
    t = start
    while t < end:
        await pair()
        t2 = clock()
        lat.append(t2 - t)
        t = t2
    elapsed = t - start
    cpu, srv = time.process_time() - cpu0, cpu_seconds(server_pid) - srv0
    return figures(lat, elapsed, cpu, srv)


def figures(lat, elapsed, cpu, srv):
    n = len(lat)
    lat.sort()
    return {
        "pairs_per_s": n / elapsed,
        "p50_us": lat[n // 2] * 1e6,
        "p99_us": lat[min(n - 1, int(n * 0.99))] * 1e6,
        "client_cpu_us": cpu / n * 1e6,
        "server_cpu_us": srv / n * 1e6,
    }


# One run of each peer: make a client, measure, close it.

def run_dlm(address, seconds, srv):
    client = dlm.Client("pybench-%d" % os.getpid(), address=address)
    try:
        lock = client.lock(LOCK)

        def pair():
            lock.acquire()
            lock.release()
        return measure(pair, seconds, srv.dlmd.pid)
    finally:
        client.close()


def run_redis(transport, seconds, srv):
    if transport == "unix":
        r = redis.Redis(unix_socket_path=srv.redis_unix)
    else:
        r = redis.Redis(host="127.0.0.1", port=srv.redis_port)
    try:
        lock = r.lock(LOCK, timeout=REDIS_LOCK_TIMEOUT)

        def pair():
            lock.acquire()
            lock.release()
        return measure(pair, seconds, srv.redis.pid)
    finally:
        r.close()


def run_dlm_aio(address, seconds, srv):
    async def main():
        client = await dlm_aio.connect("pybench-aio-%d" % os.getpid(),
                                       address=address)
        try:
            lock = client.lock(LOCK)

            async def pair():
                await lock.acquire()
                await lock.release()
            return await ameasure(pair, seconds, srv.dlmd.pid)
        finally:
            await client.close()
    return asyncio.run(main())


def run_redis_aio(transport, seconds, srv):
    async def main():
        if transport == "unix":
            r = redis.asyncio.Redis(unix_socket_path=srv.redis_unix)
        else:
            r = redis.asyncio.Redis(host="127.0.0.1", port=srv.redis_port)
        try:
            lock = r.lock(LOCK, timeout=REDIS_LOCK_TIMEOUT)

            async def pair():
                await lock.acquire()
                await lock.release()
            return await ameasure(pair, seconds, srv.redis.pid)
        finally:
            await r.close()
    return asyncio.run(main())


RECIPES = {
    "dlm": "dlm.Client(address=...).lock(name): acquire() (one request, "
           "waits in dlmd's FIFO queue), release()",
    "dlm-aio": "dlm.aio.connect(address=...): await lock.acquire(), "
               "await lock.release()",
    "redis-py": "redis.Redis(...).lock(name, timeout=%d): acquire() "
                "(SET NX PX), release() (EVALSHA compare-and-delete)"
                % REDIS_LOCK_TIMEOUT,
    "redis-aio": "redis.asyncio.Redis(...).lock(name, timeout=%d): the "
                 "same, awaited" % REDIS_LOCK_TIMEOUT,
}

# The columns, and which peer each dlm column is compared with.
PAIRS = [("dlm", "redis-py"), ("dlm-aio", "redis-aio")]
FIGURES = ["pairs_per_s", "p50_us", "p99_us", "client_cpu_us",
           "server_cpu_us"]


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return "%.0f" % v
    return "%.3g" % v


def ratio(fig, d, p):
    """dlm's advantage: its rate over the peer's, or the peer's time over
    dlm's; above 1, dlm did better."""
    if d is None or p is None or d <= 0 or p <= 0:
        return "-"
    return "%.2fx" % (d / p if fig.endswith("_per_s") else p / d)


def main():
    ap = argparse.ArgumentParser(
        description="dlm's Python client beside redis-py's Lock: the "
        "uncontended acquire+release pair.")
    ap.add_argument("dlmd", help="the dlmd binary (build/dlmd/dlmd)")
    ap.add_argument("seconds", nargs="?", type=float, default=3.0)
    ap.add_argument("rounds", nargs="?", type=int, default=5)
    ap.add_argument("--only", help="comma list of peers to run "
                    "(dlm,redis-py,dlm-aio,redis-aio)")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        sys.exit("pybench: redis-server is missing "
                 "(apt-get install redis-server)")

    peers = ["dlm", "redis-py"]
    if dlm_aio is not None:
        peers += ["dlm-aio", "redis-aio"]
    if args.only:
        peers = [p for p in peers if p in args.only.split(",")]

    srv = Servers(args.dlmd)
    # SIGTERM (a CI timeout) stops the servers as an exception would.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = {}
    try:
        run = {
            "dlm": lambda t: run_dlm(
                srv.dlm_unix if t == "unix" else srv.dlm_tcp,
                args.seconds, srv),
            "redis-py": lambda t: run_redis(t, args.seconds, srv),
            "dlm-aio": lambda t: run_dlm_aio(
                srv.dlm_unix if t == "unix" else srv.dlm_tcp,
                args.seconds, srv),
            "redis-aio": lambda t: run_redis_aio(t, args.seconds, srv),
        }
        total = len(peers) * 2 * args.rounds * (args.seconds + 0.2)
        print("running (about %.0f s)" % total, file=sys.stderr)
        for transport in ("unix", "tcp"):
            for rnd in range(args.rounds):
                for peer in peers:
                    r = run[peer](transport)
                    for fig, v in r.items():
                        results.setdefault((peer, transport, fig),
                                           []).append(v)
        versions = subprocess.run([args.dlmd, "-V"], capture_output=True,
                                  text=True).stdout.split()
        redis_info = redis.Redis(unix_socket_path=srv.redis_unix).info()
    finally:
        srv.stop()

    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print("machine: %d cores, %s, %s %s" % (os.cpu_count(), model,
                                            platform.system(),
                                            platform.release()))
    print("versions: dlmd %s, Redis %s, Python %s, redis-py %s, msgpack %s"
          % (versions[1] if len(versions) > 1 else "?",
             redis_info.get("redis_version", "?"),
             platform.python_version(), redis.__version__,
             ".".join(map(str, __import__("msgpack").version))))
    print("%d rounds of %g s per peer and transport, the peers taking "
          "turns; each figure the median of its rounds" % (args.rounds,
                                                          args.seconds))
    print()
    for peer in peers:
        print("  %s: %s" % (peer, RECIPES[peer]))
    print()
    cols = [c for c in ("dlm", "redis-py", "dlm-aio", "redis-aio")
            if c in peers]
    pairs = [(d, p) for d, p in PAIRS if d in peers and p in peers]
    head = "%-15s %-5s" % ("figure", "via")
    head += "".join(" %10s" % c for c in cols)
    head += "".join(" %17s" % ("%s/%s" % (d, p)) for d, p in pairs)
    print(head)
    for transport in ("unix", "tcp"):
        for fig in FIGURES:
            med = {}
            for c in cols:
                v = results.get((c, transport, fig))
                med[c] = statistics.median(v) if v else None
            line = "%-15s %-5s" % (fig, transport)
            line += "".join(" %10s" % fmt(med[c]) for c in cols)
            line += "".join(" %17s" % ratio(fig, med[d], med[p])
                            for d, p in pairs)
            print(line)


if __name__ == "__main__":
    main()
