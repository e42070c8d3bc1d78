"""The threaded client against a real dlmd: what libdlm's suite covers
(FIFO, rlock counts, timeouts, a holder killed, a lease that lapses, lost
notices, resume, fork), and the Python API on top."""

import os
import signal
import sys
import threading
import time

import pytest

import dlm
from conftest import acquire_in_thread, run_python, wait_until


def waiters(client, name):
    info = client.info(name)
    return info["nwaiters"] if info else 0


# -- the seed's API, and the basics -----------------------------------------

def test_seed_api(clients):
    client = clients("web-1")
    lock = client.mklock("invoices")
    rlock = client.mkrlock("cache")
    assert lock.acquire() is True
    lock.release()
    with lock:
        assert lock.held()
    assert not lock.held()
    with rlock:
        with rlock:
            assert rlock.count == 2
        assert rlock.count == 1
    assert rlock.count == 0
    assert client.name == "web-1"


def test_default_name_and_address_from_env(dlmd, monkeypatch):
    monkeypatch.setenv("DLM_SERVER", dlmd.address)
    with dlm.Client() as c:
        assert c.name.endswith(":%d:%s" % (os.getpid(),
                                           c.name.rsplit(":", 1)[1]))
        assert c.address == dlmd.address
        assert c.lock("x").acquire()


def test_tcp(dlmd):
    with dlm.Client("tcp-1", dlmd.tcp_address) as c:
        with c.lock("x") as lk:
            assert lk.token > 0


def test_token_and_check(clients):
    a, b = clients("a"), clients("b")
    la = a.lock("res")
    assert la.token is None and not la.check()
    la.acquire()
    t1 = la.token
    assert la.check() and b.check("res", t1)
    assert la.locked() and b.lock("res").locked()
    la.release()
    assert not b.check("res", t1) and not la.locked()
    lb = b.lock("res")
    lb.acquire()
    assert lb.token > t1
    lb.release()


def test_nonblocking_and_timeout(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    lb = b.lock("x")
    assert lb.acquire(blocking=False) is False
    t = time.monotonic()
    assert lb.acquire(timeout=0.3) is False
    assert 0.25 <= time.monotonic() - t < 3
    assert lb.acquire(True, 0) is False
    with pytest.raises(ValueError):
        lb.acquire(blocking=False, timeout=1)
    with pytest.raises(ValueError):
        lb.acquire(timeout=-2)
    assert waiters(a, "x") == 0


def test_with_timeout_raises(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    with pytest.raises(dlm.LockTimeout):
        with b.lock("x", timeout=0.1):
            pytest.fail("ran without the lock")


def test_release_unheld_is_runtime_error(clients):
    lk = clients("a").lock("x")
    with pytest.raises(RuntimeError):
        lk.release()
    with pytest.raises(dlm.NotHeld):
        lk.release()


def test_fifo(clients):
    holder = clients("holder")
    h = holder.lock("q")
    h.acquire()
    order = []
    threads = []
    for i in range(4):
        c = clients("w%d" % i)
        lk = c.lock("q")

        def run(lk=lk, i=i):
            lk.acquire()
            order.append(i)
            lk.release()
        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
        wait_until(lambda: waiters(holder, "q") == i + 1, what="waiter %d" % i)
    h.release()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3]


def test_rlock_counts(clients):
    c = clients("a")
    r = c.rlock("r")
    for n in range(1, 4):
        assert r.acquire()
        assert r.count == n
        assert c.info("r")["holders"][0]["count"] == n
    token = r.token
    r.release()
    r.release()
    assert r.count == 1 and r.token == token
    other = clients("b").rlock("r")
    assert not other.acquire(blocking=False)
    r.release()
    assert other.acquire(blocking=False)


def test_rlock_is_per_thread(clients):
    c = clients("a")
    r = c.rlock("r")
    r.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(r.acquire(timeout=0.2)))
    t.start()
    t.join()
    assert got == [False]
    r.release()


def test_threads_take_turns_at_one_client(clients):
    c = clients("a")
    lk = c.lock("m")
    inside = []
    overlap = []

    def work():
        for _ in range(20):
            with lk:
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                time.sleep(0.0005)
                inside.pop()
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not overlap
    assert not lk.held()


def test_mutex_reacquire_by_holder_thread(clients):
    lk = clients("a").lock("m")
    lk.acquire()
    with pytest.raises(dlm.AlreadyHeld):
        lk.acquire()
    lk.release()


def test_shared(clients):
    a, b, c = clients("a"), clients("b"), clients("c")
    sa, sb = a.lock("s", shared=True), b.lock("s", shared=True)
    assert sa.acquire(False) and sb.acquire(False)
    assert not c.lock("s").acquire(False)
    sa.release()
    sb.release()
    assert c.lock("s").acquire(False)


def test_convert(clients):
    a, b = clients("a"), clients("b")
    la = a.lock("cv")
    la.acquire()
    t1 = la.token
    assert la.convert(shared=True)
    assert la.token == t1
    lb = b.lock("cv", shared=True)
    assert lb.acquire(False)
    assert la.convert(shared=False, timeout=0.1) is False
    lb.release()
    assert la.convert(shared=False, timeout=2)
    assert la.token > t1


def test_synchronized(clients):
    a, b = clients("a"), clients("b")
    seen = []

    @a.synchronized("job")
    def job(x):
        seen.append(b.lock("job").acquire(False))
        return x * 2
    assert job(21) == 42
    assert seen == [False]
    assert job.__name__ == "job"

    b.lock("busy").acquire()

    @a.synchronized("busy", timeout=0.1)
    def never():
        pytest.fail("ran without the lock")
    with pytest.raises(dlm.LockTimeout):
        never()


def test_semaphore(clients):
    a, b, c = clients("a"), clients("b"), clients("c")
    sa = a.semaphore("pool", 3, permits=2)
    sb = b.semaphore("pool", 3)
    sc = c.semaphore("pool", 3, permits=2)
    assert sa.acquire(False) and sb.acquire(False)
    assert not sc.acquire(False)
    sa.release(permits=1)
    assert sa.held_permits == 1
    assert not sc.acquire(False)
    sb.release()
    assert sc.acquire(timeout=2)
    assert sa.token != sc.token
    with pytest.raises(dlm.KindMismatch):
        clients("d").semaphore("pool", 4).acquire(False)


# -- errors -----------------------------------------------------------------

def test_errors_mapped(clients, dlmd):
    a, b = clients("a"), clients("b")
    a.lock("k").acquire()
    with pytest.raises(dlm.KindMismatch) as ei:
        b.rlock("k").acquire(False)
    assert ei.value.code == 8 and ei.value.name == "KIND_MISMATCH"
    assert "k" in ei.value.message
    with pytest.raises(dlm.AlreadyHeld):
        a.call("acquire", lock="k", timeout_ms=0)
    with pytest.raises(dlm.WouldBlock):
        b.call("acquire", lock="k", timeout_ms=0)
    with pytest.raises(dlm.LockTimeout):
        b.call("acquire", lock="k", timeout_ms=10)
    with pytest.raises(dlm.NotHeld):
        b.call("release", lock="k")
    with pytest.raises(dlm.NotFound):
        a.call("lock", lock="nobody-has-this")
    with pytest.raises(dlm.BadRequest):
        a.call("acquire", lock="k", mode="sideways")
    with pytest.raises(dlm.LimitExceeded):
        a.lock("n" * 300).acquire()
    with pytest.raises(dlm.NameInUse):
        dlm.Client("a", dlmd.address)
    assert issubclass(dlm.LockTimeout, dlm.DlmError)


def test_deadlock(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    b.lock("y").acquire()
    t = threading.Thread(target=lambda: a.lock("y").acquire(timeout=5))
    t.start()
    wait_until(lambda: waiters(b, "y") == 1)
    with pytest.raises(dlm.Deadlock) as ei:
        b.lock("x").acquire()
    assert {w["client"] for w in ei.value.cycle} == {"a", "b"}
    b.lock("y").release()
    t.join(10)


def test_permission(dlmd_factory, tmpdir_short):
    tok = os.path.join(tmpdir_short, "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    d = dlmd_factory("--token-file", tok, tcp=True)
    with pytest.raises(dlm.PermissionDenied):
        dlm.Client("t", d.tcp_address)
    with dlm.Client("t", d.tcp_address, token_file=tok) as c:
        assert c.lock("x").acquire()
    with dlm.Client("u", d.tcp_address, token="s3cret") as c:
        assert c.lock("y").acquire()


def test_bad_address_and_no_server(tmpdir_short):
    with pytest.raises(dlm.AddressError):
        dlm.Client("a", "tcp:localhost")
    with pytest.raises(dlm.AddressError):
        dlm.Client("a", "tcp:::1:80")
    with pytest.raises(dlm.ConnectError):
        dlm.Client("a", "unix:" + os.path.join(tmpdir_short, "none.sock"),
                   connect_timeout=1)


def test_address_lists():
    p = dlm.parse_addresses
    assert [a.path for a in p("unix:/a,b,unix:/c")] == ["/a,b", "/c"]
    assert [(a.scheme, a.host, a.port) for a in
            p("tcp:h1:1,tls:[::1]:2")] == [("tcp", "h1", 1), ("tls", "::1", 2)]
    assert len(p(["unix:/x", "tcp:h:3"])) == 2
    with pytest.raises(dlm.AddressError):
        p("tcp:h:0")
    with pytest.raises(dlm.AddressError):
        p("unix:/a,,unix:/b")


def test_several_addresses_first_down(dlmd, tmpdir_short):
    dead = "unix:" + os.path.join(tmpdir_short, "dead.sock")
    with dlm.Client("a", [dead, dlmd.address]) as c:
        assert c.address == dlmd.address
        assert c.lock("x").acquire()


# -- holders that die, leases, lost notices ---------------------------------

HOLDER = """
import sys, dlm
c = dlm.Client(sys.argv[1] if len(sys.argv) > 1 else "holder",
               lease_ms=%(lease)d)
lk = c.lock("res", on_lost=lambda l, why: print("lost", why, flush=True))
lk.acquire()
print("held", lk.token, flush=True)
sys.stdin.readline()
print("event", lk.lost_event.is_set(), flush=True)
"""


def start_holder(dlmd, children, lease=10000):
    p = run_python(HOLDER % {"lease": lease},
                   env_extra={"DLM_SERVER": dlmd.address})
    children.append(p)
    line = p.stdout.readline()
    assert line.startswith("held"), line + p.stderr.read()
    return p, int(line.split()[1])


def test_holder_killed(dlmd, clients, children):
    p, token = start_holder(dlmd, children)
    c = clients("next")
    lk = c.lock("res")
    assert not lk.acquire(False)
    p.kill()
    p.wait()
    assert lk.acquire(timeout=5)
    assert lk.token > token


def test_lease_lapse_and_lost_notice(dlmd, clients, children):
    p, token = start_holder(dlmd, children, lease=1000)
    c = clients("next")
    os.kill(p.pid, signal.SIGSTOP)
    try:
        t = time.monotonic()
        assert c.lock("res").acquire(timeout=10)
        assert time.monotonic() - t >= 0.5
    finally:
        os.kill(p.pid, signal.SIGCONT)
    assert p.stdout.readline().split() == ["lost", "expired"]
    p.stdin.write("\n")
    p.stdin.flush()
    assert p.stdout.readline().split() == ["event", "True"]


def test_forced_lost_callback_and_event(clients):
    a, admin = clients("a"), clients("admin")
    seen = []
    a.on_lost = lambda name, token, why: seen.append(("client", name, why))
    lk = a.lock("f", on_lost=lambda l, why: seen.append(("lock", l.name, why)))
    lk.acquire()
    token = lk.token
    assert admin.call("force_release", lock="f")["released"] == 1
    assert lk.lost_event.wait(5)
    assert lk.lost_reason == "forced"
    wait_until(lambda: len(seen) == 2)
    assert ("lock", "f", "forced") in seen and ("client", "f", "forced") in seen
    assert lk.token is None and not lk.held()
    assert not admin.check("f", token)
    lk.release()  # the turn ends; no error: the hold is gone already
    assert lk.acquire(False)
    assert not lk.lost_event.is_set()


def test_contended_notice(clients):
    a, b = clients("a"), clients("b")
    got = threading.Event()
    lk = a.lock("c", notify_contended=True,
                on_contended=lambda l, n: got.set())
    lk.acquire()
    t = threading.Thread(target=lambda: b.lock("c").acquire(timeout=5))
    t.start()
    assert got.wait(5)
    lk.release()
    t.join(10)


# -- dropped connections ----------------------------------------------------

def test_resume_over_dropped_connection(dlmd, relay, clients):
    c = clients("lingering", address=relay.address, linger_ms=5000)
    other = clients("other")
    lk = c.lock("keep")
    lk.acquire()
    token = lk.token
    relay.cut()
    wait_until(lambda: relay.accepted == 2, what="a reconnect")
    # Resumed with its holds: the token is still good, nobody else has it.
    assert other.check("keep", token)
    assert not other.lock("keep").acquire(False)
    wait_until(lambda: c.ping() is not None)
    assert lk.check() and lk.token == token
    assert not lk.lost_event.is_set()
    lk.release()
    assert other.lock("keep").acquire(False)
    assert other.call("stats")["resumes"] >= 1


def test_waiting_acquire_over_dropped_connection(dlmd, relay, clients):
    c = clients("lingering", address=relay.address, linger_ms=5000)
    clients("holder").lock("busy").acquire()
    t, errs = acquire_in_thread(c.lock("busy"))
    peek = clients("peek")
    wait_until(lambda: waiters(peek, "busy") == 1)
    relay.cut()
    t.join(10)
    assert len(errs) == 1 and isinstance(errs[0], dlm.ConnectionLost)
    # The client lives on.
    wait_until(lambda: relay.accepted == 2)
    assert c.lock("free").acquire()


def test_no_linger_drop_loses_holds(dlmd, relay, clients):
    c = clients("brief", address=relay.address)
    lk = c.lock("gone")
    lk.acquire()
    relay.cut()
    assert lk.lost_event.wait(5)
    assert lk.lost_reason == "session"
    wait_until(lambda: c.closed)
    with pytest.raises(dlm.ClientClosed):
        lk.acquire()
    assert clients("other").lock("gone").acquire(timeout=5)


def test_session_gone_while_away(dlmd, relay, clients):
    c = clients("away", address=relay.address, linger_ms=1000)
    lk = c.lock("x")
    lk.acquire()
    relay.refusing = True
    relay.cut()
    # The linger runs out on the server before the client gets back.
    time.sleep(1.3)
    relay.refusing = False
    assert lk.lost_event.wait(10)
    assert lk.lost_reason == "session"


def test_server_restart_without_linger(dlmd, clients):
    c = clients("a")
    lk = c.lock("x")
    lk.acquire()
    dlmd.stop()
    assert lk.lost_event.wait(5)
    with pytest.raises(dlm.ClientClosed):
        c.ping()


def test_close_releases(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    a.close()
    assert b.lock("x").acquire(False)
    with pytest.raises(dlm.ClientClosed):
        a.lock("y").acquire()
    a.close()  # twice is fine


def test_waiter_cancelled_by_close(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    t, errs = acquire_in_thread(b.lock("x"))
    wait_until(lambda: waiters(a, "x") == 1)
    b.close()
    t.join(10)
    assert errs and isinstance(errs[0], (dlm.ClientClosed, dlm.Cancelled))


def test_keepalive_beyond_lease(clients):
    a = clients("a", lease_ms=1000)
    lk = a.lock("x")
    lk.acquire()
    time.sleep(2.2)
    assert lk.check() and not lk.lost_event.is_set()


# -- fork -------------------------------------------------------------------

def test_fork_child_gets_clear_error(clients):
    c = clients("parent")
    lk = c.lock("x")
    lk.acquire()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                lk.release()
            except dlm.Forked as e:
                code = 10 if e.code == 103 else 2
            try:
                c.lock("y").acquire()
                code = 3
            except dlm.Forked:
                code += 1
            c.close()  # no error, and nothing sent: the parent's session
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    code = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert code == bytes([11])
    # The parent's session and hold are untouched.
    assert lk.check()
    lk.release()


# -- watches and elections --------------------------------------------------

def test_watch(clients):
    a, b = clients("a"), clients("b")
    states = []
    w = a.watch("wx", states.append)
    assert w.state["nholders"] == 0
    serial = w._serial
    b.lock("wx").acquire()
    st = w.wait(5, serial)
    assert st["holders"][0]["client"] == "b"
    with pytest.raises(dlm.AlreadyHeld):
        a.watch("wx")
    w.unwatch()
    n = len(states)
    b.lock("wx").release()
    time.sleep(0.1)
    assert len(states) == n


def test_election(clients):
    a, b, c = clients("a"), clients("b"), clients("c")
    leaders = []
    seen = threading.Event()

    def observed(leader):
        leaders.append(leader and (leader["client"], leader.get("value")))
        seen.set()
    c.election("boss").observe(observed)
    ea, eb = a.election("boss"), b.election("boss")
    assert ea.campaign(b"10.0.0.1:80")
    assert not eb.campaign(b"10.0.0.2:80", blocking=False)
    assert eb.leader()["client"] == "a"
    wait_until(lambda: ("a", b"10.0.0.1:80") in leaders)
    ea.resign()
    assert eb.campaign(b"10.0.0.2:80", timeout=5)
    wait_until(lambda: ("b", b"10.0.0.2:80") in leaders)


def test_interrupted_wait_cancels_in_dlmd(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    lk = b.lock("x")
    main = threading.main_thread()
    assert threading.current_thread() is main
    old = signal.signal(signal.SIGALRM, lambda *x: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            lk.acquire()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    wait_until(lambda: waiters(a, "x") == 0, what="the wait withdrawn")
    assert not lk.held()
