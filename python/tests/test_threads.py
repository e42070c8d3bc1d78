"""The threaded client's reading under load: the thread that waits for an
answer reads the connection itself when nobody else does, so these
tests have many threads share one client, drop its connection under
them, close and fork while a thread reads, interrupt a reading main
thread with signals, and use the client from its callbacks. Nothing is
timed: a hang is what they would show, and each thread is joined with a
generous bound and then checked."""

import os
import signal
import socket
import threading

import pytest

import dlm
from conftest import acquire_in_thread, wait_until


def join_all(threads, bound=60):
    for t in threads:
        t.join(bound)
    assert not any(t.is_alive() for t in threads), "a thread hangs"


def test_many_threads_one_client(clients):
    c = clients("busy")
    inside = {}
    errors = []
    names = ["m%d" % i for i in range(3)]

    def work(n):
        try:
            for i in range(150):
                name = names[(n + i) % len(names)]
                with c.lock(name):
                    # The lock is exclusive across this client's threads.
                    assert inside.setdefault(name, 0) == 0
                    inside[name] = 1
                    c.ping()
                    inside[name] = 0
                if i % 10 == 0:
                    c.info(name)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    join_all(threads)
    assert errors == []
    assert c.holds() == {}
    assert c.stats()["server"]


def test_answers_read_by_another_thread(clients):
    """A thread that waits long holds the read role; the others' answers
    are read by it and wake them."""
    a, b = clients("a"), clients("b")
    a.lock("held").acquire()
    waiting = b.lock("held")
    got = threading.Event()

    def wait():
        waiting.acquire()
        got.set()
    t = threading.Thread(target=wait)
    t.start()
    wait_until(lambda: (a.info("held") or {}).get("nwaiters") == 1)
    # b's other threads are answered while t sits in its read.
    done = []

    def ping():
        for _ in range(50):
            b.ping()
        done.append(1)
    ps = [threading.Thread(target=ping) for _ in range(4)]
    for p in ps:
        p.start()
    join_all(ps)
    assert len(done) == 4
    a.reset()
    assert got.wait(10)
    join_all([t])
    waiting.release()


def test_reconnect_under_load(dlmd, relay, clients):
    c = clients("load", address=relay.address, linger_ms=5000)
    stop = threading.Event()
    counts = []
    errors = []

    def work(n):
        k = 0
        lk = c.lock("r%d" % n)
        while not stop.is_set():
            try:
                if lk.acquire(timeout=10):
                    try:
                        c.ping()
                    finally:
                        lk.release()
                    k += 1
            except (dlm.ConnectionLost, dlm.NotHeld):
                pass
            except dlm.LockTimeout:
                pass
            except Exception as e:
                errors.append(e)
                return
        counts.append(k)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for cut in range(3):
        before = relay.accepted
        wait_until(lambda: c.ping() is not None)
        relay.cut()
        wait_until(lambda: relay.accepted > before, timeout=15,
                   what="a reconnect")
    wait_until(lambda: c.ping() is not None, timeout=15)
    stop.set()
    join_all(threads)
    assert errors == []
    assert len(counts) == 6
    # Every hold was given back, in this client and in dlmd.
    wait_until(lambda: c.holds() == {})
    other = clients("other")
    for n in range(6):
        assert other.lock("r%d" % n).acquire(False)


def test_lost_notice_while_callers_are_busy(clients):
    """Notices are read by whichever thread reads: they are not held up
    while the client's threads keep the connection busy."""
    a, admin = clients("a"), clients("admin")
    lk = a.lock("f")
    lk.acquire()
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            a.ping()
    ts = [threading.Thread(target=busy) for _ in range(3)]
    for t in ts:
        t.start()
    try:
        assert admin.call("force_release", lock="f")["released"] == 1
        assert lk.lost_event.wait(10)
        assert lk.lost_reason == "forced" and not lk.held()
    finally:
        stop.set()
        join_all(ts)


def test_callback_uses_the_client(clients):
    """A callback may call back into the client: acquire again in
    on_lost, and in a watch's callback."""
    a, admin = clients("a"), clients("admin")
    again = threading.Event()
    results = []

    def lost(lk, reason):
        # In the events thread: round trips, and an acquire (of another
        # name: this one's turn is the main thread's until it releases).
        results.append(a.check("f", token))
        results.append(a.lock("other").acquire(timeout=10))
        again.set()
    lk = a.lock("f", on_lost=lost)
    lk.acquire()
    token = lk.token
    assert admin.call("force_release", lock="f")["released"] == 1
    assert again.wait(15)
    assert results == [False, True]
    assert a.lock("other").held()
    lk.release()
    assert lk.acquire(False)
    seen = []
    w_done = threading.Event()

    def changed(state):
        seen.append(a.info("w"))
        if len(seen) >= 2:
            w_done.set()
    w = a.watch("w", changed)
    admin.lock("w").acquire()
    assert w_done.wait(15)
    w.unwatch()


def test_close_while_a_thread_reads(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    t, errs = acquire_in_thread(b.lock("x"))
    wait_until(lambda: (a.info("x") or {}).get("nwaiters") == 1)
    b.close()
    join_all([t])
    # dlmd's answer to the ended wait, or the client's own.
    assert len(errs) == 1 and isinstance(errs[0], (dlm.ClientClosed,
                                                   dlm.Cancelled))
    assert not b._reader.is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_fork_while_a_thread_reads(clients):
    a, b = clients("a"), clients("b")
    a.lock("x").acquire()
    got = []

    def wait():
        got.append(b.lock("x").acquire(timeout=30))
    t = threading.Thread(target=wait)
    t.start()
    wait_until(lambda: (a.info("x") or {}).get("nwaiters") == 1)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            try:
                b.ping()
            except dlm.Forked:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    # The parent's connection lives on: the reading thread is granted.
    a.reset()
    join_all([t])
    assert got == [True]
    assert b.ping() is not None


class Interrupt(Exception):
    pass


def test_signals_in_a_reading_main_thread(clients):
    """A signal handler that raises in the main thread, while it reads
    its own answers: no answer and no byte is lost, the next call works."""
    assert threading.current_thread() is threading.main_thread()
    c = clients("sig")
    interrupted = [0]

    in_call = [False]

    def handler(*_):
        # Raises only inside the try below, never in pytest's own code.
        if in_call[0]:
            in_call[0] = False
            interrupted[0] += 1
            raise Interrupt()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        for i in range(3000):
            try:
                in_call[0] = True
                c.ping()
                in_call[0] = False
            except Interrupt:
                pass
    finally:
        in_call[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
    # Every byte read went to the decoder: the connection still reads.
    for _ in range(20):
        assert c.ping() is not None
    with c.lock("after") as lk:
        assert lk.held()


def test_rlock_uncertain_grant_given_back(dlmd, relay, clients):
    """An rlock's acquire granted but unheard before the connection
    dropped: given back after the resume, level by level."""
    c = clients("unheard", address=relay.address, linger_ms=5000)
    peek = clients("peek")
    r = c.rlock("re")
    r.acquire()
    # A second level dlmd grants but this client never hears of.
    c.call("acquire", lock="re", kind="rlock", timeout_ms=0)
    assert peek.info("re")["holders"][0]["count"] == 2
    with c._mu:
        c._uncertain.append(("re", "rlock"))
    before = relay.accepted
    relay.cut()
    wait_until(lambda: relay.accepted > before, what="a reconnect")
    wait_until(lambda: (peek.info("re") or {"holders": [{}]})
               ["holders"][0].get("count") == 1,
               what="the unheard level given back")
    assert r.count == 1
    r.release()
    assert peek.info("re") is None


def drop_after_release(c):
    """Make the client's next release go out and its connection drop
    before the answer is read."""
    real = c._send_locked

    def send(frame):
        ok = real(frame)
        if frame[2] == "release":
            c._send_locked = real
            c._sock.shutdown(socket.SHUT_RDWR)
        return ok
    c._send_locked = send


def drop_before_release(c):
    """Make the client's next release never reach dlmd."""
    real = c._send_locked

    def send(frame):
        if frame[2] == "release":
            c._send_locked = real
            c._sock.shutdown(socket.SHUT_RDWR)
            return False
        return real(frame)
    c._send_locked = send


@pytest.mark.parametrize("drop", [drop_after_release, drop_before_release])
def test_rlock_release_over_dropped_connection(dlmd, relay, clients, drop):
    """A release of one rlock level whose answer the connection took:
    carried out once, whether or not dlmd had it."""
    c = clients("rel", address=relay.address, linger_ms=5000)
    peek = clients("peek")
    r = c.rlock("re")
    r.acquire()
    r.acquire()
    assert r.count == 2
    drop(c)
    r.release()
    assert r.count == 1
    assert peek.info("re")["holders"][0]["count"] == 1
    r.release()
    assert r.count == 0 and not r.held()
    assert peek.info("re") is None
