"""The tooz driver, used as tooz's users use it: the package is installed
with pip into a virtual environment (so tooz finds the ``dlm`` backend
through the entry point, as it would on a user's machine), and each test
runs a small program under that environment's Python, calling tooz's own
API (get_coordinator, get_lock, acquire, release...) against a real dlmd.
"""

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest


HERE = os.path.dirname(os.path.abspath(__file__))
PKGDIR = os.path.dirname(HERE)

pytest.importorskip("tooz", reason="tooz is not installed "
                    "(Debian: python3-tooz)")

# Each program is bounded; a hang fails its test rather than the run.
RUN_TIMEOUT = 30


def _has_pip(python):
    return subprocess.run([python, "-m", "pip", "--version"],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


@pytest.fixture(scope="module")
def venv_python():
    """A venv (with the system's packages: tooz, msgpack) into which
    ``pip install ./python`` put the dlm package; its python."""
    if not os.path.exists(os.path.join(PKGDIR, "pyproject.toml")):
        pytest.skip("no python/pyproject.toml to install from")
    top = tempfile.mkdtemp(prefix="dlmtooz.")
    try:
        # pip builds in the source tree (egg-info): build from a copy, so
        # that a read-only source tree (distcheck) is never written.
        src = os.path.join(top, "src")
        shutil.copytree(PKGDIR, src, ignore=shutil.ignore_patterns(
            "__pycache__", "*.pyc", "*.egg-info", "build", "tests"))
        # The copy keeps a read-only tree's modes: make it writable.
        for root, dirs, files in os.walk(src):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o644)
        venv = os.path.join(top, "venv")
        # Without its own pip when the system has one (a copy of pip into
        # every test run costs seconds); else with ensurepip's.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip",
                        "--system-site-packages", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        if not _has_pip(python):
            shutil.rmtree(venv)
            r = subprocess.run([sys.executable, "-m", "venv",
                                "--system-site-packages", venv],
                               capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip("cannot make a venv (Debian: python3-venv): "
                            + r.stderr.strip()[-300:])
        r = subprocess.run([python, "-m", "pip", "install", "--no-index",
                            "--no-build-isolation", "--no-deps", "-q",
                            src], capture_output=True, text=True,
                           timeout=120, env=_env())
        assert r.returncode == 0, "pip install failed:\n" + r.stdout + \
            r.stderr
        yield python
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _env(extra=None):
    env = dict(os.environ)
    # The installed package, never this tree's.
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


PRELUDE = """
import json, os, sys, threading, time
import tooz, tooz.coordination
from tooz import coordination

def coord(url, member):
    c = coordination.get_coordinator(url, member)
    c.start()
    return c

def out(**kw):
    print(json.dumps(kw))
"""


# The programs run in one worker process under the venv's python, which
# imports tooz once (a second or more on a loaded machine) and then runs
# each test's code with that test's environment, printing what out() was
# given as one JSON line.
WORKER = """
import json, os, sys, traceback
PRELUDE = sys.argv[1]
# What a test's programs pass on to its next ones.
keep = {}
for line in sys.stdin:
    req = json.loads(line)
    saved = dict(os.environ)
    os.environ.update(req["env"])
    res = {}
    g = {}
    try:
        exec(PRELUDE, g)
        g["out"] = lambda **kw: res.update(kw)
        g["keep"] = keep
        exec(req["code"], g)
        reply = {"out": res}
    except BaseException:
        reply = {"error": traceback.format_exc()}
    finally:
        os.environ.clear()
        os.environ.update(saved)
    sys.stdout.write(json.dumps(reply) + "\\n")
    sys.stdout.flush()
"""


class Worker(object):
    """The venv's python running WORKER; restarted after a program that
    did not finish in time."""

    def __init__(self, python):
        self.python = python
        self.proc = None
        self.cwd = tempfile.mkdtemp(prefix="dlmtoozrun.")

    def run(self, code, env=None, timeout=RUN_TIMEOUT):
        if self.proc is None or self.proc.poll() is not None:
            # From a directory of its own, so that nothing imports this
            # tree's dlm.
            self.proc = subprocess.Popen(
                [self.python, "-c", WORKER, PRELUDE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                cwd=self.cwd, env=_env())
        req = {"code": textwrap.dedent(code), "env": env or {}}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise AssertionError("the program did not finish in %d s"
                                 % timeout)
        line = self.proc.stdout.readline()
        assert line, "the worker died"
        reply = json.loads(line)
        assert "error" not in reply, "program failed:\n" + reply["error"]
        return reply["out"]

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.cwd, ignore_errors=True)


@pytest.fixture(scope="module")
def worker(venv_python):
    w = Worker(venv_python)
    yield w
    w.close()


def run_tooz(worker, code, env=None, timeout=RUN_TIMEOUT):
    """Run code (after PRELUDE) in the worker; the keywords it gave
    out()."""
    return worker.run(code, env, timeout)


def unix_url(dlmd, query=""):
    return "dlm://" + dlmd.sock + ("?" + query if query else "")


def tcp_url(dlmd, query=""):
    return "dlm://127.0.0.1:%d" % dlmd.port + ("?" + query if query else "")


def test_entry_point_loads_driver(worker, dlmd):
    """get_coordinator finds DlmDriver through the installed entry point,
    and its session is named after the member id."""
    r = run_tooz(worker, """
        import dlm.tooz_driver
        c = coord(os.environ["URL"], b"member-1")
        names = [x["name"] for x in dlm.Client(
            address=os.environ["ADDR"]).call("clients")["clients"]]
        out(cls=type(c).__name__, module=type(c).__module__,
            file=dlm.tooz_driver.__file__, names=names,
            beating=c.requires_beating,
            chars=sorted(x.value for x in c.CHARACTERISTICS))
        c.stop()
    """, env={"URL": unix_url(dlmd), "ADDR": dlmd.address})
    assert r["cls"] == "DlmDriver"
    assert r["module"] == "dlm.tooz_driver"
    # The installed copy, not this tree's.
    assert "site-packages" in r["file"]
    assert any(n.startswith("member-1:") for n in r["names"]), r["names"]
    assert r["beating"] is False
    assert "DISTRIBUTED_ACROSS_HOSTS" in r["chars"]


def test_exclusive_across_two_coordinators(worker, dlmd):
    """A lock held through one coordinator (Unix socket) is refused to
    another (TCP), waiting or not, and is free to it once released."""
    r = run_tooz(worker, """
        a = coord(os.environ["A"], b"a")
        b = coord(os.environ["B"], b"b")
        la, lb = a.get_lock(b"jobs/nightly"), b.get_lock("jobs/nightly")
        got_a = la.acquire()
        no_wait = lb.acquire(blocking=False)
        t0 = time.monotonic()
        timed = lb.acquire(blocking=0.3)
        waited = time.monotonic() - t0
        token_a = la.token
        rel = la.release()
        got_b = lb.acquire(blocking=False)
        token_b = lb.token
        out(got_a=got_a, no_wait=no_wait, timed=timed, waited=waited,
            rel=rel, got_b=got_b, token_a=token_a, token_b=token_b,
            owner_b=lb.is_still_owner(), owner_a=la.is_still_owner())
        lb.release(); a.stop(); b.stop()
    """, env={"A": unix_url(dlmd), "B": tcp_url(dlmd)})
    assert r["got_a"] is True
    assert r["no_wait"] is False
    assert r["timed"] is False
    assert r["waited"] >= 0.29
    assert r["rel"] is True
    assert r["got_b"] is True
    # Fencing tokens grow from one holder to the next.
    assert r["token_b"] > r["token_a"] > 0
    assert r["owner_b"] is True and r["owner_a"] is False


def test_blocking_acquire_is_granted_on_release(worker, dlmd):
    """A waiting acquire waits in dlmd's queue and is granted as soon as
    the holder lets go, not at a polling interval; a timeout that is long
    enough is met the same way."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        b = coord(os.environ["URL"], b"b")
        c = coord(os.environ["URL"], b"c")
        la = a.get_lock("q")
        la.acquire()
        results = {}
        def wait(name, lock, blocking):
            results[name] = lock.acquire(blocking=blocking)
            results[name + "_at"] = time.monotonic()
            lock.release()
        tb = threading.Thread(target=wait, args=("b", b.get_lock("q"), True))
        tb.start()
        time.sleep(0.2)
        tc = threading.Thread(target=wait, args=("c", c.get_lock("q"), 10))
        tc.start()
        time.sleep(0.2)
        released_at = time.monotonic()
        la.release()
        tb.join(10); tc.join(10)
        out(b=results.get("b"), c=results.get("c"),
            b_after=results["b_at"] - released_at,
            order=results["b_at"] <= results["c_at"])
        a.stop(); b.stop(); c.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r["b"] is True and r["c"] is True
    # FIFO: the first waiter first.
    assert r["order"] is True
    # Granted on release (a poller at redis-py's 0.1 s would take longer;
    # this bound only catches a wait that is not told).
    assert r["b_after"] < 2.0


def test_threads_and_locks_of_one_coordinator_exclude_each_other(
        worker, dlmd):
    """Lock objects and threads of one coordinator share one dlm session
    but exclude each other as tooz expects: a second acquire is refused
    or waits, a thread waits for another's release, and an object that
    holds nothing cannot release."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        l1, l2 = a.get_lock("same"), a.get_lock("same")
        r = {}
        r["first"] = l1.acquire()
        r["again_same_object"] = l1.acquire(blocking=False)
        r["other_object"] = l2.acquire(blocking=False)
        r["other_object_timed"] = l2.acquire(blocking=0.2)
        r["release_other"] = l2.release()
        got = {}
        def other_thread():
            got["t"] = l2.acquire(blocking=5)
            got["at"] = time.monotonic()
        t = threading.Thread(target=other_thread)
        t.start()
        time.sleep(0.2)
        r["thread_waiting"] = t.is_alive()
        rel_at = time.monotonic()
        r["release_first"] = l1.release()
        t.join(10)
        r["thread_got"] = got.get("t")
        r["thread_after"] = got["at"] - rel_at
        r["release_twice"] = l1.release()
        r["release_thread"] = l2.release()
        out(**r)
        a.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == dict(r, first=True, again_same_object=False,
                     other_object=False, other_object_timed=False,
                     release_other=False, thread_waiting=True,
                     release_first=True, thread_got=True,
                     release_twice=False, release_thread=True)
    assert r["thread_after"] < 2.0


def test_release_by_non_owner(worker, dlmd):
    """release() of a lock another coordinator holds returns False and
    leaves the hold alone."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        b = coord(os.environ["URL"], b"b")
        la, lb = a.get_lock("owned"), b.get_lock("owned")
        la.acquire()
        rel_b = lb.release()
        still = la.is_still_owner()
        refused = lb.acquire(blocking=False)
        out(rel_b=rel_b, still=still, refused=refused, rel_a=la.release())
        a.stop(); b.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == {"rel_b": False, "still": True, "refused": False,
                 "rel_a": True}


def test_stopped_or_killed_holder_frees_the_lock(worker, venv_python, dlmd,
                                                  children):
    """A holder whose coordinator stops (its session ends) frees the lock
    at once; so does one whose process is killed (its connection closes),
    with a waiter granted within moments, not a lease later."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        b = coord(os.environ["URL"], b"b")
        a.get_lock("stop-me").acquire()
        refused = b.get_lock("stop-me").acquire(blocking=False)
        a.stop()
        got = b.get_lock("stop-me").acquire(blocking=False)
        out(refused=refused, got=got)
        b.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == {"refused": False, "got": True}

    # A holder in another process, then SIGKILLed while a waiter waits.
    holder = subprocess.Popen(
        [venv_python, "-c", PRELUDE + textwrap.dedent("""
            c = coord(os.environ["URL"], b"holder")
            assert c.get_lock("kill-me").acquire()
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True,
        env=_env({"URL": unix_url(dlmd, "lease_ms=30000")}))
    children.append(holder)
    assert holder.stdout.readline().strip() == "held"
    waiter = subprocess.Popen(
        [venv_python, "-c", PRELUDE + textwrap.dedent("""
            c = coord(os.environ["URL"], b"waiter")
            lk = c.get_lock("kill-me")
            print(json.dumps({"refused": lk.acquire(blocking=False)}),
                  flush=True)
            t0 = time.monotonic()
            got = lk.acquire(blocking=20)
            out(got=got, waited=time.monotonic() - t0)
        """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env({"URL": unix_url(dlmd)}))
    children.append(waiter)
    assert json.loads(waiter.stdout.readline()) == {"refused": False}
    time.sleep(0.2)
    holder.kill()
    stdout, stderr = waiter.communicate(timeout=RUN_TIMEOUT)
    assert waiter.returncode == 0, stderr
    res = json.loads(stdout.strip().splitlines()[-1])
    assert res["got"] is True
    # The 30 s lease did not have to run out.
    assert res["waited"] < 10


def test_heartbeat_pings_and_session_outlives_its_lease(worker, dlmd):
    """heartbeat() pings dlmd and returns a third of the lease; without
    tooz's heart, the client's own keepalive keeps a hold past several
    leases; with dlmd gone, heartbeat raises ToozConnectionError."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        every = a.heartbeat()
        lk = a.get_lock("kept")
        lk.acquire()
        time.sleep(2.5)  # past two leases of 1 s, no heartbeat() called
        still = lk.is_still_owner()
        beat_held = lk.heartbeat()
        os.kill(int(os.environ["DLMD_PID"]), 15)
        time.sleep(0.5)
        try:
            a.heartbeat()
            err = None
        except coordination.ToozConnectionError:
            err = "ToozConnectionError"
        except tooz.ToozError as e:
            err = "ToozError: %s" % e
        lk.release()
        out(every=every, still=still, beat_held=beat_held, err=err,
            beat_free=a.get_lock("free").heartbeat())
    """, env={"URL": unix_url(dlmd, "lease_ms=1000"),
             "DLMD_PID": str(dlmd.pid)})
    assert abs(r["every"] - 1000 / 3000.0) < 1e-6
    assert r["still"] is True
    assert r["beat_held"] is True
    assert r["beat_free"] is False
    assert r["err"] == "ToozConnectionError"


def test_dlmd_restarted_under_a_coordinator(worker, dlmd):
    """When dlmd restarts, the coordinator's session is over: its holds
    are gone (release() and is_still_owner() say False) and the next
    calls open a new session, as tooz's other drivers reconnect."""
    run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        lk = a.get_lock("before")
        lk.acquire()
        keep.update(a=a, lk=lk, name=a._client.name)
        out()
    """, env={"URL": unix_url(dlmd)})
    dlmd.stop()
    dlmd.start()
    r = run_tooz(worker, """
        a, lk = keep["a"], keep["lk"]
        # The client learns of the end when its connection closes.
        deadline = time.monotonic() + 10
        while not a._client.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        owner = lk.is_still_owner()
        rel = lk.release()
        again = lk.acquire(blocking=False)
        beat = a.heartbeat() > 0
        new_name = a._client.name
        b = coord(os.environ["URL"], b"b")
        refused = b.get_lock("before").acquire(blocking=False)
        out(owner=owner, rel=rel, again=again, beat=beat,
            renamed=new_name != keep["name"], refused=refused,
            rel2=lk.release())
        a.stop(); b.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == {"owner": False, "rel": False, "again": True, "beat": True,
                 "renamed": True, "refused": False, "rel2": True}


def test_break_takes_the_lock_from_its_holder(worker, dlmd):
    """break_() force-releases in dlmd (the server's own user is an admin
    over its Unix socket): the holder is no longer owner, its release
    returns False, and another coordinator may take the lock."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        b = coord(os.environ["URL"], b"b")
        la, lb = a.get_lock("broken"), b.get_lock("broken")
        la.acquire()
        broke = lb.break_()
        owner = la.is_still_owner()
        got_b = lb.acquire(blocking=False)
        rel_a = la.release()
        c = coord(os.environ["URL"], b"c")
        refused_c = c.get_lock("broken").acquire(blocking=False)
        broke_free = c.get_lock("nobody-holds-it").break_()
        out(broke=broke, owner=owner, got_b=got_b, rel_a=rel_a,
            refused_c=refused_c, broke_free=broke_free)
        a.stop(); b.stop(); c.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == {"broke": True, "owner": False, "got_b": True,
                 "rel_a": False, "refused_c": False, "broke_free": False}


def test_break_without_admin_rights_is_an_error(worker, dlmd):
    """Over TCP without the admin token, break_() is refused by dlmd: a
    ToozError with dlmd's sentence, and the hold is untouched."""
    r = run_tooz(worker, """
        a = coord(os.environ["UNIX"], b"a")
        b = coord(os.environ["TCP"], b"b")
        la = a.get_lock("guarded")
        la.acquire()
        try:
            b.get_lock("guarded").break_()
            err = None
        except tooz.ToozError as e:
            err = str(e)
        out(err=err, owner=la.is_still_owner())
        a.stop(); b.stop()
    """, env={"UNIX": unix_url(dlmd), "TCP": tcp_url(dlmd)})
    assert r["err"] and "admin" in r["err"], r
    assert r["owner"] is True


def test_shared_locks(worker, dlmd):
    """acquire(shared=True): shared holders of two coordinators (and two
    of one) at once; an exclusive request is refused meanwhile and granted
    when the last sharer has gone."""
    r = run_tooz(worker, """
        a = coord(os.environ["URL"], b"a")
        b = coord(os.environ["URL"], b"b")
        la, la2, lb = a.get_lock("s"), a.get_lock("s"), b.get_lock("s")
        r = {}
        r["a"] = la.acquire(shared=True)
        r["a2"] = la2.acquire(shared=True, blocking=False)
        r["b"] = lb.acquire(shared=True, blocking=False)
        c = coord(os.environ["URL"], b"c")
        lc = c.get_lock("s")
        r["c_excl"] = lc.acquire(blocking=False)
        r["rel_a"] = la.release()
        r["c_excl_one_left_in_a"] = lc.acquire(blocking=False)
        r["rel_a2"], r["rel_b"] = la2.release(), lb.release()
        r["c_excl_free"] = lc.acquire(blocking=False)
        r["b_shared_vs_excl"] = lb.acquire(shared=True, blocking=False)
        out(**r)
        a.stop(); b.stop(); c.stop()
    """, env={"URL": unix_url(dlmd)})
    assert r == {"a": True, "a2": True, "b": True, "c_excl": False,
                 "rel_a": True, "c_excl_one_left_in_a": False,
                 "rel_a2": True, "rel_b": True, "c_excl_free": True,
                 "b_shared_vs_excl": False}


def test_url_forms_and_errors(worker, dlmd, tmpdir_short):
    """The URL forms reach dlmd (Unix path, host:port, a list, an address
    option, dlm:// with $DLM_SERVER) and a token file is read; a server
    that is not there is ToozConnectionError at start, a malformed
    address ToozError."""
    token = os.path.join(tmpdir_short, "token")
    with open(token, "w") as f:
        f.write("not-needed-over-unix\n")
    r = run_tooz(worker, """
        from tooz import coordination
        urls = {
            "path": "dlm://%(sock)s?lease_ms=2000&token_file=%(token)s",
            "tcp": "dlm://127.0.0.1:%(port)d",
            # A first server that is down: the next is tried.
            "list": "dlm://127.0.0.1:1,127.0.0.1:%(port)d",
            "address": "dlm://?address=unix:%(sock)s",
            "env": "dlm://",
        }
        ok = {}
        for k, u in urls.items():
            c = coord(u % {"sock": os.environ["SOCK"],
                           "port": int(os.environ["PORT"]),
                           "token": os.environ["TOKEN"]}, k.encode())
            lk = c.get_lock("url-" + k)
            ok[k] = lk.acquire(blocking=False) and lk.release()
            if k == "path":
                ok["lease"] = c.heartbeat()
            c.stop()
        errs = {}
        for k, u in {"down": "dlm://127.0.0.1:1",
                     "bad": "dlm://?address=nonsense"}.items():
            c = coordination.get_coordinator(u, b"x")
            try:
                c.start()
                errs[k] = None
            except coordination.ToozConnectionError as e:
                errs[k] = "ToozConnectionError"
            except tooz.ToozError as e:
                errs[k] = "ToozError"
        out(ok=ok, errs=errs)
    """, env={"SOCK": dlmd.sock, "PORT": str(dlmd.port), "TOKEN": token,
              "DLM_SERVER": dlmd.address})
    assert r["ok"] == {"path": True, "tcp": True, "list": True,
                       "address": True, "env": True, "lease": 2000 / 3000.0}
    assert r["errs"] == {"down": "ToozConnectionError", "bad": "ToozError"}


def test_url_parsing():
    """The URL forms become dlm.Client's arguments (no server needed):
    several hosts, TLS by option or scheme, TLS files, lease and linger."""
    pytest.importorskip("oslo_utils")
    from oslo_utils import netutils
    from tooz import utils
    from dlm.tooz_driver import DlmDriver

    def args(url):
        p = netutils.urlsplit(url)
        from urllib.parse import parse_qs
        return DlmDriver._parse(p, utils.collapse(parse_qs(p.query)))

    assert args("dlm:///run/dlmd/dlmd.sock") == {
        "address": "unix:/run/dlmd/dlmd.sock"}
    assert args("dlm://") == {}
    assert args("dlm://a:1,b:2?lease_ms=3000&linger_ms=5000") == {
        "address": "tcp:a:1,tcp:b:2", "lease_ms": 3000, "linger_ms": 5000}
    assert args("dlm://[::1]:7000?tls=true&tls_ca=/ca.pem") == {
        "address": "tls:[::1]:7000", "tls_ca": "/ca.pem"}
    assert args("dlm+tls://h:7000?tls_cert=/c&tls_key=/k") == {
        "address": "tls:h:7000", "tls_cert": "/c", "tls_key": "/k"}
    assert args("dlm://h:7000?token=s3cret") == {
        "address": "tcp:h:7000", "token": "s3cret"}


def test_tooz_own_lock_tests(venv_python, dlmd):
    """tooz's own API tests (tooz.tests.test_coordination.TestAPI) pass
    against dlm: every lock test runs, and what dlm does not implement
    (groups, elections) is skipped as tooz.NotImplemented."""
    probe = subprocess.run([venv_python, "-c",
                            "import testtools, fixtures, tooz.tests"],
                           capture_output=True, env=_env())
    if probe.returncode != 0:
        pytest.skip("tooz's tests need testtools and fixtures (Debian: "
                    "python3-testtools, python3-fixtures)")
    cwd = tempfile.mkdtemp(prefix="dlmtoozsuite.")
    try:
        r = subprocess.run(
            [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-o", "addopts=", "--pyargs",
             "tooz.tests.test_coordination", "-k", "TestAPI", "-rs"],
            capture_output=True, text=True, cwd=cwd, timeout=120,
            env=_env({"TOOZ_TEST_URL": unix_url(dlmd)}))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    # The lock tests ran (were not skipped).
    assert " passed" in r.stdout
    passed = int(r.stdout.strip().splitlines()[-1].split(" passed")[0]
                 .split()[-1])
    assert passed >= 25, r.stdout[-2000:]
