"""Fixtures: a real dlmd (the built binary, $DLMD) on a temporary socket,
killed at the end of each test, and helpers the tests share.

The runner (tests/python.sh) sets DLMD and DLMCTL to the build's binaries;
run by hand, point DLMD at a dlmd binary, e.g.

    DLMD=build/dlmd/dlmd python3 -m pytest -q python/tests
"""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
# The package under test: this tree's, never one installed elsewhere.
PKGDIR = os.path.dirname(HERE)
if PKGDIR not in sys.path:
    sys.path.insert(0, PKGDIR)


def wait_until(pred, timeout=5.0, what="the condition"):
    """Poll pred until true; fail the test after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.01)


def acquire_in_thread(lock):
    """Start a thread that waits to acquire lock: the thread, and the list
    that gets the DlmError its acquire raises, if any."""
    import dlm
    errs = []

    def wait():
        try:
            lock.acquire()
        except dlm.DlmError as e:
            errs.append(e)
    t = threading.Thread(target=wait)
    t.start()
    return t, errs


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Dlmd(object):
    """A dlmd started for one test. ``address`` is its Unix socket
    (``unix:PATH``); ``tcp_address`` its TCP listener when asked for."""

    def __init__(self, binary, tmpdir, args=(), tcp=False):
        self.binary = binary
        self.dir = tmpdir
        self.sock = os.path.join(tmpdir, "dlmd.sock")
        self.address = "unix:" + self.sock
        self.log = os.path.join(tmpdir, "dlmd.log")
        self.port = free_port() if tcp else None
        self.tcp_address = "tcp:127.0.0.1:%d" % self.port if tcp else None
        argv = [binary, "-c", "/dev/null", "-f", "-l", self.address]
        if tcp:
            argv += ["-l", self.tcp_address]
        argv += list(args)
        self.argv = argv
        # Every loopback listener the test asked for must accept before
        # the test starts: the Unix socket alone may come first (a slow
        # start under the sanitizers showed it).
        self.ports = [self.port] if self.port else []
        for flag, value in zip(args, list(args)[1:]):
            m = re.match(r"^(?:tcp|tls):127\.0\.0\.1:(\d+)$", str(value))
            if flag in ("-l", "--listen") and m:
                self.ports.append(int(m.group(1)))
        self.proc = None
        self.start()

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("dlmd exited at start:\n" +
                                   self.read_log())
            if self._accepts():
                return
            if time.monotonic() > end:
                raise RuntimeError("dlmd did not start listening:\n" +
                                   self.read_log())
            time.sleep(0.01)

    def _accepts(self):
        for fam, addr in ((socket.AF_UNIX, self.sock),) + tuple(
                (socket.AF_INET, ("127.0.0.1", p)) for p in self.ports):
            s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.connect(addr)
            except OSError:
                return False
            finally:
                s.close()
        return True

    @property
    def pid(self):
        return self.proc.pid

    def read_log(self):
        try:
            with open(self.log, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def dlmd_binary():
    path = os.environ.get("DLMD")
    if not path:
        # An in-tree build, run by hand from the top of the tree.
        for guess in ("build/dlmd/dlmd", "dlmd/dlmd"):
            if os.access(guess, os.X_OK):
                path = os.path.abspath(guess)
                break
    if not path or not os.access(path, os.X_OK):
        pytest.skip("no dlmd binary: set DLMD to the built dlmd/dlmd")
    return path


@pytest.fixture
def tmpdir_short():
    # Unix socket paths are at most 107 bytes: pytest's tmp_path may be
    # longer.
    d = tempfile.mkdtemp(prefix="dlmpy.")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dlmd_factory(dlmd_binary, tmpdir_short):
    """Start dlmds: ``dlmd_factory(*args, tcp=False)``; all are stopped
    after the test."""
    started = []

    def start(*args, tcp=False):
        d = tempfile.mkdtemp(prefix="d", dir=tmpdir_short)
        s = Dlmd(dlmd_binary, d, args, tcp)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


@pytest.fixture
def dlmd(dlmd_factory):
    """A dlmd on a temporary Unix socket and a 127.0.0.1 TCP port:
    ``.address`` (unix:PATH), ``.tcp_address``, ``.pid``, ``.log``."""
    return dlmd_factory(tcp=True)


@pytest.fixture
def clients(dlmd):
    """``clients(name=None, **kw)`` makes a dlm.Client on the fixture's
    dlmd; every one is closed after the test."""
    import dlm
    made = []

    def make(name=None, **kw):
        kw.setdefault("address", dlmd.address)
        c = dlm.Client(name, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        try:
            c.close()
        except Exception:
            pass


class Relay(object):
    """A Unix socket that forwards each connection to dlmd, and can cut
    them all: a dropped connection the client did not close."""

    def __init__(self, target, path):
        self.target = target
        self.path = path
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(path)
        self.lsock.listen(16)
        self.address = "unix:" + path
        self.pairs = []
        self.mu = threading.Lock()
        self.accepted = 0
        self.refusing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            if self.refusing:
                a.close()
                continue
            b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                b.connect(self.target)
            except OSError:
                a.close()
                b.close()
                continue
            with self.mu:
                self.pairs.append((a, b))
                self.accepted += 1
            threading.Thread(target=self._pump, args=(a, b),
                             daemon=True).start()

    def _pump(self, a, b):
        socks = [a, b]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 0.5)
                if a.fileno() < 0 or b.fileno() < 0:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if s is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        """Close every connection through the relay, both ends."""
        with self.mu:
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.cut()
        self.lsock.close()


@pytest.fixture
def relay(dlmd, tmpdir_short):
    r = Relay(dlmd.sock, os.path.join(tmpdir_short, "relay.sock"))
    yield r
    r.close()


def run_python(code, env_extra=None, **kw):
    """Start a Python child running code with this tree's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = PKGDIR + (os.pathsep + env["PYTHONPATH"]
                                  if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def children():
    """Track child processes; killed at the end of the test."""
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
            except OSError:
                pass
            p.kill()
        p.wait()
